//! The `rdp` feature: creating or resetting a Windows account through the
//! guest agent's `windows-keys` protocol ([`windows`]: instance metadata,
//! a fresh RSA-2048 key, the OAEP-encrypted answer on serial port 4),
//! keeping the password, and finding the RDP client to start.

pub mod windows;

use std::time::{Duration, Instant};

use crate::error::{UserError, exit};
use crate::gce::Api;
use crate::gce::compute::Instance;
use crate::setup::publish::Level;
use windows::{KeyPair, Reply};

/// Creates or resets `user` on `inst` and returns the password.
pub async fn reset_password(
    api: &Api,
    project: &str,
    inst: &Instance,
    user: &str,
    email: &str,
    timeout: Duration,
    quiet: bool,
) -> Result<String, UserError> {
    let zone = inst.zone_name().to_string();
    let name = inst.name.clone();
    let fix_meta = "resetting a password needs compute.instances.setMetadata on the VM (roles/compute.instanceAdmin.v1), and iam.serviceAccounts.actAs on its service account";
    // Where the answer will start: what port 4 holds now is older.
    let (_, mut offset) = api
        .serial_port(project, &zone, &name, 4, None)
        .await
        .map_err(|e| e.to_user("reading the VM's serial port needs compute.instances.getSerialPortOutput (roles/compute.instanceAdmin.v1)"))?;
    let kp = tokio::task::spawn_blocking(KeyPair::generate)
        .await
        .map_err(|e| UserError::new(exit::OTHER, e.to_string()))?
        .map_err(|e| UserError::new(exit::OTHER, format!("cannot generate an RSA key: {e}")))?;
    let now = crate::timefmt::unix_now() as i64;
    let line = windows::request_line(user, email, now + windows::REQUEST_TTL, &kp);
    // Our line added by read-modify-write with the fingerprint.
    let level = Level::Instance {
        project: project.to_string(),
        zone: zone.clone(),
        name: name.clone(),
    };
    level
        .edit(api, inst.metadata.clone(), |meta| {
            let mut meta = meta.clone();
            let value = windows::updated_value(meta.get("windows-keys").unwrap_or(""), &line, now);
            meta.set("windows-keys", value);
            Ok(Some(meta))
        })
        .await
        .map_err(|e| e.to_user(fix_meta))?;
    if !quiet {
        eprintln!(
            "iap-ssh: waiting for the Windows guest agent to set the password of {user} on {name}…"
        );
    }
    let deadline = Instant::now() + timeout;
    let mut pending = String::new();
    let mut pause = Duration::from_millis(500);
    loop {
        let (chunk, next) = api
            .serial_port(project, &zone, &name, 4, Some(offset))
            .await
            .map_err(|e| {
                e.to_user(
                    "reading the VM's serial port needs compute.instances.getSerialPortOutput",
                )
            })?;
        offset = next.max(offset);
        pending.push_str(&chunk);
        // Only complete lines: a reply may arrive in two reads.
        let complete = match pending.rfind('\n') {
            Some(i) => pending[..=i].to_string(),
            None => String::new(),
        };
        match windows::find_reply(&complete, &kp.modulus) {
            Some(Reply::Password { encrypted, hash }) => {
                return kp.decrypt(&encrypted, hash.as_deref()).map_err(|e| {
                    UserError::new(exit::OTHER, e)
                        .with_fix("run the command again (a new key is used each time)")
                });
            }
            Some(Reply::Error(msg)) => {
                return Err(UserError::new(
                    exit::OTHER,
                    format!("the Windows guest agent on {name} could not set the password of {user}: {msg}"),
                )
                .with_fix("check the user name (at most 20 characters, no \\ / [ ] : ; | = , + * ? < > @ \"), or pass another with --user"));
            }
            None => {}
        }
        if let Some(i) = pending.rfind('\n') {
            pending.drain(..=i);
        }
        if Instant::now() + pause > deadline {
            return Err(UserError::new(
                exit::OTHER,
                format!(
                    "the Windows guest agent on {name} did not answer within {} s",
                    timeout.as_secs()
                ),
            )
            .with_fix("check that the VM is running Windows with the guest agent (GCEWindowsAgent) started, and that disable-account-manager is not true in its or the project's metadata; a VM that just booted may need a minute (--password-timeout)"));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Writes the password to `path`, 0600, replacing the file.
pub fn write_password(path: &std::path::Path, pw: &str) -> Result<(), UserError> {
    crate::fsutil::write_private_atomic(path, format!("{pw}\n").as_bytes()).map_err(|e| {
        UserError::new(exit::OTHER, format!("{}: {e}", path.display()))
            .with_fix("check the folder exists and is writable")
    })
}

/// The RDP client to start for `localhost:port` and `rdp_file`, if one is
/// on this machine.
pub fn client_command(port: u16, user: &str, rdp_file: &std::path::Path) -> Option<Vec<String>> {
    let on_path = |name: &str| {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|f| f.is_file())
        })
    };
    let target = format!("/v:localhost:{port}");
    let user_arg = format!("/u:{user}");
    // FreeRDP 3 spells certificate handling /cert:ignore, 2.x /cert-ignore.
    for (bin, cert) in [
        ("xfreerdp3", "/cert:ignore"),
        ("sdl-freerdp3", "/cert:ignore"),
        ("xfreerdp", "/cert-ignore"),
        ("wlfreerdp", "/cert-ignore"),
    ] {
        if let Some(p) = on_path(bin) {
            return Some(vec![
                p.display().to_string(),
                target,
                user_arg,
                cert.to_string(),
            ]);
        }
    }
    if cfg!(target_os = "macos") {
        return Some(vec!["open".into(), rdp_file.display().to_string()]);
    }
    if let Some(p) = on_path("mstsc.exe").or_else(|| on_path("mstsc")) {
        return Some(vec![
            p.display().to_string(),
            rdp_file.display().to_string(),
        ]);
    }
    None
}
