//! Finding one instance from what the user typed: `NAME.ZONE.PROJECT`, or
//! a name with `--project`/`--zone`, else gcloud's active configuration,
//! else a search of the project's zones (`aggregatedList` filtered by
//! name), whose answer is cached on disk so the next run skips it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::compute::Instance;
use super::{Api, ApiError};
use crate::error::{UserError, exit};
use crate::gcloud::GcloudConfig;
use crate::ssh::names;

/// How long a cached zone is trusted before searching again (a zone is
/// checked by the `instances.get` that follows anyway).
const CACHE_TTL_SECS: u64 = 7 * 86400;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    pub project: String,
    pub zone: Option<String>,
    /// The zone came from `--zone` or NAME.ZONE.PROJECT (not gcloud's
    /// default), so a miss there is final.
    pub zone_explicit: bool,
}

fn usage(msg: String, fix: &str) -> UserError {
    UserError::new(exit::USAGE, msg).with_fix(fix)
}

/// Parses and validates `spec` with the flags and gcloud's configuration.
pub fn wanted(
    spec: &str,
    project: Option<&str>,
    zone: Option<&str>,
    gcloud: &GcloudConfig,
) -> Result<Wanted, UserError> {
    let parts: Vec<&str> = spec.splitn(3, '.').collect();
    let (name, zone, zone_explicit, project) = match parts.as_slice() {
        [n, z, p] => (
            n.to_string(),
            Some(z.to_string()),
            true,
            Some(p.to_string()),
        ),
        [n] => (
            n.to_string(),
            zone.map(str::to_string).or_else(|| gcloud.zone.clone()),
            zone.is_some(),
            project
                .map(str::to_string)
                .or_else(|| gcloud.project.clone()),
        ),
        _ => {
            return Err(usage(
                format!(
                    "`{}` is neither a name nor NAME.ZONE.PROJECT",
                    spec.escape_default()
                ),
                "pass the instance name (with --zone/--project if needed) or NAME.ZONE.PROJECT",
            ));
        }
    };
    if !names::is_resource_name(&name) {
        return Err(usage(
            format!("invalid instance name `{}`", name.escape_default()),
            "instance names have lower-case letters, digits and hyphens",
        ));
    }
    let project = project.ok_or_else(|| {
        usage(
            "no project given".into(),
            "pass --project PROJECT, use NAME.ZONE.PROJECT, or `gcloud config set project PROJECT`",
        )
    })?;
    names::require_project(&project)?;
    if let Some(z) = &zone
        && !names::is_resource_name(z)
    {
        return Err(usage(
            format!("invalid zone `{}`", z.escape_default()),
            "zones look like us-central1-a",
        ));
    }
    Ok(Wanted {
        name,
        project,
        zone,
        zone_explicit,
    })
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    /// "PROJECT/NAME" → (zone, when found)
    #[serde(default)]
    zones: BTreeMap<String, (String, u64)>,
}

fn cache_path() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("iap-ssh").join("zones.json"))
}

fn cache_load() -> Cache {
    cache_path()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default()
}

fn cache_store(update: impl FnOnce(&mut Cache)) {
    let Some(p) = cache_path() else { return };
    let mut c = cache_load();
    update(&mut c);
    if let Some(dir) = p.parent() {
        let _ = crate::fsutil::create_private_dir(dir);
    }
    if let Ok(data) = serde_json::to_vec(&c)
        && let Err(e) = crate::fsutil::write_private_atomic(&p, &data)
    {
        tracing::debug!("zone cache not written: {e}");
    }
}

fn not_found(w: &Wanted, zone: Option<&str>) -> UserError {
    let place = match zone {
        Some(z) => format!("zone {z} of project {}", w.project),
        None => format!("any zone of project {}", w.project),
    };
    UserError::new(
        exit::NOT_FOUND,
        format!("instance {} not found in {place}", w.name),
    )
    .with_fix("check the name and project (`iap-ssh list --project P` shows the instances)")
}

