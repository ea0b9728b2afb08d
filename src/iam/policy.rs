//! Editing an IAM policy as fetched (JSON), so that what we do not touch
//! goes back as it came: other roles, other conditions, `auditConfigs`,
//! fields this version does not know. A binding is ours to extend when
//! its role is the same and its condition has the same expression (or
//! both have none); titles and descriptions are not compared, so a
//! binding made in the Console with the same expression is reused.

use serde_json::{Value, json};

use super::condition::Condition;

fn expression(b: &Value) -> Option<&str> {
    b.get("condition")?.get("expression")?.as_str()
}

fn matches(b: &Value, role: &str, cond: Option<&Condition>) -> bool {
    b["role"].as_str() == Some(role) && expression(b) == cond.map(|c| c.expression.as_str())
}

fn bindings(policy: &mut Value) -> &mut Vec<Value> {
    if !policy.is_object() {
        *policy = json!({});
    }
    let b = policy
        .as_object_mut()
        .expect("an object")
        .entry("bindings")
        .or_insert_with(|| json!([]));
    if !b.is_array() {
        *b = json!([]);
    }
    b.as_array_mut().expect("an array")
}

/// Adds `members` to the binding of `role` with `cond` (a new binding at
/// the end when there is none); returns the members that were not there.
pub fn add(
    policy: &mut Value,
    role: &str,
    members: &[String],
    cond: Option<&Condition>,
) -> Vec<String> {
    let list = bindings(policy);
    let idx = match list.iter().position(|b| matches(b, role, cond)) {
        Some(i) => i,
        None => {
            let mut b = json!({"role": role, "members": []});
            if let Some(c) = cond {
                b["condition"] = json!({
                    "title": c.title,
                    "description": c.description,
                    "expression": c.expression,
                });
            }
            list.push(b);
            list.len() - 1
        }
    };
    let b = &mut list[idx];
    if !b["members"].is_array() {
        b["members"] = json!([]);
    }
    let have = b["members"].as_array_mut().expect("an array");
    let mut added = Vec::new();
    for m in members {
        if !have.iter().any(|x| x.as_str() == Some(m)) && !added.contains(m) {
            have.push(json!(m));
            added.push(m.clone());
        }
    }
    if added.is_empty() && have.is_empty() {
        // Nothing to add to a binding we just made: do not leave it.
        list.remove(idx);
    }
    added
}

/// Removes `members` from the binding of `role` with `cond`, and the
/// binding when it is left empty; returns the members that were there.
pub fn remove(
    policy: &mut Value,
    role: &str,
    members: &[String],
    cond: Option<&Condition>,
) -> Vec<String> {
    let list = bindings(policy);
    let mut removed = Vec::new();
    list.retain_mut(|b| {
        if !matches(b, role, cond) {
            return true;
        }
        if let Some(have) = b["members"].as_array_mut() {
            have.retain(|x| {
                let hit = x.as_str().is_some_and(|s| members.iter().any(|m| m == s));
                if hit {
                    removed.push(x.as_str().unwrap_or_default().to_string());
                }
                !hit
            });
            !have.is_empty()
        } else {
            true
        }
    });
    removed
}

/// One (role, member, condition) of a policy, for listing and diffs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub role: String,
    pub member: String,
    /// `TITLE: EXPRESSION` of the binding's condition.
    pub condition: Option<String>,
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.member, self.role)?;
        if let Some(c) = &self.condition {
            write!(f, " if {c}")?;
        }
        Ok(())
    }
}

/// Every (role, member, condition) of `policy`, in the policy's order.
pub fn entries(policy: &Value) -> Vec<Entry> {
    let mut out = Vec::new();
    for b in policy["bindings"].as_array().into_iter().flatten() {
        let role = b["role"].as_str().unwrap_or_default();
        let condition = b.get("condition").map(|c| {
            let expr = c["expression"].as_str().unwrap_or_default();
            match c["title"].as_str() {
                Some(t) if !t.is_empty() => format!("{t}: {expr}"),
                _ => expr.to_string(),
            }
        });
        for m in b["members"].as_array().into_iter().flatten() {
            out.push(Entry {
                role: role.to_string(),
                member: m.as_str().unwrap_or_default().to_string(),
                condition: condition.clone(),
            });
        }
    }
    out
}

/// The lines that differ, `- ` for gone and `+ ` for new.
pub fn diff(before: &Value, after: &Value) -> Vec<String> {
    let (b, a) = (entries(before), entries(after));
    let mut out: Vec<String> = b
        .iter()
        .filter(|e| !a.contains(e))
        .map(|e| format!("- {e}"))
        .collect();
    out.extend(
        a.iter()
            .filter(|e| !b.contains(e))
            .map(|e| format!("+ {e}")),
    );
    out
}

