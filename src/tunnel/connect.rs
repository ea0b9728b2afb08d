//! Opening a relay session (`/v4/connect`) and resuming it
//! (`/v4/reconnect`): tokens (a fresh one after a refusal), one time budget
//! per attempt, the per-outage backoff, and what each HTTP status or close
//! code means for trying again.

use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::Message;

use super::link::{Link, LinkEnd};
use super::{LinkHandle, Relay, TunnelConfig};
use crate::error::exit;
use crate::net::http::AccessToken;
use crate::relay::frame::encode_data;
use crate::relay::retry::{self, Backoff, HttpVerdict};
use crate::relay::session::{Event, ProtocolError, Session};
use crate::relay::transport::{self, TransportError};
use crate::relay::url::{Target, connect_url, reconnect_url};
use crate::relay::{CloseMeaning, RelayError, classify_close};

/// Deterministic-enough jitter in [0, 1000) ms without another crate.
pub(crate) fn jitter() -> Duration {
    let mut b = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    Duration::from_millis(u16::from_le_bytes(b) as u64 % 1000)
}

/// The relay's `Retry-After` on an upgrade it refused (zero: none).
fn retry_after(e: &RelayError) -> Duration {
    match e {
        RelayError::Transport(TransportError::Http {
            retry_after: Some(d),
            ..
        }) => *d,
        _ => Duration::ZERO,
    }
}

/// A deadline `d` from now, for tokio timers (never overflows).
fn deadline_in(d: Duration) -> tokio::time::Instant {
    tokio::time::Instant::from_std(retry::after(Instant::now(), d))
}

/// A failure that waiting may heal: the VM is booting (close 4003: nothing
/// listens yet; 4047: not known to IAP yet) or the relay is overloaded
/// (HTTP 429/5xx on the upgrade). Never a refusal (4033), a bad request or
/// a protocol error.
pub fn not_ready(e: &RelayError) -> bool {
    match e {
        RelayError::BackendUnreachable { .. } => true,
        RelayError::NotFound { code: 4047, .. } => true,
        RelayError::Transport(TransportError::Http { status, .. }) => {
            retry::http_verdict(*status) == HttpVerdict::Retry
        }
        _ => false,
    }
}

/// The relay's rate limit (HTTP 429 on the upgrade): a burst of
/// connections backs off and tries again even without `--wait`.
fn overloaded(e: &RelayError) -> bool {
    matches!(
        e,
        RelayError::Transport(TransportError::Http { status: 429, .. })
    )
}

/// How long a connection keeps trying through HTTP 429 without `--wait`.
pub const OVERLOAD_WAIT: Duration = Duration::from_secs(60);

/// Said once per process: a burst of refused handshakes is one line.
static TOLD_OVERLOAD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The short reason for the progress line.
fn not_ready_cause(e: &RelayError) -> String {
    match e {
        RelayError::BackendUnreachable { code, reason, .. }
        | RelayError::NotFound { code, reason, .. } => format!("close {code} '{reason}'"),
        RelayError::Transport(TransportError::Http { status, .. }) => format!("HTTP {status}"),
        e => e.to_string(),
    }
}

/// How a resume ended, when it did not fail.
pub(super) enum Resumed {
    /// The session goes on over this link.
    Link(Link),
    /// The relay answered the reconnect with a normal end (1000, or
    /// 4009/4010: the VM side closed while we were away).
    Ended,
}

