//! OpenSSH's host patterns and config-line tokens, as ssh evaluates them
//! (`match.c`, `readconf.c`): `*` and `?` wildcards, `!` negation, comma
//! lists, and the splitting of a config line into words with quotes and
//! backslash escapes. Pure.

/// `match_pattern`: does `s` match `pattern` (`*` any run, `?` any one
/// character)? Case-sensitive, like ssh's.
pub fn match_pattern(s: &str, pattern: &str) -> bool {
    fn m(s: &[u8], p: &[u8]) -> bool {
        let (mut s, mut p) = (s, p);
        loop {
            match p.first() {
                None => return s.is_empty(),
                Some(b'*') => {
                    while p.first() == Some(&b'*') {
                        p = &p[1..];
                    }
                    if p.is_empty() {
                        return true;
                    }
                    return (0..=s.len()).any(|i| m(&s[i..], p));
                }
                Some(c) => {
                    let Some(sc) = s.first() else { return false };
                    if *c != b'?' && c != sc {
                        return false;
                    }
                    s = &s[1..];
                    p = &p[1..];
                }
            }
        }
    }
    m(s.as_bytes(), pattern.as_bytes())
}

/// How a pattern list judged a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMatch {
    /// A positive pattern matched and no negated one did.
    Yes,
    /// No pattern matched.
    No,
    /// A negated pattern matched (the list refuses the name).
    Negated,
}

/// `match_pattern_list`: a comma-separated list, `!` negating a pattern;
/// with `lower`, the patterns are lower-cased first (as `match_hostname`
/// does for `Match host`).
pub fn match_list(s: &str, list: &str, lower: bool) -> ListMatch {
    let mut positive = false;
    for p in list.split(',') {
        let (neg, p) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, p),
        };
        let p = if lower {
            p.to_ascii_lowercase()
        } else {
            p.to_string()
        };
        if match_pattern(s, &p) {
            if neg {
                return ListMatch::Negated;
            }
            positive = true;
        }
    }
    if positive {
        ListMatch::Yes
    } else {
        ListMatch::No
    }
}

/// A `Host` line's patterns (whitespace-separated, not comma lists): true
/// when one matches and no negated one does, as ssh decides whether the
/// block applies.
pub fn host_line_applies(name: &str, patterns: &[String]) -> bool {
    let mut hit = false;
    for p in patterns {
        match p.strip_prefix('!') {
            Some(neg) if match_pattern(name, neg) => return false,
            Some(_) => {}
            None => hit |= match_pattern(name, p),
        }
    }
    hit
}

/// A pattern that every name matches (only `*`): a catch-all default, not
/// a claim on any particular host.
pub fn is_catch_all(pattern: &str) -> bool {
    !pattern.is_empty() && pattern.bytes().all(|c| c == b'*')
}

/// Splits a config line into words the way OpenSSH 8.7+ does (`argv_split`:
/// `"` and `'` quote, `\` escapes a quote, a backslash or a space, `#`
/// starts a comment between words). Older versions only know `"`; the
/// lines we read and write are read the same way by both. None when a
/// quote is not closed.
pub fn split_words(line: &str) -> Option<Vec<String>> {
    let b: Vec<char> = line.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i] == ' ' || b[i] == '\t' {
            i += 1;
            continue;
        }
        if b[i] == '#' {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while i < b.len() {
            let c = b[i];
            if c == '\\'
                && i + 1 < b.len()
                && (matches!(b[i + 1], '\'' | '"' | '\\') || (quote.is_none() && b[i + 1] == ' '))
            {
                word.push(b[i + 1]);
                i += 2;
                continue;
            }
            match quote {
                None if c == ' ' || c == '\t' => break,
                None if c == '"' || c == '\'' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ => word.push(c),
            }
            i += 1;
        }
        if quote.is_some() {
            return None;
        }
        out.push(word);
    }
    Some(out)
}

/// A config line as (keyword in lower case, arguments); `Keyword=value`
/// is accepted like ssh does. None for blank and comment lines.
pub fn keyword_line(line: &str) -> Option<(String, Vec<String>)> {
    let t = line.trim_start();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    // The keyword ends at whitespace or `=`.
    let end = t.find([' ', '\t', '=']).unwrap_or(t.len());
    let kw = t[..end].to_ascii_lowercase();
    let rest = t[end..].trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    let args = split_words(rest).unwrap_or_default();
    Some((kw, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_like_ssh() {
        for (s, p, want) in [
            ("bastion", "bastion", true),
            ("bastion", "b*", true),
            ("bastion", "*", true),
            ("bastion", "bas?ion", true),
            ("bastion", "bas?", false),
            ("", "*", true),
            ("", "?", false),
            ("web-1", "*-*", true),
            ("web", "*.*", false),
            ("a.b.c", "*.*.c", true),
            ("Bastion", "bastion", false),
            ("abc", "a**c", true),
            ("ab", "a*?*b", false),
            ("axb", "a*?*b", true),
        ] {
            assert_eq!(match_pattern(s, p), want, "{s:?} ~ {p:?}");
        }
    }

    #[test]
    fn lists_and_negation() {
        assert_eq!(match_list("db", "web,db", false), ListMatch::Yes);
        assert_eq!(match_list("db", "*,!db", false), ListMatch::Negated);
        assert_eq!(match_list("db", "web", false), ListMatch::No);
        assert_eq!(match_list("db", "DB", true), ListMatch::Yes);
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(host_line_applies("db", &h(&["web", "db"])));
        assert!(!host_line_applies("db", &h(&["*", "!db"])));
        assert!(host_line_applies("web", &h(&["*", "!db"])));
        assert!(
            !host_line_applies("db", &h(&["web,db"])),
            "Host takes no commas"
        );
        assert!(
            !host_line_applies("x", &h(&["!y"])),
            "only negations match nothing"
        );
        assert!(is_catch_all("*") && is_catch_all("**"));
        assert!(!is_catch_all("*.*") && !is_catch_all("?*"));
    }

    #[test]
    fn words_and_keywords() {
        assert_eq!(
            split_words(r#"a "b c" 'd e' f\ g "!*'*" # comment"#).unwrap(),
            vec!["a", "b c", "d e", "f g", "!*'*"]
        );
        assert_eq!(split_words(r#"a "b"#), None);
        assert_eq!(
            keyword_line("  HostName=example.com").unwrap(),
            ("hostname".to_string(), vec!["example.com".to_string()])
        );
        assert_eq!(
            keyword_line("Host = a b").unwrap(),
            ("host".to_string(), vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(keyword_line("# x"), None);
        assert_eq!(keyword_line("   "), None);
    }
}
