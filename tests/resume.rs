//! A tunnel that never loses a byte: resume after drops, 4004, stalls and
//! refused reconnects; token expiry; peer validation; injected noise.

mod common;

use common::*;
use fake_gcp::config::{Chaos, Faults, Stall};

const MIB: usize = 1024 * 1024;

fn faults(f: Faults) -> World {
    World::with(|c| c.faults = f)
}

#[test]
fn scp_256mib_both_ways_survives_drops_every_8mib_and_periodic_4004() {
    let w = faults(Faults {
        drop_every_bytes: Some(8 * MIB as u64),
        close_4004_every_secs: Some(1),
        ..Faults::default()
    });
    let src = w.path("big.bin");
    random_file(&src, 256 * MIB, 256);
    let opts = w.ssh_opts(&w.proxy_command());
    scp_round_trip(&w, &opts, &src, |_| {});
    let (connects, resumes, _) = stats(&w);
    let events = w.fake.state.events();
    let drops = events.iter().filter(|e| e.contains("fault: drop")).count();
    let reauths = events
        .iter()
        .filter(|e| e.contains("fault: periodic close 4004"))
        .count();
    eprintln!(
        "256 MiB up+down: {connects} sessions, {resumes} resumes, {drops} drops, {reauths} close 4004"
    );
    assert!(
        drops >= 60,
        "expected a drop every 8 MiB each way, saw {drops}"
    );
    assert!(reauths >= 1, "expected periodic 4004s");
    assert!(
        resumes as usize >= drops + reauths,
        "every fault must be resumed"
    );
}

#[test]
fn close_4004_at_an_offset_is_resumed_with_a_fresh_token() {
    let w = World::with(|c| {
        c.faults.close_4004_at_bytes = Some(3 * MIB as u64);
    });
    let sa = w.fake.info.service_account_file.display().to_string();
    let input_path = w.path("in.bin");
    random_file(&input_path, 8 * MIB, 5);
    let out = w
        .iap_ssh(false)
        .env("GOOGLE_APPLICATION_CREDENTIALS", &sa)
        .args(["proxy", "vm1.us-central1-a.p1", "7"])
        .pipe_stdin(&input_path)
        .unwrap()
        .output()
        .unwrap();
    assert_echo_ok(&out, &std::fs::read(&input_path).unwrap());
    let (_, resumes, tokens) = stats(&w);
    assert_eq!(resumes, 1);
    assert_eq!(tokens, 2, "4004 must force a fresh token");
}

#[test]
fn token_expiry_mid_session() {
    // Tokens live 2 s; the relay closes a link with 4004 when its token expires.
    let w = World::with(|c| c.token_lifetime_secs = 2);
    let sa = w.fake.info.service_account_file.display().to_string();
    let out = w
        .tool("ssh")
        .env_remove("IAP_SSH_ACCESS_TOKEN")
        .env("GOOGLE_APPLICATION_CREDENTIALS", &sa)
        .args(w.ssh_opts(&w.proxy_command()))
        .arg(w.remote())
        .arg("for i in 1 2 3 4 5 6; do echo tick $i; sleep 1; done")
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh failed: {}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\ntick 6\n"
    );
    let events = w.fake.state.events();
    let expiries = events
        .iter()
        .filter(|e| e.contains("token expired: close 4004"))
        .count();
    let (_, resumes, tokens) = stats(&w);
    eprintln!(
        "6 s session with 2 s tokens: {expiries} expiries, {resumes} resumes, {tokens} token grants"
    );
    assert!(expiries >= 2, "{events:?}");
    assert!(resumes >= 2);
    assert!(tokens >= 3);
}

#[test]
fn refused_resume_is_a_clear_error() {
    let w = faults(Faults {
        drop_every_bytes: Some(MIB as u64),
        resume_refuse_code: Some(4001),
        ..Faults::default()
    });
    let (out, _) = echo_through(&w, &[], 4 * MIB);
    assert_eq!(out.status.code(), Some(8));
    let err = stderr_of(&out);
    assert_eq!(
        err,
        "iap-ssh: IAP could not resume the session to vm1 (zone us-central1-a, project p1): close 4001 'fault: resume refused'; \
         hint: the session is lost; reconnect (check your network if this repeats)\n"
    );
}

