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
    let rows = f.list_json(&[], &["--project", PROJ_B]);
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

const CERT_VM: &str = "vm-cert";
const CERT_ID: &str = "7000000000000000022";

/// The fleet plus `vm-cert`, whose sshd trusts only certificates signed by
/// the fake's OS Login CA (`TrustedUserCAKeys`, no authorized keys).
fn cert_fleet() -> Fleet {
    Fleet::with_root(|c, root| {
        let ok = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "oslogin-ca", "-f"])
            .arg(root.join("ca"))
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let g = GuestVm::new(root, CERT_VM);
        let cfg = std::fs::read_to_string(g.dir.join("sshd_config")).unwrap();
        let cfg = cfg.replace(
            &format!("AuthorizedKeysFile {}/keys/%u", g.dir.display()),
            &format!(
                "AuthorizedKeysFile none\nTrustedUserCAKeys {}",
                root.join("ca.pub").display()
            ),
        );
        assert!(cfg.contains("TrustedUserCAKeys"), "{cfg}");
        std::fs::write(g.dir.join("sshd_config"), cfg).unwrap();
        let mut vm = g.instance(PROJ_A, "us-central1-c", CERT_ID);
        vm.metadata.insert("enable-oslogin".into(), "TRUE".into());
        vm.metadata
            .insert("enable-oslogin-certificates".into(), "TRUE".into());
        c.instances.push(vm);
        c.oslogin_ca_key = Some(root.join("ca"));
    })
}

fn signs(f: &Fleet) -> usize {
    f.count("oslogin sign project=iap-proj-a region=us-central1 instance=projects/iap-proj-a/zones/us-central1-c/instances/7000000000000000022 principal=")
}

#[test]
fn certificate_vms_get_a_certificate_and_ssh_renews_it_in_time() {
    let f = cert_fleet();
    let out = f.setup(&[]);
    let err = stderr_of(&out);
    assert!(
        err.contains("OS Login certificate: written (1 VM)"),
        "{err}"
    );
    let cert = f.ssh_dir().join(format!(
        "google_compute_engine_cert/iap-proj-a_us-central1-c_{CERT_ID}-cert.pub"
    ));
    let first = std::fs::read_to_string(&cert).unwrap();
    assert!(
        first.starts_with("ssh-ed25519-cert-v01@openssh.com "),
        "{first}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cert).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let cfg = std::fs::read_to_string(f.config_path()).unwrap();
    assert!(
        cfg.contains(&format!("    CertificateFile {}\n", cert.display())),
        "{cfg}"
    );
    assert!(
        cfg.contains(&format!(
            "Match host {CERT_VM},{CERT_VM}.us-central1-c.iap-proj-a exec \""
        )),
        "{cfg}"
    );
    assert!(cfg.contains(" oslogin-cert --project iap-proj-a --zone us-central1-c --instance vm-cert --instance-id 7000000000000000022 --key-file "), "{cfg}");
    assert_eq!(signs(&f), 1);

    // The VM takes certificates only: this login proves the certificate.
    f.wait_keys(CERT_VM, OSLOGIN_USER);
    assert_eq!(f.ssh_ok(CERT_VM, "whoami").trim(), OSLOGIN_USER);
    assert_eq!(signs(&f), 1, "a good certificate costs no API call");

    // An expired certificate (as after a night): ssh's config run renews it
    // before ssh loads it, and the login works.
    let key_pub = f.ssh_dir().join("google_compute_engine.pub");
    let tmp = f.tmp.path().join("old");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::copy(&key_pub, tmp.join("k.pub")).unwrap();
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(f.tmp.path().join("ca"))
        .args(["-I", "old", "-n", OSLOGIN_USER, "-V", "-2h:-1h"])
        .arg(tmp.join("k.pub"))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::fs::copy(tmp.join("k-cert.pub"), &cert).unwrap();
    assert_eq!(f.ssh_ok(CERT_VM, "whoami").trim(), OSLOGIN_USER);
    assert_eq!(signs(&f), 2);
    assert_ne!(std::fs::read_to_string(&cert).unwrap(), first);

    // iap-ssh ssh passes the certificate too.
    let out = f
        .iap_ssh()
        .args([
            "ssh",
            "--dry-run",
            "vm-cert.us-central1-c.iap-proj-a",
            "true",
        ])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        line.contains(&format!("-o CertificateFile={}", cert.display())),
        "{line}"
    );
    let out = f
        .iap_ssh()
        .args(["ssh", "vm-cert.us-central1-c.iap-proj-a", "--", "whoami"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), OSLOGIN_USER);
}

