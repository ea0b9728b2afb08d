//! `iap-ssh setup`: discover instances, make sure the user's key is where
//! each VM reads keys from (OS Login, project or instance metadata), fetch
//! host keys, and write one managed section of Host blocks into the ssh
//! config. `--dry-run` computes the same plan with reads only and prints
//! it; `--remove` takes the section out again.
//!
//! Pure decisions live in [`plan`], `crate::ssh::*` and `crate::gce::flags`;
//! this module does the I/O in order: key → discovery → publishing → host
//! keys → config.

pub mod files;
pub mod one;
pub mod plan;
pub mod reserved;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::auth::Source;
use crate::error::{UserError, exit};
use crate::gce::compute::{Metadata, Operation};
use crate::gce::flags::{self, KeySource};
use crate::gce::{Api, ApiError};
use crate::ssh::keys::{self, KeyState, PublicKeyInfo};
use crate::ssh::{config as sshconfig, known_hosts, metadata_keys, names, quote};
use plan::Vm;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub projects: Vec<String>,
    pub key_file: PathBuf,
    pub ssh_config: PathBuf,
    pub known_hosts: PathBuf,
    /// User for metadata keys (default: the local login name).
    pub user: Option<String>,
    /// Key lifetime in seconds (None: never expires).
    pub key_ttl: Option<u64>,
    pub dry_run: bool,
    pub remove: bool,
    pub quiet: bool,
    /// Absolute path of the iap-ssh executable for ProxyCommand.
    pub exe: String,
}

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

/// Parallel requests for per-instance work.
const PARALLEL: usize = 16;
/// Attempts at a metadata write that keeps losing the fingerprint race.
const WRITE_ATTEMPTS: u32 = 6;

fn now() -> i64 {
    crate::auth::unix_now() as i64
}

/// Seconds before expiry at which a key is published again: a quarter of
/// its lifetime, so a re-run of setup renews it well in time.
fn renew_margin(ttl: Option<u64>) -> i64 {
    ttl.map(|t| (t / 4) as i64).unwrap_or(0)
}

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

pub(crate) fn io_error(path: &std::path::Path, e: std::io::Error) -> UserError {
    UserError::new(exit::OTHER, format!("{}: {e}", path.display()))
        .with_fix("check the file's permissions and that its directory exists")
}

