//! A real HTTP proxy for the proxy tests: Debian's tinyproxy on 127.0.0.1
//! with a private config (Basic authentication, allowed CONNECT ports) and
//! a log the tests read to see which tunnels it opened.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PROXY_USER: &str = "alice";
pub const PROXY_PASSWORD: &str = "s3cr3t";

pub struct HttpProxy {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl HttpProxy {
    /// Starts tinyproxy requiring [`PROXY_USER`]/[`PROXY_PASSWORD`];
    /// `connect_ports` limits CONNECT to those ports (empty: any).
    pub fn start(dir: &std::path::Path, connect_ports: &[u16]) -> HttpProxy {
        // tinyproxy takes a fixed port: take one the OS picked, and try
        // again if another process grabbed it in between.
        for attempt in 0..5 {
            let port = super::free_port();
            let d = dir.join(format!("tinyproxy-{attempt}"));
            std::fs::create_dir_all(&d).unwrap();
            let log = d.join("log");
            let mut conf = format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 600\nLogFile \"{}\"\nLogLevel Info\nMaxClients 200\nAllow 127.0.0.1\nBasicAuth {PROXY_USER} {PROXY_PASSWORD}\n",
                log.display()
            );
            for p in connect_ports {
                conf.push_str(&format!("ConnectPort {p}\n"));
            }
            let cfg = d.join("tinyproxy.conf");
            std::fs::write(&cfg, conf).unwrap();
            let mut child = Command::new("tinyproxy")
                .arg("-d")
                .arg("-c")
                .arg(&cfg)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("tinyproxy (scripts/install-test-deps.sh installs it)");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return HttpProxy { child, port, log };
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("tinyproxy did not start");
    }

    /// `http://USER:PASSWORD@127.0.0.1:PORT` with `password`.
    pub fn url(&self, password: &str) -> String {
        format!("http://{PROXY_USER}:{password}@127.0.0.1:{}", self.port)
    }

    /// How many CONNECT requests to `target` (`host:port`) it received.
    pub fn connects_to(&self, target: &str) -> usize {
        let needle = format!("CONNECT {target} HTTP/1.1");
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("Request") && l.contains(&needle))
            .count()
    }
}

impl Drop for HttpProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
