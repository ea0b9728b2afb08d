//! The server side of the IAP relay v4 protocol ("fake server contract" of
//! relay-protocol.md §9): bearer-token check, target lookup, backend
//! connection, CONNECT_SUCCESS_SID, relaying with cumulative ACKs, keeping
//! unacknowledged server→client bytes, and `/v4/reconnect`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use crate::config::Backend;
use crate::protocol::{self, ClientMsg};
use crate::state::State;

/// The relay stalls server→client data beyond this many unacknowledged
/// bytes (IAP Desktop's observation of the real server: ~1.5 MB).
pub const STALL_UNACKED: u64 = 1_500_000;
/// The server ACKs client data after this many bytes, or when idle.
pub const ACK_EVERY: u64 = 32 * 1024;

type Ws = WebSocketStream<TokioIo<Upgraded>>;
type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

struct Inner {
    /// Server→client bytes not yet acknowledged, starting at `buf_start`.
    buf: VecDeque<Bytes>,
    buf_start: u64,
    /// Server→client bytes produced so far.
    sent: u64,
    /// Client→server bytes received so far.
    received: u64,
    link: Option<(u64, mpsc::UnboundedSender<Message>)>,
    backend_eof: bool,
    /// When the last link was lost (not closed by the client).
    detached_at: Option<std::time::Instant>,
}

/// One relay session; outlives its WebSockets so it can be resumed.
pub struct RelaySession {
    pub sid: String,
    /// `zone=Z` or `region=R`, as a reconnect must repeat it.
    loc: String,
    /// The account of the token that opened the session.
    account: String,
    inner: Mutex<Inner>,
    acked: Notify,
    backend_w: tokio::sync::Mutex<Option<BoxWrite>>,
    child: Mutex<Option<tokio::process::Child>>,
    fired_4004: std::sync::atomic::AtomicBool,
    fired_stall: std::sync::atomic::AtomicBool,
    reauth_epoch: Mutex<std::time::Instant>,
    /// Tells the attached link to let go (a reconnect for this SID arrived).
    evict: Notify,
}

static LINK_IDS: AtomicU64 = AtomicU64::new(1);

fn close_msg(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_string().into(),
    }))
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// Sends one Close frame right after the upgrade (how IAP reports target
/// and auth errors) and ends the connection.
async fn reject(state: &State, mut ws: Ws, code: u16, reason: &str) {
    state.event(format!("close {code} {reason}"));
    let _ = ws.send(close_msg(code, reason)).await;
    // Give the client a moment to read the Close, then drop.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

async fn open_backend(
    state: &State,
    backend: &Backend,
) -> std::io::Result<(BoxRead, BoxWrite, Option<tokio::process::Child>)> {
    match backend {
        Backend::Tcp(addr) => {
            let s = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::TcpStream::connect(addr.as_str()),
            )
            .await
            .map_err(|_| std::io::Error::other("timeout"))??;
            s.set_nodelay(true)?;
            let (r, w) = s.into_split();
            Ok((Box::new(r), Box::new(w), None))
        }
        Backend::Exec(argv) => {
            let Some((prog, args)) = argv.split_first() else {
                return Err(std::io::Error::other("empty exec backend"));
            };
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(state.state_dir.join("backend.log"))?;
            let mut child = tokio::process::Command::new(prog)
                .args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::from(log))
                .kill_on_drop(true)
                .spawn()?;
            let r = child.stdout.take().expect("piped stdout");
            let w = child.stdin.take().expect("piped stdin");
            Ok((Box::new(r), Box::new(w), Some(child)))
        }
    }
}

impl RelaySession {
    fn unacked(&self) -> u64 {
        let i = self.inner.lock().unwrap();
        i.sent - i.buf_start
    }

