//! `iap-ssh rdp VM`: RDP to a Windows VM through IAP. With
//! `--reset-password`, creates or resets the Windows account through the
//! guest agent's `windows-keys` protocol ([`crate::windows`]: instance
//! metadata, a fresh RSA-2048 key, the OAEP-encrypted answer on serial
//! port 4) and shows the password once (or writes it 0600 with
//! `--password-file`). Then forwards a free local port to 3389, writes a
//! `.rdp` file and starts the RDP client it finds (FreeRDP, `mstsc`,
//! macOS `open`), or prints how to connect and forwards until Ctrl-C.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use crate::error::{UserError, exit};
use crate::gce::compute::Instance;
use crate::gce::{Api, lookup};
use crate::gcloud::GcloudConfig;
use crate::relay::url::Target;
use crate::setup::publish::Level;
use crate::tunnel::listener::{self, Forward};
use crate::windows::{self, KeyPair, Reply};

#[derive(Debug, Args)]
pub struct RdpArgs {
    /// Project (default: from NAME.ZONE.PROJECT, else gcloud's core/project)
    #[arg(long)]
    pub project: Option<String>,
    /// Zone (default: from NAME.ZONE.PROJECT, gcloud's compute/zone, else looked up)
    #[arg(long)]
    pub zone: Option<String>,
    /// Windows account (default: from your account's email, as gcloud
    /// derives it, at most 20 characters)
    #[arg(long)]
    pub user: Option<String>,
    /// Create the account, or reset its password, through the guest agent
    /// and show the new password once. Resetting an existing account's
    /// password loses what Windows encrypted with the old one (EFS)
    #[arg(long)]
    pub reset_password: bool,
    /// With --reset-password: write the password to this file (0600)
    /// instead of showing it
    #[arg(long, value_name = "FILE", requires = "reset_password")]
    pub password_file: Option<PathBuf>,
    /// How long to wait for the guest agent's answer, in seconds
    #[arg(long, default_value_t = 90, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub password_timeout: u64,
    /// Local address for the tunnel (port 0: a free one)
    #[arg(long, value_name = "HOST:PORT", default_value = "localhost:0")]
    pub local_host_port: String,
    /// Where to write the .rdp file (default: in iap-ssh's cache folder)
    #[arg(long, value_name = "FILE")]
    pub rdp_file: Option<PathBuf>,
    /// Do not start an RDP client; forward until Ctrl-C
    #[arg(long)]
    pub no_launch: bool,
    /// Port of the RDP server on the VM
    #[arg(long, default_value_t = 3389, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// The VM: INSTANCE or NAME.ZONE.PROJECT
    pub instance: String,
}

