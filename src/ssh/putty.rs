//! PuTTY's formats, pure (admin-windows-putty §5): the `.ppk` v3 key file
//! as puttygen 0.78 writes it for an unencrypted key, saved sessions as
//! the Unix files PuTTY reads (`Key=Value` lines, the session name
//! `%XX`-escaped) and as a Windows `.reg` file, the folder PuTTY on Unix
//! reads them from, and the escaping of a proxy command.

use std::path::{Path, PathBuf};

use base64::Engine;
use ssh_key::private::KeypairData;
use ssh_key::{Mpint, PrivateKey};

/// A key that cannot become a `.ppk` here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PpkError {
    #[error("the key is protected by a passphrase")]
    Encrypted,
    #[error("PuTTY has no format for {0} keys")]
    Unsupported(String),
}

fn ssh_string(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn mpint(out: &mut Vec<u8>, m: &Mpint) {
    ssh_string(out, m.as_bytes());
}

/// An unsigned big-endian integer as an SSH mpint.
fn mpint_of_unsigned(out: &mut Vec<u8>, be: &[u8]) {
    let start = be.iter().position(|b| *b != 0).unwrap_or(be.len());
    let trimmed = &be[start..];
    let mut v = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(trimmed);
    ssh_string(out, &v);
}

fn b64_lines(b: &[u8]) -> Vec<String> {
    let s = base64::engine::general_purpose::STANDARD.encode(b);
    s.as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// The private blob PuTTY keeps for `key` (§5.1).
fn private_blob(key: &PrivateKey) -> Result<Vec<u8>, PpkError> {
    let mut p = Vec::new();
    match key.key_data() {
        KeypairData::Ed25519(k) => ssh_string(&mut p, k.private.as_ref()),
        KeypairData::Rsa(k) => {
            mpint(&mut p, &k.private.d);
            mpint(&mut p, &k.private.p);
            mpint(&mut p, &k.private.q);
            mpint(&mut p, &k.private.iqmp);
        }
        KeypairData::Ecdsa(k) => mpint_of_unsigned(&mut p, k.private_key_bytes()),
        KeypairData::Encrypted(_) => return Err(PpkError::Encrypted),
        other => {
            return Err(PpkError::Unsupported(
                other
                    .algorithm()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| "these".into()),
            ));
        }
    }
    Ok(p)
}

/// `key` as a PPK v3 file with `Encryption: none`, byte for byte what
/// puttygen 0.78 writes (LF line ends; HMAC-SHA-256 with an empty key
/// over algorithm, encryption, comment, public and private blobs).
pub fn ppk_v3(key: &PrivateKey) -> Result<String, PpkError> {
    if key.is_encrypted() {
        return Err(PpkError::Encrypted);
    }
    let alg = key.algorithm().to_string();
    let comment = key.comment().to_string();
    let public = key
        .public_key()
        .to_bytes()
        .map_err(|e| PpkError::Unsupported(e.to_string()))?;
    let private = private_blob(key)?;
    let mut mac_input = Vec::new();
    for part in [
        alg.as_bytes(),
        b"none",
        comment.as_bytes(),
        &public,
        &private,
    ] {
        ssh_string(&mut mac_input, part);
    }
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[]),
        &mac_input,
    );
    let pub_lines = b64_lines(&public);
    let priv_lines = b64_lines(&private);
    let mut out = format!(
        "PuTTY-User-Key-File-3: {alg}\nEncryption: none\nComment: {comment}\nPublic-Lines: {}\n",
        pub_lines.len()
    );
    for l in &pub_lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&format!("Private-Lines: {}\n", priv_lines.len()));
    for l in &priv_lines {
        out.push_str(l);
        out.push('\n');
    }
    let hex: String = mac.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    out.push_str(&format!("Private-MAC: {hex}\n"));
    Ok(out)
}

/// The folder PuTTY on Unix keeps its configuration in (`unix/storage.c`):
/// `$PUTTYDIR`; else `$XDG_CONFIG_HOME/putty` (or `~/.config/putty`) when
/// that folder exists; else `~/.putty`.
pub fn config_dir(get: &dyn Fn(&str) -> Option<String>, home: &Path) -> PathBuf {
    if let Some(d) = get("PUTTYDIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let xdg = get("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"))
        .join("putty");
    if xdg.is_dir() {
        return xdg;
    }
    home.join(".putty")
}

/// The saved-sessions folder: `$PUTTYSESSIONS`, else `DIR/sessions`.
pub fn sessions_dir(get: &dyn Fn(&str) -> Option<String>, home: &Path) -> PathBuf {
    match get("PUTTYSESSIONS").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => config_dir(get, home).join("sessions"),
    }
}

