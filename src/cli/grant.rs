//! `iap-ssh grant`: who may open IAP tunnels to what. Edits the IAM
//! policy of IAP's own tunnel resource (a project's tunnels, a zone, one
//! VM, or a destination group), which gcloud has no command for below
//! the project; adds or removes `roles/iap.tunnelResourceAccessor` for
//! members, optionally under a condition on destination ports and IPs,
//! access levels and an expiry. `--list` shows the grants that apply at
//! project, zone and VM level, and those of the project's own IAM policy,
//! which every tunnel resource inherits.

use std::io::Write;
use std::net::IpAddr;

use clap::Args;
use serde_json::Value;

use crate::error::{UserError, exit};
use crate::gce::Api;
use crate::iam::condition::{self, Limits};
use crate::iam::{self, Resource, TUNNEL_ROLE, policy};

#[derive(Debug, Args)]
pub struct GrantArgs {
    /// Project whose tunnels are granted (default: gcloud's core/project)
    #[arg(long)]
    pub project: Option<String>,
    /// Only VMs in this zone
    #[arg(long)]
    pub zone: Option<String>,
    /// Only this VM (needs --zone)
    #[arg(long, requires = "zone")]
    pub instance: Option<String>,
    /// Region of a destination group (with --dest-group)
    #[arg(long, requires = "dest_group")]
    pub region: Option<String>,
    /// A destination group (hosts outside Compute Engine; with --region)
    #[arg(long, requires = "region")]
    pub dest_group: Option<String>,
    /// Who: user:EMAIL, group:EMAIL, serviceAccount:EMAIL, domain:DOMAIN,
    /// principal://... or principalSet://... (repeatable)
    #[arg(long = "member", value_name = "MEMBER", value_parser = parse_member)]
    pub members: Vec<String>,
    /// Only to this destination port (repeatable: any of them)
    #[arg(long = "port", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub ports: Vec<u16>,
    /// Only to this destination IP (repeatable: any of them)
    #[arg(long = "ip", value_name = "ADDR")]
    pub ips: Vec<IpAddr>,
    /// Only from devices in this access level,
    /// accessPolicies/N/accessLevels/NAME (repeatable: any of them)
    #[arg(long = "access-level", value_name = "NAME", value_parser = parse_access_level)]
    pub access_levels: Vec<String>,
    /// Until when: a duration (8h, 7d, 2w) from now or an RFC 3339 time
    /// (2027-01-01T00:00:00Z)
    #[arg(long, value_name = "DURATION|TIMESTAMP", value_parser = parse_expires)]
    pub expires: Option<i64>,
    /// Take the grant away instead (the binding with the same condition)
    #[arg(long, conflicts_with = "list")]
    pub remove: bool,
    /// Show who can reach what (project, zone and VM level grants)
    #[arg(long, conflicts_with_all = ["members", "ports", "ips", "access_levels", "expires"])]
    pub list: bool,
    /// Print the policy change; write nothing
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_member(s: &str) -> Result<String, String> {
    iam::check_member(s).map(|()| s.to_string())
}

fn parse_access_level(s: &str) -> Result<String, String> {
    if condition::valid_access_level(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not a full access level name like accessPolicies/123/accessLevels/corp (gcloud access-context-manager levels list prints them)"
        ))
    }
}

/// A duration from now (with a unit: s, m, h, d, w) or an RFC 3339
/// timestamp; Unix seconds, in the future.
fn parse_expires(s: &str) -> Result<i64, String> {
    let now = crate::auth::unix_now() as i64;
    let t = s.trim();
    let at = if t.ends_with(|c: char| c.is_ascii_alphabetic()) && !t.contains(':') {
        match crate::setup::key::parse_ttl(t)? {
            Some(secs) => now + secs as i64,
            None => return Err(format!("`{s}`: a grant cannot expire at once or never")),
        }
    } else {
        crate::timefmt::parse(t).ok_or_else(|| {
            format!(
                "`{s}` is neither a duration like 8h or 7d nor a time like 2027-01-01T00:00:00Z"
            )
        })?
    };
    if at <= now {
        return Err(format!("`{s}` is in the past"));
    }
    Ok(at)
}

