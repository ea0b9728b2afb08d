//! Reconnect policy, pure: the backoff that paces resume attempts over a
//! whole outage (kept across resumes that fail again at once, so a relay
//! that accepts each reconnect and drops it cannot make us storm), the
//! window measured from the first loss, and what an HTTP status on the
//! WebSocket upgrade means for retrying. No clock of its own and no I/O:
//! callers pass `Instant`s and the jitter.

use std::time::{Duration, Instant};

/// Pause before the second attempt of an outage (the first is immediate).
pub const INITIAL: Duration = Duration::from_secs(1);
/// Growth of the pause per attempt.
pub const FACTOR: f64 = 1.5;
/// Longest pause between two attempts (before jitter).
pub const MAX: Duration = Duration::from_secs(20);
/// A link counts as healthy, and ends the outage (resetting the backoff),
/// once it has stayed up this long and carried data...
pub const HEALTHY_AFTER: Duration = Duration::from_secs(10);
/// ...or once it has moved this many new bytes (received, or confirmed by
/// the relay), however briefly it lived: a fast link that drops every few
/// MiB is useful, a link that is dropped right after the resume is not.
pub const HEALTHY_BYTES: u64 = 1024 * 1024;

/// State of one outage: attempts made and when it began. Lives as long as
/// the session; [`Backoff::healthy`] ends the outage.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    attempts: u32,
    first_loss: Option<Instant>,
    unknown_errors: u32,
}

/// The pause before attempt `n` (0-based) of an outage, without jitter.
pub fn pause(n: u32) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    let ms = INITIAL.as_millis() as f64 * FACTOR.powi(n.min(64) as i32 - 1);
    Duration::from_millis(ms.min(MAX.as_millis() as f64) as u64)
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff::default()
    }

    /// A link was lost at `now` (the outage starts unless one is running).
    pub fn lost(&mut self, now: Instant) {
        self.first_loss.get_or_insert(now);
    }

    /// The last link stayed up and carried data: the outage is over.
    pub fn healthy(&mut self) {
        *self = Backoff::default();
    }

    /// The last link moved the session forward, if only a little: the
    /// window starts again (the session is alive), the pacing does not.
    pub fn progressed(&mut self) {
        self.first_loss = None;
    }

    /// Attempts made in this outage.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The pause before the next attempt (`jitter` is added from the second
    /// attempt on; at least `floor`, the server's `Retry-After`), or None
    /// once `window` from the first loss is over. A pause that would end
    /// after the window is cut short, so the last attempt is made as the
    /// window ends (the whole window is used, as `--wait 4s` promises) and
    /// none after it.
    pub fn next(
        &self,
        now: Instant,
        window: Duration,
        jitter: Duration,
        floor: Duration,
    ) -> Option<Duration> {
        let p = match self.attempts {
            0 => return Some(Duration::ZERO),
            n => (pause(n) + jitter).max(floor),
        };
        let since = self
            .first_loss
            .map(|t| now.saturating_duration_since(t))
            .unwrap_or_default();
        let left = window.checked_sub(since).filter(|l| !l.is_zero())?;
        Some(p.min(left))
    }

    /// An attempt is being made now.
    pub fn attempt(&mut self, now: Instant) {
        self.first_loss.get_or_insert(now);
        self.attempts = self.attempts.saturating_add(1);
    }

    /// Close 4000 (unknown error): true the first time in an outage (try
    /// one resume, as IAP Desktop does), false after that (give up).
    pub fn unknown_error(&mut self) -> bool {
        self.unknown_errors += 1;
        self.unknown_errors == 1
    }
}

/// What an HTTP status answering a relay WebSocket upgrade means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVerdict {
    /// The credentials were refused: one attempt with a fresh token, then
    /// give up (401, 403; a 403 may also come from a proxy).
    Reauthenticate,
    /// Overload or a server fault: retry with backoff (408, 425, 429, 5xx).
    Retry,
    /// Will not heal by retrying (400, 404, 410, any other status).
    Terminal,
}

pub fn http_verdict(status: u16) -> HttpVerdict {
    match status {
        401 | 403 => HttpVerdict::Reauthenticate,
        408 | 425 | 429 | 500..=599 => HttpVerdict::Retry,
        _ => HttpVerdict::Terminal,
    }
}

