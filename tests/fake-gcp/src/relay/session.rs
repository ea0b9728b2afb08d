//! A relay session of the fake: it outlives its WebSockets so it can be
//! resumed. It owns the backend (a TCP connection or a process per
//! session), keeps every server→client byte until the client ACKs it,
//! stalls at [`STALL_UNACKED`](super::STALL_UNACKED), and reports the
//! backend's end with 4010.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;

use super::{STALL_UNACKED, close_msg};
use crate::config::Backend;
use crate::protocol;
use crate::state::State;

pub(super) type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
pub(super) type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

pub(super) struct Inner {
    /// Server→client bytes not yet acknowledged, starting at `buf_start`.
    pub(super) buf: VecDeque<Bytes>,
    pub(super) buf_start: u64,
    /// Server→client bytes produced so far.
    pub(super) sent: u64,
    /// Client→server bytes received so far.
    pub(super) received: u64,
    pub(super) link: Option<(u64, mpsc::UnboundedSender<Message>)>,
    pub(super) backend_eof: bool,
    /// When the last link was lost (not closed by the client).
    pub(super) detached_at: Option<std::time::Instant>,
}

/// One relay session; outlives its WebSockets so it can be resumed.
pub struct RelaySession {
    pub sid: String,
    /// `zone=Z` or `region=R`, as a reconnect must repeat it.
    pub(super) loc: String,
    /// The account of the token that opened the session.
    pub(super) account: String,
    pub(super) inner: Mutex<Inner>,
    pub(super) acked: Notify,
    pub(super) backend_w: tokio::sync::Mutex<Option<BoxWrite>>,
    pub(super) child: Mutex<Option<tokio::process::Child>>,
    pub(super) fired_4004: std::sync::atomic::AtomicBool,
    pub(super) fired_stall: std::sync::atomic::AtomicBool,
    pub(super) reauth_epoch: Mutex<std::time::Instant>,
    /// Tells the attached link to let go (a reconnect for this SID arrived).
    pub(super) evict: Notify,
}

pub(super) async fn open_backend(
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
    pub(super) fn unacked(&self) -> u64 {
        let i = self.inner.lock().unwrap();
        i.sent - i.buf_start
    }

    /// Applies a client ACK (or the `ack` of a reconnect): drops confirmed
    /// bytes. Err if the value is impossible.
    pub(super) fn confirm(&self, v: u64) -> Result<(), &'static str> {
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

    pub(super) fn detach(&self, link_id: u64) {
        let mut i = self.inner.lock().unwrap();
        if i.link.as_ref().is_some_and(|(id, _)| *id == link_id) {
            i.link = None;
            i.detached_at = Some(std::time::Instant::now());
        }
    }

    /// Detaches a lost link, after the `sid_in_use_ms` delay (the relay
    /// notices a dead connection late), and forgets the session when it
    /// stays detached longer than `session_expiry_secs`.
    pub(super) fn lost(self: &Arc<Self>, state: &Arc<State>, link_id: u64) {
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

    pub(super) async fn end(&self, state: &State) {
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
pub(super) async fn pump_backend(state: Arc<State>, s: Arc<RelaySession>, mut r: BoxRead) {
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