/// An `sk-ssh-ed25519@openssh.com` public key line (a made-up key: only
/// its form matters here; no hardware is involved).
fn sk_public_line() -> String {
    use base64::Engine;
    let mut blob = Vec::new();
    for part in [
        &b"sk-ssh-ed25519@openssh.com"[..],
        &[7u8; 32][..],
        &b"ssh:"[..],
    ] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    format!(
        "sk-ssh-ed25519@openssh.com {} alice@yubikey",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

#[test]
fn security_key_vms_use_the_users_sk_key_or_say_what_to_create() {
    let sk_fleet = || {
        Fleet::new(|c| {
            let vm = c.instance_mut("vm-oslogin");
            vm.metadata
                .insert("enable-oslogin-sk".into(), "TRUE".into());
            vm.metadata
                .insert("enable-oslogin-2fa".into(), "TRUE".into());
        })
    };
    let block = |cfg: &str, name: &str| -> String {
        cfg.split("\n\n")
            .find(|b| b.contains(&format!("Host {name} ")))
            .unwrap()
            .to_string()
    };
    // No security key on this machine: one line saying what to create.
    let f = sk_fleet();
    let err = stderr_of(&f.setup(&[]));
    assert!(
        err.contains("security keys: vm-oslogin accept only a security key registered with your Google account (enable-oslogin-sk), and none was found: create one with `ssh-keygen -t ed25519-sk"),
        "{err}"
    );
    // One: that VM's block offers it; the others keep the usual key.
    let f = sk_fleet();
    std::fs::create_dir_all(f.ssh_dir()).unwrap();
    let sk = f.ssh_dir().join("id_ed25519_sk");
    std::fs::write(
        &sk,
        "-----BEGIN OPENSSH PRIVATE KEY-----\n(a key handle)\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(
        f.ssh_dir().join("id_ed25519_sk.pub"),
        sk_public_line() + "\n",
    )
    .unwrap();
    let err = stderr_of(&f.setup(&[]));
    assert!(!err.contains("security keys:"), "{err}");
    let cfg = std::fs::read_to_string(f.config_path()).unwrap();
    assert!(
        block(&cfg, "vm-oslogin").contains(&format!("    IdentityFile {}\n", sk.display())),
        "{cfg}"
    );
    assert!(
        block(&cfg, "vm-project").contains("google_compute_engine\n"),
        "{cfg}"
    );
    // 2-step verification: nothing in the section suppresses the
    // keyboard-interactive prompts sshd adds after the key.
    for option in [
        "BatchMode",
        "KbdInteractiveAuthentication",
        "ChallengeResponseAuthentication",
        "PreferredAuthentications",
        "NumberOfPasswordPrompts",
    ] {
        assert!(!cfg.contains(option), "{option} in\n{cfg}");
    }
}

#[test]
fn two_step_verification_prompts_pass_through_the_tunnel() {
    // A VM whose sshd asks a keyboard-interactive question after the key
    // (PAM service iap-ssh-test-2fa from scripts/install-test-deps.sh: the
    // code 246810), as OS Login's 2-step verification does.
    assert!(
        std::path::Path::new("/etc/pam.d/iap-ssh-test-2fa").exists(),
        "run scripts/install-test-deps.sh (it installs the test PAM service)"
    );
    let f = Fleet::with_root(|c, root| {
        let g = GuestVm::new(root, "vm-2fa");
        let cfg = std::fs::read_to_string(g.dir.join("sshd_config")).unwrap();
        let cfg = cfg
            .replace(
                "KbdInteractiveAuthentication no",
                "KbdInteractiveAuthentication yes",
            )
            .replace(
                "UsePAM no",
                "UsePAM yes\nAuthenticationMethods publickey,keyboard-interactive",
            );
        assert!(cfg.contains("AuthenticationMethods"), "{cfg}");
        std::fs::write(g.dir.join("sshd_config"), cfg).unwrap();
        // sshd takes its PAM service name from the name it runs under.
        let sshd = root.join("iap-ssh-test-2fa");
        std::os::unix::fs::symlink("/usr/sbin/sshd", &sshd).unwrap();
        let mut vm = g.instance(PROJ_A, "us-central1-f", "7000000000000000023");
        if let Some(fake_gcp::Backend::Exec(argv)) = vm.ports.get_mut(&22) {
            argv[0] = sshd.display().to_string();
        }
        vm.metadata.insert("enable-oslogin".into(), "TRUE".into());
        vm.metadata
            .insert("enable-oslogin-2fa".into(), "TRUE".into());
        c.instances.push(vm);
    });
    f.setup(&[]);
    f.wait_keys("vm-2fa", OSLOGIN_USER);
    let prompts = f.tmp.path().join("prompts");
    let ask = |code: &str| {
        let script = f.tmp.path().join(format!("askpass-{code}"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$1\" >> {}\necho {code}\n",
                prompts.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        // As a person at a terminal would answer: ssh asks through
        // SSH_ASKPASS when it has no terminal.
        f.tool("ssh")
            .arg("-F")
            .arg(f.config_path())
            .args(["-o", "NumberOfPasswordPrompts=1", "vm-2fa", "whoami"])
            .env("SSH_ASKPASS", &script)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .write_stdin("")
            .output()
            .unwrap()
    };
    let out = ask("246810");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), OSLOGIN_USER);
    let asked = std::fs::read_to_string(&prompts).unwrap();
    assert!(
        asked.contains("Password:"),
        "the VM's question reached the user: {asked}"
    );
    let out = ask("999999");
    assert_eq!(out.status.code(), Some(255), "a wrong code is refused");
}
