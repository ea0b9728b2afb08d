//! The guest-agent simulation: after a key change lands in metadata or OS
//! Login, and a configurable delay later, each simulated VM that has a
//! `guest_keys_dir` gets one authorized-keys file per user there (OS Login
//! changes apply at once, as sshd queries OS Login at login time) (the VM's
//! sshd reads `DIR/%u`), applying the Linux guest agent's rules: Go
//! `ParseBool` truth values, project flags overridden by the instance,
//! OS Login replacing metadata keys, `block-project-ssh-keys` and a legacy
//! instance `sshKeys` hiding project keys, users without whitespace, and
//! `google-ssh` expiry (RFC 3339 or `+0000`), expired or unparsable keys
//! dropped. Missing users are created with `useradd` when allowed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cloud::now_usec;
use crate::config::Instance;
use crate::state::State;

/// Go's `strconv.ParseBool`; other values are ignored (None).
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A flag as the agent sees it: project value, overridden by the instance.
fn flag(project: Option<&str>, instance: Option<&str>) -> bool {
    let mut on = false;
    if let Some(b) = project.and_then(parse_bool) {
        on = b;
    }
    if let Some(b) = instance.and_then(parse_bool) {
        on = b;
    }
    on
}

pub fn guest_attributes_enabled(state: &State, i: &Instance) -> bool {
    let c = state.cloud.lock().unwrap();
    let p = c.projects.get(&i.project);
    let m = c
        .instances
        .get(&(i.project.clone(), i.zone.clone(), i.name.clone()))
        .map(|(m, _)| m);
    flag(
        p.and_then(|m| m.get("enable-guest-attributes")),
        m.and_then(|m| m.get("enable-guest-attributes")),
    )
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `YYYY-MM-DDTHH:MM:SS` followed by `Z`, `±HH:MM` or `±HHMM` (optionally
/// fractional seconds) → Unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            sign * (digits[..2].parse::<i64>().ok()? * 3600 + digits[2..].parse::<i64>().ok()? * 60)
        }
    };
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset)
}

/// One metadata line → (user, authorized_keys line) if the agent keeps it.
pub fn accept_line(line: &str, now_secs: i64) -> Option<(String, String)> {
    let line = line.trim();
    let (user, key) = line.split_once(':')?;
    if user.is_empty() || user.chars().any(char::is_whitespace) {
        return None;
    }
    let mut f = key.split_whitespace();
    let (kt, blob) = (f.next()?, f.next()?);
    if !(kt.starts_with("ssh-") || kt.starts_with("ecdsa-") || kt.starts_with("sk-"))
        || blob.is_empty()
    {
        return None;
    }
    let comment: Vec<&str> = f.collect();
    if let Some(first) = comment.first()
        && *first == "google-ssh"
    {
        let json = comment[1..].join(" ");
        let v: serde_json::Value = serde_json::from_str(&json).ok()?;
        let exp = parse_time(v.get("expireOn")?.as_str()?)?;
        if exp <= now_secs {
            return None;
        }
    }
    Some((user.to_string(), key.trim().to_string()))
}

/// The users and keys one VM accepts right now.
pub fn effective_keys(state: &State, i: &Instance) -> BTreeMap<String, Vec<String>> {
    let c = state.cloud.lock().unwrap();
    let empty = crate::cloud::Meta {
        items: Default::default(),
        fingerprint: String::new(),
    };
    let p = c.projects.get(&i.project).unwrap_or(&empty);
    let m = c
        .instances
        .get(&(i.project.clone(), i.zone.clone(), i.name.clone()))
        .map(|(m, _)| m)
        .unwrap_or(&empty);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let windows = i.os_features.iter().any(|f| f == "WINDOWS");
    if !windows && flag(p.get("enable-oslogin"), m.get("enable-oslogin")) {
        // OS Login: each profile's keys for its POSIX user; metadata ignored.
        let now = now_usec();
        for (email, p) in c.profiles.iter().filter(|(_, p)| p.posix) {
            let keys: Vec<String> = p
                .keys
                .values()
                .filter(|k| k.expiration_usec.is_none_or(|e| e > now))
                .map(|k| k.key.clone())
                .collect();
            out.insert(state.config.posix_username_in(email, &i.project), keys);
        }
        return out;
    }
    let legacy = m.get("sshKeys").is_some_and(|v| !v.trim().is_empty());
    let block = legacy || flag(None, m.get("block-project-ssh-keys"));
    let mut sources = vec![m.get("ssh-keys"), m.get("sshKeys")];
    if !block {
        sources.push(p.get("ssh-keys"));
        sources.push(p.get("sshKeys"));
    }
    let now = now_usec() / 1_000_000;
    for v in sources.into_iter().flatten() {
        for line in v.lines() {
            if let Some((u, k)) = accept_line(line, now) {
                out.entry(u).or_default().push(k);
            }
        }
    }
    out
}

