//! IAP's IAM on tunnel resources (admin-windows-putty §1): getIamPolicy,
//! setIamPolicy (etag-locked; a stale etag is 409 ABORTED, a conditional
//! binding below version 3 or a condition IAM cannot parse is 400) and
//! testIamPermissions, for every resource form (project given by ID or
//! number). When `Config::iap_policies` is set, the relay admits a tunnel
//! only if a `roles/iap.tunnelResourceAccessor` binding on the project,
//! the zone or the VM names the principal and its condition holds for the
//! destination port and IP and the time (evaluated by [`crate::cel`]).
//! The project's own (Cloud Resource Manager) policy is stored here too,
//! under `projects/P`: its tunnel-role and Owner bindings are inherited by
//! every tunnel resource of the project, as IAM inherits them.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::state::State;

pub const TUNNEL_ROLE: &str = "roles/iap.tunnelResourceAccessor";

/// Stored policies: resource path (project by ID) → policy without etag.
#[derive(Debug, Default)]
pub struct Policies {
    pub map: BTreeMap<String, Value>,
    versions: BTreeMap<String, u64>,
    conflicts_left: u32,
    /// setIamPolicy calls that were stored.
    pub writes: u64,
}

impl Policies {
    pub fn new(initial: &BTreeMap<String, Value>, conflicts: u32) -> Policies {
        Policies {
            map: initial.clone(),
            conflicts_left: conflicts,
            ..Policies::default()
        }
    }

    fn etag(&self, res: &str) -> String {
        let v = self.versions.get(res).copied().unwrap_or(0);
        if v == 0 {
            "ACAB".into()
        } else {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(format!("etag-{v}"))
        }
    }

    fn bump(&mut self, res: &str) {
        *self.versions.entry(res.to_string()).or_default() += 1;
    }

    /// The policy as getIamPolicy returns it.
    pub fn get(&self, res: &str) -> Value {
        let mut p = self.map.get(res).cloned().unwrap_or_else(|| json!({}));
        let conditional = p["bindings"]
            .as_array()
            .is_some_and(|b| b.iter().any(|x| x.get("condition").is_some()));
        if p["bindings"].as_array().is_some_and(|b| !b.is_empty()) {
            p["version"] = json!(if conditional { 3 } else { 1 });
        }
        p["etag"] = json!(self.etag(res));
        p
    }
}

/// A fake project number for a project ID (stable, 12 digits).
pub fn project_number(id: &str) -> String {
    let mut h: u64 = 1469598103934665603;
    for b in id.bytes() {
        h = (h ^ b as u64).wrapping_mul(1099511628211);
    }
    format!("{}", 100_000_000_000 + h % 900_000_000_000)
}

fn err(code: u16, status: &str, message: &str) -> (u16, String) {
    (
        code,
        json!({"error": {"code": code, "status": status, "message": message}}).to_string(),
    )
}

/// `projects/P/iap_tunnel/...` with P as the ID, or None when the path
/// is no tunnel resource.
fn normalize(state: &State, res: &str) -> Option<String> {
    let segs: Vec<&str> = res.split('/').collect();
    if segs.len() < 3 || segs[0] != "projects" || segs[2] != "iap_tunnel" {
        return None;
    }
    let ok = matches!(
        &segs[3..],
        [] | ["zones", _]
            | ["zones", _, "instances", _]
            | ["locations", _]
            | ["locations", _, "destGroups", _]
    );
    if !ok || segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    let project = state
        .cloud
        .lock()
        .unwrap()
        .projects
        .keys()
        .find(|id| id.as_str() == segs[1] || project_number(id) == segs[1])
        .cloned()
        .or_else(|| {
            state
                .config
                .has_project(segs[1])
                .then(|| segs[1].to_string())
        })?;
    let mut out = vec!["projects", project.as_str()];
    out.extend(&segs[2..]);
    Some(out.join("/"))
}

