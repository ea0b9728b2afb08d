//! A long-running iap-ssh (`forward`, `rdp`) with its stdout read line by
//! line on a thread, stopped with SIGTERM, killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::wait_child;

pub struct Spawned {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Spawned {
    /// Starts `cmd` with stdin closed and stdout/stderr piped.
    pub fn start(cmd: &mut Command) -> Spawned {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Spawned { child, lines: rx }
    }

    /// The next stdout line (within 60 s).
    pub fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("a line on stdout within 60 s")
    }

    /// SIGTERM, then (exit status, stderr).
    pub fn term(&mut self) -> (i32, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait()
    }

    pub fn wait(&mut self) -> (i32, String) {
        wait_child(&mut self.child, Duration::from_secs(60))
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