static USERADD: Mutex<()> = Mutex::new(());

fn ensure_user(state: &State, user: &str) {
    let exists = std::process::Command::new("id")
        .args(["-u", user])
        .output()
        .is_ok_and(|o| o.status.success());
    if exists {
        return;
    }
    let _g = USERADD.lock().unwrap();
    let r = std::process::Command::new("useradd")
        .args(["-m", "-s", "/bin/bash", "-p", "*", user])
        .output();
    match r {
        Ok(o) if o.status.success() => state.event(format!("guest: created user {user}")),
        Ok(o) => state.event(format!(
            "guest: useradd {user} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => state.event(format!("guest: useradd {user}: {e}")),
    }
}

fn write_atomic(path: &Path, data: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp-guest");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// Applies the current state to every simulated VM.
pub fn sync(state: &State) {
    for i in &state.config.instances {
        let Some(dir) = &i.guest_keys_dir else {
            continue;
        };
        let keys = effective_keys(state, i);
        if std::fs::create_dir_all(dir).is_err() {
            continue;
        }
        for (user, lines) in &keys {
            if state.config.create_users {
                ensure_user(state, user);
            }
            let mut body = lines.join("\n");
            body.push('\n');
            let _ = write_atomic(&dir.join(user), &body);
        }
        // Users no longer present lose their keys.
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !keys.contains_key(&name) && !name.ends_with(".tmp-guest") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let users: Vec<&String> = keys.keys().collect();
        state.event(format!(
            "guest: synced {}/{}/{} users={users:?}",
            i.project, i.zone, i.name
        ));
    }
}

/// OS Login keys take effect at once: the VM's sshd asks OS Login at
/// login time (AuthorizedKeysCommand), no agent round trip. Applied
/// before the API answers.
pub fn sync_now(state: &State) {
    sync(state);
}

/// Runs [`sync`] after the configured delay (the agent's reaction time to
/// a metadata change).
pub fn schedule(state: Arc<State>) {
    let delay = Duration::from_millis(state.config.guest_delay_ms);
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let s = state.clone();
        let _ = tokio::task::spawn_blocking(move || sync(&s)).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time("2026-08-04T12:34:56+0000"),
            parse_time("2026-08-04T12:34:56Z")
        );
        assert_eq!(
            parse_time("2026-08-04T13:34:56+01:00"),
            parse_time("2026-08-04T12:34:56Z")
        );
        assert_eq!(parse_time("2000-03-01T00:00:00Z"), Some(951868800));
        assert_eq!(parse_time("2026-08-04 12:34:56Z"), None);
    }

    #[test]
    fn lines() {
        let now = 1_800_000_000;
        let k = "ssh-ed25519 AAAAC3Nz";
        assert!(accept_line(&format!("bob:{k} bob@x"), now).is_some());
        assert!(accept_line(&format!("b b:{k}"), now).is_none());
        assert!(accept_line(&format!(":{k}"), now).is_none());
        let exp =
            |t: &str| format!("bob:{k} google-ssh {{\"userName\":\"bob\",\"expireOn\":\"{t}\"}}");
        assert!(accept_line(&exp("2030-01-01T00:00:00+0000"), now).is_some());
        assert!(accept_line(&exp("2020-01-01T00:00:00+0000"), now).is_none());
        assert!(accept_line(&exp("soon"), now).is_none());
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("yes"), None);
    }
}
