//! `setup --control-master`: each Host block shares one connection per VM
//! (ssh's ControlMaster), so later sessions open no new tunnel; a caller
//! that captures ssh's output is not kept waiting by the background master.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fake_gcp::state::Stats;

/// `ssh -F CONFIG ARGS…` with stdout and stderr captured through pipes,
/// as a script would (`out=$(ssh vm cmd 2>&1)`): (status, stdout, stderr,
/// how long until both pipes closed).
fn ssh_captured(f: &Fleet, args: &[&str]) -> (i32, String, String, Duration) {
    let mut c = Command::new("ssh");
    isolate(&mut c, &f.fake, &f.home, Some(&f.fake.info.access_token));
    c.env("LOGNAME", LOCAL_USER).env("USER", LOCAL_USER);
    c.arg("-F")
        .arg(f.config_path())
        .args(["-o", "BatchMode=yes"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = c.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    // Read both pipes to EOF on threads, bounded: a pipe held open by a
    // background process shows as a timeout here.
    let (tx, rx) = std::sync::mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let _ = tx.send((0, s));
    });
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        let _ = tx2.send((1, s));
    });
    let (mut so, mut se) = (String::new(), String::new());
    for _ in 0..2 {
        let (which, s) = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("ssh {args:?}: a pipe stayed open for 60 s"));
        if which == 0 {
            so = s;
        } else {
            se = s;
        }
    }
    let took = t.elapsed();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (code, so, se, took)
}

#[test]
fn one_tunnel_per_vm_and_captured_output_is_not_held() {
    let f = Fleet::new(|_| {});
    f.setup(&["--control-master"]);
    let cfg = std::fs::read_to_string(f.config_path()).unwrap();
    let dir = f.ssh_dir().join("iap-ssh");
    for want in [
        "    ControlMaster auto\n".to_string(),
        format!("    ControlPath {}/%C\n", dir.display()),
        "    ControlPersist 10m\n".to_string(),
    ] {
        assert!(cfg.contains(&want), "{want:?} in\n{cfg}");
    }
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    f.wait_keys("vm-project", LOCAL_USER);

    let (code, out, err, _) = ssh_captured(&f, &["vm-project", "echo one"]);
    assert_eq!((code, out.trim()), (0, "one"), "{err}");
    let connects = Stats::get(&f.fake.state.stats.connects);
    let (code, out, err, took) = ssh_captured(&f, &["vm-project", "echo two"]);
    assert_eq!((code, out.trim()), (0, "two"), "{err}");
    assert_eq!(
        Stats::get(&f.fake.state.stats.connects),
        connects,
        "the second session rode the master's tunnel"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    let (code, _, err, _) = ssh_captured(&f, &["-O", "check", "vm-project"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Master running"), "{err}");
    let (code, _, err, _) = ssh_captured(&f, &["-O", "exit", "vm-project"]);
    assert_eq!(code, 0, "{err}");

    // Another lifetime; a bad one is refused.
    f.setup(&["--control-master=90s"]);
    let cfg = std::fs::read_to_string(f.config_path()).unwrap();
    assert!(cfg.contains("    ControlPersist 90s\n"), "{cfg}");
    let out = f
        .iap_ssh()
        .args(["setup", "--project", PROJ_A, "--control-master=soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