#[test]
fn cannot_rewind_is_a_clear_error() {
    let w = faults(Faults {
        drop_every_bytes: Some(MIB as u64),
        resume_refuse_code: Some(4074),
        ..Faults::default()
    });
    let (out, _) = echo_through(&w, &[], 4 * MIB);
    assert_eq!(out.status.code(), Some(8));
    assert!(
        stderr_of(&out).contains("close 4074"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn refused_reconnects_are_retried_with_backoff() {
    let w = faults(Faults {
        drop_every_bytes: Some(4 * MIB as u64),
        refuse_reconnects: 3,
        ..Faults::default()
    });
    let (out, input) = echo_through(&w, &[], 12 * MIB);
    assert_echo_ok(&out, &input);
    let refused = w
        .fake
        .state
        .events()
        .iter()
        .filter(|e| e.contains("HTTP 503"))
        .count();
    assert_eq!(refused, 3);
}

#[test]
fn reconnect_window_runs_out() {
    let w = faults(Faults {
        drop_every_bytes: Some(MIB as u64),
        refuse_reconnects: 1000,
        ..Faults::default()
    });
    let (out, _) = echo_through(&w, &["--reconnect-window", "3"], 4 * MIB);
    assert_eq!(out.status.code(), Some(8));
    let err = stderr_of(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("iap-ssh: lost the connection to IAP for vm1 (zone us-central1-a, project p1) and could not resume: "),
        "{err}"
    );
    assert!(err.contains("HTTP 503"), "{err}");
}

#[test]
fn random_drops_reauths_429s_and_stalls_lose_nothing() {
    // scripts/soak.sh runs this for minutes; here a fault every 20-150 ms
    // of each link's life, whatever it is doing (resends included).
    let w = faults(Faults {
        chaos: Some(Chaos {
            min_ms: 20,
            max_ms: 150,
            kinds: ["drop", "4004", "429", "stall"].map(String::from).to_vec(),
            stall_ms: 1500,
            seed: Some(22),
        }),
        retry_after: Some("1".into()),
        ..Faults::default()
    });
    let (out, input) = echo_through(
        &w,
        &["--stall-timeout", "1", "--reconnect-window", "120"],
        32 * MIB,
    );
    assert_echo_ok(&out, &input);
    let injected = count_events(&w, |e| {
        e.starts_with("fault: chaos ") && e.contains(" sid=")
    });
    eprintln!("chaos: {injected} faults injected");
    assert!(injected >= 3, "only {injected} faults injected");
    let (sessions, resumes, _) = stats(&w);
    assert_eq!(
        sessions, 1,
        "the one session must be resumed, never restarted"
    );
    assert!(resumes >= 2, "{resumes} resumes for {injected} faults");
}

#[test]
fn silent_relay_is_detected_and_resumed() {
    let w = faults(Faults {
        stall: Some(Stall {
            after_bytes: 2 * MIB as u64,
            secs: 6,
        }),
        ..Faults::default()
    });
    let (out, input) = echo_through(
        &w,
        &["--stall-timeout", "2", "--reconnect-window", "60"],
        8 * MIB,
    );
    assert_echo_ok(&out, &input);
    let (_, resumes, _) = stats(&w);
    assert!(resumes >= 1, "stall must trigger a resume");
}

#[test]
fn withheld_acks_bound_the_window_and_resume_confirms() {
    let w = faults(Faults {
        withhold_acks: true,
        ..Faults::default()
    });
    let (out, input) = echo_through(
        &w,
        &["--stall-timeout", "1", "--reconnect-window", "60"],
        3 * MIB,
    );
    assert_echo_ok(&out, &input);
    let (_, resumes, _) = stats(&w);
    // 1 MiB window: at least two stalls to move 3 MiB without ACKs.
    assert!(resumes >= 2, "resumes: {resumes}");
}

#[test]
fn delayed_acks_unknown_tags_and_long_close_are_tolerated() {
    let w = faults(Faults {
        unknown_tags: true,
        ack_delay_ms: 300,
        ..Faults::default()
    });
    let (out, input) = echo_through(&w, &[], 6 * MIB);
    assert_echo_ok(&out, &input);
    assert_eq!(stats(&w).1, 0, "no resume needed");
}

#[test]
fn keepalive_pongs_are_sent_when_idle() {
    let w = World::new();
    let out = w
        .tool("ssh")
        .args(w.ssh_opts(&format!(
            "{} proxy --keepalive 1 {VM}.{ZONE}.{PROJECT} %p",
            iap_ssh_bin().display()
        )))
        .arg(w.remote())
        .arg("sleep 3; echo awake")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let pongs = count_events(&w, |e| e == "pong received");
    assert!(pongs >= 1, "no keepalive seen");
}

#[test]
fn protocol_violations_end_the_session_with_exit_7() {
    for (kind, expect) in [
        (
            "data_before_sid",
            "relay sent DATA before the session was established",
        ),
        ("second_sid", "relay sent a second CONNECT_SUCCESS_SID"),
        ("ack_backwards", "relay ACK went backwards"),
        (
            "ack_beyond",
            "relay acknowledged 1000005 bytes but only 5 were sent",
        ),
        (
            "data_too_long",
            "relay DATA of 16385 bytes exceeds the 16384-byte limit",
        ),
        ("truncated", "truncated relay message"),
        ("text", "relay sent a WebSocket text message"),
    ] {
        let w = World::with(|c| c.faults.violation = Some(kind.into()));
        let out = w
            .iap_ssh(true)
            .args(["proxy", "vm1.us-central1-a.p1", "7"])
            .write_stdin("hello")
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(7), "{kind}: {err}");
        assert_eq!(err.lines().count(), 1, "{kind}: {err}");
        assert!(
            err.starts_with("iap-ssh: relay protocol violation: "),
            "{kind}: {err}"
        );
        assert!(err.contains(expect), "{kind}: {err}");
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn sighup_while_resuming_ends_the_proxy_promptly() {
    let w = faults(Faults {
        drop_every_bytes: Some(MIB as u64),
        refuse_reconnects: 1000,
        ..Faults::default()
    });
    let input = w.path("in.bin");
    random_file(&input, 4 * MIB, 1);
    let mut child = w
        .iap_ssh_std(true)
        .args(["proxy", "vm1.us-central1-a.p1", "7"])
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it is resuming (refused reconnects seen), then hang up.
    wait_events(&w, 1, |e| e.contains("HTTP 503"));
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status();
    let t = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "proxy ignored SIGHUP"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
