//! Certificate-based access and universe domains end to end: the fake
//! relay asks for (or requires) a client certificate from its client CA;
//! iap-ssh loads one from gcloud's `certificate_config.json` or from an
//! Endpoint Verification helper; and, with `IAP_SSH_CONNECT_TO` sending
//! Google's real names to the fake, the mTLS and universe host names are
//! the ones used.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The fake's port, for `IAP_SSH_CONNECT_TO=::127.0.0.1:PORT`.
fn fake_port(f: &Fleet) -> String {
    f.fake
        .info
        .tunnel_url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string()
}

/// gcloud's configuration directory with `context_aware/*` on and a
/// `certificate_config.json` naming `cert`/`key` (workload).
fn gcloud_with_workload_cert(dir: &Path, cert: &Path, key: &Path) -> PathBuf {
    let g = dir.join("gcloud");
    std::fs::create_dir_all(g.join("configurations")).unwrap();
    std::fs::write(g.join("active_config"), "default").unwrap();
    std::fs::write(
        g.join("configurations/config_default"),
        "[context_aware]\nuse_client_certificate = true\n",
    )
    .unwrap();
    std::fs::write(
        g.join("certificate_config.json"),
        serde_json::json!({
            "cert_configs": {"workload": {"cert_path": cert, "key_path": key}},
            "libs": {"ecp": "/nonexistent/ecp"}
        })
        .to_string(),
    )
    .unwrap();
    g
}

/// The endpoint overrides the harness sets; removed to use real names.
const URL_VARS: &[&str] = &[
    "IAP_SSH_TUNNEL_URL",
    "IAP_SSH_COMPUTE_URL",
    "IAP_SSH_OSLOGIN_URL",
    "IAP_SSH_TOKEN_URL",
    "IAP_SSH_TOKENINFO_URL",
    "IAP_SSH_IAP_URL",
    "IAP_SSH_IAMCREDENTIALS_URL",
];

fn hosts_seen(f: &Fleet) -> Vec<String> {
    f.fake
        .state
        .events()
        .into_iter()
        .filter(|e| e.starts_with("request host="))
        .collect()
}

#[test]
fn device_certificate_from_certificate_config_on_the_mtls_hosts() {
    let f = Fleet::new(|c| c.client_certs = Some("require".into()));
    // Without a certificate: the policy's 4033 is named as such, not as IAM.
    let out = f.banner(&[], &[], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    let line = one_line(&out);
    assert!(
        line.contains("certificate-based access: no valid client certificate")
            && line.contains("context_aware/use_client_certificate true")
            && !line.contains("tunnelResourceAccessor"),
        "{line}"
    );

    // With gcloud's certificate config, under Google's real names (sent to
    // the fake): setup, then ssh through the written config.
    let g = gcloud_with_workload_cert(
        f.tmp.path(),
        &f.fake.info.client_cert_file,
        &f.fake.info.client_key_file,
    );
    let connect_to = format!("::127.0.0.1:{}", fake_port(&f));
    let g = g.display().to_string();
    let env = [
        ("CLOUDSDK_CONFIG", g.as_str()),
        ("IAP_SSH_CONNECT_TO", connect_to.as_str()),
    ];
    // A refresh-token credential (not the harness's static token), so the
    // OAuth call is made too; both projects, so OS Login is asked.
    let mut c = f.iap_ssh();
    c.args(["setup", "--project", PROJ_A, "--project", PROJ_B]);
    for k in URL_VARS {
        c.env_remove(k);
    }
    c.env_remove("IAP_SSH_ACCESS_TOKEN")
        .env(
            "GOOGLE_APPLICATION_CREDENTIALS",
            &f.fake.info.authorized_user_file,
        )
        .envs(env);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    f.wait_keys("vm-project", LOCAL_USER);
    let mut c = f.tool("ssh");
    c.arg("-F").arg(f.config_path()).args([
        "-o",
        "BatchMode=yes",
        "vm-project",
        "echo through-mtls",
    ]);
    for k in URL_VARS {
        c.env_remove(k);
    }
    c.envs(env);
    let out = c.output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "through-mtls",
        "{}",
        stderr_of(&out)
    );
    let seen = hosts_seen(&f);
    for want in [
        "host=compute.mtls.googleapis.com path=/compute/v1/projects/iap-proj-a",
        "host=oauth2.mtls.googleapis.com path=/token",
        "host=oslogin.mtls.googleapis.com path=/v1/users/",
        "host=mtls.tunnel.cloudproxy.app path=/v4/connect",
    ] {
        assert!(
            seen.iter()
                .any(|e| e.contains(want) && e.ends_with("client_cert=yes")),
            "{want} with a certificate: {seen:#?}"
        );
    }
    assert!(
        !seen.iter().any(|e| e.contains("host=")
            && e.ends_with("client_cert=no")
            && !e.contains("path=/v4/")
            && e.contains("mtls")),
        "every mTLS REST call carried the certificate: {seen:#?}"
    );
}

