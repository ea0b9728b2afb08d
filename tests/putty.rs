//! `setup --putty` with the real PuTTY tools (Debian's putty-tools 0.78):
//! puttygen reads the `.ppk` as the same key, `plink -batch -load VM`
//! reaches the VM's sshd through a ProxyMethod=5 session running `iap-ssh
//! proxy` and the fake relay, with the host key pinned (a changed key is
//! refused); the user's own sessions are never touched, and `setup
//! --remove` takes away iap-ssh's.

mod common;

use std::path::PathBuf;
use std::process::Command as StdCommand;

use common::*;
use fake_gcp::Backend;

fn sessions(f: &Fleet) -> PathBuf {
    // No ~/.config/putty: PuTTY reads ~/.putty/sessions.
    f.home.join(".putty/sessions")
}

fn plink(f: &Fleet, session: &str, cmd: &str) -> std::process::Output {
    f.tool("plink")
        .args(["-batch", "-load", session, cmd])
        .write_stdin("")
        .output()
        .unwrap()
}

/// vm-project's sshd directory (its host key lives there).
fn vm_dir(f: &Fleet) -> PathBuf {
    let i = f.fake.state.config.instance("vm-project");
    let Backend::Exec(argv) = &i.ports[&22] else {
        panic!("sshd")
    };
    PathBuf::from(argv.last().unwrap())
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn plink_reaches_the_vms_through_saved_sessions_with_pinned_host_keys() {
    let f = Fleet::new(|_| {});
    // A session of the user's own that happens to have a VM's name.
    std::fs::create_dir_all(sessions(&f)).unwrap();
    let theirs = "HostName=bastion.example.com\nUserName=me\n";
    std::fs::write(sessions(&f).join("web.us-central1-a.iap-proj-a"), theirs).unwrap();
    let reg = f.tmp.path().join("iap.reg");
    let out = f.setup(&["--putty", "--putty-reg", reg.to_str().unwrap()]);
    let err = stderr_of(&out);
    assert!(err.contains("PuTTY: 6 sessions in"), "{err}");
    assert!(
        err.contains("a session named \"web.us-central1-a.iap-proj-a\" exists and is not iap-ssh's; left as it is"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(sessions(&f).join("web.us-central1-a.iap-proj-a")).unwrap(),
        theirs
    );

    // puttygen reads the .ppk as the same key.
    let key = f.ssh_dir().join("google_compute_engine");
    let ppk = f.ssh_dir().join("google_compute_engine.ppk");
    let out = StdCommand::new("puttygen")
        .arg(&ppk)
        .arg("-L")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pub_line = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pub_line.trim());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&ppk).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let s = std::fs::read_to_string(sessions(&f).join("vm-project")).unwrap();
    assert!(
        s.contains("\nHostName=compute.7000000000000000002\n"),
        "{s}"
    );
    assert!(s.contains("\nProxyMethod=5\n"), "{s}");
    assert!(
        s.contains(" proxy --project iap-proj-a --zone us-central1-b vm-project %port\n"),
        "{s}"
    );
    assert!(s.contains("\nSSHManualHostKeys=SHA256:"), "{s}");
    let r = std::fs::read_to_string(&reg).unwrap();
    assert!(
        r.contains("[HKEY_CURRENT_USER\\Software\\SimonTatham\\PuTTY\\Sessions\\vm-project]\r\n"),
        "{r}"
    );

    f.wait_keys("vm-project", LOCAL_USER);
    f.wait_keys("vm-oslogin", OSLOGIN_USER);
    let out = plink(&f, "vm-project", "whoami");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), LOCAL_USER);
    let out = plink(&f, "vm-oslogin", "whoami");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), OSLOGIN_USER);
    // PuTTY kept no host-key cache: the pinned keys are the only truth.
    assert!(!f.home.join(".putty/sshhostkeys").exists());

    // The VM's host key changes: plink refuses it.
    let d = vm_dir(&f);
    std::fs::remove_file(d.join("hostkey")).unwrap();
    std::fs::remove_file(d.join("hostkey.pub")).unwrap();
    let st = StdCommand::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(d.join("hostkey"))
        .status()
        .unwrap();
    assert!(st.success());
    let out = plink(&f, "vm-project", "whoami");
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("Host key not in manually configured list"),
        "{}",
        stderr_of(&out)
    );

    // Re-running writes nothing new; --remove takes ours away only.
    let err = stderr_of(&f.setup(&["--putty"]));
    assert!(err.contains("(0 written, 5 unchanged, 0 removed)"), "{err}");
    let out = f.iap_ssh().args(["setup", "--remove"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("removed 5 PuTTY sessions"),
        "{}",
        stderr_of(&out)
    );
    let left: Vec<String> = std::fs::read_dir(sessions(&f))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["web.us-central1-a.iap-proj-a"]);
}

#[test]
fn a_passphrase_protected_key_gets_the_puttygen_command() {
    let f = Fleet::new(|_| {});
    std::fs::create_dir_all(f.ssh_dir()).unwrap();
    let key = f.ssh_dir().join("google_compute_engine");
    let st = StdCommand::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "secret words", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let out = f
        .iap_ssh()
        .args(["setup", "--project", PROJ_A, "--putty"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let line = one_line(&out);
    assert!(
        line.contains("the key is protected by a passphrase"),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "puttygen {} -o {}.ppk",
            key.display(),
            key.display()
        )),
        "{line}"
    );
    // Stopped before anything was changed.
    assert!(!f.config_path().exists());
    assert_eq!(f.fake.state.cloud.lock().unwrap().metadata_writes, 0);
}

#[test]
fn iap_ssh_ssh_putty_runs_plink_with_the_same_pinning() {
    let f = Fleet::new(|_| {});
    let vm = "vm-project.us-central1-b.iap-proj-a";
    let out = f
        .iap_ssh()
        .args(["ssh", "--putty", vm, "--", "whoami"])
        .write_stdin("")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), LOCAL_USER);
    let out = f
        .iap_ssh()
        .args(["ssh", "--putty", "--dry-run", vm, "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    let ppk = f.ssh_dir().join("google_compute_engine.ppk");
    assert!(
        line.starts_with(&format!(
            "plink -ssh -noagent -P 22 -l {LOCAL_USER} -i {} -hostkey SHA256:",
            ppk.display()
        )),
        "{line}"
    );
    assert!(line.contains(" proxy --project iap-proj-a --zone us-central1-b vm-project %port' compute.7000000000000000002 true\n"), "{line}");
}
