//! The files iap-ssh shares with the user and other programs: changed under
//! a lock and re-read before writing (parallel first runs, an edit made
//! while setup runs), a key pair made once, owners kept under sudo, a
//! ProxyCommand path that survives upgrades, and inputs that once went
//! wrong (repeated --project, an absurd --key-ttl).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use common::*;

const TARGETS: [(&str, &str); 4] = [
    ("vm-oslogin.us-central1-a.iap-proj-a", "7000000000000000001"),
    ("vm-project.us-central1-b.iap-proj-a", "7000000000000000002"),
    (
        "vm-blocked.europe-west1-b.iap-proj-b",
        "7000000000000000003",
    ),
    ("late.us-central1-b.iap-proj-a", "7000000000000000007"),
];

#[test]
fn eight_parallel_first_runs_all_succeed_with_one_key_pair_and_every_host_key() {
    let f = Fleet::new(|_| {});
    let children: Vec<_> = (0..8)
        .map(|i| {
            f.iap_ssh_std()
                .args(["-q", "ssh", TARGETS[i % 4].0, "--", "true"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ok = 0;
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "run {i} ({}) failed: {}",
            TARGETS[i % 4].0,
            stderr_of(&out)
        );
        ok += 1;
    }
    eprintln!("parallel first runs: {ok}/8 succeeded");
    // One key pair, and its halves match.
    let key = f.ssh_dir().join("google_compute_engine");
    let derived = StdCommand::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&key)
        .output()
        .unwrap();
    assert!(derived.status.success());
    let public = std::fs::read_to_string(f.ssh_dir().join("google_compute_engine.pub")).unwrap();
    let fields = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(
        fields(&String::from_utf8_lossy(&derived.stdout)),
        fields(&public)
    );
    // Every VM's host key, each once.
    let kh = std::fs::read_to_string(f.ssh_dir().join("google_compute_known_hosts")).unwrap();
    for (t, id) in TARGETS {
        let n = kh
            .lines()
            .filter(|l| l.starts_with(&format!("compute.{id} ")))
            .count();
        assert_eq!(n, 1, "{t}: {kh}");
    }
}

#[test]
fn an_edit_made_while_setup_runs_is_kept() {
    let f = Fleet::new(|c| c.api_latency_ms = 700);
    std::fs::create_dir_all(f.ssh_dir()).unwrap();
    std::fs::write(f.config_path(), "Host mine\n    User me\n").unwrap();
    let child = f
        .iap_ssh_std()
        .args(["setup", "--project", PROJ_A, "--project", PROJ_B])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Setup has read the config before it lists instances.
    let t = Instant::now();
    while f.count("aggregatedList") == 0 {
        assert!(t.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut text = std::fs::read_to_string(f.config_path()).unwrap();
    text.push_str("Host edited-meanwhile\n    User other\n");
    std::fs::write(f.config_path(), &text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let config = std::fs::read_to_string(f.config_path()).unwrap();
    assert!(
        config.ends_with("Host mine\n    User me\nHost edited-meanwhile\n    User other\n"),
        "the edit was lost:\n{config}"
    );
    assert!(config.contains("Host vm-project "));
}

#[test]
fn proxycommand_uses_the_path_iap_ssh_was_run_by() {
    let f = Fleet::new(|_| {});
    let bin = f.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("iap-ssh");
    std::os::unix::fs::symlink(iap_ssh_bin(), &link).unwrap();
    let dry = |cmd: &mut StdCommand| {
        let out = cmd
            .args(["setup", "--project", PROJ_A, "--dry-run"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut by_link = StdCommand::new(&link);
    isolate(
        &mut by_link,
        &f.fake,
        &f.home,
        Some(&f.fake.info.access_token),
    );
    let d = dry(&mut by_link);
    assert!(
        d.contains(&format!("ProxyCommand {} proxy", link.display())),
        "{d}"
    );
    assert!(!d.contains(&iap_ssh_bin().display().to_string()), "{d}");
    // By name, through PATH.
    let mut by_name = StdCommand::new("iap-ssh");
    isolate(
        &mut by_name,
        &f.fake,
        &f.home,
        Some(&f.fake.info.access_token),
    );
    by_name.env(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    let d = dry(&mut by_name);
    assert!(
        d.contains(&format!("ProxyCommand {} proxy", link.display())),
        "{d}"
    );
    // --exe wins; it must be an executable.
    let with_exe = |exe: &str| {
        let mut c = f.iap_ssh();
        c.args(["setup", "--dry-run", "--project", PROJ_A, "--exe", exe]);
        c.output().unwrap()
    };
    let out = with_exe("/usr/bin/env");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ProxyCommand /usr/bin/env proxy"));
    let out = with_exe("/nonexistent/iap-ssh");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("not an executable file"));
}

#[test]
fn a_repeated_project_is_set_up_once() {
    let f = Fleet::new(|_| {});
    let projects = [PROJ_A, PROJ_B, PROJ_A].map(|p| format!("--project={p}"));
    let out = f.iap_ssh().arg("setup").args(projects).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let config = std::fs::read_to_string(f.config_path()).unwrap();
    assert_eq!(
        config.matches("Host *.*.iap-proj-a ").count(),
        1,
        "{config}"
    );
    assert_eq!(
        config
            .matches("Host vm-project vm-project.us-central1-b.iap-proj-a\n")
            .count(),
        1,
        "{config}"
    );
    assert_eq!(f.count("metadata write project=iap-proj-a"), 1);
    assert_eq!(f.count("aggregatedList project=iap-proj-a"), 1);
}

#[test]
fn an_absurd_key_ttl_is_capped_not_expired() {
    let f = Fleet::new(|_| {});
    f.setup(&["--key-ttl", "99999999999999d"]);
    let v = f.fake.state.cloud.lock().unwrap().projects[PROJ_A].items["ssh-keys"].clone();
    let year: i32 = v
        .split("\"expireOn\":\"")
        .nth(1)
        .and_then(|r| r.get(..4))
        .and_then(|y| y.parse().ok())
        .unwrap_or_else(|| panic!("{v}"));
    assert!((2120..2130).contains(&year), "{v}");
    f.wait_keys("vm-project", LOCAL_USER);
    assert_eq!(f.ssh_ok("vm-project", "whoami").trim(), LOCAL_USER);
}

/// Every file and directory under `dir` (itself included) and its owner.
fn owners(dir: &Path) -> Vec<(String, u32)> {
    let mut v = vec![(dir.display().to_string(), dir.metadata().unwrap().uid())];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            v.extend(owners(&p));
        } else {
            v.push((p.display().to_string(), m.uid()));
        }
    }
    v
}

#[test]
fn under_sudo_the_users_files_stay_the_users() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to play sudo");
        return;
    }
    let f = Fleet::new(|_| {});
    let (uid, gid) = (4321u32, 4321u32);
    std::os::unix::fs::chown(&f.home, Some(uid), Some(gid)).unwrap();
    // An existing config of another owner keeps that owner.
    let other = f.tmp.path().join("dotfiles");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("ssh_config"), "Host mine\n").unwrap();
    std::os::unix::fs::chown(other.join("ssh_config"), Some(5555), Some(5555)).unwrap();
    let cfg = other.join("ssh_config");
    f.setup(&["--ssh-config", cfg.to_str().unwrap()]);
    assert_eq!(cfg.metadata().unwrap().uid(), 5555, "existing owner kept");
    let bak = other.join("ssh_config.iap-ssh.bak");
    assert!(bak.exists());
    // Everything created in the home directory belongs to its owner.
    let all = owners(&f.home);
    assert!(all.len() >= 5, "{all:?}");
    for (p, u) in &all {
        assert_eq!(*u, uid, "{p} is owned by {u}");
    }
}
