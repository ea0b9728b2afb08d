//! `iap-ssh setup`: discover instances, make sure the user's key is where
//! each VM reads keys from (OS Login, project or instance metadata), fetch
//! host keys, and write one managed section of Host blocks into the ssh
//! config. `--dry-run` computes the same plan with reads only and prints
//! it; `--remove` takes the section out again.
//!
//! The pipeline, one file per stage: [`discover`] (instances, account,
//! users) → [`key`] (the key pair) → [`oslogin`] (profile, POSIX users,
//! security keys, [`certs`]) → [`publish`] (metadata) together with
//! [`host_keys`] → [`plan`] (pure: aliases, Host blocks, with
//! [`reserved`] names withheld) → [`write`] (the config, the summary, or
//! the dry run). [`files`] owns the locked read-modify-write of the user's
//! files; [`one`] prepares a single VM for `iap-ssh ssh`/`scp`; [`vm`]
//! is what each stage knows of a VM.

pub mod certs;
pub mod discover;
pub mod files;
pub mod host_keys;
pub mod key;
pub mod list;
pub mod one;
pub mod oslogin;
pub mod plan;
pub mod publish;
pub mod putty;
pub mod ready;
pub mod reserved;
pub mod vm;
pub mod write;

use std::io::Write;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{UserError, exit};
use crate::gce::Api;
use crate::gce::flags::{self, KeySource};
use crate::ssh::{config as sshconfig, known_hosts, names, quote};

pub(crate) use discover::account_email;
pub use discover::{Found, Selection, check_selection, discover, local_user, metadata_user};
pub use key::{MAX_TTL, parse_ttl};
pub use publish::Published;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Projects, filter and zones (`projects` is empty under
    /// `--all-projects`).
    pub selection: Selection,
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
    /// Options written before `proxy` in each ProxyCommand, so that ssh
    /// acts as this run did (`--impersonate-service-account=…`).
    pub global_args: String,
    /// Options written after `proxy` in the ProxyCommand of a single VM
    /// (`iap-ssh ssh --wait`: ` --wait=120s`); setup writes none.
    pub proxy_args: String,
    /// `--control-master`: share one connection per VM, kept this long
    /// after the last session (`ControlPersist`); the sockets live in
    /// this directory.
    pub control: Option<(std::path::PathBuf, String)>,
    /// `--internal-ip`: blocks name the VM's internal address
    /// (`HostName`) and use no tunnel, for users on the VPC or a VPN.
    pub internal_ip: bool,
    /// `--putty`: a `.ppk` and PuTTY saved sessions too.
    pub putty: bool,
    /// `--putty-reg FILE`: the sessions as a Windows `.reg` file too.
    pub putty_reg: Option<PathBuf>,
}

/// Parallel requests for per-instance work.
const PARALLEL: usize = 16;

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
    // The PuTTY sessions iap-ssh wrote (marked as its own), whichever
    // run wrote them; the user's own sessions stay.
    if !opts.dry_run {
        let dir = putty::sessions_dir()?;
        let n = putty::remove_ours(&dir, |_| true)?;
        if n > 0 && !opts.quiet {
            let _ = writeln!(
                err,
                "iap-ssh: removed {} from {}",
                plural(n, "PuTTY session"),
                dir.display()
            );
        }
    }
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

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
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

/// Longest socket path every OpenSSH platform takes (macOS's `sun_path`).
const MAX_SOCKET_PATH: usize = 104;

/// The `ControlPath` value for sockets in `dir`: `DIR/%C` (`%C` is a
/// 40-character hash of the connection, so no VM name reaches a path),
/// `%` in DIR doubled, quoted when it has spaces. A DIR too long for a
/// socket path is refused.
pub(crate) fn control_path(dir: &std::path::Path) -> Result<String, UserError> {
    let d = dir.display().to_string();
    if d.len() + 1 + 40 > MAX_SOCKET_PATH {
        return Err(UserError::new(
            exit::USAGE,
            format!(
                "ControlPath {d}/%C would exceed the {MAX_SOCKET_PATH}-byte limit of a socket path"
            ),
        )
        .with_fix("leave out --control-master, or set ControlPath to a short directory yourself"));
    }
    quote::config_value_then(&d, "/%C").ok_or_else(|| {
        UserError::new(
            exit::USAGE,
            format!("directory {dir:?} cannot be written into an ssh config"),
        )
        .with_fix("use a home directory without quotes or control characters")
    })
}

