//! `instances.aggregatedList`: the legacy and `=` filter syntaxes,
//! pagination, and per-zone warnings, as the API answers.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{api_base, error, instance_json, ok};
use crate::config::Instance;
use crate::oauth::Reply;
use crate::state::State;

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

pub(super) fn aggregated_list(state: &State, project: &str, query: &[(String, String)]) -> Reply {
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
