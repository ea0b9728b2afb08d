//! The user's SSH key pair: reuse `~/.ssh/google_compute_engine` (gcloud's
//! key, any type, passphrase or not: only the public half is needed here,
//! ssh or ssh-agent unlocks the private half), or generate an Ed25519 pair
//! with ssh-key: private 0600, `.pub` beside it.

use std::path::{Path, PathBuf};

use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{public} exists but its private key {private} does not")]
    MissingPrivate { private: PathBuf, public: PathBuf },
    #[error("cannot derive the public key from {path} ({reason})")]
    NoPublic { path: PathBuf, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

impl KeyError {
    pub fn fix(&self) -> String {
        match self {
            KeyError::Unreadable { .. } => {
                "fix or remove the key files (a new pair is generated when both are absent), or pass --key-file".into()
            }
            KeyError::MissingPrivate { private, public } => format!(
                "restore {}, or remove {} to generate a new pair",
                private.display(),
                public.display()
            ),
            KeyError::NoPublic { path, .. } => format!(
                "write the public key beside it: ssh-keygen -y -f {0} > {0}.pub",
                path.display()
            ),
            KeyError::Write { .. } => "check the permissions of the directory, or pass --key-file".into(),
        }
    }
}

/// A public key as published: algorithm, base64 blob and comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyInfo {
    pub algorithm: String,
    pub blob: String,
    pub comment: String,
    /// `SHA256:…`, as `ssh-keygen -l` shows it.
    pub fingerprint: String,
}

impl PublicKeyInfo {
    fn from_key(k: &PublicKey) -> Result<PublicKeyInfo, String> {
        let line = k.to_openssh().map_err(|e| e.to_string())?;
        let mut f = line.split_whitespace();
        let (Some(a), Some(b)) = (f.next(), f.next()) else {
            return Err("empty public key".into());
        };
        Ok(PublicKeyInfo {
            algorithm: a.to_string(),
            blob: b.to_string(),
            comment: k.comment().to_string(),
            fingerprint: k.fingerprint(HashAlg::Sha256).to_string(),
        })
    }

    /// `TYPE BASE64` (no comment).
    pub fn type_blob(&self) -> String {
        format!("{} {}", self.algorithm, self.blob)
    }

    /// A FIDO security-key type (`sk-ssh-ed25519@openssh.com`,
    /// `sk-ecdsa-sha2-nistp256@openssh.com`): the private half lives on a
    /// hardware token.
    pub fn is_security_key(&self) -> bool {
        self.algorithm.starts_with("sk-")
    }
}

/// The private key path and what we know about the pair.
#[derive(Debug, Clone)]
pub enum KeyState {
    Existing(PublicKeyInfo),
    /// Neither file exists: a new pair is needed.
    Missing,
}

