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

use crate::error::{UserError, exit};
use crate::net::http::AccessToken;
use crate::net::proxy::dial::{DialError, Route};

pub const SUBPROTOCOL: &str = "relay.tunnel.cloudproxy.app";
pub const ORIGIN: &str = "bot:iap-tunneler";
pub const USER_AGENT: &str = concat!("iap-ssh/", env!("CARGO_PKG_VERSION"));

pub type Ws = WebSocketStream<MaybeTlsStream<super::sock::RelaySock>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to the IAP relay at {host}: {reason}")]
    Unreachable { host: String, reason: String },
    #[error("the IAP relay at {host} answered the WebSocket upgrade with HTTP {status}{}", retry_note(*retry_after))]
    Http {
        host: String,
        status: u16,
        /// The relay's `Retry-After`, as a wait from the answer.
        retry_after: Option<Duration>,
    },
    #[error("the IAP relay at {host} did not accept the `relay.tunnel.cloudproxy.app` subprotocol")]
    NoSubprotocol { host: String },
    #[error("{what} took longer than {secs} s")]
    Timeout { what: String, secs: u64 },
    #[error(transparent)]
    Proxy(#[from] crate::net::proxy::ProxyError),
    #[error("{0}")]
    Setting(String),
    #[error("{}", client_cert_cause(host, alert))]
    ClientCert { host: String, alert: &'static str },
}

/// Did the relay refuse the certificate we presented (rather than miss
/// one)?
fn retry_note(ra: Option<Duration>) -> String {
    match ra {
        Some(d) => format!(" (retry after {} s)", d.as_secs()),
        None => String::new(),
    }
}

fn cert_refused(alert: &str) -> bool {
    alert != "CertificateRequired" && crate::net::mtls::relay_got_cert()
}

fn client_cert_cause(host: &str, alert: &str) -> String {
    if !cert_refused(alert) {
        format!(
            "certificate-based access: no valid client certificate (the IAP relay at {host} ended the TLS handshake: {alert})"
        )
    } else {
        format!(
            "certificate-based access: the IAP relay at {host} refused the client certificate (TLS alert {alert})"
        )
    }
}

impl TransportError {
    pub fn into_user_error(self) -> UserError {
        let (code, fix) = match &self {
            TransportError::Unreachable { reason, .. } if crate::net::tls::untrusted(reason) => {
                return UserError::new(exit::OTHER, self.to_string())
                    .with_fix(crate::net::tls::untrusted_fix());
            }
            TransportError::Unreachable { .. } | TransportError::Timeout { .. } => (
                exit::OTHER,
                "check your network connection (IAP needs outbound HTTPS to tunnel.cloudproxy.app:443)",
            ),
            TransportError::Http { status: 401, .. } => (
                exit::NOT_AUTHORIZED,
                "your credentials were refused even after a fresh token: run `gcloud auth application-default login` (or fix GOOGLE_APPLICATION_CREDENTIALS)",
            ),
            // IAP itself reports missing permissions with close 4033; a 403
            // on the upgrade often comes from a proxy refusing WebSockets.
            TransportError::Http { status: 403, .. } => (
                exit::NOT_AUTHORIZED,
                "check that you have roles/iap.tunnelResourceAccessor; if an HTTP proxy or firewall sits between you and tunnel.cloudproxy.app, it may be refusing WebSocket upgrades (ask for wss://tunnel.cloudproxy.app to be allowed)",
            ),
            TransportError::Http { status: 404, .. } => (
                exit::NOT_FOUND,
                "check the instance name, zone and project, and IAP_SSH_TUNNEL_URL if set",
            ),
            TransportError::Http {
                status: 429 | 500..=599,
                ..
            } => (
                exit::OTHER,
                "IAP is overloaded or failing; retry in a moment",
            ),
            TransportError::Http { .. } => (
                exit::OTHER,
                "a proxy or the relay rejected the WebSocket; retry, and check proxy settings",
            ),
            TransportError::NoSubprotocol { .. } => (
                exit::PROTOCOL,
                "IAP_SSH_TUNNEL_URL must point at an IAP relay",
            ),
            // A proxy's refusal is the proxy's, never an IAM hint.
            TransportError::Proxy(e) => (exit::OTHER, e.fix()),
            TransportError::Setting(_) => (exit::USAGE, ""),
            TransportError::ClientCert { alert, .. } if cert_refused(alert) => {
                (exit::NOT_AUTHORIZED, crate::net::mtls::FIX_BAD_CERT)
            }
            TransportError::ClientCert { .. } => {
                (exit::NOT_AUTHORIZED, crate::net::mtls::FIX_NO_CERT)
            }
        };
        if fix.is_empty() {
            return UserError::new(code, self.to_string());
        }
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

/// How quickly a dead connection to the relay is noticed by the kernel,
/// whatever the relay's ACK cadence: TCP keepalive probes when idle, and a
/// limit on how long sent data may stay unacknowledged at the TCP level.
#[derive(Debug, Clone, Copy)]
pub struct DeadLink {
    /// The connection counts as dead after about this long without an
    /// answer from the relay's TCP stack.
    pub after: Duration,
}

impl DeadLink {
    /// Sets `SO_KEEPALIVE` with probes starting after half of `after`, three
    /// probes a sixth apart, and (Linux) `TCP_USER_TIMEOUT` = `after`.
    /// Invisible to the relay (the kernel answers keepalive probes), so safe
    /// with the real service; failures are ignored (best effort).
    fn apply(&self, sock: &TcpStream) {
        use std::os::fd::AsRawFd;
        let fd = sock.as_raw_fd();
        let secs = self.after.as_secs().clamp(3, 86_400) as libc::c_int;
        let set = |level: libc::c_int, name: libc::c_int, v: libc::c_int| {
            // SAFETY: setsockopt with a pointer to a local c_int and its size.
            let r = unsafe {
                libc::setsockopt(
                    fd,
                    level,
                    name,
                    (&v as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r != 0 {
                tracing::debug!(
                    "setsockopt({level}, {name}): {}",
                    std::io::Error::last_os_error()
                );
            }
        };
        set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, (secs / 2).max(1));
            set(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, secs * 1000);
        }
        #[cfg(any(target_os = "macos", target_os = "ios"))]
        set(libc::IPPROTO_TCP, libc::TCP_KEEPALIVE, (secs / 2).max(1));
        set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (secs / 6).max(1));
        set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
    }
}

/// Why opening failed: the proxy, or the relay's TCP/TLS/WebSocket.
enum Opening {
    Proxy(crate::net::proxy::ProxyError),
    Ws(WsError),
}

impl From<WsError> for Opening {
    fn from(e: WsError) -> Self {
        Opening::Ws(e)
    }
}

/// Opens one WebSocket to `url` with the IAP headers. The TCP connection,
/// TLS and WebSocket handshakes must all finish by `deadline`.
pub async fn open(
    url: &str,
    token: &AccessToken,
    tls: Arc<rustls::ClientConfig>,
    deadline: tokio::time::Instant,
    dead_link: DeadLink,
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
    match crate::gcloud::request_reason() {
        Ok(Some(r)) => {
            h.insert("x-goog-request-reason", r.clone());
        }
        Ok(None) => {}
        Err(e) => return Err(TransportError::Setting(e)),
    }
    let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.secret())).map_err(|_| {
        TransportError::Unreachable {
            host: host.clone(),
            reason: "the access token contains characters not allowed in a header".into(),
        }
    })?;
    auth.set_sensitive(true);
    h.insert("authorization", auth);
    let Some((name, port)) = crate::net::proxy::host_port(req.uri()) else {
        return Err(TransportError::Unreachable {
            host,
            reason: "the relay URL has no host or an unknown scheme".into(),
        });
    };
    tracing::debug!("opening {url}");
    let secs = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .as_secs()
        .max(1);
    let proxies = crate::net::proxy::global()
        .as_ref()
        .map_err(|e| e.clone())?;
    // TLS keeps the relay's name whatever address is dialled (inside the
    // proxy's tunnel too).
    let route = Route::to(proxies, &name, port).map_err(TransportError::Setting)?;
    let proxy = route.proxy.as_ref();
    let fut = async {
        let sock = route.dial().await.map_err(|e| match e {
            DialError::Proxy(p) => Opening::Proxy(p),
            DialError::Io(e) => Opening::Ws(WsError::Io(e)),
        })?;
        dead_link.apply(&sock);
        let sock = super::sock::RelaySock::new(sock, proxy.is_some());
        Ok::<_, Opening>(
            tokio_tungstenite::client_async_tls_with_config(
                req,
                sock,
                Some(ws_config()),
                Some(Connector::Rustls(tls)),
            )
            .await?,
        )
    };
    let what = match proxy {
        Some(p) => format!(
            "connecting to the IAP relay at {host} through proxy {}",
            p.addr()
        ),
        None => format!("connecting to the IAP relay at {host}"),
    };
    let res = tokio::time::timeout_at(deadline, fut)
        .await
        .map_err(|_| TransportError::Timeout { what, secs })?;
    let res = match res {
        Err(Opening::Proxy(e)) => return Err(e.into()),
        Err(Opening::Ws(e)) => Err(e),
        Ok(r) => Ok(r),
    };
    match res {
        Ok((mut ws, _resp)) => {
            if let MaybeTlsStream::Rustls(t) = ws.get_mut() {
                t.get_mut().0.setup_done();
            }
            Ok(ws)
        }
        Err(WsError::Http(resp)) => Err(TransportError::Http {
            host,
            status: resp.status().as_u16(),
            retry_after: crate::net::http::retry_after(resp.headers()),
        }),
        Err(WsError::Protocol(
            tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(_),
        )) => Err(TransportError::NoSubprotocol { host }),
        Err(e) => {
            let reason = crate::net::http::error_chain(&e);
            match client_cert_alert(&reason) {
                Some(alert) => Err(TransportError::ClientCert { host, alert }),
                None => Err(TransportError::Unreachable { host, reason }),
            }
        }
    }
}

/// A TLS alert by which the relay refused our client certificate (or its
/// absence), from an error's text.
fn client_cert_alert(reason: &str) -> Option<&'static str> {
    [
        "CertificateRequired",
        "BadCertificate",
        "UnknownCA",
        "CertificateExpired",
        "CertificateRevoked",
        "CertificateUnknown",
        "UnsupportedCertificate",
        "AccessDenied",
    ]
    .into_iter()
    .find(|a| reason.contains(&format!("alert: {a}")))
}
