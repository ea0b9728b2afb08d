//! The managed section of `~/.ssh/config`. Pure: rendering Host blocks and
//! splicing the section into (or out of) the file's text.
//!
//! The section sits between two fixed marker lines of our own (not
//! gcloud's, so `gcloud compute config-ssh` and iap-ssh never fight over
//! one section). A new section goes at the top of the file, because ssh
//! takes the first value it finds for each option, so a user's later
//! `Host *` defaults cannot override `User` or `ProxyCommand`; it ends with
//! a `Host *` line so that options written at the top of the user's file
//! keep applying to every host. An existing section is replaced where it
//! is. Everything outside the markers is kept byte for byte.

use std::fmt::Write as _;

pub const BEGIN: &str = "# BEGIN iap-ssh managed section: rewritten by `iap-ssh setup`, removed by `iap-ssh setup --remove`";
pub const END: &str = "# END iap-ssh managed section";

/// `StrictHostKeyChecking` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strict {
    /// The host keys are in the known-hosts file.
    Yes,
    /// Unknown yet: trust on first use, refuse a changed key later.
    AcceptNew,
}

/// How ssh reaches the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Through IAP: this `ProxyCommand` (quoted by the caller).
    Proxy(String),
    /// Straight to the VM's internal address (`HostName`; an IP address,
    /// parsed, so it needs no quoting): for users on the VPC or a VPN.
    Direct(std::net::IpAddr),
}

/// One Host block. Every field is validated or quoted by the caller
/// (`names`, `quote::config_value`); `render` only lays them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBlock {
    pub comment: String,
    pub patterns: Vec<String>,
    pub user: String,
    pub identity_file: String,
    pub host_key_alias: Option<String>,
    pub known_hosts: String,
    pub strict: Strict,
    pub route: Route,
    /// Connection sharing: (`ControlPath` value, `ControlPersist` value).
    pub control: Option<(String, String)>,
    /// OS Login certificate VMs: (`CertificateFile` value, the command a
    /// `Match host PATTERNS exec "…"` line after the block runs to renew
    /// it; both quoted by the caller).
    pub certificate: Option<(String, String)>,
}

impl HostBlock {
    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# {}", self.comment.replace(['\n', '\r'], " "));
        let _ = writeln!(out, "Host {}", self.patterns.join(" "));
        let _ = writeln!(out, "    User {}", self.user);
        let _ = writeln!(out, "    IdentityFile {}", self.identity_file);
        let _ = writeln!(out, "    IdentitiesOnly yes");
        if let Some(a) = &self.host_key_alias {
            let _ = writeln!(out, "    HostKeyAlias {a}");
        }
        let _ = writeln!(out, "    UserKnownHostsFile {}", self.known_hosts);
        let _ = writeln!(out, "    CheckHostIP no");
        let strict = match self.strict {
            Strict::Yes => "yes",
            Strict::AcceptNew => "accept-new",
        };
        let _ = writeln!(out, "    StrictHostKeyChecking {strict}");
        match &self.route {
            Route::Proxy(c) => {
                let _ = writeln!(out, "    ProxyCommand {c}");
            }
            Route::Direct(ip) => {
                let _ = writeln!(out, "    HostName {ip}");
            }
        }
        if let Some((path, persist)) = &self.control {
            let _ = writeln!(out, "    ControlMaster auto");
            let _ = writeln!(out, "    ControlPath {path}");
            let _ = writeln!(out, "    ControlPersist {persist}");
        }
        if let Some((file, check)) = &self.certificate {
            let _ = writeln!(out, "    CertificateFile {file}");
            // ssh runs this while reading its config, before it loads the
            // certificate: renewal happens in time for this connection.
            let _ = writeln!(
                out,
                "Match host {} exec \"{check}\"",
                self.patterns.join(",")
            );
        }
    }
}

/// The whole section, markers included, ending with a newline.
pub fn render_section(blocks: &[HostBlock]) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_section(&mut out, blocks.iter());
    String::from_utf8(out).unwrap_or_default()
}

/// [`render_section`] written out block by block, so that the section of
/// a large fleet is never whole in memory.
pub fn write_section<B: std::borrow::Borrow<HostBlock>>(
    out: &mut dyn std::io::Write,
    blocks: impl Iterator<Item = B>,
) -> std::io::Result<()> {
    let mut text = String::new();
    out.write_all(BEGIN.as_bytes())?;
    out.write_all(b"\n")?;
    for b in blocks {
        text.clear();
        b.borrow().render(&mut text);
        text.push('\n');
        out.write_all(text.as_bytes())?;
    }
    out.write_all(b"# Options after this section apply to every host again.\nHost *\n")?;
    out.write_all(END.as_bytes())?;
    out.write_all(b"\n")
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SectionError {
    #[error("the file has {0} iap-ssh begin markers and {1} end markers")]
    Markers(usize, usize),
    #[error("the iap-ssh end marker comes before the begin marker")]
    Order,
}

/// Finds the section's markers line by line, so that a file can be read
/// as a stream ([`Scanner::line`] each line with its newline, then
/// [`Scanner::finish`]).
#[derive(Debug, Default)]
pub struct Scanner {
    off: usize,
    begins: Vec<usize>,
    ends: Vec<usize>,
}

/// Where the section goes in a file: bytes `start..end` are replaced by
/// the section followed by `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub start: usize,
    pub end: usize,
    pub after: &'static str,
}

