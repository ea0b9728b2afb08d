//! The command line: clap definitions and dispatch, one file per subcommand.

pub mod completions;
pub mod doctor;
pub mod forward;
pub mod grant;
pub mod list;
pub mod man;
pub mod oslogin_cert;
pub mod proxy;
pub mod rdp;
pub mod setup;
pub mod ssh;
pub mod target;

use clap::{Parser, Subcommand};

use crate::error::UserError;

/// Reach Compute Engine VMs through Identity-Aware Proxy TCP forwarding with plain OpenSSH.
#[derive(Debug, Parser)]
#[command(name = "iap-ssh", version, about, propagate_version = true)]
pub struct Cli {
    /// More detail on stderr (-v info, -vv debug). Tokens are never shown.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors on stderr (no progress, summaries or notices)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Act as this service account (EMAIL), through IAM Credentials; with
    /// a comma-separated chain, the last is acted as and the others are
    /// delegates. Default: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT, then
    /// gcloud's auth/impersonate_service_account.
    #[arg(long, global = true, value_name = "EMAIL[,EMAIL...]")]
    pub impersonate_service_account: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish your SSH key and write Host blocks so plain `ssh VM` works.
    Setup(setup::SetupArgs),
    /// Run ssh to a VM through IAP (no setup needed).
    Ssh(ssh::SshArgs),
    /// Copy files to or from a VM with scp through IAP (no setup needed).
    Scp(ssh::ScpArgs),
    /// List VMs with their alias, zone, status, user and where your key is.
    List(list::ListArgs),
    /// Check everything a tunnel to a VM needs and say how to fix what is missing.
    Doctor(doctor::DoctorArgs),
    /// Carry stdin/stdout to a VM port through IAP (an OpenSSH ProxyCommand).
    Proxy(proxy::ProxyArgs),
    /// Forward local TCP ports to VM ports through IAP (RDP, databases, ...).
    Forward(forward::ForwardArgs),
    /// RDP to a Windows VM through IAP; --reset-password creates or resets the Windows account.
    Rdp(rdp::RdpArgs),
    /// Grant or remove IAP tunnel access (roles/iap.tunnelResourceAccessor) on a project, zone or VM.
    Grant(grant::GrantArgs),
    /// Renew an OS Login certificate when it runs low (ssh runs this from the config setup wrote).
    #[command(hide = true)]
    OsloginCert(oslogin_cert::OsloginCertArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff).
    Man(man::ManArgs),
}

/// Runs the parsed command; returns the exit status.
pub fn run(cli: Cli) -> Result<i32, UserError> {
    let quiet = cli.quiet;
    if let Some(v) = cli.impersonate_service_account {
        crate::auth::impersonate::set_flag(v);
    }
    match cli.command {
        Command::Setup(a) => setup::run(a, quiet),
        Command::Ssh(a) => ssh::run_ssh(a, quiet),
        Command::Scp(a) => ssh::run_scp(a, quiet),
        Command::List(a) => list::run(a, quiet),
        Command::Doctor(a) => doctor::run(a),
        Command::Proxy(a) => proxy::run(a),
        Command::Forward(a) => forward::run(a),
        Command::Grant(a) => grant::run(a, quiet),
        Command::Rdp(a) => rdp::run(a, quiet),
        Command::OsloginCert(a) => oslogin_cert::run(a),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a),
    }
}

/// Colour for our own marks (✓/✗): only on a terminal, never with NO_COLOR.
pub fn color_enabled(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The runtime of the commands that talk to Google's APIs.
pub fn runtime() -> Result<tokio::runtime::Runtime, UserError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            UserError::new(
                crate::error::exit::OTHER,
                format!("cannot start the runtime: {e}"),
            )
        })
}

/// A path under the home directory.
pub fn home_file(parts: &[&str]) -> Result<std::path::PathBuf, UserError> {
    let mut p = dirs::home_dir().ok_or_else(|| {
        UserError::new(crate::error::exit::OTHER, "cannot find your home directory")
            .with_fix("set HOME")
    })?;
    for x in parts {
        p.push(x);
    }
    Ok(p)
}

/// The path of this executable to write into ProxyCommand lines: the one
/// the user invoked it by (a symlink, or the PATH entry that found it)
/// when that reaches this very file, so that a package manager's upgrade
/// (a new Homebrew Cellar or Nix store path behind the same symlink) does
/// not break the config; else the resolved path of the running binary.
pub fn exe_path() -> Result<String, UserError> {
    let fail = |e: std::io::Error| {
        UserError::new(
            crate::error::exit::OTHER,
            format!("cannot find the iap-ssh executable: {e}"),
        )
        .with_fix("run iap-ssh by its full path, or pass --exe PATH")
    };
    let running = std::env::current_exe().map_err(fail)?;
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let invoked = std::env::args_os()
        .next()
        .and_then(|a| invoked_path(std::path::Path::new(&a), &path_var, &running));
    let p = match invoked {
        Some(p) => p,
        None => running.canonicalize().map_err(fail)?,
    };
    Ok(p.display().to_string())
}

