//! One test world: a temp dir, the fake Google endpoints and a private
//! sshd behind VM `vm1`, with helpers for the proxy and the real clients.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::Duration;

use assert_cmd::Command;
use fake_gcp::{Backend, Config, FakeGcp, Instance};

use super::*;

/// One test world: temp dir, fake Google endpoints, private sshd.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub sshd: Sshd,
    pub fake: FakeGcp,
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl World {
    pub fn new() -> World {
        World::with(|_| {})
    }

    /// A world whose fake configuration `tweak` adjusts (faults, token lifetime).
    pub fn with(tweak: impl FnOnce(&mut Config)) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let sshd = Sshd::new(&tmp.path().join("sshd"));
        let mut ports = std::collections::BTreeMap::new();
        ports.insert(22, sshd.backend());
        ports.insert(
            CLOSED_PORT,
            Backend::Tcp(format!("127.0.0.1:{}", closed_port())),
        );
        ports.insert(7, Backend::Exec(vec!["cat".into()]));
        let mut vm = Instance::new(PROJECT, ZONE, VM, "4242424242424242424");
        vm.ports = ports;
        let mut config = Config {
            instances: vec![vm],
            ..Config::default()
        };
        tweak(&mut config);
        let fake = FakeGcp::spawn(config, &tmp.path().join("fake")).unwrap();
        World {
            tmp,
            home,
            sshd,
            fake,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Applies a clean environment to `cmd`: no ambient Google credentials,
    /// HOME in the temp dir, endpoints pointing at the fake, and the fake's
    /// static token unless `with_token` is false.
    pub fn env(&self, cmd: &mut Command, with_token: bool) {
        let token = with_token.then_some(self.fake.info.access_token.as_str());
        isolate(cmd, &self.fake, &self.home, token);
        cmd.timeout(TIMEOUT);
    }

    /// `iap-ssh ARGS` in the clean environment.
    pub fn iap_ssh(&self, with_token: bool) -> Command {
        let mut c = Command::new(iap_ssh_bin());
        self.env(&mut c, with_token);
        c
    }

    /// The ProxyCommand (an ssh config value) that runs `iap-ssh proxy`.
    pub fn proxy_command(&self) -> String {
        format!("{} proxy {VM}.{ZONE}.{PROJECT} %p", iap_ssh_bin().display())
    }

    /// Options shared by ssh, scp and sftp.
    pub fn ssh_opts(&self, proxy: &str) -> Vec<String> {
        vec![
            "-F".into(),
            "/dev/null".into(),
            "-i".into(),
            self.sshd.client_key.display().to_string(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
            "-o".into(),
            "StrictHostKeyChecking=no".into(),
            "-o".into(),
            format!("UserKnownHostsFile={}", self.sshd.known_hosts.display()),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
            "-o".into(),
            format!("ProxyCommand={proxy}"),
        ]
    }

    /// A real client (`ssh`, `scp`, `sftp`, `rsync`) in the clean environment.
    pub fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(name);
        self.env(&mut c, true);
        c
    }

    pub fn user(&self) -> String {
        let out = StdCommand::new("id").arg("-un").output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn remote(&self) -> String {
        format!("{}@{VM}", self.user())
    }
}

/// Runs `iap-ssh proxy ARGS vm1 7` (an echo service) with `len` random
/// bytes on stdin; returns (output, input) for comparison.
pub fn echo_through(w: &World, args: &[&str], len: usize) -> (std::process::Output, Vec<u8>) {
    let input_path = w.path("echo-in.bin");
    random_file(&input_path, len, len as u64);
    let input = std::fs::read(&input_path).unwrap();
    let mut c = w.iap_ssh(true);
    let mut full: Vec<&str> = vec!["proxy"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["vm1.us-central1-a.p1", "7"]);
    let out = c
        .args(&full)
        .pipe_stdin(&input_path)
        .unwrap()
        .output()
        .unwrap();
    (out, input)
}

/// (sessions opened, reconnects, token grants) seen by the fake.
pub fn stats(w: &World) -> (u64, u64, u64) {
    use fake_gcp::state::Stats;
    let s = &w.fake.state.stats;
    (
        Stats::get(&s.connects),
        Stats::get(&s.reconnects),
        Stats::get(&s.token_requests),
    )
}

/// Waits (up to 10 s) until at least `n` fake events satisfy `pred`, since
/// the fake records a client's Close a moment after the client sent it.
pub fn wait_events(w: &World, n: usize, pred: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ev = w.fake.state.events();
        let k = ev.iter().filter(|e| pred(e)).count();
        if k >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected {n} matching events, saw {k}: {ev:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Copies `src` to the VM with scp and back again, asserting both copies
/// are byte-identical. `prep` adjusts each scp command (e.g. gcloud's
/// environment).
pub fn scp_round_trip(w: &World, opts: &[String], src: &Path, prep: impl Fn(&mut Command)) {
    let stem = src.file_name().unwrap().to_string_lossy().into_owned();
    let remote = w.path(&format!("{stem}.remote"));
    let back = w.path(&format!("{stem}.back"));
    for (from, to, what) in [
        (
            src.display().to_string(),
            format!("{}:{}", w.remote(), remote.display()),
            "up",
        ),
        (
            format!("{}:{}", w.remote(), remote.display()),
            back.display().to_string(),
            "down",
        ),
    ] {
        let mut c = w.tool("scp");
        prep(&mut c);
        let out = c.args(opts).arg(from).arg(to).output().unwrap();
        assert!(
            out.status.success(),
            "scp {what} failed: {}",
            stderr_of(&out)
        );
    }
    assert_same_file(src, &remote);
    assert_same_file(src, &back);
}

impl World {
    /// `iap-ssh` as a plain std Command (for tests that drive the child's
    /// pipes or signals themselves), in the same clean environment.
    pub fn iap_ssh_std(&self, with_token: bool) -> std::process::Command {
        let mut cmd = std::process::Command::new(iap_ssh_bin());
        let token = with_token.then_some(self.fake.info.access_token.as_str());
        isolate(&mut cmd, &self.fake, &self.home, token);
        cmd
    }
}

/// How many fake events satisfy `pred` so far.
pub fn count_events(w: &World, pred: impl Fn(&str) -> bool) -> usize {
    w.fake.state.events().iter().filter(|e| pred(e)).count()
}
