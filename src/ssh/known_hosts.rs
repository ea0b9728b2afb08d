//! `~/.ssh/google_compute_known_hosts`, the file and `compute.<id>` alias
//! scheme gcloud uses. Pure: alias lookup by exact token (gcloud's prefix
//! test confuses `compute.12` with `compute.123`) and appending keys for an
//! alias that has none yet. Existing lines are never rewritten: a changed
//! host key is for ssh to report, not for us to paper over.

use base64::Engine;

/// Host key types accepted from guest attributes.
pub const SUPPORTED: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
];

/// The known-hosts alias of an instance.
pub fn alias(instance_id: &str) -> String {
    format!("compute.{instance_id}")
}

/// A host key from the API, checked: a supported type, and a value that is
/// canonical base64 (cut at the first whitespace, like gcloud).
pub fn clean_key(key_type: &str, value: &str) -> Option<(String, String)> {
    if !SUPPORTED.contains(&key_type) {
        return None;
    }
    let v = value.split_whitespace().next()?;
    let e = base64::engine::general_purpose::STANDARD;
    let raw = e.decode(v).ok()?;
    (e.encode(&raw) == v && !raw.is_empty()).then(|| (key_type.to_string(), v.to_string()))
}

/// Every host name the lines list (comments and `@` markers skipped).
pub fn aliases(text: &str) -> std::collections::HashSet<&str> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with('#') && !l.starts_with('@'))
        .filter_map(|l| l.split_whitespace().next())
        .flat_map(|hosts| hosts.split(','))
        .collect()
}

/// The key blobs (decoded) of the lines that name `alias` in their host
/// list (comments and `@` markers skipped, as [`aliases`] does).
pub fn keys_of(text: &str, alias: &str) -> Vec<Vec<u8>> {
    let e = base64::engine::general_purpose::STANDARD;
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with('#') && !l.starts_with('@'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let hosts = f.next()?;
            let _type = f.next()?;
            let blob = f.next()?;
            hosts
                .split(',')
                .any(|h| h == alias)
                .then(|| e.decode(blob).ok())?
        })
        .collect()
}

/// Does any line name `alias` exactly in its host list?
pub fn has_alias(text: &str, alias: &str) -> bool {
    aliases(text).contains(alias)
}

/// `text` with lines `ALIAS TYPE KEY` appended for `keys` (sorted, no
/// duplicates), or None when the alias is already known or `keys` is empty.
pub fn merge(text: &str, alias: &str, keys: &[(String, String)]) -> Option<String> {
    if keys.is_empty() || has_alias(text, alias) {
        return None;
    }
    let mut out = text.to_string();
    append(&mut out, alias, keys);
    Some(out)
}

/// Appends lines `ALIAS TYPE KEY` for `keys` (sorted, no duplicates) to
/// `out`; the caller has checked that the alias is new.
pub fn append(out: &mut String, alias: &str, keys: &[(String, String)]) {
    let mut lines: Vec<String> = keys
        .iter()
        .map(|(t, k)| format!("{alias} {t} {k}"))
        .collect();
    lines.sort();
    lines.dedup();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_alias() {
        let t = "compute.123 ssh-ed25519 AAAA\n# compute.5 x\nfoo,compute.7 ssh-rsa B\n";
        assert!(has_alias(t, "compute.123"));
        assert!(!has_alias(t, "compute.12"));
        assert!(!has_alias(t, "compute.5"));
        assert!(has_alias(t, "compute.7"));
    }

    #[test]
    fn merging() {
        let keys = vec![
            ("ssh-rsa".to_string(), "BBBB".to_string()),
            ("ssh-ed25519".to_string(), "AAAA".to_string()),
            ("ssh-rsa".to_string(), "BBBB".to_string()),
        ];
        let out = merge("other x y", "compute.9", &keys).unwrap();
        assert_eq!(
            out,
            "other x y\ncompute.9 ssh-ed25519 AAAA\ncompute.9 ssh-rsa BBBB\n"
        );
        assert_eq!(merge(&out, "compute.9", &keys), None, "never twice");
        assert_eq!(merge("", "compute.9", &[]), None);
    }

    #[test]
    fn cleaning() {
        assert!(clean_key("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5 trailing").is_some());
        assert!(clean_key("ssh-dss", "AAAA").is_none());
        assert!(clean_key("ssh-ed25519", "not base64!").is_none());
        assert!(
            clean_key("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5\nHost *")
                .is_some_and(|(_, v)| !v.contains('\n'))
        );
    }
}