    /// Applies a client ACK (or the `ack` of a reconnect): drops confirmed
    /// bytes. Err if the value is impossible.
    fn confirm(&self, v: u64) -> Result<(), &'static str> {
        let mut i = self.inner.lock().unwrap();
        if v < i.buf_start {
            return Err("ACK went backwards");
        }
        if v > i.sent {
            return Err("ACK beyond bytes sent");
        }
        let mut skip = v - i.buf_start;
        while skip > 0 {
            let front = i.buf.front_mut().expect("buffer matches counters");
            let len = front.len() as u64;
            if len <= skip {
                skip -= len;
                i.buf.pop_front();
            } else {
                *front = front.slice(skip as usize..);
                skip = 0;
            }
        }
        i.buf_start = v;
        drop(i);
        self.acked.notify_waiters();
        Ok(())
    }

    fn detach(&self, link_id: u64) {
        let mut i = self.inner.lock().unwrap();
        if i.link.as_ref().is_some_and(|(id, _)| *id == link_id) {
            i.link = None;
            i.detached_at = Some(std::time::Instant::now());
        }
    }

    /// Detaches a lost link, after the `sid_in_use_ms` delay (the relay
    /// notices a dead connection late), and forgets the session when it
    /// stays detached longer than `session_expiry_secs`.
    fn lost(self: &Arc<Self>, state: &Arc<State>, link_id: u64) {
        let f = &state.config.faults;
        let delay = Duration::from_millis(f.sid_in_use_ms);
        let expiry = f.session_expiry_secs.map(Duration::from_secs);
        if delay.is_zero() {
            self.detach(link_id);
        }
        if delay.is_zero() && expiry.is_none() {
            return;
        }
        let (s, state) = (self.clone(), state.clone());
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
                s.detach(link_id);
            }
            let Some(expiry) = expiry else { return };
            tokio::time::sleep(expiry).await;
            let expired = {
                let i = s.inner.lock().unwrap();
                i.link.is_none() && i.detached_at.is_some_and(|t| t.elapsed() >= expiry)
            };
            if expired {
                state.event(format!("session {} expired", s.sid));
                s.end(&state).await;
            }
        });
    }

    async fn end(&self, state: &State) {
        if let Some(mut w) = self.backend_w.lock().await.take() {
            let _ = w.shutdown().await;
        }
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.start_kill();
        }
        state.sessions.lock().unwrap().remove(&self.sid);
    }
}

/// Backend → client: reads the backend, keeps every byte until it is
/// acknowledged, stalls at [`STALL_UNACKED`], and reports EOF with 4010.
async fn pump_backend(state: Arc<State>, s: Arc<RelaySession>, mut r: BoxRead) {
    let mut buf = vec![0u8; protocol::MAX_DATA];
    loop {
        while s.unacked() >= STALL_UNACKED {
            let _ = tokio::time::timeout(Duration::from_millis(50), s.acked.notified()).await;
        }
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        let mut i = s.inner.lock().unwrap();
        if n == 0 {
            i.backend_eof = true;
            if let Some((_, tx)) = &i.link {
                let _ = tx.send(close_msg(4010, "destination read failed"));
            }
            drop(i);
            state.event(format!("backend eof sid={}", s.sid));
            return;
        }
        let chunk = Bytes::copy_from_slice(&buf[..n]);
        i.sent += n as u64;
        i.buf.push_back(chunk.clone());
        if let Some((_, tx)) = &i.link {
            let _ = tx.send(Message::Binary(protocol::data(&chunk)));
        }
    }
}

/// Per-WebSocket controls shared by the reader loop and the writer task.
struct LinkCtl {
    /// DATA payload bytes written to the client on this link.
    s2c: AtomicU64,
    /// Set by the writer when the drop fault fires.
    dropped: Notify,
    /// The relay is silent until then (stall fault).
    paused_until: Mutex<Option<tokio::time::Instant>>,
}

