//! The IAM condition `grant` attaches to a tunnel binding, built from its
//! flags: destination ports and IPs (the attributes IAP TCP forwarding
//! exposes), access levels and an expiry (admin-windows-putty §1.7).
//! The same flags always give the same expression (ports and IPs sorted,
//! repeats dropped), so that granting twice finds the first binding.

use std::net::IpAddr;

use crate::timefmt::rfc3339;

/// An IAM `Expr`: IAM requires a title with an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub title: String,
    pub description: String,
    pub expression: String,
}

/// What the flags restrict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub ports: Vec<u16>,
    pub ips: Vec<IpAddr>,
    /// Full access level names (`accessPolicies/N/accessLevels/NAME`).
    pub access_levels: Vec<String>,
    /// Unix seconds after which the grant stops applying.
    pub expires: Option<i64>,
}

/// IAM's limit on a condition title.
const TITLE_MAX: usize = 100;

/// Is `s` a full access level name?
pub fn valid_access_level(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    matches!(parts.as_slice(), ["accessPolicies", n, "accessLevels", name]
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
            && !name.is_empty() && name.len() <= 50
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

fn any_of(items: &[String]) -> String {
    if items.len() == 1 {
        items[0].clone()
    } else {
        format!("({})", items.join(" || "))
    }
}

impl Limits {
    /// Sorted, repeats dropped.
    fn normalized(&self) -> Limits {
        let mut l = self.clone();
        l.ports.sort_unstable();
        l.ports.dedup();
        l.ips.sort_unstable();
        l.ips.dedup();
        l.access_levels.sort();
        l.access_levels.dedup();
        l
    }

    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
            && self.ips.is_empty()
            && self.access_levels.is_empty()
            && self.expires.is_none()
    }

    /// None when nothing is restricted (an unconditional binding).
    pub fn condition(&self) -> Option<Condition> {
        if self.is_empty() {
            return None;
        }
        let l = self.normalized();
        let mut clauses = Vec::new();
        let mut title = Vec::new();
        let list = |v: Vec<String>| v.join(", ");
        if !l.ports.is_empty() {
            let v: Vec<String> = l
                .ports
                .iter()
                .map(|p| format!("destination.port == {p}"))
                .collect();
            clauses.push(any_of(&v));
            let word = if l.ports.len() == 1 { "port" } else { "ports" };
            title.push(format!(
                "{word} {}",
                list(l.ports.iter().map(u16::to_string).collect())
            ));
        }
        if !l.ips.is_empty() {
            let v: Vec<String> = l
                .ips
                .iter()
                .map(|ip| format!("destination.ip == \"{ip}\""))
                .collect();
            clauses.push(any_of(&v));
            title.push(format!(
                "to {}",
                list(l.ips.iter().map(IpAddr::to_string).collect())
            ));
        }
        if !l.access_levels.is_empty() {
            let v: Vec<String> = l
                .access_levels
                .iter()
                .map(|a| format!("\"{a}\" in request.auth.access_levels"))
                .collect();
            clauses.push(any_of(&v));
            title.push(format!(
                "access level {}",
                list(
                    l.access_levels
                        .iter()
                        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
                        .collect()
                )
            ));
        }
        if let Some(t) = l.expires {
            let ts = rfc3339(t);
            clauses.push(format!("request.time < timestamp(\"{ts}\")"));
            title.push(format!("until {ts}"));
        }
        let mut t = format!("iap-ssh: {}", title.join("; "));
        if t.len() > TITLE_MAX {
            t.truncate(TITLE_MAX - 3);
            t.push_str("...");
        }
        Some(Condition {
            title: t,
            description: "Written by iap-ssh grant".into(),
            expression: clauses.join(" && "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_limits_no_condition() {
        assert_eq!(Limits::default().condition(), None);
    }

    #[test]
    fn two_ports_in_any_order_give_one_expression() {
        let a = Limits {
            ports: vec![3389, 22, 3389],
            ..Limits::default()
        };
        let b = Limits {
            ports: vec![22, 3389],
            ..Limits::default()
        };
        let c = a.condition().unwrap();
        assert_eq!(c, b.condition().unwrap());
        assert_eq!(
            c.expression,
            "(destination.port == 22 || destination.port == 3389)"
        );
        assert_eq!(c.title, "iap-ssh: ports 22, 3389");
    }

    #[test]
    fn every_limit_is_a_clause() {
        let l = Limits {
            ports: vec![22],
            ips: vec!["10.0.0.5".parse().unwrap()],
            access_levels: vec!["accessPolicies/123/accessLevels/corp".into()],
            expires: Some(1_798_761_600),
        };
        let c = l.condition().unwrap();
        assert_eq!(
            c.expression,
            "destination.port == 22 && destination.ip == \"10.0.0.5\" && \"accessPolicies/123/accessLevels/corp\" in request.auth.access_levels && request.time < timestamp(\"2027-01-01T00:00:00Z\")"
        );
        assert_eq!(
            c.title,
            "iap-ssh: port 22; to 10.0.0.5; access level corp; until 2027-01-01T00:00:00Z"
        );
    }

    #[test]
    fn long_titles_are_cut_to_iams_limit() {
        let l = Limits {
            ports: (1000..1040).collect(),
            ..Limits::default()
        };
        let c = l.condition().unwrap();
        assert_eq!(c.title.len(), 100);
        assert!(c.title.ends_with("..."));
    }

    #[test]
    fn access_level_names() {
        assert!(valid_access_level("accessPolicies/123/accessLevels/corp_1"));
        assert!(!valid_access_level("corp"));
        assert!(!valid_access_level("accessPolicies/x/accessLevels/corp"));
        assert!(!valid_access_level("accessPolicies/1/accessLevels/a\"b"));
    }
}
