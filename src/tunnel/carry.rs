//! The session loop: local input read straight into DATA messages, relay
//! DATA written to the local output, cumulative ACKs, the keepalive, a
//! stuck send window, the clean end (final ACK, Close 1000), and handing a
//! lost link to `connect`'s resume.

use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::connect::Resumed;
use super::link::{LinkEnd, close_end, log_long_close};
use super::{LinkHandle, Relay, TunnelConfig};
use crate::relay::frame::{DATA_HEADER_LEN, Frame, MAX_DATA_LEN, TAG_DATA};
use crate::relay::retry::{self, Backoff};
use crate::relay::session::{Event, ProtocolError, Session};
use crate::relay::url::Target;
use crate::relay::{CloseMeaning, RelayError, classify_close};

/// Reads at most one DATA payload into the spare capacity of `buf`.
/// Cancel-safe: nothing is consumed unless the read completes.
async fn read_chunk<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    r.take(MAX_DATA_LEN as u64).read_buf(buf).await
}

/// Size of the blocks the input buffer is carved from (four DATA messages).
const ARENA_BLOCK: usize = 4 * (DATA_HEADER_LEN + MAX_DATA_LEN);

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

/// Local input, as the session loop takes it.
type Input<'a> = &'a mut (dyn AsyncRead + Unpin + Send);
/// Local output, owned by the task that writes it.
type Output = Box<dyn AsyncWrite + Unpin + Send>;
/// Ends the session early and cleanly.
type Stop<'a> = std::pin::Pin<&'a mut (dyn Future<Output = ()> + Send)>;

/// Connects and carries `input`/`output` through one relay session until
/// either side ends it. Returns once everything received has been written
/// to `output`.
///
/// `stop` ends the session early and cleanly (final ACK, Close 1000), e.g.
/// when ssh sends SIGHUP to its ProxyCommand on exit.
///
/// The loop itself takes the local ends as trait objects: it exists once in
/// the binary, not once per kind of stream (stdio, sockets, doctor's probe).
pub async fn run<R, W, S>(
    mut input: R,
    output: W,
    relay: &Relay,
    target: &Target,
    cfg: &TunnelConfig,
    stop: S,
) -> Result<(), RelayError>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
    S: Future<Output = ()> + Send,
{
    let stop = std::pin::pin!(stop);
    carry(&mut input, Box::new(output), relay, target, cfg, stop).await
}

async fn carry(
    mut input: Input<'_>,
    output: Output,
    relay: &Relay,
    target: &Target,
    cfg: &TunnelConfig,
    mut stop: Stop<'_>,
) -> Result<(), RelayError> {
    let mut session = Session::new();
    let LinkHandle(mut link) = relay.connect_session(target, &mut session, cfg).await?;
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
            // Our data unconfirmed past the flush deadline: give up on the
            // ACK, but never while the relay is still delivering (a slow
            // resume after EOF must not cut the relay's backlog short).
            if quiet && eof_deadline.is_some_and(|d| Instant::now() >= d) {
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
            Some(d) if session.unconfirmed_bytes() > 0 => d.max(last_activity + cfg.linger),
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
        } else if link.progress > 0 {
            backoff.progressed();
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
                // After local EOF the session ends once the relay has been
                // quiet for the linger; a resume is not quiet: the relay
                // re-sends its backlog now, so the linger starts again.
                last_activity = Instant::now();
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
