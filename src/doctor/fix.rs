//! `doctor --fix`: the changes a failed check can be fixed with (a
//! firewall rule, the tunnel role), each shown and confirmed, then applied
//! and reported as a check line.

use std::io::Write;

use super::Report;
use crate::error::exit;
use crate::gce::Api;
use crate::gce::compute::last_segment;

/// A change `--fix` can make for a failed check.
pub(super) enum Fix {
    /// firewalls.insert of `rule` (names tried in turn if taken).
    Firewall {
        project: String,
        rule: serde_json::Value,
    },
    /// The tunnel role for `member` on the VM, for this port.
    Grant {
        resource: crate::iam::Resource,
        member: String,
        port: u16,
    },
}

/// Asks on stderr whether to apply `what` (yes without asking under
/// `--yes`); anything but y/yes, or no answer, is no.
fn confirm(what: &str, yes: bool) -> bool {
    if yes {
        return true;
    }
    eprint!("apply: {what}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(n) if n > 0 => matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
        _ => {
            eprintln!();
            false
        }
    }
}

/// Applies one fix after a yes; reports the outcome as a check line.
pub(super) async fn apply(r: &mut Report, api: &Api, fix: &Fix, yes: bool) {
    match fix {
        Fix::Firewall { project, rule } => {
            let base = rule["name"]
                .as_str()
                .unwrap_or("allow-ingress-from-iap")
                .to_string();
            let what = format!(
                "create firewall rule {base} in {project}: allow {} to tcp:{} on {}{} at priority {}",
                rule["sourceRanges"][0].as_str().unwrap_or("?"),
                rule["allowed"][0]["ports"][0].as_str().unwrap_or("?"),
                last_segment(rule["network"].as_str().unwrap_or("")),
                rule["targetTags"]
                    .as_array()
                    .map(|t| format!(
                        " for tags {}",
                        t.iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    ))
                    .unwrap_or_default(),
                rule["priority"]
            );
            if !confirm(&what, yes) {
                r.warn(&format!("not applied: {what}"));
                return;
            }
            // A taken name (409 alreadyExists): the next of -2 … -5.
            let mut last = None;
            for n in 1..=5 {
                let mut rule = rule.clone();
                let name = if n == 1 {
                    base.clone()
                } else {
                    format!("{base}-{n}")
                };
                rule["name"] = serde_json::json!(name);
                match api.insert_firewall(project, &rule).await {
                    Ok(()) => {
                        r.fixed(
                            exit::BACKEND_UNREACHABLE,
                            &format!("fixed: created firewall rule {name} in {project}"),
                        );
                        return;
                    }
                    Err(e) if e.status() == Some(409) => last = Some(e),
                    Err(e) => {
                        last = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = last {
                let u = e.to_user(&format!(
                    "creating firewall rules needs compute.firewalls.create on {project} (roles/compute.securityAdmin); ask an admin to run the gcloud command above"
                ));
                r.fail(
                    u.code,
                    &format!("fix failed: {}", u.cause),
                    u.fix.as_deref().unwrap_or(""),
                );
            }
        }
        Fix::Grant {
            resource,
            member,
            port,
        } => {
            let what = format!(
                "grant {member} roles/iap.tunnelResourceAccessor on {} for tcp:{port}",
                resource.describe()
            );
            if !confirm(&what, yes) {
                r.warn(&format!("not applied: {what}"));
                return;
            }
            let cond = crate::iam::condition::Limits {
                ports: vec![*port],
                ..Default::default()
            }
            .condition();
            let res = api
                .edit_tunnel_grant(
                    resource,
                    std::slice::from_ref(member),
                    cond.as_ref(),
                    false,
                    false,
                )
                .await;
            match res {
                Ok(_) => r.fixed(exit::NOT_AUTHORIZED, &format!("fixed: {what}")),
                Err(e) => {
                    let u = e.to_user("granting tunnel access needs iap.tunnelInstances.setIamPolicy (roles/iap.admin); ask an admin to run the iap-ssh grant command above");
                    r.fail(
                        u.code,
                        &format!("fix failed: {}", u.cause),
                        u.fix.as_deref().unwrap_or(""),
                    );
                }
            }
        }
    }
}
