//! Reads what the user already means by host names into [`Claims`]: their
//! ssh config outside iap-ssh's section (with its `Include`s), the system
//! config when the default user config is used, the known-hosts files,
//! `/etc/hosts` and this machine's name. Files that cannot be read are
//! skipped: a claim we cannot see is one we cannot honour, but setup must
//! not fail over it.

use std::path::{Path, PathBuf};

use super::files;
use crate::ssh::claims::{self, Claims};
use crate::ssh::{config as sshconfig, pattern};

/// How deep `Include` may nest (ssh's own limit).
const MAX_DEPTH: usize = 16;

/// Everything that claims names, for `ssh_config` (the file setup writes)
/// and the user's `home`.
pub fn gather(ssh_config: &Path, home: Option<&Path>) -> Claims {
    let mut c = Claims::new();
    let user_dir = home.map(|h| h.join(".ssh"));
    let outside = outside_section(&files::resolve(ssh_config));
    let base = user_dir
        .clone()
        .unwrap_or_else(|| ssh_config.parent().unwrap_or(Path::new("/")).to_path_buf());
    add_config(&mut c, &outside, ssh_config, &base, home, 0);
    let default = user_dir.as_ref().map(|d| d.join("config"));
    if default.as_deref() == Some(ssh_config) {
        let sys = Path::new("/etc/ssh/ssh_config");
        if let Ok(t) = std::fs::read_to_string(sys) {
            add_config(&mut c, &t, sys, Path::new("/etc/ssh"), home, 0);
        }
    }
    let mut known: Vec<PathBuf> = vec![
        "/etc/ssh/ssh_known_hosts".into(),
        "/etc/ssh/ssh_known_hosts2".into(),
    ];
    if let Some(d) = &user_dir {
        known.insert(0, d.join("known_hosts2"));
        known.insert(0, d.join("known_hosts"));
    }
    for k in known {
        if let Ok(t) = std::fs::read_to_string(&k) {
            c.add_known_hosts(&t, &display(&k, home));
        }
    }
    if let Ok(t) = std::fs::read_to_string("/etc/hosts") {
        c.add_local_names(claims::hosts_file_names(&t));
    }
    let host = super::discover::hostname();
    let short = host.split('.').next().unwrap_or("").to_string();
    c.add_local_names([host, short]);
    c
}

/// The config's text outside iap-ssh's section, read line by line: the
/// section of a large fleet is tens of megabytes and claims nothing. A file
/// that cannot be read is skipped (empty).
fn outside_section(path: &Path) -> String {
    let Ok(f) = std::fs::File::open(path) else {
        return String::new();
    };
    let mut out = String::new();
    let mut inside = false;
    let read = files::for_each_line(&mut std::io::BufReader::new(f), |l| {
        match l.trim_end_matches(['\n', '\r']) {
            sshconfig::BEGIN => inside = true,
            sshconfig::END if inside => inside = false,
            _ if !inside => out.push_str(l),
            _ => {}
        }
    });
    read.map(|()| out).unwrap_or_default()
}

/// `~/…` for files under the home directory, for shorter messages.
fn display(p: &Path, home: Option<&Path>) -> String {
    match home.and_then(|h| p.strip_prefix(h).ok()) {
        Some(rest) => format!("~/{}", rest.display()),
        None => p.display().to_string(),
    }
}

fn add_config(
    c: &mut Claims,
    text: &str,
    file: &Path,
    base: &Path,
    home: Option<&Path>,
    depth: usize,
) {
    let includes = c.add_config(text, &display(file, home));
    if depth >= MAX_DEPTH {
        return;
    }
    for arg in includes {
        for f in expand_include(&arg, base, home) {
            if let Ok(t) = std::fs::read_to_string(&f) {
                add_config(c, &t, &f, base, home, depth + 1);
            }
        }
    }
}

/// The files an `Include` argument names: `~/` is the home directory, a
/// relative path is under `base` (`~/.ssh` or `/etc/ssh`), and `*`/`?`
/// are expanded per path component, in sorted order, as ssh's glob does.
pub fn expand_include(arg: &str, base: &Path, home: Option<&Path>) -> Vec<PathBuf> {
    let path = match (arg.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ if Path::new(arg).is_absolute() => PathBuf::from(arg),
        _ => base.join(arg),
    };
    let mut found = vec![PathBuf::from("/")];
    for comp in path.components().skip(1) {
        let part = comp.as_os_str().to_string_lossy();
        let mut next = vec![];
        for dir in &found {
            if part.contains(['*', '?']) {
                let Ok(rd) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<String> = rd
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.') || part.starts_with('.'))
                    .filter(|n| pattern::match_pattern(n, &part))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| dir.join(n)));
            } else {
                next.push(dir.join(part.as_ref()));
            }
        }
        found = next;
    }
    found.retain(|p| p.is_file());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_globs_and_the_section_itself() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path();
        let ssh = home.join(".ssh");
        std::fs::create_dir_all(ssh.join("config.d")).unwrap();
        std::fs::write(ssh.join("config.d/a.conf"), "Host jump\n").unwrap();
        std::fs::write(ssh.join("config.d/b.conf"), "Include ~/.ssh/deeper\n").unwrap();
        std::fs::write(ssh.join("config.d/.hidden"), "Host hidden\n").unwrap();
        std::fs::write(ssh.join("deeper"), "Match host vault\n").unwrap();
        std::fs::write(ssh.join("known_hosts"), "gitlab ssh-rsa AAAA\n").unwrap();
        let section =
            sshconfig::render_section(&[]).replace("Host *\n", "Host inside-our-section\nHost *\n");
        std::fs::write(
            ssh.join("config"),
            format!("{section}\nInclude config.d/*.conf\nHost bastion\n"),
        )
        .unwrap();
        let c = gather(&ssh.join("config"), Some(home));
        assert!(c.why("bastion").unwrap().contains("~/.ssh/config line"));
        assert!(
            c.why("jump")
                .unwrap()
                .contains("~/.ssh/config.d/a.conf line 1")
        );
        assert!(c.why("vault").unwrap().contains("~/.ssh/deeper"));
        assert!(c.why("gitlab").is_some());
        assert!(c.why("hidden").is_none(), "globs skip dot files");
        assert!(
            c.why("inside-our-section").is_none(),
            "our own section claims nothing"
        );
        assert!(c.why("web").is_none());
    }

    #[test]
    fn include_cycles_end() {
        let d = tempfile::tempdir().unwrap();
        let ssh = d.path().join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::write(ssh.join("config"), "Include config\nHost x\n").unwrap();
        let c = gather(&ssh.join("config"), Some(d.path()));
        assert!(c.why("x").is_some());
    }
}