pub fn handle(state: &State, caller: &str, method: &str, rest: &str, body: &[u8]) -> (u16, String) {
    let Some((res, verb)) = rest.rsplit_once(':') else {
        return err(
            404,
            "NOT_FOUND",
            &format!("no IAP route for {method} {rest}"),
        );
    };
    if method != "POST" {
        return err(
            404,
            "NOT_FOUND",
            &format!("no IAP route for {method} {rest}"),
        );
    }
    let Some(res) = normalize(state, res) else {
        return err(404, "NOT_FOUND", "Requested entity was not found.");
    };
    let segs: Vec<&str> = res.split('/').collect();
    if let ["projects", p, "iap_tunnel", "zones", z, "instances", n] = segs.as_slice()
        && state.config.find(p, z, n).is_none()
    {
        return err(404, "NOT_FOUND", "Requested entity was not found.");
    }
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match verb {
        "getIamPolicy" => {
            state.event(format!(
                "iap getIamPolicy {res} requested={}",
                body["options"]["requestedPolicyVersion"]
            ));
            (200, state.iap.lock().unwrap().get(&res).to_string())
        }
        "setIamPolicy" => set(state, caller, &res, &body),
        "testIamPermissions" => {
            let (p, z, n) = match segs.as_slice() {
                ["projects", p, "iap_tunnel", "zones", z, "instances", n] => (*p, *z, *n),
                _ => return (200, "{}".into()),
            };
            let granted = state.config.iap_access
                && (state.config.iap_policies.is_none() || bound(state, caller, p, z, n, None));
            if granted {
                (
                    200,
                    json!({"permissions": ["iap.tunnelInstances.accessViaIAP"]}).to_string(),
                )
            } else {
                (200, "{}".into())
            }
        }
        _ => err(404, "NOT_FOUND", &format!("no IAP method {verb}")),
    }
}

fn set(state: &State, caller: &str, res: &str, body: &Value) -> (u16, String) {
    if !state.config.iap_admin {
        state.event(format!("iap setIamPolicy {res} denied caller={caller}"));
        return err(
            403,
            "PERMISSION_DENIED",
            &format!("The caller does not have permission iap.tunnel*.setIamPolicy on {res}"),
        );
    }
    let Some(policy) = body.get("policy").filter(|p| p.is_object()) else {
        return err(400, "INVALID_ARGUMENT", "policy is required");
    };
    let version = policy["version"].as_i64().unwrap_or(0);
    let bindings = policy["bindings"].as_array().cloned().unwrap_or_default();
    for b in &bindings {
        if !b["role"].as_str().is_some_and(|r| r.starts_with("roles/")) {
            return err(
                400,
                "INVALID_ARGUMENT",
                &format!("invalid role in binding {b}"),
            );
        }
        for m in b["members"].as_array().into_iter().flatten() {
            let m = m.as_str().unwrap_or("");
            let known = [
                "user:",
                "group:",
                "serviceAccount:",
                "domain:",
                "principal://",
                "principalSet://",
                "deleted:",
            ]
            .iter()
            .any(|p| m.starts_with(p) && m.len() > p.len());
            if !known || m.chars().any(char::is_whitespace) {
                return err(400, "INVALID_ARGUMENT", &format!("Invalid member: {m}"));
            }
        }
        if let Some(c) = b.get("condition") {
            if version < 3 {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    "Conditional bindings require policy version 3",
                );
            }
            let (Some(expr), Some(title)) = (c["expression"].as_str(), c["title"].as_str()) else {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    "A condition needs a title and an expression",
                );
            };
            if title.is_empty() || title.len() > 100 {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    "Condition title must be 1 to 100 characters",
                );
            }
            if let Err(e) = crate::cel::parse(expr) {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("Condition expression {expr:?} is invalid: {e}"),
                );
            }
        }
    }
    let mut pol = state.iap.lock().unwrap();
    if pol.conflicts_left > 0 {
        // Another administrator writes first: our caller's etag is stale.
        pol.conflicts_left -= 1;
        let mut other = pol.map.get(res).cloned().unwrap_or_else(|| json!({}));
        let list = other
            .as_object_mut()
            .unwrap()
            .entry("bindings")
            .or_insert_with(|| json!([]));
        let n = pol.versions.get(res).copied().unwrap_or(0);
        list.as_array_mut().unwrap().push(json!({
            "role": "roles/iap.admin",
            "members": [format!("user:other-admin-{n}@example.com")]
        }));
        pol.map.insert(res.to_string(), other);
        pol.bump(res);
        state.event(format!(
            "iap setIamPolicy {res} conflict (a concurrent writer went first)"
        ));
    }
    let current = pol.etag(res);
    match policy["etag"].as_str() {
        Some(e) if e != current => {
            state.event(format!("iap setIamPolicy {res} stale etag"));
            return err(
                409,
                "ABORTED",
                "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.",
            );
        }
        _ => {}
    }
    let mut stored = json!({});
    if !bindings.is_empty() {
        stored["bindings"] = json!(bindings);
    }
    for (k, v) in policy.as_object().unwrap() {
        if !matches!(k.as_str(), "etag" | "version" | "bindings") {
            stored[k] = v.clone();
        }
    }
    pol.map.insert(res.to_string(), stored);
    pol.bump(res);
    pol.writes += 1;
    state.event(format!(
        "iap setIamPolicy {res} version={version} etag_sent={} policy={}",
        policy.get("etag").is_some(),
        pol.map[res]
    ));
    (200, pol.get(res).to_string())
}

