//! The `ssh-keys` metadata value: one `USER:TYPE BASE64 [COMMENT]` line per
//! key, expiring entries in the `google-ssh {"userName":…,"expireOn":…}`
//! form with a `+0000` timestamp. Pure: matching and editing only.
//!
//! Rules: an entry matches on (user, type, blob) like IAP Desktop, not on
//! the exact string like gcloud, so a re-run finds its own entry; an entry
//! is reused while it stays valid for longer than the renewal margin; when
//! we write, our own entries (same blob) that are expired or being replaced
//! are removed, and every other line is kept as it is.

use crate::ssh::keys::PublicKeyInfo;
use crate::timefmt;

/// gcloud's cap on one `ssh-keys` value.
pub const MAX_VALUE_BYTES: usize = 262_144;

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub user: &'a str,
    pub key_type: &'a str,
    pub blob: &'a str,
    /// None: no expiry. Some(None): a `google-ssh` comment whose expiry
    /// cannot be read (the guest agent drops such keys).
    pub expire: Option<Option<i64>>,
}

impl Entry<'_> {
    /// Does the guest agent accept it at `now`, with `margin` seconds to spare?
    pub fn valid_for(&self, now: i64, margin: i64) -> bool {
        match self.expire {
            None => true,
            Some(None) => false,
            Some(Some(t)) => t > now + margin,
        }
    }
}

pub fn parse_line(line: &str) -> Option<Entry<'_>> {
    let (user, rest) = line.trim().split_once(':')?;
    if user.is_empty() || user.contains(char::is_whitespace) {
        return None;
    }
    let mut f = rest.split_whitespace();
    let key_type = f.next()?;
    let blob = f.next()?;
    let comment: Vec<&str> = f.collect();
    let expire = match comment.first() {
        Some(&"google-ssh") => {
            let json = comment[1..].join(" ");
            let exp = serde_json::from_str::<serde_json::Value>(&json)
                .ok()
                .and_then(|v| v.get("expireOn")?.as_str().and_then(timefmt::parse));
            Some(exp)
        }
        _ => None,
    };
    Some(Entry {
        user,
        key_type,
        blob,
        expire,
    })
}

/// The line we publish for `user` and `key`, expiring at `expire` (Unix s).
pub fn entry_line(user: &str, key: &PublicKeyInfo, expire: Option<i64>) -> String {
    match expire {
        Some(t) => format!(
            "{user}:{} google-ssh {{\"userName\":\"{user}\",\"expireOn\":\"{}\"}}",
            key.type_blob(),
            timefmt::format_plus0000(t)
        ),
        None => {
            let c = key.comment.trim();
            if c.is_empty() || c.starts_with("google-ssh") || c.contains(['\n', '\r']) {
                format!("{user}:{}", key.type_blob())
            } else {
                format!("{user}:{} {c}", key.type_blob())
            }
        }
    }
}

/// Is there an entry for (user, type, blob) valid for `margin` more seconds
/// in any of `values` (the `ssh-keys` and legacy `sshKeys` of one level)?
pub fn has_valid(values: &[&str], user: &str, key: &PublicKeyInfo, now: i64, margin: i64) -> bool {
    values.iter().flat_map(|v| v.lines()).any(|l| {
        parse_line(l).is_some_and(|e| {
            e.user == user
                && e.key_type == key.algorithm
                && e.blob == key.blob
                && e.valid_for(now, margin)
        })
    })
}

/// The latest expiry among entries for (user, type, blob), if any expires.
pub fn latest_expiry(values: &[&str], user: &str, key: &PublicKeyInfo) -> Option<i64> {
    values
        .iter()
        .flat_map(|v| v.lines())
        .filter_map(parse_line)
        .filter(|e| e.user == user && e.key_type == key.algorithm && e.blob == key.blob)
        .filter_map(|e| e.expire.flatten())
        .max()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the ssh-keys value would grow to {0} bytes, over the {MAX_VALUE_BYTES}-byte limit")]
pub struct TooLarge(pub usize);

/// `value` with `line` (our entry for `user`) added: our own entries for
/// the same user, and our own expired ones for any user, are removed;
/// every other line is kept as it is. Lines are joined with `\n`.
pub fn with_entry(
    value: &str,
    user: &str,
    key: &PublicKeyInfo,
    line: &str,
    now: i64,
) -> Result<String, TooLarge> {
    let mut out: Vec<&str> = value
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| match parse_line(l) {
            Some(e) if e.blob == key.blob && e.key_type == key.algorithm => {
                e.user != user && e.valid_for(now, 0)
            }
            _ => true,
        })
        .collect();
    out.push(line);
    let v = out.join("\n");
    if v.len() > MAX_VALUE_BYTES {
        return Err(TooLarge(v.len()));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(blob: &str) -> PublicKeyInfo {
        PublicKeyInfo {
            algorithm: "ssh-ed25519".into(),
            blob: blob.into(),
            comment: "me@laptop".into(),
            fingerprint: String::new(),
        }
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn line_formats() {
        let k = key("AAAAC3");
        assert_eq!(
            entry_line("bob", &k, Some(1786000000)),
            "bob:ssh-ed25519 AAAAC3 google-ssh {\"userName\":\"bob\",\"expireOn\":\"2026-08-06T07:06:40+0000\"}"
        );
        assert_eq!(
            entry_line("bob", &k, None),
            "bob:ssh-ed25519 AAAAC3 me@laptop"
        );
        let line = entry_line("bob", &k, Some(NOW + 10));
        let e = parse_line(&line).unwrap();
        assert_eq!(e.expire, Some(Some(NOW + 10)));
        assert_eq!(
            parse_line("bob:ssh-rsa AAA google-ssh {bad")
                .unwrap()
                .expire,
            Some(None)
        );
        assert!(parse_line("ssh-rsa AAA").is_none());
        assert!(parse_line("a b:ssh-rsa AAA").is_none());
    }

    #[test]
    fn matching_and_editing() {
        let k = key("OURS");
        let other = "carol:ssh-rsa THEIRS carol@x";
        let valid = entry_line("bob", &k, Some(NOW + 86400 * 10));
        let soon = entry_line("bob", &k, Some(NOW + 60));
        let expired_other_user = entry_line("dave", &k, Some(NOW - 5));
        let expired_theirs = "erin:ssh-rsa THEIRS2 google-ssh {\"userName\":\"erin\",\"expireOn\":\"2000-01-01T00:00:00+0000\"}";
        assert!(has_valid(&[other, &valid], "bob", &k, NOW, 86400));
        assert!(
            !has_valid(&[&soon], "bob", &k, NOW, 86400),
            "renewal margin"
        );
        assert!(!has_valid(&[&valid], "alice", &k, NOW, 0), "other user");
        assert!(
            has_valid(&["", "bob:ssh-ed25519 OURS"], "bob", &k, NOW, 86400),
            "no expiry"
        );
        let value = [other, &soon, &expired_other_user, expired_theirs].join("\n");
        let new = entry_line("bob", &k, Some(NOW + 86400 * 30));
        let v = with_entry(&value, "bob", &k, &new, NOW).unwrap();
        // Our stale and expired lines go; theirs stay, even expired ones.
        assert_eq!(v, [other, expired_theirs, new.as_str()].join("\n"));
        let big = "x:ssh-rsa Y\n".repeat(MAX_VALUE_BYTES / 10);
        assert!(with_entry(&big, "bob", &k, &new, NOW).is_err());
    }
}
