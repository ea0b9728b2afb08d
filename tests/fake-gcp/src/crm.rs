//! Cloud Resource Manager v1 `projects.list`: every project of the
//! configuration (and of its instances), paged, with the
//! `lifecycleState:ACTIVE` filter; `projects.getIamPolicy` (the policy
//! lives with IAP's, [`crate::iap::project_policy`]).

use serde_json::json;

use crate::oauth::Reply;
use crate::state::State;

pub fn handle(state: &State, method: &str, rest: &str, query: &[(String, String)]) -> Reply {
    if method == "POST"
        && let Some(p) = rest
            .strip_prefix("projects/")
            .and_then(|r| r.strip_suffix(":getIamPolicy"))
    {
        return crate::iap::project_policy(state, p);
    }
    if method != "GET" || rest != "projects" {
        return crate::compute::error(
            404,
            "notFound",
            &format!("no CRM route for {method} {rest}"),
        );
    }
    let q = |k: &str| query.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    let filter = q("filter").unwrap_or("");
    let active_only = match filter {
        "" => false,
        "lifecycleState:ACTIVE" | "lifecycleState=ACTIVE" => true,
        f => {
            return crate::compute::error(
                400,
                "badRequest",
                &format!("Request contains an invalid argument: filter {f:?}"),
            );
        }
    };
    let size = q("pageSize")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(500)
        .clamp(1, 500);
    let start = q("pageToken")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let ids: Vec<String> = state
        .cloud
        .lock()
        .unwrap()
        .projects
        .keys()
        .cloned()
        .collect();
    let all: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            let state_of = state
                .config
                .projects
                .iter()
                .find(|p| &p.id == id)
                .and_then(|p| p.lifecycle_state.clone())
                .unwrap_or_else(|| "ACTIVE".into());
            json!({"projectId": id, "projectNumber": crate::iap::project_number(id),
                   "lifecycleState": state_of, "name": id})
        })
        .filter(|p| !active_only || p["lifecycleState"] == "ACTIVE")
        .collect();
    state.event(format!("crm projects.list start={start} size={size}"));
    let page: Vec<_> = all.iter().skip(start).take(size).cloned().collect();
    let mut v = json!({"projects": page});
    if start + size < all.len() {
        v["nextPageToken"] = json!((start + size).to_string());
    }
    (200, v.to_string())
}
