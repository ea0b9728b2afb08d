//! Stage 3 of setup: publishing the key in metadata, where VMs without OS
//! Login read keys: project metadata once per project, or each VM's own
//! metadata, by read-modify-write with the metadata fingerprint, retried
//! when another writer wins the race (HTTP 412). OS Login's half is
//! [`super::oslogin`]; [`Published`] and [`Tally`] serve both.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use futures_util::StreamExt;

use super::plan::Vm;
use super::{Options, PARALLEL, plural, progress};
use crate::error::UserError;
use crate::gce::compute::{Metadata, Operation};
use crate::gce::flags::KeySource;
use crate::gce::{Api, ApiError};
use crate::ssh::keys::PublicKeyInfo;
use crate::ssh::metadata_keys;

/// Where the key went, per destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Present,
    /// Present, and written moments ago by another run: the guest agent
    /// may not have applied it yet.
    JustPresent,
    Written,
    WouldWrite,
    /// A security key (sk-…), which OS Login does not import: such keys
    /// are registered with the Google account and used on VMs with
    /// `enable-oslogin-sk`.
    NotImportable,
}

/// An entry whose lifetime started less than this long ago counts as just
/// written (by another run, e.g. in `xargs -P8 iap-ssh ssh …`).
const JUST_WRITTEN: i64 = 60;

impl Published {
    fn word(self) -> &'static str {
        match self {
            Published::Present | Published::JustPresent => "already present",
            Published::Written => "written",
            Published::WouldWrite => "would be written",
            Published::NotImportable => {
                "not imported: OS Login takes no security keys (sk-); register yours with your Google account for VMs with enable-oslogin-sk, or pass a regular key with --key-file"
            }
        }
    }
}

/// Attempts at a metadata write that keeps losing the fingerprint race.
const WRITE_ATTEMPTS: u32 = 6;

pub(super) fn now() -> i64 {
    crate::timefmt::unix_now() as i64
}

/// Seconds before expiry at which a key is published again: a quarter of
/// its lifetime, so a re-run of setup renews it well in time.
pub(super) fn renew_margin(ttl: Option<u64>) -> i64 {
    ttl.map(|t| (t / 4) as i64).unwrap_or(0)
}

/// One metadata level we may write.
#[derive(Debug, Clone)]
pub(crate) enum Level {
    Project(String),
    Instance {
        project: String,
        zone: String,
        name: String,
    },
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Level::Project(p) => write!(f, "project {p}"),
            Level::Instance {
                project,
                zone,
                name,
            } => write!(f, "instance {name} ({zone}, {project})"),
        }
    }
}

impl Level {
    async fn read(&self, api: &Api) -> Result<Metadata, ApiError> {
        match self {
            Level::Project(p) => Ok(api.get_project(p).await?.common_instance_metadata),
            Level::Instance {
                project,
                zone,
                name,
            } => Ok(api.get_instance(project, zone, name).await?.metadata),
        }
    }

    async fn write(&self, api: &Api, m: &Metadata) -> Result<(), ApiError> {
        let (project, op): (&str, Operation) = match self {
            Level::Project(p) => (p, api.set_project_metadata(p, m).await?),
            Level::Instance {
                project,
                zone,
                name,
            } => (
                project,
                api.set_instance_metadata(project, zone, name, m).await?,
            ),
        };
        api.wait_operation(project, op).await
    }

