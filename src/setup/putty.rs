//! `setup --putty`: the key as a `.ppk` beside the OpenSSH one, and one
//! PuTTY saved session per Host block in the folder PuTTY reads (and, with
//! `--putty-reg FILE`, a Windows `.reg` file of the same sessions); `setup
//! --remove` takes away the sessions iap-ssh wrote and nothing else.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;

use super::{Options, io_error};
use crate::error::{UserError, exit};
use crate::ssh::config::{HostBlock, Route};
use crate::ssh::putty::{self, Session};

/// `KEY.ppk` for the OpenSSH private key `KEY` (gcloud's naming).
pub fn ppk_path(key_file: &Path) -> PathBuf {
    let mut s = key_file.as_os_str().to_os_string();
    s.push(".ppk");
    PathBuf::from(s)
}

/// The saved-sessions folder PuTTY on this machine reads.
pub fn sessions_dir() -> Result<PathBuf, UserError> {
    let home = crate::fsutil::home_file(&[])?;
    Ok(putty::sessions_dir(&|k| std::env::var(k).ok(), &home))
}

/// Writes `KEY.ppk` from the OpenSSH private key when it is missing or
/// differs. A passphrase-protected key cannot be converted without the
/// passphrase: then an existing `.ppk` is used as it is, else the fix.
pub fn write_ppk(key_file: &Path) -> Result<PathBuf, UserError> {
    let ppk = ppk_path(key_file);
    let text = std::fs::read_to_string(key_file).map_err(|e| io_error(key_file, e))?;
    let key = match ssh_key::PrivateKey::from_openssh(text.trim()) {
        Ok(k) => k,
        Err(e) if ppk.exists() => {
            tracing::info!(
                "{}: {e}; using the existing {}",
                key_file.display(),
                ppk.display()
            );
            return Ok(ppk);
        }
        Err(e) => {
            return Err(UserError::new(
                exit::USAGE,
                format!(
                    "{}: cannot read it as an OpenSSH private key ({e})",
                    key_file.display()
                ),
            )
            .with_fix(format!(
                "convert it with `puttygen {} -o {}`, then run setup again",
                key_file.display(),
                ppk.display()
            )));
        }
    };
    match putty::ppk_v3(&key) {
        Ok(content) => {
            if std::fs::read_to_string(&ppk).ok().as_deref() != Some(content.as_str()) {
                crate::fsutil::write_private_atomic(&ppk, content.as_bytes())
                    .map_err(|e| io_error(&ppk, e))?;
            }
            Ok(ppk)
        }
        Err(_) if ppk.exists() => Ok(ppk),
        Err(e) => Err(UserError::new(
            exit::USAGE,
            format!("--putty: {}: {e}", key_file.display()),
        )
        .with_fix(format!(
            "write the PuTTY key yourself, which asks for the passphrase: puttygen {} -o {}",
            key_file.display(),
            ppk.display()
        ))),
    }
}