async fn write_ws(
    mut sink: futures_util::stream::SplitSink<Ws, Message>,
    mut rx: mpsc::UnboundedReceiver<Message>,
    ctl: Arc<LinkCtl>,
    drop_every: Option<u64>,
) {
    loop {
        let Some(m) = rx.recv().await else { return };
        let pause = *ctl.paused_until.lock().unwrap();
        if let Some(t) = pause {
            tokio::time::sleep_until(t).await;
        }
        let closing = matches!(m, Message::Close(_));
        if let (Message::Binary(b), Some(limit)) = (&m, drop_every)
            && b.len() > 6
            && u16::from_be_bytes([b[0], b[1]]) == protocol::DATA
        {
            let n = ctl.s2c.fetch_add(b.len() as u64 - 6, Ordering::SeqCst) + b.len() as u64 - 6;
            if n > limit {
                // Drop the connection without a Close frame.
                ctl.dropped.notify_one();
                return;
            }
        }
        if sink.feed(m).await.is_err() {
            return;
        }
        if (closing || rx.is_empty()) && sink.flush().await.is_err() {
            return;
        }
        if closing {
            return;
        }
    }
}

/// Sends a protocol violation chosen by the `violation` fault.
fn violate(tx: &mpsc::UnboundedSender<Message>, kind: &str, sid: &str, received: u64) {
    let m = match kind {
        "second_sid" => protocol::sid(sid),
        "ack_backwards" => {
            let _ = tx.send(Message::Binary(protocol::u64_msg(protocol::ACK, received)));
            protocol::u64_msg(protocol::ACK, received - 1)
        }
        "ack_beyond" => protocol::u64_msg(protocol::ACK, received + 1_000_000),
        "data_too_long" => protocol::data(&vec![b'x'; protocol::MAX_DATA + 1]),
        "truncated" => Bytes::from_static(&[0x00, 0x04, 0x00]),
        "text" => {
            let _ = tx.send(Message::Text("hello".into()));
            return;
        }
        _ => return,
    };
    let _ = tx.send(Message::Binary(m));
}

fn unknown_tag_messages(tx: &mpsc::UnboundedSender<Message>, malformed: bool) {
    let _ = tx.send(Message::Binary(Bytes::from_static(&[0x00, 0x03, 1, 2, 3])));
    let _ = tx.send(Message::Binary(Bytes::from_static(&[0x12, 0x34])));
    let mut lc = vec![0x00, 0x0A, 0, 0, 0x0f, 0xa0, 0, 0, 0, 4];
    lc.extend_from_slice(b"test");
    let _ = tx.send(Message::Binary(Bytes::from(lc)));
    if malformed {
        // Too short for its header; a reason length beyond the message.
        let _ = tx.send(Message::Binary(Bytes::from_static(&[0x00, 0x0A, 0, 0])));
        let _ = tx.send(Message::Binary(Bytes::from_static(&[
            0x00, 0x0A, 0, 0, 0x0f, 0xa0, 0xff, 0xff, 0xff, 0xff, b'h', b'i',
        ])));
    }
}

