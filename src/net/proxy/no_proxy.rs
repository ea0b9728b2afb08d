//! `NO_PROXY` as curl reads it (`lib/noproxy.c`): a comma list, blanks
//! around entries ignored, case-insensitive; `*` alone bypasses everything;
//! a leading or trailing dot is ignored; a name entry matches the host or
//! any name ending in `.` + entry; an entry with `:port` never matches a
//! name; IP hosts match only IP entries, exactly or by CIDR (`10.0.0.0/8`,
//! `::1`, `fd00::/8`). Loopback is not exempt unless listed. Pure.

use std::net::IpAddr;

/// A parsed `NO_PROXY` value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    entries: Vec<String>,
}

impl NoProxy {
    pub fn parse(value: &str) -> NoProxy {
        let value = value.trim();
        if value == "*" {
            return NoProxy {
                all: true,
                entries: vec![],
            };
        }
        let entries = value
            .split(',')
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        NoProxy {
            all: false,
            entries,
        }
    }

    /// Does a connection to `host` (a name or an IP literal, IPv6 with or
    /// without brackets) go direct?
    pub fn bypasses(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.entries.iter().any(|e| ip_matches(ip, e));
        }
        self.entries.iter().any(|e| {
            let e = e.trim_start_matches('.').trim_end_matches('.');
            !e.is_empty()
                && !e.contains(':')
                && (host == e
                    || (host.len() > e.len()
                        && host.ends_with(e)
                        && host.as_bytes()[host.len() - e.len() - 1] == b'.'))
        })
    }
}

fn ip_matches(ip: IpAddr, entry: &str) -> bool {
    let entry = entry.trim_start_matches('[').trim_end_matches(']');
    let (addr, bits) = match entry.split_once('/') {
        Some((a, b)) => match b.parse::<u32>() {
            Ok(b) => (a, Some(b)),
            Err(_) => return false,
        },
        None => (entry, None),
    };
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let Ok(net) = addr.parse::<IpAddr>() else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => prefix_eq(&a.octets(), &n.octets(), bits.unwrap_or(32)),
        (IpAddr::V6(a), IpAddr::V6(n)) => prefix_eq(&a.octets(), &n.octets(), bits.unwrap_or(128)),
        _ => false,
    }
}

/// Are the first `bits` bits of `a` and `b` equal? (`bits` beyond the
/// length: no match, as curl.)
fn prefix_eq(a: &[u8], b: &[u8], bits: u32) -> bool {
    if bits as usize > a.len() * 8 {
        return false;
    }
    let full = (bits / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_curl_matches_them() {
        let n = NoProxy::parse(" Example.com , .corp.internal,host:8080,*.wild.com ");
        assert!(n.bypasses("example.com"));
        assert!(n.bypasses("www.EXAMPLE.com"));
        assert!(n.bypasses("example.com."));
        assert!(!n.bypasses("nonexample.com"));
        assert!(n.bypasses("corp.internal"));
        assert!(n.bypasses("a.b.corp.internal"));
        assert!(
            !n.bypasses("host"),
            "an entry with a port never matches a name"
        );
        assert!(!n.bypasses("x.wild.com"), "`*.x` is not a wildcard");
        assert!(!n.bypasses("tunnel.cloudproxy.app"));
        assert!(NoProxy::parse("*").bypasses("anything"));
        assert!(!NoProxy::parse("").bypasses("example.com"));
        assert!(!NoProxy::parse("a,*").bypasses("b"), "`*` only alone");
    }

    #[test]
    fn ip_literals_match_ip_entries_only() {
        let n = NoProxy::parse("10.0.0.0/8,192.168.1.7,::1,fd00::/8,localhost");
        assert!(n.bypasses("10.1.2.3"));
        assert!(!n.bypasses("11.1.2.3"));
        assert!(n.bypasses("192.168.1.7"));
        assert!(!n.bypasses("192.168.1.8"));
        assert!(n.bypasses("[::1]"));
        assert!(n.bypasses("fd12::5"));
        assert!(!n.bypasses("fe80::1"));
        assert!(
            !n.bypasses("127.0.0.1"),
            "loopback is not exempt unless listed"
        );
        assert!(n.bypasses("localhost"));
        assert!(!NoProxy::parse("10.0.0.0/33").bypasses("10.0.0.1"));
        assert!(NoProxy::parse("127.0.0.1").bypasses("127.0.0.1"));
        assert!(NoProxy::parse("0.0.0.0/0").bypasses("8.8.8.8"));
    }
}
