//! Through a real HTTP proxy (Debian's tinyproxy, Basic authentication on):
//! the relay WebSocket and every REST call go through CONNECT tunnels; a
//! wrong password, a proxy that refuses the relay's port and a broken
//! proxy setting each end in one line naming the proxy; NO_PROXY goes
//! direct.

mod common;

use common::*;

/// `127.0.0.1:PORT` of the fake (relay and APIs share one port).
fn fake_target(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn ssh_and_scp_through_an_authenticating_proxy() {
    let w = World::new();
    let proxy = HttpProxy::start(&w.path("proxy"), &[]);
    let target = fake_target(&w.fake.info.tunnel_url);
    let url = proxy.url(PROXY_PASSWORD);
    let out = w
        .tool("ssh")
        .env("https_proxy", &url)
        .args(w.ssh_opts(&w.proxy_command()))
        .arg(w.remote())
        .arg("echo ok")
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh: {}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    assert_eq!(proxy.connects_to(&target), 1, "the relay through the proxy");

    let src = w.path("src.bin");
    random_file(&src, 8 * 1024 * 1024, 21);
    scp_round_trip(&w, &w.ssh_opts(&w.proxy_command()), &src, |c| {
        c.env("HTTPS_PROXY", &url);
    });
    assert_eq!(proxy.connects_to(&target), 3, "both scp sessions too");
}

/// `iap-ssh proxy VM 22` with `vars`, asserted to fail; its one line.
fn proxy_fails(w: &World, vars: &[(&str, &str)]) -> String {
    let mut c = w.iap_ssh(true);
    for (k, v) in vars {
        c.env(k, v);
    }
    let out = c
        .args(["proxy", &format!("{VM}.{ZONE}.{PROJECT}"), "22"])
        .write_stdin("")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{vars:?}");
    one_line(&out)
}

#[test]
fn wrong_password_or_a_refused_port_is_one_line_about_the_proxy() {
    let w = World::new();
    let proxy = HttpProxy::start(&w.path("proxy"), &[]);
    let line = proxy_fails(&w, &[("https_proxy", &proxy.url("wrong"))]);
    assert!(
        line.contains(&format!(
            "proxy 127.0.0.1:{} requires authentication: the user and password from https_proxy were refused",
            proxy.port
        )),
        "{line}"
    );
    // No credentials at all: said so, with where to put them.
    let bare = format!("http://127.0.0.1:{}", proxy.port);
    let line = proxy_fails(&w, &[("https_proxy", &bare)]);
    assert!(
        line.contains("requires authentication, and https_proxy gives no user and password")
            && line.contains("http://USER:PASSWORD@HOST:PORT"),
        "{line}"
    );
    assert!(!line.contains("roles/"), "never an IAM hint: {line}");
    assert!(!line.contains("wrong"), "never the password: {line}");
    assert_eq!(
        w.fake.state.events().len(),
        0,
        "the relay never heard of it"
    );

    // A proxy that only lets CONNECT through to 443.
    let strict = HttpProxy::start(&w.path("strict"), &[443]);
    let target = fake_target(&w.fake.info.tunnel_url);
    let line = proxy_fails(&w, &[("https_proxy", &strict.url(PROXY_PASSWORD))]);
    assert!(
        line.contains(&format!(
            "proxy 127.0.0.1:{} refused CONNECT to {target}: HTTP/1.",
            strict.port
        )) && line.contains("403"),
        "{line}"
    );
    assert!(!line.contains("roles/"), "never an IAM hint: {line}");
}

#[test]
fn no_proxy_goes_direct_and_bad_settings_are_refused() {
    let w = World::new();
    // Nothing listens on the proxy's port: only a bypass can succeed.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://127.0.0.1:{}", dead.local_addr().unwrap().port());
    drop(dead);
    let (out, input) = echo_through_env(
        &w,
        &[
            ("https_proxy", &dead_url),
            ("NO_PROXY", "localhost, 127.0.0.0/8"),
        ],
    );
    assert_echo_ok(&out, &input);

    let line = proxy_fails(&w, &[("https_proxy", &dead_url)]);
    assert!(
        line.contains(&format!("cannot reach proxy {}", &dead_url[7..]))
            && line.contains("from https_proxy"),
        "{line}"
    );

    for (vars, want) in [
        (
            vec![("https_proxy", "socks4://127.0.0.1:1080")],
            "socks4:// is not supported; use socks5h://",
        ),
        (
            vec![("ALL_PROXY", "https://127.0.0.1:3128")],
            "ALL_PROXY: https:// proxies",
        ),
        (
            vec![
                ("CLOUDSDK_PROXY_TYPE", "http"),
                ("CLOUDSDK_PROXY_ADDRESS", "127.0.0.1"),
            ],
            "set all or none of proxy/type",
        ),
        (
            vec![
                ("CLOUDSDK_PROXY_TYPE", "socks4"),
                ("CLOUDSDK_PROXY_ADDRESS", "127.0.0.1"),
                ("CLOUDSDK_PROXY_PORT", "1"),
            ],
            "SOCKS4 is not supported",
        ),
    ] {
        let line = proxy_fails(&w, &vars);
        assert!(line.contains(want), "{vars:?}: {line}");
    }
}

fn echo_through_env(w: &World, vars: &[(&str, &str)]) -> (std::process::Output, Vec<u8>) {
    let input: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut c = w.iap_ssh(true);
    for (k, v) in vars {
        c.env(k, v);
    }
    let out = c
        .args(["proxy", &format!("{VM}.{ZONE}.{PROJECT}"), "7"])
        .write_stdin(input.clone())
        .output()
        .unwrap();
    (out, input)
}

#[test]
fn setup_and_ssh_through_gclouds_proxy_properties() {
    let f = Fleet::new(|_| {});
    let proxy = HttpProxy::start(&f.tmp.path().join("proxy"), &[]);
    let target = fake_target(&f.fake.info.tunnel_url);
    let props = [
        ("CLOUDSDK_PROXY_TYPE", "http".to_string()),
        ("CLOUDSDK_PROXY_ADDRESS", "127.0.0.1".to_string()),
        ("CLOUDSDK_PROXY_PORT", proxy.port.to_string()),
        ("CLOUDSDK_PROXY_USERNAME", PROXY_USER.to_string()),
        ("CLOUDSDK_PROXY_PASSWORD", PROXY_PASSWORD.to_string()),
    ];
    let mut c = f.iap_ssh();
    c.args(["setup", "--project", PROJ_A, "--project", PROJ_B]);
    for (k, v) in &props {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "setup: {}", stderr_of(&out));
    let api_calls = proxy.connects_to(&target);
    assert!(
        api_calls >= 3,
        "token, Compute and OS Login through the proxy: {api_calls}"
    );

    f.wait_keys("vm-project", LOCAL_USER);
    let mut ssh = f.tool("ssh");
    ssh.arg("-F").arg(f.config_path()).args([
        "-o",
        "BatchMode=yes",
        "vm-project.us-central1-b.iap-proj-a",
        "whoami",
    ]);
    for (k, v) in &props {
        ssh.env(k, v);
    }
    let out = ssh.output().unwrap();
    assert!(out.status.success(), "ssh: {}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), LOCAL_USER);
    assert!(
        proxy.connects_to(&target) > api_calls,
        "the relay through the proxy"
    );

    // doctor says which way the tunnel goes.
    let mut c = f.iap_ssh();
    c.arg("doctor");
    for (k, v) in &props {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "network: through HTTP proxy 127.0.0.1:{} (from gcloud's proxy/* properties) to 127.0.0.1",
            proxy.port
        )),
        "{text}"
    );

    // The same setup with a wrong proxy password: one line, non-zero.
    let mut c = f.iap_ssh();
    c.args(["setup", "--project", PROJ_A]);
    for (k, v) in &props {
        c.env(k, v);
    }
    let out = c.env("CLOUDSDK_PROXY_PASSWORD", "wrong").output().unwrap();
    assert!(!out.status.success());
    // On the REST path too: the proxy's own line, not "cannot reach".
    let line = one_line(&out);
    assert!(
        line.starts_with(&format!(
            "iap-ssh: proxy 127.0.0.1:{} requires authentication",
            proxy.port
        )) && !line.contains("wrong"),
        "{line}"
    );
}