const FIX_GET: &str = "grant roles/compute.viewer on the project (or check the project id)";

/// The instance, with its zone found if needed. `remember`: cache the
/// zone found by a search (off for dry runs).
pub async fn find(api: &Api, w: &Wanted, remember: bool) -> Result<Instance, UserError> {
    let key = format!("{}/{}", w.project, w.name);
    let mut tried = None;
    let cached = cache_load()
        .zones
        .get(&key)
        .filter(|(_, at)| crate::timefmt::unix_now().saturating_sub(*at) < CACHE_TTL_SECS)
        .map(|(z, _)| z.clone());
    for zone in [w.zone.clone(), cached].into_iter().flatten() {
        if tried.as_deref() == Some(zone.as_str()) {
            continue;
        }
        match api.get_instance(&w.project, &zone, &w.name).await {
            Ok(i) => return Ok(i),
            Err(ApiError::Status { status: 404, .. }) if !w.zone_explicit => tried = Some(zone),
            Err(ApiError::Status { status: 404, .. }) => return Err(not_found(w, Some(&zone))),
            Err(e) => return Err(e.to_user(FIX_GET)),
        }
    }
    // Search every zone. The name is validated ([a-z0-9-]), so it is a
    // literal in the filter's regular expression.
    let filter = format!("name eq ^{}$", w.name);
    let found = api
        .aggregated_instances(&w.project, Some(&filter))
        .await
        .map_err(|e| e.to_user(FIX_GET))?;
    let mut found: Vec<Instance> = found.into_iter().filter(|i| i.name == w.name).collect();
    match found.len() {
        0 => {
            if remember {
                cache_store(|c| {
                    c.zones.remove(&key);
                });
            }
            Err(not_found(w, None))
        }
        1 => {
            let i = found.remove(0);
            let zone = i.zone_name().to_string();
            if remember {
                cache_store(|c| {
                    c.zones.insert(key, (zone, crate::timefmt::unix_now()));
                });
            }
            Ok(i)
        }
        _ => {
            let mut list: Vec<String> = found
                .iter()
                .map(|i| format!("{}.{}.{}", i.name, i.zone_name(), w.project))
                .collect();
            list.sort();
            Err(UserError::new(
                exit::USAGE,
                format!(
                    "`{}` names {} instances in project {}: {}",
                    w.name,
                    list.len(),
                    w.project,
                    list.join(", ")
                ),
            )
            .with_fix("use NAME.ZONE.PROJECT or --zone"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let g = GcloudConfig {
            project: Some("gcloud-proj".into()),
            zone: Some("europe-west1-b".into()),
            ..Default::default()
        };
        let w = wanted("vm-1.us-central1-a.my-proj", Some("flag-proj"), None, &g).unwrap();
        assert_eq!(
            (w.project.as_str(), w.zone.as_deref(), w.zone_explicit),
            ("my-proj", Some("us-central1-a"), true)
        );
        let w = wanted("vm-1", None, None, &g).unwrap();
        assert_eq!(
            (w.project.as_str(), w.zone.as_deref(), w.zone_explicit),
            ("gcloud-proj", Some("europe-west1-b"), false)
        );
        let w = wanted("vm-1", Some("flag-proj"), Some("asia-east1-a"), &g).unwrap();
        assert_eq!(
            (w.project.as_str(), w.zone.as_deref(), w.zone_explicit),
            ("flag-proj", Some("asia-east1-a"), true)
        );
        let none = GcloudConfig::default();
        assert!(
            wanted("vm-1", None, None, &none)
                .unwrap_err()
                .line()
                .contains("no project")
        );
        assert!(
            wanted("vm-1", Some("flag-proj"), None, &none)
                .unwrap()
                .zone
                .is_none()
        );
        assert!(wanted("VM;id", Some("flag-proj"), None, &none).is_err());
        assert!(wanted("vm.zone", Some("flag-proj"), None, &none).is_err());
    }
}
