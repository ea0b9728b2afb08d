//! Shared test harness: a private OpenSSH sshd (run inetd-style, one
//! `sshd -i` per tunnel session, so no fixed port is needed), the fake
//! Google endpoints on 127.0.0.1, and helpers to run the real `ssh`, `scp`,
//! `rsync`, `sftp` and `iap-ssh` binaries against them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::Duration;

use assert_cmd::Command;
use fake_gcp::{Backend, Config, FakeGcp, Instance};

pub const PROJECT: &str = "p1";
pub const ZONE: &str = "us-central1-a";
pub const VM: &str = "vm1";
/// A port of VM whose backend refuses connections (close 4003).
pub const CLOSED_PORT: u16 = 23;

pub const TIMEOUT: Duration = Duration::from_secs(300);

pub fn iap_ssh_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_iap-ssh"))
}

fn run_ok(cmd: &mut StdCommand) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private sshd configuration; the daemon runs per connection as
/// `/usr/sbin/sshd -i` under the fake relay.
pub struct Sshd {
    pub dir: PathBuf,
    pub client_key: PathBuf,
    pub config: PathBuf,
    pub known_hosts: PathBuf,
}

impl Sshd {
    pub fn new(dir: &Path) -> Sshd {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "/usr/sbin/sshd is missing: install openssh-server (the README's test command does)"
        );
        std::fs::create_dir_all(dir).unwrap();
        // Privilege separation directory required by sshd.
        let _ = std::fs::create_dir_all("/run/sshd");
        let hostkey = dir.join("hostkey");
        let client_key = dir.join("client");
        for (f, c) in [(&hostkey, "host"), (&client_key, "client")] {
            run_ok(
                StdCommand::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", c, "-f"])
                    .arg(f),
            );
        }
        std::fs::copy(dir.join("client.pub"), dir.join("authorized_keys")).unwrap();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "HostKey {d}/hostkey\nPidFile none\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 Subsystem sftp /usr/lib/openssh/sftp-server\nLogLevel VERBOSE\n",
                d = dir.display()
            ),
        )
        .unwrap();
        run_ok(StdCommand::new(sshd).arg("-t").arg("-f").arg(&config));
        Sshd {
            dir: dir.to_path_buf(),
            client_key,
            config,
            known_hosts: dir.join("known_hosts"),
        }
    }

    pub fn backend(&self) -> Backend {
        Backend::Exec(vec![
            "/usr/sbin/sshd".into(),
            "-i".into(),
            "-e".into(),
            "-f".into(),
            self.config.display().to_string(),
        ])
    }
}

/// Both kinds of command the tests run.
pub trait EnvCommand {
    fn unset(&mut self, key: &str);
    fn set(&mut self, key: &str, value: &std::ffi::OsStr);
}

impl EnvCommand for Command {
    fn unset(&mut self, key: &str) {
        self.env_remove(key);
    }
    fn set(&mut self, key: &str, value: &std::ffi::OsStr) {
        self.env(key, value);
    }
}

impl EnvCommand for StdCommand {
    fn unset(&mut self, key: &str) {
        self.env_remove(key);
    }
    fn set(&mut self, key: &str, value: &std::ffi::OsStr) {
        self.env(key, value);
    }
}

/// A clean environment for `cmd`: no ambient Google credentials, gcloud
/// settings, XDG directories or proxies; HOME in the test's directory;
/// every endpoint pointing at `fake`; and `token` as the static token.
pub fn isolate(cmd: &mut impl EnvCommand, fake: &FakeGcp, home: &Path, token: Option<&str>) {
    for (k, _) in std::env::vars() {
        if k.starts_with("IAP_SSH_")
            || k.starts_with("CLOUDSDK_")
            || k.starts_with("XDG_")
            || k == "GOOGLE_APPLICATION_CREDENTIALS"
            || k.ends_with("_proxy")
            || k.ends_with("_PROXY")
        {
            cmd.unset(&k);
        }
    }
    cmd.set("HOME", home.as_os_str());
    cmd.set("RUST_BACKTRACE", "0".as_ref());
    for (k, v) in fake.info.iap_ssh_env() {
        cmd.set(k, v.as_ref());
    }
    if let Some(t) = token {
        cmd.set("IAP_SSH_ACCESS_TOKEN", t.as_ref());
    }
}

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

pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
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

/// A simulated VM for setup tests: its own sshd (host key published as a
/// guest attribute), authorized keys written per user by the fake's
/// guest-agent simulation into `dir/keys/USER`.
pub struct GuestVm {
    pub name: String,
    pub dir: PathBuf,
    pub host_key: String,
}

impl GuestVm {
    pub fn new(root: &Path, name: &str) -> GuestVm {
        let dir = root.join(format!("vm-{name}"));
        std::fs::create_dir_all(dir.join("keys")).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        run_ok(
            StdCommand::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(dir.join("hostkey")),
        );
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "HostKey {d}/hostkey\nPidFile none\nAuthorizedKeysFile {d}/keys/%u\n\
                 PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 Subsystem sftp /usr/lib/openssh/sftp-server\nLogLevel VERBOSE\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let pubkey = std::fs::read_to_string(dir.join("hostkey.pub")).unwrap();
        let host_key = pubkey
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        GuestVm {
            name: name.into(),
            dir,
            host_key,
        }
    }