    /// Read-modify-write of the metadata here, starting from `meta` (as
    /// last read): `change` gives the metadata to write, None to write
    /// nothing, or why it cannot be changed; when another writer wins the race (HTTP 412, the
    /// fingerprint is stale) the metadata is read again and `change` redone,
    /// [`WRITE_ATTEMPTS`] times in all. Returns whether it wrote.
    pub(crate) async fn edit(
        &self,
        api: &Api,
        mut meta: Metadata,
        mut change: impl FnMut(&Metadata) -> Result<Option<Metadata>, String>,
    ) -> Result<bool, ApiError> {
        for attempt in 0..WRITE_ATTEMPTS {
            let m = change(&meta).map_err(|detail| ApiError::Operation {
                what: self.to_string(),
                detail,
            })?;
            let Some(m) = m else {
                return Ok(false);
            };
            match self.write(api, &m).await {
                Ok(()) => return Ok(true),
                Err(e) if e.status() == Some(412) => {
                    tracing::info!("metadata of {self} changed meanwhile; reading it again");
                    tokio::time::sleep(Duration::from_millis(10 * (attempt as u64 + 1))).await;
                    meta = self.read(api).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::Operation {
            what: self.to_string(),
            detail: format!("the metadata kept changing; gave up after {WRITE_ATTEMPTS} attempts"),
        })
    }
}

/// Makes sure `meta_key` at `level` holds a valid entry for (user, key)
/// ([`Level::edit`]).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn publish_metadata(
    api: &Api,
    level: &Level,
    meta: Metadata,
    meta_key: &str,
    user: &str,
    key: &PublicKeyInfo,
    ttl: Option<u64>,
    dry_run: bool,
) -> Result<Published, ApiError> {
    let t = now();
    let mut unchanged = Published::WouldWrite;
    let wrote = level
        .edit(api, meta, |meta| {
            let values = meta.ssh_key_values();
            if metadata_keys::has_valid(&values, user, key, t, renew_margin(ttl)) {
                // Written by a run with the same lifetime within the last
                // two minutes (its expiry tells when): say so, so that the
                // caller waits for the guest agent as if it had written it.
                let just = ttl
                    .zip(metadata_keys::latest_expiry(&values, user, key))
                    .is_some_and(|(life, exp)| exp.saturating_sub(life as i64) > t - JUST_WRITTEN);
                unchanged = if just {
                    Published::JustPresent
                } else {
                    Published::Present
                };
                return Ok(None);
            }
            if dry_run {
                unchanged = Published::WouldWrite;
                return Ok(None);
            }
            let line = metadata_keys::entry_line(user, key, ttl.map(|s| t + s as i64));
            let value =
                metadata_keys::with_entry(meta.get(meta_key).unwrap_or(""), user, key, &line, t)
                    .map_err(|e| e.to_string())?;
            let mut m = meta.clone();
            m.set(meta_key, value);
            Ok(Some(m))
        })
        .await?;
    Ok(if wrote { Published::Written } else { unchanged })
}

pub(crate) fn fix_setmetadata(level: &str) -> String {
    let perm = if level == "project" {
        "compute.projects.setCommonInstanceMetadata"
    } else {
        "compute.instances.setMetadata"
    };
    format!(
        "writing {level} metadata needs {perm} (e.g. roles/compute.instanceAdmin.v1) and iam.serviceAccounts.actAs on the VM's service account; or enable OS Login"
    )
}

/// The result of publishing, for the summary.
#[derive(Default)]
pub(crate) struct Tally {
    /// (where, outcome) → number of VMs
    vms: BTreeMap<(String, &'static str), usize>,
}

impl Tally {
    pub(crate) fn add(&mut self, place: String, p: Published, n: usize) {
        *self.vms.entry((place, p.word())).or_default() += n;
    }

