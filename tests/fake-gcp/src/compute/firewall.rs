//! The firewall model: whether VPC rules let IAP's range reach a port.

use serde_json::{Value, json};

use crate::config::Instance;
use crate::state::State;

/// Does the firewall model let IAP (35.235.240.0/20) reach `port` of `i`?
/// Rules: ingress only, enabled, same network; targets (tags or service
/// accounts) must match when given; the lowest priority number wins and a
/// deny wins a tie; nothing matching means the implied deny.
pub fn firewall_admits(state: &State, i: &Instance, port: u16) -> bool {
    let Some(rules) = &state.config.firewalls else {
        return true;
    };
    let iap: u32 = (35 << 24) | (235 << 16) | (240 << 8);
    let in_range = |r: &str| -> bool {
        let (ip, len) = r.split_once('/').unwrap_or((r, "32"));
        let (Ok(ip), Ok(len)) = (ip.parse::<std::net::Ipv4Addr>(), len.parse::<u32>()) else {
            return false;
        };
        // The sample source address 35.235.240.7 must be inside.
        let mask = if len == 0 {
            0
        } else {
            u32::MAX << (32 - len.min(32))
        };
        (u32::from(ip) & mask) == ((iap | 7) & mask)
    };
    let port_ok = |entries: &Value| -> bool {
        entries.as_array().into_iter().flatten().any(|e| {
            let proto = e["IPProtocol"].as_str().unwrap_or("");
            if proto != "tcp" && proto != "all" {
                return false;
            }
            match e["ports"].as_array() {
                None => true,
                Some(ps) => ps
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|p| match p.split_once('-') {
                        Some((a, b)) => {
                            a.parse::<u16>().is_ok_and(|a| a <= port)
                                && b.parse::<u16>().is_ok_and(|b| port <= b)
                        }
                        None => p.parse::<u16>() == Ok(port),
                    }),
            }
        })
    };
    let mut best: Option<(i64, bool)> = None; // (priority, allow)
    for r in rules {
        if r.get("project")
            .and_then(Value::as_str)
            .is_some_and(|p| p != i.project)
        {
            continue;
        }
        let network = r["network"].as_str().unwrap_or("default");
        if network.rsplit('/').next() != Some(i.network.as_str()) {
            continue;
        }
        if r["direction"].as_str().unwrap_or("INGRESS") != "INGRESS" || r["disabled"] == json!(true)
        {
            continue;
        }
        if !r["sourceRanges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(in_range)
        {
            continue;
        }
        let tags: Vec<&str> = r["targetTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let sas: Vec<&str> = r["targetServiceAccounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !tags.is_empty() && !i.tags.iter().any(|t| tags.contains(&t.as_str())) {
            continue;
        }
        if !sas.is_empty()
            && !i
                .service_account
                .as_deref()
                .is_some_and(|s| sas.contains(&s))
        {
            continue;
        }
        let allow = if port_ok(&r["allowed"]) {
            true
        } else if port_ok(&r["denied"]) {
            false
        } else {
            continue;
        };
        let prio = r["priority"].as_i64().unwrap_or(1000);
        best = match best {
            Some((bp, ba)) if bp < prio || (bp == prio && !ba) => Some((bp, ba)),
            _ => Some((prio, allow)),
        };
    }
    best.is_some_and(|(_, allow)| allow)
}
