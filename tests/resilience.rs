//! The client against a relay that behaves as badly as the real one may:
//! reconnects that are accepted and dropped at once, close 4000, HTTP
//! statuses on the upgrade, revoked tokens, a slow handshake. Retries must
//! be bounded and paced, and every failure is one clear line. (How
//! sessions end, expire and survive dead links: tests/sessions.rs.)

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use fake_gcp::config::CloseAt;

const MIB: usize = 1024 * 1024;
const TARGET: &str = "vm1.us-central1-a.p1";

/// Reconnect attempts seen by the fake (HTTP-refused ones included).
fn reconnect_attempts(w: &World) -> usize {
    count_events(w, |e| e == "reconnect upgrade requested")
}

fn token_requests(w: &World) -> u64 {
    stats(w).2
}

/// A proxy to the echo port fed from a pipe that stays open (no EOF).
fn spawn_proxy(w: &World, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut c = w.iap_ssh_std(env.is_empty());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c
        .arg("proxy")
        .args(args)
        .args([TARGET, "7"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        let block = vec![7u8; 64 * 1024];
        for _ in 0..16 {
            if stdin.write_all(&block).is_err() {
                return;
            }
        }
        // Keep the pipe open until the proxy exits.
        std::thread::sleep(Duration::from_secs(600));
        drop(stdin);
    });
    child
}

#[test]
fn a_relay_that_accepts_each_reconnect_and_drops_it_cannot_make_us_storm() {
    let w = World::with(|c| {
        c.faults.drop_every_bytes = Some(256 * 1024);
        c.faults.reconnect_accept_then_drop = true;
    });
    let mut child = spawn_proxy(&w, &["--reconnect-window", "25"], &[]);
    wait_events(&w, 1, |e| e.contains("fault: drop"));
    let first_loss = Instant::now();
    std::thread::sleep(Duration::from_secs(20));
    let in_20s = reconnect_attempts(&w);
    eprintln!("accept-then-drop relay: {in_20s} reconnect attempts in 20 s");
    assert!(in_20s >= 3, "it must keep trying: {in_20s}");
    assert!(in_20s <= 30, "{in_20s} reconnect attempts in 20 s");
    // The window runs from the first loss: each accepted-then-dropped
    // resume must not restart it.
    let (code, err) = wait_child(&mut child, Duration::from_secs(30));
    let took = first_loss.elapsed();
    assert_eq!(code, 8, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("could not resume"), "{err}");
    assert!(took < Duration::from_secs(45), "window restarted: {took:?}");
}

#[test]
fn a_relay_that_asks_to_reauthenticate_at_once_gets_paced_attempts_and_few_tokens() {
    let w = World::with(|c| {
        c.faults.close_at_bytes = Some(CloseAt {
            code: 4004,
            after_bytes: 0,
            times: 100_000,
        });
    });
    let sa = w.fake.info.service_account_file.display().to_string();
    let mut child = spawn_proxy(
        &w,
        &["--reconnect-window", "10"],
        &[("GOOGLE_APPLICATION_CREDENTIALS", &sa)],
    );
    let (code, err) = wait_child(&mut child, Duration::from_secs(40));
    assert_eq!(code, 8, "{err}");
    let attempts = reconnect_attempts(&w);
    let tokens = token_requests(&w);
    eprintln!("4004 at once on every link: {attempts} reconnects, {tokens} token grants in 10 s");
    assert!(attempts <= 15, "{attempts} reconnects");
    assert!(
        tokens as usize <= attempts + 2,
        "{tokens} tokens for {attempts} reconnects"
    );
}

/// A relay that closes with 4000 after 1 MiB, on `times` links in a row.
fn close_4000_after_1mib(times: u32) -> World {
    World::with(|c| {
        c.faults.close_at_bytes = Some(CloseAt {
            code: 4000,
            after_bytes: MIB as u64,
            times,
        })
    })
}

#[test]
fn close_4000_mid_session_gets_one_resume() {
    let w = close_4000_after_1mib(1);
    let (out, input) = echo_through(&w, &[], 4 * MIB);
    assert_echo_ok(&out, &input);
    assert_eq!(stats(&w).1, 1, "one resume");
}

#[test]
fn close_4000_again_after_the_resume_gives_up() {
    let w = close_4000_after_1mib(2);
    let (out, _) = echo_through(&w, &[], 4 * MIB);
    let err = one_line(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("close 4000"), "{err}");
    assert_eq!(stats(&w).1, 1, "exactly one resume");
}

