//! The client against a relay that behaves as badly as the real one may:
//! reconnects that are accepted and dropped at once, lazy ACKs, close 4000,
//! HTTP statuses on the upgrade, revoked tokens, a slow handshake, sessions
//! that expire, SIDs still attached, and a backend that ends while the
//! client is away. Retries must be bounded and paced; nothing is lost that
//! the relay still has.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use fake_gcp::config::CloseAt;

const MIB: usize = 1024 * 1024;
const TARGET: &str = "vm1.us-central1-a.p1";

fn one_line(out: &std::process::Output) -> String {
    let err = stderr_of(out);
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

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

#[test]
fn an_idle_session_on_a_lazily_acking_relay_is_not_resumed() {
    // ACKs only every 512 KiB, none on idle: ssh's few bytes stay
    // unacknowledged for the whole 40 s. That is not a dead link.
    let w = World::with(|c| {
        c.faults.ack_every_bytes = Some(512 * 1024);
        c.faults.no_idle_acks = true;
    });
    let out = w
        .tool("ssh")
        .args(w.ssh_opts(&w.proxy_command()))
        .arg(w.remote())
        .arg("sleep 40; echo done")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n");
    let (_, resumes, _) = stats(&w);
    eprintln!("40 s idle ssh against a 512 KiB-ACK relay: {resumes} resumes");
    assert_eq!(resumes, 0);
}

#[test]
fn lazy_acks_still_carry_bulk_data() {
    let w = World::with(|c| {
        c.faults.ack_every_bytes = Some(512 * 1024);
        c.faults.no_idle_acks = true;
    });
    let (out, input) = echo_through(&w, &[], 8 * MIB);
    assert_echo_ok(&out, &input);
    assert_eq!(stats(&w).1, 0);
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

#[test]
fn a_sid_still_attached_is_retried_until_the_relay_lets_go() {
    let w = World::with(|c| {
        c.faults.drop_every_bytes = Some(MIB as u64);
        c.faults.sid_in_use_ms = 2500;
    });
    let (out, input) = echo_through(&w, &[], 3 * MIB);
    assert_echo_ok(&out, &input);
    assert!(count_events(&w, |e| e == "close 4002 sid in use") >= 1);
}

#[test]
fn an_expired_session_is_a_clear_error() {
    let w = World::with(|c| {
        c.faults.drop_every_bytes = Some(MIB as u64);
        c.faults.session_expiry_secs = Some(1);
        c.faults.refuse_reconnects = 3;
    });
    let (out, _) = echo_through(&w, &[], 4 * MIB);
    let err = one_line(&out);
    assert_eq!(out.status.code(), Some(8), "{err}");
    assert!(err.contains("close 4001"), "{err}");
    assert!(count_events(&w, |e| e.ends_with("expired")) >= 1);
}

#[test]
fn backend_gone_while_away_ends_the_session_cleanly() {
    // The VM side writes 1.2 MiB and exits; the link drops after 1 MiB,
    // the first reconnect is refused (so the backend is surely done), and
    // the relay answers the next one with 4010 at once.
    let w = World::with(|c| {
        c.faults.drop_every_bytes = Some(MIB as u64);
        c.faults.eof_on_reconnect = true;
        c.faults.refuse_reconnects = 1;
        c.instances[0].ports.insert(
            9,
            fake_gcp::Backend::Exec(vec![
                "sh".into(),
                "-c".into(),
                "head -c 1258291 /dev/zero".into(),
            ]),
        );
    });
    let out = w
        .iap_ssh(true)
        .args(["proxy", TARGET, "9"])
        .write_stdin("")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(out.stdout.len() < 1258291 && !out.stdout.is_empty());
    assert!(out.stdout.iter().all(|b| *b == 0));
    assert!(count_events(&w, |e| e == "close 4010 destination read failed") >= 1);
}

/// Opens a relay WebSocket with `token` through the client's own transport
/// and returns the first message or the close code.
async fn first_answer(w: &World, url: &str, token: &str) -> Result<Vec<u8>, u16> {
    use futures_util::StreamExt;
    use iap_ssh::relay::transport::{DeadLink, open};
    let tls = std::sync::Arc::new(iap_ssh::tls::client_config(Some(&w.fake.info.ca_file)).unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let dead = DeadLink {
        after: Duration::from_secs(30),
    };
    let token = iap_ssh::auth::AccessToken::new(token.to_string());
    let mut ws = open(url, &token, tls, deadline, dead).await.unwrap();
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => return Ok(b.to_vec()),
            Some(Ok(Message::Close(f))) => return Err(f.map(|f| u16::from(f.code)).unwrap_or(0)),
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_fake_checks_that_a_reconnect_comes_from_the_same_place_and_principal() {
    use iap_ssh::relay::url::{Target, connect_url, reconnect_url};
    let w = World::with(|c| {
        c.extra_tokens
            .insert("mallory-token".into(), "mallory@example.com".into());
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let base = &w.fake.info.tunnel_url;
        let t = Target::instance(PROJECT, ZONE, VM, 7);
        let first = first_answer(&w, &connect_url(base, &t), &w.fake.info.access_token)
            .await
            .unwrap();
        assert_eq!(&first[..2], &[0, 1], "CONNECT_SUCCESS_SID");
        let sid = String::from_utf8(first[6..].to_vec()).unwrap();
        // The link above was dropped; wait until the fake noticed.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let other_zone = Target::instance(PROJECT, "europe-west1-b", VM, 7);
        let url = reconnect_url(base, &sid, 0, &other_zone);
        assert_eq!(
            first_answer(&w, &url, &w.fake.info.access_token).await,
            Err(4051)
        );
        let url = reconnect_url(base, &sid, 0, &t);
        assert_eq!(first_answer(&w, &url, "mallory-token").await, Err(4033));
        let ok = first_answer(&w, &url, &w.fake.info.access_token)
            .await
            .unwrap();
        assert_eq!(&ok[..2], &[0, 2], "RECONNECT_SUCCESS_ACK");
    });
}

/// Runs `f` on a thread of its own in a new network namespace (loopback
/// up), so that packet loss can be injected with nft without touching the
/// machine's network. None when namespaces or nft are not available.
fn in_private_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    std::thread::spawn(move || {
        // SAFETY: unshare on this thread only; no pointers involved.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            eprintln!("skipped: cannot create a network namespace (needs root)");
            return None;
        }
        let ok = |c: &mut std::process::Command| c.status().is_ok_and(|s| s.success());
        if !ok(std::process::Command::new("ip").args(["link", "set", "lo", "up"]))
            || !ok(std::process::Command::new("nft").args(["add", "table", "inet", "t"]))
        {
            eprintln!("skipped: ip or nft unavailable (the test script installs nftables)");
            return None;
        }
        Some(f())
    })
    .join()
    .unwrap()
}

/// Drops every TCP packet to or from `port` on loopback (on: true), or
/// lets them through again.
fn blackhole(port: u16, on: bool) {
    let run = |args: &[&str]| {
        let st = std::process::Command::new("nft")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "nft {args:?}");
    };
    if on {
        let chain = "add chain inet t c { type filter hook input priority 0; }";
        run(&chain.split(' ').collect::<Vec<_>>());
        for dir in ["dport", "sport"] {
            let rule = format!("add rule inet t c tcp {dir} {port} drop");
            run(&rule.split(' ').collect::<Vec<_>>());
        }
    } else {
        run(&["delete", "chain", "inet", "t", "c"]);
    }
}

#[test]
fn a_dead_connection_is_found_while_idle_and_resumed() {
    // The relay's packets vanish (a half-open connection, as after sleep or
    // a network change) while the session is idle: no data and no
    // application keepalive pending, so only the transport can tell.
    let r = in_private_netns(|| {
        let w = World::new();
        let port: u16 = w
            .fake
            .info
            .tunnel_url
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let mut child = w
            .iap_ssh_std(true)
            .args(["-v", "proxy", "--stall-timeout", "6", "--keepalive", "0"])
            .args(["--connect-timeout", "5", TARGET, "7"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (out_tx, out_rx) = std::sync::mpsc::channel::<String>();
        let (err_tx, err_rx) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = out_tx.send(l);
            }
        });
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = err_tx.send(l);
            }
        });
        let line =
            |rx: &std::sync::mpsc::Receiver<String>| rx.recv_timeout(Duration::from_secs(60));
        stdin.write_all(b"hello 1\n").unwrap();
        assert_eq!(line(&out_rx).unwrap(), "hello 1");
        // Let the echo's ACKs settle, then cut the link.
        std::thread::sleep(Duration::from_secs(2));
        blackhole(port, true);
        let cut = Instant::now();
        let mut seen = vec![];
        let found = loop {
            match err_rx.recv_timeout(Duration::from_secs(1)) {
                Ok(l) if l.contains("resuming session") => break Some(cut.elapsed()),
                Ok(l) => seen.push(l),
                Err(_) if cut.elapsed() > Duration::from_secs(40) => break None,
                Err(_) => {}
            }
        };
        blackhole(port, false);
        // Written only now: the resume must not have needed it.
        stdin.write_all(b"hello 2\n").unwrap();
        let second = line(&out_rx);
        drop(stdin);
        let _ = child.kill();
        let _ = child.wait();
        (found, second, seen)
    });
    let Some((found, second, seen)) = r else {
        return;
    };
    let took = found.unwrap_or_else(|| panic!("the dead link was never noticed: {seen:?}"));
    eprintln!("idle dead link noticed after {took:?}");
    assert_eq!(second.unwrap(), "hello 2");
}

#[test]
fn when_the_relay_ends_the_session_the_closing_handshake_is_completed() {
    // The VM side says hello and exits; stdin stays open. The relay closes
    // with 4010; iap-ssh answers the Close (no dropped connection) and
    // exits 0 with everything received.
    let w = World::with(|c| {
        c.instances[0].ports.insert(
            9,
            fake_gcp::Backend::Exec(vec!["printf".into(), "hello".into()]),
        );
    });
    let mut child = w
        .iap_ssh_std(true)
        .args(["proxy", TARGET, "9"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let (code, err) = wait_child(&mut child, Duration::from_secs(30));
    drop(stdin);
    assert_eq!(code, 0, "{err}");
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "hello");
    wait_events(&w, 1, |e| e.starts_with("client close 4010"));
}
