//! Stage 1 of setup: who and what — the instances of the projects (listed
//! in parallel, unsafe names skipped), their project metadata, the
//! account and the local user names keys are published for.

use std::collections::BTreeMap;
use std::io::Write;

use super::plan::Vm;
use super::progress;
use crate::auth::Source;
use crate::error::{UserError, exit};
use crate::gce::Api;
use crate::gce::compute::Metadata;
use crate::ssh::names;

pub(crate) const FIX_LIST: &str =
    "grant roles/compute.viewer on the project (or check the project id)";

/// The local login name, as gcloud finds it (LOGNAME, USER, LNAME,
/// USERNAME, then the password database).
pub fn local_user() -> Option<String> {
    for v in ["LOGNAME", "USER", "LNAME", "USERNAME"] {
        if let Ok(u) = std::env::var(v)
            && !u.is_empty()
        {
            return Some(u);
        }
    }
    // SAFETY: getpwuid returns a pointer into static storage or null; the
    // name is copied out before any other libc call.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// Which account the credentials belong to (for OS Login): IAP_SSH_ACCOUNT,
/// a service-account key's email, tokeninfo, then gcloud's `core/account`.
pub(crate) async fn account_email(
    api: &Api,
    gcloud: &crate::gcloud::GcloudConfig,
) -> Result<String, UserError> {
    if let Ok(a) = std::env::var("IAP_SSH_ACCOUNT")
        && a.contains('@')
    {
        return Ok(a);
    }
    // Under impersonation, OS Login acts as the target (gcloud passes
    // the raw setting, a whole chain included, which is a bug).
    match api.tokens().chain() {
        Some(c) if c.target.contains('@') => return Ok(c.target.clone()),
        Some(_) => {}
        None => {
            if let Source::ServiceAccount { key, .. } = api.tokens().source() {
                return Ok(key.client_email.clone());
            }
        }
    }
    match api.token_email().await {
        Ok(Some(e)) => return Ok(e),
        Ok(None) => {}
        Err(e) => tracing::info!("tokeninfo: {e}"),
    }
    gcloud.account.clone().ok_or_else(|| {
        UserError::new(
            exit::NO_CREDENTIALS,
            "cannot tell which Google account the credentials belong to (needed for OS Login)",
        )
        .with_fix(
            "set IAP_SSH_ACCOUNT=you@example.com, or `gcloud config set account you@example.com`",
        )
    })
}

/// Which VMs a run covers: projects (named, or every active project the
/// caller can see), a Compute filter for aggregatedList, zones.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub projects: Vec<String>,
    /// `--all-projects`: the projects come from Cloud Resource Manager;
    /// a project without the Compute Engine API, or without access to
    /// it, is skipped with a note instead of failing the run.
    pub all_projects: bool,
    /// `--filter`: a Compute list filter (`labels.env=prod`).
    pub filter: Option<String>,
    /// `--zone` (repeatable): only VMs in these zones.
    pub zones: Vec<String>,
}

/// Checks `--filter` and `--zone` values (they reach URLs).
pub fn check_selection(s: &Selection) -> Result<(), UserError> {
    if let Some(f) = &s.filter
        && (f.trim().is_empty() || f.len() > 4096 || f.chars().any(char::is_control))
    {
        return Err(UserError::new(
            exit::USAGE,
            format!("--filter {f:?} is not a filter expression"),
        )
        .with_fix("pass a Compute list filter such as labels.env=prod or name eq web-.*"));
    }
    for z in &s.zones {
        if !names::is_resource_name(z) {
            return Err(
                UserError::new(exit::USAGE, format!("--zone {z:?} is not a zone name"))
                    .with_fix("pass a zone such as us-central1-a"),
            );
        }
    }
    Ok(())
}

/// What [`discover`] found.
pub struct Found {
    /// Project metadata of every project listed.
    pub project_meta: BTreeMap<String, Metadata>,
    pub vms: Vec<Vm>,
    /// The projects the run covers: those named, or under
    /// `--all-projects` those that have selected VMs.
    pub projects: Vec<String>,
}