impl Relay {
    /// A place among the handshakes allowed at once (none to wait for
    /// without a limit).
    async fn handshake_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match &self.handshakes {
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        }
    }

    async fn token(&self, rejected: Option<&AccessToken>) -> Result<AccessToken, RelayError> {
        match self.tokens.token(rejected).await {
            Ok(t) => Ok(t),
            Err(u) => Err(RelayError::Auth {
                code: u.code,
                cause: u.cause,
                fix: u.fix.unwrap_or_default(),
            }),
        }
    }

    /// Opens a new session; with `--wait` ([`TunnelConfig::wait`]), tries
    /// again with backoff while the VM is not ready ([`not_ready`]) until
    /// the deadline, saying so once on stderr. Without it the first
    /// failure is final, except the relay's rate limit (HTTP 429), which
    /// is backed off and retried for up to [`OVERLOAD_WAIT`].
    pub async fn connect_session(
        &self,
        target: &Target,
        session: &mut Session,
        cfg: &TunnelConfig,
    ) -> Result<LinkHandle, RelayError> {
        let start = Instant::now();
        let mut backoff = Backoff::new();
        let mut told = false;
        loop {
            backoff.attempt(Instant::now());
            let e = match self.connect_once(target, session, cfg).await {
                Ok(l) => return Ok(l),
                Err(e) if cfg.wait.is_some() && not_ready(&e) => e,
                Err(e) if overloaded(&e) => e,
                Err(e) => return Err(e),
            };
            let wait = cfg.wait.unwrap_or(OVERLOAD_WAIT);
            let Some(pause) = backoff.next(Instant::now(), wait, jitter(), retry_after(&e)) else {
                return Err(e);
            };
            if cfg.wait.is_none() {
                // Rate limited: back off quietly, one line per process.
                if !TOLD_OVERLOAD.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    eprintln!(
                        "iap-ssh: the relay is limiting new connections (HTTP 429); backing off and trying again for up to {} s",
                        wait.as_secs()
                    );
                }
                tracing::info!("HTTP 429 on connect; next try in {pause:?}");
                tokio::time::sleep(pause).await;
                continue;
            }
            if !told {
                told = true;
                eprintln!(
                    "iap-ssh: {target} is not ready yet ({}); trying again for up to {} s",
                    crate::error::printable(&not_ready_cause(&e)),
                    wait.saturating_sub(start.elapsed()).as_secs()
                );
            }
            tracing::info!("not ready ({e}); next try in {pause:?}");
            tokio::time::sleep(pause).await;
        }
    }

    /// Opens a new session (`/v4/connect`) and waits for its SID. Each
    /// attempt has one budget of `connect_timeout` for the handshake and the
    /// first message. Refused credentials (close 4004, HTTP 401/403) get one
    /// more attempt with a fresh token, so a revoked cached token heals; a
    /// close 4000 (unknown error) gets one more attempt too.
    async fn connect_once(
        &self,
        target: &Target,
        session: &mut Session,
        cfg: &TunnelConfig,
    ) -> Result<LinkHandle, RelayError> {
        let url = connect_url(&self.tunnel_base, target);
        let mut rejected: Option<AccessToken> = None;
        let mut reauthenticated = false;
        let mut retried_unknown = false;
        loop {
            let token = self.token(rejected.as_ref()).await?;
            // Held until the session is established or refused.
            let _permit = self.handshake_permit().await;
            let deadline = deadline_in(cfg.connect_timeout);
            let ws =
                match transport::open(&url, &token, self.tls.clone(), deadline, cfg.dead_link())
                    .await
                {
                    Ok(ws) => ws,
                    Err(TransportError::Http {
                        status: status @ (401 | 403),
                        ..
                    }) if !reauthenticated && !self.tokens.is_static() => {
                        tracing::info!(
                            "HTTP {status} on connect: trying once more with a fresh token"
                        );
                        reauthenticated = true;
                        rejected = Some(token);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
            let mut link = Link::new(ws, token);
            match link.first_event(session, deadline).await? {
                Ok(_) => {
                    tracing::debug!("session established");
                    return Ok(LinkHandle(link));
                }
                Err(LinkEnd::Closed { code, reason }) => {
                    match classify_close(code, &reason, target) {
                        CloseMeaning::Reauthenticate if !reauthenticated => {
                            reauthenticated = true;
                            rejected = Some(link.token.clone())
                        }
                        CloseMeaning::UnknownError if !retried_unknown => {
                            tracing::info!("close {code} '{reason}' on connect: trying once more");
                            retried_unknown = true;
                        }
                        CloseMeaning::Fatal(e) => return Err(e),
                        _ => {
                            return Err(RelayError::Closed {
                                target: target.to_string(),
                                code,
                                reason,
                            });
                        }
                    }
                }
                Err(LinkEnd::Lost(reason)) => {
                    return Err(RelayError::Transport(TransportError::Unreachable {
                        host: transport::host_of(&url),
                        reason,
                    }));
                }
            }
        }
    }

    /// Resumes the session on a new WebSocket (`/v4/reconnect`), then
    /// re-sends every unacknowledged chunk in order. Attempts are paced by
    /// `backoff`, which outlives this call: a resume that succeeds but whose
    /// link fails again at once does not start the outage afresh, and the
    /// window counts from the outage's first loss.
    pub(super) async fn resume(
        &self,
        target: &Target,
        session: &mut Session,
        backoff: &mut Backoff,
        mut rejected: Option<AccessToken>,
        cfg: &TunnelConfig,
        first_reason: String,
    ) -> Result<Resumed, RelayError> {
        let sid =
            String::from_utf8_lossy(session.sid().map(|s| s.as_ref()).unwrap_or(b"")).into_owned();
        let mut last = first_reason;
        // One fresh token for an HTTP 401/403 answer, then it is final.
        let mut http_reauth = false;
        // The relay's Retry-After on the last refused upgrade.
        let mut asked = Duration::ZERO;
        loop {
            let floor = std::mem::take(&mut asked);
            let Some(pause) = backoff.next(Instant::now(), cfg.reconnect_window, jitter(), floor)
            else {
                return Err(RelayError::ReconnectExhausted {
                    target: target.to_string(),
                    last,
                });
            };
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            backoff.attempt(Instant::now());
            tracing::info!(
                "resuming session (attempt {}, {} bytes received): {last}",
                backoff.attempts(),
                session.received()
            );
            session.begin_reconnect();
            let url = reconnect_url(&self.tunnel_base, &sid, session.received(), target);
            let token = match self.token(rejected.as_ref()).await {
                Ok(t) => t,
                // Refused credentials will not heal by waiting.
                Err(
                    e @ RelayError::Auth {
                        code: exit::NO_CREDENTIALS,
                        ..
                    },
                ) => return Err(e),
                // The token endpoint may be unreachable for a while too.
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let deadline = deadline_in(cfg.connect_timeout);
            let permit = self.handshake_permit().await;
            let opened =
                transport::open(&url, &token, self.tls.clone(), deadline, cfg.dead_link()).await;
            drop(permit);
            let ws = match opened {
                Ok(ws) => ws,
                Err(TransportError::Http {
                    status,
                    retry_after,
                    ..
                }) => {
                    last = format!("HTTP {status} on reconnect");
                    asked = retry_after.unwrap_or_default();
                    match retry::http_verdict(status) {
                        HttpVerdict::Reauthenticate if !http_reauth => {
                            http_reauth = true;
                            rejected = Some(token);
                            continue;
                        }
                        HttpVerdict::Retry => continue,
                        _ => {
                            return Err(RelayError::ResumeHttp {
                                target: target.to_string(),
                                status,
                            });
                        }
                    }
                }
                // A proxy's settings, credentials or policy will not heal.
                Err(TransportError::Proxy(e)) if e.is_final() => {
                    return Err(TransportError::Proxy(e).into());
                }
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let mut link = Link::new(ws, token);
            match link.first_event(session, deadline).await? {
                Ok(Event::Resumed { resend }) => {
                    tracing::info!(
                        "session resumed; re-sending {} unacknowledged bytes",
                        resend.iter().map(|c| c.len()).sum::<usize>()
                    );
                    for chunk in resend {
                        if !link.send(Message::Binary(encode_data(&chunk))).await {
                            break;
                        }
                    }
                    return Ok(Resumed::Link(link));
                }
                Ok(_) => return Err(ProtocolError::SidOnReconnect.into()),
                // SID still attached: the relay has not yet noticed that the
                // old connection is gone. It will; keep trying.
                Err(LinkEnd::Closed { code: 4002, reason }) => {
                    last = format!("close 4002 '{reason}'")
                }
                Err(LinkEnd::Closed { code, reason }) => {
                    match classify_close(code, &reason, target) {
                        CloseMeaning::Reauthenticate => {
                            rejected = Some(link.token.clone());
                            last = format!("close {code} '{reason}'");
                        }
                        CloseMeaning::Transient => last = format!("close {code} '{reason}'"),
                        CloseMeaning::UnknownError if backoff.unknown_error() => {
                            last = format!("close {code} '{reason}'")
                        }
                        CloseMeaning::UnknownError => {
                            return Err(RelayError::Closed {
                                target: target.to_string(),
                                code,
                                reason,
                            });
                        }
                        CloseMeaning::Fatal(e) => return Err(e),
                        CloseMeaning::Eof => {
                            tracing::info!(
                                "the relay ended the session while we were away (close {code} '{reason}')"
                            );
                            link.finish().await;
                            return Ok(Resumed::Ended);
                        }
                    }
                }
                Err(LinkEnd::Lost(r)) => last = r,
            }
        }
    }
}
