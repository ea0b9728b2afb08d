//! A real SOCKS5 proxy for the proxy tests: OpenSSH's dynamic forwarding
//! (`ssh -D`, what people run to reach a network through a bastion)
//! through a private sshd, with a debug log naming each target it
//! connected to.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Sshd, inetd};
use fake_gcp::Backend;

pub struct SocksProxy {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl SocksProxy {
    pub fn start(dir: &Path) -> SocksProxy {
        let sshd = Sshd::new(&dir.join("sshd"));
        let Backend::Exec(argv) = sshd.backend() else {
            unreachable!("sshd runs as a command")
        };
        let ssh_port = inetd(argv);
        // ssh -D takes a fixed port: take one the OS picked, and try again
        // if another process grabbed it in between.
        for attempt in 0..5 {
            let port = super::free_port();
            let log = dir.join(format!("ssh-d-{attempt}.log"));
            let mut child = Command::new("ssh")
                .args(["-N", "-v", "-D", &format!("127.0.0.1:{port}")])
                .arg("-E")
                .arg(&log)
                .arg("-i")
                .arg(&sshd.client_key)
                .args([
                    "-F",
                    "/dev/null",
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "ExitOnForwardFailure=yes",
                    "-p",
                    &ssh_port.to_string(),
                    "127.0.0.1",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(30) {
                if std::fs::read_to_string(&log)
                    .is_ok_and(|l| l.contains("Entering interactive session"))
                {
                    return SocksProxy { child, port, log };
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("ssh -D did not start a SOCKS proxy");
    }

    /// `SCHEME://127.0.0.1:PORT`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Connections it forwarded to `host port N` and closed again (ssh
    /// logs a channel's target when it is freed), waited for up to 10 s
    /// to reach `at_least`.
    pub fn closed_to(&self, target: &str, at_least: usize) -> usize {
        let needle = format!(" for {target}, connect from");
        let count = || {
            std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("direct-tcpip: listening port") && l.contains(&needle))
                .count()
        };
        let t = Instant::now();
        while count() < at_least && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        count()
    }
}

impl Drop for SocksProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
