//! `instances.aggregatedList`: the legacy and `=` filter syntaxes,
//! pagination, and per-zone warnings, as the API answers.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{api_base, error, instance_json, ok};
use crate::config::Instance;
use crate::oauth::Reply;
use crate::state::State;

/// One term of a `filter` expression: `FIELD eq|ne REGEX` (legacy
/// syntax: the regex must match the whole value) or `FIELD = VALUE` /
/// `FIELD != VALUE` (spaces optional). FIELD is `name`, `status`, `id`
/// or `labels.KEY`. Terms are joined by `AND` or written as
/// parenthesised groups side by side; all must hold.
struct Filter {
    field: String,
    re: regex::Regex,
    negate: bool,
}

fn parse_filter(f: &str) -> Result<Vec<Filter>, String> {
    let whole = f.trim();
    let bad =
        || format!("Invalid value for field 'filter': '{whole}'. Invalid list filter expression.");
    let terms: Vec<String> = if whole.contains(" AND ") {
        whole.split(" AND ").map(str::to_string).collect()
    } else if whole.starts_with('(') && whole.contains(") (") {
        whole.split(") (").map(str::to_string).collect()
    } else {
        vec![whole.to_string()]
    };
    let term_re =
        regex::Regex::new(r"^([A-Za-z_][A-Za-z0-9_.-]*)\s*(!=|=|eq\s|ne\s)\s*(.+)$").unwrap();
    let mut out = Vec::new();
    for t in terms {
        let t = t
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        let c = term_re.captures(t).ok_or_else(bad)?;
        let (field, op, value) = (&c[1], c[2].trim(), c[3].trim().trim_matches('"'));
        let (pattern, negate) = match op {
            "eq" => (value.to_string(), false),
            "ne" => (value.to_string(), true),
            "=" => (regex::escape(value), false),
            "!=" => (regex::escape(value), true),
            _ => return Err(bad()),
        };
        if !matches!(field, "name" | "status" | "id") && !field.starts_with("labels.") {
            return Err(bad());
        }
        let re = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|_| bad())?;
        out.push(Filter {
            field: field.to_string(),
            re,
            negate,
        });
    }
    Ok(out)
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
            let Some(terms) = &filter else { return true };
            terms.iter().all(|f| {
                let value = match f.field.as_str() {
                    "name" => Some(i.name.clone()),
                    "id" => Some(i.id.clone()),
                    "status" => statuses
                        .get(&(i.project.clone(), i.zone.clone(), i.name.clone()))
                        .cloned(),
                    l => i.labels.get(l.trim_start_matches("labels.")).cloned(),
                };
                match value {
                    Some(v) => f.re.is_match(&v) != f.negate,
                    // No such label: `=` does not hold, `!=` does.
                    None => f.negate,
                }
            })
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
