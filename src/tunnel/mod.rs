//! Moves bytes between a local byte stream (stdin/stdout for a ProxyCommand,
//! an accepted socket for port forwarding) and one relay session, resuming
//! the session on a new WebSocket when the transport drops or IAP asks for
//! re-authentication.
//!
//! By file: [`link`] is one WebSocket (the read half and a writer task);
//! `connect` opens a session and resumes it (backoff, tokens, what each
//! answer means); `carry` is the session loop (local input → DATA, DATA →
//! local output, ACKs, keepalive, stalls, the clean end). [`stdio`] and
//! [`listener`] are the two sources of bytes.

mod carry;
mod connect;
pub(crate) use connect::jitter;
mod link;
pub mod listener;
pub mod stdio;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::error::UserError;
use crate::net::http::AccessToken;
use crate::relay::RelayError;
use crate::relay::session::Session;
use crate::relay::transport::DeadLink;
use crate::relay::url::Target;
use link::Link;

pub use carry::run;

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
    /// Keep trying to open the session this long while the VM is not
    /// ready (`--wait`; None: the first failure is final).
    pub wait: Option<Duration>,
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
            wait: None,
        }
    }
}

/// Where a tunnel gets its bearer tokens. The credential sources live a
/// layer up (the `auth` module implements this); the tunnel only asks.
pub trait Tokens: Send + Sync {
    /// A token to present; a fresh one when the relay refused `rejected`.
    fn token<'a>(
        &'a self,
        rejected: Option<&'a AccessToken>,
    ) -> Pin<Box<dyn Future<Output = Result<AccessToken, UserError>> + Send + 'a>>;
    /// A token that cannot be refreshed (given as is): a refusal is final.
    fn is_static(&self) -> bool;
}

/// Everything needed to open relay WebSockets.
pub struct Relay {
    pub tunnel_base: String,
    pub tls: Arc<rustls::ClientConfig>,
    pub tokens: Box<dyn Tokens>,
    /// At most this many relay handshakes (TCP, TLS, upgrade and the
    /// first message) at once; further connections queue (`forward
    /// --max-handshakes`). None: no limit (one session per process).
    pub handshakes: Option<Arc<tokio::sync::Semaphore>>,
}

impl TunnelConfig {
    fn dead_link(&self) -> DeadLink {
        DeadLink {
            after: self.stall_timeout,
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