/// `base + d`, or a day after `base` when that would overflow (an absurd
/// timeout from the command line must not panic).
pub fn after(base: Instant, d: Duration) -> Instant {
    base.checked_add(d)
        .or_else(|| base.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_and_are_capped() {
        assert_eq!(pause(0), Duration::ZERO);
        assert_eq!(pause(1), Duration::from_secs(1));
        assert_eq!(pause(2), Duration::from_millis(1500));
        assert_eq!(pause(3), Duration::from_millis(2250));
        assert_eq!(pause(20), MAX);
        assert_eq!(pause(u32::MAX), MAX);
    }

    #[test]
    fn backoff_survives_resumes_until_a_link_is_healthy() {
        let t0 = Instant::now();
        let mut b = Backoff::new();
        b.lost(t0);
        let j = Duration::from_millis(500);
        let w = Duration::from_secs(900);
        assert_eq!(
            b.next(t0, w, j, Duration::ZERO),
            Some(Duration::ZERO),
            "first is at once"
        );
        b.attempt(t0);
        // The resume succeeded and the link dropped again at once: the
        // outage goes on, the next attempt waits.
        b.lost(t0);
        assert_eq!(
            b.next(t0, w, j, Duration::ZERO),
            Some(Duration::from_millis(1500))
        );
        b.attempt(t0);
        assert_eq!(
            b.next(t0, w, j, Duration::ZERO),
            Some(Duration::from_millis(2000))
        );
        b.healthy();
        assert_eq!(b.next(t0, w, j, Duration::ZERO), Some(Duration::ZERO));
    }

    #[test]
    fn attempts_in_twenty_seconds_are_few() {
        // Worst case: every attempt fails at once; count attempts that
        // start within 20 s with the smallest jitter.
        let t0 = Instant::now();
        let mut b = Backoff::new();
        b.lost(t0);
        let mut now = t0;
        let mut n = 0;
        while let Some(p) = b.next(
            now,
            Duration::from_secs(900),
            Duration::ZERO,
            Duration::ZERO,
        ) {
            now += p;
            if now - t0 > Duration::from_secs(20) {
                break;
            }
            b.attempt(now);
            n += 1;
        }
        assert!(n <= 10, "{n} attempts in 20 s");
    }

    #[test]
    fn window_is_measured_from_the_first_loss() {
        let t0 = Instant::now();
        let mut b = Backoff::new();
        b.lost(t0);
        b.attempt(t0);
        let w = Duration::from_secs(10);
        let later = t0 + Duration::from_secs(9);
        // A resume that "succeeded" in between does not restart the window.
        b.lost(later);
        assert_eq!(
            b.next(later, w, Duration::ZERO, Duration::ZERO),
            Some(INITIAL)
        );
        // Later, the pause is cut to what is left: one last attempt as the
        // window ends, none after.
        assert_eq!(
            b.next(
                later + Duration::from_millis(1),
                w,
                Duration::ZERO,
                Duration::ZERO
            ),
            Some(Duration::from_millis(999))
        );
        // A Retry-After longer than the pause is waited, within the window.
        assert_eq!(
            b.next(t0, w, Duration::ZERO, Duration::from_secs(4)),
            Some(Duration::from_secs(4))
        );
        assert_eq!(
            b.next(later, w, Duration::ZERO, Duration::from_secs(4)),
            Some(Duration::from_secs(1))
        );
        b.attempt(t0 + w);
        assert_eq!(b.next(t0 + w, w, Duration::ZERO, Duration::ZERO), None);
        assert_eq!(b.next(t0 + w * 2, w, Duration::ZERO, Duration::ZERO), None);
    }

    #[test]
    fn progress_restarts_the_window_but_not_the_pacing() {
        let t0 = Instant::now();
        let mut b = Backoff::new();
        b.lost(t0);
        b.attempt(t0);
        b.attempt(t0);
        let w = Duration::from_secs(10);
        let late = t0 + Duration::from_secs(30);
        assert_eq!(
            b.next(late, w, Duration::ZERO, Duration::ZERO),
            None,
            "window over"
        );
        b.progressed();
        b.lost(late);
        assert_eq!(
            b.next(late, w, Duration::ZERO, Duration::ZERO),
            Some(pause(2))
        );
    }

    #[test]
    fn unknown_error_gets_one_resume() {
        let mut b = Backoff::new();
        assert!(b.unknown_error());
        assert!(!b.unknown_error());
        b.healthy();
        assert!(b.unknown_error());
    }

    #[test]
    fn http_statuses() {
        for s in [400, 404, 410, 302, 407] {
            assert_eq!(http_verdict(s), HttpVerdict::Terminal, "{s}");
        }
        for s in [401, 403] {
            assert_eq!(http_verdict(s), HttpVerdict::Reauthenticate, "{s}");
        }
        for s in [429, 500, 502, 503, 504] {
            assert_eq!(http_verdict(s), HttpVerdict::Retry, "{s}");
        }
    }

    #[test]
    fn after_never_overflows() {
        let t = Instant::now();
        assert!(after(t, Duration::from_secs(u64::MAX)) > t);
        assert_eq!(after(t, Duration::from_secs(1)), t + Duration::from_secs(1));
    }
}
