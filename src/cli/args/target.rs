//! Target and tunnel options shared by `proxy` and `forward`, and building
//! the relay client from the environment.

use std::time::Duration;

use clap::Args;

use crate::auth::TokenProvider;
use crate::error::{UserError, exit};
use crate::net::endpoints::Endpoints;
use crate::relay::url::{Dest, Target};
use crate::tunnel::{Relay, TunnelConfig};

#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Project id (default: from NAME.ZONE.PROJECT, else CLOUDSDK_CORE_PROJECT)
    #[arg(long, env = "CLOUDSDK_CORE_PROJECT", hide_env_values = true)]
    pub project: Option<String>,
    /// Zone of the VM (default: from NAME.ZONE.PROJECT, else CLOUDSDK_COMPUTE_ZONE)
    #[arg(long, env = "CLOUDSDK_COMPUTE_ZONE", hide_env_values = true)]
    pub zone: Option<String>,
    /// Network interface of the VM
    #[arg(long, default_value = "nic0")]
    pub interface: String,
    /// Region of a host target (an IP or FQDN reached through an IAP destination group)
    #[arg(long, requires = "network")]
    pub region: Option<String>,
    /// VPC network of a host target
    #[arg(long, requires = "region")]
    pub network: Option<String>,
    /// IAP destination group of a host target
    #[arg(long, requires = "region")]
    pub dest_group: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct TunnelArgs {
    /// How long to keep trying to resume a dropped session, in seconds
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub reconnect_window: u64,
    /// Resume the session when the connection to the relay is dead for
    /// this long (TCP keepalive, unacknowledged TCP data), or when the send
    /// window is full and the relay confirms nothing for this long, in seconds
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub stall_timeout: u64,
    /// Send a keepalive after this many idle seconds (0: never)
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub keepalive: u64,
    /// Give up opening a WebSocket (handshake plus the relay's first
    /// message, one budget) after this many seconds
    #[arg(long, default_value_t = 60, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout: u64,
    /// While the VM is not ready (booting: close 4003 or 4047, HTTP 429 or
    /// 5xx on the upgrade), keep trying for this long: 90 (seconds), 90s,
    /// 5m, 1h. Never for a refusal (4033) or a bad request. Default: fail
    /// at once
    #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
    pub wait: Option<Duration>,
}

/// `--wait`: seconds, or a number with `s`, `m`, `h`, `d` or `w`.
pub fn parse_wait(s: &str) -> Result<Duration, String> {
    use crate::timefmt::{BadDuration, duration_secs};
    match duration_secs(s, 1) {
        Ok(n) => Ok(Duration::from_secs(n)),
        Err(BadDuration::NotANumber) => {
            Err(format!("`{s}` is not a duration like 90, 90s, 5m or 1h"))
        }
        Err(BadDuration::UnknownUnit(unit)) => Err(format!(
            "`{s}`: unknown unit `{unit}` (use s, m, h, d or w)"
        )),
    }
}

fn secs(v: u64) -> Duration {
    Duration::from_secs(v.min(crate::timefmt::MAX_DURATION_SECS))
}

impl TunnelArgs {
    pub fn config(&self) -> TunnelConfig {
        TunnelConfig {
            reconnect_window: secs(self.reconnect_window),
            stall_timeout: secs(self.stall_timeout),
            keepalive: (self.keepalive > 0).then(|| secs(self.keepalive)),
            connect_timeout: secs(self.connect_timeout),
            wait: self.wait.filter(|w| !w.is_zero()),
            ..TunnelConfig::default()
        }
    }
}

pub fn usage(msg: impl Into<String>, fix: &str) -> UserError {
    UserError::new(exit::USAGE, msg).with_fix(fix)
}

