//! Inputs that once went wrong, end to end: ECDSA and security-key key
//! files, an iap-ssh path with spaces and quotes under rsync's `-e`, and a
//! VM whose SSH banner carries terminal escapes.

mod common;

use std::process::Command as StdCommand;

use common::*;
use fake_gcp::{Backend, Instance};

#[test]
fn an_ecdsa_key_file_is_published_and_logs_in_everywhere() {
    let f = Fleet::new(|_| {});
    let key = f.tmp.path().join("id_ecdsa");
    let st = StdCommand::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-b", "384", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    f.setup(&["--key-file", key.to_str().unwrap()]);
    let v = f.fake.state.cloud.lock().unwrap().projects[PROJ_A].items["ssh-keys"].clone();
    assert!(v.contains(":ecdsa-sha2-nistp384 "), "{v}");
    f.wait_keys("vm-oslogin", OSLOGIN_USER);
    f.wait_keys("vm-project", LOCAL_USER);
    for (vm, user) in [("vm-oslogin", OSLOGIN_USER), ("vm-project", LOCAL_USER)] {
        assert_eq!(f.ssh_ok(vm, "whoami").trim(), user, "{vm}");
    }
}

/// A security-key public half in OpenSSH's wire format (no hardware token
/// here), beside a stub private file.
fn security_key(dir: &std::path::Path) -> std::path::PathBuf {
    use base64::Engine;
    let mut blob = vec![];
    for part in [
        &b"sk-ssh-ed25519@openssh.com"[..],
        &[9u8; 32][..],
        &b"ssh:"[..],
    ] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(blob);
    let p = dir.join("id_ed25519_sk");
    std::fs::write(&p, "stub: the private half is on a token\n").unwrap();
    std::fs::write(
        dir.join("id_ed25519_sk.pub"),
        format!("sk-ssh-ed25519@openssh.com {b64} me@laptop\n"),
    )
    .unwrap();
    p
}

#[test]
fn a_security_key_goes_to_metadata_and_os_login_says_why_not() {
    let f = Fleet::new(|_| {});
    let key = security_key(f.tmp.path());
    let out = f.setup(&["--key-file", key.to_str().unwrap()]);
    let summary = stderr_of(&out);
    assert!(
        summary.contains(
            "OS Login (iaptest.alice@example.com as iaptest_alice_example_com): not imported"
        ),
        "{summary}"
    );
    assert!(summary.contains("enable-oslogin-sk"), "{summary}");
    let v = f.fake.state.cloud.lock().unwrap().projects[PROJ_A].items["ssh-keys"].clone();
    assert!(v.contains(":sk-ssh-ed25519@openssh.com "), "{v}");
    assert_eq!(f.count("oslogin import"), 0, "never sent to OS Login");
    // The Host blocks use it.
    let config = std::fs::read_to_string(f.config_path()).unwrap();
    assert!(config.contains(&format!("IdentityFile {}", key.display())));
}

#[test]
fn print_rsh_survives_rsyncs_parser_with_an_odd_exe_path() {
    let f = Fleet::new(|_| {});
    let shared = f.shared_dir();
    let dir = f.tmp.path().join("my \"odd\" dir's bin");
    std::fs::create_dir_all(&dir).unwrap();
    // The binary itself there (not a symlink), so every version writes
    // this path.
    let exe = dir.join("iap-ssh");
    if std::fs::hard_link(iap_ssh_bin(), &exe).is_err() {
        std::fs::copy(iap_ssh_bin(), &exe).unwrap();
    }
    let mut c = StdCommand::new(&exe);
    isolate(&mut c, &f.fake, &f.home, Some(&f.fake.info.access_token));
    let out = c
        .env("LOGNAME", LOCAL_USER)
        .args(["ssh", "--print-rsh", "vm-project.us-central1-b.iap-proj-a"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rsh = String::from_utf8(out.stdout).unwrap();
    assert!(rsh.contains("my \"\"odd\"\" dir'\\''s bin"), "{rsh}");
    f.wait_keys("vm-project", LOCAL_USER);
    let src = f.tmp.path().join("up.bin");
    random_file(&src, 1 << 20, 3);
    let dest = shared.join("tree");
    // As in `rsync -e "$(iap-ssh ssh --print-rsh VM)"`.
    let out = f
        .tool("rsync")
        .args(["-a", "-e", rsh.trim()])
        .arg(&src)
        .arg(format!("vm-project:{}/", dest.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "rsync: {}", stderr_of(&out));
    assert_same_file(&src, &dest.join("up.bin"));
}

#[test]
fn doctor_shows_a_hostile_banner_escaped() {
    let f = Fleet::new(|c| {
        let mut vm = Instance::new(PROJ_A, "us-central1-a", "evil", "7000000000000000099");
        vm.ports.insert(
            22,
            Backend::Exec(vec![
                "printf".into(),
                "SSH-2.0-evil\\033]0;owned\\007\\033[2J\\r\\n".into(),
            ]),
        );
        c.instances.push(vm);
    });
    let out = f
        .iap_ssh()
        .args(["doctor", "evil.us-central1-a.iap-proj-a"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    assert!(
        text.contains("tunnel to port 22: SSH-2.0-evil\\u{1b}]0;owned\\u{7}\\u{1b}[2J"),
        "{text}"
    );
}
