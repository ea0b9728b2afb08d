//! Entry points for the fuzz targets (`fuzz/`, run by `scripts/fuzz.sh`)
//! and for the corpus replay test (`tests/fuzz_corpus.rs`, on stable):
//! each feeds bytes that someone else controls (the relay, Google's APIs,
//! a proxy, the VM's serial port, files other programs write) to one
//! parser and checks what must hold whatever they are: no panic, and no
//! value that could reach an ssh config line or a terminal unchecked. Not
//! an API.
#![doc(hidden)]

use std::path::Path;

use bytes::Bytes;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target: its name (the fuzz binary and corpus folder) and body.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame", frame),
    ("session", session),
    ("close_reason", close_reason),
    ("ssh_config", ssh_config),
    ("known_hosts", known_hosts),
    ("gcloud_ini", gcloud_ini),
    ("credentials", credentials),
    ("token_response", token_response),
    ("compute_instance", compute_instance),
    ("metadata_keys", metadata_keys),
    ("windows_reply", windows_reply),
    ("http_connect_reply", http_connect_reply),
    ("socks5_reply", socks5_reply),
    ("certificate", certificate),
    ("putty", putty),
    ("no_proxy", no_proxy),
];

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// One line a user may see: no newline, no terminal escape.
fn assert_one_line(s: &str) {
    assert!(
        !s.chars().any(|c| c == '\n' || c == '\r' || c == '\x1b'),
        "not one printable line: {s:?}"
    );
}

/// Relay frame decoding: never a panic, and a known frame re-encodes to
/// the same bytes.
pub fn frame(data: &[u8]) {
    use crate::relay::frame::Frame;
    let b = Bytes::copy_from_slice(data);
    if let Ok(f) = Frame::decode(&b) {
        match f {
            Frame::Unknown(_) | Frame::LongClose { .. } => {}
            known => assert_eq!(known.encode(), b),
        }
    }
}

/// Relay messages and local sends fed to the session state machine in any
/// order: errors are fine, panics and broken counters are not.
pub fn session(data: &[u8]) {
    use crate::relay::frame::Frame;
    use crate::relay::session::Session;
    let mut s = Session::new();
    for chunk in data.chunks(11) {
        match chunk.first().copied().unwrap_or(0) % 4 {
            0 => s.record_sent(Bytes::copy_from_slice(&chunk[1..])),
            1 => s.begin_reconnect(),
            _ => {
                if let Ok(f) = Frame::decode(&Bytes::copy_from_slice(&chunk[1..])) {
                    let _ = s.on_frame(f);
                }
            }
        }
        assert!(s.unconfirmed_bytes() <= s.sent());
    }
}

/// A close code and reason from the relay become one line for the user.
pub fn close_reason(data: &[u8]) {
    use crate::relay::{CloseMeaning, classify_close, url::Target};
    let code = u16::from_be_bytes([
        data.first().copied().unwrap_or(0),
        data.get(1).copied().unwrap_or(0),
    ]);
    let reason = text(data.get(2..).unwrap_or(&[]));
    let t = Target::instance("p", "us-central1-a", "vm", 22);
    if let CloseMeaning::Fatal(e) = classify_close(code, &reason, &t) {
        assert_one_line(&e.into_user_error().line());
    }
}

/// The user's ssh config: claims, keyword lines, patterns, and the
/// managed section found, replaced and removed with the rest kept.
pub fn ssh_config(data: &[u8]) {
    use crate::ssh::{claims::Claims, config, pattern};
    let t = text(data);
    let _ = Claims::new().add_config(&t, "config");
    for line in t.lines().take(64) {
        let _ = pattern::keyword_line(line);
        if let Some(words) = pattern::split_words(line) {
            let _ = pattern::host_line_applies("vm-1", &words);
            for w in words.iter().take(8) {
                let _ = pattern::match_pattern("web.us-central1-a.p", w);
                let _ = pattern::match_list("web", w, true);
            }
        }
    }
    if let Ok(p) = config::placement(&t) {
        assert!(p.start <= p.end && p.end <= t.len());
        let section = format!("{}\nHost x\n{}\n", config::BEGIN, config::END);
        let with = config::splice(&t, &section).expect("splice after placement");
        // Taking the section out again gives back what was there, less
        // the old section (when there was one).
        let back = config::remove(&with).expect("markers").expect("section");
        if p.after == "\n" || t.is_empty() {
            assert_eq!(back, t);
        }
    }
}

/// known_hosts text (ours and the user's): aliases, keys, merge.
pub fn known_hosts(data: &[u8]) {
    use crate::ssh::{claims, known_hosts};
    let t = text(data);
    let _ = known_hosts::aliases(&t);
    let _ = known_hosts::keys_of(&t, "compute.1");
    let keys = [("ssh-ed25519".to_string(), "AAAA".to_string())];
    if let Some(m) = known_hosts::merge(&t, "compute.1", &keys) {
        assert!(known_hosts::has_alias(&m, "compute.1"));
    }
    claims::Claims::new().add_known_hosts(&t, "known_hosts");
    let _ = claims::hosts_file_names(&t);
}

/// gcloud's configuration files (INI).
pub fn gcloud_ini(data: &[u8]) {
    let _ = crate::gcloud::parse_ini(&text(data));
}

/// Credential files: service-account keys, authorized users, and the
/// external-account / impersonation shapes.
pub fn credentials(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = crate::auth::parse_source(Path::new("creds.json"), v, "");
    }
}

