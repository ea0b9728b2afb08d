//! `IAP_SSH_CONNECT_TO`: send connections for one host and port to another
//! address, keeping the original name for TLS (SNI and certificate
//! checks), the `Host` header and a proxy's CONNECT line — curl's
//! `--connect-to HOST:PORT:CONNECT_HOST:CONNECT_PORT`. For networks that
//! reach Google through Private Service Connect or the restricted VIP
//! without DNS changes, and for tests that serve Google's real names from
//! a local fake.
//!
//! A comma-separated list; the first entry that matches wins. An empty
//! HOST or PORT matches any; an empty CONNECT_HOST or CONNECT_PORT keeps
//! the original. IPv6 literals go in brackets.

use std::sync::OnceLock;

/// One mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    host: Option<String>,
    port: Option<u16>,
    to_host: Option<String>,
    to_port: Option<u16>,
}

/// Splits `s` at `:` outside brackets.
fn fields(s: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn host_field(s: &str) -> Result<Option<String>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let h = s
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(s);
    let ok = !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:_".contains(&b));
    if !ok {
        return Err(format!(
            "`{}` is not a host name or address",
            crate::error::printable(s)
        ));
    }
    Ok(Some(h.to_ascii_lowercase()))
}

fn port_field(s: &str) -> Result<Option<u16>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(Some(p)),
        _ => Err(format!("`{}` is not a port", crate::error::printable(s))),
    }
}

/// Parses the variable's value.
pub fn parse(value: &str) -> Result<Vec<Rule>, String> {
    let mut rules = vec![];
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let f = fields(entry);
        let [host, port, to_host, to_port] = f.as_slice() else {
            return Err(format!(
                "`{}` is not HOST:PORT:CONNECT_HOST:CONNECT_PORT",
                crate::error::printable(entry)
            ));
        };
        rules.push(Rule {
            host: host_field(host)?,
            port: port_field(port)?,
            to_host: host_field(to_host)?,
            to_port: port_field(to_port)?,
        });
    }
    Ok(rules)
}

/// Where to open the TCP connection for `host:port`.
pub fn apply(rules: &[Rule], host: &str, port: u16) -> (String, u16) {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    for r in rules {
        let host_ok = r.host.as_deref().is_none_or(|x| x.eq_ignore_ascii_case(h));
        if host_ok && r.port.is_none_or(|p| p == port) {
            return (
                r.to_host.clone().unwrap_or_else(|| h.to_string()),
                r.to_port.unwrap_or(port),
            );
        }
    }
    (h.to_string(), port)
}

/// The process's rules (read once).
fn rules() -> &'static Result<Vec<Rule>, String> {
    static R: OnceLock<Result<Vec<Rule>, String>> = OnceLock::new();
    R.get_or_init(|| match std::env::var("IAP_SSH_CONNECT_TO") {
        Ok(v) => parse(&v),
        Err(_) => Ok(vec![]),
    })
}

/// The address to dial for `host:port` in this process; `Err` with the
/// message when `IAP_SSH_CONNECT_TO` is malformed (before any connection).
pub fn route(host: &str, port: u16) -> Result<(String, u16), String> {
    match rules() {
        Err(e) => Err(format!("IAP_SSH_CONNECT_TO: {e}")),
        Ok(r) if r.is_empty() => Ok((host.to_string(), port)),
        Ok(r) => {
            let to = apply(r, host, port);
            tracing::debug!("IAP_SSH_CONNECT_TO: {host}:{port} via {}:{}", to.0, to.1);
            Ok(to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_semantics() {
        let r = parse("compute.u.test:443:127.0.0.1:9443, ::[::1]:, :80::8080").unwrap();
        assert_eq!(apply(&r, "compute.u.test", 443), ("127.0.0.1".into(), 9443));
        assert_eq!(apply(&r, "COMPUTE.U.TEST", 443), ("127.0.0.1".into(), 9443));
        // Any host, any port → [::1], same port.
        assert_eq!(apply(&r, "other", 443), ("::1".into(), 443));
        let r = parse(":80::8080").unwrap();
        assert_eq!(apply(&r, "h", 80), ("h".into(), 8080));
        assert_eq!(apply(&r, "h", 81), ("h".into(), 81));
        let r = parse("[::1]:443:h:1").unwrap();
        assert_eq!(apply(&r, "[::1]", 443), ("h".into(), 1));
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_values() {
        for bad in [
            "a:1:b",
            "a:x:b:1",
            "a:1:b:70000",
            "a b:1:c:2",
            "a:1:b:0",
            "a:1:$(x):2",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