/// (device, inode) of what `p` finally points at.
fn file_id(p: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    m.is_file().then(|| (m.dev(), m.ino()))
}

/// The absolute path `argv0` names (looked up in `path_var` when it has no
/// `/`, as the shell did), if it is the same file as `running`.
pub fn invoked_path(
    argv0: &std::path::Path,
    path_var: &std::ffi::OsStr,
    running: &std::path::Path,
) -> Option<std::path::PathBuf> {
    let want = file_id(running)?;
    let candidates: Vec<std::path::PathBuf> =
        if argv0.as_os_str().as_encoded_bytes().contains(&b'/') {
            let abs = if argv0.is_absolute() {
                argv0.to_path_buf()
            } else {
                std::env::current_dir().ok()?.join(argv0)
            };
            vec![abs]
        } else {
            std::env::split_paths(path_var)
                // A relative PATH entry (`.`) is no stable place to write down.
                .filter(|d| d.is_absolute())
                .map(|d| d.join(argv0))
                .collect()
        };
    candidates
        .into_iter()
        .find(|c| file_id(c) == Some(want))
        .map(|c| normalize(&c))
}

/// `c` without `.` components (`..` is kept: resolving it lexically could
/// change what a symlinked directory means).
fn normalize(c: &std::path::Path) -> std::path::PathBuf {
    c.components()
        .filter(|x| !matches!(x, std::path::Component::CurDir))
        .collect()
}

/// Which VMs `setup` and `list` cover.
#[derive(Debug, Clone, clap::Args)]
pub struct SelectionArgs {
    /// Project (repeatable; default: gcloud's core/project)
    #[arg(long = "project", value_name = "PROJECT")]
    pub projects: Vec<String>,
    /// Every active project you can see (Cloud Resource Manager); projects
    /// without the Compute Engine API or access to it are skipped
    #[arg(long, conflicts_with = "projects")]
    pub all_projects: bool,
    /// Only VMs matching this Compute list filter (aggregatedList's
    /// `filter`), e.g. labels.env=prod or "name eq web-.*"
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Only VMs in this zone (repeatable)
    #[arg(long = "zone", value_name = "ZONE")]
    pub zones: Vec<String>,
}

impl SelectionArgs {
    /// The selection, projects defaulting to gcloud's `core/project`;
    /// every value validated.
    pub fn selection(&self) -> Result<crate::setup::Selection, UserError> {
        let projects = if self.all_projects {
            vec![]
        } else {
            projects_or_default(&self.projects)?
        };
        let s = crate::setup::Selection {
            projects,
            all_projects: self.all_projects,
            filter: self.filter.clone(),
            zones: dedup(self.zones.clone()),
        };
        crate::setup::check_selection(&s)?;
        Ok(s)
    }
}

/// `--project` values, else gcloud's `core/project`; each validated.
pub fn projects_or_default(given: &[String]) -> Result<Vec<String>, UserError> {
    let mut projects = given.to_vec();
    if projects.is_empty() {
        projects.extend(crate::gcloud::GcloudConfig::process().project.clone());
    }
    if projects.is_empty() {
        return Err(
            UserError::new(crate::error::exit::USAGE, "no project given").with_fix(
                "pass --project PROJECT (repeatable), or `gcloud config set project PROJECT`",
            ),
        );
    }
    for p in &projects {
        crate::ssh::names::require_project(p)?;
    }
    Ok(dedup(projects))
}

/// `v` without repeats, first occurrences kept in order.
pub fn dedup(v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.into_iter().filter(|x| seen.insert(x.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn repeated_projects_are_dropped_in_order() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(dedup(v(&["a", "b", "a", "c", "b"])), v(&["a", "b", "c"]));
    }

    #[test]
    fn the_invoked_path_wins_when_it_is_the_same_file() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("Cellar/1.0/bin/iap-ssh");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, "x").unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(&real, bin.join("iap-ssh")).unwrap();
        let other = d.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("iap-ssh"), "y").unwrap();
        // By a symlink's path.
        assert_eq!(
            invoked_path(&bin.join("iap-ssh"), "".as_ref(), &real),
            Some(bin.join("iap-ssh"))
        );
        // By name through PATH: the first entry that is the same file.
        let path = std::env::join_paths([Path::new("rel"), &other, &bin]).unwrap();
        assert_eq!(
            invoked_path(Path::new("iap-ssh"), &path, &real),
            Some(bin.join("iap-ssh"))
        );
        // Another file of that name: not ours.
        assert_eq!(
            invoked_path(&other.join("iap-ssh"), "".as_ref(), &real),
            None
        );
        assert_eq!(
            invoked_path(&d.path().join("./bin/./iap-ssh"), "".as_ref(), &real),
            Some(bin.join("iap-ssh"))
        );
    }
}