/// A token endpoint's answer, under any status.
pub fn token_response(data: &[u8]) {
    let status = match data.first().copied().unwrap_or(0) % 4 {
        0 => http::StatusCode::OK,
        1 => http::StatusCode::BAD_REQUEST,
        2 => http::StatusCode::UNAUTHORIZED,
        _ => http::StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = data.get(1..).unwrap_or(&[]);
    if let Err(e) = crate::auth::parse_token_response("token", status, body) {
        assert_one_line(&e.to_string());
    }
}

/// A Compute instance as listed: what passes validation can only make
/// Host block lines that are whole, single lines.
pub fn compute_instance(data: &[u8]) {
    use crate::gce::compute::Instance;
    use crate::setup::plan::{self, Vm};
    let Ok(inst) = serde_json::from_slice::<Instance>(data) else {
        return;
    };
    let _ = inst.is_windows();
    let _ = inst.metadata.ssh_key_values();
    let Ok(mut vm) = Vm::of("p", inst) else {
        return;
    };
    vm.settle(&Default::default());
    for s in [&vm.name, &vm.zone, &vm.id, &vm.full_alias()] {
        assert!(
            !s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || "\"'%$`\\".contains(c)),
            "{s:?} passed validation"
        );
    }
    let cmd = plan::proxy_command("/usr/bin/iap-ssh", "", &vm.project, &vm.zone, &vm.name);
    assert_one_line(&cmd);
    if let Some(ip) = vm.kept.internal_ip {
        assert_one_line(&ip.to_string());
    }
}

/// `ssh-keys` metadata values (any user's lines, any format).
pub fn metadata_keys(data: &[u8]) {
    use crate::ssh::metadata_keys;
    let t = text(data);
    for line in t.lines() {
        if let Some(e) = metadata_keys::parse_line(line) {
            let _ = e.valid_for(0, 0);
        }
    }
}

/// The Windows agent's answers on serial port 4, among console noise.
pub fn windows_reply(data: &[u8]) {
    let t = text(data);
    let _ = crate::rdp::windows::find_reply(&t, "AQAB");
    let _ = crate::rdp::windows::find_reply(&t, "");
}

/// A stream whose reads are the fuzzer's bytes (then EOF) and whose
/// writes go nowhere: the far end of a proxy connection.
struct Peer<'a> {
    data: &'a [u8],
}

impl tokio::io::AsyncRead for Peer<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        // A few bytes at a time, as a network delivers them.
        let n = self.data.len().min(buf.remaining()).min(7);
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Peer<'_> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn proxy(kind: crate::net::proxy::Kind, with_password: bool) -> crate::net::proxy::Proxy {
    crate::net::proxy::Proxy {
        kind,
        host: "proxy.example".into(),
        port: 3128,
        user: with_password.then(|| "ann".into()),
        password: with_password.then(|| "pw".into()),
        from: "https_proxy",
    }
}

/// An HTTP proxy's answer to CONNECT: a tunnel, or one line saying why not.
pub fn http_connect_reply(data: &[u8]) {
    let p = proxy(crate::net::proxy::Kind::Http, data.first() == Some(&b'H'));
    let r = block_on(crate::net::proxy::connect::handshake(
        Peer { data },
        &p,
        "tunnel.cloudproxy.app",
        443,
    ));
    if let Err(e) = r {
        assert_one_line(&e.to_string());
        assert!(!e.to_string().contains("pw"), "the password in {e}");
    }
}

/// A SOCKS5 proxy's answers (method choice, authentication, CONNECT).
pub fn socks5_reply(data: &[u8]) {
    let with_password = data.first().is_some_and(|b| b & 1 == 1);
    let p = proxy(
        crate::net::proxy::Kind::Socks5 { remote_dns: true },
        with_password,
    );
    let r = block_on(crate::net::proxy::socks::open(
        Peer {
            data: data.get(1..).unwrap_or(&[]),
        },
        &p,
        true,
        "tunnel.cloudproxy.app",
        443,
    ));
    if let Err(e) = r {
        assert_one_line(&e.to_string());
    }
}

/// Certificate files (OS Login certificates) and a certificate provider's
/// output (PEM certificate and key).
pub fn certificate(data: &[u8]) {
    let t = text(data);
    let _ = crate::ssh::cert::still_good(&t, "AAAAC3NzaC1lZDI1NTE5AAAAIA", 0);
    let _ = crate::ssh::cert::is_cert_of(&t, "");
    if let Err(e) = crate::net::mtls::parse_provider_output(&t) {
        assert_one_line(&e);
    }
    let _ = crate::net::mtls::decrypt_key(&t, "pw");
}

/// PuTTY: session files (whose are ours) and names from the API made into
/// session file and registry key names.
pub fn putty(data: &[u8]) {
    use crate::ssh::putty;
    let t = text(data);
    let _ = putty::is_ours(&t);
    let f = putty::session_file_name(&t);
    assert!(!f.contains('/') && f != "." && f != "..", "{f:?}");
    let k = putty::registry_key_name(&t);
    assert!(!k.contains('\\') && !k.contains('\n'), "{k:?}");
    // Every backslash doubled, nothing else touched (PuTTY reads it back).
    let e = putty::escape_proxy_command(&t);
    assert_eq!(e.replace("\\\\", "\\"), t);
}

/// `no_proxy` lists (first line) against a host (the rest).
pub fn no_proxy(data: &[u8]) {
    let t = text(data);
    let (list, host) = t.split_once('\n').unwrap_or((&t, "tunnel.cloudproxy.app"));
    let np = crate::net::proxy::no_proxy::NoProxy::parse(list);
    let _ = np.bypasses(host);
    let _ = np.bypasses("::1");
    let _ = np.bypasses("10.1.2.3");
}
