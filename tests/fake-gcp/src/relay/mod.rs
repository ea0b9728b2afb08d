//! The server side of the IAP relay v4 protocol ("fake server contract" of
//! relay-protocol.md §9): bearer-token check, target lookup, backend
//! connection, CONNECT_SUCCESS_SID, relaying with cumulative ACKs, keeping
//! unacknowledged server→client bytes, and `/v4/reconnect`.
//!
//! By file: this one admits connects and reconnects (tokens, the target,
//! faults on the upgrade, the checks a reconnect must pass); `session` is
//! a relay session that outlives its links (the backend, the server→client
//! buffer, ACK bookkeeping); `link` serves one WebSocket of a session.

mod link;
mod session;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use crate::protocol;
use crate::state::State;
use link::serve_link;
pub use session::RelaySession;
use session::{Inner, open_backend, pump_backend};

/// The relay stalls server→client data beyond this many unacknowledged
/// bytes (IAP Desktop's observation of the real server: ~1.5 MB).
pub const STALL_UNACKED: u64 = 1_500_000;
/// The server ACKs client data after this many bytes, or when idle.
pub const ACK_EVERY: u64 = 32 * 1024;

type Ws = WebSocketStream<TokioIo<Upgraded>>;

pub(super) fn close_msg(code: u16, reason: &str) -> Message {
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

/// The bearer token of a request, if any.
pub fn bearer(headers: &hyper::HeaderMap) -> Option<String> {
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
    cert_ok: bool,
) {
    let ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config()))
            .await;
    if !cert_ok {
        state.event("no client certificate: close 4033");
        return reject(&state, ws, 4033, "not authorized").await;
    }
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
        if !token_ok
            || !state.config.has_project(&project)
            || !state
                .config
                .may_tunnel(state.token_account(&token).as_deref())
        {
            return reject(&state, ws, 4033, "not authorized").await;
        }
        let Some(h) = state.config.find_host(&project, &region, &network, &host) else {
            return reject(&state, ws, 4047, "Failed to lookup host").await;
        };
        if h.dest_group.is_some() && h.dest_group != group {
            return reject(&state, ws, 4033, "not authorized").await;
        }
        if state.config.iap_policies.is_some() {
            let who = state.token_account(&token).unwrap_or_default();
            if !crate::iap::host_bound(
                &state,
                &who,
                &project,
                &region,
                h.dest_group.as_deref(),
                (port, &host),
            ) {
                state.event(format!(
                    "iap iam: {who} may not reach host {host} port {port}"
                ));
                return reject(&state, ws, 4033, "not authorized").await;
            }
        }
        h.ports.get(&port).cloned()
    } else {
        let (zone, instance, interface) = (q("zone"), q("instance"), q("interface"));
        state.event(format!(
            "connect project={project} zone={zone} instance={instance} interface={interface} port={port} new_websocket={} user_agent={ua} origin={origin}",
            q("newWebsocket"),
        ));
        let principal = state.token_account(&token);
        if !token_ok
            || !state.config.has_project(&project)
            || !state.config.may_tunnel(principal.as_deref())
        {
            return reject(&state, ws, 4033, "not authorized").await;
        }
        let Some(inst) = state.config.find(&project, &zone, &instance) else {
            return reject(&state, ws, 4047, "Failed to lookup instance").await;
        };
        if !inst.interfaces.contains(&interface) {
            return reject(&state, ws, 4047, "Failed to lookup instance").await;
        }
        if state.config.iap_policies.is_some() {
            let index = state
                .config
                .instances
                .iter()
                .position(|i| std::ptr::eq(i, inst))
                .unwrap_or(0);
            let nic = inst
                .interfaces
                .iter()
                .position(|x| *x == interface)
                .unwrap_or(0);
            let ip = crate::compute::nic_ip_of(inst, index, nic);
            let who = principal.clone().unwrap_or_default();
            if !crate::iap::bound(&state, &who, &project, &zone, &instance, Some((port, &ip))) {
                state.event(format!(
                    "iap iam: {who} may not reach {instance} port {port} ({ip})"
                ));
                return reject(&state, ws, 4033, "not authorized").await;
            }
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