    /// `PLACE: OUTCOME (N VMs)`, one per destination.
    pub(crate) fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.vms
            .iter()
            .map(|((place, word), n)| format!("{place}: {word} ({})", plural(*n, "VM")))
    }
}

/// Metadata keys: each project with VMs that read project keys, then each
/// VM that reads only its own (in parallel).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn publish_all_metadata(
    api: &Api,
    vms: &[Vm],
    project_meta: &BTreeMap<String, Metadata>,
    key: Option<&PublicKeyInfo>,
    user: &str,
    opts: &Options,
    tally: &mut Tally,
    err: &mut dyn Write,
) -> Result<(), UserError> {
    // Projects in parallel: each is one read-modify-write.
    let project_results =
        futures_util::future::join_all(project_meta.iter().map(|(p, meta)| async move {
            let n = vms
                .iter()
                .filter(|v| &v.project == p && v.source == KeySource::Project)
                .count();
            let r = match key {
                _ if n == 0 => return None,
                None => Ok(Published::WouldWrite),
                Some(k) => {
                    let level = Level::Project(p.clone());
                    publish_metadata(
                        api,
                        &level,
                        meta.clone(),
                        "ssh-keys",
                        user,
                        k,
                        opts.key_ttl,
                        opts.dry_run,
                    )
                    .await
                }
            };
            Some((p, n, r))
        }))
        .await;
    // Project metadata we may not write (HTTP 403): like gcloud, fall back
    // to each VM's own metadata, which the agent also reads; and say so.
    let mut fallback: Vec<&String> = vec![];
    for (p, n, r) in project_results.into_iter().flatten() {
        match r {
            Ok(r) => tally.add(format!("project metadata of {p} as {user}"), r, n),
            Err(e) if e.status() == Some(403) => {
                let _ = writeln!(
                    err,
                    "iap-ssh: warning: cannot write project metadata of {p} ({e}); publishing to each of its {n} VMs instead"
                );
                fallback.push(p);
            }
            Err(e) => return Err(e.to_user(&fix_setmetadata("project"))),
        }
    }
    let own: Vec<&Vm> = vms
        .iter()
        .filter(|v| {
            matches!(v.source, KeySource::Instance | KeySource::InstanceLegacy)
                || (v.source == KeySource::Project && fallback.contains(&&v.project))
        })
        .collect();
    let place = format!("instance metadata as {user}");
    let Some(k) = key else {
        if !own.is_empty() {
            tally.add(place, Published::WouldWrite, own.len());
        }
        return Ok(());
    };
    let pb = progress(opts.quiet, own.len() as u64, "publishing keys");
    let results: Vec<(String, Result<Published, ApiError>)> = futures_util::stream::iter(own)
        .map(|v| {
            let pb = &pb;
            async move {
                let level = Level::Instance {
                    project: v.project.clone(),
                    zone: v.zone.clone(),
                    name: v.name.clone(),
                };
                let key_name = v.source.metadata_key();
                // Setup keeps the whole metadata only of VMs that block
                // project keys; another (its project's metadata is not
                // writable) is read first.
                let meta = match v.kept.whole {
                    true => Ok(v.kept.metadata().clone()),
                    false => api
                        .get_instance(&v.project, &v.zone, &v.name)
                        .await
                        .map(|i| i.metadata),
                };
                let r = match meta {
                    Ok(meta) => {
                        publish_metadata(
                            api,
                            &level,
                            meta,
                            key_name,
                            user,
                            k,
                            opts.key_ttl,
                            opts.dry_run,
                        )
                        .await
                    }
                    Err(e) => Err(e),
                };
                pb.inc(1);
                (v.name.clone(), r)
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    pb.finish_and_clear();
    let mut failed = None;
    for (name, r) in results {
        match r {
            Ok(p) => tally.add(place.clone(), p, 1),
            Err(e) => {
                let u = e.to_user(&fix_setmetadata("instance"));
                let _ = writeln!(
                    err,
                    "iap-ssh: {name}: {}",
                    u.line().trim_start_matches("iap-ssh: ")
                );
                failed = Some(u);
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_margin_is_a_quarter() {
        assert_eq!(renew_margin(Some(400)), 100);
        assert_eq!(renew_margin(None), 0);
    }

    #[test]
    fn fixes_name_permissions() {
        assert!(fix_setmetadata("project").contains("compute.projects.setCommonInstanceMetadata"));
        assert!(fix_setmetadata("instance").contains("compute.instances.setMetadata"));
    }
}
