//! A single VM made ready for `iap-ssh ssh`/`scp`: booted (`--wait`), and
//! a key just published to its metadata arrived (the guest agent needs a
//! moment); and the ssh options that reach it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::one;
use crate::error::UserError;
use crate::gce::{Api, lookup};
use crate::relay::retry::Backoff;
use crate::ssh::command;

/// While the instance is PROVISIONING or STAGING, polls `instances.get`
/// with backoff until it is RUNNING or `wait` has passed (then the last
/// state is returned and the tunnel says what is wrong).
pub async fn wait_while_booting(
    api: &Api,
    wanted: &lookup::Wanted,
    mut inst: crate::gce::compute::Instance,
    wait: std::time::Duration,
    quiet: bool,
) -> Result<crate::gce::compute::Instance, UserError> {
    let mut backoff = Backoff::new();
    let mut told = false;
    while matches!(inst.status.as_str(), "PROVISIONING" | "STAGING") {
        backoff.attempt(Instant::now());
        let Some(pause) = backoff.next(
            Instant::now(),
            wait,
            crate::tunnel::jitter(),
            Duration::ZERO,
        ) else {
            break;
        };
        if !told && !quiet {
            eprintln!(
                "iap-ssh: {} is {}; waiting for it to boot (up to {} s)",
                inst.name,
                inst.status,
                wait.as_secs()
            );
        }
        told = true;
        tokio::time::sleep(pause).await;
        inst = lookup::find(api, wanted, true).await?;
    }
    Ok(inst)
}

/// After a metadata write, the guest agent needs a moment: try a
/// non-interactive `ssh … true` (only exit 255, ssh's own failure, is
/// retried) for up to a minute, like gcloud, but through one native
/// tunnel per try.
pub fn wait_for_key(p: &one::Prepared, port: u16, quiet: bool) {
    let mut base = ssh_options(p, port);
    base.push(format!("{}@{}", p.user, p.host));
    // A key just written here: say so at once. A key another run wrote
    // moments ago has most likely arrived: say so only if it has not.
    let mut told = false;
    let tell = |told: &mut bool| {
        if !*told && !quiet {
            eprintln!("iap-ssh: waiting for the key to reach the VM…");
        }
        *told = true;
    };
    if p.wrote_metadata {
        tell(&mut told);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pause = Duration::from_millis(500);
    loop {
        let status = Command::new("ssh")
            .args(&base)
            .args([
                "-T",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=30",
                "-o",
                "LogLevel=QUIET",
            ])
            .arg("true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match status {
            Ok(s) if s.code() != Some(255) => return,
            Err(_) => return,
            _ if Instant::now() > deadline => {
                if !quiet {
                    eprintln!("iap-ssh: the key has not reached the VM after 60 s; trying anyway");
                }
                return;
            }
            _ => {
                tell(&mut told);
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(4));
            }
        }
    }
}

/// ssh's options for `p`, with `-p` when the port is not 22.
pub fn ssh_options(p: &one::Prepared, port: u16) -> Vec<String> {
    let mut opts = command::options(&p.conn);
    if port != 22 {
        opts.extend(["-p".to_string(), port.to_string()]);
    }
    opts
}
