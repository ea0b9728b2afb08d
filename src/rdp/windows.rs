//! Windows passwords through the guest agent's `windows-keys` protocol
//! (admin-windows-putty §3), pure: the default account name, the request
//! line, gcloud's pruning of the metadata value, finding the agent's reply
//! on serial port 4, and the RSA-2048 key pair whose OAEP ciphertext the
//! agent sends back. The command that uses it is `iap-ssh rdp`.

use base64::Engine;
use rsa::traits::PublicKeyParts;
use serde_json::Value;

/// gcloud's `MAX_METADATA_VALUE_SIZE_IN_BYTES`.
pub const MAX_VALUE: usize = 262_144;

/// How long a request stays valid for the agent (gcloud: 300 s).
pub const REQUEST_TTL: i64 = 300;

/// Windows' limit on an account name.
pub const MAX_USER: usize = 20;

/// The account name gcloud derives from an email (`gaia`): the part
/// before `@`, lower-cased, anything but letters and digits as `_`, a `g`
/// in front unless it starts with a letter; cut to Windows' 20 characters
/// (gcloud cuts at 32, which Windows refuses).
pub fn default_user(email: &str) -> String {
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    let mut u: String = local
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !u.starts_with(|c: char| c.is_ascii_alphabetic()) {
        u.insert(0, 'g');
    }
    u.truncate(MAX_USER);
    u
}

/// Is `u` a Windows account name we may send (1-20 characters, none of
/// `"/\[]:;|=,+*?<>@` or controls, not ending with `.`)?
pub fn valid_user(u: &str) -> bool {
    !u.is_empty()
        && u.chars().count() <= MAX_USER
        && !u.ends_with('.')
        && u.chars()
            .all(|c| !c.is_control() && !"\"/\\[]:;|=,+*?<>@".contains(c) && c != ' ')
}

/// A fresh RSA-2048 key pair for one request.
pub struct KeyPair {
    key: rsa::RsaPrivateKey,
    /// Big-endian modulus without a leading zero, base64.
    pub modulus: String,
    pub exponent: String,
}

impl KeyPair {
    pub fn generate() -> Result<KeyPair, String> {
        let key =
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|e| e.to_string())?;
        let e = base64::engine::general_purpose::STANDARD;
        let modulus = e.encode(key.n().to_bytes_be());
        let exponent = e.encode(key.e().to_bytes_be());
        Ok(KeyPair {
            key,
            modulus,
            exponent,
        })
    }

    /// Decrypts the agent's `encryptedPassword`: OAEP with the hash the
    /// reply echoes (`sha256`, `sha512`), SHA-1 when it echoes none.
    pub fn decrypt(&self, b64: &str, hash: Option<&str>) -> Result<String, String> {
        let ct = base64::engine::general_purpose::STANDARD
            .decode(b64.replace("\\/", "/"))
            .map_err(|e| format!("the encrypted password is not base64 ({e})"))?;
        let plain = match hash {
            Some("sha256") => self.key.decrypt(rsa::Oaep::new::<rsa::sha2::Sha256>(), &ct),
            Some("sha512") => self.key.decrypt(rsa::Oaep::new::<rsa::sha2::Sha512>(), &ct),
            None | Some("sha1") => self.key.decrypt(rsa::Oaep::new::<sha1::Sha1>(), &ct),
            Some(h) => return Err(format!("the agent used an unknown hash `{h}`")),
        }
        .map_err(|e| format!("cannot decrypt the password ({e})"))?;
        String::from_utf8(plain).map_err(|_| "the password is not UTF-8".into())
    }
}

/// The `windows-keys` line asking for `user`'s password, keys sorted as
/// gcloud's `json.dumps(sort_keys=True)`; `hashFunction` sha256 (as IAP
/// Desktop asks; the reply says which hash was used).
pub fn request_line(user: &str, email: &str, expire_unix: i64, kp: &KeyPair) -> String {
    let mut m = std::collections::BTreeMap::new();
    m.insert("email", email.to_string());
    m.insert("expireOn", crate::timefmt::rfc3339(expire_unix));
    m.insert("exponent", kp.exponent.clone());
    m.insert("hashFunction", "sha256".into());
    m.insert("modulus", kp.modulus.clone());
    m.insert("userName", user.to_string());
    serde_json::to_string(&m).unwrap_or_default()
}

fn expire_of(line: &str) -> Option<i64> {
    let v: Value = serde_json::from_str(line).ok()?;
    crate::timefmt::parse(v.get("expireOn")?.as_str()?)
}

/// gcloud's `_UpdateWindowsKeysValue`: the old lines (empty ones dropped)
/// and `new`, then from newest to oldest expired entries dropped (lines
/// that do not parse are kept) and older ones once the value would exceed
/// [`MAX_VALUE`].
pub fn updated_value(old: &str, new: &str, now: i64) -> String {
    let mut lines: Vec<&str> = old
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.push(new);
    let mut kept = Vec::new();
    let mut size = 0;
    for l in lines.into_iter().rev() {
        if expire_of(l).is_some_and(|t| t <= now) {
            continue;
        }
        size += l.len() + 1;
        if size > MAX_VALUE {
            break;
        }
        kept.push(l);
    }
    kept.reverse();
    kept.join("\n")
}

/// What the agent answered to the request with `modulus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Password {
        encrypted: String,
        hash: Option<String>,
    },
    Error(String),
}