impl Scanner {
    pub fn line(&mut self, line: &str) {
        let l = line.trim_end_matches(['\n', '\r']);
        if l == BEGIN {
            self.begins.push(self.off);
        } else if l == END {
            self.ends.push(self.off + line.len());
        }
        self.off += line.len();
    }

    /// The byte range of the section (begin line start .. end line end,
    /// newline included), if there is one.
    pub fn found(&self) -> Result<Option<(usize, usize)>, SectionError> {
        match (self.begins.as_slice(), self.ends.as_slice()) {
            ([], []) => Ok(None),
            ([b], [e]) if b < e => Ok(Some((*b, *e))),
            ([_], [_]) => Err(SectionError::Order),
            (b, e) => Err(SectionError::Markers(b.len(), e.len())),
        }
    }

    /// Where a new section goes: in place of the old one; else at the top,
    /// followed by one blank line that [`remove`] takes away again.
    pub fn finish(self) -> Result<Placement, SectionError> {
        Ok(match self.found()? {
            Some((start, end)) => Placement {
                start,
                end,
                after: "",
            },
            None => Placement {
                start: 0,
                end: 0,
                after: if self.off == 0 { "" } else { "\n" },
            },
        })
    }
}

fn scan(text: &str) -> Scanner {
    let mut s = Scanner::default();
    for line in text.split_inclusive('\n') {
        s.line(line);
    }
    s
}

/// Byte range of the section (begin line start .. end line end, newline
/// included), if present.
fn find(text: &str) -> Result<Option<(usize, usize)>, SectionError> {
    scan(text).found()
}

/// Where the section goes in `text` (see [`Scanner::finish`]).
pub fn placement(text: &str) -> Result<Placement, SectionError> {
    scan(text).finish()
}

/// `text` with the section set to `section`. A new section is put at the
/// top, followed by one blank line that [`remove`] takes away again.
pub fn splice(text: &str, section: &str) -> Result<String, SectionError> {
    let p = placement(text)?;
    Ok(format!(
        "{}{section}{}{}",
        &text[..p.start],
        p.after,
        &text[p.end..]
    ))
}

/// `text` without the section (and the blank line [`splice`] added after
/// it), or None when there is none.
pub fn remove(text: &str) -> Result<Option<String>, SectionError> {
    let Some((b, mut e)) = find(text)? else {
        return Ok(None);
    };
    if b == 0 && text[e..].starts_with('\n') {
        e += 1;
    }
    Ok(Some(format!("{}{}", &text[..b], &text[e..])))
}

/// A unified diff of two texts for `--dry-run` (empty when equal).
pub fn diff(old: &str, new: &str, path: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(path, path)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(name: &str) -> HostBlock {
        HostBlock {
            comment: format!("{name}: zone z, project p"),
            patterns: vec![name.into(), format!("{name}.z.p")],
            user: "bob".into(),
            identity_file: "/h/.ssh/k".into(),
            host_key_alias: Some("compute.1".into()),
            known_hosts: "/h/.ssh/kh".into(),
            strict: Strict::Yes,
            route: Route::Proxy(format!("/bin/iap-ssh proxy --project p --zone z {name} %p")),
            control: None,
            certificate: None,
        }
    }

    #[test]
    fn render_and_splice() {
        let s = render_section(&[block("a"), block("b")]);
        assert!(s.starts_with(BEGIN) && s.ends_with(&format!("Host *\n{END}\n")));
        assert!(s.contains("Host a a.z.p\n    User bob\n"));
        let user = "ServerAliveInterval 30\nHost x\n  User y";
        let with = splice(user, &s).unwrap();
        assert_eq!(with, format!("{s}\n{user}"));
        assert_eq!(remove(&with).unwrap().unwrap(), user, "byte for byte");
        // Replaced in place, surroundings untouched.
        let s2 = render_section(&[block("c")]);
        let moved = format!("# top\n{s}tail\n");
        assert_eq!(splice(&moved, &s2).unwrap(), format!("# top\n{s2}tail\n"));
        assert_eq!(remove(&moved).unwrap().unwrap(), "# top\ntail\n");
        assert_eq!(splice("", &s).unwrap(), s);
        assert_eq!(remove(&s).unwrap().unwrap(), "");
        assert_eq!(remove(user).unwrap(), None);
        // Broken markers are refused rather than guessed at.
        assert!(splice(&format!("{s}{s}"), &s).is_err());
        assert!(splice(&format!("{BEGIN}\nx\n"), &s).is_err());
        assert!(splice(&format!("{END}\n{BEGIN}\n"), &s).is_err());
    }

    #[test]
    fn diffs() {
        assert_eq!(diff("a\n", "a\n", "f"), "");
        let d = diff("a\nb\n", "a\nc\n", "f");
        assert!(d.contains("-b\n") && d.contains("+c\n") && d.contains("--- f"));
    }
}