/// Serves one WebSocket of a session. `first` is the SID or
/// RECONNECT_SUCCESS_ACK; `resend_from` the stream offset to re-send from.
async fn serve_link(
    state: Arc<State>,
    s: Arc<RelaySession>,
    ws: Ws,
    first: Bytes,
    resend_from: u64,
    token_expiry: Option<tokio::time::Instant>,
) {
    let faults = state.config.faults.clone();
    let (sink, mut stream) = ws.split();
    let (tx, rx) = mpsc::unbounded_channel();
    let ctl = Arc::new(LinkCtl {
        s2c: AtomicU64::new(0),
        dropped: Notify::new(),
        paused_until: Mutex::new(None),
    });
    let writer = tokio::spawn(write_ws(sink, rx, ctl.clone(), faults.drop_every_bytes));
    let link_id = LINK_IDS.fetch_add(1, Ordering::SeqCst);
    let mut last_ack_sent;
    {
        let mut i = s.inner.lock().unwrap();
        let _ = tx.send(Message::Binary(first));
        if faults.violation.as_deref() == Some("second_sid") {
            violate(&tx, "second_sid", &s.sid, 0);
        }
        if faults.unknown_tags {
            unknown_tag_messages(&tx, faults.malformed_long_close);
        }
        let mut off = i.buf_start;
        for c in &i.buf {
            let end = off + c.len() as u64;
            if end > resend_from {
                let skip = resend_from.saturating_sub(off) as usize;
                let _ = tx.send(Message::Binary(protocol::data(&c[skip..])));
            }
            off = end;
        }
        if i.backend_eof {
            let _ = tx.send(close_msg(4010, "destination read failed"));
        }
        i.link = Some((link_id, tx.clone()));
        last_ack_sent = i.received;
    }
    // Delayed ACKs go through one queue so they keep their order.
    let delayed_acks = (faults.ack_delay_ms > 0).then(|| {
        let (dtx, mut drx) = mpsc::unbounded_channel::<(tokio::time::Instant, Message)>();
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some((due, m)) = drx.recv().await {
                tokio::time::sleep_until(due).await;
                if tx.send(m).is_err() {
                    return;
                }
            }
        });
        dtx
    });
    let send_ack = |v: u64| {
        if faults.withhold_acks {
            return;
        }
        if faults.unknown_tags {
            unknown_tag_messages(&tx, faults.malformed_long_close);
        }
        let m = Message::Binary(protocol::u64_msg(protocol::ACK, v));
        match &delayed_acks {
            Some(d) => {
                let due = tokio::time::Instant::now() + Duration::from_millis(faults.ack_delay_ms);
                let _ = d.send((due, m));
            }
            None => {
                let _ = tx.send(m);
            }
        }
    };
    let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
    // The periodic 4004 runs on the session's clock, across its links.
    let reauth_at = faults
        .close_4004_every_secs
        .map(|t| {
            tokio::time::Instant::from_std(*s.reauth_epoch.lock().unwrap()) + Duration::from_secs(t)
        })
        .unwrap_or(far);
    let token_expiry = token_expiry.unwrap_or(far);
    let mut c2s: u64 = 0;
    let mut violated = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let ack_every = faults.ack_every_bytes.unwrap_or(ACK_EVERY);
    let outcome: String = loop {
        // Session-level one-shot faults, checked on every event.
        let carried = {
            let i = s.inner.lock().unwrap();
            i.received + i.sent
        };
        if let Some(at) = faults.close_4004_at_bytes
            && carried >= at
            && !s.fired_4004.swap(true, Ordering::SeqCst)
        {
            let _ = tx.send(close_msg(4004, "reauthentication required"));
            break "fault: close 4004 at byte offset".into();
        }
        if let Some(c) = &faults.close_at_bytes
            && carried >= c.after_bytes
            && state.close_at_fired.load(Ordering::SeqCst) < c.times as u64
        {
            let n = state.close_at_fired.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(close_msg(c.code, "fault: close at byte offset"));
            break format!("fault: close {} at byte offset ({})", c.code, n + 1);
        }
        if let Some(st) = &faults.stall
            && carried >= st.after_bytes
            && !s.fired_stall.swap(true, Ordering::SeqCst)
        {
            let until = tokio::time::Instant::now() + Duration::from_secs(st.secs);
            *ctl.paused_until.lock().unwrap() = Some(until);
            state.event(format!("fault: stall {} s sid={}", st.secs, s.sid));
            tokio::time::sleep_until(until).await;
        }
        let m = tokio::select! {
            m = stream.next() => m,
            () = ctl.dropped.notified() => break "fault: drop (server to client)".into(),
            () = s.evict.notified() => break "evicted by a reconnect".into(),
            () = tokio::time::sleep_until(reauth_at) => {
                *s.reauth_epoch.lock().unwrap() = std::time::Instant::now();
                let _ = tx.send(close_msg(4004, "reauthentication required"));
                break "fault: periodic close 4004".into();
            }
            () = tokio::time::sleep_until(token_expiry) => {
                let _ = tx.send(close_msg(4004, "reauthentication required"));
                break "token expired: close 4004".into();
            }
            _ = tick.tick(), if !faults.no_idle_acks => {
                let rec = s.inner.lock().unwrap().received;
                if rec > last_ack_sent {
                    send_ack(rec);
                    last_ack_sent = rec;
                }
                continue;
            }
        };
        match m {
            Some(Ok(Message::Binary(b))) => match protocol::decode_client(&b) {
                ClientMsg::Data(d) => {
                    if let Some(limit) = faults.drop_every_bytes
                        && c2s + d.len() as u64 > limit
                    {
                        break "fault: drop (client to server)".into();
                    }
                    c2s += d.len() as u64;
                    // Write in steps that count what reached the backend, so
                    // an eviction mid-chunk loses and duplicates nothing.
                    let mut guard = s.backend_w.lock().await;
                    let mut off = 0;
                    let mut failed = guard.is_none();
                    let mut evicted = false;
                    while off < d.len() && !failed {
                        let Some(w) = guard.as_mut() else { break };
                        tokio::select! {
                            r = w.write(&d[off..]) => match r {
                                Ok(n) if n > 0 => {
                                    off += n;
                                    s.inner.lock().unwrap().received += n as u64;
                                }
                                _ => failed = true,
                            },
                            () = s.evict.notified() => { evicted = true; break; }
                        }
                    }
                    drop(guard);
                    if evicted {
                        break "evicted by a reconnect".into();
                    }
                    if failed {
                        let _ = tx.send(close_msg(4009, "destination write failed"));
                        break "backend write failed".into();
                    }
                    let rec = s.inner.lock().unwrap().received;
                    if let Some(v) = faults.violation.as_deref()
                        && !violated
                    {
                        violated = true;
                        violate(&tx, v, &s.sid, rec);
                    }
                    if rec - last_ack_sent > ack_every {
                        send_ack(rec);
                        last_ack_sent = rec;
                    }
                }
                ClientMsg::Ack(v) => {
                    if let Err(e) = s.confirm(v) {
                        let code = if e.contains("backwards") { 4005 } else { 4006 };
                        let _ = tx.send(close_msg(code, e));
                        break format!("close {code} {e}");
                    }
                }
                ClientMsg::Bad(e) => {
                    let _ = tx.send(close_msg(4013, e));
                    break format!("close 4013 {e}");
                }
                ClientMsg::UnknownTag(t) => {
                    let _ = tx.send(close_msg(4008, "invalid tag"));
                    break format!("close 4008 tag {t}");
                }
            },
            Some(Ok(Message::Close(f))) => {
                let code = f.as_ref().map(|f| u16::from(f.code)).unwrap_or(1005);
                state.event(format!("client close {code} sid={}", s.sid));
                s.detach(link_id);
                s.end(&state).await;
                let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
                return;
            }
            Some(Ok(Message::Text(_))) => {
                let _ = tx.send(close_msg(4007, "invalid websocket opcode"));
                break "close 4007 text".into();
            }
            Some(Ok(Message::Pong(_))) => state.event("pong received"),
            Some(Ok(_)) => {}
            Some(Err(e)) => break format!("link lost: {e}"),
            None => break "link lost: eof".into(),
        }
    };
    state.event(format!("link end sid={}: {outcome}", s.sid));
    s.lost(&state, link_id);
    drop(tx);
    if outcome.starts_with("fault: drop") {
        writer.abort();
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        // Closing handshake: read (and discard) until the client's Close,
        // so the TCP close does not reset away the Close frame we sent.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(m)) = stream.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

fn bearer(headers: &hyper::HeaderMap) -> Option<String> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_string)
}

