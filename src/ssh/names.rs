//! Validation of every value that reaches an ssh config line, a known-hosts
//! line or a command: instance, zone, project and user names and instance
//! ids. Anything else is refused before it can inject options.

use crate::error::{UserError, exit};

/// Compute resource names (instances, zones, regions, networks):
/// RFC 1035 labels, lower-case, at most 63 characters.
pub fn is_resource_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !s.ends_with('-')
}

/// Project ids: 6–30 characters of `[a-z0-9-]` starting with a letter, or a
/// domain-scoped id `example.com:my-project`.
pub fn is_project_id(s: &str) -> bool {
    let (domain, id) = match s.rsplit_once(':') {
        Some((d, i)) => (Some(d), i),
        None => (None, s),
    };
    let id_ok = (6..=30).contains(&id.len())
        && id.as_bytes()[0].is_ascii_lowercase()
        && id
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !id.ends_with('-');
    let domain_ok = domain.is_none_or(|d| {
        !d.is_empty()
            && d.len() <= 253
            && d.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
    });
    id_ok && domain_ok
}

/// POSIX user names we put into `User` lines and metadata: the portable
/// set `[A-Za-z0-9_.][A-Za-z0-9_.-]*`, at most 100 characters (OS Login
/// names can exceed 32).
pub fn is_user_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 100
        && b[0] != b'-'
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Numeric instance ids (uint64 as a decimal string).
pub fn is_instance_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|c| c.is_ascii_digit())
}

/// A project id from the user, or the one-line usage error.
pub fn require_project(p: &str) -> Result<(), UserError> {
    if is_project_id(p) {
        return Ok(());
    }
    Err(UserError::new(
        exit::USAGE,
        format!("invalid project id `{}`", p.escape_default()),
    )
    .with_fix("a project id has 6 to 30 lower-case letters, digits and hyphens"))
}

/// A user name from the user, or the one-line usage error.
pub fn require_user(u: &str) -> Result<(), UserError> {
    if is_user_name(u) {
        return Ok(());
    }
    Err(UserError::new(
        exit::USAGE,
        format!("invalid user name `{}`", u.escape_default()),
    )
    .with_fix("use letters, digits, `_`, `.` and `-` (not starting with `-`)"))
}

/// The default account name gcloud derives from an email when the local
/// login name is unusable: local part, lower-cased, non-alphanumerics → `_`,
/// `g` prefix unless it starts with a letter, at most 32 characters.
pub fn user_from_email(email: &str) -> String {
    let local = email.split('@').next().unwrap_or("");
    let mut s: String = local
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s.insert(0, 'g');
    }
    s.truncate(32);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_resource_name("vm-1"));
        assert!(is_resource_name("us-central1-a"));
        for bad in [
            "",
            "Vm",
            "1vm",
            "vm-",
            "a b",
            "vm\nHost *",
            "vm;x",
            &"a".repeat(64),
        ] {
            assert!(!is_resource_name(bad), "{bad:?}");
        }
        assert!(is_project_id("my-proj-1"));
        assert!(is_project_id("example.com:my-proj"));
        for bad in [
            "p1",
            "Proj-one",
            "proj one",
            "proj\n",
            "proj-1-",
            "x:y:zzzzzz",
        ] {
            assert!(!is_project_id(bad), "{bad:?}");
        }
        assert!(is_user_name("alice_example_com"));
        assert!(is_user_name("root"));
        for bad in ["", "-o", "a b", "a\nHost", "a:b", "a@b", "\"x\""] {
            assert!(!is_user_name(bad), "{bad:?}");
        }
        assert!(is_instance_id("1234567890123456789"));
        assert!(!is_instance_id("12a"));
    }

    #[test]
    fn email_mapping() {
        assert_eq!(user_from_email("Jane.Doe+x@example.com"), "jane_doe_x");
        assert_eq!(user_from_email("1dev@example.com"), "g1dev");
        assert_eq!(user_from_email(&format!("{}@x", "a".repeat(40))).len(), 32);
    }
}
