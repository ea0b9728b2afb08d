//! `iap-ssh ssh`, `scp`, `--print-rsh`, `list` and the gcloud configuration
//! lookups, end to end against the fake (Compute, OS Login, guest agent)
//! and a real sshd per VM, with the real OpenSSH clients.

mod common;

use common::*;

#[test]
fn ssh_without_setup_finds_the_zone_waits_for_the_key_and_passes_the_exit_status() {
    let f = Fleet::new(|_| {});
    let out = f
        .iap_ssh()
        .args([
            "ssh",
            "--project",
            PROJ_A,
            "vm-project",
            "--",
            "whoami;",
            "exit",
            "3",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), LOCAL_USER);
    assert!(
        stderr_of(&out).contains("waiting for the key to reach the VM"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(f.count("aggregatedList project=iap-proj-a"), 1);
    let cache = std::fs::read_to_string(f.home.join(".cache/iap-ssh/zones.json")).unwrap();
    assert!(
        cache.contains("iap-proj-a/vm-project") && cache.contains("us-central1-b"),
        "{cache}"
    );
    // Host key pinned from guest attributes.
    let kh = std::fs::read_to_string(f.ssh_dir().join("google_compute_known_hosts")).unwrap();
    assert!(
        kh.starts_with("compute.7000000000000000002 ssh-ed25519 "),
        "{kh}"
    );

    // The second run: the zone comes from the cache, the key is in place.
    let writes = f.fake.state.cloud.lock().unwrap().metadata_writes;
    let out = f
        .iap_ssh()
        .args(["ssh", "--project", PROJ_A, "vm-project", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        f.count("aggregatedList project=iap-proj-a"),
        1,
        "no second lookup"
    );
    assert_eq!(
        f.fake.state.cloud.lock().unwrap().metadata_writes,
        writes,
        "nothing rewritten"
    );
    assert!(!stderr_of(&out).contains("waiting"), "{}", stderr_of(&out));

    // An unknown name is a one-line not-found error.
    let out = f
        .iap_ssh()
        .args(["ssh", "--project", PROJ_A, "nope", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        stderr_of(&out).trim(),
        "iap-ssh: instance nope not found in any zone of project iap-proj-a; hint: check the name and project (`iap-ssh list --project P` shows the instances)"
    );
}

#[test]
fn dry_run_prints_a_command_that_runs_when_pasted_and_changes_nothing() {
    let f = Fleet::new(|_| {});
    // Publish first (a dry run never does), then paste the dry runs.
    let out = f
        .iap_ssh()
        .args(["ssh", "vm-blocked.europe-west1-b.iap-proj-b", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let snapshot = f.fake.state.cloud.lock().unwrap().snapshot();
    let kh = std::fs::read(f.ssh_dir().join("google_compute_known_hosts")).unwrap();

    let out = f
        .iap_ssh()
        .args([
            "ssh",
            "--dry-run",
            "vm-blocked.europe-west1-b.iap-proj-b",
            "--",
            "echo",
            "pasted-ok",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.starts_with("ssh -i "), "{line}");
    assert!(line.contains("'ProxyCommand="), "{line}");
    assert!(line.contains("StrictHostKeyChecking=yes"), "{line}");
    let pasted = f.tool("sh").arg("-c").arg(line.trim()).output().unwrap();
    assert!(pasted.status.success(), "{line}\n{}", stderr_of(&pasted));
    assert_eq!(String::from_utf8_lossy(&pasted.stdout).trim(), "pasted-ok");

    // scp --dry-run, pasted, copies the file.
    let shared = f.shared_dir();
    let src = f.tmp.path().join("a file.bin");
    random_file(&src, 1 << 20, 3);
    let dest = shared.join("copy.bin");
    let out = f
        .iap_ssh()
        .args(["scp", "--dry-run"])
        .arg(&src)
        .arg(format!(
            "vm-blocked.europe-west1-b.iap-proj-b:{}",
            dest.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.contains("'") && line.contains("a file.bin"), "{line}");
    let pasted = f.tool("sh").arg("-c").arg(line.trim()).output().unwrap();
    assert!(pasted.status.success(), "{line}\n{}", stderr_of(&pasted));
    assert_same_file(&src, &dest);

    assert_eq!(
        f.fake.state.cloud.lock().unwrap().snapshot(),
        snapshot,
        "dry runs wrote nothing"
    );
    assert_eq!(
        std::fs::read(f.ssh_dir().join("google_compute_known_hosts")).unwrap(),
        kh
    );

    // A dry run from an empty home creates nothing.
    let g = Fleet::new(|_| {});
    let snap = g.fake.state.cloud.lock().unwrap().snapshot();
    let out = g
        .iap_ssh()
        .args(["ssh", "--dry-run", "--project", PROJ_A, "vm-oslogin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{OSLOGIN_USER}@vm-oslogin")));
    assert!(!g.ssh_dir().exists());
    assert!(!g.home.join(".cache").exists(), "not even the zone cache");
    assert_eq!(g.fake.state.cloud.lock().unwrap().snapshot(), snap);
}

#[test]
fn scp_and_rsync_through_print_rsh_as_the_os_login_user() {
    let f = Fleet::new(|_| {});
    let shared = f.shared_dir();
    let src = f.tmp.path().join("up.bin");
    random_file(&src, 2 << 20, 11);
    let remote = shared.join("remote.bin");
    let out = f
        .iap_ssh()
        .args(["scp", "--project", PROJ_A])
        .arg(&src)
        .arg(format!("vm-oslogin:{}", remote.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_same_file(&src, &remote);
    let owner = std::process::Command::new("stat")
        .args(["-c", "%U"])
        .arg(&remote)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&owner.stdout).trim(), OSLOGIN_USER);

    let back = f.tmp.path().join("back.bin");
    let out = f
        .iap_ssh()
        .args(["scp", "--project", PROJ_A])
        .arg(format!("vm-oslogin:{}", remote.display()))
        .arg(&back)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_same_file(&src, &back);

    let out = f
        .iap_ssh()
        .args(["ssh", "--print-rsh", "--project", PROJ_A, "vm-oslogin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rsh = String::from_utf8(out.stdout).unwrap();
    assert!(
        rsh.trim_end().ends_with(&format!("-l {OSLOGIN_USER}")),
        "{rsh}"
    );
    let dir = shared.join("tree");
    let out = f
        .tool("rsync")
        .args(["-a", "-e", rsh.trim()])
        .arg(f.tmp.path().join("up.bin"))
        .arg(format!("vm-oslogin:{}/", dir.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "rsync: {}", stderr_of(&out));
    assert_same_file(&src, &dir.join("up.bin"));

    // Two different instances in one scp are refused.
    let out = f
        .iap_ssh()
        .args(["scp", "--project", PROJ_A, "vm-oslogin:/a", "vm-project:/b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ambiguous_names_list_the_candidates() {
    let f = Fleet::new(|c| {
        c.instances
            .push(fake_gcp::Instance::new(PROJ_A, "us-east1-b", "twin", "11"));
        c.instances.push(fake_gcp::Instance::new(
            PROJ_A,
            "us-central1-b",
            "twin",
            "12",
        ));
    });
    let out = f
        .iap_ssh()
        .args(["ssh", "--project", PROJ_A, "twin", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr_of(&out).trim(),
        "iap-ssh: `twin` names 2 instances in project iap-proj-a: twin.us-central1-b.iap-proj-a, twin.us-east1-b.iap-proj-a; hint: use NAME.ZONE.PROJECT or --zone"
    );
}

#[test]
fn gcloud_active_configuration_supplies_project_and_zone() {
    let f = Fleet::new(|_| {});
    let g = f.home.join(".config/gcloud");
    std::fs::create_dir_all(g.join("configurations")).unwrap();
    std::fs::write(g.join("active_config"), "work\n").unwrap();
    std::fs::write(
        g.join("configurations/config_work"),
        format!(
            "[core]\nproject = {PROJ_B}\naccount = {ACCOUNT}\n\n[compute]\nzone = europe-west1-b\n"
        ),
    )
    .unwrap();
    std::fs::write(
        g.join("configurations/config_default"),
        "[core]\nproject = elsewhere-proj\n",
    )
    .unwrap();
    let out = f
        .iap_ssh()
        .args(["ssh", "vm-blocked", "whoami"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), LOCAL_USER);
    assert_eq!(
        f.count("aggregatedList"),
        0,
        "zone from the configuration: no search"
    );
    // CLOUDSDK_CORE_PROJECT wins over the file; a wrong default zone falls
    // back to a search.
    let out = f
        .iap_ssh()
        .env("CLOUDSDK_CORE_PROJECT", PROJ_A)
        .args(["ssh", "--dry-run", "vm-project"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("--project iap-proj-a --zone us-central1-b vm-project")
    );
    // `setup` takes its default project from the same file.
    let out = f.iap_ssh().args(["setup", "--dry-run"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("+Host vm-blocked vm-blocked.europe-west1-b.iap-proj-b")
    );
}

#[test]
fn list_shows_alias_zone_status_user_and_key_place() {
    let f = Fleet::new(|_| {});
    let list = |f: &Fleet| f.list_json(&[], &["--project", PROJ_A, "--project", PROJ_B]);
    let before = list(&f);
    assert_eq!(before.len(), 6);
    assert!(before.iter().all(|r| r["key_published"] == false));
    f.setup(&["-q"]);
    let rows = list(&f);
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["alias"] == name)
            .unwrap_or_else(|| panic!("{name}: {rows:?}"))
    };
    assert_eq!(row("vm-oslogin")["user"], OSLOGIN_USER);
    assert_eq!(row("vm-oslogin")["key_source"], "os-login");
    assert_eq!(row("vm-blocked")["key_source"], "instance");
    assert_eq!(row("vm-project")["user"], LOCAL_USER);
    assert_eq!(row("stopped")["status"], "TERMINATED");
    assert_eq!(row("web.us-central1-a.iap-proj-a")["zone"], "us-central1-a");
    for n in ["vm-oslogin", "vm-project", "vm-blocked"] {
        assert_eq!(row(n)["key_published"], true, "{n}");
    }
    let out = f
        .iap_ssh()
        .args(["list", "--project", PROJ_A])
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("ALIAS"), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("vm-oslogin ")
            && l.contains(OSLOGIN_USER)
            && l.contains("os-login (published)")),
        "{table}"
    );
}
