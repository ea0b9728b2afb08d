//! `iap-ssh proxy`: the OpenSSH ProxyCommand. No Compute API call on this
//! path: the target comes from the arguments alone, the token from the
//! cache when it is fresh.

use clap::Args;

use crate::auth::{TokenProvider, discover};
use crate::endpoints::Endpoints;
use crate::error::{UserError, exit};
use crate::relay::url::Target;
use crate::tunnel::{Relay, TunnelConfig, stdio};

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Project id (default: from NAME.ZONE.PROJECT, else CLOUDSDK_CORE_PROJECT)
    #[arg(long, env = "CLOUDSDK_CORE_PROJECT", hide_env_values = true)]
    pub project: Option<String>,
    /// Zone (default: from NAME.ZONE.PROJECT, else CLOUDSDK_COMPUTE_ZONE)
    #[arg(long, env = "CLOUDSDK_COMPUTE_ZONE", hide_env_values = true)]
    pub zone: Option<String>,
    /// Network interface of the VM
    #[arg(long, default_value = "nic0")]
    pub interface: String,
    /// How long to keep trying to resume a dropped session, in seconds
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub reconnect_window: u64,
    /// Resume the session when the relay has not answered for this long
    /// while data is unacknowledged, in seconds
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub stall_timeout: u64,
    /// Send a keepalive after this many idle seconds (0: never)
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub keepalive: u64,
    /// Instance name, or NAME.ZONE.PROJECT (so a Host block can pass %h)
    pub instance: String,
    /// Port on the VM
    #[arg(value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
}

fn usage(msg: impl Into<String>, fix: &str) -> UserError {
    UserError::new(exit::USAGE, msg).with_fix(fix)
}

/// A name as the relay expects it: lower-case letters, digits, `-`, and for
/// projects also the `domain.tld:` prefix of domain-scoped projects.
fn check_name(kind: &str, v: &str, extra: &[char]) -> Result<(), UserError> {
    let ok = !v.is_empty()
        && v.len() <= 100
        && v.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || extra.contains(&c)
        });
    if ok {
        Ok(())
    } else {
        Err(usage(
            format!("invalid {kind} `{}`", v.escape_default()),
            &format!("a {kind} name has lower-case letters, digits and hyphens"),
        ))
    }
}

/// Resolves the target from the arguments: `NAME.ZONE.PROJECT` or NAME with
/// `--zone`/`--project`. Explicit flags must agree with the dotted form.
pub fn resolve_target(a: &ProxyArgs) -> Result<Target, UserError> {
    let (name, zone, project) = match a.instance.split_once('.') {
        Some((name, rest)) => {
            let Some((zone, project)) = rest.split_once('.') else {
                return Err(usage(
                    format!("`{}` is neither a name nor NAME.ZONE.PROJECT", a.instance),
                    "pass the instance name with --zone and --project, or NAME.ZONE.PROJECT",
                ));
            };
            (
                name.to_string(),
                Some(zone.to_string()),
                Some(project.to_string()),
            )
        }
        None => (a.instance.clone(), None, None),
    };
    // Dotted parts win over environment defaults; with a dotted name the
    // clap env fallback values are only used when they agree.
    let zone = zone.or_else(|| a.zone.clone()).ok_or_else(|| {
        usage(
            "no zone given",
            "pass --zone ZONE, set CLOUDSDK_COMPUTE_ZONE, or use NAME.ZONE.PROJECT",
        )
    })?;
    let project = project.or_else(|| a.project.clone()).ok_or_else(|| {
        usage(
            "no project given",
            "pass --project PROJECT, set CLOUDSDK_CORE_PROJECT, or use NAME.ZONE.PROJECT",
        )
    })?;
    check_name("instance", &name, &[])?;
    check_name("zone", &zone, &[])?;
    check_name("project", &project, &['.', ':'])?;
    check_name("interface", &a.interface, &[])?;
    Ok(Target {
        project,
        zone,
        instance: name,
        interface: a.interface.clone(),
        port: a.port,
    })
}

pub fn run(a: ProxyArgs) -> Result<i32, UserError> {
    let target = resolve_target(&a)?;
    let endpoints = Endpoints::from_env()?;
    let tls = crate::tls::from_env()?;
    let source = discover(&|k| std::env::var(k).ok(), &endpoints)?;
    tracing::info!("credentials: {}", source.describe());
    let tokens = TokenProvider::new(
        source,
        endpoints.clone(),
        tls.clone(),
        TokenProvider::default_cache_dir(),
    );
    let relay = Relay {
        tunnel_base: endpoints.tunnel_base.clone(),
        tls,
        tokens,
    };
    let cfg = TunnelConfig {
        reconnect_window: std::time::Duration::from_secs(a.reconnect_window),
        stall_timeout: std::time::Duration::from_secs(a.stall_timeout),
        keepalive: (a.keepalive > 0).then(|| std::time::Duration::from_secs(a.keepalive)),
        ..TunnelConfig::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UserError::new(exit::OTHER, format!("cannot start the runtime: {e}")))?;
    let res = rt.block_on(stdio::proxy(&relay, &target, &cfg));
    // A blocked stdin read must not keep the process alive.
    rt.shutdown_background();
    res.map(|()| exit::OK).map_err(|e| e.into_user_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(instance: &str, zone: Option<&str>, project: Option<&str>) -> ProxyArgs {
        ProxyArgs {
            project: project.map(Into::into),
            zone: zone.map(Into::into),
            interface: "nic0".into(),
            reconnect_window: 900,
            stall_timeout: 30,
            keepalive: 30,
            instance: instance.into(),
            port: 22,
        }
    }

    #[test]
    fn dotted_alias() {
        let t = resolve_target(&args("vm-1.us-central1-a.example.com:proj-1", None, None)).unwrap();
        assert_eq!(t.instance, "vm-1");
        assert_eq!(t.zone, "us-central1-a");
        assert_eq!(t.project, "example.com:proj-1");
    }

    #[test]
    fn flags_and_missing_parts() {
        let t = resolve_target(&args("vm", Some("z-1"), Some("p-1"))).unwrap();
        assert_eq!((t.zone.as_str(), t.project.as_str()), ("z-1", "p-1"));
        let e = resolve_target(&args("vm", None, Some("p"))).unwrap_err();
        assert_eq!(e.code, exit::USAGE);
        assert!(e.line().contains("--zone"));
        let e = resolve_target(&args("vm.zone", None, None)).unwrap_err();
        assert!(e.line().contains("NAME.ZONE.PROJECT"));
        let e = resolve_target(&args("VM;rm", Some("z"), Some("p"))).unwrap_err();
        assert!(e.line().contains("invalid instance"));
    }
}
