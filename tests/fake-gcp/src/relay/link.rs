//! One WebSocket of a fake relay session: the first message (SID or
//! RECONNECT_SUCCESS_ACK) and the re-sent backlog, client DATA to the
//! backend, ACKs on the configured cadence, and the faults that act on a
//! link (drops, stalls, 4004 and other closes, protocol violations).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;

use super::{ACK_EVERY, RelaySession, Ws, close_msg};
use crate::protocol::{self, ClientMsg};
use crate::state::State;

static LINK_IDS: AtomicU64 = AtomicU64::new(1);

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
                // Drop the connection without a Close frame, after what
                // went before it has reached the wire.
                let _ = sink.flush().await;
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

/// The `chaos` fault's random choices for one link.
struct ChaosDraw {
    rng: rand::rngs::StdRng,
    min: u64,
    max: u64,
    kinds: Vec<String>,
    stall: Duration,
}

impl ChaosDraw {
    fn new(c: &crate::config::Chaos, link_id: u64) -> ChaosDraw {
        use rand::SeedableRng;
        let seed = c.seed.unwrap_or_else(rand::random);
        ChaosDraw {
            rng: rand::rngs::StdRng::seed_from_u64(
                seed ^ link_id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ),
            min: c.min_ms,
            max: c.max_ms.max(c.min_ms),
            kinds: c.kinds.clone(),
            stall: Duration::from_millis(c.stall_ms),
        }
    }

    /// When the next fault on this link is due.
    fn next_at(&mut self) -> tokio::time::Instant {
        use rand::Rng;
        tokio::time::Instant::now() + Duration::from_millis(self.rng.gen_range(self.min..=self.max))
    }

    fn kind(&mut self) -> String {
        use rand::seq::SliceRandom;
        self.kinds
            .choose(&mut self.rng)
            .cloned()
            .unwrap_or_else(|| "drop".into())
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
pub(super) async fn serve_link(
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
    // The periodic 4004 runs on the session's clock, across its links, but
    // a link gets to carry some data first (64 KiB, or half a period): one
    // opened with a fresh token is not due for re-authentication at birth.
    let born = tokio::time::Instant::now();
    let mut reauth_at = faults
        .close_4004_every_secs
        .map(|t| {
            tokio::time::Instant::from_std(*s.reauth_epoch.lock().unwrap()) + Duration::from_secs(t)
        })
        .unwrap_or(far);
    let token_expiry = token_expiry.unwrap_or(far);
    let mut chaos = faults.chaos.as_ref().map(|c| ChaosDraw::new(c, link_id));
    let mut chaos_at = chaos.as_mut().map_or(far, ChaosDraw::next_at);
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
                let period = Duration::from_secs(faults.close_4004_every_secs.unwrap_or(0));
                let carried = c2s + ctl.s2c.load(Ordering::SeqCst);
                if carried < 64 * 1024 && born.elapsed() < period / 2 {
                    reauth_at = tokio::time::Instant::now() + Duration::from_millis(10);
                    continue;
                }
                *s.reauth_epoch.lock().unwrap() = std::time::Instant::now();
                let _ = tx.send(close_msg(4004, "reauthentication required"));
                break "fault: periodic close 4004".into();
            }
            () = tokio::time::sleep_until(chaos_at) => {
                let Some(draw) = chaos.as_mut() else { continue };
                let kind = draw.kind();
                state.event(format!("fault: chaos {kind} sid={}", s.sid));
                match kind.as_str() {
                    "4004" => {
                        let _ = tx.send(close_msg(4004, "reauthentication required"));
                        break "fault: chaos close 4004".into();
                    }
                    "stall" => {
                        let until = tokio::time::Instant::now() + draw.stall;
                        *ctl.paused_until.lock().unwrap() = Some(until);
                        tokio::select! {
                            () = tokio::time::sleep_until(until) => {}
                            () = s.evict.notified() => break "evicted by a reconnect".into(),
                        }
                        chaos_at = draw.next_at();
                        continue;
                    }
                    "429" => {
                        state.chaos_429_due.fetch_add(1, Ordering::SeqCst);
                        break "fault: drop (chaos, next reconnect 429)".into();
                    }
                    _ => break "fault: drop (chaos)".into(),
                }
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
