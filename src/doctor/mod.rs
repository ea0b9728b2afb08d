//! The `doctor` feature (`iap-ssh doctor [INSTANCE] [--port 22]`): checks, in order, everything a
//! tunnel needs, one ✓/✗ line each with the exact fix: credentials and
//! token; the instance exists and runs; a firewall rule admits IAP's range
//! on the port; the caller may tunnel (IAP testIamPermissions); OS Login
//! state and permission; a real tunnel to the port (the SSH banner on 22).
//! With `--fix`, creates the missing firewall rule (IPv4 and, for IPv6
//! VMs, IPv6) and grants the tunnel role on the VM for the port, each
//! after a yes, before the tunnel is tried.

use std::io::Write;
use std::time::Duration;

use crate::error::{UserError, exit, printable};
use crate::gce::flags::{self, KeySource};
use crate::gce::{Api, ApiError, lookup};
use crate::gcloud::GcloudConfig;
use crate::relay::url::Target;
use crate::tunnel::{Relay, TunnelConfig};

mod firewall;
mod fix;

use firewall::check_firewall;
use fix::{Fix, apply};

/// What to check (the command line's `doctor` arguments).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Project (else from NAME.ZONE.PROJECT, else gcloud's core/project).
    pub project: Option<String>,
    /// Zone (else from NAME.ZONE.PROJECT, gcloud's compute/zone, else looked up).
    pub zone: Option<String>,
    /// The port a tunnel is tried to.
    pub port: u16,
    /// The VM; without it only the network path and credentials are checked.
    pub instance: Option<String>,
    /// Apply the fixes that can be applied, each after a yes.
    pub fix: bool,
    /// With `fix`: do not ask.
    pub yes: bool,
    /// Colour the ✓/✗ marks.
    pub color: bool,
}

/// Prints the ✓/✗ lines and remembers the first failure.
struct Report {
    color: bool,
    first_failure: Option<i32>,
    /// Exit statuses of the failed checks not fixed since.
    failures: Vec<i32>,
}

impl Report {
    fn ok(&mut self, msg: &str) {
        let mark = if self.color {
            "\x1b[32m✓\x1b[0m"
        } else {
            "✓"
        };
        println!("{mark} {}", printable(msg));
    }

    fn warn(&mut self, msg: &str) {
        let mark = if self.color { "\x1b[33m!\x1b[0m" } else { "!" };
        println!("{mark} {}", printable(msg));
    }

    fn fail(&mut self, code: i32, msg: &str, fix: &str) {
        let mark = if self.color {
            "\x1b[31m✗\x1b[0m"
        } else {
            "✗"
        };
        println!("{mark} {}", printable(msg));
        println!("    fix: {}", printable(fix));
        self.first_failure.get_or_insert(code);
        self.failures.push(code);
        let _ = std::io::stdout().flush();
    }

    /// A failed check with status `code` was fixed.
    fn fixed(&mut self, code: i32, msg: &str) {
        self.ok(msg);
        if let Some(i) = self.failures.iter().position(|c| *c == code) {
            self.failures.remove(i);
        }
        self.first_failure = self.failures.first().copied();
    }

    fn fail_user(&mut self, what: &str, e: &UserError) {
        let fix = e.fix.clone().unwrap_or_else(|| "see the message".into());
        self.fail(e.code, &format!("{what}: {}", e.cause), &fix);
    }
}

fn member(email: Option<&str>) -> String {
    match email {
        Some(e) if e.ends_with(".gserviceaccount.com") => format!("serviceAccount:{e}"),
        Some(e) => format!("user:{e}"),
        None => "user:YOUR_EMAIL".into(),
    }
}

/// Connects a real tunnel; on port 22 reads the SSH banner.
async fn probe(relay: &Relay, target: &Target, port: u16) -> Result<Option<String>, UserError> {
    let cfg = TunnelConfig {
        reconnect_window: Duration::from_secs(5),
        ..TunnelConfig::default()
    };
    if port != 22 {
        return crate::tunnel::check(relay, target, &cfg)
            .await
            .map(|()| None)
            .map_err(|e| e.into_user_error());
    }
    use tokio::io::AsyncReadExt;
    let (mut ours, theirs) = tokio::io::duplex(64 * 1024);
    let (r, w) = tokio::io::split(theirs);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let tunnel = crate::tunnel::run(r, w, relay, target, &cfg, async {
        let _ = stop_rx.await;
    });
    let reader = async move {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(20), async {
            while line.len() < 255 {
                match ours.read(&mut b).await {
                    Ok(1) if b[0] == b'\n' => break,
                    Ok(1) => line.push(b[0]),
                    _ => break,
                }
            }
        })
        .await;
        let _ = stop_tx.send(());
        (
            read.is_ok(),
            String::from_utf8_lossy(&line).trim().to_string(),
        )
    };
    let (res, (in_time, banner)) = tokio::join!(tunnel, reader);
    res.map_err(|e| e.into_user_error())?;
    if !in_time || !banner.starts_with("SSH-") {
        return Err(UserError::new(
            exit::BACKEND_UNREACHABLE,
            format!(
                "port 22 answered without an SSH banner ({:?})",
                banner.chars().take(60).collect::<String>()
            ),
        )
        .with_fix("check that sshd listens on port 22 of the VM"));
    }
    Ok(Some(banner))
}