pub fn public_path(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Looks at the pair without changing anything.
pub fn inspect(private: &Path) -> Result<KeyState, KeyError> {
    let public = public_path(private);
    let has_private = private.exists();
    match std::fs::read_to_string(&public) {
        Ok(text) => {
            if !has_private {
                return Err(KeyError::MissingPrivate {
                    private: private.to_path_buf(),
                    public,
                });
            }
            let first = text.lines().next().unwrap_or("").trim();
            let k = PublicKey::from_openssh(first).map_err(|e| KeyError::Unreadable {
                path: public.clone(),
                reason: format!("not an OpenSSH public key ({e})"),
            })?;
            PublicKeyInfo::from_key(&k)
                .map(KeyState::Existing)
                .map_err(|reason| KeyError::Unreadable {
                    path: public,
                    reason,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !has_private {
                return Ok(KeyState::Missing);
            }
            // Private key without .pub: the OpenSSH format carries the
            // public half in clear, even when the key is encrypted.
            let data = std::fs::read_to_string(private).map_err(|e| KeyError::Unreadable {
                path: private.to_path_buf(),
                reason: e.to_string(),
            })?;
            let k = public_of_private(&data).map_err(|e| KeyError::NoPublic {
                path: private.to_path_buf(),
                reason: if data.contains("BEGIN RSA PRIVATE KEY") {
                    "legacy PEM format".into()
                } else {
                    e
                },
            })?;
            PublicKeyInfo::from_key(&k)
                .map(KeyState::Existing)
                .map_err(|reason| KeyError::NoPublic {
                    path: private.to_path_buf(),
                    reason,
                })
        }
        Err(e) => Err(KeyError::Unreadable {
            path: public,
            reason: e.to_string(),
        }),
    }
}

/// The public key stored in clear at the head of an OpenSSH private key
/// file (`openssh-key-v1`: cipher, KDF, KDF options, key count, then the
/// first public key), encrypted or not, of any type. Reading only this
/// part spares parsing the private half (ssh-key 0.6 rejects some valid
/// P-521 private keys).
fn public_of_private(pem: &str) -> Result<PublicKey, String> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN OPENSSH PRIVATE KEY-----")
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("not an OpenSSH private key ({e})"))?;
    let mut rest = raw
        .strip_prefix(b"openssh-key-v1\0".as_slice())
        .ok_or("not an OpenSSH private key")?;
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        let (head, tail) = rest.split_at_checked(n).ok_or("truncated key file")?;
        *rest = tail;
        Ok(head)
    }
    fn u32_of(b: &[u8]) -> usize {
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
    }
    fn string<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], String> {
        let len = u32_of(take(rest, 4)?);
        take(rest, len)
    }
    // cipher, kdf name, kdf options, then the key count.
    for _ in 0..3 {
        string(&mut rest)?;
    }
    if u32_of(take(&mut rest, 4)?) < 1 {
        return Err("the key file holds no key".into());
    }
    let blob = string(&mut rest)?;
    PublicKey::from_bytes(blob).map_err(|e| e.to_string())
}

