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
            let k = PrivateKey::from_openssh(data.trim()).map_err(|e| KeyError::NoPublic {
                path: private.to_path_buf(),
                reason: if data.contains("BEGIN RSA PRIVATE KEY") {
                    "legacy PEM format".into()
                } else {
                    e.to_string()
                },
            })?;
            PublicKeyInfo::from_key(k.public_key())
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
