//! End to end: real ssh, scp (SFTP and legacy), rsync and sftp through
//! `iap-ssh proxy`, the fake relay and a real sshd.

mod common;

use common::*;

const SIZE: usize = 64 * 1024 * 1024;

#[test]
fn ssh_runs_a_command() {
    let w = World::new();
    let out = w
        .tool("ssh")
        .args(w.ssh_opts(&w.proxy_command()))
        .arg(w.remote())
        .arg("echo ok")
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh failed: {}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    // ssh does not wait for its ProxyCommand to exit: give it a moment.
    // The session ends with a Close from iap-ssh: 1000 when ssh hangs up
    // first, or the echo of the relay's 4010 when sshd's end arrives first
    // (a closing handshake either way, never a dropped connection).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !w
        .fake
        .state
        .events()
        .iter()
        .any(|e| e.starts_with("client close 1000") || e.starts_with("client close 4010"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "iap-ssh must end the session with a Close frame: {:?}",
            w.fake.state.events()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn scp_both_ways(legacy: bool) {
    let w = World::new();
    let src = w.path("src.bin");
    random_file(&src, SIZE, if legacy { 7 } else { 3 });
    let mut opts = w.ssh_opts(&w.proxy_command());
    if legacy {
        opts.insert(0, "-O".into());
    }
    scp_round_trip(&w, &opts, &src, |_| {});
}

#[test]
fn scp_sftp_protocol_64mib_both_ways() {
    scp_both_ways(false);
}

#[test]
fn scp_legacy_protocol_64mib_both_ways() {
    scp_both_ways(true);
}

#[test]
fn rsync_64mib_both_ways() {
    let w = World::new();
    let src = w.path("src.bin");
    random_file(&src, SIZE, 11);
    let remote_path = w.path("remote.bin");
    let back = w.path("back.bin");
    // rsync's -e is split by rsync itself: quote the ProxyCommand.
    let e = format!(
        "ssh {}",
        w.ssh_opts(&w.proxy_command())
            .iter()
            .map(|o| format!("'{o}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let up = w
        .tool("rsync")
        .args(["-a", "-e", &e])
        .arg(&src)
        .arg(format!("{}:{}", w.remote(), remote_path.display()))
        .output()
        .unwrap();
    assert!(up.status.success(), "rsync up failed: {}", stderr_of(&up));
    assert_same_file(&src, &remote_path);
    let down = w
        .tool("rsync")
        .args(["-a", "-e", &e])
        .arg(format!("{}:{}", w.remote(), remote_path.display()))
        .arg(&back)
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "rsync down failed: {}",
        stderr_of(&down)
    );
    assert_same_file(&src, &back);
}

#[test]
fn sftp_batch() {
    let w = World::new();
    let src = w.path("s.txt");
    std::fs::write(&src, b"hello over sftp\n").unwrap();
    let dir = w.path("remote-dir");
    let batch = format!(
        "mkdir {d}\nput {s} {d}/s.txt\nls {d}\nrename {d}/s.txt {d}/t.txt\nget {d}/t.txt {b}\n",
        d = dir.display(),
        s = src.display(),
        b = w.path("back.txt").display()
    );
    let out = w
        .tool("sftp")
        .args(w.ssh_opts(&w.proxy_command()))
        .args(["-b", "-"])
        .arg(w.remote())
        .write_stdin(batch)
        .output()
        .unwrap();
    assert!(out.status.success(), "sftp failed: {}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("s.txt"));
    assert_same_file(&src, &dir.join("t.txt"));
    assert_same_file(&src, &w.path("back.txt"));
}
