//! `iap-ssh setup` end to end: the fake's Compute and OS Login APIs, its
//! guest-agent simulation writing each VM's authorized keys, real sshd per
//! VM, and the real ssh/scp/rsync reading the written config with `-F`.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

fn counters(f: &Fleet) -> (u64, u64) {
    let c = f.fake.state.cloud.lock().unwrap();
    (c.metadata_writes, c.oslogin_writes)
}

fn mtime(p: &std::path::Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

#[test]
fn setup_then_ssh_scp_rsync_with_strict_host_keys() {
    let f = Fleet::new(|_| {});
    std::fs::create_dir_all(f.ssh_dir()).unwrap();
    // The user's own config, without a trailing newline: kept byte for byte.
    let original = "ServerAliveInterval 30\n\nHost other\n    User someone";
    std::fs::write(f.config_path(), original).unwrap();
    std::fs::set_permissions(f.config_path(), std::fs::Permissions::from_mode(0o644)).unwrap();

    let out = f.setup(&[]);
    let summary = stderr_of(&out);
    assert!(summary.contains("6 hosts in"), "{summary}");
    assert!(
        summary.contains(
            "OS Login (iaptest.alice@example.com as iaptest_alice_example_com): written (1 VM)"
        ),
        "{summary}"
    );
    assert!(
        summary.contains("project metadata of iap-proj-a as iaptest_bob: written (2 VMs)"),
        "{summary}"
    );
    assert!(
        summary.contains("instance metadata as iaptest_bob: written (1 VM)"),
        "{summary}"
    );
    assert!(
        summary.contains("project metadata of iap-proj-b as iaptest_bob: written (2 VMs)"),
        "{summary}"
    );
    assert!(
        summary.contains("host keys: known for 3 of 6 VMs"),
        "{summary}"
    );

    // A new Ed25519 key, private 0600.
    let key = f.ssh_dir().join("google_compute_engine");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let pubkey = std::fs::read_to_string(f.ssh_dir().join("google_compute_engine.pub")).unwrap();
    assert!(pubkey.starts_with("ssh-ed25519 "));

    let config = std::fs::read_to_string(f.config_path()).unwrap();
    assert!(config.ends_with(original), "user content kept:\n{config}");
    assert_eq!(
        std::fs::metadata(f.config_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644,
        "mode kept"
    );
    assert!(config.contains("Host vm-oslogin vm-oslogin.us-central1-a.iap-proj-a\n"));
    assert!(
        config.contains("Host web.us-central1-a.iap-proj-a\n"),
        "ambiguous name only in full"
    );
    assert!(!config.contains("Host web "), "{config}");
    assert!(config.contains("Host *.*.iap-proj-b \"!*'*\"\n"));
    assert_eq!(
        config.matches("StrictHostKeyChecking yes").count(),
        3,
        "{config}"
    );
    assert!(config.contains("    User iaptest_alice_example_com\n"));
    let kh = std::fs::read_to_string(f.ssh_dir().join("google_compute_known_hosts")).unwrap();
    assert_eq!(kh.lines().count(), 3, "{kh}");
    assert!(!config.contains("late"), "not listed");
    assert!(kh.contains("compute.7000000000000000001 ssh-ed25519 "));

    // The metadata entry has the google-ssh form with a +0000 expiry.
    let ssh_keys = {
        let c = f.fake.state.cloud.lock().unwrap();
        c.projects[PROJ_A].items["ssh-keys"].clone()
    };
    assert!(
        ssh_keys.starts_with("iaptest_bob:ssh-ed25519 ")
            && ssh_keys.contains(" google-ssh {\"userName\":\"iaptest_bob\",\"expireOn\":\"")
            && ssh_keys.ends_with("+0000\"}"),
        "{ssh_keys}"
    );

    f.wait_keys("vm-oslogin", OSLOGIN_USER);
    f.wait_keys("vm-project", LOCAL_USER);
    f.wait_keys("vm-blocked", LOCAL_USER);
    assert_eq!(f.ssh_ok("vm-oslogin", "whoami").trim(), OSLOGIN_USER);
    assert_eq!(
        f.ssh_ok("vm-project.us-central1-b.iap-proj-a", "whoami")
            .trim(),
        LOCAL_USER
    );
    assert_eq!(f.ssh_ok("vm-blocked", "whoami").trim(), LOCAL_USER);
    // A VM created after setup: the project's wildcard block, host key
    // accepted on first use and pinned from then on.
    f.wait_keys("late", LOCAL_USER);
    assert_eq!(
        f.ssh_ok("late.us-central1-b.iap-proj-a", "whoami").trim(),
        LOCAL_USER
    );
    let kh = std::fs::read_to_string(f.ssh_dir().join("google_compute_known_hosts")).unwrap();
    assert!(
        kh.contains("late.us-central1-b.iap-proj-a ssh-ed25519 "),
        "{kh}"
    );

    // scp and rsync through the same Host blocks.
    let src = f.tmp.path().join("payload.bin");
    random_file(&src, 3 << 20, 7);
    let cfg = f.config_path().display().to_string();
    // The VM users are not root: a directory they can write.
    let shared = f.shared_dir();
    // Each VM: scp up, rsync back, byte-equal (every way of taking keys).
    for vm in ["vm-oslogin", "vm-project", "vm-blocked"] {
        let remote = shared.join(format!("{vm}.bin"));
        let back = f.tmp.path().join(format!("{vm}.back"));
        let out = f
            .tool("scp")
            .args(["-F", &cfg, "-o", "BatchMode=yes"])
            .arg(&src)
            .arg(format!("{vm}:{}", remote.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "scp to {vm}: {}", stderr_of(&out));
        assert_same_file(&src, &remote);
        let out = f
            .tool("rsync")
            .args(["-a", "-e", &format!("ssh -F {cfg} -o BatchMode=yes")])
            .arg(format!("{vm}:{}", remote.display()))
            .arg(&back)
            .output()
            .unwrap();
        assert!(out.status.success(), "rsync from {vm}: {}", stderr_of(&out));
        assert_same_file(&src, &back);
    }

    // A second run changes nothing: no API write, same bytes, same mtime.
    let before = (
        std::fs::read(f.config_path()).unwrap(),
        mtime(&f.config_path()),
        mtime(&f.ssh_dir().join("google_compute_known_hosts")),
        counters(&f),
    );
    let out = f.setup(&[]);
    assert!(
        stderr_of(&out).contains("(unchanged)"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        stderr_of(&out).contains("already present"),
        "{}",
        stderr_of(&out)
    );
    let after = (
        std::fs::read(f.config_path()).unwrap(),
        mtime(&f.config_path()),
        mtime(&f.ssh_dir().join("google_compute_known_hosts")),
        counters(&f),
    );
    assert!(before == after, "a re-run wrote something");

    // --remove restores the original file byte for byte.
    let out = f.iap_ssh().args(["setup", "--remove"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(std::fs::read_to_string(f.config_path()).unwrap(), original);
    let backup = f.ssh_dir().join("config.iap-ssh.bak");
    assert!(
        std::fs::read_to_string(backup)
            .unwrap()
            .contains("# BEGIN iap-ssh")
    );
}

#[test]
fn dry_run_changes_nothing_anywhere() {
    let f = Fleet::new(|_| {});
    let snapshot = f.fake.state.cloud.lock().unwrap().snapshot();
    // With refreshable credentials, so that a token is fetched: even the
    // token cache stays unwritten.
    let out = f
        .iap_ssh()
        .env_remove("IAP_SSH_ACCESS_TOKEN")
        .env(
            "GOOGLE_APPLICATION_CREDENTIALS",
            &f.fake.info.authorized_user_file,
        )
        .args([
            "setup",
            "--project",
            PROJ_A,
            "--project",
            PROJ_B,
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!f.home.join(".cache").exists(), "a dry run writes no cache");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("+Host vm-project vm-project.us-central1-b.iap-proj-a"),
        "{stdout}"
    );
    assert!(stdout.contains("would be generated"), "{stdout}");
    assert!(stdout.contains("# OS Login (iaptest.alice@example.com as iaptest_alice_example_com): would be written (1 VM)"), "{stdout}");
    assert!(
        stdout
            .contains("# project metadata of iap-proj-a as iaptest_bob: would be written (2 VMs)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+compute.7000000000000000002 ssh-ed25519 "),
        "{stdout}"
    );
    assert!(
        !f.ssh_dir().exists(),
        "no key, config or known_hosts written"
    );
    assert_eq!(f.fake.state.cloud.lock().unwrap().snapshot(), snapshot);
    assert_eq!(counters(&f), (0, 0));

    // After a real run, a dry run shows no diff and writes nothing.
    f.setup(&["-q"]);
    let snapshot = f.fake.state.cloud.lock().unwrap().snapshot();
    let bytes = std::fs::read(f.config_path()).unwrap();
    let out = f.setup(&["--dry-run"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("+++"), "{stdout}");
    assert!(stdout.contains("already present"), "{stdout}");
    assert_eq!(f.fake.state.cloud.lock().unwrap().snapshot(), snapshot);
    assert_eq!(std::fs::read(f.config_path()).unwrap(), bytes);
}

#[test]
fn metadata_race_is_survived_without_losing_the_other_write() {
    let f = Fleet::new(|c| c.faults.metadata_conflicts = 3);
    f.setup(&[]);
    let races = f.count("metadata 412");
    assert_eq!(races, 3, "{:?}", f.fake.state.events());
    let c = f.fake.state.cloud.lock().unwrap();
    // The concurrent writers' items survive next to our key.
    let all: Vec<String> = c
        .projects
        .values()
        .flat_map(|m| m.items.keys().cloned())
        .chain(
            c.instances
                .values()
                .flat_map(|(m, _)| m.items.keys().cloned()),
        )
        .collect();
    for k in [
        "concurrent-writer-2",
        "concurrent-writer-1",
        "concurrent-writer-0",
    ] {
        assert!(all.iter().any(|x| x == k), "{k} lost: {all:?}");
    }
    assert!(c.projects[PROJ_A].items["ssh-keys"].contains("iaptest_bob:ssh-ed25519"));
}

#[test]
fn hostile_names_never_reach_the_config() {
    let f = Fleet::new(|c| {
        let mut evil = fake_gcp::Instance::new(
            PROJ_A,
            "us-central1-a",
            "evil\n  ProxyCommand sh -c id",
            "1",
        );
        evil.status = "RUNNING".into();
        c.instances.push(evil);
    });
    let out = f.setup(&[]);
    assert!(
        stderr_of(&out)
            .contains("warning: skipped: instance name `evil\\n  ProxyCommand sh -c id`"),
        "{}",
        stderr_of(&out)
    );
    let config = std::fs::read_to_string(f.config_path()).unwrap();
    assert!(!config.contains("evil"), "{config}");

    for (args, msg) in [
        (
            vec!["--project", PROJ_A, "--user", "x\nHost *"],
            "invalid user name",
        ),
        (
            vec!["--project", PROJ_A, "--user=-oProxyCommand=id"],
            "invalid user name",
        ),
        (vec!["--project", "p;id"], "invalid project id"),
    ] {
        let out = f.iap_ssh().arg("setup").args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr_of(&out);
        assert!(
            err.starts_with("iap-ssh: ") && err.contains(msg) && err.lines().count() == 1,
            "{err}"
        );
    }
}

#[test]
fn existing_gcloud_key_is_reused_and_symlinked_config_written_through() {
    let f = Fleet::new(|_| {});
    let ssh = f.ssh_dir();
    std::fs::create_dir_all(&ssh).unwrap();
    let key = ssh.join("google_compute_engine");
    // gcloud's RSA key in the legacy PEM format: only the .pub is needed.
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let pub_before = std::fs::read_to_string(ssh.join("google_compute_engine.pub")).unwrap();
    let real = f.home.join("dotfiles").join("ssh_config");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::write(&real, "Host x\n").unwrap();
    std::os::unix::fs::symlink(&real, f.config_path()).unwrap();

    f.setup(&[]);
    assert_eq!(
        std::fs::read_to_string(ssh.join("google_compute_engine.pub")).unwrap(),
        pub_before
    );
    assert!(
        std::fs::symlink_metadata(f.config_path())
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(&real)
            .unwrap()
            .contains("# BEGIN iap-ssh")
    );
    f.wait_keys("vm-project", LOCAL_USER);
    assert_eq!(f.ssh_ok("vm-project", "whoami").trim(), LOCAL_USER);
    let blob = pub_before.split_whitespace().nth(1).unwrap().to_string();
    let c = f.fake.state.cloud.lock().unwrap();
    assert!(c.projects[PROJ_A].items["ssh-keys"].contains(&blob));
}

#[test]
fn unwritable_project_metadata_falls_back_to_each_vm() {
    let f = Fleet::new(|c| c.project_metadata_writable = false);
    let out = f.setup(&[]);
    let err = stderr_of(&out);
    assert!(
        err.contains("warning: cannot write project metadata of iap-proj-a (")
            && err.contains("publishing to each of its 2 VMs instead"),
        "{err}"
    );
    assert!(
        err.contains("instance metadata as iaptest_bob: written (5 VMs)"),
        "{err}"
    );
    assert!(!err.contains("key: project metadata"), "{err}");
    f.wait_keys("vm-project", LOCAL_USER);
    assert_eq!(f.ssh_ok("vm-project", "whoami").trim(), LOCAL_USER);
    let c = f.fake.state.cloud.lock().unwrap();
    assert!(!c.projects[PROJ_A].items.contains_key("ssh-keys"));
}

#[test]
fn tokeninfo_falls_back_to_get_when_post_is_refused() {
    let f = Fleet::new(|c| c.tokeninfo_get_only = true);
    let out = f.setup(&["--dry-run"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("# OS Login (iaptest.alice@example.com as iaptest_alice_example_com)"),
        "{stdout}"
    );
    assert_eq!(f.count("tokeninfo POST refused"), 1);
    assert_eq!(f.count("tokeninfo GET"), 1);
}
