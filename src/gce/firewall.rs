//! Does a VPC firewall let IAP's TCP forwarding range (35.235.240.0/20) in
//! to a port of a VM? Pure evaluation of `firewalls.list` rules with the
//! VPC semantics: ingress only, disabled rules ignored, same network,
//! target tags / service accounts, the lowest priority number first, a deny
//! wins a tie, and the implied deny-all last. A rule must cover the whole
//! /20 to count as admitting IAP (IAP may use any address in it); a deny
//! that overlaps part of it is reported.

use serde::Deserialize;

/// IAP's source range for TCP forwarding.
pub const IAP_RANGE: &str = "35.235.240.0/20";
const IAP_NET: u32 = (35 << 24) | (235 << 16) | (240 << 8);
const IAP_LEN: u32 = 20;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PortRule {
    #[serde(rename = "IPProtocol", default)]
    pub protocol: String,
    #[serde(default)]
    pub ports: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub network: String,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub source_ranges: Vec<String>,
    #[serde(default)]
    pub allowed: Vec<PortRule>,
    #[serde(default)]
    pub denied: Vec<PortRule>,
    #[serde(default)]
    pub target_tags: Vec<String>,
    #[serde(default)]
    pub target_service_accounts: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
}

/// The VM as the firewall sees it.
pub struct Target<'a> {
    pub network: &'a str,
    pub tags: &'a [String],
    pub service_accounts: &'a [String],
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// This rule lets the whole range in.
    Admitted(String),
    /// This deny rule (or the implied deny when None) blocks it.
    Blocked(Option<String>),
    /// Only part of the range gets in (rule names of the partial matches).
    Partial(Vec<String>),
}

/// How a source range relates to IAP's /20.
#[derive(PartialEq, Eq)]
enum Overlap {
    None,
    Part,
    Covers,
}

fn overlap(range: &str) -> Overlap {
    let (ip, len) = range.split_once('/').unwrap_or((range, "32"));
    let (Ok(ip), Ok(len)) = (ip.parse::<std::net::Ipv4Addr>(), len.parse::<u32>()) else {
        return Overlap::None;
    };
    let len = len.min(32);
    let ip = u32::from(ip);
    let mask = |l: u32| if l == 0 { 0 } else { u32::MAX << (32 - l) };
    if len <= IAP_LEN {
        if ip & mask(len) == IAP_NET & mask(len) {
            Overlap::Covers
        } else {
            Overlap::None
        }
    } else if ip & mask(IAP_LEN) == IAP_NET {
        Overlap::Part
    } else {
        Overlap::None
    }
}

fn ports_match(rules: &[PortRule], port: u16) -> bool {
    rules.iter().any(|r| {
        let proto = r.protocol.to_ascii_lowercase();
        (proto == "tcp" || proto == "all")
            && r.ports.as_ref().is_none_or(|ps| {
                ps.iter().any(|p| match p.split_once('-') {
                    Some((a, b)) => {
                        a.parse::<u16>().is_ok_and(|a| a <= port)
                            && b.parse::<u16>().is_ok_and(|b| port <= b)
                    }
                    None => p.parse::<u16>() == Ok(port),
                })
            })
    })
}