pub fn run(a: GrantArgs, quiet: bool) -> Result<i32, UserError> {
    let project = match &a.project {
        Some(p) => p.clone(),
        None => super::projects_or_default(&[])?.remove(0),
    };
    let resource = Resource::from_flags(
        &project,
        a.zone.as_deref(),
        a.instance.as_deref(),
        a.region.as_deref(),
        a.dest_group.as_deref(),
    )?;
    if !a.list && a.members.is_empty() {
        return Err(UserError::new(exit::USAGE, "no --member given").with_fix(
            "name who gets tunnel access, e.g. --member user:alice@example.com (repeatable), or pass --list",
        ));
    }
    let rt = super::runtime()?;
    rt.block_on(async {
        let api = Api::from_env_for(a.dry_run)?;
        if a.list {
            return list(&api, &resource, &mut std::io::stdout()).await;
        }
        let limits = Limits {
            ports: a.ports.clone(),
            ips: a.ips.clone(),
            access_levels: a.access_levels.clone(),
            expires: a.expires,
        };
        edit(&api, &resource, &a, &limits, quiet).await
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

async fn edit(
    api: &Api,
    r: &Resource,
    a: &GrantArgs,
    limits: &Limits,
    quiet: bool,
) -> Result<i32, UserError> {
    let cond = limits.condition();
    let members = crate::cli::dedup(a.members.clone());
    let remove = a.remove;
    let edited = api
        .edit_tunnel_grant(r, &members, cond.as_ref(), remove, a.dry_run)
        .await
        .map_err(|e| match e.status() {
            Some(409 | 412) => UserError::new(exit::OTHER, format!("{e} (the policy kept changing while we wrote it)"))
                .with_fix("someone else is editing this policy; run the command again"),
            Some(400) => UserError::new(exit::USAGE, e.to_string()).with_fix(
                "IAM refused the policy; check the --ip, --access-level and --port values (for an access level, that the policy number and level exist)",
            ),
            _ => e.to_user(&fix_403(r)),
        })?;
    let out = &mut std::io::stdout();
    let err = &mut std::io::stderr();
    let when = cond
        .as_ref()
        .map(|c| format!(" if {}", c.expression))
        .unwrap_or_default();
    let changed = &edited.outcome;
    let verb = if remove { "removed" } else { "granted" };
    let untouched: Vec<&String> = members.iter().filter(|m| !changed.contains(m)).collect();
    if a.dry_run {
        let lines = policy::diff(&edited.before, &edited.after);
        let _ = writeln!(out, "IAM policy of {}:", r.path());
        for l in &lines {
            let _ = writeln!(out, "{l}");
        }
        if lines.is_empty() {
            let _ = writeln!(out, "(no change)");
        }
        if !quiet {
            let _ = writeln!(err, "dry run: nothing written");
        }
        return Ok(0);
    }
    if !quiet {
        for m in changed {
            let _ = writeln!(err, "{verb}: {m} {TUNNEL_ROLE} on {}{when}", r.describe());
        }
        for m in &untouched {
            let state = if remove {
                "did not have"
            } else {
                "already has"
            };
            let _ = writeln!(
                err,
                "unchanged: {m} {state} {TUNNEL_ROLE} on {}{when}",
                r.describe()
            );
        }
        if !edited.written {
            let _ = writeln!(
                err,
                "nothing to write: the policy of {} is as asked",
                r.path()
            );
        } else if edited.conflicts > 0 {
            let _ = writeln!(
                err,
                "(the policy changed {} time(s) meanwhile; the other changes are kept)",
                edited.conflicts
            );
        }
        if remove && untouched.len() == members.len() && cond.is_some() {
            let _ = writeln!(
                err,
                "note: --remove takes away the binding with exactly this condition; `iap-ssh grant --list` shows the bindings"
            );
        }
    }
    Ok(0)
}

/// The grants in policy `p` that open tunnels, one line each: the level
/// `level` gives for a binding's role (None: not a tunnel grant), its
/// member and condition.
fn grant_rows(p: &Value, level: impl Fn(&str) -> Option<String>) -> Vec<(String, String, String)> {
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
fn grants_of(r: &Resource, p: &Value) -> Vec<(String, String, String)> {
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
fn project_grants(p: &Value) -> Vec<(String, String, String)> {
    grant_rows(p, |role| match role {
        TUNNEL_ROLE => Some("project IAM".into()),
        "roles/owner" => Some("project IAM (Owner)".into()),
        _ => None,
    })
}

/// `--list`: the tunnel grants on the resource and, for a project or a
/// zone, on the zones and VMs below it (from the VMs aggregatedList
/// finds), read 8 at a time.
async fn list(api: &Api, r: &Resource, out: &mut dyn Write) -> Result<i32, UserError> {
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
    let w = |i: usize, min: usize| {
        rows.iter()
            .map(|r| [&r.0, &r.1, &r.2][i].len())
            .max()
            .unwrap_or(0)
            .max(min)
    };
    let (w0, w1) = (w(0, 5), w(1, 6));
    let _ = writeln!(out, "{:w0$}  {:w1$}  CONDITION", "LEVEL", "MEMBER");
    for (l, m, c) in &rows {
        let _ = writeln!(out, "{l:w0$}  {m:w1$}  {c}");
    }
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "(no {TUNNEL_ROLE} grants on IAP's tunnel resources of {})",
            r.path()
        );
    }
    if let Some(n) = note {
        let _ = writeln!(out, "{n}");
    }
    Ok(0)
}
