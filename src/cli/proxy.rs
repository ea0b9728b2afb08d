//! `iap-ssh proxy`: the OpenSSH ProxyCommand. No Compute API call on this
//! path: the target comes from the arguments alone, the token from the
//! cache when it is fresh.

use clap::Args;

use super::args::{TargetArgs, TunnelArgs, relay_from_env};
use crate::error::{UserError, exit};
use crate::tunnel::stdio;

#[derive(Debug, Args)]
pub struct ProxyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub tunnel: TunnelArgs,
    /// Instance name, or NAME.ZONE.PROJECT (so a Host block can pass %h);
    /// with --region/--network, an IP address or host name
    pub instance: String,
    /// Port on the VM
    #[arg(value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
}

pub fn run(a: ProxyArgs) -> Result<i32, UserError> {
    let target = a.target.resolve(&a.instance, a.port)?;
    let relay = relay_from_env()?;
    let cfg = a.tunnel.config();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UserError::new(exit::OTHER, format!("cannot start the runtime: {e}")))?;
    let res = rt.block_on(stdio::proxy(&relay, &target, &cfg));
    // A blocked stdin read must not keep the process alive.
    rt.shutdown_background();
    res.map(|()| exit::OK).map_err(|e| e.into_user_error())
}
