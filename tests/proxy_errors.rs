//! Every failure a user can meet on the ProxyCommand path: exactly one line
//! with cause and fix on stderr, the documented exit status, no panic.

mod common;

use common::*;

fn proxy_fails(
    w: &World,
    with_token: bool,
    extra_env: &[(&str, &str)],
    target: &str,
    port: &str,
) -> (i32, String) {
    let mut c = w.iap_ssh(with_token);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    let out = c
        .args(["proxy", target, port])
        .write_stdin("")
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(!err.contains("stack backtrace"), "backtrace: {err}");
    assert_eq!(
        err.lines().count(),
        1,
        "exactly one line expected, got: {err}"
    );
    assert!(out.stdout.is_empty());
    (out.status.code().expect("exit code"), err)
}

#[test]
fn close_4033_bad_token() {
    let w = World::new();
    let (code, err) = proxy_fails(
        &w,
        false,
        &[("IAP_SSH_ACCESS_TOKEN", "not-a-valid-token")],
        "vm1.us-central1-a.p1",
        "22",
    );
    assert_eq!(code, 4);
    assert_eq!(
        err,
        "iap-ssh: IAP denied access to vm1 (zone us-central1-a, project p1): close 4033 'not authorized'; \
         hint: grant your account the role roles/iap.tunnelResourceAccessor on the project or instance \
         (an admin: `iap-ssh grant --project p1 --zone us-central1-a --instance vm1 --port 22 --member user:YOU`), and check the project id\n"
    );
}

#[test]
fn close_4033_unknown_project() {
    let w = World::new();
    let (code, err) = proxy_fails(&w, true, &[], "vm1.us-central1-a.no-such-project", "22");
    assert_eq!(code, 4);
    assert!(err.contains("close 4033 'not authorized'"), "{err}");
}

#[test]
fn close_4047_unknown_instance() {
    let w = World::new();
    let (code, err) = proxy_fails(&w, true, &[], "nope.us-central1-a.p1", "22");
    assert_eq!(code, 5);
    assert_eq!(
        err,
        "iap-ssh: IAP cannot find instance nope (zone us-central1-a, project p1): close 4047 'Failed to lookup instance'; \
         hint: check the instance name, zone and project (`gcloud compute instances list`); a VM created moments ago may not be known to IAP yet\n"
    );
}

