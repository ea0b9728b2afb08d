//! `iap-ssh doctor [INSTANCE] [--port 22]`: the arguments; the checks are
//! the `doctor` feature.

use std::io::IsTerminal;

use clap::Args;

use super::args::{color_enabled, relay_from_env, runtime};
use crate::error::UserError;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Project (default: from NAME.ZONE.PROJECT, else gcloud's core/project)
    #[arg(long)]
    pub project: Option<String>,
    /// Zone (default: from NAME.ZONE.PROJECT, gcloud's compute/zone, else looked up)
    #[arg(long)]
    pub zone: Option<String>,
    /// Port to check
    #[arg(long, default_value_t = 22, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// The VM: INSTANCE or NAME.ZONE.PROJECT (without it, only credentials are checked)
    pub instance: Option<String>,
    /// Apply the fixes that can be applied (a firewall rule for IAP's
    /// range, the tunnel role on this VM and port), each after a yes
    #[arg(long)]
    pub fix: bool,
    /// With --fix: do not ask
    #[arg(long, requires = "fix")]
    pub yes: bool,
}

pub fn run(a: DoctorArgs) -> Result<i32, UserError> {
    let opts = crate::doctor::Options {
        project: a.project,
        zone: a.zone,
        port: a.port,
        instance: a.instance,
        fix: a.fix,
        yes: a.yes,
        color: color_enabled(std::io::stdout().is_terminal()),
    };
    runtime()?.block_on(crate::doctor::doctor(opts, relay_from_env))
}
