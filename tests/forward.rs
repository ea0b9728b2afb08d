//! `iap-ssh forward`: local listeners, one relay session per connection,
//! many at once, several forwards per process, host targets, shutdown.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use fake_gcp::{Backend, config::Host};

struct Fwd(Spawned);

impl std::ops::Deref for Fwd {
    type Target = Spawned;
    fn deref(&self) -> &Spawned {
        &self.0
    }
}

impl std::ops::DerefMut for Fwd {
    fn deref_mut(&mut self) -> &mut Spawned {
        &mut self.0
    }
}

impl Fwd {
    fn start(w: &World, args: &[&str]) -> Fwd {
        Fwd::start_with(
            w,
            args,
            &[("IAP_SSH_ACCESS_TOKEN", &w.fake.info.access_token)],
        )
    }

    fn start_with(w: &World, args: &[&str], env: &[(&str, &str)]) -> Fwd {
        Fwd(Spawned::start(
            w.iap_ssh_std(false)
                .envs(env.iter().copied())
                .arg("forward")
                .args(args),
        ))
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.line()).unwrap()
    }
}

fn port_of(v: &serde_json::Value, i: usize) -> u16 {
    v["forwards"][i]["local_port"].as_u64().unwrap() as u16
}

fn echo_once(port: u16, data: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(data).unwrap();
    let mut got = vec![0u8; data.len()];
    s.read_exact(&mut got).unwrap();
    assert!(got == data);
}

#[test]
fn ready_line_connection_check_and_echo() {
    let w = World::new();
    let mut f = Fwd::start(&w, &["vm1.us-central1-a.p1", "7"]);
    let line = f.line();
    let port: u16 = line
        .strip_prefix("Listening on port [")
        .and_then(|r| r.strip_suffix("].").and_then(|p| p.parse().ok()))
        .unwrap_or_else(|| panic!("unexpected ready line {line:?}"));
    // The connection check opened one session and closed it with 1000.
    let ev = w.fake.state.events();
    assert_eq!(
        ev.iter()
            .filter(|e| e.starts_with("connect project=p1"))
            .count(),
        1,
        "{ev:?}"
    );
    wait_events(&w, 1, |e| e.starts_with("client close 1000"));
    echo_once(port, b"hello through a forward\n");
    let (code, err) = f.term();
    assert_eq!(code, 0, "{err}");
}

#[test]
fn two_hundred_concurrent_connections_echo_1mib_each() {
    const CONNS: usize = 200;
    const EACH: usize = 1024 * 1024;
    let w = World::new();
    let mut f = Fwd::start(&w, &["--json", "vm1.us-central1-a.p1", "7"]);
    let port = port_of(&f.json(), 0);
    let started = Instant::now();
    let handles: Vec<_> = (0..CONNS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut data = vec![0u8; EACH];
                let mut x = (i as u64 + 1).wrapping_mul(0x9e3779b97f4a7c15);
                for b in data.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
                let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                let mut r = s.try_clone().unwrap();
                let mut wr = s;
                let d2 = data.clone();
                let writer = std::thread::spawn(move || wr.write_all(&d2).map(|_| wr));
                let mut got = vec![0u8; EACH];
                r.read_exact(&mut got).unwrap();
                let wr = writer.join().unwrap().unwrap();
                drop(wr);
                got == data
            })
        })
        .collect();
    let ok = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|x| *x)
        .count();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{CONNS} concurrent connections x 1 MiB echoed: {ok} equal, {:.0} MiB each way in {secs:.1} s",
        (CONNS * EACH) as f64 / 1048576.0
    );
    assert_eq!(ok, CONNS);
    let sessions = fake_gcp::state::Stats::get(&w.fake.state.stats.connects);
    assert_eq!(
        sessions as usize,
        CONNS + 1,
        "one session per connection plus the check"
    );
    let (code, err) = f.term();
    assert_eq!(code, 0, "{err}");
}

#[test]
fn long_lived_idle_connection_with_keepalive() {
    let w = World::new();
    let f = Fwd::start(
        &w,
        &["--json", "--keepalive", "1", "vm1.us-central1-a.p1", "7"],
    );
    let port = port_of(&f.json(), 0);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut b = [0u8; 1];
    s.write_all(b"a").unwrap();
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"a");
    std::thread::sleep(Duration::from_secs(4));
    s.write_all(b"b").unwrap();
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"b");
    let pongs = count_events(&w, |e| e == "pong received");
    assert!(pongs >= 2, "keepalives while idle: {pongs}");
}