/// Projects listed at once (two calls each).
const LISTING: usize = 16;

fn skippable(e: &crate::gce::ApiError) -> bool {
    matches!(e.status(), Some(403 | 404))
}

/// Instances of the selection (projects listed 16 at a time) with their
/// project metadata; instances whose names are not safe are skipped with
/// a warning.
pub async fn discover(
    api: &Api,
    sel: &Selection,
    quiet: bool,
    err: &mut dyn Write,
) -> Result<Found, UserError> {
    use futures_util::StreamExt;
    let projects = if sel.all_projects {
        let p = api.active_projects().await.map_err(|e| {
            e.to_user("listing projects needs resourcemanager.projects.list (any role on the projects, e.g. roles/browser); or name them with --project")
        })?;
        if !quiet {
            let _ = writeln!(err, "iap-ssh: {} active projects visible", p.len());
        }
        p
    } else {
        sel.projects.clone()
    };
    let pb = progress(quiet, projects.len() as u64, "listing instances");
    let filter = sel.filter.as_deref();
    let found: Vec<_> = futures_util::stream::iter(projects.iter().map(|p| {
        let pb = &pb;
        async move {
            // Each instance is validated and slimmed down as its page
            // arrives; one outside the chosen zones is not kept at all.
            let keep = |inst: crate::gce::compute::Instance| match Vm::of(p, inst) {
                Ok(v) if !sel.zones.is_empty() && !sel.zones.contains(&v.zone) => None,
                r => Some(r),
            };
            let r = tokio::try_join!(
                api.get_project(p),
                api.aggregated_instances_map(p, filter, keep)
            );
            pb.inc(1);
            r
        }
    }))
    .buffered(LISTING)
    .collect()
    .await;
    pb.finish_and_clear();
    let mut project_meta = BTreeMap::new();
    let mut vms = vec![];
    let mut covered = vec![];
    let mut skipped = vec![];
    for (p, r) in projects.iter().zip(found) {
        let (proj, insts) = match r {
            Ok(x) => x,
            Err(e) if sel.all_projects && skippable(&e) => {
                tracing::info!("skipping project {p}: {e}");
                skipped.push(p.clone());
                continue;
            }
            Err(e) => return Err(e.to_user(FIX_LIST)),
        };
        let before = vms.len();
        for r in insts {
            match r {
                Ok(mut v) => {
                    v.settle(&proj.common_instance_metadata);
                    vms.push(v);
                }
                Err(why) => {
                    let _ = writeln!(err, "iap-ssh: warning: skipped: {why}");
                }
            }
        }
        if !sel.all_projects || vms.len() > before {
            covered.push(p.clone());
        }
        project_meta.insert(p.clone(), proj.common_instance_metadata);
    }
    if !skipped.is_empty() && !quiet {
        let _ = writeln!(
            err,
            "iap-ssh: skipped {} without the Compute Engine API or access to it: {}",
            if skipped.len() == 1 {
                "1 project".to_string()
            } else {
                format!("{} projects", skipped.len())
            },
            skipped.join(", ")
        );
    }
    vms.sort_by(|a, b| (&a.project, &a.zone, &a.name).cmp(&(&b.project, &b.zone, &b.name)));
    vms.shrink_to_fit();
    Ok(Found {
        project_meta,
        vms,
        projects: covered,
    })
}

/// The user for metadata keys: `--user`, the local login name, else the
/// name gcloud derives from the account email.
pub async fn metadata_user(
    api: &Api,
    gcloud: &crate::gcloud::GcloudConfig,
    wanted: Option<&str>,
) -> Result<String, UserError> {
    if let Some(u) = wanted {
        return Ok(u.to_string());
    }
    if let Some(u) = local_user().filter(|u| names::is_user_name(u)) {
        return Ok(u);
    }
    Ok(names::user_from_email(&account_email(api, gcloud).await?))
}

pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it on success.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    if !ok {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
