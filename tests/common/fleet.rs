//! The setup fleet: two projects of simulated VMs, one per way of taking
//! keys, with their own sshd and a guest agent that applies published keys.

use std::path::PathBuf;
use std::time::Duration;

use assert_cmd::Command;
use fake_gcp::{Config, FakeGcp, Instance};

use super::*;

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
        Fleet::with_root(|c, _| tweak(c))
    }

    /// [`Fleet::new`], the tweak also given the fleet's temporary folder
    /// (for more simulated VMs, [`GuestVm::new`]).
    pub fn with_root(tweak: impl FnOnce(&mut Config, &std::path::Path)) -> Fleet {
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
                ..Default::default()
            });
        }
        config.account = fake_gcp::config::Account {
            email: ACCOUNT.into(),
            username: None,
        };
        config.create_users = true;
        config.guest_delay_ms = 300;
        tweak(&mut config, tmp.path());
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

    /// `iap-ssh` as a std Command (for children run in parallel or fed
    /// through pipes), in the same clean environment.
    pub fn iap_ssh_std(&self) -> std::process::Command {
        let mut c = std::process::Command::new(iap_ssh_bin());
        isolate(
            &mut c,
            &self.fake,
            &self.home,
            Some(&self.fake.info.access_token),
        );
        c.env("LOGNAME", LOCAL_USER).env("USER", LOCAL_USER);
        c
    }

    /// `ssh -F <the written config> ALIAS CMD` in batch mode, asserted to
    /// succeed; its stdout.
    pub fn ssh_ok(&self, alias: &str, cmd: &str) -> String {
        let cfg = self.config_path();
        let out = self
            .tool("ssh")
            .arg("-F")
            .arg(&cfg)
            .args(["-o", "BatchMode=yes", alias, cmd])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh {alias} {cmd} failed: {}\nconfig:\n{}",
            stderr_of(&out),
            std::fs::read_to_string(&cfg).unwrap_or_default()
        );
        String::from_utf8(out.stdout).unwrap()
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

    /// `iap-ssh GLOBAL… list ARGS… --format json`, which must succeed:
    /// its rows.
    pub fn list_json(&self, global: &[&str], args: &[&str]) -> Vec<serde_json::Value> {
        let out = self
            .iap_ssh()
            .args(global)
            .arg("list")
            .args(args)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "list failed: {}", stderr_of(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `iap-ssh GLOBAL… proxy … vm-project 22` with stdin closed, `env`
    /// set and `unset` removed: the VM's SSH banner when the tunnel opens.
    pub fn banner(
        &self,
        global: &[&str],
        env: &[(&str, &str)],
        unset: &[&str],
    ) -> std::process::Output {
        self.banner_with(global, &[], env, unset)
    }

    /// [`Fleet::banner`] with `local` options for `proxy` (`--wait 60s`).
    pub fn banner_with(
        &self,
        global: &[&str],
        local: &[&str],
        env: &[(&str, &str)],
        unset: &[&str],
    ) -> std::process::Output {
        let mut c = self.iap_ssh();
        c.args(global)
            .arg("proxy")
            .args(local)
            .args([
                "--project",
                PROJ_A,
                "--zone",
                "us-central1-b",
                "vm-project",
                "22",
            ])
            .write_stdin("");
        for k in unset {
            c.env_remove(k);
        }
        c.envs(env.iter().copied());
        c.output().unwrap()
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
