//! The command line: clap definitions and dispatch, one file per subcommand.

pub mod completions;
pub mod forward;
pub mod proxy;
pub mod setup;
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

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Carry stdin/stdout to a VM port through IAP (an OpenSSH ProxyCommand).
    Proxy(proxy::ProxyArgs),
    /// Forward local TCP ports to VM ports through IAP (RDP, databases, …).
    Forward(forward::ForwardArgs),
    /// Publish your SSH key and write Host blocks so plain `ssh VM` works.
    Setup(setup::SetupArgs),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
}

/// Runs the parsed command; returns the exit status.
pub fn run(cli: Cli) -> Result<i32, UserError> {
    match cli.command {
        Command::Proxy(a) => proxy::run(a),
        Command::Forward(a) => forward::run(a),
        Command::Setup(a) => setup::run(a),
        Command::Completions(a) => completions::run(a),
    }
}
