//! Rate limits: a `Retry-After` from the relay (on the WebSocket upgrade)
//! or from an API is waited before the next attempt; an API that keeps
//! failing, or asks for more than the retry budget, ends in one line,
//! after a bounded number of attempts.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The one call `list` makes for the project's VMs (faults hit only it).
const AGGREGATED: &str = "/aggregated/instances";

fn list(f: &Fleet) -> (std::process::Output, Duration) {
    let t = Instant::now();
    let out = f
        .iap_ssh()
        .args(["list", "--project", PROJ_A])
        .output()
        .unwrap();
    (out, t.elapsed())
}

#[test]
fn an_apis_retry_after_is_waited_then_the_call_succeeds() {
    let f = Fleet::new(|c| {
        c.faults.api_http = vec![429, 429];
        c.faults.api_http_path = Some(AGGREGATED.into());
        c.faults.retry_after = Some("2".into());
    });
    let (out, took) = list(&f);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("vm-project"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(f.count("fault: api"), 2);
    // Two waits of the 2 s asked for (our own first pauses are 0.5 and 1 s).
    assert!(took >= Duration::from_secs(4), "{took:?}");
}

#[test]
fn an_api_that_asks_too_much_or_never_recovers_is_one_line() {
    // Retry-After beyond the budget: reported at once, not slept through.
    let f = Fleet::new(|c| {
        c.faults.api_http = vec![429];
        c.faults.api_http_path = Some(AGGREGATED.into());
        c.faults.retry_after = Some("3600".into());
    });
    let (out, took) = list(&f);
    assert!(!out.status.success());
    let line = one_line(&out);
    assert!(
        line.contains("HTTP 429")
            && line.contains("the server asks to retry after 3600 s")
            && line.contains("rate-limiting"),
        "{line}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_eq!(f.count("fault: api"), 1);

    // The worst peer: every call fails. Bounded: 1 + 5 attempts, then the
    // API's error (no Retry-After: our own pauses, 0.5 s doubling).
    let f = Fleet::new(|c| {
        c.faults.api_http = vec![503; 20];
        c.faults.api_http_path = Some(AGGREGATED.into());
    });
    let (out, took) = list(&f);
    assert!(!out.status.success());
    assert!(one_line(&out).contains("HTTP 503"), "{}", one_line(&out));
    assert_eq!(f.count("fault: api"), 6);
    assert!(took < Duration::from_secs(60), "{took:?}");
}

#[test]
fn the_relays_retry_after_is_waited_on_connect() {
    let f = Fleet::new(|c| {
        c.faults.connect_http = vec![429, 429];
        c.faults.retry_after = Some("4".into());
    });
    let t = Instant::now();
    let out = f.banner(&[], &[], &[]);
    let took = t.elapsed();
    assert_banner(&out);
    assert_eq!(f.count("fault: connect answered with HTTP 429"), 2);
    // Our own pauses would be about 1 and 1.5 s (plus up to 1 s jitter
    // each); the relay asked for 4 s each time.
    assert!(took >= Duration::from_secs(8), "{took:?}");
    assert!(
        stderr_of(&out).contains("limiting new connections"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_failing_token_endpoint_is_asked_again_a_few_times() {
    // A refresh-token credential (the harness's static token needs no call).
    let run = |f: &Fleet| {
        let creds = f.fake.info.authorized_user_file.display().to_string();
        f.banner(
            &[],
            &[("GOOGLE_APPLICATION_CREDENTIALS", creds.as_str())],
            &["IAP_SSH_ACCESS_TOKEN"],
        )
    };
    let f = Fleet::new(|c| c.faults.token_http = vec![503, 429]);
    assert_banner(&run(&f));
    assert_eq!(f.count("fault: token answered"), 2);

    // One that always fails: 1 + 3 attempts, then one line.
    let f = Fleet::new(|c| c.faults.token_http = vec![503; 20]);
    let out = run(&f);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let line = one_line(&out);
    assert!(
        line.contains("HTTP 503") && line.contains("the token service is failing"),
        "{line}"
    );
    assert_eq!(f.count("fault: token answered"), 4);
    assert_eq!(f.count("connect "), 0, "no tunnel without a token");
}

#[test]
fn the_relays_retry_after_is_waited_on_resume() {
    // The link drops after 1 MiB; the first reconnect is answered 503 with
    // Retry-After: 4. The session resumes after that, every byte intact.
    let w = World::with(|c| {
        c.faults.drop_every_bytes = Some(1024 * 1024);
        c.faults.reconnect_http = vec![503];
        c.faults.retry_after = Some("4".into());
    });
    let t = Instant::now();
    let (out, input) = echo_through(&w, &[], 2 * 1024 * 1024);
    let took = t.elapsed();
    assert_echo_ok(&out, &input);
    assert_eq!(
        count_events(&w, |e| e == "fault: reconnect answered with HTTP 503"),
        1
    );
    // Our own pause after a failed reconnect would be about 1 s (plus up
    // to 1 s jitter); the relay asked for 4.
    assert!(took >= Duration::from_secs(4), "{took:?}");
}