fn check_options(opts: &Options) -> Result<(), UserError> {
    for p in &opts.selection.projects {
        names::require_project(p)?;
    }
    check_selection(&opts.selection)?;
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

/// The whole setup run, stage by stage. Progress and the summary go to
/// `err`; with `--dry-run` the diff and key plan go to stdout.
pub async fn run(opts: &Options, err: &mut dyn Write) -> Result<i32, UserError> {
    check_options(opts)?;
    let identity_file = path_value(&opts.key_file)?;
    let known_hosts_value = path_value(&opts.known_hosts)?;
    let control = match &opts.control {
        Some((dir, persist)) => Some((control_path(dir)?, persist.clone())),
        None => None,
    };
    // Fail early on a config we could not update.
    write::check_config(opts)?;

    // 1. What there is.
    let api = Api::from_env_for(opts.dry_run)?;
    let gcloud = crate::gcloud::GcloudConfig::process();
    let Found {
        project_meta,
        vms,
        projects,
    } = discover(&api, &opts.selection, opts.quiet, err).await?;
    // 2. The key, only once the projects are known to be reachable.
    let (key, generated) = key::ensure_key(opts)?;
    let ppk = match opts.putty {
        true => Some(putty::prepare(opts)?),
        false => None,
    };

    // 3. Publishing: OS Login first (it names the user), then metadata
    // keys together with 4. fetching host keys (independent).
    let mut tally = publish::Tally::default();
    let os = oslogin::stage(
        &api,
        gcloud,
        &vms,
        &project_meta,
        key.as_ref(),
        opts,
        &mut tally,
    )
    .await?;
    let needs_metadata = vms
        .iter()
        .any(|v| !matches!(v.source, KeySource::OsLogin | KeySource::Windows));
    let metadata_user = if needs_metadata || opts.user.is_some() {
        metadata_user(&api, gcloud, opts.user.as_deref()).await?
    } else {
        local_user()
            .filter(|u| names::is_user_name(u))
            .or_else(|| os.user.clone())
            .unwrap_or_else(|| "root".into())
    };
    let old_kh = files::read(&files::resolve(&opts.known_hosts))
        .map_err(|e| io_error(&opts.known_hosts, e))?;
    let mut publish_err = Vec::<u8>::new();
    let (published, (found_keys, warnings)) = tokio::join!(
        publish::publish_all_metadata(
            &api,
            &vms,
            &project_meta,
            key.as_ref(),
            &metadata_user,
            opts,
            &mut tally,
            &mut publish_err
        ),
        host_keys::fetch_host_keys(&api, &vms, &project_meta, &old_kh, opts.quiet)
    );
    let _ = err.write_all(&publish_err);
    for w in warnings {
        let _ = writeln!(err, "{w}");
    }
    published?;
    // No API call from here on: the connection pool (tens of connections,
    // each with its buffers) goes before the known-hosts file is read.
    drop(api);
    let (new_kh, kh_outcome) = host_keys::record(opts, &old_kh, found_keys)?;

    // 5. The Host blocks (pure), then the config or the dry run.
    let oslogin_projects: Vec<String> = project_meta
        .iter()
        .filter(|(_, m)| m.get("enable-oslogin").and_then(flags::parse_bool) == Some(true))
        .map(|(p, _)| p.clone())
        .collect();
    let known_aliases = known_hosts::aliases(&new_kh);
    let claims = reserved::gather(&opts.ssh_config, dirs::home_dir().as_deref());
    let cx = plan::Context {
        exe: &opts.exe,
        global_args: &opts.global_args,
        control: control.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        identity_file: &identity_file,
        known_hosts_path: &known_hosts_value,
        known_aliases: &known_aliases,
        metadata_user: &metadata_user,
        oslogin_users: &os.users,
        oslogin_projects: &oslogin_projects,
        projects: &projects,
        claims: &claims,
        internal_ip: opts.internal_ip,
        certs: &os.certs,
        key_file: &opts.key_file.display().to_string(),
        sk_vms: &os.sk_vms,
        sk_identity: os.sk_identity.as_deref(),
    };
    let plan = plan::Plan::new(&vms, &cx);
    let withheld = plan.withheld();
    // PuTTY sessions need every block at once (the only case that holds
    // them all).
    let blocks: Vec<sshconfig::HostBlock> = match ppk {
        Some(_) => plan.blocks().collect(),
        None => vec![],
    };
    if let Some(ppk) = ppk.as_ref().filter(|_| opts.dry_run) {
        putty::run(opts, ppk, &blocks, &new_kh, err)?;
    }
    if opts.dry_run {
        let old_config = files::read(&files::resolve(&opts.ssh_config))
            .map_err(|e| io_error(&opts.ssh_config, e))?;
        let mut section = Vec::new();
        sshconfig::write_section(&mut section, plan.blocks())
            .map_err(|e| io_error(&opts.ssh_config, e))?;
        let section = String::from_utf8_lossy(&section);
        let new_config = sshconfig::splice(&old_config, &section)
            .map_err(|e| section_error(&opts.ssh_config, e))?;
        write::print_dry_run(
            opts,
            (&old_config, &new_config),
            (&old_kh, &new_kh),
            key.as_ref(),
            &tally,
            &withheld,
        );
        return Ok(exit::OK);
    }
    if let Some((dir, _)) = &opts.control {
        crate::fsutil::create_private_dir(dir).map_err(|e| io_error(dir, e))?;
    }
    let outcome = write::config(opts, &plan)?;
    let mut putty_out = Vec::<u8>::new();
    if let Some(ppk) = &ppk {
        putty::run(opts, ppk, &blocks, &new_kh, &mut putty_out)?;
    }
    if !opts.quiet {
        if generated && let Some(k) = &key {
            let _ = writeln!(
                err,
                "iap-ssh: generated {} ({})",
                opts.key_file.display(),
                k.fingerprint
            );
        }
        let windows: Vec<String> = vms
            .iter()
            .filter(|v| v.source == KeySource::Windows)
            .map(|v| v.full_alias())
            .collect();
        write::summary(
            err,
            opts,
            &plan.counts(),
            &withheld,
            &tally,
            (&outcome, &kh_outcome),
            &windows,
        );
        let _ = err.write_all(&putty_out);
        if let Some(line) = os.sk_notice(&vms) {
            let _ = writeln!(err, "{line}");
        }
    }
    Ok(exit::OK)
}
