//! Times and durations as users and Google's APIs write them.
//!
//! UTC timestamps in the two forms the `ssh-keys` metadata uses: written
//! as `YYYY-MM-DDTHH:MM:SS+0000` (accepted by the old and new guest
//! agents), read as that or RFC 3339 (`Z`, `±HH:MM`, fractions), which is
//! also what IAM Credentials and the Windows agent write. Durations typed
//! on the command line: a count and a unit (`90s`, `5m`, `12h`, `30d`,
//! `2w`).
//!
//! Hand-written rather than the `time` crate, which adds 63 KB (+1.4%) to
//! the release binary for these functions; the tests check the timestamps
//! against `time` (a dev-dependency) on random instants and offsets.

/// Longest duration taken from the command line (100 years): more would
/// overflow a clock or push an expiry timestamp into the past.
pub const MAX_DURATION_SECS: u64 = 100 * 365 * 86_400;

/// Why a duration did not parse (the caller words the message, with the
/// examples that fit its option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadDuration {
    /// No count in front (`m`, `-5m`, `ten`).
    NotANumber,
    /// A unit other than s, m, h, d, w.
    UnknownUnit(String),
}

/// Seconds in `s`: a count of `bare` seconds without a unit, else with one
/// of `s`, `m`, `h`, `d`, `w`; capped at [`MAX_DURATION_SECS`].
pub fn duration_secs(s: &str, bare: u64) -> Result<u64, BadDuration> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num.parse().map_err(|_| BadDuration::NotANumber)?;
    let mult = match unit {
        "" => bare,
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        u => return Err(BadDuration::UnknownUnit(u.to_string())),
    };
    Ok(n.saturating_mul(mult).min(MAX_DURATION_SECS))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Unix seconds → `YYYY-MM-DDTHH:MM:SS+0000`.
pub fn format_plus0000(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86400), unix.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+0000",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM|±HHMM)` → Unix seconds.
pub fn parse(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = if rest == "Z" || rest == "z" {
        0
    } else {
        let sign = match rest.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        sign * (digits[..2].parse::<i64>().ok()? * 3600 + digits[2..].parse::<i64>().ok()? * 60)
    };
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset)
}

/// An IMF-fixdate HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110
/// §5.6.7) → Unix seconds. The obsolete RFC 850 and asctime forms are not
/// read (None).
pub fn http_date(s: &str) -> Option<i64> {
    let rest = s.trim().split_once(", ")?.1;
    let f: Vec<&str> = rest.split(' ').collect();
    let [day, mon, year, time, "GMT"] = f.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mo = MONTHS.iter().position(|m| m == mon)? as i64 + 1;
    let num = |t: &str, n: usize| -> Option<i64> {
        (t.len() == n && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (d, y) = (num(day, 2)?, num(year, 4)?);
    let t: Vec<&str> = time.split(':').collect();
    let [h, mi, se] = t.as_slice() else {
        return None;
    };
    let (h, mi, se) = (num(h, 2)?, num(mi, 2)?, num(se, 2)?);
    if !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)
}

/// A `Retry-After` header value (delay seconds, or an HTTP date) as the
/// time to wait from `now` (Unix seconds); a date in the past is zero.
pub fn retry_after(value: &str, now: i64) -> Option<std::time::Duration> {
    let v = value.trim();
    let secs = if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
        v.parse::<u64>().unwrap_or(u64::MAX)
    } else {
        http_date(v)?.saturating_sub(now).max(0) as u64
    };
    Some(std::time::Duration::from_secs(secs.min(MAX_DURATION_SECS)))
}

/// Seconds since the Unix epoch now (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix seconds → `YYYY-MM-DDTHH:MM:SSZ` (what CEL's `timestamp()` takes).
pub fn rfc3339(unix: i64) -> String {
    let s = format_plus0000(unix);
    format!("{}Z", s.trim_end_matches("+0000"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_or_a_date() {
        use std::time::Duration;
        let now = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(now));
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO),
            "in the past"
        );
        assert_eq!(
            retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(MAX_DURATION_SECS))
        );
        for bad in [
            "",
            "-5",
            "1.5",
            "soon",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration_secs("90", 1), Ok(90));
        assert_eq!(duration_secs("2", 86_400), Ok(172_800));
        assert_eq!(duration_secs(" 5m ", 1), Ok(300));
        assert_eq!(duration_secs("1h", 1), Ok(3600));
        assert_eq!(duration_secs("30d", 1), Ok(2_592_000));
        assert_eq!(duration_secs("2w", 1), Ok(1_209_600));
        assert_eq!(duration_secs("0s", 1), Ok(0));
        assert_eq!(
            duration_secs("99999999999999999999", 1),
            Err(BadDuration::NotANumber)
        );
        assert_eq!(duration_secs("9999999999999w", 1), Ok(MAX_DURATION_SECS));
        for bad in ["", "m", "-5m", "ten", "1.5h"] {
            assert!(duration_secs(bad, 1).is_err(), "{bad}");
        }
        assert_eq!(
            duration_secs("5y", 1),
            Err(BadDuration::UnknownUnit("y".into()))
        );
        assert_eq!(
            duration_secs("5mins", 1),
            Err(BadDuration::UnknownUnit("mins".into()))
        );
    }

    #[test]
    fn round_trip() {
        for t in [0, 951868800, 1786000000, 4102444800, 1_700_000_123] {
            assert_eq!(parse(&format_plus0000(t)), Some(t));
        }
        assert_eq!(format_plus0000(1786000000), "2026-08-06T07:06:40+0000");
        assert_eq!(parse("2026-08-06T07:06:40Z"), Some(1786000000));
        assert_eq!(parse("2026-08-06T09:06:40.123+02:00"), Some(1786000000));
        assert_eq!(parse("2026-08-06 08:26:40Z"), None);
        assert_eq!(parse("2026-13-06T08:26:40Z"), None);
    }

    use proptest::prelude::*;
    use time::format_description::well_known::Rfc3339;
    use time::{OffsetDateTime, UtcOffset};

    proptest! {
        /// The written form is what `time` writes, and `time` reads it back.
        #[test]
        fn format_agrees_with_the_time_crate(t in -62_135_596_800i64..253_402_300_799) {
            let ours = format_plus0000(t);
            let theirs = OffsetDateTime::from_unix_timestamp(t).unwrap();
            let want = format!("{}+0000", &theirs.format(&Rfc3339).unwrap()[..19]);
            prop_assert_eq!(&ours, &want);
            prop_assert_eq!(parse(&ours), Some(t));
        }

        /// Any RFC 3339 instant `time` writes (any offset, with or without a
        /// fraction), colon or not in the offset, reads as `time` reads it.
        #[test]
        fn parse_agrees_with_the_time_crate(
            t in 0i64..253_402_200_000,
            off_min in -(23 * 60 + 59)..(23 * 60 + 59),
            nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
            colon in any::<bool>(),
        ) {
            let off = UtcOffset::from_whole_seconds(off_min * 60).unwrap();
            let Ok(at) = OffsetDateTime::from_unix_timestamp(t)
                .unwrap()
                .replace_nanosecond(nanos)
                .map(|x| x.to_offset(off)) else { return Ok(()) };
            let mut text = at.format(&Rfc3339).unwrap();
            if !colon && !text.ends_with('Z') {
                text.remove(text.len() - 3);
            }
            let theirs = OffsetDateTime::parse(&at.format(&Rfc3339).unwrap(), &Rfc3339)
                .unwrap()
                .unix_timestamp();
            prop_assert_eq!(parse(&text), Some(theirs), "{}", text);
        }
    }
}
