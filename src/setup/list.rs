//! What `iap-ssh list` knows of each VM: the alias setup gives it, zone,
//! status, the user you log in as, and whether your key is where that VM
//! reads keys. Read-only: the same discovery as setup, no writes.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::error::UserError;
use crate::gce::Api;
use crate::gce::flags::KeySource;
use crate::gcloud::GcloudConfig;
use crate::ssh::keys::PublicKeyInfo;
use crate::ssh::metadata_keys;

/// One VM as `list` shows it.
#[derive(Debug, Serialize)]
pub struct Row {
    pub alias: String,
    pub name: String,
    pub zone: String,
    pub project: String,
    pub id: String,
    pub status: String,
    pub user: String,
    /// os-login, project, instance, instance-legacy, windows
    pub key_source: &'static str,
    /// Is your key there and valid?
    pub key_published: bool,
}

fn source_id(s: KeySource) -> &'static str {
    match s {
        KeySource::OsLogin => "os-login",
        KeySource::Project => "project",
        KeySource::Instance => "instance",
        KeySource::InstanceLegacy => "instance-legacy",
        KeySource::Windows => "windows",
    }
}

/// The rows for `selection`: `key` is the key whose publication is
/// reported (None: none yet), `config` the ssh config whose names the
/// aliases avoid.
pub async fn rows(
    api: &Api,
    gcloud: &GcloudConfig,
    selection: &super::Selection,
    key: Option<&PublicKeyInfo>,
    config: &Path,
    quiet: bool,
) -> Result<Vec<Row>, UserError> {
    let mut sink = std::io::sink();
    let mut err: Box<dyn std::io::Write> = if quiet {
        Box::new(&mut sink)
    } else {
        Box::new(std::io::stderr())
    };
    let super::Found {
        project_meta, vms, ..
    } = super::discover(api, selection, quiet, &mut err).await?;
    let muser = super::metadata_user(api, gcloud, None).await?;
    // OS Login: one profile read per project gives that project's POSIX
    // user and whether the key is there.
    let mut os_users: BTreeMap<String, String> = BTreeMap::new();
    let mut os_has_key = false;
    let mut os_projects: Vec<&str> = vms
        .iter()
        .filter(|v| v.source == KeySource::OsLogin)
        .map(|v| v.project.as_str())
        .collect();
    os_projects.dedup();
    if !os_projects.is_empty() {
        let email = super::account_email(api, gcloud).await?;
        let profiles = futures_util::future::join_all(
            os_projects.iter().map(|p| api.login_profile(&email, p)),
        )
        .await;
        for (p, r) in os_projects.iter().zip(profiles) {
            match r {
                Ok(prof) => {
                    if let Some(u) = prof.username_in(p, None) {
                        os_users.insert(p.to_string(), u);
                    }
                    os_has_key |= key.is_some_and(|k| prof.find_key(&k.blob).is_some());
                }
                Err(e) => tracing::info!("OS Login profile in {p}: {e}"),
            }
        }
    }
    let now = crate::timefmt::unix_now() as i64;
    let names = super::plan::NameCounts::of(&vms);
    let claims = super::reserved::gather(config, dirs::home_dir().as_deref());
    let rows: Vec<Row> = vms
        .iter()
        .map(|v| {
            let has = |meta: &crate::gce::compute::Metadata| {
                key.is_some_and(|k| {
                    metadata_keys::has_valid(&meta.ssh_key_values(), &muser, k, now, 0)
                })
            };
            let (user, published) = match v.source {
                KeySource::OsLogin => (
                    os_users
                        .get(&v.project)
                        .cloned()
                        .unwrap_or_else(|| "?".into()),
                    os_has_key,
                ),
                KeySource::Project => (muser.clone(), has(&project_meta[&v.project])),
                KeySource::Instance | KeySource::InstanceLegacy => {
                    (muser.clone(), has(v.kept.metadata()))
                }
                KeySource::Windows => ("-".into(), false),
            };
            Row {
                alias: names.patterns(v, &claims).0.swap_remove(0),
                name: v.name.clone(),
                zone: v.zone.clone(),
                project: v.project.clone(),
                id: v.id.clone(),
                status: v.status.to_string(),
                user,
                key_source: source_id(v.source),
                key_published: published,
            }
        })
        .collect();
    Ok(rows)
}