/// A session's file name on Unix (`make_session_filename`): letters,
/// digits and `+ - . @ _` kept, every other byte `%XX`; and, unlike PuTTY,
/// `.` and `..` escaped too, so that no name is a directory (a fuzzing
/// find; no validated VM name is either).
pub fn session_file_name(name: &str) -> String {
    if name.is_empty() {
        return "Default Settings".into();
    }
    if name == "." || name == ".." {
        return "%2E".repeat(name.len());
    }
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"+-.@_".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A session's registry key name (`escape_registry_key`): `%XX` for
/// space, `\`, `*`, `?`, `%`, control and non-ASCII bytes, and `.` as the
/// first character.
pub fn registry_key_name(name: &str) -> String {
    let mut out = String::new();
    for (i, b) in name.bytes().enumerate() {
        let esc = b == b' '
            || b"\\*?%".contains(&b)
            || !(0x20..=0x7e).contains(&b)
            || (i == 0 && b == b'.');
        if esc {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// A proxy command for PuTTY: `\` doubled (PuTTY processes backslash
/// escapes). `%` must already be `%%` except in PuTTY's own tokens
/// (`%port`, `%host`), as in an OpenSSH ProxyCommand.
pub fn escape_proxy_command(cmd: &str) -> String {
    cmd.replace('\\', "\\\\")
}

/// The line iap-ssh adds to every session it writes (PuTTY ignores keys it
/// does not know): `setup --remove` takes away only sessions with it, and
/// a session without it (the user's own) is never overwritten.
pub const MARKER_KEY: &str = "IapSshManaged";

/// One saved session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session's name (the Host block's first alias).
    pub name: String,
    /// `compute.ID`: never a local name (PuTTY would skip the proxy for
    /// it), and the name host keys are pinned under.
    pub host_name: String,
    pub port: u16,
    pub user: String,
    pub ppk: String,
    /// Run by PuTTY (through `/bin/sh -c` on Unix) instead of a TCP
    /// connection; already escaped for PuTTY. None: connect directly
    /// (`--internal-ip`).
    pub proxy_command: Option<String>,
    /// `SHA256:…` fingerprints of the pinned host keys (empty: PuTTY asks).
    pub host_keys: Vec<String>,
}

impl Session {
    fn settings(&self) -> Vec<(&'static str, Value)> {
        let mut v = vec![
            (MARKER_KEY, Value::Int(1)),
            ("Present", Value::Int(1)),
            ("HostName", Value::Str(self.host_name.clone())),
            ("PortNumber", Value::Int(self.port as u32)),
            ("Protocol", Value::Str("ssh".into())),
            ("UserName", Value::Str(self.user.clone())),
            ("PublicKeyFile", Value::Str(self.ppk.clone())),
        ];
        match &self.proxy_command {
            Some(c) => {
                v.push(("ProxyMethod", Value::Int(5)));
                v.push(("ProxyTelnetCommand", Value::Str(c.clone())));
                v.push(("ProxyLocalhost", Value::Int(0)));
            }
            None => v.push(("ProxyMethod", Value::Int(0))),
        }
        if !self.host_keys.is_empty() {
            v.push(("SSHManualHostKeys", Value::Str(self.host_keys.join(","))));
        }
        v
    }

    /// The Unix session file (`Key=Value` lines; values need no quoting,
    /// none has a line break: the caller validated them).
    pub fn unix_file(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.settings() {
            match v {
                Value::Int(n) => out.push_str(&format!("{k}={n}\n")),
                Value::Str(s) => out.push_str(&format!("{k}={s}\n")),
            }
        }
        out
    }
}

enum Value {
    Int(u32),
    Str(String),
}

/// A `.reg` file creating `sessions` under
/// `HKEY_CURRENT_USER\Software\SimonTatham\PuTTY\Sessions` (REG_SZ strings
/// with `\` and `"` escaped, REG_DWORD numbers), CRLF line ends.
pub fn reg_file(sessions: &[Session]) -> String {
    let mut out = String::from("Windows Registry Editor Version 5.00\r\n");
    let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    for s in sessions {
        out.push_str(&format!(
            "\r\n[HKEY_CURRENT_USER\\Software\\SimonTatham\\PuTTY\\Sessions\\{}]\r\n",
            registry_key_name(&s.name)
        ));
        for (k, v) in s.settings() {
            match v {
                Value::Int(n) => out.push_str(&format!("\"{k}\"=dword:{n:08x}\r\n")),
                Value::Str(v) => out.push_str(&format!("\"{k}\"=\"{}\"\r\n", q(&v))),
            }
        }
    }
    out
}

/// Is this session file one iap-ssh wrote?
pub fn is_ours(file_text: &str) -> bool {
    file_text
        .lines()
        .any(|l| l.split_once('=').is_some_and(|(k, _)| k == MARKER_KEY))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// admin-windows-putty §5.1's test vector (a throwaway key).
    const VECTOR: &str = "PuTTY-User-Key-File-3: ssh-ed25519
Encryption: none
Comment: user@host
Public-Lines: 2
AAAAC3NzaC1lZDI1NTE5AAAAIO4VOTrWcntODp++2OvXxQLmm1rZyVWS70Gj5S7m
trMj
Private-Lines: 1
AAAAIOJjfcI8cNiaFciUGg0yz8JI7m0zoyzjykKCL59MQXsp
Private-MAC: 03a04c611e0d5c222d204796bb2ee967381121a21f6cbf0bd3eb3991e722342a
";

    #[test]
    fn ed25519_matches_puttygen_byte_for_byte() {
        let seed = base64::engine::general_purpose::STANDARD
            .decode("AAAAIOJjfcI8cNiaFciUGg0yz8JI7m0zoyzjykKCL59MQXsp")
            .unwrap();
        let seed: [u8; 32] = seed[4..].try_into().unwrap();
        let kp = ssh_key::private::Ed25519Keypair::from_seed(&seed);
        let key = PrivateKey::new(KeypairData::Ed25519(kp), "user@host").unwrap();
        assert_eq!(
            key.public_key().to_openssh().unwrap(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4VOTrWcntODp++2OvXxQLmm1rZyVWS70Gj5S7mtrMj user@host"
        );
        assert_eq!(ppk_v3(&key).unwrap(), VECTOR);
    }

    #[test]
    fn ecdsa_private_is_an_mpint() {
        let mut out = Vec::new();
        mpint_of_unsigned(&mut out, &[0x00, 0x80, 0x01]);
        assert_eq!(out, [0, 0, 0, 3, 0, 0x80, 0x01]);
        out.clear();
        mpint_of_unsigned(&mut out, &[0x00, 0x7f]);
        assert_eq!(out, [0, 0, 0, 1, 0x7f]);
    }

    #[test]
    fn names_are_escaped_as_putty_does() {
        assert_eq!(
            session_file_name("iap/my-vm (us-central1-a)"),
            "iap%2Fmy-vm%20%28us-central1-a%29"
        );
        assert_eq!(
            session_file_name("vm-1.us-central1-a.p"),
            "vm-1.us-central1-a.p"
        );
        assert_eq!(session_file_name(""), "Default Settings");
        assert_eq!(registry_key_name("iap win-1"), "iap%20win-1");
        assert_eq!(registry_key_name(".a.b/c:d"), "%2Ea.b/c:d");
        assert_eq!(registry_key_name("a%b*?\\"), "a%25b%2A%3F%5C");
    }

    #[test]
    fn the_config_folder_is_found_as_putty_finds_it() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path();
        let none = |_: &str| None;
        assert_eq!(config_dir(&none, home), home.join(".putty"));
        std::fs::create_dir_all(home.join(".config/putty")).unwrap();
        assert_eq!(config_dir(&none, home), home.join(".config/putty"));
        let env = |k: &str| (k == "PUTTYDIR").then(|| "/p".to_string());
        assert_eq!(sessions_dir(&env, home), PathBuf::from("/p/sessions"));
        let env = |k: &str| (k == "PUTTYSESSIONS").then(|| "/s".to_string());
        assert_eq!(sessions_dir(&env, home), PathBuf::from("/s"));
    }

    fn session() -> Session {
        Session {
            name: "win 1".into(),
            host_name: "compute.1234567890123456789".into(),
            port: 22,
            user: "alice".into(),
            ppk: "C:\\Users\\alice\\.ssh\\google_compute_engine.ppk".into(),
            proxy_command: Some(escape_proxy_command(
                "\"C:\\Program Files\\iap-ssh\\iap-ssh.exe\" proxy --project p --zone z win-1 %port",
            )),
            host_keys: vec!["SHA256:bgs3H9b36oyqcM9RGleYjyc3J7LjODtzIDqMAdIptJU".into()],
        }
    }

    #[test]
    fn session_files_and_reg_files() {
        let s = session();
        let f = s.unix_file();
        assert!(f.starts_with("IapSshManaged=1\nPresent=1\nHostName=compute.1234567890123456789\nPortNumber=22\nProtocol=ssh\nUserName=alice\n"), "{f}");
        assert!(f.contains("\nProxyMethod=5\nProxyTelnetCommand=\"C:\\\\Program Files\\\\iap-ssh\\\\iap-ssh.exe\" proxy --project p --zone z win-1 %port\nProxyLocalhost=0\nSSHManualHostKeys=SHA256:bgs3H9b36oyqcM9RGleYjyc3J7LjODtzIDqMAdIptJU\n"), "{f}");
        assert!(is_ours(&f));
        assert!(!is_ours("HostName=x\nIapSshManagedNot=1\n"));
        let r = reg_file(&[s]);
        assert!(r.starts_with("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\SimonTatham\\PuTTY\\Sessions\\win%201]\r\n"), "{r}");
        assert!(r.contains("\"PortNumber\"=dword:00000016\r\n"), "{r}");
        assert!(r.contains("\"PublicKeyFile\"=\"C:\\\\Users\\\\alice\\\\.ssh\\\\google_compute_engine.ppk\"\r\n"), "{r}");
        // The spec's example: PuTTY's level doubles `\`, .reg's doubles again.
        assert!(r.contains("\"ProxyTelnetCommand\"=\"\\\"C:\\\\\\\\Program Files\\\\\\\\iap-ssh\\\\\\\\iap-ssh.exe\\\" proxy --project p --zone z win-1 %port\"\r\n"), "{r}");
    }
}
