//! `iap-ssh forward`: local TCP ports tunnelled to VM (or host) ports, like
//! `gcloud compute start-iap-tunnel --local-host-port`, plus several
//! forwards in one process (`-L`) and a JSON ready line.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::args::{
    TargetArgs, TunnelArgs, bind_local, parse_host_port, relay_from_env, runtime, shutdown_signal,
    usage,
};
use crate::error::{UserError, exit};
use crate::relay::url::Target;
use crate::tunnel::listener::{self, Forward};

#[derive(Debug, Args)]
pub struct ForwardArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub tunnel: TunnelArgs,
    /// Local address to listen on (port 0 or none: pick a free port)
    #[arg(long, value_name = "HOST:PORT", default_value = "localhost:0")]
    pub local_host_port: String,
    /// Another forward, `[BIND:]LOCAL_PORT:INSTANCE:PORT` (repeatable;
    /// INSTANCE may be NAME.ZONE.PROJECT)
    #[arg(short = 'L', value_name = "[BIND:]LOCAL_PORT:INSTANCE:PORT")]
    pub local: Vec<String>,
    /// Skip opening one test session per forward before listening
    #[arg(long)]
    pub no_connection_check: bool,
    /// Print the ready line as JSON with every bound address
    #[arg(long)]
    pub json: bool,
    /// Most relay handshakes at once; further accepted connections wait
    /// their turn (a burst does not hit the relay's rate limit)
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_handshakes: u32,
    /// Seconds open connections get to finish after SIGINT/SIGTERM
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub shutdown_grace: u64,
    /// Instance name (or NAME.ZONE.PROJECT; with --region/--network, an IP or host name)
    #[arg(requires = "port")]
    pub instance: Option<String>,
    /// Port on the VM
    #[arg(value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
}

/// `[BIND:]LOCAL_PORT:INSTANCE:PORT` → (bind host, local port, instance, remote port).
pub fn parse_l(s: &str) -> Result<(String, u16, String, u16), UserError> {
    let bad = || {
        usage(
            format!("invalid -L `{}`", s.escape_default()),
            "use -L [BIND:]LOCAL_PORT:INSTANCE:PORT, e.g. -L 3389:win-vm:3389",
        )
    };
    let (bind, rest) = if let Some(r) = s.strip_prefix('[') {
        let (h, rest) = r.split_once("]:").ok_or_else(bad)?;
        (Some(h.to_string()), rest)
    } else {
        (None, s)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (bind, lp, inst, rp) = match (bind, parts.as_slice()) {
        (None, [lp, inst, rp]) => (None, *lp, *inst, *rp),
        (None, [b, lp, inst, rp]) => (Some(b.to_string()), *lp, *inst, *rp),
        (Some(b), [lp, inst, rp]) => (Some(b), *lp, *inst, *rp),
        _ => return Err(bad()),
    };
    let lp: u16 = lp.parse().map_err(|_| bad())?;
    let rp: u16 = rp.parse().map_err(|_| bad())?;
    if rp == 0 || inst.is_empty() {
        return Err(bad());
    }
    Ok((
        bind.filter(|b| !b.is_empty())
            .unwrap_or_else(|| "localhost".into()),
        lp,
        inst.to_string(),
        rp,
    ))
}

pub fn run(a: ForwardArgs) -> Result<i32, UserError> {
    // What to forward: the positional pair and every -L.
    let mut specs: Vec<(String, u16, Target)> = Vec::new();
    if let (Some(inst), Some(port)) = (&a.instance, a.port) {
        let (host, lport) = parse_host_port(&a.local_host_port)?;
        specs.push((host, lport, a.target.resolve(inst, port)?));
    }
    for l in &a.local {
        let (host, lport, inst, rport) = parse_l(l)?;
        specs.push((host, lport, a.target.resolve(&inst, rport)?));
    }
    if specs.is_empty() {
        return Err(usage(
            "nothing to forward",
            "give INSTANCE PORT, or one or more -L [BIND:]LOCAL_PORT:INSTANCE:PORT",
        ));
    }
    let mut relay = relay_from_env()?;
    relay.handshakes = Some(Arc::new(tokio::sync::Semaphore::new(
        a.max_handshakes as usize,
    )));
    let relay = Arc::new(relay);
    let cfg = a.tunnel.config();
    let rt = runtime()?;
    let res = rt.block_on(async {
        let mut forwards = Vec::new();
        let mut ready = Vec::new();
        for (host, lport, target) in specs {
            let listeners = bind_local(&host, lport, "--local-host-port (or -L)").await?;
            let addrs: Vec<String> = listeners
                .iter()
                .filter_map(|l| l.local_addr().ok())
                .map(|a| a.to_string())
                .collect();
            let port = listeners[0].local_addr().map(|a| a.port()).unwrap_or(0);
            ready.push((port, addrs, target.clone()));
            forwards.push(Forward { listeners, target });
        }
        if !a.no_connection_check {
            for f in &forwards {
                tracing::info!("testing the tunnel to {}", f.target);
                crate::tunnel::check(&relay, &f.target, &cfg)
                    .await
                    .map_err(|e| e.into_user_error())?;
            }
        }
        if a.json {
            let items: Vec<serde_json::Value> = ready
                .iter()
                .map(|(port, addrs, t)| {
                    serde_json::json!({
                        "local_port": port,
                        "addresses": addrs,
                        "target": t.to_string(),
                        "project": t.project,
                        "remote_port": t.port,
                    })
                })
                .collect();
            println!("{}", serde_json::json!({ "forwards": items }));
        } else {
            for (port, _, _) in &ready {
                println!("Listening on port [{port}].");
            }
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let stats = listener::serve(
            relay.clone(),
            forwards,
            cfg,
            shutdown_signal(),
            Duration::from_secs(a.shutdown_grace),
        )
        .await;
        tracing::info!(
            "served {} connection(s), {} failed",
            stats.accepted,
            stats.failed
        );
        Ok::<i32, UserError>(exit::OK)
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("localhost:0").unwrap(),
            ("localhost".into(), 0)
        );
        assert_eq!(parse_host_port("[::1]:3389").unwrap(), ("::1".into(), 3389));
        assert_eq!(
            parse_host_port("0.0.0.0:80").unwrap(),
            ("0.0.0.0".into(), 80)
        );
        assert_eq!(parse_host_port(":7").unwrap(), ("localhost".into(), 7));
        assert_eq!(parse_host_port("8080").unwrap(), ("localhost".into(), 8080));
        assert!(parse_host_port("h:99999").is_err());
        assert!(parse_host_port("[::1]").is_err());
    }

    #[test]
    fn l_forms() {
        assert_eq!(
            parse_l("3389:win:3389").unwrap(),
            ("localhost".into(), 3389, "win".into(), 3389)
        );
        assert_eq!(
            parse_l("127.0.0.1:0:vm.z.p:22").unwrap(),
            ("127.0.0.1".into(), 0, "vm.z.p".into(), 22)
        );
        assert_eq!(
            parse_l("[::1]:5000:db:5432").unwrap(),
            ("::1".into(), 5000, "db".into(), 5432)
        );
        assert!(parse_l("1:2").is_err());
        assert!(parse_l("1:vm:0").is_err());
        assert!(parse_l("a:b:c:d:e").is_err());
    }
}
