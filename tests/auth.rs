//! Credential sources end to end against the fake's token endpoints: service
//! account (JWT bearer), authorized user (refresh token) from
//! GOOGLE_APPLICATION_CREDENTIALS or gcloud's ADC file, the metadata server,
//! and the on-disk token cache.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use common::*;
use fake_gcp::state::Stats;

/// Runs an echo session through `iap-ssh -vv proxy` (port 7 runs `cat`).
fn echo(w: &World, env: &[(&str, String)]) -> std::process::Output {
    let mut c = w.iap_ssh(false);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c
        .args(["-vv", "proxy", "vm1.us-central1-a.p1", "7"])
        .write_stdin("ping\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "proxy failed: {}", stderr_of(&out));
    assert_eq!(out.stdout, b"ping\n");
    out
}

fn cache_files(w: &World) -> Vec<PathBuf> {
    let dir = w.home.join(".cache/iap-ssh/tokens");
    std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

fn cached_token(w: &World) -> String {
    let files = cache_files(w);
    assert_eq!(files.len(), 1, "one cache file expected: {files:?}");
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "token cache must be private");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

#[test]
fn service_account_key_and_token_cache() {
    let w = World::new();
    let gac = [(
        "GOOGLE_APPLICATION_CREDENTIALS",
        w.fake.info.service_account_file.display().to_string(),
    )];
    let first = echo(&w, &gac);
    assert_eq!(Stats::get(&w.fake.state.stats.token_requests), 1);
    let token = cached_token(&w);
    assert!(token.starts_with("ya29.fake-"));
    // Second start: served from the cache, no token request.
    let second = echo(&w, &gac);
    assert_eq!(
        Stats::get(&w.fake.state.stats.token_requests),
        1,
        "cache not used"
    );
    for out in [&first, &second] {
        let err = stderr_of(out);
        assert!(err.contains("service account tunnel-sa@"), "{err}");
        assert!(!err.contains(&token), "the token leaked into -vv output");
    }
    assert!(
        w.fake
            .state
            .events()
            .iter()
            .any(|e| e == "token jwt-bearer ok"),
        "{:?}",
        w.fake.state.events()
    );
}

#[test]
fn authorized_user_from_gcloud_adc_file() {
    let w = World::new();
    let adc = w
        .home
        .join(".config/gcloud/application_default_credentials.json");
    std::fs::create_dir_all(adc.parent().unwrap()).unwrap();
    std::fs::copy(&w.fake.info.authorized_user_file, &adc).unwrap();
    let out = echo(&w, &[]);
    assert!(
        stderr_of(&out).contains("authorized user credentials"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(Stats::get(&w.fake.state.stats.token_requests), 1);
    let token = cached_token(&w);
    assert!(!stderr_of(&out).contains(&token));
    assert!(
        w.fake
            .state
            .events()
            .iter()
            .any(|e| e == "token refresh_token ok")
    );
}

#[test]
fn authorized_user_from_cloudsdk_config() {
    let w = World::new();
    let cfg = w.path("gcloud-config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::copy(
        &w.fake.info.authorized_user_file,
        cfg.join("application_default_credentials.json"),
    )
    .unwrap();
    echo(&w, &[("CLOUDSDK_CONFIG", cfg.display().to_string())]);
    assert_eq!(Stats::get(&w.fake.state.stats.token_requests), 1);
}

#[test]
fn revoked_refresh_token_is_a_clear_error() {
    let w = World::new();
    let bad = w.path("revoked.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&w.fake.info.authorized_user_file).unwrap()).unwrap();
    v["refresh_token"] = "1//revoked".into();
    std::fs::write(&bad, v.to_string()).unwrap();
    let out = w
        .iap_ssh(false)
        .env("GOOGLE_APPLICATION_CREDENTIALS", &bad)
        .args(["proxy", "vm1.us-central1-a.p1", "7"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr_of(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("invalid_grant"), "{err}");
    assert!(
        err.contains("gcloud auth application-default login"),
        "{err}"
    );
    assert!(!err.contains("1//revoked"), "refresh token leaked: {err}");
}

#[test]
fn context_aware_access_denial_is_named() {
    let w = World::with(|c| c.faults.token_caa_denied = true);
    let out = w
        .iap_ssh(false)
        .env(
            "GOOGLE_APPLICATION_CREDENTIALS",
            &w.fake.info.authorized_user_file,
        )
        .args(["proxy", "vm1.us-central1-a.p1", "7"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let line = one_line(&out);
    assert!(
        line.contains("access_denied (Account restricted)")
            && line.contains("blocked by Context Aware Access")
            && line.contains("context_aware/use_client_certificate"),
        "{line}"
    );
}

#[test]
fn metadata_server_last() {
    let w = World::new();
    echo(&w, &[]);
    assert_eq!(Stats::get(&w.fake.state.stats.metadata_token_requests), 1);
    assert_eq!(Stats::get(&w.fake.state.stats.token_requests), 0);
    echo(&w, &[]);
    assert_eq!(
        Stats::get(&w.fake.state.stats.metadata_token_requests),
        1,
        "metadata token must be cached too"
    );
}

#[test]
fn static_token_from_gcloud_variable_and_never_printed() {
    let w = World::new();
    let t = w.fake.info.access_token.clone();
    let out = echo(&w, &[("CLOUDSDK_AUTH_ACCESS_TOKEN", t.clone())]);
    let err = stderr_of(&out);
    assert!(
        err.contains("static token from CLOUDSDK_AUTH_ACCESS_TOKEN"),
        "{err}"
    );
    assert!(!err.contains(&t), "static token leaked: {err}");
    assert!(cache_files(&w).is_empty(), "static tokens are not cached");
}

#[test]
fn bad_credential_file() {
    let w = World::new();
    let f = w.path("k.json");
    std::fs::write(&f, "{not json").unwrap();
    let out = w
        .iap_ssh(false)
        .env("GOOGLE_APPLICATION_CREDENTIALS", &f)
        .args(["proxy", "vm1.us-central1-a.p1", "7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr_of(&out);
    assert!(
        err.starts_with(&format!(
            "iap-ssh: credential file {}: not JSON",
            f.display()
        )),
        "{err}"
    );
}
