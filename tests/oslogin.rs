//! OS Login beyond one plain key: POSIX accounts per project, security
//! keys, 2-step verification, certificates.

mod common;

use common::*;

/// The fleet plus an OS Login VM in the second project, where the
/// account's POSIX user has another name.
fn fleet() -> Fleet {
    Fleet::with_root(|c, root| {
        let mut vm = GuestVm::new(root, "vm-oslogin-b").instance(
            PROJ_B,
            "europe-west1-b",
            "7000000000000000021",
        );
        vm.metadata.insert("enable-oslogin".into(), "TRUE".into());
        c.instances.push(vm);
        c.oslogin_usernames
            .insert(PROJ_B.into(), "iaptest_alice_b".into());
    })
}

#[test]
fn each_project_gets_its_own_posix_user() {
    let f = fleet();
    let out = f.setup(&[]);
    let err = stderr_of(&out);
    assert!(
        err.contains(&format!(
            "OS Login ({ACCOUNT} as {OSLOGIN_USER}, iaptest_alice_b in {PROJ_B}): written (2 VMs)"
        )),
        "{err}"
    );
    let cfg = std::fs::read_to_string(f.config_path()).unwrap();
    let block = |name: &str| -> String {
        cfg.split("\n\n")
            .find(|b| b.contains(&format!("Host {name} ")))
            .unwrap()
            .to_string()
    };
    assert!(
        block("vm-oslogin").contains(&format!("    User {OSLOGIN_USER}\n")),
        "{cfg}"
    );
    assert!(
        block("vm-oslogin-b").contains("    User iaptest_alice_b\n"),
        "{cfg}"
    );
    f.wait_keys("vm-oslogin-b", "iaptest_alice_b");
    assert_eq!(f.ssh_ok("vm-oslogin-b", "whoami").trim(), "iaptest_alice_b");
    f.wait_keys("vm-oslogin", OSLOGIN_USER);
    assert_eq!(f.ssh_ok("vm-oslogin", "whoami").trim(), OSLOGIN_USER);

    // list and ssh agree.
    let out = f
        .iap_ssh()
        .args(["list", "--project", PROJ_B, "--format", "json"])
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = rows.iter().find(|r| r["name"] == "vm-oslogin-b").unwrap();
    assert_eq!(row["user"], "iaptest_alice_b");
    let out = f
        .iap_ssh()
        .args([
            "ssh",
            "vm-oslogin-b.europe-west1-b.iap-proj-b",
            "--",
            "whoami",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "iaptest_alice_b"
    );
}
