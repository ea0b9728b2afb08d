//! `iap-ssh rdp VM`: RDP to a Windows VM through IAP. With
//! `--reset-password`, creates or resets the Windows account through the
//! guest agent's `windows-keys` protocol (the `rdp` feature: instance
//! metadata, a fresh RSA-2048 key, the OAEP-encrypted answer on serial
//! port 4) and shows the password once (or writes it 0600 with
//! `--password-file`). Then forwards a free local port to 3389, writes a
//! `.rdp` file and starts the RDP client it finds (FreeRDP, `mstsc`,
//! macOS `open`), or prints how to connect and forwards until Ctrl-C.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::error::{UserError, exit};
use crate::gce::{Api, lookup};
use crate::gcloud::GcloudConfig;
use crate::rdp::{client_command, reset_password, windows, write_password};
use crate::relay::url::Target;
use crate::tunnel::listener::{self, Forward};

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
    let (host, lport) = super::args::parse_host_port(&a.local_host_port)?;
    let relay = Arc::new(super::args::relay_from_env()?);
    let rt = super::args::runtime()?;
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
        let listeners = super::args::bind_local(&host, lport, "--local-host-port").await?;
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
                        () = super::args::shutdown_signal() => {}
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
                listener::serve(relay.clone(), forwards, cfg, super::args::shutdown_signal(), Duration::from_secs(5)).await;
            }
        }
        Ok::<i32, UserError>(exit::OK)
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    res
}
