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

/// One word for rsync's `-e`/`RSYNC_RSH` parser (rsync's `do_cmd`): words
/// split at whitespace outside quotes; `"` or `'` quote, and a quote
/// character doubled inside its own quotes stands for itself; there is no
/// backslash escape. Unchanged when safe, else double-quoted with `"`
/// doubled.
pub fn rsync_word(s: &str) -> String {
    if !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'')
    {
        return s.to_string();
    }
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A command line for rsync's `-e` (see [`rsync_word`]).
pub fn rsync_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| rsync_word(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// rsync's own splitting of an `-e` value (its `do_cmd`), for tests.
pub fn rsync_split(cmd: &str) -> Vec<String> {
    let b: Vec<char> = cmd.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < b.len() {
        if b[i].is_whitespace() {
            i += 1;
            continue;
        }
        let mut w = String::new();
        while i < b.len() {
            let c = b[i];
            match quote {
                None if c.is_whitespace() => break,
                None if c == '"' || c == '\'' => {
                    quote = Some(c);
                    i += 1;
                    continue;
                }
                Some(q) if c == q => {
                    i += 1;
                    if b.get(i) != Some(&q) {
                        quote = None;
                        continue;
                    }
                }
                _ => {}
            }
            w.push(b[i]);
            i += 1;
        }
        out.push(w);
    }
    out
}

/// A value for an ssh_config keyword: `%` doubled (ssh expands `%` tokens
/// in paths and commands), double-quoted when it has spaces. Values with
/// `"` or control characters cannot be written safely: None.
pub fn config_value(s: &str) -> Option<String> {
    config_value_then(s, "")
}

/// [`config_value`] of `s` followed by `tokens`, which are written as they
/// are (ssh `%` tokens such as `/%C`), inside the same quotes.
pub fn config_value_then(s: &str, tokens: &str) -> Option<String> {
    if s.is_empty() || s.chars().any(|c| c.is_control() || c == '"') {
        return None;
    }
    let v = format!("{}{tokens}", s.replace('%', "%%"));
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
    fn rsync_words_round_trip_through_rsyncs_parser() {
        let words = [
            "ssh",
            "-o",
            "ProxyCommand='/opt/my \"odd\" dir'\\''s/iap-ssh' proxy --zone z vm %p",
            "-i",
            "/home/a b/.ssh/k",
            "plain",
            "it's",
            "",
        ];
        let line = rsync_line(&words);
        assert_eq!(rsync_split(&line), words);
        assert_eq!(rsync_word("a\"b"), "\"a\"\"b\"");
        assert_eq!(rsync_word("/x/y"), "/x/y");
    }

    #[test]
    fn config_values() {
        assert_eq!(config_value("/home/a/.ssh/k").unwrap(), "/home/a/.ssh/k");
        assert_eq!(config_value("/home/a b/k").unwrap(), "\"/home/a b/k\"");
        assert_eq!(config_value("/x/100%").unwrap(), "/x/100%%");
        assert!(config_value("a\nHost *").is_none());
        assert!(config_value("a\"b").is_none());
        assert_eq!(
            config_value_then("/h/a b%/.ssh/iap-ssh", "/%C").unwrap(),
            "\"/h/a b%%/.ssh/iap-ssh/%C\""
        );
        assert_eq!(
            config_value_then("/h/.ssh/iap-ssh", "/%C").unwrap(),
            "/h/.ssh/iap-ssh/%C"
        );
    }
}
