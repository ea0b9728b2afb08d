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
