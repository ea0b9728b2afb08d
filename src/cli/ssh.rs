//! `iap-ssh ssh` and `iap-ssh scp`: run the system OpenSSH client with the
//! options a setup Host block carries, with no setup needed; `--dry-run`
//! prints the command, shell-quoted so that pasting it runs it;
//! `--print-rsh` prints an ssh command for `rsync -e`.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use clap::Args;

use crate::error::{UserError, exit};
use crate::gce::{Api, lookup};
use crate::gcloud::GcloudConfig;
use crate::setup::{self, one, ready};
use crate::ssh::command::{self, ScpArg};
use crate::ssh::{names, quote};

/// Options shared by `ssh` and `scp`.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Project (default: from NAME.ZONE.PROJECT, else gcloud's core/project)
    #[arg(long)]
    pub project: Option<String>,
    /// Zone (default: from NAME.ZONE.PROJECT, gcloud's compute/zone, else looked up)
    #[arg(long)]
    pub zone: Option<String>,
    /// Private key (default: ~/.ssh/google_compute_engine; created when missing)
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Known-hosts file (default: ~/.ssh/google_compute_known_hosts)
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Lifetime of a key published by this command: 30d, 12h, ... or `never`
    #[arg(long, default_value = "365d", value_name = "DURATION", value_parser = super::args::parse_ttl)]
    pub key_ttl: super::args::Ttl,
    /// Port on the VM
    #[arg(long, default_value_t = 22, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Print the command (shell-quoted, ready to paste) and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// While the VM is booting (status PROVISIONING or STAGING, then close
    /// 4003/4047 until sshd listens), keep trying for this long: 90
    /// (seconds), 90s, 5m, 1h. Default: fail at once
    #[arg(long, value_name = "DURATION", value_parser = super::args::parse_wait)]
    pub wait: Option<std::time::Duration>,
    /// Connect to the VM's internal IP directly, without IAP (you are on
    /// its VPC network or a VPN into it); keys, user and host-key pinning
    /// stay the same
    #[arg(long, conflicts_with = "wait")]
    pub internal_ip: bool,
}

impl ConnectArgs {
    /// `--key-file`, else ~/.ssh/google_compute_engine.
    fn key_file(&self) -> Result<PathBuf, UserError> {
        self.key_file.clone().map_or_else(
            || super::args::home_file(&[".ssh", "google_compute_engine"]),
            Ok,
        )
    }

    /// `--known-hosts`, else ~/.ssh/google_compute_known_hosts.
    fn known_hosts(&self) -> Result<PathBuf, UserError> {
        self.known_hosts.clone().map_or_else(
            || super::args::home_file(&[".ssh", "google_compute_known_hosts"]),
            Ok,
        )
    }
}

#[derive(Debug, Args)]
pub struct SshArgs {
    #[command(flatten)]
    pub conn: ConnectArgs,
    /// Print an ssh command for `rsync -e "$(iap-ssh ssh --print-rsh VM)"` and exit
    #[arg(long)]
    pub print_rsh: bool,
    /// Run PuTTY's plink instead of ssh (the key as KEY.ppk, host keys
    /// pinned with -hostkey, the tunnel as -proxycmd)
    #[arg(long, conflicts_with = "print_rsh")]
    pub putty: bool,
    /// [USER@]INSTANCE, or [USER@]NAME.ZONE.PROJECT
    pub target: String,
    /// ssh options and/or the remote command (after `--` if they start with `-`)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ScpArgs {
    #[command(flatten)]
    pub conn: ConnectArgs,
    /// Copy directories recursively
    #[arg(short, long)]
    pub recurse: bool,
    /// Compress in transit
    #[arg(short = 'C', long)]
    pub compress: bool,
    /// Extra scp flag (repeatable), e.g. --scp-flag=-O
    #[arg(long, value_name = "FLAG", allow_hyphen_values = true)]
    pub scp_flag: Vec<String>,
    /// [[USER@]INSTANCE:]SRC... [[USER@]INSTANCE:]DEST
    #[arg(required = true, num_args = 2..)]
    pub paths: Vec<String>,
}

