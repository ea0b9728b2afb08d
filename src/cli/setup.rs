//! `iap-ssh setup`: keys, publishing, host keys and the managed Host blocks
//! (see [`crate::setup`]).

use std::path::PathBuf;

use clap::Args;

use super::args::{Ttl, parse_ttl};
use crate::error::UserError;
use crate::setup::{self, Options};

#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub select: super::args::SelectionArgs,
    /// Private key to use or create (default: ~/.ssh/google_compute_engine, shared with gcloud)
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// ssh config file to write the managed section into (default: ~/.ssh/config)
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Known-hosts file for VM host keys (default: ~/.ssh/google_compute_known_hosts, shared with gcloud)
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// User name for metadata keys (default: your local login name; OS Login VMs use your OS Login user)
    #[arg(long)]
    pub user: Option<String>,
    /// Lifetime of the published key: 30d, 12h, ... or `never`; a re-run renews it when a quarter is left
    #[arg(long, default_value = "365d", value_name = "DURATION", value_parser = parse_ttl)]
    pub key_ttl: Ttl,
    /// Print what would change (a diff and the keys to publish) and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Remove the managed section from the ssh config (no API calls)
    #[arg(long, conflicts_with_all = ["projects", "key_ttl", "all_projects", "filter", "zones"])]
    pub remove: bool,
    /// iap-ssh executable to write into ProxyCommand lines (default: the
    /// path you ran it by, e.g. a symlink that survives upgrades)
    #[arg(long, value_name = "PATH")]
    pub exe: Option<PathBuf>,
    /// Share one connection per VM (ssh's ControlMaster), kept open this
    /// long after the last session: 10m (the default), 90s, 1h, or `yes`
    /// (until `ssh -O exit`); sockets in ~/.ssh/iap-ssh/
    #[arg(long, value_name = "DURATION", num_args = 0..=1, require_equals = true, default_missing_value = "10m", value_parser = parse_persist)]
    pub control_master: Option<String>,
    /// Write the VMs' internal IPs (HostName) instead of IAP tunnels, for
    /// use from inside the VPC or over a VPN; VMs created later still go
    /// through IAP
    #[arg(long)]
    pub internal_ip: bool,
    /// Also write the key as a PuTTY .ppk (KEY.ppk) and one PuTTY saved
    /// session per VM (plink -load VM), host keys pinned
    #[arg(long)]
    pub putty: bool,
    /// With --putty: the same sessions as a Windows registry file
    #[arg(long, value_name = "FILE", requires = "putty")]
    pub putty_reg: Option<PathBuf>,
}

/// `--control-master`: a `ControlPersist` value (seconds or a number with
/// s/m/h/d/w, or `yes`).
pub fn parse_persist(s: &str) -> Result<String, String> {
    let t = s.trim();
    let digits = t.trim_end_matches(['s', 'm', 'h', 'd', 'w', 'S', 'M', 'H', 'D', 'W']);
    let unit_len = t.len() - digits.len();
    if t == "yes"
        || (!digits.is_empty() && unit_len <= 1 && digits.bytes().all(|b| b.is_ascii_digit()))
    {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{s}` is not a duration like 10m, 90s, 1h, or `yes`"
        ))
    }
}

/// Absolute, as ssh will run it from any directory.
fn absolute(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}

/// `--exe`: an existing executable file.
fn checked_exe(p: PathBuf) -> Result<String, UserError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(&p) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(p.display().to_string()),
        _ => Err(UserError::new(
            crate::error::exit::USAGE,
            format!("--exe {}: not an executable file", p.display()),
        )
        .with_fix(
            "give the path of an installed iap-ssh (e.g. the one `command -v iap-ssh` prints)",
        )),
    }
}

pub fn run(a: SetupArgs, quiet: bool) -> Result<i32, UserError> {
    let selection = if a.remove {
        crate::setup::Selection::default()
    } else {
        a.select.selection()?
    };
    let opts = Options {
        selection,
        key_file: absolute(match a.key_file {
            Some(k) => k,
            None => super::args::home_file(&[".ssh", "google_compute_engine"])?,
        }),
        ssh_config: absolute(match a.ssh_config {
            Some(c) => c,
            None => super::args::home_file(&[".ssh", "config"])?,
        }),
        known_hosts: absolute(match a.known_hosts {
            Some(k) => k,
            None => super::args::home_file(&[".ssh", "google_compute_known_hosts"])?,
        }),
        user: a.user,
        key_ttl: a.key_ttl.0,
        dry_run: a.dry_run,
        remove: a.remove,
        quiet,
        exe: match a.exe {
            Some(p) => checked_exe(absolute(p))?,
            None => super::args::exe_path()?,
        },
        global_args: crate::auth::impersonate::launcher_args(),
        proxy_args: String::new(),
        control: match a.control_master {
            Some(p) => Some((super::args::home_file(&[".ssh", "iap-ssh"])?, p)),
            None => None,
        },
        internal_ip: a.internal_ip,
        putty: a.putty,
        putty_reg: a.putty_reg.map(absolute),
    };
    let mut err = std::io::stderr();
    if opts.remove {
        return setup::remove(&opts, &mut err);
    }
    let rt = super::args::runtime()?;
    rt.block_on(setup::run(&opts, &mut err))
}