/// Handles an upgraded `/v4/connect` or `/v4/reconnect`.
pub async fn handle(
    state: Arc<State>,
    upgraded: Upgraded,
    path: String,
    query: HashMap<String, String>,
    headers: hyper::HeaderMap,
) {
    let ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config()))
            .await;
    let q = |k: &str| query.get(k).cloned().unwrap_or_default();
    let token = bearer(&headers).unwrap_or_default();
    let token_ok = state.token_valid(&token);
    let token_expiry = state
        .token_expiry(&token)
        .map(tokio::time::Instant::from_std);
    if path.ends_with("/reconnect") {
        state.stats.reconnects.fetch_add(1, Ordering::SeqCst);
        let sid = q("sid");
        let ack: u64 = q("ack").parse().unwrap_or(u64::MAX);
        let loc = match query.get("region") {
            Some(r) => format!("region={r}"),
            None => format!("zone={}", q("zone")),
        };
        state.event(format!("reconnect sid={sid} ack={ack} {loc}"));
        if !token_ok {
            return reject(&state, ws, 4033, "not authorized").await;
        }
        if let Some(code) = state.config.faults.resume_refuse_code {
            return reject(&state, ws, code, "fault: resume refused").await;
        }
        let Some(s) = state.sessions.lock().unwrap().get(&sid).cloned() else {
            return reject(&state, ws, 4001, "sid unknown").await;
        };
        // The reconnect must name the session's own location and come
        // from the same principal (what the real relay checks is
        // UNCONFIRMED; these are the checks a careful relay makes).
        if loc != s.loc {
            return reject(&state, ws, 4051, "lookup failed on reconnect").await;
        }
        if state.token_account(&token).as_deref() != Some(s.account.as_str()) {
            return reject(&state, ws, 4033, "not authorized").await;
        }
        let attached = s.inner.lock().unwrap().link.is_some();
        if attached && state.config.faults.sid_in_use_ms > 0 {
            // The relay has not noticed yet that the old link is gone.
            return reject(&state, ws, 4002, "sid in use").await;
        }
        if attached {
            // A client only reconnects after giving up on its connection, so
            // the old one is dead even if we have not noticed yet (our
            // reader may be blocked on a slow backend). Ask it to let go and
            // wait briefly; answer 4002 only if it is still attached. What
            // the real relay does here is UNCONFIRMED.
            s.evict.notify_waiters();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            while s.inner.lock().unwrap().link.is_some() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let (attached, received, start, sent, eof) = {
            let i = s.inner.lock().unwrap();
            (
                i.link.is_some(),
                i.received,
                i.buf_start,
                i.sent,
                i.backend_eof,
            )
        };
        if attached {
            return reject(&state, ws, 4002, "sid in use").await;
        }
        if eof && state.config.faults.eof_on_reconnect {
            s.end(&state).await;
            return reject(&state, ws, 4010, "destination read failed").await;
        }
        if ack < start || ack > sent {
            return reject(&state, ws, 4074, "failed to rewind").await;
        }
        let _ = s.confirm(ack);
        let first = protocol::u64_msg(protocol::RECONNECT_ACK, received);
        if state.config.faults.reconnect_accept_then_drop {
            let mut ws = ws;
            let _ = ws.send(Message::Binary(first)).await;
            state.event(format!("fault: reconnect accepted then dropped sid={sid}"));
            // Dropped without a Close frame or TLS close_notify.
            return;
        }
        return serve_link(state, s, ws, first, ack, token_expiry).await;
    }

    state.stats.connects.fetch_add(1, Ordering::SeqCst);
    let project = q("project");
    let port: u16 = q("port").parse().unwrap_or(0);
    let ua = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let origin = headers
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let backend = if query.contains_key("host") {
        // Host target through a destination group.
        let (region, network, host) = (q("region"), q("network"), q("host"));
        let group = query.get("group").cloned();
        state.event(format!(
            "connect-host project={project} region={region} network={network} host={host} group={} port={port} new_websocket={} user_agent={ua} origin={origin}",
            group.as_deref().unwrap_or("-"),
            q("newWebsocket"),
        ));
        if query.contains_key("zone") || query.contains_key("instance") {
            return reject(&state, ws, 4008, "zone/instance not allowed with host").await;
        }
        if !token_ok || !state.config.has_project(&project) {
            return reject(&state, ws, 4033, "not authorized").await;
        }
        let Some(h) = state.config.find_host(&project, &region, &network, &host) else {
            return reject(&state, ws, 4047, "Failed to lookup host").await;
        };
        if h.dest_group.is_some() && h.dest_group != group {
            return reject(&state, ws, 4033, "not authorized").await;
        }
        h.ports.get(&port).cloned()
    } else {
        let (zone, instance, interface) = (q("zone"), q("instance"), q("interface"));
        state.event(format!(
            "connect project={project} zone={zone} instance={instance} interface={interface} port={port} new_websocket={} user_agent={ua} origin={origin}",
            q("newWebsocket"),
        ));
        if !token_ok || !state.config.has_project(&project) || !state.config.iap_access {
            return reject(&state, ws, 4033, "not authorized").await;
        }
        let Some(inst) = state.config.find(&project, &zone, &instance) else {
            return reject(&state, ws, 4047, "Failed to lookup instance").await;
        };
        if !inst.interfaces.contains(&interface) {
            return reject(&state, ws, 4047, "Failed to lookup instance").await;
        }
        // A stopped VM has nothing listening: the relay cannot reach the
        // backend. (Which code the real relay uses here is UNCONFIRMED.)
        if state
            .cloud
            .lock()
            .unwrap()
            .status(&project, &zone, &instance)
            != "RUNNING"
        {
            return reject(&state, ws, 4003, "failed to connect to backend").await;
        }
        if !crate::compute::firewall_admits(&state, inst, port) {
            state.event(format!("firewall: {instance} port {port} closed to IAP"));
            return reject(&state, ws, 4003, "failed to connect to backend").await;
        }
        inst.ports.get(&port).cloned()
    };
    let Some(backend) = backend else {
        return reject(&state, ws, 4003, "failed to connect to backend").await;
    };
    let n = state.connect_closes.fetch_add(1, Ordering::SeqCst) as usize;
    if let Some(code) = state.config.faults.connect_close.get(n) {
        return reject(&state, ws, *code, "fault: close at connect").await;
    }
    if state.config.faults.silent_after_upgrade {
        state.event("fault: silent after upgrade");
        let mut ws = ws;
        while let Some(Ok(_)) = ws.next().await {}
        return;
    }
    let (r, w, child) = match open_backend(&state, &backend).await {
        Ok(x) => x,
        Err(e) => {
            state.event(format!("backend connect failed: {e}"));
            return reject(&state, ws, 4003, "failed to connect to backend").await;
        }
    };
    let sid = state.new_sid();
    let loc = match query.get("region") {
        Some(r) => format!("region={r}"),
        None => format!("zone={}", q("zone")),
    };
    let s = Arc::new(RelaySession {
        sid: sid.clone(),
        loc,
        account: state.token_account(&token).unwrap_or_default(),
        inner: Mutex::new(Inner {
            buf: VecDeque::new(),
            buf_start: 0,
            sent: 0,
            received: 0,
            link: None,
            backend_eof: false,
            detached_at: None,
        }),
        acked: Notify::new(),
        backend_w: tokio::sync::Mutex::new(Some(w)),
        child: Mutex::new(child),
        fired_4004: Default::default(),
        fired_stall: Default::default(),
        reauth_epoch: Mutex::new(std::time::Instant::now()),
        evict: Notify::new(),
    });
    state
        .sessions
        .lock()
        .unwrap()
        .insert(sid.clone(), s.clone());
    state.event(format!("session {sid} established"));
    tokio::spawn(pump_backend(state.clone(), s.clone(), r));
    // Bytes the backend produced before the link is attached are in the
    // buffer: send them from offset 0 right after the SID.
    let first = if state.config.faults.violation.as_deref() == Some("data_before_sid") {
        protocol::data(b"early")
    } else {
        protocol::sid(&sid)
    };
    serve_link(state, s, ws, first, 0, token_expiry).await;
}