/// A name as the relay expects it: lower-case letters, digits, `-`, plus
/// `extra` characters.
fn check_name(kind: &str, v: &str, extra: &[char]) -> Result<(), UserError> {
    let ok = !v.is_empty()
        && v.len() <= 253
        && v.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || extra.contains(&c)
        });
    if ok {
        Ok(())
    } else {
        Err(usage(
            format!("invalid {kind} `{}`", v.escape_default()),
            &format!("a {kind} has lower-case letters, digits and hyphens"),
        ))
    }
}

impl TargetArgs {
    /// Resolves `name` (an instance name, `NAME.ZONE.PROJECT`, or with
    /// `--region`/`--network` an IP or FQDN) and `port` into a target.
    pub fn resolve(&self, name: &str, port: u16) -> Result<Target, UserError> {
        self.resolve_with(name, port, &crate::gcloud::GcloudConfig::from_env)
    }

    /// [`TargetArgs::resolve`] with gcloud's configuration from `gcloud_config`.
    pub fn resolve_with(
        &self,
        name: &str,
        port: u16,
        gcloud_config: &dyn Fn() -> crate::gcloud::GcloudConfig,
    ) -> Result<Target, UserError> {
        if let (Some(region), Some(network)) = (&self.region, &self.network) {
            let project = self.project.clone().ok_or_else(|| {
                usage(
                    "no project given",
                    "pass --project PROJECT or set CLOUDSDK_CORE_PROJECT",
                )
            })?;
            check_name("project", &project, &['.', ':'])?;
            check_name("region", region, &[])?;
            check_name("network", network, &[])?;
            if let Some(g) = &self.dest_group {
                check_name("destination group", g, &[])?;
            }
            let host_ok = !name.is_empty()
                && name.len() <= 253
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
            if !host_ok {
                return Err(usage(
                    format!("invalid host `{}`", name.escape_default()),
                    "with --region and --network, give an IP address or a host name",
                ));
            }
            return Ok(Target {
                project,
                port,
                dest: Dest::Host {
                    region: region.clone(),
                    network: network.clone(),
                    host: name.to_string(),
                    group: self.dest_group.clone(),
                },
            });
        }
        let (instance, zone, project) = match name.split_once('.') {
            Some((n, rest)) => {
                let Some((zone, project)) = rest.split_once('.') else {
                    return Err(usage(
                        format!("`{name}` is neither a name nor NAME.ZONE.PROJECT"),
                        "pass the instance name with --zone and --project, or NAME.ZONE.PROJECT",
                    ));
                };
                (
                    n.to_string(),
                    Some(zone.to_string()),
                    Some(project.to_string()),
                )
            }
            None => (name.to_string(), None, None),
        };
        // The dotted form wins over --zone/--project defaults from the
        // environment, so one wildcard Host block serves every VM. Last
        // come gcloud's configuration files (read only when needed: two
        // small files, no API call).
        let gcloud = std::cell::OnceCell::new();
        let gcloud = || gcloud.get_or_init(gcloud_config);
        let zone = zone
            .or_else(|| self.zone.clone())
            .or_else(|| gcloud().zone.clone())
            .ok_or_else(|| {
                usage(
                    "no zone given",
                    "pass --zone ZONE, use NAME.ZONE.PROJECT, or `gcloud config set compute/zone ZONE`",
                )
            })?;
        let project = project
            .or_else(|| self.project.clone())
            .or_else(|| gcloud().project.clone())
            .ok_or_else(|| {
                usage(
                    "no project given",
                    "pass --project PROJECT, use NAME.ZONE.PROJECT, or `gcloud config set project PROJECT`",
                )
            })?;
        check_name("instance", &instance, &[])?;
        check_name("zone", &zone, &[])?;
        check_name("project", &project, &['.', ':'])?;
        check_name("interface", &self.interface, &[])?;
        Ok(Target {
            project,
            port,
            dest: Dest::Instance {
                zone,
                instance,
                interface: self.interface.clone(),
            },
        })
    }
}