/// The body of setIamPolicy: version 3 (conditions need it) and the
/// fetched etag, which the policy already carries (without it, IAM lets
/// a v1 write drop every condition).
pub fn for_set(mut policy: Value) -> Value {
    if !policy.is_object() {
        policy = json!({});
    }
    policy["version"] = json!(3);
    json!({ "policy": policy })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::condition::Limits;

    fn ports(p: &[u16]) -> Condition {
        Limits {
            ports: p.to_vec(),
            ..Limits::default()
        }
        .condition()
        .unwrap()
    }

    const ROLE: &str = "roles/iap.tunnelResourceAccessor";

    fn seed() -> Value {
        json!({
            "version": 3,
            "etag": "BwYb0d2zYxQ=",
            "bindings": [
                {"role": "roles/iap.admin", "members": ["user:root@example.com"], "x-unknown": 1},
                {"role": ROLE, "members": ["group:ops@example.com"],
                 "condition": {"title": "console made", "expression": "(destination.port == 22 || destination.port == 3389)"}},
            ],
            "auditConfigs": [{"service": "allServices"}]
        })
    }

    #[test]
    fn adding_joins_the_binding_with_the_same_expression_and_keeps_the_rest() {
        let mut p = seed();
        let before = p.clone();
        let added = add(
            &mut p,
            ROLE,
            &["user:a@example.com".into()],
            Some(&ports(&[3389, 22])),
        );
        assert_eq!(added, ["user:a@example.com"]);
        let b = p["bindings"].as_array().unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0], before["bindings"][0]);
        assert_eq!(b[1]["condition"]["title"], "console made");
        assert_eq!(
            b[1]["members"],
            json!(["group:ops@example.com", "user:a@example.com"])
        );
        assert_eq!(p["auditConfigs"], before["auditConfigs"]);
        assert_eq!(p["etag"], before["etag"]);
        assert_eq!(
            diff(&before, &p),
            [
                "+ user:a@example.com roles/iap.tunnelResourceAccessor if console made: (destination.port == 22 || destination.port == 3389)"
            ]
        );
        // Again: nothing new.
        let again = p.clone();
        assert!(
            add(
                &mut p,
                ROLE,
                &["user:a@example.com".into()],
                Some(&ports(&[22, 3389]))
            )
            .is_empty()
        );
        assert_eq!(p, again);
    }

    #[test]
    fn another_condition_or_none_is_another_binding() {
        let mut p = seed();
        add(
            &mut p,
            ROLE,
            &["user:a@example.com".into()],
            Some(&ports(&[22])),
        );
        add(&mut p, ROLE, &["user:a@example.com".into()], None);
        let b = p["bindings"].as_array().unwrap();
        assert_eq!(b.len(), 4);
        assert_eq!(b[2]["condition"]["expression"], "destination.port == 22");
        assert_eq!(b[2]["condition"]["title"], "iap-ssh: port 22");
        assert!(b[3].get("condition").is_none());
    }

    #[test]
    fn an_empty_policy_gets_its_first_binding() {
        let mut p = json!({"etag": "ACAB"});
        add(
            &mut p,
            ROLE,
            &["user:a@example.com".into(), "user:a@example.com".into()],
            None,
        );
        assert_eq!(
            p["bindings"],
            json!([{"role": ROLE, "members": ["user:a@example.com"]}])
        );
        let body = for_set(p);
        assert_eq!(body["policy"]["version"], 3);
        assert_eq!(body["policy"]["etag"], "ACAB");
    }

    #[test]
    fn removing_drops_emptied_bindings_only() {
        let mut p = seed();
        add(
            &mut p,
            ROLE,
            &["user:a@example.com".into()],
            Some(&ports(&[22, 3389])),
        );
        let removed = remove(
            &mut p,
            ROLE,
            &["user:a@example.com".into(), "user:z@example.com".into()],
            Some(&ports(&[22, 3389])),
        );
        assert_eq!(removed, ["user:a@example.com"]);
        assert_eq!(p, seed());
        let removed = remove(
            &mut p,
            ROLE,
            &["group:ops@example.com".into()],
            Some(&ports(&[22, 3389])),
        );
        assert_eq!(removed, ["group:ops@example.com"]);
        assert_eq!(p["bindings"].as_array().unwrap().len(), 1);
        // The unconditional binding is not the conditional one.
        let mut q = seed();
        assert!(remove(&mut q, ROLE, &["group:ops@example.com".into()], None).is_empty());
        assert_eq!(q, seed());
    }
}
