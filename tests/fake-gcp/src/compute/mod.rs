//! The Compute Engine REST API (`/compute/v1/…`): projects.get,
//! instances.get / aggregatedList (filter, pagination, per-zone warnings),
//! setMetadata / setCommonInstanceMetadata (fingerprint lock, 412),
//! zonal and global operations (`get` and `wait`), getGuestAttributes and
//! firewalls.list, with the JSON shapes of google-apis.md.
//!
//! By file: this one routes requests and answers instances, projects,
//! operations and guest attributes; `list` is aggregatedList with its
//! filter; `metadata` parses metadata bodies; `firewall` is the firewall
//! model the relay consults.

mod firewall;
mod list;
mod metadata;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::cloud::Conflict;
use crate::config::Instance;
use crate::oauth::Reply;
use crate::state::State;
pub use firewall::firewall_admits;
use list::aggregated_list;
use metadata::{conflict, parse_metadata};

pub fn error(code: u16, reason: &str, message: &str) -> Reply {
    (
        code,
        json!({"error": {"code": code, "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}]}})
        .to_string(),
    )
}

/// A JSON request body, or the 400 the APIs answer for one that is not.
pub fn json_body(body: &[u8]) -> Result<Value, Reply> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            400,
            "parseError",
            &format!("Invalid JSON payload received. {e}"),
        )
    })
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

/// The internal IP of NIC `n` of the `index`th configured instance.
pub fn nic_ip(index: usize, n: usize) -> String {
    format!("10.{}.{}.{}", 128 + n, (index / 250) % 250, index % 250 + 2)
}

/// [`nic_ip`], or nic0's configured `network_ip`.
pub fn nic_ip_of(i: &Instance, index: usize, n: usize) -> String {
    match (&i.network_ip, n) {
        (Some(ip), 0) => ip.clone(),
        _ => nic_ip(index, n),
    }
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
            let mut nic = json!({
                "kind": "compute#networkInterface",
                "name": name,
                "network": format!("{base}projects/{}/global/networks/{}", i.project, i.network),
                "networkIP": nic_ip_of(i, index, n),
            });
            if n == 0
                && let Some(st) = &i.stack_type
            {
                nic["stackType"] = json!(st);
                if st != "IPV4_ONLY" {
                    nic["ipv6Address"] = json!(format!("fd20:0:0:{index:x}::2"));
                }
            }
            nic
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
        "labels": i.labels,
    });
    if let Some(sa) = &i.service_account {
        v["serviceAccounts"] = json!([{"email": sa,
            "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]);
    }
    v
}

fn find(state: &State, p: &str, z: &str, n: &str) -> Option<(usize, Instance)> {
    let k = *state.instance_index.get(&(p.into(), z.into(), n.into()))?;
    Some((k, state.config.instances[k].clone()))
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
    if let ["projects", p, ..] = segs.as_slice()
        && state
            .config
            .projects
            .iter()
            .any(|x| x.id == *p && x.compute_disabled)
    {
        state.event(format!("compute disabled in {p}"));
        return error(
            403,
            "accessNotConfigured",
            &format!(
                "Compute Engine API has not been used in project {} before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/compute.googleapis.com/overview?project={} then retry.",
                crate::iap::project_number(p),
                crate::iap::project_number(p)
            ),
        );
    }
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
        ("GET", ["projects", p, "zones", z, "instances", n, "serialPort"]) => {
            if find(state, p, z, n).is_none() {
                return not_found(&format!("projects/{p}/zones/{z}/instances/{n}"));
            }
            let q = |k: &str| query.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
            let port = q("port").and_then(|v| v.parse::<u32>().ok()).unwrap_or(1);
            let start = q("start").and_then(|v| v.parse::<i64>().ok());
            state.event(format!("serialPort {n} port={port} start={start:?}"));
            ok(crate::windows::serial_output(
                state,
                &(p.to_string(), z.to_string(), n.to_string()),
                port,
                start,
            ))
        }
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
                    crate::windows::schedule(
                        state.clone(),
                        (p.to_string(), z.to_string(), n.to_string()),
                    );
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
        ("POST", ["projects", p, "global", "firewalls"]) => firewall::insert(state, &base, p, body),
        ("GET", ["projects", p, "global", "firewalls", name]) => {
            let model = state
                .cloud
                .lock()
                .unwrap()
                .firewalls
                .clone()
                .unwrap_or_default();
            match model
                .iter()
                .find(|f| f["name"] == *name && f.get("project").and_then(Value::as_str) == Some(p))
            {
                Some(f) => {
                    let mut f = f.clone();
                    f.as_object_mut().unwrap().remove("project");
                    ok(f)
                }
                None => not_found(&format!("projects/{p}/global/firewalls/{name}")),
            }
        }
        ("GET", ["projects", p, "global", "firewalls"]) => {
            // No firewall model: everything is reachable, and the list
            // says so with one allow-all rule.
            let everything = vec![json!({"name": "fake-allow-all", "network": "default",
                "direction": "INGRESS", "priority": 65534, "sourceRanges": ["0.0.0.0/0"],
                "allowed": [{"IPProtocol": "all"}]})];
            let model = state.cloud.lock().unwrap().firewalls.clone();
            let rules = model.as_ref().unwrap_or(&everything);
            let networks: std::collections::BTreeSet<&str> = state
                .config
                .instances
                .iter()
                .map(|i| i.network.as_str())
                .collect();
            let rules: Vec<Value> = if model.is_some() {
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
