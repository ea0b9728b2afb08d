//! Replacing the user's ssh files safely: under a lock beside the file,
//! re-read (absent = empty) and edited at write time (so an edit made
//! meanwhile by an editor, gcloud or another iap-ssh is kept), written only
//! when the content changes, through a symlink to its target, atomically,
//! keeping the file's mode and owner, with a backup of the previous
//! content.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where new content goes in a file: bytes `start..end` are replaced by
/// what `render` writes, followed by `after` (the ssh config section's
/// placement, the one part of a file setup streams).
pub use crate::ssh::config::Placement as Span;

/// Where writes to `path` must go: the final target of a symlink chain
/// (a relative link resolved against its directory), else `path` itself.
pub fn resolve(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&p) {
            Ok(t) => {
                p = if t.is_absolute() {
                    t
                } else {
                    p.parent().unwrap_or(Path::new("/")).join(t)
                }
            }
            Err(_) => return p,
        }
    }
    p
}

/// The file's text; an absent file is empty.
pub fn read(path: &Path) -> std::io::Result<String> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b).map_err(|_| not_utf8()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// What [`replace`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Written { backup: Option<PathBuf> },
}

/// Edits the file at `path` (through symlinks) under its lock: `edit`
/// gets the content as it is now and returns the new content, which is
/// written if it differs. New files get `default_mode`; the parent
/// directory is created 0700. With `backup`, the replaced content is kept
/// as `<file>.iap-ssh.bak` (0600).
pub fn update(
    path: &Path,
    default_mode: u32,
    backup: bool,
    edit: impl FnOnce(&str) -> std::io::Result<String>,
) -> std::io::Result<Outcome> {
    let target = resolve(path);
    let _lock = crate::fsutil::FileLock::acquire(&target)?;
    let old = read(&target)?;
    let new = edit(&old)?;
    write_if_changed(&target, &old, &new, default_mode, backup)
}

fn not_utf8() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")
}

/// Reads `r` line by line (each with its newline), for a [`Span`] finder;
/// text that is not UTF-8 is an error, as for [`read`].
pub fn for_each_line(
    r: &mut dyn std::io::BufRead,
    mut each: impl FnMut(&str),
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        each(std::str::from_utf8(&buf).map_err(|_| not_utf8())?);
    }
}

/// [`update`] for a large file whose one part is ours: under the lock,
/// `locate` reads the file as it is now (a stream) and says which bytes to
/// replace; `render` writes the new part (it may be called twice: once to
/// compare with what is there, once to write). Neither the file nor the
/// new part is ever whole in memory; the rest is copied byte for byte.
pub fn splice_streaming(
    path: &Path,
    default_mode: u32,
    backup: bool,
    locate: impl FnOnce(&mut dyn std::io::BufRead) -> std::io::Result<Span>,
    render: impl Fn(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> std::io::Result<Outcome> {
    use std::io::{BufReader, Read, Seek, SeekFrom};
    let target = resolve(path);
    let _lock = crate::fsutil::FileLock::acquire(&target)?;
    let mut file = match std::fs::File::open(&target) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let span = match file.as_mut() {
        Some(f) => locate(&mut BufReader::with_capacity(64 * 1024, f))?,
        None => locate(&mut std::io::empty())?,
    };
    if span.after.is_empty()
        && let Some(f) = file.as_mut()
    {
        f.seek(SeekFrom::Start(span.start as u64))?;
        let mut same = Same {
            old: BufReader::with_capacity(64 * 1024, f.take((span.end - span.start) as u64)),
            differs: false,
        };
        {
            let mut w = std::io::BufWriter::with_capacity(64 * 1024, &mut same);
            render(&mut w)?;
            std::io::Write::flush(&mut w)?;
        }
        let mut rest = [0u8; 1];
        if !same.differs && same.old.read(&mut rest)? == 0 {
            return Ok(Outcome::Unchanged);
        }
    }
    let mode = prepare(&target, default_mode)?;
    let mut saved = None;
    if backup && let Some(f) = file.as_mut() {
        let b = backup_path(&target);
        f.seek(SeekFrom::Start(0))?;
        crate::fsutil::write_atomic_with(&b, 0o600, |w| std::io::copy(f, w).map(drop))?;
        saved = Some(b);
    }
    crate::fsutil::write_atomic_with(&target, mode, |w| {
        if let Some(f) = file.as_mut() {
            f.seek(SeekFrom::Start(0))?;
            std::io::copy(&mut f.take(span.start as u64), w)?;
        }
        render(w)?;
        w.write_all(span.after.as_bytes())?;
        if let Some(f) = file.as_mut() {
            f.seek(SeekFrom::Start(span.end as u64))?;
            std::io::copy(f, w)?;
        }
        Ok(())
    })?;
    Ok(Outcome::Written { backup: saved })
}

/// A writer that compares what it is given with what `old` holds.
struct Same<R> {
    old: R,
    differs: bool,
}

impl<R: std::io::Read> std::io::Write for Same<R> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.differs {
            let mut theirs = vec![0u8; buf.len()];
            let mut got = 0;
            while got < buf.len() {
                match self.old.read(&mut theirs[got..])? {
                    0 => break,
                    n => got += n,
                }
            }
            self.differs = got < buf.len() || theirs != buf;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Adds lines to the file at `path` (through symlinks) under its lock:
/// `lines` gets the content as it is now and returns what to append
/// (empty: nothing). Returns what was done and the content after it.
pub fn append(
    path: &Path,
    default_mode: u32,
    lines: impl FnOnce(&str) -> String,
) -> std::io::Result<(Outcome, String)> {
    let target = resolve(path);
    let _lock = crate::fsutil::FileLock::acquire(&target)?;
    let now = read(&target)?;
    let mut add = lines(&now);
    if add.is_empty() {
        return Ok((Outcome::Unchanged, now));
    }
    if !now.is_empty() && !now.ends_with('\n') {
        add.insert(0, '\n');
    }
    if let Some(dir) = target.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        crate::fsutil::create_private_dir(dir)?;
    }
    crate::fsutil::append(&target, add.as_bytes(), default_mode)?;
    // The content after, in one allocation of its size (a large fleet's
    // known-hosts file is megabytes).
    let mut after = String::with_capacity(now.len() + add.len());
    after.push_str(&now);
    drop(now);
    after.push_str(&add);
    Ok((Outcome::Written { backup: None }, after))
}

/// Before replacing `target`: its directory made (0700) when missing, and
/// the mode the new file gets (the old file's, else `default_mode`).
fn prepare(target: &Path, default_mode: u32) -> std::io::Result<u32> {
    if let Some(dir) = target.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        crate::fsutil::create_private_dir(dir)?;
    }
    Ok(match std::fs::metadata(target) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(_) => default_mode,
    })
}

