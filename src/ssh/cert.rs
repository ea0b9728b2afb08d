//! OS Login certificates on disk, pure: where gcloud keeps them
//! (`~/.ssh/google_compute_engine_cert/{project}_{zone}_{instanceId}-cert.pub`)
//! and whether one needs renewing.

use std::path::{Path, PathBuf};

/// The certificate file for a VM, under `ssh_dir`.
pub fn path(ssh_dir: &Path, project: &str, zone: &str, instance_id: &str) -> PathBuf {
    ssh_dir
        .join("google_compute_engine_cert")
        .join(format!("{project}_{zone}_{instance_id}-cert.pub"))
}

/// Renew when less than this much of a certificate's validity is left
/// (or a quarter of its lifetime, if that is less).
pub const MARGIN_SECS: u64 = 60;

/// `text` as an OpenSSH certificate of the public key `key_blob`
/// (base64), if it is one.
fn cert_of(text: &str, key_blob: &str) -> Option<ssh_key::Certificate> {
    let c = ssh_key::Certificate::from_openssh(text.trim()).ok()?;
    let k = ssh_key::PublicKey::new(c.public_key().clone(), "")
        .to_openssh()
        .ok()?;
    (k.split_whitespace().nth(1) == Some(key_blob)).then_some(c)
}

/// Is `text` one OpenSSH certificate line, of the key `key_blob`?
pub fn is_cert_of(text: &str, key_blob: &str) -> bool {
    !text.trim().contains('\n') && cert_of(text, key_blob).is_some()
}

/// Is `text` a certificate for the public key `key_blob` (base64) that is
/// valid at `now` and stays valid past the renewal margin?
pub fn still_good(text: &str, key_blob: &str, now: u64) -> bool {
    let Some(c) = cert_of(text, key_blob) else {
        return false;
    };
    let (after, before) = (c.valid_after(), c.valid_before());
    let lifetime = before.saturating_sub(after);
    let margin = MARGIN_SECS.min(lifetime / 4);
    after <= now && now.saturating_add(margin) < before
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(valid: &str) -> (String, String) {
        let d = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let ok = std::process::Command::new("ssh-keygen")
                .args(args)
                .current_dir(d.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "{args:?}");
        };
        run(&["-q", "-t", "ed25519", "-N", "", "-f", "ca"]);
        run(&["-q", "-t", "ed25519", "-N", "", "-f", "k"]);
        run(&[
            "-q", "-s", "ca", "-I", "id", "-n", "alice", "-V", valid, "k.pub",
        ]);
        let pubkey = std::fs::read_to_string(d.path().join("k.pub")).unwrap();
        let blob = pubkey.split_whitespace().nth(1).unwrap().to_string();
        (
            std::fs::read_to_string(d.path().join("k-cert.pub")).unwrap(),
            blob,
        )
    }

    #[test]
    fn validity_and_key() {
        let now = crate::timefmt::unix_now();
        let (c, blob) = cert("-5m:+1h");
        assert!(still_good(&c, &blob, now));
        assert!(
            !still_good(&c, "AAAAother", now),
            "another key's certificate"
        );
        assert!(!still_good(&c, &blob, now + 3600 - 30), "inside the margin");
        let (c, blob) = cert("-2h:-1h");
        assert!(!still_good(&c, &blob, now), "expired");
        assert!(!still_good("garbage", &blob, now));
        assert!(is_cert_of(&c, &blob) && !is_cert_of(&c, "AAAAx") && !is_cert_of("a\nb", &blob));
        assert_eq!(
            path(Path::new("/h/.ssh"), "p", "z", "1"),
            PathBuf::from("/h/.ssh/google_compute_engine_cert/p_z_1-cert.pub")
        );
    }
}