fn split_user(target: &str) -> Result<(Option<String>, String), UserError> {
    match target.rsplit_once('@') {
        Some((u, h)) => {
            names::require_user(u)?;
            Ok((Some(u.to_string()), h.to_string()))
        }
        None => Ok((None, target.to_string())),
    }
}

/// Finds the instance and prepares it (publishing unless dry run).
fn prepare(
    c: &ConnectArgs,
    instance: &str,
    user: Option<String>,
    quiet: bool,
) -> Result<one::Prepared, UserError> {
    let gcloud = GcloudConfig::process();
    let wanted = lookup::wanted(instance, c.project.as_deref(), c.zone.as_deref(), gcloud)?;
    let opts = setup::Options {
        selection: setup::Selection {
            projects: vec![wanted.project.clone()],
            ..Default::default()
        },
        key_file: c.key_file()?,
        ssh_config: PathBuf::new(),
        known_hosts: c.known_hosts()?,
        user,
        key_ttl: c.key_ttl.0,
        dry_run: c.dry_run,
        remove: false,
        quiet,
        exe: super::args::exe_path()?,
        global_args: crate::auth::impersonate::launcher_args(),
        proxy_args: String::new(),
        control: None,
        internal_ip: c.internal_ip,
        putty: false,
        putty_reg: None,
    };
    let rt = super::args::runtime()?;
    rt.block_on(async {
        let api = Api::from_env_for(c.dry_run)?;
        let started = std::time::Instant::now();
        let mut inst = lookup::find(&api, &wanted, !c.dry_run).await?;
        let mut opts = opts;
        if let Some(wait) = c.wait {
            if !c.dry_run {
                inst = ready::wait_while_booting(&api, &wanted, inst, wait, quiet).await?;
            }
            // The ProxyCommand waits for sshd with what is left.
            let left = wait
                .saturating_sub(started.elapsed())
                .as_millis()
                .div_ceil(1000)
                .max(1);
            opts.proxy_args = format!(" --wait={left}s");
        }
        one::prepare(&api, gcloud, inst, &wanted.project, &opts).await
    })
}

fn exec(argv: &[String]) -> UserError {
    let e = Command::new(&argv[0]).args(&argv[1..]).exec();
    UserError::new(exit::OTHER, format!("cannot run {}: {e}", argv[0]))
        .with_fix("install the OpenSSH client (ssh, scp) and make sure it is on PATH")
}

/// `--dry-run`: prints `argv`, shell-quoted. Otherwise, once a key just
/// written to metadata has reached the VM, becomes `argv`.
fn print_or_exec(
    argv: &[String],
    p: &one::Prepared,
    c: &ConnectArgs,
    quiet: bool,
) -> Result<i32, UserError> {
    if c.dry_run {
        println!("{}", quote::shell_line(argv));
        return Ok(exit::OK);
    }
    if p.wrote_metadata || p.fresh_metadata {
        ready::wait_for_key(p, c.port, quiet);
    }
    Err(exec(argv))
}

pub fn run_ssh(a: SshArgs, quiet: bool) -> Result<i32, UserError> {
    let (user, instance) = split_user(&a.target)?;
    let p = prepare(&a.conn, &instance, user, quiet)?;
    let opts = ready::ssh_options(&p, a.conn.port);
    if a.print_rsh {
        let mut argv = vec!["ssh".to_string()];
        argv.extend(opts);
        argv.extend(["-l".to_string(), p.user.clone()]);
        // Quoted for rsync's own -e parser, not for a shell (they differ
        // on quotes inside words).
        println!("{}", quote::rsync_line(&argv));
        return Ok(exit::OK);
    }
    if a.putty {
        let mut argv = plink_argv(&p, &a.conn)?;
        argv.extend(a.args.iter().cloned());
        return print_or_exec(&argv, &p, &a.conn, quiet);
    }
    let mut argv = vec!["ssh".to_string()];
    argv.extend(opts);
    argv.push(format!("{}@{}", p.user, p.host));
    argv.extend(a.args.iter().cloned());
    print_or_exec(&argv, &p, &a.conn, quiet)
}