/// Where the replaced content of `target` is kept.
fn backup_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".iap-ssh.bak");
    PathBuf::from(name)
}

/// Writes `new` to the resolved `target` if it differs from `old`.
fn write_if_changed(
    target: &Path,
    old: &str,
    new: &str,
    default_mode: u32,
    backup: bool,
) -> std::io::Result<Outcome> {
    if old == new {
        return Ok(Outcome::Unchanged);
    }
    let mode = prepare(target, default_mode)?;
    let mut saved = None;
    if backup && target.exists() {
        let b = backup_path(target);
        crate::fsutil::write_private_atomic(&b, old.as_bytes())?;
        saved = Some(b);
    }
    crate::fsutil::write_atomic(target, new.as_bytes(), mode)?;
    Ok(Outcome::Written { backup: saved })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn through_symlink_keeping_mode() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("dotfiles/ssh_config");
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(&real, "old\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = d.path().join("config");
        std::os::unix::fs::symlink("dotfiles/ssh_config", &link).unwrap();
        assert_eq!(
            update(&link, 0o600, true, |t| Ok(t.to_string())).unwrap(),
            Outcome::Unchanged
        );
        let out = update(&link, 0o600, true, |t| Ok(t.replace("old", "new"))).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");
        assert_eq!(
            std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let Outcome::Written { backup: Some(b) } = out else {
            panic!("{out:?}")
        };
        assert_eq!(std::fs::read_to_string(b).unwrap(), "old\n");
        // New file in a new directory.
        let fresh = d.path().join("new/.ssh/config");
        update(&fresh, 0o600, true, |_| Ok("x\n".into())).unwrap();
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read(&d.path().join("absent")).unwrap(), "");
    }

    #[test]
    fn streaming_splice_keeps_the_rest_and_skips_an_unchanged_part() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config");
        // Bytes around the part we own, odd ones included, kept as they are.
        std::fs::write(&p, b"top\r\n[OURS]\nold\n[/OURS]\ntail without newline").unwrap();
        let locate = |r: &mut dyn std::io::BufRead| {
            let mut all = String::new();
            r.read_to_string(&mut all)?;
            let start = all.find("[OURS]").unwrap();
            let end = all.find("[/OURS]\n").unwrap() + 8;
            Ok(Span {
                start,
                end,
                after: "",
            })
        };
        let render =
            |text: &'static str| move |w: &mut dyn std::io::Write| w.write_all(text.as_bytes());
        let same = splice_streaming(&p, 0o600, true, locate, render("[OURS]\nold\n[/OURS]\n"));
        assert_eq!(same.unwrap(), Outcome::Unchanged);
        // Same length, other bytes; then longer: both written.
        for new in ["[OURS]\nnew\n[/OURS]\n", "[OURS]\nnew\nmore\n[/OURS]\n"] {
            let out = splice_streaming(&p, 0o600, true, locate, render(new)).unwrap();
            assert!(
                matches!(out, Outcome::Written { backup: Some(_) }),
                "{out:?}"
            );
            let now = std::fs::read(&p).unwrap();
            let want = format!("top\r\n{new}tail without newline");
            assert_eq!(now, want.as_bytes());
        }
        let bak = std::fs::read_to_string(d.path().join("config.iap-ssh.bak")).unwrap();
        assert_eq!(bak, "top\r\n[OURS]\nnew\n[/OURS]\ntail without newline");
        // A new file: the part and what follows it.
        let fresh = d.path().join("sub/config");
        let at_top = |_: &mut dyn std::io::BufRead| {
            Ok(Span {
                start: 0,
                end: 0,
                after: "\n",
            })
        };
        splice_streaming(&fresh, 0o600, true, at_top, render("x\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "x\n\n");
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn edits_made_meanwhile_are_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config");
        std::fs::write(&p, "a\n").unwrap();
        // Someone appends after we first read the file...
        std::fs::write(&p, "a\nb\n").unwrap();
        // ...and our edit is applied to what is there now.
        update(&p, 0o600, false, |t| Ok(format!("top\n{t}"))).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "top\na\nb\n");
    }
}
