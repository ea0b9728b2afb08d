//! Stage 5 of setup: the ssh config — the managed section spliced, under
//! the file's lock, into what the file holds at that moment — and the
//! summary; or, with `--dry-run`, the diffs and the key plan instead.

use std::io::Write;

use super::publish::Tally;
use super::{Options, files, io_error, plan, plural};
use crate::error::UserError;
use crate::ssh::config as sshconfig;
use crate::ssh::keys::PublicKeyInfo;

/// Writes the section of `plan` into the config as it is now, block by
/// block: neither the file nor the section is ever whole in memory (a
/// section of 50,000 VMs is 27 MB).
pub(super) fn config(opts: &Options, plan: &plan::Plan) -> Result<files::Outcome, UserError> {
    files::splice_streaming(
        &opts.ssh_config,
        0o600,
        true,
        |r| locate(r)?.map_err(std::io::Error::other),
        |w| sshconfig::write_section(w, plan.blocks()),
    )
    .map_err(|e| io_error(&opts.ssh_config, e))
}

/// Where the section goes in the config read from `r`; the outer error is
/// reading, the inner the file's markers.
fn locate(
    r: &mut dyn std::io::BufRead,
) -> std::io::Result<Result<files::Span, sshconfig::SectionError>> {
    let mut scan = sshconfig::Scanner::default();
    files::for_each_line(r, |l| scan.line(l))?;
    Ok(scan.finish())
}

/// Checks, before any API call, that the config's section can be updated
/// (readable, UTF-8, one pair of markers in order), without keeping it.
pub(super) fn check_config(opts: &Options) -> Result<(), UserError> {
    let path = files::resolve(&opts.ssh_config);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(&opts.ssh_config, e)),
    };
    locate(&mut std::io::BufReader::new(file))
        .map_err(|e| io_error(&opts.ssh_config, e))?
        .map_err(|e| super::section_error(&opts.ssh_config, e))
        .map(drop)
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
    counts: &plan::Counts,
    withheld: &[plan::Withheld],
    tally: &Tally,
    (outcome, kh_outcome): (&files::Outcome, &files::Outcome),
    windows: &[String],
) {
    let (hosts, known) = (counts.hosts, counts.known);
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
    if let Some(first) = &counts.first {
        let _ = writeln!(err, "  try: ssh {first}");
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