/// The relay client from the environment: endpoints, TLS trust,
/// credentials (no network access yet).
pub fn relay_from_env() -> Result<Relay, UserError> {
    let endpoints = Endpoints::from_env()?;
    let base = crate::net::tls::from_env()?;
    let tokens = TokenProvider::from_env(
        &endpoints,
        crate::net::mtls::with_client_cert(&base, false)?,
    )?;
    Ok(Relay {
        tunnel_base: endpoints.tunnel_base.clone(),
        tls: crate::net::mtls::with_client_cert(&base, true)?,
        tokens: Box::new(tokens),
        handshakes: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(zone: Option<&str>, project: Option<&str>) -> TargetArgs {
        TargetArgs {
            project: project.map(Into::into),
            zone: zone.map(Into::into),
            interface: "nic0".into(),
            region: None,
            network: None,
            dest_group: None,
        }
    }

    #[test]
    fn wait_durations() {
        assert_eq!(parse_wait("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_wait("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_wait("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_wait("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(
            parse_wait("99999999999999h"),
            Ok(secs(crate::timefmt::MAX_DURATION_SECS))
        );
        assert_eq!(parse_wait("1d"), Ok(Duration::from_secs(86_400)));
        for bad in ["", "m", "5y", "-1", "1.5m"] {
            assert!(parse_wait(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dotted_alias() {
        let t = args(Some("ignored"), None)
            .resolve_with(
                "vm-1.us-central1-a.example.com:proj-1",
                22,
                &Default::default,
            )
            .unwrap();
        assert_eq!(t, {
            let mut x = Target::instance("example.com:proj-1", "us-central1-a", "vm-1", 22);
            x.port = 22;
            x
        });
    }

    #[test]
    fn flags_and_missing_parts() {
        let t = args(Some("z-1"), Some("p-1"))
            .resolve_with("vm", 22, &Default::default)
            .unwrap();
        assert_eq!(t, Target::instance("p-1", "z-1", "vm", 22));
        let e = args(None, Some("p"))
            .resolve_with("vm", 22, &Default::default)
            .unwrap_err();
        assert_eq!(e.code, exit::USAGE);
        assert!(e.line().contains("--zone"));
        let e = args(None, None)
            .resolve_with("vm.zone", 22, &Default::default)
            .unwrap_err();
        assert!(e.line().contains("NAME.ZONE.PROJECT"));
        let e = args(Some("z"), Some("p"))
            .resolve_with("VM;rm", 22, &Default::default)
            .unwrap_err();
        assert!(e.line().contains("invalid instance"));
    }

    #[test]
    fn host_targets() {
        let mut a = args(Some("z"), Some("p1"));
        a.region = Some("us-central1".into());
        a.network = Some("default".into());
        a.dest_group = Some("grp1".into());
        let t = a.resolve_with("10.1.2.3", 22, &Default::default).unwrap();
        assert!(
            matches!(&t.dest, Dest::Host { host, group: Some(g), .. } if host == "10.1.2.3" && g == "grp1")
        );
        assert!(
            a.resolve_with("db.internal.example.com", 5432, &Default::default)
                .is_ok()
        );
        assert!(a.resolve_with("a b", 22, &Default::default).is_err());
        assert!(a.resolve_with("$(x)", 22, &Default::default).is_err());
    }
}

#[cfg(test)]
mod gcloud_defaults {
    use super::*;

    #[test]
    fn gcloud_configuration_fills_in_last() {
        let a = TargetArgs {
            project: None,
            zone: Some("flag-zone".into()),
            interface: "nic0".into(),
            region: None,
            network: None,
            dest_group: None,
        };
        let g = || crate::gcloud::GcloudConfig {
            project: Some("from-gcloud".into()),
            zone: Some("gcloud-zone".into()),
            ..Default::default()
        };
        let t = a.resolve_with("vm", 22, &g).unwrap();
        assert_eq!(t, Target::instance("from-gcloud", "flag-zone", "vm", 22));
    }
}
