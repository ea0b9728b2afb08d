//! The command line: clap definitions and dispatch, one file per subcommand.

pub mod completions;
pub mod doctor;
pub mod forward;
pub mod list;
pub mod man;
pub mod proxy;
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
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff).
    Man(man::ManArgs),
}

/// Runs the parsed command; returns the exit status.
pub fn run(cli: Cli) -> Result<i32, UserError> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Setup(a) => setup::run(a, quiet),
        Command::Ssh(a) => ssh::run_ssh(a, quiet),
        Command::Scp(a) => ssh::run_scp(a, quiet),
        Command::List(a) => list::run(a, quiet),
        Command::Doctor(a) => doctor::run(a),
        Command::Proxy(a) => proxy::run(a),
        Command::Forward(a) => forward::run(a),
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

/// The absolute path of this executable, for ProxyCommand lines.
pub fn exe_path() -> Result<String, UserError> {
    std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map(|p| p.display().to_string())
        .map_err(|e| {
            UserError::new(
                crate::error::exit::OTHER,
                format!("cannot find the iap-ssh executable: {e}"),
            )
            .with_fix("run iap-ssh by its full path")
        })
}

/// `--project` values, else gcloud's `core/project`; each validated.
pub fn projects_or_default(given: &[String]) -> Result<Vec<String>, UserError> {
    let mut projects = given.to_vec();
    if projects.is_empty() {
        projects.extend(crate::gcloud::GcloudConfig::from_env().project);
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
    projects.dedup();
    Ok(projects)
}