fn progress(quiet: bool, len: u64, msg: &'static str) -> ProgressBar {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    // One MultiProgress so that bars of stages running together (key
    // publishing, host keys) do not draw over each other.
    static BARS: std::sync::OnceLock<indicatif::MultiProgress> = std::sync::OnceLock::new();
    let pb = BARS
        .get_or_init(indicatif::MultiProgress::new)
        .add(ProgressBar::new(len));
    pb.set_style(
        ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

/// `--remove`: the section goes, nothing else changes; no API calls.
pub fn remove(opts: &Options, err: &mut dyn Write) -> Result<i32, UserError> {
    let path = &opts.ssh_config;
    let old = files::read(&files::resolve(path)).map_err(|e| io_error(path, e))?;
    let new = sshconfig::remove(&old).map_err(|e| section_error(path, e))?;
    let Some(new) = new else {
        if !opts.quiet {
            let _ = writeln!(err, "iap-ssh: no iap-ssh section in {}", path.display());
        }
        return Ok(exit::OK);
    };
    if opts.dry_run {
        print!(
            "{}",
            sshconfig::diff(&old, &new, &path.display().to_string())
        );
        return Ok(exit::OK);
    }
    files::update(path, 0o600, true, |now| {
        Ok(sshconfig::remove(now)
            .map_err(std::io::Error::other)?
            .unwrap_or_else(|| now.to_string()))
    })
    .map_err(|e| io_error(path, e))?;
    if !opts.quiet {
        let _ = writeln!(
            err,
            "iap-ssh: removed the iap-ssh section from {}",
            path.display()
        );
    }
    Ok(exit::OK)
}

fn section_error(path: &std::path::Path, e: sshconfig::SectionError) -> UserError {
    UserError::new(exit::OTHER, format!("{}: {e}", path.display())).with_fix(format!(
        "edit the file so that it has one `{}` line followed by one `{}` line, or none",
        sshconfig::BEGIN,
        sshconfig::END
    ))
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
}

/// Makes sure `meta_key` at `level` holds a valid entry for (user, key):
/// read-modify-write with the fingerprint; on HTTP 412 (someone else wrote
/// meanwhile) re-read and try again.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn publish_metadata(
    api: &Api,
    level: &Level,
    mut meta: Metadata,
    meta_key: &str,
    user: &str,
    key: &PublicKeyInfo,
    ttl: Option<u64>,
    dry_run: bool,
) -> Result<Published, ApiError> {
    let t = now();
    for attempt in 0..WRITE_ATTEMPTS {
        let values = meta.ssh_key_values();
        if metadata_keys::has_valid(&values, user, key, t, renew_margin(ttl)) {
            // Written by a run with the same lifetime within the last two
            // minutes (its expiry tells when): say so, so that the caller
            // waits for the guest agent as if it had written it.
            let just = ttl
                .zip(metadata_keys::latest_expiry(&values, user, key))
                .is_some_and(|(life, exp)| exp.saturating_sub(life as i64) > t - JUST_WRITTEN);
            return Ok(if just {
                Published::JustPresent
            } else {
                Published::Present
            });
        }
        if dry_run {
            return Ok(Published::WouldWrite);
        }
        let line = metadata_keys::entry_line(user, key, ttl.map(|s| t + s as i64));
        let value =
            metadata_keys::with_entry(meta.get(meta_key).unwrap_or(""), user, key, &line, t)
                .map_err(|e| ApiError::Operation {
                    what: level.to_string(),
                    detail: e.to_string(),
                })?;
        let mut m = meta.clone();
        m.set(meta_key, value);
        match level.write(api, &m).await {
            Ok(()) => return Ok(Published::Written),
            Err(e) if e.status() == Some(412) => {
                tracing::info!("metadata of {level} changed meanwhile; reading it again");
                tokio::time::sleep(Duration::from_millis(10 * (attempt as u64 + 1))).await;
                meta = level.read(api).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::Operation {
        what: level.to_string(),
        detail: format!("the metadata kept changing; gave up after {WRITE_ATTEMPTS} attempts"),
    })
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

pub(crate) const FIX_LIST: &str =
    "grant roles/compute.viewer on the project (or check the project id)";
pub(crate) const FIX_OSLOGIN: &str =
    "grant roles/compute.osLogin (or roles/compute.osAdminLogin) on the project";

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
    if let Source::ServiceAccount { key, .. } = api.tokens().source() {
        return Ok(key.client_email.clone());
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

/// The result of publishing, for the summary.
#[derive(Default)]
struct Tally {
    /// (where, outcome) → number of VMs
    vms: BTreeMap<(String, &'static str), usize>,
}

impl Tally {
    fn add(&mut self, place: String, p: Published, n: usize) {
        *self.vms.entry((place, p.word())).or_default() += n;
    }

    /// `PLACE: OUTCOME (N VMs)`, one per destination.
    fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.vms
            .iter()
            .map(|((place, word), n)| format!("{place}: {word} ({})", plural(*n, "VM")))
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Instances of `projects` (listed in parallel) with their project
/// metadata; instances whose names are not safe are skipped with a warning.
pub async fn discover(
    api: &Api,
    projects: &[String],
    quiet: bool,
    err: &mut dyn Write,
) -> Result<(BTreeMap<String, Metadata>, Vec<Vm>), UserError> {
    let pb = progress(quiet, projects.len() as u64, "listing instances");
    let found = futures_util::future::join_all(projects.iter().map(|p| {
        let pb = &pb;
        async move {
            let r = tokio::try_join!(api.get_project(p), api.aggregated_instances(p, None));
            pb.inc(1);
            r
        }
    }))
    .await;
    pb.finish_and_clear();
    let mut project_meta = BTreeMap::new();
    let mut vms = vec![];
    for (p, r) in projects.iter().zip(found) {
        let (proj, insts) = r.map_err(|e| e.to_user(FIX_LIST))?;
        for inst in insts {
            if let Err(why) = plan::validate(p, &inst) {
                let _ = writeln!(err, "iap-ssh: warning: skipped: {why}");
                continue;
            }
            vms.push(Vm {
                project: p.clone(),
                zone: inst.zone_name().to_string(),
                name: inst.name.clone(),
                id: inst.id.clone(),
                status: inst.status.clone(),
                source: flags::key_source(&proj.common_instance_metadata, &inst),
                inst,
            });
        }
        project_meta.insert(p.clone(), proj.common_instance_metadata);
    }
    vms.sort_by(|a, b| (&a.project, &a.zone, &a.name).cmp(&(&b.project, &b.zone, &b.name)));
    Ok((project_meta, vms))
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

/// OS Login: make sure the key is in the profile (import, or renew its
/// expiry), and return (POSIX user, account, outcome).
pub(crate) async fn oslogin(
    api: &Api,
    gcloud: &crate::gcloud::GcloudConfig,
    first: &Vm,
    key: Option<&PublicKeyInfo>,
    opts: &Options,
) -> Result<(String, String, Published), UserError> {
    let e = account_email(api, gcloud).await?;
    let profile = api
        .login_profile(&e, &first.project)
        .await
        .map_err(|x| x.to_user(FIX_OSLOGIN))?;
    let ttl_us = opts.key_ttl.map(|s| (now() + s as i64) * 1_000_000);
    let fresh =
        |exp: Option<i64>| exp.is_none_or(|x| x / 1_000_000 > now() + renew_margin(opts.key_ttl));
    let (profile, outcome) = match key {
        None => (profile, Published::WouldWrite),
        // Whether OS Login's import would take one is UNCONFIRMED; its
        // documented way for security keys is the account's own keys.
        Some(k) if k.is_security_key() => (profile, Published::NotImportable),
        Some(k) => match profile.find_key(&k.blob) {
            Some((_, exp)) if fresh(exp) => (profile, Published::Present),
            _ if opts.dry_run => (profile, Published::WouldWrite),
            Some((fp, _)) => {
                api.update_key_expiry(&e, &fp, &k.type_blob(), ttl_us)
                    .await
                    .map_err(|x| x.to_user(FIX_OSLOGIN))?;
                (profile, Published::Written)
            }
            None => {
                let region = Some(first.region());
                let p = api
                    .import_key(&e, &k.type_blob(), &k.blob, ttl_us, &first.project, region)
                    .await
                    .map_err(|x| x.to_user(FIX_OSLOGIN))?;
                (p, Published::Written)
            }
        },
    };
    let user = match profile.username(opts.user.as_deref()) {
        Some(u) => u,
        // First use of OS Login: the account is created by the import;
        // Google's rule for users is the email with `.` and `@` as `_`.
        None if opts.dry_run || outcome == Published::NotImportable => e.replace(['.', '@'], "_"),
        None => {
            return Err(UserError::new(
                exit::NOT_AUTHORIZED,
                format!("OS Login has no POSIX account for {e}"),
            )
            .with_fix(FIX_OSLOGIN));
        }
    };
    if !names::is_user_name(&user) {
        return Err(UserError::new(
            exit::OTHER,
            format!(
                "OS Login user name `{}` is not a safe user name",
                user.escape_default()
            ),
        )
        .with_fix("use --user to pick another POSIX account of the profile"));
    }
    Ok((user, e, outcome))
}

/// Metadata keys: each project with VMs that read project keys, then each
/// VM that reads only its own (in parallel).
#[allow(clippy::too_many_arguments)]
async fn publish_all_metadata(
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
                let meta = v.inst.metadata.clone();
                let key_name = v.source.metadata_key();
                let r = publish_metadata(
                    api,
                    &level,
                    meta,
                    key_name,
                    user,
                    k,
                    opts.key_ttl,
                    opts.dry_run,
                )
                .await;
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

type HostKeyResult<'a> = (&'a Vm, Result<Vec<(String, String)>, ApiError>);

/// `known` with the guest-attribute host keys of every running VM it has
/// no line for (only VMs with guest attributes on are asked).
async fn fetch_host_keys(
    api: &Api,
    vms: &[Vm],
    project_meta: &BTreeMap<String, Metadata>,
    known: &str,
    quiet: bool,
) -> (FoundKeys, Vec<String>) {
    let have = known_hosts::aliases(known);
    let wanted: Vec<&Vm> = vms
        .iter()
        .filter(|v| v.status == "RUNNING" && v.source != KeySource::Windows)
        .filter(|v| !have.contains(known_hosts::alias(&v.id).as_str()))
        .filter(|v| {
            flags::flag(
                &project_meta[&v.project],
                &v.inst.metadata,
                "enable-guest-attributes",
            )
        })
        .collect();
    let pb = progress(quiet, wanted.len() as u64, "fetching host keys");
    let mut fetched: Vec<HostKeyResult> = futures_util::stream::iter(wanted)
        .map(|v| {
            let pb = &pb;
            async move {
                let r = api.host_keys(&v.project, &v.zone, &v.name).await;
                pb.inc(1);
                (v, r)
            }
        })
        .buffer_unordered(PARALLEL * 2)
        .collect()
        .await;
    pb.finish_and_clear();
    fetched.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    let mut found = vec![];
    let mut warnings = vec![];
    for (v, r) in fetched {
        match r {
            Ok(keys) if !keys.is_empty() => found.push((known_hosts::alias(&v.id), keys)),
            Ok(_) => {}
            Err(e) => warnings.push(format!("iap-ssh: warning: host keys of {}: {e}", v.name)),
        }
    }
    (found, warnings)
}

/// Host keys fetched for aliases, to be added where still unknown.
type FoundKeys = Vec<(String, Vec<(String, String)>)>;

/// The lines to append to known-hosts text `now` for `found`: aliases it
/// already lists are left alone (another run may have added them).
fn new_host_lines(now: &str, found: &FoundKeys) -> String {
    let mut add = String::new();
    let have = known_hosts::aliases(now);
    for (alias, keys) in found {
        if !have.contains(alias.as_str()) {
            known_hosts::append(&mut add, alias, keys);
        }
    }
    add
}

pub(crate) fn path_value(p: &std::path::Path) -> Result<String, UserError> {
    quote::config_value(&p.display().to_string()).ok_or_else(|| {
        UserError::new(
            exit::USAGE,
            format!("path {p:?} cannot be written into an ssh config"),
        )
        .with_fix("use a path without quotes or control characters")
    })
}

fn check_options(opts: &Options) -> Result<(), UserError> {
    for p in &opts.projects {
        names::require_project(p)?;
    }
    if let Some(u) = &opts.user {
        names::require_user(u)?;
    }
    if opts.exe.chars().any(char::is_control) {
        return Err(UserError::new(
            exit::OTHER,
            "the path of iap-ssh contains control characters",
        )
        .with_fix("install iap-ssh under a plain path"));
    }
    Ok(())
}

/// The key pair: read, or generate (not in a dry run: None then).
pub(crate) fn ensure_key(opts: &Options) -> Result<(Option<PublicKeyInfo>, bool), UserError> {
    let state = keys::inspect(&opts.key_file)
        .map_err(|e| UserError::new(exit::OTHER, e.to_string()).with_fix(e.fix()))?;
    match state {
        KeyState::Existing(k) => Ok((Some(k), false)),
        KeyState::Missing if opts.dry_run => Ok((None, false)),
        KeyState::Missing => {
            // Under the key's lock, and looked at again: a parallel first
            // run may have made the pair while we waited.
            let _lock = crate::fsutil::FileLock::acquire(&opts.key_file)
                .map_err(|e| io_error(&opts.key_file, e))?;
            if let KeyState::Existing(k) = keys::inspect(&opts.key_file)
                .map_err(|e| UserError::new(exit::OTHER, e.to_string()).with_fix(e.fix()))?
            {
                return Ok((Some(k), false));
            }
            let comment = format!(
                "{}@{}",
                local_user().unwrap_or_else(|| "iap-ssh".into()),
                hostname()
            );
            let k = keys::generate(&opts.key_file, &comment)
                .map_err(|e| UserError::new(exit::OTHER, e.to_string()).with_fix(e.fix()))?;
            Ok((Some(k), true))
        }
    }
}

/// The whole setup run. Progress and the summary go to `err`; with
/// `--dry-run` the diff and key plan go to stdout.
pub async fn run(opts: &Options, err: &mut dyn Write) -> Result<i32, UserError> {
    check_options(opts)?;
    let identity_file = path_value(&opts.key_file)?;
    let known_hosts_value = path_value(&opts.known_hosts)?;
    // Fail early on a config we could not update.
    let old_config = files::read(&files::resolve(&opts.ssh_config))
        .map_err(|e| io_error(&opts.ssh_config, e))?;
    sshconfig::splice(&old_config, "").map_err(|e| section_error(&opts.ssh_config, e))?;

    let api = Api::from_env_for(opts.dry_run)?;
    let gcloud = crate::gcloud::GcloudConfig::from_env();
    let (project_meta, vms) = discover(&api, &opts.projects, opts.quiet, err).await?;
    // The key only once the projects are known to be reachable.
    let (key, generated) = ensure_key(opts)?;

    let mut tally = Tally::default();
    let mut oslogin_user = None;
    if let Some(first) = vms.iter().find(|v| v.source == KeySource::OsLogin) {
        let n = vms
            .iter()
            .filter(|v| v.source == KeySource::OsLogin)
            .count();
        let (user, email, outcome) = oslogin(&api, &gcloud, first, key.as_ref(), opts).await?;
        tally.add(format!("OS Login ({email} as {user})"), outcome, n);
        oslogin_user = Some(user);
    }
    let needs_metadata = vms
        .iter()
        .any(|v| !matches!(v.source, KeySource::OsLogin | KeySource::Windows));
    let metadata_user = if needs_metadata || opts.user.is_some() {
        metadata_user(&api, &gcloud, opts.user.as_deref()).await?
    } else {
        local_user()
            .filter(|u| names::is_user_name(u))
            .or_else(|| oslogin_user.clone())
            .unwrap_or_else(|| "root".into())
    };
    // Publishing and host-key fetching are independent: run them together.
    let kh_path = files::resolve(&opts.known_hosts);
    let old_kh = files::read(&kh_path).map_err(|e| io_error(&opts.known_hosts, e))?;
    let mut publish_err = Vec::<u8>::new();
    let (published, (found_keys, warnings)) = tokio::join!(
        publish_all_metadata(
            &api,
            &vms,
            &project_meta,
            key.as_ref(),
            &metadata_user,
            opts,
            &mut tally,
            &mut publish_err
        ),
        fetch_host_keys(&api, &vms, &project_meta, &old_kh, opts.quiet)
    );
    let _ = err.write_all(&publish_err);
    for w in warnings {
        let _ = writeln!(err, "{w}");
    }
    published?;

    let oslogin_projects: Vec<String> = project_meta
        .iter()
        .filter(|(_, m)| m.get("enable-oslogin").and_then(flags::parse_bool) == Some(true))
        .map(|(p, _)| p.clone())
        .collect();
    // Dry run: what the files would become. Otherwise known_hosts is
    // appended to under its lock now (re-read first: another run may have
    // added some of these), and the config is spliced under its own lock
    // below, into what it holds then.
    let (new_kh, kh_outcome) = if opts.dry_run {
        let mut t = old_kh.clone();
        let add = new_host_lines(&t, &found_keys);
        if !add.is_empty() && !t.is_empty() && !t.ends_with('\n') {
            t.push('\n');
        }
        t.push_str(&add);
        (t, files::Outcome::Unchanged)
    } else {
        let (outcome, now) = files::append(&opts.known_hosts, 0o600, |now| {
            new_host_lines(now, &found_keys)
        })
        .map_err(|e| io_error(&opts.known_hosts, e))?;
        (now, outcome)
    };
    let known_aliases = known_hosts::aliases(&new_kh);
    let claims = reserved::gather(&opts.ssh_config, dirs::home_dir().as_deref());
    let cx = plan::Context {
        exe: &opts.exe,
        identity_file: &identity_file,
        known_hosts_path: &known_hosts_value,
        known_aliases: &known_aliases,
        metadata_user: &metadata_user,
        oslogin_user: oslogin_user.as_deref(),
        oslogin_projects: &oslogin_projects,
        projects: &opts.projects,
        claims: &claims,
    };
    let (blocks, withheld) = plan::blocks(&vms, &cx);
    let section = sshconfig::render_section(&blocks);
    let new_config =
        sshconfig::splice(&old_config, &section).map_err(|e| section_error(&opts.ssh_config, e))?;

    if opts.dry_run {
        print_dry_run(
            opts,
            (&old_config, &new_config),
            (&old_kh, &new_kh),
            key.as_ref(),
            &tally,
            &withheld,
        );
        return Ok(exit::OK);
    }
    let outcome = files::update(&opts.ssh_config, 0o600, true, |now| {
        sshconfig::splice(now, &section).map_err(std::io::Error::other)
    })
    .map_err(|e| io_error(&opts.ssh_config, e))?;
    if !opts.quiet {
        if generated && let Some(k) = &key {
            let _ = writeln!(
                err,
                "iap-ssh: generated {} ({})",
                opts.key_file.display(),
                k.fingerprint
            );
        }
        summary(err, opts, &blocks, &withheld, &tally, &outcome, &kh_outcome);
    }
    Ok(exit::OK)
}

fn print_dry_run(
    opts: &Options,
    (old_config, new_config): (&str, &str),
    (old_kh, new_kh): (&str, &str),
    key: Option<&PublicKeyInfo>,
    tally: &Tally,
    withheld: &[plan::Withheld],
) {
    let mut out = std::io::stdout().lock();
    let _ = write!(
        out,
        "{}",
        sshconfig::diff(
            old_config,
            new_config,
            &opts.ssh_config.display().to_string()
        )
    );
    let _ = write!(
        out,
        "{}",
        sshconfig::diff(old_kh, new_kh, &opts.known_hosts.display().to_string())
    );
    let _ = writeln!(out, "# keys (dry run: nothing was written)");
    match key {
        Some(k) => {
            let _ = writeln!(
                out,
                "# key {} ({}) {}",
                opts.key_file.display(),
                k.algorithm,
                k.fingerprint
            );
        }
        None => {
            let _ = writeln!(
                out,
                "# key {} would be generated (ssh-ed25519)",
                opts.key_file.display()
            );
        }
    }
    for l in tally.lines() {
        let _ = writeln!(out, "# {l}");
    }
    for w in withheld {
        let _ = writeln!(out, "# {}", withheld_line(w));
    }
}

/// One line about a short alias left out.
fn withheld_line(w: &plan::Withheld) -> String {
    format!(
        "no short alias `{}` ({}); use: ssh {}",
        w.name, w.why, w.full
    )
}

fn summary(
    err: &mut dyn Write,
    opts: &Options,
    blocks: &[sshconfig::HostBlock],
    withheld: &[plan::Withheld],
    tally: &Tally,
    outcome: &files::Outcome,
    kh_outcome: &files::Outcome,
) {
    let hosts = blocks.iter().filter(|b| b.host_key_alias.is_some()).count();
    let known = blocks
        .iter()
        .filter(|b| b.strict == sshconfig::Strict::Yes)
        .count();
    let state = match outcome {
        files::Outcome::Unchanged => "unchanged".to_string(),
        files::Outcome::Written { backup: Some(b) } => {
            format!("written; previous version in {}", b.display())
        }
        files::Outcome::Written { backup: None } => "written".to_string(),
    };
    let _ = writeln!(
        err,
        "iap-ssh: {} in {} ({state})",
        plural(hosts, "host"),
        opts.ssh_config.display()
    );
    for w in withheld {
        let _ = writeln!(err, "  {}", withheld_line(w));
    }
    for l in tally.lines() {
        let _ = writeln!(err, "  key: {l}");
    }
    let added = match kh_outcome {
        files::Outcome::Written { .. } => format!(" (added to {})", opts.known_hosts.display()),
        files::Outcome::Unchanged => String::new(),
    };
    let _ = writeln!(
        err,
        "  host keys: known for {known} of {}{added}",
        plural(hosts, "VM")
    );
    if let Some(b) = blocks.iter().find(|b| b.host_key_alias.is_some()) {
        let _ = writeln!(err, "  try: ssh {}", b.patterns[0]);
    }
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

/// Parses a lifetime: `never` (or `0`), or a number with `s`, `m`, `h`,
/// `d` or `w`.
pub fn parse_ttl(s: &str) -> Result<Option<u64>, String> {
    let s = s.trim();
    if s == "never" || s == "0" {
        return Ok(None);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 30d, 12h or never"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" | "" => 86400,
        "w" => 7 * 86400,
        _ => {
            return Err(format!(
                "`{s}`: unknown unit `{unit}` (use s, m, h, d or w)"
            ));
        }
    };
    Ok(Some(n.saturating_mul(mult).min(MAX_TTL)).filter(|v| *v > 0))
}

/// Longest key lifetime (100 years): more would overflow the expiry
/// timestamp into the past.
pub const MAX_TTL: u64 = 100 * 365 * 86_400;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl() {
        assert_eq!(parse_ttl("never"), Ok(None));
        assert_eq!(parse_ttl("30d"), Ok(Some(30 * 86400)));
        assert_eq!(parse_ttl("12h"), Ok(Some(43200)));
        assert_eq!(parse_ttl("90"), Ok(Some(90 * 86400)));
        assert!(parse_ttl("3x").is_err());
        assert_eq!(
            parse_ttl("99999999999999999999999d"),
            Err("`99999999999999999999999d` is not a duration like 30d, 12h or never".into())
        );
        assert_eq!(parse_ttl("9999999999999d"), Ok(Some(MAX_TTL)));
        assert_eq!(parse_ttl("200y").ok(), None, "unknown unit");
        assert!(parse_ttl("d").is_err());
        assert_eq!(renew_margin(Some(400)), 100);
    }

    #[test]
    fn fixes_name_permissions() {
        assert!(fix_setmetadata("project").contains("compute.projects.setCommonInstanceMetadata"));
        assert!(fix_setmetadata("instance").contains("compute.instances.setMetadata"));
    }
}
