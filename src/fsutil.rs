//! Writing files we share with the user and other programs: atomic
//! replacement (temporary file, fsync, rename, fsync of the directory),
//! the owner kept (a run under `sudo` with HOME kept must not leave
//! root-owned files in the user's home), private directories, and an
//! advisory lock beside a shared file for read-modify-write cycles.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The (uid, gid) a file at `path` should have: the existing file's, else
/// its directory's. Only acted on when we run as root (nobody else can
/// give a file away), and only when it differs from ours.
fn wanted_owner(path: &Path) -> Option<(u32, u32)> {
    // SAFETY: geteuid/getegid have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid != 0 {
        return None;
    }
    let m = fs::metadata(path)
        .or_else(|_| fs::metadata(path.parent().unwrap_or(Path::new("/"))))
        .ok()?;
    ((m.uid(), m.gid()) != (uid, gid)).then_some((m.uid(), m.gid()))
}

fn chown_fd(f: &File, (uid, gid): (u32, u32)) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: fchown on an open descriptor with plain integers.
    if unsafe { libc::fchown(f.as_raw_fd(), uid, gid) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Creates `dir` and any missing parents with mode 0700 (an existing
/// directory keeps its mode); new directories get the owner of the
/// nearest existing one when we run as root.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let mut missing: Vec<PathBuf> = vec![];
    let mut p = dir;
    while !p.as_os_str().is_empty() && fs::symlink_metadata(p).is_err() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(q) => p = q,
            None => break,
        }
    }
    for d in missing.iter().rev() {
        let owner = wanted_owner(d);
        match fs::DirBuilder::new().mode(0o700).create(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        if let Some((u, g)) = owner {
            let _ = std::os::unix::fs::chown(d, Some(u), Some(g));
        }
    }
    Ok(())
}

/// Writes `data` to `path` with mode 0600 via a temporary file in the same
/// directory and a rename, so readers see the old or the new content, never
/// a mix.
pub fn write_private_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_atomic(path, data, 0o600)
}

fn sync_dir(dir: &Path) {
    // Makes the rename durable; failure (odd file systems) is not fatal.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A finished temporary file beside `path` holding `data`: exact `mode`,
/// the owner `path` should have, synced. The caller moves it into place.
fn write_temp(path: &Path, data: &[u8], mode: u32) -> std::io::Result<PathBuf> {
    write_temp_with(path, mode, |w| w.write_all(data))
}

/// [`write_temp`] with the content written by `fill` (through a buffer).
fn write_temp_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let owner = wanted_owner(path);
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode; set it exactly.
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        if let Some(o) = owner {
            chown_fd(&f, o)?;
        }
        let mut w = std::io::BufWriter::with_capacity(64 * 1024, &mut f);
        fill(&mut w)?;
        w.flush()?;
        drop(w);
        f.sync_all()
    })();
    match res {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Like [`write_private_atomic`] with the new file's `mode`; an existing
/// file's owner is kept (a new one takes its directory's) when we run as
/// root, and the directory is synced after the rename.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    write_atomic_with(path, mode, |w| w.write_all(data))
}

/// [`write_atomic`] with the content written by `fill`, so that a large
/// file need not be whole in memory.
pub fn write_atomic_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = write_temp_with(path, mode, fill)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")));
    Ok(())
}

/// Creates `path` with `data` and `mode` only if nothing is there yet (the
/// content appears whole, through a hard link of a finished temporary
/// file). `Ok(false)`: the file already existed and was left alone.
pub fn create_new_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<bool> {
    let tmp = write_temp(path, data, mode)?;
    let res = match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    };
    let _ = fs::remove_file(&tmp);
    if res.as_ref().is_ok_and(|made| *made) {
        sync_dir(path.parent().unwrap_or(Path::new(".")));
    }
    res
}

/// Appends `data` to `path` (created with `mode` and its directory's
/// owner when missing) and syncs it. Appending, unlike replacing, cannot
/// lose a line another program appends at the same moment (ssh adding a
/// host key does not take our lock).
pub fn append(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let owner = wanted_owner(path);
    let existed = path.exists();
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .open(path)?;
    if !existed {
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        if let Some(o) = owner {
            chown_fd(&f, o)?;
        }
    }
    f.write_all(data)?;
    f.sync_all()?;
    if !existed {
        sync_dir(path.parent().unwrap_or(Path::new(".")));
    }
    Ok(())
}

/// An advisory lock (`flock`) on `FILE.lock` beside a file we share with
/// other programs; every iap-ssh process takes it around a read-modify-
/// write of that file. Released when dropped.
pub struct FileLock {
    _file: File,
}

/// How long to wait for another iap-ssh holding the same lock.
const LOCK_WAIT: Duration = Duration::from_secs(120);

impl FileLock {
    /// Waits (bounded) for the lock of `target`.
    pub fn acquire(target: &Path) -> std::io::Result<FileLock> {
        let mut name = target.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        if let Some(d) = path.parent()
            && !d.as_os_str().is_empty()
        {
            create_private_dir(d)?;
        }
        let owner = wanted_owner(&path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        if let Some(o) = owner {
            let _ = chown_fd(&file, o);
        }
        use std::os::fd::AsRawFd;
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            // SAFETY: flock on an open descriptor.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(FileLock { _file: file });
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) && e.raw_os_error() != Some(libc::EINTR)
            {
                return Err(e);
            }
            if started.elapsed() > LOCK_WAIT {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "another iap-ssh has held {} for {} s",
                        path.display(),
                        LOCK_WAIT.as_secs()
                    ),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

/// A path under the home directory.
pub fn home_file(parts: &[&str]) -> Result<PathBuf, crate::error::UserError> {
    let mut p = dirs::home_dir().ok_or_else(|| {
        crate::error::UserError::new(crate::error::exit::OTHER, "cannot find your home directory")
            .with_fix("set HOME")
    })?;
    for x in parts {
        p.push(x);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_new_never_clobbers() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        assert!(create_new_atomic(&p, b"one", 0o600).unwrap());
        assert!(!create_new_atomic(&p, b"two", 0o600).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1, "no temp left");
    }

    #[test]
    fn lock_excludes_other_holders() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("config");
        let l = FileLock::acquire(&target).unwrap();
        let t2 = target.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            let _l = FileLock::acquire(&t2).unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "held");
        drop(l);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        h.join().unwrap();
        assert!(d.path().join("config.lock").exists());
    }
}