#[test]
fn close_4000_at_connect_gets_one_more_try() {
    let w = World::with(|c| c.faults.connect_close = vec![4000]);
    let (out, input) = echo_through(&w, &[], 64 * 1024);
    assert_echo_ok(&out, &input);
    assert_eq!(stats(&w).0, 2);
    let w = World::with(|c| c.faults.connect_close = vec![4000, 4000]);
    let (out, _) = echo_through(&w, &[], 1024);
    let err = one_line(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(stats(&w).0, 2);
}

#[test]
fn terminal_http_statuses_on_reconnect_end_the_session_at_once() {
    for status in [400u16, 404, 410] {
        let w = World::with(|c| {
            c.faults.drop_every_bytes = Some(MIB as u64);
            c.faults.reconnect_http = vec![status];
        });
        let (out, _) = echo_through(&w, &[], 4 * MIB);
        let err = one_line(&out);
        assert_eq!(out.status.code(), Some(8), "{status}: {err}");
        assert!(
            err.contains(&format!("HTTP {status} on reconnect")),
            "{status}: {err}"
        );
        assert_eq!(reconnect_attempts(&w), 1, "{status}: no retry");
    }
}

#[test]
fn refused_credentials_on_reconnect_get_one_fresh_token() {
    for status in [401u16, 403] {
        let w = World::with(|c| {
            c.faults.drop_every_bytes = Some(MIB as u64);
            c.faults.reconnect_http = vec![status, status];
        });
        let sa = w.fake.info.service_account_file.display().to_string();
        let out = w
            .iap_ssh(false)
            .env("GOOGLE_APPLICATION_CREDENTIALS", &sa)
            .args(["proxy", TARGET, "7"])
            .write_stdin(vec![1u8; 4 * MIB])
            .output()
            .unwrap();
        let err = one_line(&out);
        assert_eq!(out.status.code(), Some(4), "{status}: {err}");
        assert_eq!(reconnect_attempts(&w), 2, "{status}");
        assert_eq!(token_requests(&w), 2, "{status}: one fresh token");
        if status == 403 {
            assert!(err.contains("proxy"), "{err}");
        }
        // Healed by the fresh token: the second attempt succeeds.
        let w = World::with(|c| {
            c.faults.drop_every_bytes = Some(MIB as u64);
            c.faults.reconnect_http = vec![status];
        });
        let input = vec![3u8; 4 * MIB];
        let out = w
            .iap_ssh(false)
            .env("GOOGLE_APPLICATION_CREDENTIALS", sa_of(&w))
            .args(["proxy", TARGET, "7"])
            .write_stdin(input.clone())
            .output()
            .unwrap();
        assert_echo_ok(&out, &input);
    }
}

fn sa_of(w: &World) -> String {
    w.fake.info.service_account_file.display().to_string()
}

#[test]
fn overload_on_reconnect_is_retried_with_backoff() {
    let w = World::with(|c| {
        c.faults.drop_every_bytes = Some(2 * MIB as u64);
        c.faults.reconnect_http = vec![429, 503, 502];
    });
    let (out, input) = echo_through(&w, &[], 4 * MIB);
    assert_echo_ok(&out, &input);
    assert!(reconnect_attempts(&w) >= 4);
}

#[test]
fn a_refused_cached_token_heals_at_connect() {
    // First run caches a token; it is then revoked, and the relay answers
    // it with HTTP 401 on the upgrade.
    let w = World::with(|c| c.faults.bad_token_http = Some(401));
    let sa = sa_of(&w);
    let run = |w: &World| {
        w.iap_ssh(false)
            .env("GOOGLE_APPLICATION_CREDENTIALS", &sa)
            .args(["proxy", TARGET, "7"])
            .write_stdin("ping")
            .output()
            .unwrap()
    };
    let out = run(&w);
    assert_eq!(out.stdout, b"ping", "{}", stderr_of(&out));
    assert_eq!(token_requests(&w), 1);
    w.fake.state.revoke_minted();
    let out = run(&w);
    assert_eq!(out.stdout, b"ping", "{}", stderr_of(&out));
    assert_eq!(token_requests(&w), 2, "one fresh token");
    assert_eq!(count_events(&w, |e| e == "bad token: HTTP 401"), 1);
}

#[test]
fn a_refused_static_token_fails_at_once_with_a_proxy_hint_for_403() {
    for status in [401u16, 403] {
        let w = World::with(|c| c.faults.connect_http = vec![status, status]);
        let (out, _) = echo_through(&w, &[], 16);
        let err = one_line(&out);
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert_eq!(
            count_events(&w, |e| e.starts_with("fault: connect answered")),
            1,
            "a static token cannot be refreshed: no second try"
        );
        if status == 403 {
            assert!(err.contains("proxy"), "{err}");
        }
    }
}

#[test]
fn long_close_notices_are_logged_even_when_malformed() {
    let w = World::with(|c| {
        c.faults.unknown_tags = true;
        c.faults.malformed_long_close = true;
    });
    let (out, input) = echo_through(&w, &["-v"], MIB);
    assert_eq!(out.stdout, input, "{}", stderr_of(&out));
    assert!(out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("LONG_CLOSE notice: code 4000 'test'"), "{err}");
    assert!(err.contains("LONG_CLOSE notice: code 4000 'hi'"), "{err}");
}

#[test]
fn the_connect_budget_covers_handshake_and_first_message_together() {
    // The 101 takes 5 s, then the relay says nothing. With a 6 s budget
    // the proxy gives up at about 6 s (two separate budgets: 11 s).
    let w = World::with(|c| {
        c.faults.upgrade_delay_ms = 5000;
        c.faults.silent_after_upgrade = true;
    });
    let t = Instant::now();
    let (out, _) = echo_through(&w, &["--connect-timeout", "6"], 16);
    let took = t.elapsed();
    let err = one_line(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took >= Duration::from_secs(6), "{took:?}");
    assert!(took < Duration::from_millis(9500), "two budgets: {took:?}");
}

#[test]
fn relay_protocol_complaints_ask_for_a_bug_report() {
    let w = World::with(|c| c.faults.connect_close = vec![4008]);
    let (out, _) = echo_through(&w, &[], 16);
    let err = one_line(&out);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(err.contains("close 4008"), "{err}");
    assert!(err.contains("report it with close code 4008"), "{err}");
}

#[test]
fn host_targets_are_reported_as_hosts() {
    let w = World::new();
    let out = w
        .iap_ssh(true)
        .args([
            "proxy",
            "--project",
            PROJECT,
            "--region",
            "us-central1",
            "--network",
            "default",
            "10.9.9.9",
            "22",
        ])
        .write_stdin("")
        .output()
        .unwrap();
    let err = one_line(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("IAP cannot find host 10.9.9.9"), "{err}");
    assert!(err.contains("destination group"), "{err}");
    assert!(!err.contains("instance"), "{err}");
}