#[test]
fn endpoint_verification_helper_with_an_overridden_relay() {
    let f = Fleet::new(|c| c.client_certs = Some("require".into()));
    let d = f.tmp.path();
    let g = d.join("gcloud");
    std::fs::create_dir_all(g.join("configurations")).unwrap();
    std::fs::write(g.join("active_config"), "default").unwrap();
    std::fs::write(
        g.join("configurations/config_default"),
        "[context_aware]\nuse_client_certificate = True\n",
    )
    .unwrap();
    let helper = d.join("helper.sh");
    // Endpoint Verification's helper: a plain key; or (`--encrypted`) an
    // encrypted one, with its PASSPHRASE only under `--with_passphrase`.
    let calls = d.join("helper-calls");
    std::fs::write(
        &helper,
        format!(
            r#"#!/bin/sh
echo "$*" >> '{calls}'
case "$*" in
  *--fail*) exit 3 ;;
  *--encrypted*--with_passphrase*) cat '{cert}' '{enc}'; printf -- '-----BEGIN PASSPHRASE-----\n{pass}\n-----END PASSPHRASE-----\n' ;;
  *--encrypted*) cat '{cert}' '{enc}' ;;
  *) echo 'noise before'; cat '{cert}' '{key}' ;;
esac
"#,
            calls = calls.display(),
            cert = f.fake.info.client_cert_file.display(),
            key = f.fake.info.client_key_file.display(),
            enc = f.fake.info.client_key_encrypted_file.display(),
            pass = fake_gcp::certs::CLIENT_KEY_PASSPHRASE,
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(f.home.join(".secureConnect")).unwrap();
    let meta = f.home.join(".secureConnect/context_aware_metadata.json");
    let write_meta = |args: &[&str]| {
        let mut argv = vec![helper.display().to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        std::fs::write(
            &meta,
            serde_json::json!({"cert_provider_command": argv}).to_string(),
        )
        .unwrap();
    };
    write_meta(&["--print_certificate"]);
    let gs = g.display().to_string();
    // IAP_SSH_TUNNEL_URL points at the fake: the certificate is presented
    // to an overridden relay too.
    assert_banner(&f.banner(&[], &[("CLOUDSDK_CONFIG", &gs)], &[]));
    assert!(
        hosts_seen(&f)
            .iter()
            .any(|e| e.contains("path=/v4/connect") && e.ends_with("client_cert=yes")),
        "{:#?}",
        hosts_seen(&f)
    );
    // A helper that prints an encrypted key: run again with
    // --with_passphrase, the key decrypted in memory.
    write_meta(&["--encrypted"]);
    std::fs::write(&calls, "").unwrap();
    assert_banner(&f.banner(&[], &[("CLOUDSDK_CONFIG", &gs)], &[]));
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "--encrypted\n--encrypted --with_passphrase\n"
    );
    // A failing helper: one line, and no tunnel attempted.
    write_meta(&["--fail"]);
    let connects = hosts_seen(&f).len();
    let out = f.banner(&[], &[("CLOUDSDK_CONFIG", &gs)], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let line = one_line(&out);
    assert!(
        line.contains("certificate provider command") && line.contains("exited with status 3"),
        "{line}"
    );
    assert_eq!(hosts_seen(&f).len(), connects);
}

#[test]
fn a_relay_requiring_a_certificate_at_the_handshake() {
    let f = Fleet::new(|c| c.client_certs = Some("require_tls".into()));
    let out = f.banner(&[], &[], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    let line = one_line(&out);
    assert!(
        line.contains("certificate-based access: no valid client certificate")
            && line.contains("CertificateRequired"),
        "{line}"
    );
    // A certificate from a CA the relay does not trust.
    let g = gcloud_with_workload_cert(
        f.tmp.path(),
        &f.fake.info.rogue_cert_file,
        &f.fake.info.rogue_key_file,
    );
    let gs = g.display().to_string();
    let out = f.banner(&[], &[("CLOUDSDK_CONFIG", &gs)], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    let line = one_line(&out);
    assert!(
        line.contains("refused the client certificate (TLS alert UnknownCA)")
            && line.contains("issued by a CA the access policy trusts"),
        "{line}"
    );
    // The trusted one works.
    let g = gcloud_with_workload_cert(
        f.tmp.path(),
        &f.fake.info.client_cert_file,
        &f.fake.info.client_key_file,
    );
    let gs = g.display().to_string();
    assert_banner(&f.banner(&[], &[("CLOUDSDK_CONFIG", &gs)], &[]));
}

#[test]
fn a_universe_domain_selects_its_hosts() {
    let f = Fleet::new(|_| {});
    let connect_to = format!("::127.0.0.1:{}", fake_port(&f));
    let mut c = f.iap_ssh();
    c.args([
        "ssh",
        "--project",
        PROJ_A,
        "--zone",
        "us-central1-b",
        "vm-project",
        "--",
        "echo in-universe",
    ]);
    for k in URL_VARS {
        c.env_remove(k);
    }
    c.env("CLOUDSDK_CORE_UNIVERSE_DOMAIN", "universe.test")
        .env("IAP_SSH_CONNECT_TO", &connect_to);
    let out = c.output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "in-universe",
        "{}",
        stderr_of(&out)
    );
    let seen = hosts_seen(&f);
    for want in [
        "host=compute.universe.test path=/compute/v1/projects/iap-proj-a",
        "host=tunnel-cloudproxy.universe.test path=/v4/connect",
    ] {
        assert!(seen.iter().any(|e| e.contains(want)), "{want}: {seen:#?}");
    }
    assert!(
        !seen
            .iter()
            .any(|e| e.contains("googleapis.com") || e.contains("cloudproxy.app")),
        "{seen:#?}"
    );
    // A malformed universe is refused up front.
    let out = f.banner(&[], &[("CLOUDSDK_CORE_UNIVERSE_DOMAIN", "evil/x")], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        one_line(&out).contains("is not a domain name"),
        "{}",
        one_line(&out)
    );
}