#[test]
fn close_4047_unknown_interface() {
    let w = World::new();
    let mut c = w.iap_ssh(true);
    let out = c
        .args(["proxy", "--interface", "nic1", "vm1.us-central1-a.p1", "22"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr_of(&out).contains("close 4047"));
}

#[test]
fn close_4003_backend_refused() {
    let w = World::new();
    let (code, err) = proxy_fails(
        &w,
        true,
        &[],
        "vm1.us-central1-a.p1",
        &CLOSED_PORT.to_string(),
    );
    assert_eq!(code, 6);
    assert_eq!(
        err,
        "iap-ssh: IAP could not connect to port 23 of vm1 (zone us-central1-a, project p1): close 4003 'failed to connect to backend'; \
         hint: allow ingress from 35.235.240.0/20 to tcp:23 in a firewall rule on the VM's network, and check the VM is running and listening on port 23\n"
    );
}

#[test]
fn ssh_shows_the_proxy_error_line() {
    let w = World::new();
    let proxy = format!("{} proxy nope.{ZONE}.{PROJECT} %p", iap_ssh_bin().display());
    let out = w
        .tool("ssh")
        .args(w.ssh_opts(&proxy))
        .arg(w.remote())
        .arg("true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let err = stderr_of(&out);
    assert!(
        err.contains(
            "iap-ssh: IAP cannot find instance nope (zone us-central1-a, project p1): close 4047"
        ),
        "{err}"
    );
}

#[test]
fn no_credentials() {
    let w = World::new();
    let (code, err) = proxy_fails(
        &w,
        false,
        &[("IAP_SSH_METADATA_URL", "")],
        "vm1.us-central1-a.p1",
        "22",
    );
    assert_eq!(code, 3);
    assert_eq!(
        err,
        "iap-ssh: no Google credentials found; hint: run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a key file\n"
    );
    assert_eq!(
        fake_gcp::state::Stats::get(&w.fake.state.stats.connects),
        0,
        "nothing may reach the relay without credentials"
    );
}

#[test]
fn plaintext_relay_url_to_remote_host_is_refused() {
    let w = World::new();
    let (code, err) = proxy_fails(
        &w,
        true,
        &[("IAP_SSH_TUNNEL_URL", "ws://tunnel.example.com")],
        "vm1.z.p",
        "22",
    );
    assert_eq!(code, 2);
    assert!(
        err.starts_with(
            "iap-ssh: IAP_SSH_TUNNEL_URL=ws://tunnel.example.com sends traffic unencrypted"
        ),
        "{err}"
    );
}

#[test]
fn untrusted_relay_certificate() {
    let w = World::new();
    let (code, err) = proxy_fails(
        &w,
        true,
        &[("IAP_SSH_CA_FILE", "")],
        "vm1.us-central1-a.p1",
        "22",
    );
    assert_eq!(code, 1);
    assert!(err.contains("certificate"), "{err}");
    assert!(err.contains("IAP_SSH_CA_FILE"), "{err}");

    // gcloud told to trust a CA: the hint hands its path to IAP_SSH_CA_FILE
    // (which alone adds roots), on the relay and on the REST path.
    let ca = w.fake.info.ca_file.display().to_string();
    let (code, err) = proxy_fails(
        &w,
        true,
        &[
            ("IAP_SSH_CA_FILE", ""),
            ("CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", ca.as_str()),
        ],
        "vm1.us-central1-a.p1",
        "22",
    );
    assert_eq!(code, 1);
    assert!(err.contains(&format!("IAP_SSH_CA_FILE={ca}")), "{err}");
    let f = Fleet::new(|_| {});
    let out = f
        .iap_ssh()
        .env("IAP_SSH_CA_FILE", "")
        .env("CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", &ca)
        .args(["list", "--project", PROJ_A])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let line = one_line(&out);
    assert!(
        line.contains("UnknownIssuer") && line.contains(&format!("IAP_SSH_CA_FILE={ca}")),
        "{line}"
    );
}

#[test]
fn relay_unreachable() {
    let w = World::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("wss://127.0.0.1:{port}");
    let (code, err) = proxy_fails(
        &w,
        true,
        &[("IAP_SSH_TUNNEL_URL", &url)],
        "vm1.us-central1-a.p1",
        "22",
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!(
            "iap-ssh: cannot connect to the IAP relay at 127.0.0.1:{port}"
        )),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let w = World::new();
    let (code, err) = proxy_fails(&w, true, &[], "vm1", "22");
    assert_eq!(code, 2);
    assert!(err.contains("no zone given"), "{err}");
    // gcloud's active configuration fills the gap (no API call needed).
    let g = w.home.join(".config/gcloud/configurations");
    std::fs::create_dir_all(&g).unwrap();
    std::fs::write(
        g.join("config_default"),
        "[core]\nproject = p1\n[compute]\nzone = us-central1-a\n",
    )
    .unwrap();
    let out = w
        .iap_ssh(true)
        .args(["proxy", "vm1", "7"])
        .write_stdin("via gcloud config\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via gcloud config\n");
    let out = w
        .iap_ssh(true)
        .args(["proxy", "vm1.z.p", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn absurd_timeouts_do_not_panic() {
    let w = World::new();
    let max = u64::MAX.to_string();
    let out = w
        .iap_ssh(true)
        .args(["proxy", "--stall-timeout", &max, "--keepalive", &max])
        .args(["--reconnect-window", &max, "--connect-timeout", &max])
        .args(["vm1.us-central1-a.p1", "7"])
        .write_stdin("hello")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"hello");
}

#[test]
fn an_absurd_token_lifetime_or_a_tampered_cache_does_not_panic() {
    let w = World::with(|c| c.token_lifetime_secs = u64::MAX);
    let sa = w.fake.info.service_account_file.display().to_string();
    let run = || {
        w.iap_ssh(false)
            .env("GOOGLE_APPLICATION_CREDENTIALS", &sa)
            .args(["proxy", "vm1.us-central1-a.p1", "7"])
            .write_stdin("hello")
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"hello");
    let cache = w.home.join(".cache/iap-ssh/tokens");
    let mut n = 0;
    for f in std::fs::read_dir(&cache).unwrap() {
        let f = f.unwrap().path();
        std::fs::write(
            &f,
            format!(r#"{{"access_token":"tampered","expires_at":{}}}"#, u64::MAX),
        )
        .unwrap();
        n += 1;
    }
    assert_eq!(n, 1, "one cached token");
    let out = run();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"hello");
}

#[test]
fn a_panic_is_one_line_and_restores_stdin_flags() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let w = World::new();
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own (close-on-exec, so
    // the child does not inherit the write end).
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (r, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // Same open file description as the child's stdin: same flags.
    let watch = r.try_clone().unwrap();
    let flags = |fd: &OwnedFd| unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert_eq!(flags(&watch) & libc::O_NONBLOCK, 0);
    let out = w
        .iap_ssh_std(true)
        .env("IAP_SSH_TEST_PANIC", "1")
        .args(["proxy", "vm1.us-central1-a.p1", "7"])
        .stdin(std::process::Stdio::from(r))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // No input: a proxy that does not panic sees EOF and ends by itself.
    drop(wr);
    let out = out.wait_with_output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("iap-ssh: internal error: IAP_SSH_TEST_PANIC is set at "),
        "{err}"
    );
    assert!(err.contains("hint: this is a bug"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert_eq!(
        flags(&watch) & libc::O_NONBLOCK,
        0,
        "stdin left non-blocking"
    );
}
