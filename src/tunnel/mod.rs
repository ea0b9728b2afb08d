//! Moves bytes between a local byte stream (stdin/stdout for a ProxyCommand,
//! an accepted socket for port forwarding) and one relay session, resuming
//! the session on a new WebSocket when the transport drops or IAP asks for
//! re-authentication.

mod link;
pub mod listener;
pub mod stdio;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::auth::{AccessToken, TokenProvider};
use crate::error::exit;
use crate::relay::frame::{DATA_HEADER_LEN, Frame, MAX_DATA_LEN, TAG_DATA, encode_data};
use crate::relay::retry::{self, Backoff, HttpVerdict};
use crate::relay::session::{Event, ProtocolError, Session};
use crate::relay::transport::{self, DeadLink, TransportError};
use crate::relay::url::{Target, connect_url, reconnect_url};
use crate::relay::{CloseMeaning, RelayError, classify_close};
use link::{Link, LinkEnd, close_end, log_long_close};

/// Tunables of a tunnel; [`TunnelConfig::default`] is what `proxy` uses.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    /// Most bytes sent but not yet acknowledged; reading local input pauses
    /// beyond it. Well under the ~1.5 MB at which the real relay stalls.
    pub send_window: u64,
    /// ACK received data at least this often when the stream is idle.
    pub ack_interval: Duration,
    /// Time allowed for the WebSocket handshake plus the first relay message.
    pub connect_timeout: Duration,
    /// After local EOF, how long to wait for the relay to acknowledge
    /// everything we sent before closing anyway.
    pub flush_timeout: Duration,
    /// After local EOF, keep receiving until the relay has been quiet this
    /// long (the protocol has no half-close, so a reply to the last bytes
    /// sent would otherwise be cut off).
    pub linger: Duration,
    /// How long to keep trying to resume a dropped session.
    pub reconnect_window: Duration,
    /// Dead-link detection. The connection to the relay is presumed gone
    /// (a half-open TCP connection after sleep or a network change) when
    /// the kernel gets no answer for about this long: TCP keepalive probes
    /// while idle, `TCP_USER_TIMEOUT` for unacknowledged TCP data. Also,
    /// with the send window full, a relay that confirms nothing for this
    /// long is presumed stuck. Either way the session is resumed on a new
    /// connection. How often the relay ACKs does not matter otherwise (it
    /// may ACK lazily: nothing says IAP ACKs promptly).
    pub stall_timeout: Duration,
    /// Send a keepalive after this long without sending anything (None: off).
    pub keepalive: Option<Duration>,
}

impl Default for TunnelConfig {
    fn default() -> Self {
        TunnelConfig {
            send_window: 1024 * 1024,
            ack_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(60),
            flush_timeout: Duration::from_secs(10),
            linger: Duration::from_secs(1),
            reconnect_window: Duration::from_secs(15 * 60),
            stall_timeout: Duration::from_secs(30),
            keepalive: Some(Duration::from_secs(30)),
        }
    }
}

/// Everything needed to open relay WebSockets.
pub struct Relay {
    pub tunnel_base: String,
    pub tls: Arc<rustls::ClientConfig>,
    pub tokens: TokenProvider,
}

/// Reads at most one DATA payload into the spare capacity of `buf`.
/// Cancel-safe: nothing is consumed unless the read completes.
async fn read_chunk<R: AsyncRead + Unpin>(r: &mut R, buf: &mut BytesMut) -> std::io::Result<usize> {
    r.take(MAX_DATA_LEN as u64).read_buf(buf).await
}

/// Size of the blocks the input buffer is carved from (four DATA messages).
const ARENA_BLOCK: usize = 4 * (DATA_HEADER_LEN + MAX_DATA_LEN);

/// Deterministic-enough jitter in [0, 1000) ms without another crate.
fn jitter() -> Duration {
    let mut b = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    Duration::from_millis(u16::from_le_bytes(b) as u64 % 1000)
}