/// The agent's answer to our request among complete serial lines (newest
/// first; lines that are not JSON are console noise). Old agents escaped
/// `/` as `\/` in the echoed modulus.
pub fn find_reply(lines: &str, modulus: &str) -> Option<Reply> {
    for l in lines.lines().rev() {
        let Ok(v) = serde_json::from_str::<Value>(l.trim()) else {
            continue;
        };
        let m = v["modulus"].as_str().map(|m| m.replace("\\/", "/"));
        if m.as_deref() != Some(modulus) {
            continue;
        }
        if let Some(e) = v["errorMessage"].as_str().filter(|e| !e.is_empty()) {
            return Some(Reply::Error(e.to_string()));
        }
        if let Some(p) = v["encryptedPassword"].as_str().filter(|p| !p.is_empty()) {
            return Some(Reply::Password {
                encrypted: p.to_string(),
                hash: v["hashFunction"].as_str().map(str::to_string),
            });
        }
    }
    None
}

/// An `.rdp` file for a client connecting to `localhost:port` as `user`:
/// asks for the password (never stored), does not insist on a server
/// certificate for `localhost` (it names the VM), NLA on; CRLF lines.
pub fn rdp_file(port: u16, user: &str) -> String {
    [
        format!("full address:s:localhost:{port}"),
        format!("username:s:{user}"),
        "prompt for credentials:i:1".into(),
        "authentication level:i:0".into(),
        "enablecredsspsupport:i:1".into(),
        "screen mode id:i:1".into(),
    ]
    .iter()
    .map(|l| format!("{l}\r\n"))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_users_as_gcloud_maps_them_within_windows_limit() {
        assert_eq!(default_user("Alice.Smith@example.com"), "alice_smith");
        assert_eq!(default_user("1st-user@example.com"), "g1st_user");
        assert_eq!(
            default_user("a.very.long.name.indeed@example.com"),
            "a_very_long_name_ind"
        );
        assert!(valid_user("alice_smith"));
        assert!(!valid_user("a_very_long_name_indeed"));
        assert!(!valid_user("bad/name") && !valid_user("dot.") && !valid_user(""));
    }

    #[test]
    fn round_trip_with_each_hash_the_agent_may_use() {
        let kp = KeyPair::generate().unwrap();
        let n = base64::engine::general_purpose::STANDARD
            .decode(&kp.modulus)
            .unwrap();
        assert_eq!(n.len(), 256, "2048-bit modulus, no leading zero");
        assert_eq!(kp.exponent, "AQAB");
        let public = rsa::RsaPublicKey::from(&kp.key);
        let mut rng = rsa::rand_core::OsRng;
        let e = base64::engine::general_purpose::STANDARD;
        let ct = public
            .encrypt(&mut rng, rsa::Oaep::new::<sha1::Sha1>(), b"S3cret!pw")
            .unwrap();
        assert_eq!(kp.decrypt(&e.encode(&ct), None).unwrap(), "S3cret!pw");
        let ct = public
            .encrypt(
                &mut rng,
                rsa::Oaep::new::<rsa::sha2::Sha256>(),
                b"S3cret!pw",
            )
            .unwrap();
        assert_eq!(
            kp.decrypt(&e.encode(&ct), Some("sha256")).unwrap(),
            "S3cret!pw"
        );
        assert!(
            kp.decrypt(&e.encode(&ct), None).is_err(),
            "the hash must match"
        );

        let line = request_line("alice", "alice@example.com", 1_798_761_600, &kp);
        assert!(line.starts_with("{\"email\":\"alice@example.com\",\"expireOn\":\"2027-01-01T00:00:00Z\",\"exponent\":\"AQAB\",\"hashFunction\":\"sha256\",\"modulus\":\""), "{line}");
        assert!(line.ends_with("\",\"userName\":\"alice\"}"), "{line}");
    }

    #[test]
    fn pruning_keeps_live_and_unparsable_entries() {
        let old = "{\"expireOn\":\"2000-01-01T00:00:00Z\"}\n\nnot json\n{\"expireOn\":\"2999-01-01T00:00:00Z\"}\n";
        assert_eq!(
            updated_value(old, "NEW", 1_000_000_000),
            "not json\n{\"expireOn\":\"2999-01-01T00:00:00Z\"}\nNEW"
        );
        let big = "x".repeat(200_000);
        assert_eq!(
            updated_value(&big, &"y".repeat(100_000), 0),
            "y".repeat(100_000)
        );
    }

    #[test]
    fn replies_are_matched_by_modulus_newest_first() {
        let buf = "boot noise\n{\"encryptedPassword\":\"OLD\",\"modulus\":\"M\"}\n{\"errorMessage\":\"nope\",\"modulus\":\"other\"}\n{\"encryptedPassword\":\"NEW\",\"modulus\":\"M\",\"hashFunction\":\"sha256\"}\n";
        assert_eq!(
            find_reply(buf, "M"),
            Some(Reply::Password {
                encrypted: "NEW".into(),
                hash: Some("sha256".into())
            })
        );
        assert_eq!(find_reply(buf, "other"), Some(Reply::Error("nope".into())));
        assert_eq!(find_reply(buf, "absent"), None);
        assert_eq!(
            find_reply(
                "{\"encryptedPassword\":\"P\",\"modulus\":\"a\\\\/b\"}",
                "a/b"
            ),
            Some(Reply::Password {
                encrypted: "P".into(),
                hash: None
            })
        );
    }

    #[test]
    fn rdp_files_never_hold_a_password() {
        let f = rdp_file(53389, "alice");
        assert!(f.starts_with("full address:s:localhost:53389\r\nusername:s:alice\r\nprompt for credentials:i:1\r\n"), "{f}");
        assert!(!f.contains("password"));
    }
}
