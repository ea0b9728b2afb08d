//! How relay sessions live and end against a relay no kinder than IAP:
//! lazy ACKs, a dead connection found while idle (packets dropped in a
//! private network namespace), a SID still attached, a session that
//! expires, a backend that ends while the client is away, the closing
//! handshake, and the fake's own checks on reconnects.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const MIB: usize = 1024 * 1024;
const TARGET: &str = "vm1.us-central1-a.p1";

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
    let tls =
        std::sync::Arc::new(iap_ssh::net::tls::client_config(Some(&w.fake.info.ca_file)).unwrap());
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

#[test]
fn after_local_eof_a_slow_resume_still_gets_the_relays_backlog() {
    // The VM side reads 8 KiB, then writes 300 KB. Stdin ends at once and
    // everything we sent is confirmed, so only the relay has data left; the
    // link drops every 64 KiB and resumes take over a second. The proxy
    // must not take a resume for the end of the session.
    let w = World::with(|c| {
        c.faults.drop_every_bytes = Some(64 * 1024);
        c.faults.refuse_reconnects = 1;
        c.instances[0].ports.insert(
            9,
            fake_gcp::Backend::Exec(vec![
                "sh".into(),
                "-c".into(),
                "head -c 8192; head -c 300000 /dev/zero".into(),
            ]),
        );
    });
    let input = w.path("in8k.bin");
    random_file(&input, 8192, 8);
    let out = w
        .iap_ssh(true)
        .args(["-v", "proxy", TARGET, "9"])
        .timeout(Duration::from_secs(40))
        .pipe_stdin(&input)
        .unwrap()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {:?}",
        stderr_of(&out),
        w.fake.state.events()
    );
    let mut want = std::fs::read(&input).unwrap();
    want.extend(std::iter::repeat_n(0u8, 300_000));
    assert_eq!(
        out.stdout.len(),
        want.len(),
        "lost bytes {} {:?}",
        stderr_of(&out),
        w.fake.state.events()
    );
    assert!(out.stdout == want, "bytes differ");
    assert!(stats(&w).1 >= 2, "resumed");
}