/// `plink -ssh -noagent -P PORT -l USER -i KEY.ppk [-hostkey SHA256:…]…
/// -proxycmd "… %port" compute.ID` (or the internal IP without a proxy):
/// what a PuTTY saved session from `setup --putty` holds, as arguments.
fn plink_argv(p: &one::Prepared, c: &ConnectArgs) -> Result<Vec<String>, UserError> {
    use crate::setup::putty;
    use crate::ssh::config::Route;
    let key_file = c.key_file()?;
    let known_hosts = c.known_hosts()?;
    let ppk = if c.dry_run {
        putty::ppk_path(&key_file)
    } else {
        putty::write_ppk(&key_file)?
    };
    let mut argv: Vec<String> = ["plink", "-ssh", "-noagent", "-P"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    argv.push(c.port.to_string());
    argv.extend(["-l".to_string(), p.user.clone(), "-i".to_string()]);
    argv.push(ppk.display().to_string());
    let known = std::fs::read_to_string(&known_hosts).unwrap_or_default();
    for fp in putty::fingerprints(&known, &p.conn.host_key_alias) {
        argv.extend(["-hostkey".to_string(), fp]);
    }
    match &p.conn.route {
        Route::Proxy(cmd) => {
            argv.extend(["-proxycmd".to_string(), putty::proxy_for_putty(cmd)]);
            argv.push(p.conn.host_key_alias.clone());
        }
        Route::Direct(ip) => argv.push(ip.to_string()),
    }
    Ok(argv)
}

pub fn run_scp(a: ScpArgs, quiet: bool) -> Result<i32, UserError> {
    let parsed: Vec<ScpArg> = a.paths.iter().map(|s| command::parse_scp_arg(s)).collect();
    let mut remote: Option<(Option<String>, String)> = None;
    for p in &parsed {
        if let ScpArg::Remote { user, instance, .. } = p {
            match &remote {
                None => remote = Some((user.clone(), instance.clone())),
                Some((u, i)) if u == user && i == instance => {}
                Some(_) => {
                    return Err(UserError::new(
                        exit::USAGE,
                        "scp arguments name more than one remote instance or user",
                    )
                    .with_fix("copy to or from one instance per command"));
                }
            }
        }
    }
    let Some((user, instance)) = remote else {
        return Err(UserError::new(exit::USAGE, "no argument names an instance")
            .with_fix("write the remote side as [USER@]INSTANCE:PATH"));
    };
    if let Some(u) = &user {
        names::require_user(u)?;
    }
    let (last, sources) = parsed.split_last().expect("two or more paths");
    let dest_remote = matches!(last, ScpArg::Remote { .. });
    if sources
        .iter()
        .any(|s| matches!(s, ScpArg::Remote { .. }) == dest_remote)
    {
        return Err(UserError::new(
            exit::USAGE,
            "copy either local files to an instance or files of an instance to a local path",
        )
        .with_fix("[[USER@]INSTANCE:]SRC... [[USER@]INSTANCE:]DEST with exactly one side remote"));
    }
    let p = prepare(&a.conn, &instance, user, quiet)?;
    let mut argv = vec!["scp".to_string()];
    if a.recurse {
        argv.push("-r".into());
    }
    if a.compress {
        argv.push("-C".into());
    }
    if a.conn.port != 22 {
        argv.extend(["-P".to_string(), a.conn.port.to_string()]);
    }
    argv.extend(command::options(&p.conn));
    argv.extend(a.scp_flag.iter().cloned());
    for x in &parsed {
        argv.push(match x {
            ScpArg::Local(l) => l.clone(),
            ScpArg::Remote { path, .. } => format!("{}@{}:{path}", p.user, p.host),
        });
    }
    print_or_exec(&argv, &p, &a.conn, quiet)
}