#[test]
fn busy_port_is_a_clear_error() {
    let w = World::new();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p = held.local_addr().unwrap().port();
    let mut f = Fwd::start(
        &w,
        &[
            "--local-host-port",
            &format!("127.0.0.1:{p}"),
            "vm1.us-central1-a.p1",
            "7",
        ],
    );
    let (code, err) = f.wait();
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "iap-ssh: Local port [{p}] is not available. hint: pick another port with --local-host-port (or -L), or 0 for a free one\n"
        )
    );
}

#[test]
fn sigterm_closes_open_connections_cleanly() {
    let w = World::new();
    let mut f = Fwd::start(
        &w,
        &[
            "--json",
            "--shutdown-grace",
            "1",
            "vm1.us-central1-a.p1",
            "7",
        ],
    );
    let port = port_of(&f.json(), 0);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    let t = Instant::now();
    let (code, err) = f.term();
    assert_eq!(code, 0, "{err}");
    assert!(t.elapsed() < Duration::from_secs(10));
    // The local side sees EOF, the relay a Close 1000 for both sessions.
    let n = s.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0);
    wait_events(&w, 2, |e| e.starts_with("client close 1000"));
    // Nothing listens any more.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn several_forwards_in_one_process() {
    let w = World::new();
    let f = Fwd::start(
        &w,
        &[
            "--json",
            "-L",
            "127.0.0.1:0:vm1.us-central1-a.p1:7",
            "-L",
            "0:vm1.us-central1-a.p1:22",
        ],
    );
    let v = f.json();
    assert_eq!(v["forwards"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(
        v["forwards"][0]["addresses"].as_array().unwrap().len(),
        1,
        "{v}"
    );
    assert_eq!(v["forwards"][1]["remote_port"], 22);
    echo_once(port_of(&v, 0), b"first forward");
    let mut s = TcpStream::connect(("127.0.0.1", port_of(&v, 1))).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut banner = [0u8; 8];
    s.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"SSH-2.0-", "the second forward reaches sshd");
}

#[test]
fn connection_check_failure_is_reported_before_listening() {
    let w = World::new();
    let mut f = Fwd::start(&w, &["nope.us-central1-a.p1", "7"]);
    let (code, err) = f.wait();
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("close 4047 'Failed to lookup instance'"),
        "{err}"
    );
    assert!(f.lines.try_recv().is_err(), "must not announce a listener");
}

fn host_world() -> World {
    World::with(|c| {
        let mut ports = std::collections::BTreeMap::new();
        ports.insert(7, Backend::Exec(vec!["cat".into()]));
        c.hosts.push(Host {
            project: "p1".into(),
            region: "us-central1".into(),
            network: "default".into(),
            host: "10.1.2.3".into(),
            dest_group: Some("grp1".into()),
            ports,
        });
    })
}

#[test]
fn host_target_through_a_destination_group() {
    let w = host_world();
    let f = Fwd::start(
        &w,
        &[
            "--json",
            "--project",
            "p1",
            "--region",
            "us-central1",
            "--network",
            "default",
            "--dest-group",
            "grp1",
            "10.1.2.3",
            "7",
        ],
    );
    let v = f.json();
    assert_eq!(
        v["forwards"][0]["target"],
        "host 10.1.2.3 (region us-central1, network default, project p1)"
    );
    echo_once(port_of(&v, 0), b"to a host in a destination group");
    let ev = w.fake.state.events();
    assert!(
        ev.iter().any(|e| e.starts_with(
            "connect-host project=p1 region=us-central1 network=default host=10.1.2.3 group=grp1 port=7 new_websocket=True user_agent=iap-ssh/"
        )),
        "{ev:?}"
    );
}

#[test]
fn host_target_with_proxy_resumes_with_region() {
    let w = World::with(|c| {
        let mut ports = std::collections::BTreeMap::new();
        ports.insert(7, Backend::Exec(vec!["cat".into()]));
        c.hosts.push(Host {
            project: "p1".into(),
            region: "us-central1".into(),
            network: "default".into(),
            host: "db.corp.example".into(),
            dest_group: None,
            ports,
        });
        c.faults.drop_every_bytes = Some(1024 * 1024);
    });
    let input = w.path("in.bin");
    random_file(&input, 3 * 1024 * 1024, 3);
    let out = w
        .iap_ssh(true)
        .args([
            "proxy",
            "--project",
            "p1",
            "--region",
            "us-central1",
            "--network",
            "default",
            "db.corp.example",
            "7",
        ])
        .pipe_stdin(&input)
        .unwrap()
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(out.stdout == std::fs::read(&input).unwrap());
    let ev = w.fake.state.events();
    assert!(
        ev.iter()
            .any(|e| e.starts_with("reconnect ") && e.ends_with(" region=us-central1")),
        "{ev:?}"
    );
}