/// `SHA256:…` fingerprints of the keys `known_hosts` pins for `alias`.
pub fn fingerprints(known_hosts: &str, alias: &str) -> Vec<String> {
    let mut out: Vec<String> = crate::ssh::known_hosts::keys_of(known_hosts, alias)
        .iter()
        .map(|blob| {
            let d = ring::digest::digest(&ring::digest::SHA256, blob);
            format!(
                "SHA256:{}",
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(d.as_ref())
            )
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The PuTTY form of an OpenSSH ProxyCommand written by setup: ssh's `%p`
/// becomes PuTTY's `%port`, backslashes doubled. (`%%` means `%` to both.)
pub fn proxy_for_putty(cmd: &str) -> String {
    let c = cmd.strip_suffix(" %p").map(|c| format!("{c} %port"));
    putty::escape_proxy_command(c.as_deref().unwrap_or(cmd))
}

/// One session per VM block (wildcard blocks have no host to name).
pub fn sessions(blocks: &[HostBlock], ppk: &Path, known_hosts: &str) -> Vec<Session> {
    blocks
        .iter()
        .filter_map(|b| {
            let alias = b.host_key_alias.as_ref()?;
            let (host_name, proxy_command) = match &b.route {
                Route::Proxy(cmd) => (alias.clone(), Some(proxy_for_putty(cmd))),
                Route::Direct(ip) => (ip.to_string(), None),
            };
            Some(Session {
                name: b.patterns.first()?.clone(),
                host_name,
                port: 22,
                user: b.user.clone(),
                ppk: ppk.display().to_string(),
                proxy_command,
                host_keys: fingerprints(known_hosts, alias),
            })
        })
        .collect()
}

/// What [`write_sessions`] did.
#[derive(Debug, Default)]
pub struct Written {
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
    /// Sessions of that name that are not iap-ssh's (left alone).
    pub foreign: Vec<String>,
}

/// Writes `sessions` into `dir` (created 0700), replacing iap-ssh's own
/// files and never the user's; removes iap-ssh's files of sessions that
/// are no longer wanted.
pub fn write_sessions(dir: &Path, sessions: &[Session]) -> Result<Written, UserError> {
    crate::fsutil::create_private_dir(dir).map_err(|e| io_error(dir, e))?;
    let mut w = Written::default();
    let mut wanted = std::collections::HashSet::new();
    for s in sessions {
        let file = dir.join(putty::session_file_name(&s.name));
        wanted.insert(file.clone());
        let text = s.unix_file();
        match std::fs::read_to_string(&file) {
            Ok(old) if old == text => w.unchanged += 1,
            Ok(old) if !putty::is_ours(&old) => w.foreign.push(s.name.clone()),
            _ => {
                crate::fsutil::write_private_atomic(&file, text.as_bytes())
                    .map_err(|e| io_error(&file, e))?;
                w.written += 1;
            }
        }
    }
    w.removed = remove_ours(dir, |p| !wanted.contains(p))?;
    Ok(w)
}

/// Removes iap-ssh's session files in `dir` that `pick` selects; the
/// number removed.
pub fn remove_ours(dir: &Path, pick: impl Fn(&Path) -> bool) -> Result<usize, UserError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut n = 0;
    for e in entries.flatten() {
        let p = e.path();
        if !p.is_file() || !pick(&p) {
            continue;
        }
        if std::fs::read_to_string(&p).is_ok_and(|t| putty::is_ours(&t)) {
            std::fs::remove_file(&p).map_err(|e| io_error(&p, e))?;
            n += 1;
        }
    }
    Ok(n)
}

/// The `.ppk` for a setup run (written unless dry run), before anything
/// else is changed, so that a key PuTTY cannot get stops the run early.
pub fn prepare(opts: &Options) -> Result<PathBuf, UserError> {
    if opts.dry_run {
        Ok(ppk_path(&opts.key_file))
    } else {
        write_ppk(&opts.key_file)
    }
}

/// The sessions stage of a setup run, with the `.ppk` from [`prepare`].
pub fn run(
    opts: &Options,
    ppk: &Path,
    blocks: &[HostBlock],
    known_hosts: &str,
    err: &mut dyn Write,
) -> Result<(), UserError> {
    let list = sessions(blocks, ppk, known_hosts);
    let dir = sessions_dir()?;
    if opts.dry_run {
        let _ = writeln!(
            err,
            "iap-ssh: would write {} PuTTY sessions into {} and the key {}",
            list.len(),
            dir.display(),
            ppk.display()
        );
        return Ok(());
    }
    let w = write_sessions(&dir, &list)?;
    if let Some(reg) = &opts.putty_reg {
        crate::fsutil::write_atomic(reg, putty::reg_file(&list).as_bytes(), 0o644)
            .map_err(|e| io_error(reg, e))?;
    }
    if !opts.quiet {
        let _ = writeln!(
            err,
            "  PuTTY: {} sessions in {} ({} written, {} unchanged, {} removed), key {}{}",
            list.len(),
            dir.display(),
            w.written,
            w.unchanged,
            w.removed,
            ppk.display(),
            opts.putty_reg
                .as_ref()
                .map(|r| format!("; Windows registry file {}", r.display()))
                .unwrap_or_default()
        );
        for f in &w.foreign {
            let _ = writeln!(
                err,
                "  PuTTY: a session named {f:?} exists and is not iap-ssh's; left as it is"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_commands_become_puttys() {
        assert_eq!(
            proxy_for_putty("'/opt/a\\b/iap-ssh' proxy --project p --zone z vm %p"),
            "'/opt/a\\\\b/iap-ssh' proxy --project p --zone z vm %port"
        );
        assert_eq!(
            ppk_path(Path::new("/h/.ssh/k")),
            PathBuf::from("/h/.ssh/k.ppk")
        );
        // A `%user` in the path would make PuTTY prompt: it stays `%%`.
        let cmd = crate::setup::plan::proxy_command("/o/%user/iap-ssh", "", "p", "z", "vm");
        assert_eq!(
            proxy_for_putty(&cmd),
            "/o/%%user/iap-ssh proxy --project p --zone z vm %port"
        );
    }

    #[test]
    fn fingerprints_of_an_alias() {
        let kh = "compute.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4VOTrWcntODp++2OvXxQLmm1rZyVWS70Gj5S7mtrMj\ncompute.12 ssh-ed25519 AAAA\n";
        assert_eq!(
            fingerprints(kh, "compute.1"),
            ["SHA256:bgs3H9b36oyqcM9RGleYjyc3J7LjODtzIDqMAdIptJU"]
        );
        assert!(fingerprints(kh, "compute.2").is_empty());
    }
}