#[test]
fn through_a_socks5_proxy() {
    let w = World::new();
    let socks = SocksProxy::start(&w.path("socks"));
    let in_log = |url: &str| fake_target(url).replace(':', " port ");
    // ALL_PROXY=socks5h:// (the proxy resolves names): the relay through it.
    let (out, input) = echo_through_env(&w, &[("ALL_PROXY", &socks.url("socks5h"))]);
    assert_echo_ok(&out, &input);
    assert_eq!(socks.closed_to(&in_log(&w.fake.info.tunnel_url), 1), 1);
    // socks5:// resolves here; the same way through.
    let (out, input) = echo_through_env(&w, &[("all_proxy", &socks.url("socks5"))]);
    assert_echo_ok(&out, &input);
    assert_eq!(socks.closed_to(&in_log(&w.fake.info.tunnel_url), 2), 2);

    // gcloud's proxy/type socks5: the REST calls of list go through it too.
    let f = Fleet::new(|_| {});
    let port = socks.port.to_string();
    let out = f
        .iap_ssh()
        .env("CLOUDSDK_PROXY_TYPE", "socks5")
        .env("CLOUDSDK_PROXY_ADDRESS", "127.0.0.1")
        .env("CLOUDSDK_PROXY_PORT", &port)
        .args(["list", "--project", PROJ_A])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(socks.closed_to(&in_log(&f.fake.info.api_url), 1) >= 1);
    let out = f
        .iap_ssh()
        .env("CLOUDSDK_PROXY_TYPE", "socks5")
        .env("CLOUDSDK_PROXY_ADDRESS", "127.0.0.1")
        .env("CLOUDSDK_PROXY_PORT", &port)
        .arg("doctor")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &stderr_of(&out);
    assert!(
        text.contains(&format!(
            "network: through SOCKS5 proxy 127.0.0.1:{port} (from gcloud's proxy/* properties)"
        )),
        "{text}"
    );

    // Gone: one line naming it.
    let url = socks.url("socks5h");
    drop(socks);
    let line = proxy_fails(&w, &[("ALL_PROXY", &url)]);
    assert!(
        line.contains(&format!(
            "cannot reach proxy 127.0.0.1:{port} (from ALL_PROXY)"
        )),
        "{line}"
    );
}
