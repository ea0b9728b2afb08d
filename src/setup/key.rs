//! Stage 2 of setup: the key pair — the user's existing key, or a new
//! Ed25519 pair made once (under the key's lock, only if absent) — and key
//! lifetimes.

use super::{Options, discover::hostname, discover::local_user, io_error};
use crate::error::{UserError, exit};
use crate::ssh::keys::{self, KeyState, PublicKeyInfo};
use crate::timefmt::BadDuration;

/// The key pair: read, or generate (not in a dry run: None then).
pub(crate) fn ensure_key(opts: &Options) -> Result<(Option<PublicKeyInfo>, bool), UserError> {
    let state = keys::inspect(&opts.key_file)
        .map_err(|e| UserError::new(exit::OTHER, e.to_string()).with_fix(e.fix()))?;
    match state {
        KeyState::Existing(k) => Ok((Some(k), false)),
        KeyState::Missing if opts.dry_run => Ok((None, false)),
        KeyState::Missing => {
            // Under the key's lock, and looked at again: a parallel first
            // run may have made the pair while we waited.
            let _lock = crate::fsutil::FileLock::acquire(&opts.key_file)
                .map_err(|e| io_error(&opts.key_file, e))?;
            if let KeyState::Existing(k) = keys::inspect(&opts.key_file)
                .map_err(|e| UserError::new(exit::OTHER, e.to_string()).with_fix(e.fix()))?
            {
                return Ok((Some(k), false));
            }
            let comment = format!(
                "{}@{}",
                local_user().unwrap_or_else(|| "iap-ssh".into()),
                hostname()
            );
            let k = keys::generate(&opts.key_file, &comment)
                .map_err(|e| UserError::new(exit::OTHER, e.to_string()).with_fix(e.fix()))?;
            Ok((Some(k), true))
        }
    }
}

/// Parses a lifetime: `never` (or `0`), or a number of days, or a number
/// with `s`, `m`, `h`, `d` or `w`.
pub fn parse_ttl(s: &str) -> Result<Option<u64>, String> {
    if s.trim() == "never" {
        return Ok(None);
    }
    match crate::timefmt::duration_secs(s, 86_400) {
        Ok(secs) => Ok(Some(secs).filter(|v| *v > 0)),
        Err(BadDuration::NotANumber) => Err(format!(
            "`{}` is not a duration like 30d, 12h or never",
            s.trim()
        )),
        Err(BadDuration::UnknownUnit(u)) => Err(format!(
            "`{}`: unknown unit `{u}` (use s, m, h, d or w)",
            s.trim()
        )),
    }
}

/// Longest key lifetime (100 years): more would overflow the expiry
/// timestamp into the past.
pub const MAX_TTL: u64 = crate::timefmt::MAX_DURATION_SECS;

/// The user's own security key beside `key_file` (`id_ed25519_sk`, then
/// `id_ecdsa_sk`, as ssh-keygen names them): its private file, when it
/// and its `.pub` (an `sk-` key) are there.
pub fn find_security_key(key_file: &std::path::Path) -> Option<std::path::PathBuf> {
    let dir = key_file.parent()?;
    ["id_ed25519_sk", "id_ecdsa_sk"].iter().find_map(|n| {
        let p = dir.join(n);
        match crate::ssh::keys::inspect(&p) {
            Ok(crate::ssh::keys::KeyState::Existing(k)) if k.is_security_key() => Some(p),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl() {
        assert_eq!(parse_ttl("never"), Ok(None));
        assert_eq!(parse_ttl("30d"), Ok(Some(30 * 86400)));
        assert_eq!(parse_ttl("12h"), Ok(Some(43200)));
        assert_eq!(parse_ttl("90"), Ok(Some(90 * 86400)));
        assert!(parse_ttl("3x").is_err());
        assert_eq!(
            parse_ttl("99999999999999999999999d"),
            Err("`99999999999999999999999d` is not a duration like 30d, 12h or never".into())
        );
        assert_eq!(parse_ttl("9999999999999d"), Ok(Some(MAX_TTL)));
        assert_eq!(parse_ttl("200y").ok(), None, "unknown unit");
        assert!(parse_ttl("d").is_err());
    }
}