#[test]
fn wrong_destination_group_is_denied() {
    let w = host_world();
    let out = w
        .iap_ssh(true)
        .args([
            "proxy",
            "--project",
            "p1",
            "--region",
            "us-central1",
            "--network",
            "default",
            "--dest-group",
            "other",
            "10.1.2.3",
            "7",
        ])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr_of(&out).starts_with(
            "iap-ssh: IAP denied access to host 10.1.2.3 (region us-central1, network default, project p1): close 4033"
        ),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn concurrent_connections_share_one_token_fetch() {
    let w = World::new();
    let sa = w.fake.info.service_account_file.display().to_string();
    let f = Fwd::start_with(
        &w,
        &[
            "--json",
            "--no-connection-check",
            "vm1.us-central1-a.p1",
            "7",
        ],
        &[("GOOGLE_APPLICATION_CREDENTIALS", &sa)],
    );
    let port = port_of(&f.json(), 0);
    let hs: Vec<_> = (0..40)
        .map(|i| std::thread::spawn(move || echo_once(port, format!("conn {i}").as_bytes())))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(
        fake_gcp::state::Stats::get(&w.fake.state.stats.token_requests),
        1
    );
}

/// The fake relay's handshake counters: (most in flight at once, refused
/// with 429).
fn handshakes(w: &World) -> (u64, u64) {
    use std::sync::atomic::Ordering::SeqCst;
    let st = &w.fake.state;
    (
        st.handshakes_peak.load(SeqCst),
        st.handshakes_refused.load(SeqCst),
    )
}

/// 200 connections at once through one forward, each echoing 16 KiB;
/// returns how many came back equal.
fn burst(port: u16) -> usize {
    let hs: Vec<_> = (0..200)
        .map(|i| {
            std::thread::spawn(move || {
                let data: Vec<u8> = (0..16 * 1024).map(|j| (i * 7 + j) as u8).collect();
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                s.write_all(&data).unwrap();
                let mut got = vec![0u8; data.len()];
                s.read_exact(&mut got).is_ok() && got == data
            })
        })
        .collect();
    hs.into_iter()
        .map(|h| h.join().unwrap())
        .filter(|x| *x)
        .count()
}

#[test]
fn a_burst_of_200_never_has_more_than_n_handshakes_in_flight() {
    // The relay front end answers 429 above 4 handshakes at once, and each
    // takes 30 ms: unbounded, 200 connections would pile up.
    let w = World::with(|c| {
        c.faults.max_concurrent_handshakes = Some(4);
        c.faults.upgrade_delay_ms = 30;
    });
    let sa = w.fake.info.service_account_file.display().to_string();
    let mut f = Fwd::start_with(
        &w,
        &[
            "--json",
            "--max-handshakes",
            "4",
            "vm1.us-central1-a.p1",
            "7",
        ],
        &[("GOOGLE_APPLICATION_CREDENTIALS", &sa)],
    );
    let port = port_of(&f.json(), 0);
    let started = Instant::now();
    let ok = burst(port);
    let st = &w.fake.state;
    let (peak, refused) = handshakes(&w);
    eprintln!(
        "200 at once, --max-handshakes 4: {ok}/200 equal in {:.1} s, peak {peak} handshakes in flight, {refused} refused",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(ok, 200);
    assert!(peak <= 4, "peak {peak}");
    assert_eq!(refused, 0, "the limit kept the burst under the relay's");
    assert_eq!(fake_gcp::state::Stats::get(&st.stats.connects), 201);
    assert_eq!(
        fake_gcp::state::Stats::get(&st.stats.token_requests),
        1,
        "one token for the burst"
    );
    let (code, err) = f.term();
    assert_eq!(code, 0, "{err}");
}

#[test]
fn http_429_on_a_burst_is_backed_off_and_every_connection_gets_through() {
    // More handshakes than the relay admits: the refused ones back off
    // with jitter and try again; none is lost, and stderr has one line.
    let w = World::with(|c| {
        c.faults.max_concurrent_handshakes = Some(4);
        c.faults.upgrade_delay_ms = 30;
    });
    let mut f = Fwd::start(
        &w,
        &[
            "--json",
            "--max-handshakes",
            "16",
            "vm1.us-central1-a.p1",
            "7",
        ],
    );
    let port = port_of(&f.json(), 0);
    let started = Instant::now();
    let ok = burst(port);
    let (peak, refused) = handshakes(&w);
    eprintln!(
        "200 at once, --max-handshakes 16 against a limit of 4: {ok}/200 equal in {:.1} s, {refused} answered 429",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(ok, 200);
    assert!(peak <= 4, "peak {peak}");
    assert!(refused > 0, "the relay's limit was hit");
    let (code, err) = f.term();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.matches("the relay is limiting new connections (HTTP 429)")
            .count(),
        1,
        "{err}"
    );
    assert!(
        !err.contains("connection from"),
        "no connection failed: {err}"
    );
}