/// A deadline `d` from now, for tokio timers (never overflows).
fn deadline_in(d: Duration) -> tokio::time::Instant {
    tokio::time::Instant::from_std(retry::after(Instant::now(), d))
}

/// How a resume ended, when it did not fail.
enum Resumed {
    /// The session goes on over this link.
    Link(Link),
    /// The relay answered the reconnect with a normal end (1000, or
    /// 4009/4010: the VM side closed while we were away).
    Ended,
}

impl TunnelConfig {
    fn dead_link(&self) -> DeadLink {
        DeadLink {
            after: self.stall_timeout,
        }
    }
}

impl Relay {
    async fn token(&self, rejected: Option<&AccessToken>) -> Result<AccessToken, RelayError> {
        match self.tokens.token(rejected).await {
            Ok(t) => Ok(t.access),
            Err(e) => {
                let u = crate::error::UserError::from(e);
                Err(RelayError::Auth {
                    code: u.code,
                    cause: u.cause,
                    fix: u.fix.unwrap_or_default(),
                })
            }
        }
    }

    /// Opens a new session (`/v4/connect`) and waits for its SID. Each
    /// attempt has one budget of `connect_timeout` for the handshake and the
    /// first message. Refused credentials (close 4004, HTTP 401/403) get one
    /// more attempt with a fresh token, so a revoked cached token heals; a
    /// close 4000 (unknown error) gets one more attempt too.
    pub async fn connect_session(
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
    async fn resume(
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
        loop {
            let Some(pause) = backoff.next(Instant::now(), cfg.reconnect_window, jitter()) else {
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
            let opened =
                transport::open(&url, &token, self.tls.clone(), deadline, cfg.dead_link()).await;
            let ws = match opened {
                Ok(ws) => ws,
                Err(TransportError::Http { status, .. }) => {
                    last = format!("HTTP {status} on reconnect");
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

/// An established link, returned by [`Relay::connect_session`].
pub struct LinkHandle(Link);

impl LinkHandle {
    /// Ends the session at once with Close 1000 (a connection check).
    pub async fn close(self) {
        self.0.close(CloseCode::Normal).await;
    }
}

/// Opens a session to `target` and closes it again: proves credentials,
/// IAM, the target and its firewall before a listener is announced.
pub async fn check(relay: &Relay, target: &Target, cfg: &TunnelConfig) -> Result<(), RelayError> {
    let mut session = Session::new();
    relay
        .connect_session(target, &mut session, cfg)
        .await?
        .close()
        .await;
    Ok(())
}

async fn write_local<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(b) = rx.recv().await {
        if w.write_all(&b).await.is_err() {
            return;
        }
        if rx.is_empty() && w.flush().await.is_err() {
            return;
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

/// Connects and carries `input`/`output` through one relay session until
/// either side ends it. Returns once everything received has been written
/// to `output`.
///
/// `stop` ends the session early and cleanly (final ACK, Close 1000), e.g.
/// when ssh sends SIGHUP to its ProxyCommand on exit.
pub async fn run<R, W, S>(
    input: R,
    output: W,
    relay: &Relay,
    target: &Target,
    cfg: &TunnelConfig,
    stop: S,
) -> Result<(), RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
    S: Future<Output = ()>,
{
    let mut session = Session::new();
    let LinkHandle(link) = relay.connect_session(target, &mut session, cfg).await?;
    carry(input, output, link, session, relay, target, cfg, stop).await
}

#[allow(clippy::too_many_arguments)]
async fn carry<R, W, S>(
    mut input: R,
    output: W,
    mut link: Link,
    mut session: Session,
    relay: &Relay,
    target: &Target,
    cfg: &TunnelConfig,
    stop: S,
) -> Result<(), RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
    S: Future<Output = ()>,
{
    let mut stop = std::pin::pin!(stop);
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
    let out_task = tokio::spawn(write_local(output, out_rx));
    // Local input is read straight into a shared buffer behind a DATA
    // header; each message is split off it without copying, and the
    // buffer's memory is reused once the relay has acknowledged it, so the
    // hot path makes no allocation per message.
    let mut arena = BytesMut::new();
    let mut input_open = true;
    let mut eof_deadline: Option<Instant> = None;
    // Last time local EOF happened or relay data arrived (for the linger).
    let mut last_activity = Instant::now();
    let mut tick = tokio::time::interval(cfg.ack_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Paces resumes over a whole outage; reset only by a healthy link.
    let mut backoff = Backoff::new();
    // Last time the relay confirmed data (or a link came up).
    let mut last_progress = Instant::now();

    let result: Result<(), RelayError> = loop {
        if !input_open {
            let quiet = last_activity.elapsed() >= cfg.linger;
            if session.unconfirmed_bytes() == 0 && quiet {
                break Ok(());
            }
            if eof_deadline.is_some_and(|d| Instant::now() >= d) {
                tracing::debug!(
                    "{} bytes still unacknowledged at close",
                    session.unconfirmed_bytes()
                );
                break Ok(());
            }
        }
        // After EOF: wake when the linger ends, or (while data is still
        // unacknowledged) at the flush deadline; ACKs wake the loop anyway.
        // A full send window that the relay does not drain is a stuck link.
        // (A merely silent relay with some data unacknowledged is not: it
        // may ACK lazily; a dead connection is found by the kernel, see
        // `TunnelConfig::stall_timeout`.)
        let stall_at =
            tokio::time::Instant::from_std(retry::after(last_progress, cfg.stall_timeout));
        let blocked = input_open && session.unconfirmed_bytes() >= cfg.send_window;
        let keepalive_at = cfg
            .keepalive
            .map(|k| tokio::time::Instant::from_std(retry::after(link.last_tx, k)));
        let wake = tokio::time::Instant::from_std(match eof_deadline {
            Some(d) if session.unconfirmed_bytes() > 0 => d,
            _ => last_activity + cfg.linger,
        });
        let can_read = input_open && session.unconfirmed_bytes() < cfg.send_window;
        if can_read && arena.is_empty() {
            arena.reserve(ARENA_BLOCK.max(DATA_HEADER_LEN + MAX_DATA_LEN));
            arena.put_u16(TAG_DATA);
            arena.put_u32(0);
        }
        let end: LinkEnd = tokio::select! {
            r = read_chunk(&mut input, &mut arena), if can_read => {
                match r {
                    Ok(n) if n > 0 => {
                        arena[2..DATA_HEADER_LEN].copy_from_slice(&(n as u32).to_be_bytes());
                        let msg = arena.split().freeze();
                        session.record_sent(msg.slice(DATA_HEADER_LEN..));
                        let m = Message::Binary(msg);
                        if link.send(m).await {
                            continue;
                        }
                        link.broken().await
                    }
                    _ => {
                        tracing::debug!("local input closed; flushing {} unacknowledged bytes", session.unconfirmed_bytes());
                        input_open = false;
                        last_activity = Instant::now();
                        eof_deadline = Some(last_activity + cfg.flush_timeout);
                        continue;
                    }
                }
            }
            m = link.stream.next() => match m {
                Some(Ok(Message::Binary(b))) => {
                    let unconfirmed = session.unconfirmed_bytes();
                    let ev = match Frame::decode(&b).map_err(ProtocolError::from).and_then(|f| session.on_frame(f)) {
                        Ok(ev) => ev,
                        Err(e) => break Err(e.into()),
                    };
                    match ev {
                        Event::Data(d) => {
                            link.progress += d.len() as u64;
                            last_activity = Instant::now();
                            if out_tx.send(d).await.is_err() {
                                tracing::debug!("local output closed");
                                break Ok(());
                            }
                            if let Some(v) = session.ack_due() {
                                link.send_ack(&mut session, v).await;
                            }
                        }
                        Event::Acked => {
                            link.progress += unconfirmed - session.unconfirmed_bytes();
                            last_progress = Instant::now();
                        }
                        Event::LongClose { code, reason } => log_long_close(code, &reason),
                        _ => {}
                    }
                    continue;
                }
                Some(Ok(Message::Close(f))) => close_end(f),
                Some(Ok(Message::Text(_))) => break Err(ProtocolError::BadOpcode("text").into()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => LinkEnd::Lost(e.to_string()),
                None => LinkEnd::Lost("the relay connection ended without a Close frame".into()),
            },
            () = tokio::time::sleep_until(stall_at), if blocked => LinkEnd::Lost(format!(
                "the relay confirmed nothing for {} s with the send window full ({} bytes unacknowledged)",
                cfg.stall_timeout.as_secs(),
                session.unconfirmed_bytes()
            )),
            // Keepalive: an unsolicited WebSocket Pong (RFC 6455 §5.5.3, a
            // unidirectional heartbeat). This is what .NET's
            // ClientWebSocket.KeepAliveInterval sends, which IAP Desktop uses
            // against the real relay, so IAP tolerates it (the exact frame
            // type .NET uses is UNCONFIRMED in our spec; Pong is the one a
            // peer must never answer or fail on). Never a Ping: gcloud-style
            // peers die on those, and a relay need not answer them.
            () = tokio::time::sleep_until(keepalive_at.unwrap_or(stall_at)), if keepalive_at.is_some() => {
                if link.send(Message::Pong(Bytes::new())).await {
                    continue;
                }
                link.broken().await
            }
            () = tokio::time::sleep_until(wake), if !input_open => continue,
            () = &mut stop => {
                tracing::debug!("stopping on request");
                break Ok(());
            }
            _ = tick.tick() => {
                if let Some(v) = session.ack_pending() {
                    link.send_ack(&mut session, v).await;
                }
                continue;
            }
        };
        // The link ended: finish, fail, or resume.
        let now = Instant::now();
        if link.healthy(now) {
            backoff.healthy();
        }
        backoff.lost(now);
        let (rejected, why) = match end {
            LinkEnd::Closed { code, reason } => match classify_close(code, &reason, target) {
                CloseMeaning::Eof => {
                    // The session is over. Complete the closing handshake
                    // (the writer sends the Close reply queued when theirs
                    // was read), then hand over what was received.
                    tracing::debug!("relay closed the session ({code})");
                    link.finish().await;
                    drop(out_tx);
                    let _ = out_task.await;
                    return Ok(());
                }
                CloseMeaning::Reauthenticate => {
                    (Some(link.token.clone()), format!("close {code} '{reason}'"))
                }
                CloseMeaning::Transient => (None, format!("close {code} '{reason}'")),
                CloseMeaning::UnknownError if backoff.unknown_error() => {
                    (None, format!("close {code} '{reason}'"))
                }
                CloseMeaning::UnknownError => {
                    break Err(RelayError::Closed {
                        target: target.to_string(),
                        code,
                        reason,
                    });
                }
                CloseMeaning::Fatal(e) => break Err(e),
            },
            LinkEnd::Lost(r) => (None, r),
        };
        // Close the old connection first, so the relay detaches the SID.
        link.writer.abort();
        drop(link);
        let resumed = relay
            .resume(target, &mut session, &mut backoff, rejected, cfg, why)
            .await;
        match resumed {
            Ok(Resumed::Link(l)) => {
                link = l;
                last_progress = Instant::now();
            }
            Ok(Resumed::Ended) => {
                drop(out_tx);
                let _ = out_task.await;
                return Ok(());
            }
            Err(e) => {
                drop(out_tx);
                let _ = out_task.await;
                return Err(e);
            }
        }
    };
    match &result {
        Ok(()) => {
            // Orderly end: final ACK, Close 1000.
            if let Some(v) = session.ack_pending() {
                link.send_ack(&mut session, v).await;
            }
            link.close(CloseCode::Normal).await;
        }
        Err(RelayError::Protocol(_)) => link.close(CloseCode::Protocol).await,
        Err(_) => link.writer.abort(),
    }
    drop(out_tx);
    let _ = out_task.await;
    result
}
