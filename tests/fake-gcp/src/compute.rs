//! The Compute Engine REST API (`/compute/v1/…`): projects.get,
//! instances.get / aggregatedList (filter, pagination, per-zone warnings),
//! setMetadata / setCommonInstanceMetadata (fingerprint lock, 412),
//! zonal and global operations (`get` and `wait`), getGuestAttributes and
//! firewalls.list, with the JSON shapes of google-apis.md.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::cloud::Conflict;
use crate::config::Instance;
use crate::oauth::Reply;
use crate::state::State;

pub fn error(code: u16, reason: &str, message: &str) -> Reply {
    (
        code,
        json!({"error": {"code": code, "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}]}})
        .to_string(),
    )
}

fn not_found(what: &str) -> Reply {
    error(
        404,
        "notFound",
        &format!("The resource '{what}' was not found"),
    )
}

fn ok(v: Value) -> Reply {
    (200, v.to_string())
}

fn api_base(state: &State) -> String {
    format!("{}compute/v1/", state.base_url.lock().unwrap())
}

fn instance_json(state: &State, i: &Instance, index: usize) -> Value {
    let base = api_base(state);
    let cloud = state.cloud.lock().unwrap();
    let (meta, status) = cloud
        .instances
        .get(&(i.project.clone(), i.zone.clone(), i.name.clone()))
        .cloned()
        .expect("instance state");
    let zone_url = format!("{base}projects/{}/zones/{}", i.project, i.zone);
    let nics: Vec<Value> = i
        .interfaces
        .iter()
        .enumerate()
        .map(|(n, name)| {
            json!({
                "kind": "compute#networkInterface",
                "name": name,
                "network": format!("{base}projects/{}/global/networks/{}", i.project, i.network),
                "networkIP": format!("10.{}.{}.{}", 128 + n, (index / 250) % 250, index % 250 + 2),
            })
        })
        .collect();
    let features: Vec<Value> = i.os_features.iter().map(|f| json!({"type": f})).collect();
    let mut v = json!({
        "kind": "compute#instance",
        "id": i.id,
        "name": i.name,
        "zone": zone_url,
        "machineType": format!("{zone_url}/machineTypes/e2-small"),
        "status": status,
        "selfLink": format!("{zone_url}/instances/{}", i.name),
        "networkInterfaces": nics,
        "metadata": meta.json(),
        "disks": [{"kind": "compute#attachedDisk", "boot": true, "deviceName": i.name,
                   "guestOsFeatures": features}],
        "tags": {"items": i.tags, "fingerprint": "42WmSpB8rSM="},
    });
    if let Some(sa) = &i.service_account {
        v["serviceAccounts"] = json!([{"email": sa,
            "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]);
    }
    v
}

fn find(state: &State, p: &str, z: &str, n: &str) -> Option<(usize, Instance)> {
    state
        .config
        .instances
        .iter()
        .enumerate()
        .find(|(_, i)| i.project == p && i.zone == z && i.name == n)
        .map(|(k, i)| (k, i.clone()))
}

/// A parsed `filter` expression: `FIELD eq|ne REGEX` (legacy syntax: the
/// regex must match the whole value) or `FIELD = VALUE` / `FIELD != VALUE`.
struct Filter {
    field: String,
    re: regex::Regex,
    negate: bool,
}

fn parse_filter(f: &str) -> Result<Filter, String> {
    let f = f.trim();
    let f = f
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .unwrap_or(f)
        .trim();
    let bad =
        || format!("Invalid value for field 'filter': '{f}'. Invalid list filter expression.");
    let mut parts = f.splitn(3, ' ');
    let (Some(field), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let value = value.trim().trim_matches('"');
    let (pattern, negate) = match op {
        "eq" => (value.to_string(), false),
        "ne" => (value.to_string(), true),
        "=" => (regex::escape(value), false),
        "!=" => (regex::escape(value), true),
        _ => return Err(bad()),
    };
    if !matches!(field, "name" | "status" | "id") {
        return Err(bad());
    }
    let re = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|_| bad())?;
    Ok(Filter {
        field: field.to_string(),
        re,
        negate,
    })
}

fn aggregated_list(state: &State, project: &str, query: &[(String, String)]) -> Reply {
    let q = |k: &str| query.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    let filter = match q("filter").filter(|f| !f.is_empty()).map(parse_filter) {
        Some(Err(e)) => return error(400, "invalid", &e),
        Some(Ok(f)) => Some(f),
        None => None,
    };
    let max = q("maxResults")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(500)
        .clamp(1, state.config.max_page_size.max(1));
    let start = match q("pageToken") {
        None | Some("") => 0,
        Some(t) => match t
            .strip_prefix("fake-page-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return error(400, "invalid", "Invalid value for field 'pageToken'"),
        },
    };
    let statuses: BTreeMap<(String, String, String), String> = {
        let c = state.cloud.lock().unwrap();
        c.instances
            .iter()
            .filter(|((p, _, _), _)| p == project)
            .map(|(k, (_, s))| (k.clone(), s.clone()))
            .collect()
    };
    let mut all: Vec<(usize, &Instance)> = state
        .config
        .instances
        .iter()
        .enumerate()
        .filter(|(_, i)| i.project == project && i.listed)
        .filter(|(_, i)| {
            let Some(f) = &filter else { return true };
            let value = match f.field.as_str() {
                "name" => i.name.clone(),
                "id" => i.id.clone(),
                _ => statuses
                    .get(&(i.project.clone(), i.zone.clone(), i.name.clone()))
                    .cloned()
                    .unwrap_or_default(),
            };
            f.re.is_match(&value) != f.negate
        })
        .collect();
    all.sort_by(|a, b| (&a.1.zone, &a.1.name).cmp(&(&b.1.zone, &b.1.name)));
    let page: Vec<(usize, &Instance)> = all.iter().skip(start).take(max).cloned().collect();
    let mut zones: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for z in state
        .config
        .instances
        .iter()
        .map(|i| i.zone.clone())
        .chain(["us-east1-b".to_string()])
    {
        zones.entry(z).or_default();
    }
    for (k, i) in &page {
        zones
            .get_mut(&i.zone)
            .expect("zone listed")
            .push(instance_json(state, i, *k));
    }
    let items: serde_json::Map<String, Value> = zones
        .into_iter()
        .map(|(z, list)| {
            let scope = format!("zones/{z}");
            let v = if list.is_empty() {
                json!({"warning": {"code": "NO_RESULTS_ON_PAGE",
                    "message": format!("There are no results for scope '{scope}' on this page."),
                    "data": [{"key": "scope", "value": scope}]}})
            } else {
                json!({"instances": list})
            };
            (scope, v)
        })
        .collect();
    let mut v = json!({
        "kind": "compute#instanceAggregatedList",
        "id": format!("projects/{project}/aggregated/instances"),
        "items": items,
        "selfLink": format!("{}projects/{project}/aggregated/instances", api_base(state)),
    });
    if start + max < all.len() {
        v["nextPageToken"] = json!(format!("fake-page-{}", start + max));
    }
    ok(v)
}

/// A metadata body: `{fingerprint, items[{key, value}]}`, validated like the API.
fn parse_metadata(body: &[u8]) -> Result<(String, BTreeMap<String, String>), Reply> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        error(
            400,
            "parseError",
            &format!("Invalid JSON payload received. {e}"),
        )
    })?;
    let Some(fp) = v.get("fingerprint").and_then(Value::as_str) else {
        return Err(error(
            400,
            "required",
            "Required field 'fingerprint' not specified",
        ));
    };
    let mut items = BTreeMap::new();
    let mut total = 0;
    for it in v
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(k), Some(val)) = (
            it.get("key").and_then(Value::as_str),
            it.get("value").and_then(Value::as_str),
        ) else {
            return Err(error(
                400,
                "invalid",
                "Invalid value for field 'metadata.items'",
            ));
        };
        let key_ok = !k.is_empty()
            && k.len() <= 128
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !key_ok {
            return Err(error(
                400,
                "invalid",
                &format!("Invalid value for field 'metadata.items.key': '{k}'"),
            ));
        }
        if items.insert(k.to_string(), val.to_string()).is_some() {
            return Err(error(
                400,
                "invalid",
                &format!("Duplicate metadata key '{k}'"),
            ));
        }
        total += k.len() + val.len();
    }
    if total > 512 * 1024 {
        return Err(error(400, "invalid", "Metadata exceeds the 512 KB limit"));
    }
    Ok((fp.to_string(), items))
}

fn conflict() -> Reply {
    // Exact message UNCONFIRMED; the status and reason are what clients use.
    error(
        412,
        "conditionNotMet",
        "Supplied fingerprint does not match current metadata fingerprint.",
    )
}

pub fn handle(
    state: &Arc<State>,
    method: &str,
    rest: &str,
    query: &[(String, String)],
    body: &[u8],
) -> Reply {
    let segs: Vec<&str> = rest.split('/').collect();
    let base = api_base(state);
    match (method, segs.as_slice()) {
        ("GET", ["projects", p]) => {
            let c = state.cloud.lock().unwrap();
            match c.projects.get(*p) {
                Some(m) => ok(json!({
                    "kind": "compute#project",
                    "id": format!("{}", 100000 + p.len()),
                    "name": p,
                    "commonInstanceMetadata": m.json(),
                    "selfLink": format!("{base}projects/{p}"),
                })),
                None => not_found(&format!("projects/{p}")),
            }
        }
        ("POST", ["projects", p, "setCommonInstanceMetadata"]) => {
            if !state.config.project_metadata_writable {
                return error(
                    403,
                    "forbidden",
                    &format!(
                        "Required 'compute.projects.setCommonInstanceMetadata' permission for 'projects/{p}'"
                    ),
                );
            }
            let (fp, items) = match parse_metadata(body) {
                Ok(x) => x,
                Err(r) => return r,
            };
            let mut c = state.cloud.lock().unwrap();
            if !c.projects.contains_key(*p) {
                return not_found(&format!("projects/{p}"));
            }
            match c.set_metadata(p, None, &fp, items) {
                Err(Conflict) => {
                    state.event(format!("metadata 412 project={p}"));
                    conflict()
                }
                Ok(()) => {
                    state.event(format!("metadata write project={p}"));
                    let op = c.new_operation(
                        &base,
                        "setCommonInstanceMetadata",
                        &format!("projects/{p}"),
                        None,
                        p,
                    );
                    drop(c);
                    crate::guest::schedule(state.clone());
                    ok(op)
                }
            }
        }
        ("GET", ["projects", p, "aggregated", "instances"]) => {
            if !state.cloud.lock().unwrap().projects.contains_key(*p) {
                return not_found(&format!("projects/{p}"));
            }
            state.event(format!("aggregatedList project={p}"));
            aggregated_list(state, p, query)
        }
        ("GET", ["projects", p, "zones", z, "instances", n]) => match find(state, p, z, n) {
            Some((k, i)) => ok(instance_json(state, &i, k)),
            None => not_found(&format!("projects/{p}/zones/{z}/instances/{n}")),
        },
        ("POST", ["projects", p, "zones", z, "instances", n, "setMetadata"]) => {
            if find(state, p, z, n).is_none() {
                return not_found(&format!("projects/{p}/zones/{z}/instances/{n}"));
            }
            let (fp, items) = match parse_metadata(body) {
                Ok(x) => x,
                Err(r) => return r,
            };
            let mut c = state.cloud.lock().unwrap();
            match c.set_metadata(p, Some((z, n)), &fp, items) {
                Err(Conflict) => {
                    state.event(format!("metadata 412 instance={p}/{z}/{n}"));
                    conflict()
                }
                Ok(()) => {
                    state.event(format!("metadata write instance={p}/{z}/{n}"));
                    let target = format!("projects/{p}/zones/{z}/instances/{n}");
                    let op = c.new_operation(&base, "setMetadata", &target, Some(z), p);
                    drop(c);
                    crate::guest::schedule(state.clone());
                    ok(op)
                }
            }
        }
        (
            "GET",
            [
                "projects",
                p,
                "zones",
                z,
                "instances",
                n,
                "getGuestAttributes",
            ],
        ) => {
            let Some((_, i)) = find(state, p, z, n) else {
                return not_found(&format!("projects/{p}/zones/{z}/instances/{n}"));
            };
            let path = query
                .iter()
                .find(|(k, _)| k == "queryPath")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            let enabled = crate::guest::guest_attributes_enabled(state, &i);
            if path != "hostkeys/" || i.host_keys.is_empty() || !enabled {
                return not_found_guest(path);
            }
            let items: Vec<Value> = i
                .host_keys
                .iter()
                .filter_map(|l| {
                    let mut f = l.split_whitespace();
                    Some(json!({"namespace": "hostkeys", "key": f.next()?, "value": f.next()?}))
                })
                .collect();
            ok(json!({"kind": "compute#guestAttributes", "queryPath": path,
                "queryValue": {"items": items}}))
        }
        ("GET", ["projects", p, "global", "operations", op])
        | ("POST", ["projects", p, "global", "operations", op, "wait"])
        | ("GET", ["projects", p, "zones", _, "operations", op])
        | ("POST", ["projects", p, "zones", _, "operations", op, "wait"]) => {
            match state.cloud.lock().unwrap().operation(op, method == "POST") {
                Some(v) => ok(v),
                None => not_found(&format!("projects/{p}/operations/{op}")),
            }
        }
        ("GET", ["projects", p, "global", "firewalls"]) => {
            // No firewall model: everything is reachable, and the list
            // says so with one allow-all rule.
            let everything = vec![json!({"name": "fake-allow-all", "network": "default",
                "direction": "INGRESS", "priority": 65534, "sourceRanges": ["0.0.0.0/0"],
                "allowed": [{"IPProtocol": "all"}]})];
            let rules = state.config.firewalls.as_ref().unwrap_or(&everything);
            let networks: std::collections::BTreeSet<&str> = state
                .config
                .instances
                .iter()
                .map(|i| i.network.as_str())
                .collect();
            let rules: Vec<Value> = if state.config.firewalls.is_some() {
                rules.clone()
            } else {
                networks
                    .iter()
                    .map(|n| {
                        let mut r = everything[0].clone();
                        r["name"] = json!(format!("fake-allow-all-{n}"));
                        r["network"] = json!(n);
                        r
                    })
                    .collect()
            };
            let items: Vec<Value> = rules
                .iter()
                .filter(|f| f.get("project").and_then(Value::as_str).unwrap_or(p) == *p)
                .map(|f| {
                    let mut f = f.clone();
                    if let Some(o) = f.as_object_mut() {
                        o.remove("project");
                        // The API returns the network as a URL.
                        if let Some(n) = o.get("network").and_then(Value::as_str)
                            && !n.contains('/')
                        {
                            let url = format!("{base}projects/{p}/global/networks/{n}");
                            o.insert("network".into(), json!(url));
                        }
                    }
                    f
                })
                .collect();
            ok(json!({"kind": "compute#firewallList", "items": items}))
        }
        (
            "POST",
            [
                "projects",
                p,
                "zones",
                z,
                "instances",
                n,
                "testIamPermissions",
            ],
        ) => {
            if find(state, p, z, n).is_none() {
                return not_found(&format!("projects/{p}/zones/{z}/instances/{n}"));
            }
            let asked: Value = serde_json::from_slice(body).unwrap_or_default();
            let granted: Vec<Value> = asked["permissions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|perm| {
                    let is_login = matches!(
                        perm.as_str(),
                        Some("compute.instances.osLogin" | "compute.instances.osAdminLogin")
                    );
                    !is_login || state.config.oslogin_access
                })
                .cloned()
                .collect();
            if granted.is_empty() {
                ok(json!({}))
            } else {
                ok(json!({"permissions": granted}))
            }
        }
        _ => error(
            404,
            "notFound",
            &format!("no Compute route for {method} {rest}"),
        ),
    }
}

fn not_found_guest(path: &str) -> Reply {
    error(
        404,
        "notFound",
        &format!("The resource '{path}' of type 'Guest Attribute' was not found."),
    )
}

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