/// Generates an Ed25519 pair at `private` (0600) and `private.pub` (0644);
/// creates the directory 0700 when missing. Never overwrites.
pub fn generate(private: &Path, comment: &str) -> Result<PublicKeyInfo, KeyError> {
    let werr = |path: &Path, e: &dyn std::fmt::Display| KeyError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    if let Some(dir) = private.parent()
        && !dir.exists()
    {
        crate::fsutil::create_private_dir(dir).map_err(|e| werr(dir, &e))?;
    }
    let public = public_path(private);
    let appeared = || werr(private, &"a key file appeared meanwhile; run again");
    if private.exists() || public.exists() {
        return Err(appeared());
    }
    let mut key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519)
        .map_err(|e| werr(private, &e))?;
    key.set_comment(comment);
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| werr(private, &e))?;
    let line = key
        .public_key()
        .to_openssh()
        .map_err(|e| werr(&public, &e))?;
    // Each file appears whole and only if absent (another program may be
    // creating the pair too): never a private key and a .pub that differ.
    let made = crate::fsutil::create_new_atomic(private, pem.as_bytes(), 0o600)
        .map_err(|e| werr(private, &e))?;
    if !made {
        return Err(appeared());
    }
    match crate::fsutil::create_new_atomic(&public, format!("{line}\n").as_bytes(), 0o644) {
        Ok(true) => {}
        other => {
            // Ours is the private half just made: take it back.
            let _ = std::fs::remove_file(private);
            return Err(match other {
                Err(e) => werr(&public, &e),
                _ => appeared(),
            });
        }
    }
    PublicKeyInfo::from_key(key.public_key()).map_err(|e| werr(&public, &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generate_then_inspect() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/.ssh/google_compute_engine");
        assert!(matches!(inspect(&p).unwrap(), KeyState::Missing));
        let k = generate(&p, "me@host").unwrap();
        assert_eq!(k.algorithm, "ssh-ed25519");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o600);
        assert_eq!(mode(p.parent().unwrap()), 0o700);
        match inspect(&p).unwrap() {
            KeyState::Existing(k2) => assert_eq!(k2, k),
            KeyState::Missing => panic!("missing"),
        }
        assert!(generate(&p, "x").is_err(), "never overwrites");
        // Private only: the public half is recovered.
        std::fs::remove_file(public_path(&p)).unwrap();
        match inspect(&p).unwrap() {
            KeyState::Existing(k2) => assert_eq!(k2.blob, k.blob),
            KeyState::Missing => panic!("missing"),
        }
        // Public only: refused with a fix.
        let q = d.path().join("only");
        std::fs::write(public_path(&q), format!("{} x\n", k.type_blob())).unwrap();
        assert!(matches!(inspect(&q), Err(KeyError::MissingPrivate { .. })));
    }

    #[test]
    fn ecdsa_and_security_keys_are_read() {
        let d = tempfile::tempdir().unwrap();
        for bits in ["256", "384", "521"] {
            let p = d.path().join(format!("ecdsa{bits}"));
            let st = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ecdsa", "-b", bits, "-N", "", "-f"])
                .arg(&p)
                .status()
                .unwrap();
            assert!(st.success());
            let line = std::fs::read_to_string(public_path(&p)).unwrap();
            let KeyState::Existing(k) = inspect(&p).unwrap() else {
                panic!("missing")
            };
            assert_eq!(k.algorithm, format!("ecdsa-sha2-nistp{bits}"));
            assert_eq!(k.blob, line.split_whitespace().nth(1).unwrap());
            assert!(!k.is_security_key());
            // Without .pub: from the private key.
            std::fs::remove_file(public_path(&p)).unwrap();
            let KeyState::Existing(k2) = inspect(&p).unwrap() else {
                panic!("missing")
            };
            assert_eq!(k2.blob, k.blob);
        }
        // Security keys (no hardware here: a public half made by hand, in
        // the wire format OpenSSH uses, beside a stub private file).
        use base64::Engine;
        let wire = |parts: &[&[u8]]| {
            let mut v = vec![];
            for p in parts {
                v.extend_from_slice(&(p.len() as u32).to_be_bytes());
                v.extend_from_slice(p);
            }
            base64::engine::general_purpose::STANDARD.encode(v)
        };
        let mut point = vec![4u8];
        // The P-256 base point, a valid curve point.
        point.extend(hexbytes(
            "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
        ));
        point.extend(hexbytes(
            "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
        ));
        for (ty, blob) in [
            (
                "sk-ssh-ed25519@openssh.com",
                wire(&[b"sk-ssh-ed25519@openssh.com", &[7u8; 32], b"ssh:"]),
            ),
            (
                "sk-ecdsa-sha2-nistp256@openssh.com",
                wire(&[
                    b"sk-ecdsa-sha2-nistp256@openssh.com",
                    b"nistp256",
                    &point,
                    b"ssh:",
                ]),
            ),
        ] {
            let p = d.path().join(ty);
            std::fs::write(&p, "stub private key handle\n").unwrap();
            std::fs::write(public_path(&p), format!("{ty} {blob} me@host\n")).unwrap();
            let KeyState::Existing(k) = inspect(&p).unwrap() else {
                panic!("missing")
            };
            assert_eq!(k.algorithm, ty);
            assert_eq!(k.blob, blob);
            assert!(k.is_security_key());
        }
    }

    fn hexbytes(h: &str) -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn passphrase_key_without_pub_still_yields_its_public_half() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("enc");
        let st = std::process::Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "secret phrase",
                "-C",
                "c",
                "-f",
            ])
            .arg(&p)
            .status()
            .unwrap();
        assert!(st.success());
        let line = std::fs::read_to_string(public_path(&p)).unwrap();
        std::fs::remove_file(public_path(&p)).unwrap();
        match inspect(&p).unwrap() {
            KeyState::Existing(k) => assert_eq!(k.blob, line.split_whitespace().nth(1).unwrap()),
            KeyState::Missing => panic!("missing"),
        }
        // A legacy PEM key without .pub: a clear fix, not a Base64 error.
        let pem = d.path().join("pem");
        let st = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "rsa", "-b", "1024", "-m", "PEM", "-N", "", "-f"])
            .arg(&pem)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::remove_file(public_path(&pem)).unwrap();
        let e = inspect(&pem).unwrap_err();
        assert!(e.to_string().contains("legacy PEM format"), "{e}");
        assert!(e.fix().contains("ssh-keygen -y -f"));
    }
}
