//! Stage 5 of setup: the ssh config — the managed section spliced, under
//! the file's lock, into what the file holds at that moment — and the
//! summary; or, with `--dry-run`, the diffs and the key plan instead.

use std::io::Write;

use super::publish::Tally;
use super::{Options, files, io_error, plan, plural};
use crate::error::UserError;
use crate::ssh::config as sshconfig;
use crate::ssh::keys::PublicKeyInfo;

/// Writes `section` into the config as it is now.
pub(super) fn config(opts: &Options, section: &str) -> Result<files::Outcome, UserError> {
    files::update(&opts.ssh_config, 0o600, true, |now| {
        sshconfig::splice(now, section).map_err(std::io::Error::other)
    })
    .map_err(|e| io_error(&opts.ssh_config, e))
}

pub(super) fn print_dry_run(
    opts: &Options,
    (old_config, new_config): (&str, &str),
    (old_kh, new_kh): (&str, &str),
    key: Option<&PublicKeyInfo>,
    tally: &Tally,
    withheld: &[plan::Withheld],
) {
    let mut out = std::io::stdout().lock();
    let _ = write!(
        out,
        "{}",
        sshconfig::diff(
            old_config,
            new_config,
            &opts.ssh_config.display().to_string()
        )
    );
    let _ = write!(
        out,
        "{}",
        sshconfig::diff(old_kh, new_kh, &opts.known_hosts.display().to_string())
    );
    let _ = writeln!(out, "# keys (dry run: nothing was written)");
    match key {
        Some(k) => {
            let _ = writeln!(
                out,
                "# key {} ({}) {}",
                opts.key_file.display(),
                k.algorithm,
                k.fingerprint
            );
        }
        None => {
            let _ = writeln!(
                out,
                "# key {} would be generated (ssh-ed25519)",
                opts.key_file.display()
            );
        }
    }
    for l in tally.lines() {
        let _ = writeln!(out, "# {l}");
    }
    for w in withheld {
        let _ = writeln!(out, "# {}", withheld_line(w));
    }
}

/// One line about a short alias left out.
fn withheld_line(w: &plan::Withheld) -> String {
    format!(
        "no short alias `{}` ({}); use: ssh {}",
        w.name, w.why, w.full
    )
}

pub(super) fn summary(
    err: &mut dyn Write,
    opts: &Options,
    blocks: &[sshconfig::HostBlock],
    withheld: &[plan::Withheld],
    tally: &Tally,
    (outcome, kh_outcome): (&files::Outcome, &files::Outcome),
    windows: &[String],
) {
    let hosts = blocks.iter().filter(|b| b.host_key_alias.is_some()).count();
    let known = blocks
        .iter()
        .filter(|b| b.strict == sshconfig::Strict::Yes)
        .count();
    let state = match outcome {
        files::Outcome::Unchanged => "unchanged".to_string(),
        files::Outcome::Written { backup: Some(b) } => {
            format!("written; previous version in {}", b.display())
        }
        files::Outcome::Written { backup: None } => "written".to_string(),
    };
    let _ = writeln!(
        err,
        "iap-ssh: {} in {} ({state})",
        plural(hosts, "host"),
        opts.ssh_config.display()
    );
    for w in withheld {
        let _ = writeln!(err, "  {}", withheld_line(w));
    }
    for l in tally.lines() {
        let _ = writeln!(err, "  key: {l}");
    }
    let added = match kh_outcome {
        files::Outcome::Written { .. } => format!(" (added to {})", opts.known_hosts.display()),
        files::Outcome::Unchanged => String::new(),
    };
    let _ = writeln!(
        err,
        "  host keys: known for {known} of {}{added}",
        plural(hosts, "VM")
    );
    if let Some(b) = blocks.iter().find(|b| b.host_key_alias.is_some()) {
        let _ = writeln!(err, "  try: ssh {}", b.patterns[0]);
    }
    // Windows VMs get no Host block (they take no SSH keys): say how to
    // reach them instead.
    for w in windows.iter().take(5) {
        let _ = writeln!(
            err,
            "  Windows VM (RDP, no SSH): iap-ssh rdp --reset-password {w}"
        );
    }
    if windows.len() > 5 {
        let _ = writeln!(
            err,
            "  … and {} more Windows VMs (iap-ssh list shows them)",
            windows.len() - 5
        );
    }
}