/// Evaluates `rules` for `t`.
pub fn evaluate(rules: &[Rule], t: &Target) -> Verdict {
    let mut applicable: Vec<(i64, bool, Overlap, &Rule)> = rules
        .iter()
        .filter(|r| !r.disabled && r.direction.as_deref().unwrap_or("INGRESS") == "INGRESS")
        .filter(|r| r.network.rsplit('/').next() == Some(t.network))
        .filter(|r| r.target_tags.is_empty() || r.target_tags.iter().any(|x| t.tags.contains(x)))
        .filter(|r| {
            r.target_service_accounts.is_empty()
                || r.target_service_accounts
                    .iter()
                    .any(|x| t.service_accounts.contains(x))
        })
        .filter_map(|r| {
            let allow = if ports_match(&r.allowed, t.port) {
                true
            } else if ports_match(&r.denied, t.port) {
                false
            } else {
                return None;
            };
            let o = r
                .source_ranges
                .iter()
                .map(|s| overlap(s))
                .max_by_key(|o| match o {
                    Overlap::None => 0,
                    Overlap::Part => 1,
                    Overlap::Covers => 2,
                })
                .unwrap_or(Overlap::None);
            (o != Overlap::None).then(|| (r.priority.unwrap_or(1000), allow, o, r))
        })
        .collect();
    // Lowest number first; at equal priority, deny first.
    applicable.sort_by_key(|(p, allow, _, r)| (*p, *allow, r.name.clone()));
    let mut partial = vec![];
    for (_, allow, o, r) in applicable {
        match (allow, o) {
            (true, Overlap::Covers) if partial.is_empty() => {
                return Verdict::Admitted(r.name.clone());
            }
            (false, Overlap::Covers) if partial.is_empty() => {
                return Verdict::Blocked(Some(r.name.clone()));
            }
            (_, Overlap::Covers) => {
                partial.push(r.name.clone());
                return Verdict::Partial(partial);
            }
            _ => partial.push(r.name.clone()),
        }
    }
    if partial.is_empty() {
        Verdict::Blocked(None)
    } else {
        Verdict::Partial(partial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: serde_json::Value) -> Rule {
        serde_json::from_value(v).unwrap()
    }

    fn allow_22(name: &str, prio: i64) -> Rule {
        rule(
            serde_json::json!({"name": name, "network": "https://x/global/networks/default",
            "priority": prio, "sourceRanges": ["35.235.240.0/20"],
            "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
        )
    }

    fn target(port: u16) -> Target<'static> {
        static TAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        Target {
            network: "default",
            tags: TAGS.get_or_init(|| vec!["web".to_string()]),
            service_accounts: &[],
            port,
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(evaluate(&[], &target(22)), Verdict::Blocked(None));
        assert_eq!(
            evaluate(&[allow_22("a", 1000)], &target(22)),
            Verdict::Admitted("a".into())
        );
        assert_eq!(
            evaluate(&[allow_22("a", 1000)], &target(3389)),
            Verdict::Blocked(None)
        );
        let deny = rule(
            serde_json::json!({"name": "deny-all", "network": "default", "priority": 900,
            "sourceRanges": ["0.0.0.0/0"], "denied": [{"IPProtocol": "all"}]}),
        );
        assert_eq!(
            evaluate(&[allow_22("a", 1000), deny.clone()], &target(22)),
            Verdict::Blocked(Some("deny-all".into()))
        );
        assert_eq!(
            evaluate(&[allow_22("a", 900), deny.clone()], &target(22)),
            Verdict::Blocked(Some("deny-all".into())),
            "deny wins a tie"
        );
        assert_eq!(
            evaluate(&[allow_22("a", 800), deny], &target(22)),
            Verdict::Admitted("a".into())
        );
        // Other network, other tags, egress, disabled: not applicable.
        let mut r = allow_22("b", 1000);
        r.network = "other".into();
        assert_eq!(evaluate(&[r], &target(22)), Verdict::Blocked(None));
        let mut r = allow_22("c", 1000);
        r.target_tags = vec!["db".into()];
        assert_eq!(evaluate(&[r.clone()], &target(22)), Verdict::Blocked(None));
        r.target_tags = vec!["web".into()];
        assert_eq!(evaluate(&[r], &target(22)), Verdict::Admitted("c".into()));
        let mut r = allow_22("d", 1000);
        r.disabled = true;
        assert_eq!(evaluate(&[r], &target(22)), Verdict::Blocked(None));
        // A /24 inside the /20 is only part of IAP's range.
        let mut r = allow_22("narrow", 1000);
        r.source_ranges = vec!["35.235.241.0/24".into()];
        assert_eq!(
            evaluate(&[r], &target(22)),
            Verdict::Partial(vec!["narrow".into()])
        );
        // Port ranges and "all".
        let r = rule(
            serde_json::json!({"name": "range", "network": "default", "sourceRanges": ["0.0.0.0/0"],
            "allowed": [{"IPProtocol": "tcp", "ports": ["20-30"]}]}),
        );
        assert_eq!(
            evaluate(&[r], &target(22)),
            Verdict::Admitted("range".into())
        );
    }
}
