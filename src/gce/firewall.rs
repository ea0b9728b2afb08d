//! Does a VPC firewall let IAP's TCP forwarding range (35.235.240.0/20) in
//! to a port of a VM? Pure evaluation of `firewalls.list` rules with the
//! VPC semantics: ingress only, disabled rules ignored, same network,
//! target tags / service accounts, the lowest priority number first, a deny
//! wins a tie, and the implied deny-all last. A rule must cover the whole
//! /20 to count as admitting IAP (IAP may use any address in it); a deny
//! that overlaps part of it is reported. IPv6 VMs are reached from
//! 2600:2d00:1:7::/64 ([`IAP_RANGE_V6`]), evaluated the same way.

use serde::Deserialize;

/// IAP's source range for TCP forwarding.
pub const IAP_RANGE: &str = "35.235.240.0/20";
/// IAP's source range for IPv6 VMs (Google's guide; not in gcloud 528).
pub const IAP_RANGE_V6: &str = "2600:2d00:1:7::/64";

/// A CIDR as (network bits, prefix length, address width 32 or 128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: u128,
    len: u32,
    width: u32,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len.parse::<u32>().ok()?)),
            None => (s, None),
        };
        let (net, width) = match ip.parse::<std::net::IpAddr>().ok()? {
            std::net::IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            std::net::IpAddr::V6(a) => (u128::from(a), 128),
        };
        Some(Cidr {
            net,
            len: len.unwrap_or(width).min(width),
            width,
        })
    }

    fn mask(&self, len: u32) -> u128 {
        if len == 0 {
            0
        } else {
            (u128::MAX >> (128 - self.width)) & !((1u128 << (self.width - len)) - 1)
        }
    }
}

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

/// How a rule's source range relates to IAP's range `iap`.
fn overlap(range: &str, iap: &Cidr) -> Overlap {
    let Some(r) = Cidr::parse(range).filter(|r| r.width == iap.width) else {
        return Overlap::None;
    };
    if r.len <= iap.len {
        if r.net & r.mask(r.len) == iap.net & r.mask(r.len) {
            Overlap::Covers
        } else {
            Overlap::None
        }
    } else if r.net & r.mask(iap.len) == iap.net & r.mask(iap.len) {
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

/// Evaluates `rules` for `t` and IAP's IPv4 range.
pub fn evaluate(rules: &[Rule], t: &Target) -> Verdict {
    evaluate_from(rules, t, IAP_RANGE)
}

/// Evaluates `rules` for `t` and the source range `iap` (a CIDR).
pub fn evaluate_from(rules: &[Rule], t: &Target, iap: &str) -> Verdict {
    let iap = Cidr::parse(iap).expect("a valid IAP range");
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
                .map(|s| overlap(s, &iap))
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

/// The rule `doctor --fix` creates: ingress from IAP's range `range` to
/// tcp:`port` on `network` (its URL), at `priority`, for the VM's tags
/// when it has some (else every VM of the network), as Google's guide's
/// `allow-ingress-from-iap`.
pub fn iap_rule(
    name: &str,
    network: &str,
    port: u16,
    priority: i64,
    tags: &[String],
    range: &str,
) -> serde_json::Value {
    let mut r = serde_json::json!({
        "name": name,
        "network": network,
        "direction": "INGRESS",
        "priority": priority,
        "sourceRanges": [range],
        "allowed": [{"IPProtocol": "tcp", "ports": [port.to_string()]}],
        "description": format!("IAP TCP forwarding to tcp:{port} (iap-ssh doctor --fix)"),
    });
    if !tags.is_empty() {
        r["targetTags"] = serde_json::json!(tags);
    }
    r
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
    fn ipv6_ranges_are_their_own_family() {
        let v6 = |ranges: &[&str]| {
            rule(
                serde_json::json!({"name": "v6", "network": "default", "sourceRanges": ranges,
                "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}),
            )
        };
        assert_eq!(
            evaluate_from(&[v6(&["2600:2d00:1:7::/64"])], &target(22), IAP_RANGE_V6),
            Verdict::Admitted("v6".into())
        );
        assert_eq!(
            evaluate_from(&[v6(&["::/0"])], &target(22), IAP_RANGE_V6),
            Verdict::Admitted("v6".into())
        );
        assert_eq!(
            evaluate_from(&[v6(&["2600:2d00:1:7::/80"])], &target(22), IAP_RANGE_V6),
            Verdict::Partial(vec!["v6".into()])
        );
        // An IPv4 rule says nothing about IPv6, and the other way round.
        assert_eq!(
            evaluate_from(&[v6(&["0.0.0.0/0"])], &target(22), IAP_RANGE_V6),
            Verdict::Blocked(None)
        );
        assert_eq!(
            evaluate(&[v6(&["::/0"])], &target(22)),
            Verdict::Blocked(None)
        );
        let r: Rule = serde_json::from_value(iap_rule(
            "n",
            "default",
            22,
            999,
            &["web".into()],
            IAP_RANGE_V6,
        ))
        .unwrap();
        assert_eq!(
            evaluate_from(&[r], &target(22), IAP_RANGE_V6),
            Verdict::Admitted("n".into())
        );
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
