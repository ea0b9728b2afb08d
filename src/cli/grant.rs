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

use crate::error::{UserError, exit};
use crate::gce::Api;
use crate::grant;
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
    let now = crate::timefmt::unix_now() as i64;
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
        None => super::args::projects_or_default(&[])?.remove(0),
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
    let rt = super::args::runtime()?;
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

async fn edit(
    api: &Api,
    r: &Resource,
    a: &GrantArgs,
    limits: &Limits,
    quiet: bool,
) -> Result<i32, UserError> {
    let cond = limits.condition();
    let members = super::args::dedup(a.members.clone());
    let remove = a.remove;
    let edited = grant::edit(api, r, &members, cond.as_ref(), remove, a.dry_run).await?;
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

/// `--list`: the tunnel grants that apply, as a table.
async fn list(api: &Api, r: &Resource, out: &mut dyn Write) -> Result<i32, UserError> {
    let (rows, note) = grant::list(api, r).await?;
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