    /// A fake instance backed by this VM's sshd on port 22.
    pub fn instance(&self, project: &str, zone: &str, id: &str) -> Instance {
        let mut i = Instance::new(project, zone, &self.name, id);
        i.ports.insert(
            22,
            Backend::Exec(vec![
                "/usr/sbin/sshd".into(),
                "-i".into(),
                "-e".into(),
                "-f".into(),
                self.dir.join("sshd_config").display().to_string(),
            ]),
        );
        i.host_keys = vec![self.host_key.clone()];
        i.guest_keys_dir = Some(self.dir.join("keys"));
        i
    }
}

/// Project ids of the setup fleet.
pub const PROJ_A: &str = "iap-proj-a";
pub const PROJ_B: &str = "iap-proj-b";
/// The account the fake's tokens belong to, and its OS Login user.
pub const ACCOUNT: &str = "iaptest.alice@example.com";
pub const OSLOGIN_USER: &str = "iaptest_alice_example_com";
/// The local login name used for metadata keys.
pub const LOCAL_USER: &str = "iaptest_bob";

/// Three VMs with sshd behind the fake, one per way of taking keys:
/// `vm-oslogin` (OS Login on the instance), `vm-project` (project
/// metadata), `vm-blocked` (blocks project keys: instance metadata), plus
/// `web` in both projects (a name that is not unique), a stopped VM, and
/// `late`, which setup's listing does not see (created afterwards).
pub struct Fleet {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub fake: FakeGcp,
}

impl Fleet {
    pub fn new(tweak: impl FnOnce(&mut Config)) -> Fleet {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut instances = vec![];
        let mut os = GuestVm::new(tmp.path(), "vm-oslogin").instance(
            PROJ_A,
            "us-central1-a",
            "7000000000000000001",
        );
        os.metadata.insert("enable-oslogin".into(), "TRUE".into());
        instances.push(os);
        instances.push(GuestVm::new(tmp.path(), "vm-project").instance(
            PROJ_A,
            "us-central1-b",
            "7000000000000000002",
        ));
        // Created after setup listed the project: reached through the
        // project's wildcard block.
        let mut late = GuestVm::new(tmp.path(), "late").instance(
            PROJ_A,
            "us-central1-b",
            "7000000000000000007",
        );
        late.listed = false;
        instances.push(late);
        let mut blocked = GuestVm::new(tmp.path(), "vm-blocked").instance(
            PROJ_B,
            "europe-west1-b",
            "7000000000000000003",
        );
        blocked
            .metadata
            .insert("block-project-ssh-keys".into(), "true".into());
        instances.push(blocked);
        instances.push(Instance::new(
            PROJ_A,
            "us-central1-a",
            "web",
            "7000000000000000004",
        ));
        instances.push(Instance::new(
            PROJ_B,
            "europe-west1-b",
            "web",
            "7000000000000000005",
        ));
        let mut stopped = Instance::new(PROJ_B, "europe-west1-c", "stopped", "7000000000000000006");
        stopped.status = "TERMINATED".into();
        instances.push(stopped);
        let mut config = Config {
            instances,
            ..Config::default()
        };
        for p in [PROJ_A, PROJ_B] {
            let mut meta = std::collections::BTreeMap::new();
            meta.insert("enable-guest-attributes".to_string(), "TRUE".to_string());
            config.projects.push(fake_gcp::config::Project {
                id: p.into(),
                metadata: meta,
            });
        }
        config.account = fake_gcp::config::Account {
            email: ACCOUNT.into(),
            username: None,
        };
        config.create_users = true;
        config.guest_delay_ms = 300;
        tweak(&mut config);
        let fake = FakeGcp::spawn(config, &tmp.path().join("fake")).unwrap();
        Fleet { tmp, home, fake }
    }

    /// The clean environment of [`World::env`], with the local login name
    /// set to [`LOCAL_USER`].
    pub fn env(&self, cmd: &mut Command) {
        isolate(
            cmd,
            &self.fake,
            &self.home,
            Some(&self.fake.info.access_token),
        );
        cmd.env("LOGNAME", LOCAL_USER).env("USER", LOCAL_USER);
        cmd.timeout(TIMEOUT);
    }

    pub fn iap_ssh(&self) -> Command {
        let mut c = Command::new(iap_ssh_bin());
        self.env(&mut c);
        c
    }

    pub fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(name);
        self.env(&mut c);
        c
    }

    pub fn ssh_dir(&self) -> PathBuf {
        self.home.join(".ssh")
    }

    pub fn config_path(&self) -> PathBuf {
        self.ssh_dir().join("config")
    }

    /// `iap-ssh setup --project A --project B ARGS`, asserted to succeed.
    pub fn setup(&self, args: &[&str]) -> std::process::Output {
        let out = self
            .iap_ssh()
            .args(["setup", "--project", PROJ_A, "--project", PROJ_B])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "setup failed: {}{}",
            stderr_of(&out),
            String::from_utf8_lossy(&out.stdout)
        );
        out
    }

    /// A directory the VMs' (non-root) users can write.
    pub fn shared_dir(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let d = self.tmp.path().join("shared");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        d
    }

    /// How many fake events contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.fake
            .state
            .events()
            .iter()
            .filter(|e| e.contains(needle))
            .count()
    }

    /// Waits until the simulated guest agent of `vm` has applied keys that
    /// include `user`.
    pub fn wait_keys(&self, vm: &str, user: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let needle = format!("/{vm} users=");
        loop {
            let ok = self.fake.state.events().iter().any(|e| {
                e.starts_with("guest: synced")
                    && e.contains(&needle)
                    && e.contains(&format!("\"{user}\""))
            });
            if ok {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "keys for {user} never reached {vm}: {:?}",
                self.fake.state.events()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
