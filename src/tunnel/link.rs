//! One WebSocket of a relay session: the read half, a writer task that owns
//! the write half (fed through a channel, so a slow socket never blocks
//! reading), the first message that establishes or resumes the session,
//! and how the link ended.

use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::net::http::AccessToken;
use crate::relay::frame::{Frame, encode_ack};
use crate::relay::retry::{HEALTHY_AFTER, HEALTHY_BYTES};
use crate::relay::session::{Event, ProtocolError, Session};
use crate::relay::transport::Ws;

/// Why one WebSocket stopped carrying the session.
#[derive(Debug)]
pub(super) enum LinkEnd {
    Closed { code: u16, reason: String },
    Lost(String),
}

pub(super) struct Link {
    pub stream: SplitStream<Ws>,
    tx: mpsc::Sender<Message>,
    pub writer: JoinHandle<()>,
    /// Last time anything was queued for sending (for the keepalive).
    pub last_tx: Instant,
    /// The token this connection was opened with.
    pub token: AccessToken,
    /// When the session was established on this link.
    opened: Instant,
    /// Nothing was waiting for confirmation when the link came up.
    idle_at_open: bool,
    /// New bytes this link moved: DATA received plus bytes the relay
    /// confirmed on it.
    pub progress: u64,
}

async fn write_ws(mut sink: SplitSink<Ws, Message>, mut rx: mpsc::Receiver<Message>) {
    'send: while let Some(m) = rx.recv().await {
        let mut closing = matches!(m, Message::Close(_));
        if sink.feed(m).await.is_err() {
            break;
        }
        // Batch whatever is queued, then flush once.
        while !closing {
            match rx.try_recv() {
                Ok(m) => {
                    closing = matches!(m, Message::Close(_));
                    if sink.feed(m).await.is_err() {
                        break 'send;
                    }
                }
                Err(_) => break,
            }
        }
        if sink.flush().await.is_err() {
            break;
        }
        if closing {
            return;
        }
    }
    // The link is being let go, or a write failed (e.g. an ACK queued just
    // before the reader took the relay's Close: the WebSocket refuses to
    // send after a Close, and the message leaves the sink's slot on that
    // error): send what the WebSocket queued itself, the reply to a Close
    // the relay sent (the closing handshake).
    let _ = sink.flush().await;
}

pub(super) fn close_end(f: Option<CloseFrame>) -> LinkEnd {
    match f {
        Some(f) => LinkEnd::Closed {
            code: u16::from(f.code),
            reason: f.reason.to_string(),
        },
        // A Close without a status code: treat like a normal close.
        None => LinkEnd::Closed {
            code: 1000,
            reason: String::new(),
        },
    }
}

/// Logs a LONG_CLOSE notice (decoded best effort, otherwise ignored).
pub(super) fn log_long_close(code: u32, reason: &str) {
    tracing::info!(
        "relay LONG_CLOSE notice: code {code} '{}'",
        reason.escape_debug()
    );
}

impl Link {
    pub fn new(ws: Ws, token: AccessToken) -> Link {
        let (sink, stream) = ws.split();
        let (tx, rx) = mpsc::channel(64);
        let writer = tokio::spawn(write_ws(sink, rx));
        let now = Instant::now();
        Link {
            stream,
            tx,
            writer,
            last_tx: now,
            token,
            opened: now,
            idle_at_open: false,
            progress: 0,
        }
    }

    /// The link was useful, so the outage is over: it moved a good amount
    /// of data, or it stayed up a while and carried some (or had nothing
    /// to carry).
    pub fn healthy(&self, now: Instant) -> bool {
        let lived = now.saturating_duration_since(self.opened) >= HEALTHY_AFTER;
        self.progress >= HEALTHY_BYTES || (lived && (self.progress > 0 || self.idle_at_open))
    }

    /// Queues a message; false if the writer is gone (transport broken).
    pub async fn send(&mut self, m: Message) -> bool {
        self.last_tx = Instant::now();
        self.tx.send(m).await.is_ok()
    }

    pub async fn send_ack(&mut self, session: &mut Session, v: u64) -> bool {
        let ok = self.send(Message::Binary(encode_ack(v))).await;
        if ok {
            session.mark_acked(v);
        }
        ok
    }

    /// The writer failed: the relay may have closed the connection right
    /// after a Close frame we have not read yet (e.g. 4004). Look for it
    /// briefly; DATA still in the stream is dropped, which is safe because
    /// it is not counted as received, so the resume asks for it again.
    pub async fn broken(&mut self) -> LinkEnd {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(Message::Close(f)))) => return close_end(f),
                Ok(Some(Ok(_))) => continue,
                _ => return LinkEnd::Lost("the connection to the relay broke".into()),
            }
        }
    }

    /// The relay closed the session: lets the writer send the Close reply
    /// the WebSocket queued, and waits (briefly) for it.
    pub async fn finish(self) {
        drop(self.tx);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.writer).await;
    }

    /// Sends a Close with `code` and waits (briefly) until it is on the wire.
    pub async fn close(self, code: CloseCode) {
        let _ = self
            .tx
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: "".into(),
            })))
            .await;
        drop(self.tx);
        let _ = tokio::time::timeout(Duration::from_secs(2), self.writer).await;
    }

    /// Reads until the first relay message that establishes the session,
    /// by `deadline` (shared with the handshake: one budget per attempt).
    pub async fn first_event(
        &mut self,
        session: &mut Session,
        deadline: tokio::time::Instant,
    ) -> Result<Result<Event, LinkEnd>, ProtocolError> {
        loop {
            let m = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => {
                    return Ok(Err(LinkEnd::Lost(
                        "the relay did not establish the session in time".into(),
                    )));
                }
                Ok(m) => m,
            };
            match m {
                Some(Ok(Message::Binary(b))) => match session.on_frame(Frame::decode(&b)?)? {
                    Event::Ignored => continue,
                    Event::LongClose { code, reason } => log_long_close(code, &reason),
                    ev => {
                        self.opened = Instant::now();
                        self.idle_at_open = session.unconfirmed_bytes() == 0;
                        return Ok(Ok(ev));
                    }
                },
                Some(Ok(Message::Close(f))) => return Ok(Err(close_end(f))),
                Some(Ok(Message::Text(_))) => return Err(ProtocolError::BadOpcode("text")),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Ok(Err(LinkEnd::Lost(e.to_string()))),
                None => {
                    return Ok(Err(LinkEnd::Lost("the relay closed the connection".into())));
                }
            }
        }
    }
}