/// Does a tunnel binding at the VM's project, zone or VM level name
/// `principal`, with its condition true for this destination (`port`
/// None: conditions are not evaluated, as testIamPermissions does)?
pub fn bound(
    state: &State,
    principal: &str,
    p: &str,
    z: &str,
    n: &str,
    dest: Option<(u16, &str)>,
) -> bool {
    let levels = [
        format!("projects/{p}"),
        format!("projects/{p}/iap_tunnel"),
        format!("projects/{p}/iap_tunnel/zones/{z}"),
        format!("projects/{p}/iap_tunnel/zones/{z}/instances/{n}"),
    ];
    bound_at(state, principal, &levels, dest)
}

/// [`bound`] for a host reached through destination group `g` of region
/// `r`: the project's, the region's or the group's policy.
pub fn host_bound(
    state: &State,
    principal: &str,
    p: &str,
    r: &str,
    g: Option<&str>,
    dest: (u16, &str),
) -> bool {
    let mut levels = vec![
        format!("projects/{p}"),
        format!("projects/{p}/iap_tunnel"),
        format!("projects/{p}/iap_tunnel/locations/{r}"),
    ];
    if let Some(g) = g {
        levels.push(format!(
            "projects/{p}/iap_tunnel/locations/{r}/destGroups/{g}"
        ));
    }
    bound_at(state, principal, &levels, Some(dest))
}

fn bound_at(state: &State, principal: &str, levels: &[String], dest: Option<(u16, &str)>) -> bool {
    let pol = state.iap.lock().unwrap();
    levels.iter().any(|res| {
        pol.map.get(res).is_some_and(|policy| {
            policy["bindings"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|b| {
                    (b["role"] == TUNNEL_ROLE || (is_project_policy(res) && b["role"] == OWNER))
                        && b["members"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|m| member_is(m.as_str().unwrap_or(""), principal))
                        && match (b.get("condition"), dest) {
                            (None, _) | (Some(_), None) => true,
                            (Some(c), Some((port, ip))) => {
                                let expr = c["expression"].as_str().unwrap_or("");
                                matches!(
                                    crate::cel::eval_str(
                                        expr,
                                        port,
                                        ip,
                                        &state.config.access_levels
                                    ),
                                    Ok(crate::cel::Val::Bool(true))
                                )
                            }
                        }
                })
        })
    })
}

/// Owner holds every permission, the tunnel's included; only granted on
/// the project's own policy.
const OWNER: &str = "roles/owner";

/// Is `res` a project's own policy (`projects/P`), not an IAP resource?
fn is_project_policy(res: &str) -> bool {
    res.split('/').count() == 2
}

/// Cloud Resource Manager v1 `projects.getIamPolicy`: the project's own
/// policy with its etag (403 unless `Config::project_policy_readable`).
pub fn project_policy(state: &State, project: &str) -> (u16, String) {
    if !state.config.has_project(project)
        && !state.cloud.lock().unwrap().projects.contains_key(project)
    {
        return err(
            403,
            "PERMISSION_DENIED",
            &format!("The caller does not have permission (project {project})"),
        );
    }
    if !state.config.project_policy_readable {
        state.event(format!("crm getIamPolicy {project} 403"));
        return err(
            403,
            "PERMISSION_DENIED",
            "The caller does not have permission",
        );
    }
    state.event(format!("crm getIamPolicy {project}"));
    (
        200,
        state
            .iap
            .lock()
            .unwrap()
            .get(&format!("projects/{project}"))
            .to_string(),
    )
}

fn member_is(member: &str, principal: &str) -> bool {
    match member.split_once(':') {
        Some(("user" | "serviceAccount", e)) => e.eq_ignore_ascii_case(principal),
        Some(("domain", d)) => principal
            .rsplit_once('@')
            .is_some_and(|(_, pd)| pd.eq_ignore_ascii_case(d)),
        _ => false,
    }
}
