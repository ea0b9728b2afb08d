//! The command line: clap definitions and dispatch, one file per subcommand.

pub mod args;
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

use clap::{CommandFactory, Parser, Subcommand};

pub use args::color_enabled;

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
        Command::Completions(a) => completions::run(a, Cli::command()),
        Command::Man(a) => man::run(a, Cli::command()),
    }
}
