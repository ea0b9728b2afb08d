//! WebSocket transport to the relay: the handshake with IAP's exact headers
//! (subprotocol, `Origin`, bearer token, user agent), over rustls.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Error as WsError};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::auth::AccessToken;
use crate::error::{UserError, exit};

pub const SUBPROTOCOL: &str = "relay.tunnel.cloudproxy.app";
pub const ORIGIN: &str = "bot:iap-tunneler";
pub const USER_AGENT: &str = concat!("iap-ssh/", env!("CARGO_PKG_VERSION"));

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to the IAP relay at {host}: {reason}")]
    Unreachable { host: String, reason: String },
    #[error("the IAP relay at {host} answered the WebSocket upgrade with HTTP {status}")]
    Http { host: String, status: u16 },
    #[error("the IAP relay at {host} did not accept the `relay.tunnel.cloudproxy.app` subprotocol")]
    NoSubprotocol { host: String },
    #[error("{what} took longer than {secs} s")]
    Timeout { what: String, secs: u64 },
}

impl TransportError {
    pub fn into_user_error(self) -> UserError {
        let (code, fix) = match &self {
            TransportError::Unreachable { reason, .. }
                if reason.contains("certificate") || reason.contains("UnknownIssuer") =>
            {
                (
                    exit::OTHER,
                    "the relay's TLS certificate is not trusted; behind a TLS-inspecting proxy set IAP_SSH_CA_FILE to its root CA (PEM)",
                )
            }
            TransportError::Unreachable { .. } | TransportError::Timeout { .. } => (
                exit::OTHER,
                "check your network connection (IAP needs outbound HTTPS to tunnel.cloudproxy.app:443)",
            ),
            TransportError::Http {
                status: 401 | 403, ..
            } => (
                exit::NOT_AUTHORIZED,
                "check your credentials (`gcloud auth application-default login`) and that you have roles/iap.tunnelResourceAccessor",
            ),
            TransportError::Http { status: 404, .. } => (
                exit::NOT_FOUND,
                "check the instance name, zone and project, and IAP_SSH_TUNNEL_URL if set",
            ),
            TransportError::Http { .. } => (
                exit::OTHER,
                "a proxy or the relay rejected the WebSocket; retry, and check proxy settings",
            ),
            TransportError::NoSubprotocol { .. } => (
                exit::PROTOCOL,
                "IAP_SSH_TUNNEL_URL must point at an IAP relay",
            ),
        };
        UserError::new(code, self.to_string()).with_fix(fix)
    }
}

/// The `host:port` of a URL, for messages.
pub(crate) fn host_of(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "?".into())
}

/// Frames and messages are at most one DATA message (16 390 bytes); allow
/// some slack but refuse anything absurd.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024))
}

/// Opens one WebSocket to `url` with the IAP headers.
pub async fn open(
    url: &str,
    token: &AccessToken,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<Ws, TransportError> {
    let host = host_of(url);
    let mut req = url
        .into_client_request()
        .map_err(|e| TransportError::Unreachable {
            host: host.clone(),
            reason: e.to_string(),
        })?;
    let h = req.headers_mut();
    h.insert("origin", HeaderValue::from_static(ORIGIN));
    h.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    h.insert("user-agent", HeaderValue::from_static(USER_AGENT));
    let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.secret())).map_err(|_| {
        TransportError::Unreachable {
            host: host.clone(),
            reason: "the access token contains characters not allowed in a header".into(),
        }
    })?;
    auth.set_sensitive(true);
    h.insert("authorization", auth);
    tracing::debug!("opening {url}");
    let fut = tokio_tungstenite::connect_async_tls_with_config(
        req,
        Some(ws_config()),
        true,
        Some(Connector::Rustls(tls)),
    );
    let res = tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| TransportError::Timeout {
            what: format!("connecting to the IAP relay at {host}"),
            secs: timeout.as_secs(),
        })?;
    match res {
        Ok((ws, _resp)) => Ok(ws),
        Err(WsError::Http(resp)) => Err(TransportError::Http {
            host,
            status: resp.status().as_u16(),
        }),
        Err(WsError::Protocol(
            tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(_),
        )) => Err(TransportError::NoSubprotocol { host }),
        Err(e) => Err(TransportError::Unreachable {
            host,
            reason: crate::http::error_chain(&e),
        }),
    }
}
