//! Shared test harness: a private OpenSSH sshd (run inetd-style, one
//! `sshd -i` per tunnel session, so no fixed port is needed), the fake
//! Google endpoints on 127.0.0.1, and helpers to run the real `ssh`, `scp`,
//! `rsync`, `sftp` and `iap-ssh` binaries against them. By concern: `env`
//! (clean environments), `sshd` (daemons and simulated VMs), `world` (one
//! VM behind the fake), `fleet` (the setup fleet), `http_proxy` (tinyproxy).
#![allow(dead_code, unused_imports)]

mod env;
mod fleet;
mod http_proxy;
mod socks_proxy;
mod spawned;
mod sshd;
mod world;

pub use env::*;
pub use fleet::*;
pub use http_proxy::*;
pub use socks_proxy::*;
pub use spawned::*;
pub use sshd::*;
pub use world::*;

use std::path::Path;
use std::time::{Duration, Instant};

pub const PROJECT: &str = "p1";
pub const ZONE: &str = "us-central1-a";
pub const VM: &str = "vm1";
/// A port of VM whose backend refuses connections (close 4003).
pub const CLOSED_PORT: u16 = 23;

pub const TIMEOUT: Duration = Duration::from_secs(300);

/// Writes `len` pseudo-random bytes (xorshift; fast and incompressible).
pub fn random_file(path: &Path, len: usize, seed: u64) {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    std::fs::write(path, v).unwrap();
}

/// Asserts two files are byte-for-byte equal, without dumping them.
pub fn assert_same_file(a: &Path, b: &Path) {
    let x = std::fs::read(a).unwrap();
    let y = std::fs::read(b).unwrap_or_else(|e| panic!("{}: {e}", b.display()));
    assert_eq!(
        x.len(),
        y.len(),
        "{} and {} differ in size",
        a.display(),
        b.display()
    );
    assert!(x == y, "{} and {} differ", a.display(), b.display());
}

/// Asserts that a tunnel's output starts with an SSH banner.
pub fn assert_banner(out: &std::process::Output) {
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("SSH-2.0-"),
        "no banner: {}",
        stderr_of(out)
    );
}

pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The stderr of a failed run, asserted to be one line and no panic.
pub fn one_line(out: &std::process::Output) -> String {
    let err = stderr_of(out);
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Asserts that an echo through the proxy succeeded and returned `input`.
pub fn assert_echo_ok(out: &std::process::Output, input: &[u8]) {
    let err = stderr_of(out);
    assert!(
        out.status.success(),
        "proxy failed ({:?}): {err}",
        out.status.code()
    );
    assert_eq!(
        out.stdout.len(),
        input.len(),
        "echo length differs; stderr: {err}"
    );
    assert!(out.stdout == input, "echoed bytes differ");
}

/// Waits (up to `limit`) for `child` to exit: (status code, its stderr).
pub fn wait_child(child: &mut std::process::Child, limit: Duration) -> (i32, String) {
    use std::io::Read;
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut err).unwrap();
            }
            return (st.code().unwrap_or(-1), err);
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{child:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port the OS picked on 127.0.0.1, free a moment ago: for servers that
/// take a fixed port (tinyproxy, `ssh -D`), which retry if it was taken.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