/// Creates or resets `user` on `inst` and returns the password.
async fn reset_password(
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
    let now = crate::auth::unix_now() as i64;
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
fn write_password(path: &std::path::Path, pw: &str) -> Result<(), UserError> {
    crate::fsutil::write_private_atomic(path, format!("{pw}\n").as_bytes()).map_err(|e| {
        UserError::new(exit::OTHER, format!("{}: {e}", path.display()))
            .with_fix("check the folder exists and is writable")
    })
}

/// The RDP client to start for `localhost:port` and `rdp_file`, if one is
/// on this machine.
fn client_command(port: u16, user: &str, rdp_file: &std::path::Path) -> Option<Vec<String>> {
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

pub fn run(a: RdpArgs, quiet: bool) -> Result<i32, UserError> {
    let gcloud = GcloudConfig::process();
    let wanted = lookup::wanted(&a.instance, a.project.as_deref(), a.zone.as_deref(), gcloud)?;
    if let Some(u) = &a.user
        && !windows::valid_user(u)
    {
        return Err(UserError::new(
            exit::USAGE,
            format!("--user {u:?} is not a Windows account name"),
        )
        .with_fix(
            "use at most 20 characters and none of \\ / [ ] : ; | = , + * ? < > @ \" or spaces",
        ));
    }
    let (host, lport) = super::forward::parse_host_port(&a.local_host_port)?;
    let relay = Arc::new(super::target::relay_from_env()?);
    let rt = super::runtime()?;
    let res = rt.block_on(async {
        let api = Api::from_env()?;
        let inst = lookup::find(&api, &wanted, true).await?;
        let project = wanted.project.clone();
        let zone = inst.zone_name().to_string();
        // The account's email names the default user, and goes into the
        // password request (informational there: the user name stands in).
        let email = match &a.user {
            None => Some(crate::setup::account_email(&api, gcloud).await?),
            Some(_) if a.reset_password => crate::setup::account_email(&api, gcloud).await.ok(),
            Some(_) => None,
        };
        let user = match (&a.user, &email) {
            (Some(u), _) => u.clone(),
            (None, e) => windows::default_user(e.as_deref().unwrap_or_default()),
        };
        if a.reset_password {
            if !inst.is_windows() {
                return Err(UserError::new(
                    exit::USAGE,
                    format!("{} is not a Windows VM (its boot disk has no WINDOWS feature)", inst.name),
                )
                .with_fix("--reset-password works with the Windows guest agent only"));
            }
            if user == inst.name {
                return Err(UserError::new(exit::USAGE, format!("the user name {user:?} equals the VM's name"))
                    .with_fix("Windows refuses an account named like the computer: pass --user"));
            }
            let email = email.clone().unwrap_or_else(|| user.clone());
            let pw = reset_password(
                &api,
                &project,
                &inst,
                &user,
                &email,
                Duration::from_secs(a.password_timeout),
                quiet,
            )
            .await?;
            match &a.password_file {
                Some(f) => {
                    write_password(f, &pw)?;
                    if !quiet {
                        eprintln!("iap-ssh: the password of {user} on {} is in {} (0600)", inst.name, f.display());
                    }
                }
                None => {
                    // Shown once; never logged.
                    println!("Windows user: {user}\nPassword: {pw}");
                }
            }
        }

        // The tunnel to port 3389 on a local port.
        let target = Target::instance(&project, &zone, &inst.name, a.port);
        let listeners = super::forward::bind_local(&host, lport, "--local-host-port").await?;
        let port = listeners[0].local_addr().map(|x| x.port()).unwrap_or(0);
        let cfg = crate::tunnel::TunnelConfig::default();
        crate::tunnel::check(&relay, &target, &cfg)
            .await
            .map_err(|e| e.into_user_error())?;
        let rdp_path = match &a.rdp_file {
            Some(p) => p.clone(),
            None => {
                let dir = dirs::cache_dir()
                    .map(|d| d.join("iap-ssh").join("rdp"))
                    .ok_or_else(|| UserError::new(exit::OTHER, "no cache folder").with_fix("pass --rdp-file"))?;
                crate::fsutil::create_private_dir(&dir).map_err(|e| {
                    UserError::new(exit::OTHER, format!("{}: {e}", dir.display()))
                })?;
                dir.join(format!("{}.{zone}.{project}.rdp", inst.name))
            }
        };
        crate::fsutil::write_private_atomic(&rdp_path, windows::rdp_file(port, &user).as_bytes())
            .map_err(|e| UserError::new(exit::OTHER, format!("{}: {e}", rdp_path.display())))?;
        println!("RDP to {} as {user}: localhost:{port} (file {})", inst.name, rdp_path.display());
        let _ = std::io::stdout().flush();

        let client = if a.no_launch { None } else { client_command(port, &user, &rdp_path) };
        let forwards = vec![Forward { listeners, target }];
        match client {
            Some(argv) => {
                if !quiet {
                    eprintln!("iap-ssh: starting {}", argv[0]);
                }
                let mut child = tokio::process::Command::new(&argv[0])
                    .args(&argv[1..])
                    .kill_on_drop(false)
                    .spawn()
                    .map_err(|e| UserError::new(exit::OTHER, format!("cannot start {}: {e}", argv[0]))
                        .with_fix("start your RDP client yourself against the address above, or pass --no-launch"))?;
                // Forward while the client runs (and on Ctrl-C stop).
                let done = async move {
                    tokio::select! {
                        _ = child.wait() => {}
                        () = super::forward::shutdown_signal() => {}
                    }
                };
                listener::serve(relay.clone(), forwards, cfg, done, Duration::from_secs(2)).await;
            }
            None => {
                if !quiet && !a.no_launch {
                    eprintln!(
                        "iap-ssh: no RDP client found (xfreerdp, wlfreerdp, mstsc): connect one to localhost:{port}, e.g. xfreerdp /v:localhost:{port} /u:{user} /cert:ignore; Ctrl-C to stop"
                    );
                }
                listener::serve(relay.clone(), forwards, cfg, super::forward::shutdown_signal(), Duration::from_secs(5)).await;
            }
        }
        Ok::<i32, UserError>(exit::OK)
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    res
}
