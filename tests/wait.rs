//! `--wait`: a VM that is still booting (fake-gcp's `boot_ms`: STAGING,
//! tunnels closed with 4003, then RUNNING) is waited for by `proxy` and
//! `ssh`; without `--wait` failures stay fast; a refusal is never retried.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The fleet with `vm-project` booting for `ms` after the fake starts.
fn booting(ms: u64) -> Fleet {
    Fleet::new(|c| {
        let vm = c.instance_mut("vm-project");
        vm.status = "STAGING".into();
        vm.boot_ms = Some(ms);
    })
}

/// `iap-ssh proxy [ARGS] … stopped 22`: a VM that never becomes ready.
fn proxy_to_stopped(f: &Fleet, args: &[&str]) -> (std::process::Output, Duration) {
    let t = Instant::now();
    let out = f
        .iap_ssh()
        .arg("proxy")
        .args(args)
        .args([
            "--project",
            PROJ_B,
            "--zone",
            "europe-west1-c",
            "stopped",
            "22",
        ])
        .write_stdin("")
        .output()
        .unwrap();
    (out, t.elapsed())
}

fn not_ready_lines(out: &std::process::Output) -> usize {
    stderr_of(out)
        .lines()
        .filter(|l| l.contains("is not ready yet"))
        .count()
}

#[test]
fn proxy_waits_for_a_booting_vm_and_only_then() {
    let f = booting(5000);
    // Still booting: refused at once without --wait...
    let t = Instant::now();
    let out = f.banner(&[], &[], &[]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(f.count("instance vm-project booted"), 0, "booted too early");
    // ...and reached with it, once it is up, saying so once.
    let out = f.banner_with(&[], &["--wait", "60s"], &[], &[]);
    assert_banner(&out);
    assert_eq!(not_ready_lines(&out), 1, "{}", stderr_of(&out));
    assert_eq!(f.count("instance vm-project booted"), 1);
    assert!(t.elapsed() < Duration::from_secs(40), "{:?}", t.elapsed());

    // A VM that stays down: no --wait, one line at once...
    let (out, took) = proxy_to_stopped(&f, &[]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(stderr_of(&out).lines().count(), 1, "{}", stderr_of(&out));
    // ...with --wait, tries for the whole time given (the last attempt as
    // it ends), says so once, then the real error.
    let (out, took) = proxy_to_stopped(&f, &["--wait", "4s"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(15),
        "{took:?}"
    );
    assert_eq!(not_ready_lines(&out), 1, "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("close 4003 'failed to connect to backend'"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_refusal_is_never_waited_for() {
    let f = Fleet::new(|c| c.iap_access = false);
    let t = Instant::now();
    let out = f.banner(&[], &[], &[]);
    assert_eq!(out.status.code(), Some(4));
    let out = f.banner_with(&[], &["--wait", "5m"], &[], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert_eq!(not_ready_lines(&out), 0, "{}", stderr_of(&out));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[test]
fn ssh_waits_for_the_vm_to_boot() {
    let f = booting(4000);
    let out = f
        .iap_ssh()
        .args([
            "ssh",
            "--wait",
            "90s",
            "--project",
            PROJ_A,
            "--zone",
            "us-central1-b",
            "vm-project",
            "--",
            "echo booted",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "booted",
        "{}",
        stderr_of(&out)
    );
    assert!(
        stderr_of(&out).contains("vm-project is STAGING; waiting for it to boot"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(f.count("instance vm-project booted"), 1);
    // The ProxyCommand it runs waits too (for sshd after the boot).
    let out = f
        .iap_ssh()
        .args(["ssh", "--dry-run", "--wait", "2m", "--project", PROJ_A])
        .args(["--zone", "us-central1-b", "vm-project", "--", "true"])
        .output()
        .unwrap();
    let cmd = String::from_utf8_lossy(&out.stdout);
    assert!(
        cmd.contains(" proxy --wait=120s --project iap-proj-a"),
        "{cmd}"
    );
}

#[test]
fn an_overloaded_relay_is_waited_for() {
    // The first two upgrades answered 503 and 429.
    let f = Fleet::new(|c| c.faults.connect_http = vec![503, 429]);
    let out = f.banner(&[], &[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let out = f.banner_with(&[], &["--wait", "60"], &[], &[]);
    assert_banner(&out);
    assert_eq!(not_ready_lines(&out), 1, "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("(HTTP 429)"),
        "{}",
        stderr_of(&out)
    );
}
