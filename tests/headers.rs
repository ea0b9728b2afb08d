//! gcloud's `core/request_reason` reaches Google as `X-Goog-Request-Reason`
//! on the relay WebSocket and on REST calls, and a value that would inject
//! a header is refused before anything is sent.

mod common;

use common::*;

/// Non-ASCII on purpose: sent as its UTF-8 bytes on both paths.
const REASON: &str = "ticket INC-42: disk full on vm1 (Zürich, 東京)";

fn has_reason(events: &[String], path: &str) -> bool {
    events.iter().any(|e| {
        e.starts_with("request reason ") && e.contains(path) && e.ends_with(&format!(": {REASON}"))
    })
}

#[test]
fn request_reason_goes_to_the_relay_and_the_apis() {
    let w = World::new();
    let input: Vec<u8> = b"hello relay".to_vec();
    let out = w
        .iap_ssh(true)
        .env("CLOUDSDK_CORE_REQUEST_REASON", REASON)
        .args(["proxy", &format!("{VM}.{ZONE}.{PROJECT}"), "7"])
        .write_stdin(input.clone())
        .output()
        .unwrap();
    assert_echo_ok(&out, &input);
    let events = w.fake.state.events();
    assert!(has_reason(&events, "/v4/connect"), "{events:?}");

    let f = Fleet::new(|_| {});
    let out = f
        .iap_ssh()
        .env("CLOUDSDK_CORE_REQUEST_REASON", REASON)
        .args(["list", "--project", PROJ_A])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let events = f.fake.state.events();
    assert!(has_reason(&events, "/compute/v1/"), "{events:?}");
}

#[test]
fn a_request_reason_with_a_newline_is_refused() {
    let w = World::new();
    let f = Fleet::new(|_| {});
    let target = format!("{VM}.{ZONE}.{PROJECT}");
    let runs = [
        (w.iap_ssh(true), vec!["proxy", target.as_str(), "7"]),
        (f.iap_ssh(), vec!["list", "--project", PROJ_A]),
    ];
    for (mut c, args) in runs {
        let out = c
            .env("CLOUDSDK_CORE_REQUEST_REASON", "why\r\nX-Evil: 1")
            .args(&args)
            .write_stdin("")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let line = one_line(&out);
        assert!(
            line.contains("core/request_reason") && line.contains("control character"),
            "{args:?}: {line}"
        );
    }
    for events in [w.fake.state.events(), f.fake.state.events()] {
        assert!(
            !events.iter().any(|e| e.contains("X-Evil")
                || e.starts_with("connect ")
                || e.contains("compute")),
            "nothing sent: {events:?}"
        );
    }
}
