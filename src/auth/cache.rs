//! On-disk token cache: one small JSON file per credential, mode 0600 in a
//! 0700 directory, written atomically (temporary file + rename).

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{AccessToken, Token};

#[derive(Serialize, Deserialize)]
struct Entry {
    access_token: String,
    expires_at: u64,
}

fn file_name(key: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let hex: String = d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{hex}.json")
}

/// A cached entry further in the future than this is not ours (tokens live
/// an hour): it is ignored, as is anything unreadable.
const MAX_AHEAD: Duration = Duration::from_secs(2 * 86_400);

pub fn load(dir: &Path, key: &str) -> Option<Token> {
    let data = fs::read(dir.join(file_name(key))).ok()?;
    let e: Entry = serde_json::from_slice(&data).ok()?;
    let expires_at = UNIX_EPOCH.checked_add(Duration::from_secs(e.expires_at))?;
    let limit = SystemTime::now().checked_add(MAX_AHEAD)?;
    if expires_at > limit || e.access_token.is_empty() {
        tracing::debug!("ignoring a token cache entry that cannot be ours");
        return None;
    }
    Some(Token {
        access: AccessToken::new(e.access_token),
        expires_at: Some(expires_at),
    })
}

pub fn store(dir: &Path, key: &str, t: &Token) -> std::io::Result<()> {
    let Some(exp) = t.expires_at else {
        return Ok(());
    };
    create_private_dir(dir)?;
    let e = Entry {
        access_token: t.access.secret().to_string(),
        expires_at: exp
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    let data = serde_json::to_vec(&e).map_err(std::io::Error::other)?;
    crate::fsutil::write_private_atomic(&dir.join(file_name(key)), &data)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    crate::fsutil::create_private_dir(dir)?;
    // Ensure our own leaf directory is private even if it pre-existed.
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trip_is_private() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a/b");
        let t = Token {
            access: AccessToken::new("ya29.secret".into()),
            expires_at: Some(SystemTime::now() + Duration::from_secs(3600)),
        };
        store(&dir, "k1", &t).unwrap();
        let got = load(&dir, "k1").unwrap();
        assert_eq!(got.access, t.access);
        assert!(load(&dir, "k2").is_none());
        let f = fs::read_dir(&dir).unwrap().next().unwrap().unwrap();
        assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn tampered_entries_are_ignored_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        let t = Token {
            access: AccessToken::new("ya29.secret".into()),
            expires_at: Some(SystemTime::now() + Duration::from_secs(3600)),
        };
        store(d.path(), "k", &t).unwrap();
        let f = d.path().join(file_name("k"));
        for bad in [
            format!(r#"{{"access_token":"x","expires_at":{}}}"#, u64::MAX),
            r#"{"access_token":"x","expires_at":99999999999}"#.to_string(),
            r#"{"access_token":"","expires_at":1}"#.to_string(),
            r#"{"access_token":"x","expires_at":-1}"#.to_string(),
            "not json".to_string(),
        ] {
            fs::write(&f, bad.as_bytes()).unwrap();
            assert!(load(d.path(), "k").is_none(), "{bad}");
        }
    }
}
