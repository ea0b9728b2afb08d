//! The `grant` feature: who may open IAP tunnels to what. Adds or removes
//! `roles/iap.tunnelResourceAccessor` on IAP's own tunnel resources (a
//! project's tunnels, a zone, one VM, a destination group), with the
//! errors a user can act on, and collects the grants that apply to a
//! resource for `grant --list`.

use serde_json::Value;

use crate::error::{UserError, exit};
use crate::gce::Api;
use crate::gce::iap::Edited;
use crate::iam::condition::Condition;
use crate::iam::{Resource, TUNNEL_ROLE, policy};

/// One grant: (level, member, condition).
pub type Row = (String, String, String);

/// Grants (or with `remove`, takes away) the tunnel role to `members` on
/// `r` under `cond`; with `dry_run`, computes the change only. The
/// outcome is the members whose binding changed.
pub async fn edit(
    api: &Api,
    r: &Resource,
    members: &[String],
    cond: Option<&Condition>,
    remove: bool,
    dry_run: bool,
) -> Result<Edited<Vec<String>>, UserError> {
    api.edit_tunnel_grant(r, members, cond, remove, dry_run)
        .await
        .map_err(|e| match e.status() {
            Some(409 | 412) => UserError::new(exit::OTHER, format!("{e} (the policy kept changing while we wrote it)"))
                .with_fix("someone else is editing this policy; run the command again"),
            Some(400) => UserError::new(exit::USAGE, e.to_string()).with_fix(
                "IAM refused the policy; check the --ip, --access-level and --port values (for an access level, that the policy number and level exist)",
            ),
            _ => e.to_user(&fix_403(r)),
        })
}

fn fix_403(r: &Resource) -> String {
    let what = match r {
        Resource::Project(_) => "iap.tunnel.setIamPolicy",
        Resource::Zone(..) => "iap.tunnelZones.setIamPolicy",
        Resource::Instance(..) => "iap.tunnelInstances.setIamPolicy",
        Resource::DestGroup(..) => "iap.tunnelDestGroups.setIamPolicy",
    };
    format!(
        "changing who may tunnel needs {what} (roles/iap.admin, or Owner) on the project; ask an admin, or ask them to run this same command"
    )
}

/// The grants in policy `p` that open tunnels, one line each: the level
/// `level` gives for a binding's role (None: not a tunnel grant), its
/// member and condition.
fn grant_rows(p: &Value, level: impl Fn(&str) -> Option<String>) -> Vec<Row> {
    policy::entries(p)
        .into_iter()
        .filter_map(|e| {
            Some((
                level(&e.role)?,
                e.member,
                e.condition.unwrap_or_else(|| "any port".into()),
            ))
        })
        .collect()
}

/// A tunnel resource's grants.
fn grants_of(r: &Resource, p: &Value) -> Vec<Row> {
    let level = match r {
        Resource::Project(_) => "project".to_string(),
        Resource::Zone(_, z) => format!("zone {z}"),
        Resource::Instance(_, z, i) => format!("vm {i} ({z})"),
        Resource::DestGroup(_, reg, g) => format!("dest-group {g} ({reg})"),
    };
    grant_rows(p, |role| (role == TUNNEL_ROLE).then(|| level.clone()))
}

/// The tunnel grants of a project's own IAM policy: the tunnel role, and
/// Owner (which holds every permission).
fn project_grants(p: &Value) -> Vec<Row> {
    grant_rows(p, |role| match role {
        TUNNEL_ROLE => Some("project IAM".into()),
        "roles/owner" => Some("project IAM (Owner)".into()),
        _ => None,
    })
}

/// The tunnel grants on `r` and, for a project or a zone, on the zones
/// and VMs below it (from the VMs aggregatedList finds), read 8 at a time,
/// with the project's own IAM policy first; and a note when that policy
/// cannot be read.
pub async fn list(api: &Api, r: &Resource) -> Result<(Vec<Row>, Option<String>), UserError> {
    use futures_util::StreamExt;
    let mut resources = vec![r.clone()];
    match r {
        Resource::Project(p) | Resource::Zone(p, _) => {
            let vms = api.aggregated_instances(p, None).await.map_err(|e| {
                e.to_user(
                    "listing needs compute.instances.list on the project (roles/compute.viewer)",
                )
            })?;
            let mut zones = std::collections::BTreeSet::new();
            for v in &vms {
                let z = v.zone_name().to_string();
                // Names from the API reach URLs: only valid ones.
                if !crate::ssh::names::is_resource_name(&z)
                    || !crate::ssh::names::is_resource_name(&v.name)
                {
                    continue;
                }
                if matches!(r, Resource::Zone(_, rz) if *rz != z) {
                    continue;
                }
                zones.insert(z.clone());
                resources.push(Resource::Instance(p.clone(), z, v.name.clone()));
            }
            if matches!(r, Resource::Project(_)) {
                resources.extend(zones.into_iter().map(|z| Resource::Zone(p.clone(), z)));
            }
        }
        Resource::Instance(p, z, _) => {
            // What applies to one VM: its own grants and those above it.
            resources.push(Resource::Zone(p.clone(), z.clone()));
            resources.push(Resource::Project(p.clone()));
        }
        Resource::DestGroup(..) => {}
    }
    resources.sort();
    resources.dedup();
    let fetched: Vec<(Resource, Result<Value, crate::gce::ApiError>)> =
        futures_util::stream::iter(resources.into_iter().map(|x| async move {
            let p = api.get_iam_policy(&x).await;
            (x, p)
        }))
        .buffered(8)
        .collect()
        .await;
    let mut rows = Vec::new();
    for (x, p) in fetched {
        let p = p.map_err(|e| {
            e.to_user("reading who may tunnel needs iap.tunnel*.getIamPolicy (roles/iap.admin or roles/iap.settingsAdmin…); ask an admin")
        })?;
        rows.extend(grants_of(&x, &p));
    }
    // The project's own policy, inherited by every tunnel resource of it
    // (most grants are made there: gcloud projects add-iam-policy-binding).
    // Not being allowed to read it is a note, not a failure.
    let project = r.project();
    let note = match api.project_iam_policy(project).await {
        Ok(pol) => {
            rows = [project_grants(&pol), rows].concat();
            None
        }
        Err(e) => Some(format!(
            "# not shown: the project's own IAM policy, which also grants {TUNNEL_ROLE} (and Owner) on every tunnel ({}); reading it needs resourcemanager.projects.getIamPolicy: gcloud projects get-iam-policy {project}",
            match e.status() {
                Some(s) => format!("HTTP {s}"),
                None => crate::error::printable(&e.to_string()),
            }
        )),
    };
    Ok((rows, note))
}