/// Runs the checks in order, printing one line each; returns the exit
/// status of the first failure not fixed (0 when all pass). `relay` builds
/// the relay client for the last check, the real tunnel.
pub async fn doctor(
    a: Options,
    relay: impl FnOnce() -> Result<Relay, UserError>,
) -> Result<i32, UserError> {
    let mut r = Report {
        color: a.color,
        first_failure: None,
        failures: Vec::new(),
    };
    let gcloud = GcloudConfig::process();
    // Bad arguments are usage errors, not findings.
    let wanted = match &a.instance {
        Some(i) => Some(lookup::wanted(
            i,
            a.project.as_deref(),
            a.zone.as_deref(),
            gcloud,
        )?),
        None => None,
    };

    // 0. The network path: proxy, device certificate, universe.
    if let Ok(ep) = crate::net::endpoints::Endpoints::from_env() {
        let host = ep
            .tunnel_base
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| crate::net::proxy::host_port(&u))
            .map(|(h, _)| h)
            .unwrap_or_default();
        match crate::net::proxy::global() {
            Ok(p) => match p.for_host(&host) {
                Some(p) => r.ok(&format!(
                    "network: through {} proxy {} (from {}) to {host}",
                    match p.kind {
                        crate::net::proxy::Kind::Http => "HTTP",
                        crate::net::proxy::Kind::Socks5 { .. } => "SOCKS5",
                    },
                    p.addr(),
                    p.from
                )),
                None => r.ok(&format!("network: direct to {host}")),
            },
            Err(e) => r.fail(exit::USAGE, &format!("network: {e}"), e.fix()),
        }
        if crate::net::mtls::enabled() {
            match crate::net::mtls::process_cert() {
                Ok(_) => r.ok("device certificate: loaded (presented to servers that ask)"),
                Err(e) => r.fail(exit::USAGE, &e.to_string(), e.fix()),
            }
        }
        if let Some(u) = gcloud.universe_domain.as_deref() {
            r.ok(&format!("universe: {u}"));
        }
    }

    // 1. Credentials.
    let api = match Api::from_env() {
        Ok(api) => api,
        Err(e) => {
            r.fail_user("credentials", &e);
            return Ok(r.first_failure.unwrap_or(exit::OTHER));
        }
    };
    let mut desc = api.tokens().describe();
    if api.tokens().chain().is_some() {
        // "impersonating SA (as CALLER)", the caller by email when known.
        if let Ok(Some(me)) = api.caller_email().await {
            desc = api.tokens().describe_as(&me);
        }
    }
    if let Err(e) = api.tokens().token(None).await {
        r.fail_user(&format!("credentials ({desc})"), &UserError::from(e));
        return Ok(r.first_failure.unwrap_or(exit::OTHER));
    }
    let email = match api.token_email().await {
        Ok(Some(e)) => {
            r.ok(&format!("credentials: {desc}; token accepted for {e}"));
            Some(e)
        }
        Ok(None) => {
            r.fail(
                exit::NO_CREDENTIALS,
                &format!("credentials: {desc}; the token was refused"),
                "run `gcloud auth application-default login` (or fix IAP_SSH_ACCESS_TOKEN / the key file)",
            );
            return Ok(r.first_failure.unwrap_or(exit::OTHER));
        }
        Err(e) => {
            r.warn(&format!(
                "credentials: {desc}; token obtained, but tokeninfo is unreachable ({e})"
            ));
            gcloud.account.clone()
        }
    };
    let Some(w) = wanted else {
        return Ok(r.first_failure.unwrap_or(exit::OK));
    };

    // 2. The instance.
    let inst = match lookup::find(&api, &w, true).await {
        Ok(i) => i,
        Err(e) => {
            r.fail_user(&format!("instance {}", w.name), &e);
            return Ok(r.first_failure.unwrap_or(exit::OTHER));
        }
    };
    let zone = inst.zone_name().to_string();
    let project = w.project.clone();
    if inst.status == "RUNNING" {
        r.ok(&format!(
            "instance {} exists in {zone} of {project} and is RUNNING",
            inst.name
        ));
    } else {
        r.fail(
            exit::BACKEND_UNREACHABLE,
            &format!("instance {} is {}, not RUNNING", inst.name, inst.status),
            &format!(
                "gcloud compute instances start {} --zone={zone} --project={project}",
                inst.name
            ),
        );
    }

    // 3. Firewall.
    let mut fixes = check_firewall(&mut r, &api, &inst, &project, a.port).await;

    // 4. IAP permission.
    match api.iap_tunnel_access(&project, &zone, &inst.name).await {
        Ok(true) => r.ok(&format!(
            "IAM: you hold iap.tunnelInstances.accessViaIAP on {}",
            inst.name
        )),
        Ok(false) => {
            let who = member(email.as_deref());
            r.fail(
                exit::NOT_AUTHORIZED,
                &format!("IAM: you lack iap.tunnelInstances.accessViaIAP on {}", inst.name),
                &format!(
                    "iap-ssh grant --project {project} --zone {zone} --instance {} --port {} --member {who} (or, project-wide: gcloud projects add-iam-policy-binding {project} --member={who} --role=roles/iap.tunnelResourceAccessor)",
                    inst.name, a.port
                ),
            );
            // Names from the API are checked before they reach a URL.
            let resource = crate::iam::Resource::from_flags(
                &project,
                Some(&zone),
                Some(&inst.name),
                None,
                None,
            );
            if let (Some(_), Ok(resource), Ok(())) =
                (&email, resource, crate::iam::check_member(&who))
            {
                fixes.push(Fix::Grant {
                    resource,
                    member: who,
                    port: a.port,
                });
            }
        }
        Err(e) => r.warn(&format!("IAM: cannot test IAP permissions ({e})")),
    }
    if a.fix {
        for f in &fixes {
            apply(&mut r, &api, f, a.yes).await;
        }
    } else if !fixes.is_empty() {
        r.warn("`iap-ssh doctor --fix` can make the firewall and IAM changes above for you");
    }

    // 5. OS Login.
    match api.get_project(&project).await {
        Ok(p) => match flags::key_source(&p.common_instance_metadata, &inst) {
            KeySource::OsLogin => {
                let perms = [
                    "compute.instances.osLogin",
                    "compute.instances.osAdminLogin",
                ];
                match api
                    .instance_permissions(&project, &zone, &inst.name, &perms)
                    .await
                {
                    Ok(got) if !got.is_empty() => r.ok(&format!(
                        "OS Login: on for {}; you hold {}",
                        inst.name,
                        got.join(" and ")
                    )),
                    Ok(_) => {
                        let mut fix = format!(
                            "gcloud projects add-iam-policy-binding {project} --member={} --role=roles/compute.osLogin",
                            member(email.as_deref())
                        );
                        if let Some(sa) = inst.service_accounts.first() {
                            fix.push_str(&format!(
                                "; and, as the VM runs as {0}: gcloud iam service-accounts add-iam-policy-binding {0} --member={1} --role=roles/iam.serviceAccountUser",
                                sa.email,
                                member(email.as_deref())
                            ));
                        }
                        r.fail(
                            exit::NOT_AUTHORIZED,
                            &format!("OS Login: on for {}, but you may not log in (compute.instances.osLogin)", inst.name),
                            &fix,
                        );
                    }
                    Err(e) => r.warn(&format!("OS Login: on; cannot test permissions ({e})")),
                }
            }
            KeySource::Windows => r.ok(&format!(
                "OS Login: {} is a Windows VM (RDP: iap-ssh forward … 3389)",
                inst.name
            )),
            s => r.ok(&format!(
                "OS Login: off for {}; keys come from {}",
                inst.name,
                s.describe()
            )),
        },
        Err(ApiError::Status { status: 403, .. }) => r.warn(&format!(
            "OS Login: cannot read project {project} metadata (needs compute.projects.get)"
        )),
        Err(e) => r.warn(&format!("OS Login: cannot read project {project} ({e})")),
    }

    // 6. A real tunnel.
    let relay = relay()?;
    let target = Target::instance(&project, &zone, &inst.name, a.port);
    match probe(&relay, &target, a.port).await {
        Ok(Some(banner)) => r.ok(&format!("tunnel to port 22: {banner}")),
        Ok(None) => r.ok(&format!("tunnel to port {}: connected", a.port)),
        Err(e) => r.fail_user(&format!("tunnel to port {}", a.port), &e),
    }
    let _ = std::io::stdout().flush();
    Ok(r.first_failure.unwrap_or(exit::OK))
}
