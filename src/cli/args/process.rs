//! The process around a command: its runtime, colour, home directory and
//! the path of this executable to write into ProxyCommand lines.

use crate::error::UserError;

/// Colour for our own marks (✓/✗): only on a terminal, never with NO_COLOR.
pub fn color_enabled(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The runtime of the commands that talk to Google's APIs.
pub fn runtime() -> Result<tokio::runtime::Runtime, UserError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            UserError::new(
                crate::error::exit::OTHER,
                format!("cannot start the runtime: {e}"),
            )
        })
}

pub use crate::fsutil::home_file;

/// The path of this executable to write into ProxyCommand lines: the one
/// the user invoked it by (a symlink, or the PATH entry that found it)
/// when that reaches this very file, so that a package manager's upgrade
/// (a new Homebrew Cellar or Nix store path behind the same symlink) does
/// not break the config; else the resolved path of the running binary.
pub fn exe_path() -> Result<String, UserError> {
    let fail = |e: std::io::Error| {
        UserError::new(
            crate::error::exit::OTHER,
            format!("cannot find the iap-ssh executable: {e}"),
        )
        .with_fix("run iap-ssh by its full path, or pass --exe PATH")
    };
    let running = std::env::current_exe().map_err(fail)?;
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let invoked = std::env::args_os()
        .next()
        .and_then(|a| invoked_path(std::path::Path::new(&a), &path_var, &running));
    let p = match invoked {
        Some(p) => p,
        None => running.canonicalize().map_err(fail)?,
    };
    Ok(p.display().to_string())
}

/// (device, inode) of what `p` finally points at.
fn file_id(p: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    m.is_file().then(|| (m.dev(), m.ino()))
}

/// The absolute path `argv0` names (looked up in `path_var` when it has no
/// `/`, as the shell did), if it is the same file as `running`.
pub fn invoked_path(
    argv0: &std::path::Path,
    path_var: &std::ffi::OsStr,
    running: &std::path::Path,
) -> Option<std::path::PathBuf> {
    let want = file_id(running)?;
    let candidates: Vec<std::path::PathBuf> =
        if argv0.as_os_str().as_encoded_bytes().contains(&b'/') {
            let abs = if argv0.is_absolute() {
                argv0.to_path_buf()
            } else {
                std::env::current_dir().ok()?.join(argv0)
            };
            vec![abs]
        } else {
            std::env::split_paths(path_var)
                // A relative PATH entry (`.`) is no stable place to write down.
                .filter(|d| d.is_absolute())
                .map(|d| d.join(argv0))
                .collect()
        };
    candidates
        .into_iter()
        .find(|c| file_id(c) == Some(want))
        .map(|c| normalize(&c))
}

/// `c` without `.` components (`..` is kept: resolving it lexically could
/// change what a symlinked directory means).
fn normalize(c: &std::path::Path) -> std::path::PathBuf {
    c.components()
        .filter(|x| !matches!(x, std::path::Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_invoked_path_wins_when_it_is_the_same_file() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("Cellar/1.0/bin/iap-ssh");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, "x").unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(&real, bin.join("iap-ssh")).unwrap();
        let other = d.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("iap-ssh"), "y").unwrap();
        // By a symlink's path.
        assert_eq!(
            invoked_path(&bin.join("iap-ssh"), "".as_ref(), &real),
            Some(bin.join("iap-ssh"))
        );
        // By name through PATH: the first entry that is the same file.
        let path = std::env::join_paths([Path::new("rel"), &other, &bin]).unwrap();
        assert_eq!(
            invoked_path(Path::new("iap-ssh"), &path, &real),
            Some(bin.join("iap-ssh"))
        );
        // Another file of that name: not ours.
        assert_eq!(
            invoked_path(&other.join("iap-ssh"), "".as_ref(), &real),
            None
        );
        assert_eq!(
            invoked_path(&d.path().join("./bin/./iap-ssh"), "".as_ref(), &real),
            Some(bin.join("iap-ssh"))
        );
    }
}
