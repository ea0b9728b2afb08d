//! Quoting for POSIX shells (commands printed by `--dry-run`, the
//! ProxyCommand that ssh hands to `sh -c`) and for ssh_config values.

/// Characters that never need shell quoting.
fn shell_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || "%+,-./:=@_^".contains(c)
}

/// One word for a POSIX shell: unchanged when safe, else single-quoted
/// with `'` written as `'\''`.
pub fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(shell_safe) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A command line for a POSIX shell.
pub fn shell_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_word(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A value for an ssh_config keyword: `%` doubled (ssh expands `%` tokens
/// in paths and commands), double-quoted when it has spaces. Values with
/// `"` or control characters cannot be written safely: None.
pub fn config_value(s: &str) -> Option<String> {
    if s.is_empty() || s.chars().any(|c| c.is_control() || c == '"') {
        return None;
    }
    let v = s.replace('%', "%%");
    Some(if v.contains([' ', '\t', '#', '\'']) {
        format!("\"{v}\"")
    } else {
        v
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(shell_word("abc-1.2/x"), "abc-1.2/x");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word("$(x)"), "'$(x)'");
        assert_eq!(
            shell_line(&["ssh", "-o", "ProxyCommand=a b %p"]),
            "ssh -o 'ProxyCommand=a b %p'"
        );
    }

    #[test]
    fn config_values() {
        assert_eq!(config_value("/home/a/.ssh/k").unwrap(), "/home/a/.ssh/k");
        assert_eq!(config_value("/home/a b/k").unwrap(), "\"/home/a b/k\"");
        assert_eq!(config_value("/x/100%").unwrap(), "/x/100%%");
        assert!(config_value("a\nHost *").is_none());
        assert!(config_value("a\"b").is_none());
    }
}
