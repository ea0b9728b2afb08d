//! The firewall model: whether VPC rules let IAP's range reach a port.

use serde_json::{Value, json};

use crate::config::Instance;
use crate::state::State;

/// Does the firewall model let IAP (35.235.240.0/20) reach `port` of `i`?
/// Rules: ingress only, enabled, same network; targets (tags or service
/// accounts) must match when given; the lowest priority number wins and a
/// deny wins a tie; nothing matching means the implied deny.
pub fn firewall_admits(state: &State, i: &Instance, port: u16) -> bool {
    let Some(rules) = state.cloud.lock().unwrap().firewalls.clone() else {
        return true;
    };
    // IAP reaches an IPv6-only VM from 2600:2d00:1:7::/64, others from
    // 35.235.240.0/20; a sample source address of the range must be inside.
    let v6 = i.stack_type.as_deref() == Some("IPV6_ONLY");
    let sample: u128 = if v6 {
        u128::from("2600:2d00:1:7::7".parse::<std::net::Ipv6Addr>().unwrap())
    } else {
        u128::from(u32::from(std::net::Ipv4Addr::new(35, 235, 240, 7)))
    };
    let in_range = |r: &str| -> bool {
        let (ip, len) = r
            .split_once('/')
            .unwrap_or((r, if v6 { "128" } else { "32" }));
        let Ok(len) = len.parse::<u32>() else {
            return false;
        };
        let (ip, width): (u128, u32) = match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(a)) if !v6 => (u128::from(u32::from(a)), 32),
            Ok(std::net::IpAddr::V6(a)) if v6 => (u128::from(a), 128),
            _ => return false,
        };
        let len = len.min(width);
        let mask: u128 = if len == 0 {
            0
        } else {
            (u128::MAX >> (128 - width)) & !((1u128 << (width - len)) - 1)
        };
        (ip & mask) == (sample & mask)
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
    for r in &rules {
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

/// `firewalls.insert`: validates the rule as Compute does (name syntax,
/// direction, priority range, a source and an allowed or denied entry),
/// refuses a taken name (409 alreadyExists), stores it with the server's
/// defaults and answers a global operation (DONE after a wait).
pub fn insert(state: &State, base: &str, project: &str, body: &[u8]) -> super::Reply {
    use super::error;
    if !state.config.firewall_admin {
        state.event(format!("firewalls.insert denied project={project}"));
        return error(
            403,
            "forbidden",
            &format!(
                "Required 'compute.firewalls.create' permission for 'projects/{project}/global/firewalls'"
            ),
        );
    }
    let Ok(mut rule) = serde_json::from_slice::<Value>(body) else {
        return error(400, "parseError", "Parse Error");
    };
    let name = rule["name"].as_str().unwrap_or("").to_string();
    let name_ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return error(
            400,
            "invalid",
            &format!("Invalid value for field 'resource.name': '{name}'."),
        );
    }
    let prio = rule["priority"].as_i64().unwrap_or(1000);
    if !(0..=65535).contains(&prio) {
        return error(
            400,
            "invalid",
            "Invalid value for field 'resource.priority'.",
        );
    }
    let has_source = rule["sourceRanges"]
        .as_array()
        .is_some_and(|r| !r.is_empty())
        || rule["sourceTags"].as_array().is_some_and(|r| !r.is_empty());
    let has_action = rule["allowed"].as_array().is_some_and(|r| !r.is_empty())
        || rule["denied"].as_array().is_some_and(|r| !r.is_empty());
    if !has_source || !has_action {
        return error(
            400,
            "invalid",
            "A firewall rule needs sources and an allowed or denied entry.",
        );
    }
    let mut cloud = state.cloud.lock().unwrap();
    let list = cloud.firewalls.get_or_insert_with(Vec::new);
    if list.iter().any(|f| {
        f["name"] == name.as_str()
            && f.get("project").and_then(Value::as_str).unwrap_or(project) == project
    }) {
        return error(
            409,
            "alreadyExists",
            &format!("The resource 'projects/{project}/global/firewalls/{name}' already exists"),
        );
    }
    let network = rule["network"]
        .as_str()
        .unwrap_or("global/networks/default")
        .to_string();
    rule["network"] = json!(if network.starts_with("https://") {
        network
    } else {
        format!(
            "{base}projects/{project}/global/networks/{}",
            network.rsplit('/').next().unwrap_or("default")
        )
    });
    rule["priority"] = json!(prio);
    if rule.get("direction").is_none() {
        rule["direction"] = json!("INGRESS");
    }
    rule["id"] = json!(format!("{}", rand::random::<u64>()));
    rule["kind"] = json!("compute#firewall");
    rule["creationTimestamp"] = json!("2026-12-01T00:00:00.000-08:00");
    rule["selfLink"] = json!(format!("{base}projects/{project}/global/firewalls/{name}"));
    rule["logConfig"] = json!({"enable": false});
    rule["disabled"] = json!(rule["disabled"].as_bool().unwrap_or(false));
    rule["project"] = json!(project);
    state.event(format!("firewalls.insert project={project} rule={rule}"));
    list.push(rule);
    let op = cloud.new_operation(
        base,
        "insert",
        &format!("projects/{project}/global/firewalls/{name}"),
        None,
        project,
    );
    (200, op.to_string())
}
