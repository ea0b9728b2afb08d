//! A small HTTPS client (hyper + rustls) for Google's REST and OAuth
//! endpoints. Bodies are small JSON or form documents, read whole.
//! Connections go through the configured HTTP proxy (`crate::net::proxy`)
//! unless the client is [`HttpClient::direct`] (the GCE metadata server).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::net::proxy::dial::{DialError, Route};
use crate::net::proxy::{Proxies, ProxyError};

/// An OAuth access token, carried as a bearer credential. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(s: String) -> Self {
        AccessToken(s)
    }
    /// The bearer value, for the `Authorization` header only.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Time allowed for one request, connect to last body byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot reach {host}: {reason}")]
    Unreachable { host: String, reason: String },
    #[error("{host} did not answer within {secs} s")]
    Timeout { host: String, secs: u64 },
    #[error("bad request to {0}")]
    Build(String),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error("{0}")]
    Setting(String),
}

/// A response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: http::StatusCode,
    pub body: Bytes,
    /// The server's `Retry-After`, as a wait from now.
    pub retry_after: Option<std::time::Duration>,
}

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<hyper_rustls::HttpsConnector<Connector>, Full<Bytes>>,
}

/// TCP connections for the client, along [`crate::net::proxy::dial::Route`]:
/// direct, or a CONNECT tunnel through the proxy for hosts `NO_PROXY` does
/// not exempt.
#[derive(Clone)]
pub struct Connector {
    proxies: Result<Proxies, ProxyError>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, BoxError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let route = match (&self.proxies, crate::net::proxy::host_port(&uri)) {
            (_, None) => Err(format!("no host in {}", host_of(&uri)).into()),
            (Err(e), _) => Err(e.clone().into()),
            // TLS (wrapped around this connector) keeps the URL's name.
            (Ok(p), Some((host, port))) => Route::to(p, &host, port).map_err(BoxError::from),
        };
        Box::pin(async move {
            match route?.dial().await {
                Ok(s) => Ok(TokioIo::new(s)),
                // Boxed as itself, so that [`proxy_error`] finds it.
                Err(DialError::Proxy(p)) => Err(p.into()),
                Err(DialError::Io(e)) => Err(e.into()),
            }
        })
    }
}

fn host_of(uri: &http::Uri) -> String {
    uri.authority()
        .map(|a| a.to_string())
        .unwrap_or_else(|| uri.to_string())
}

/// The proxy's refusal somewhere in an error's source chain.
fn proxy_error(e: &(dyn std::error::Error + 'static)) -> Option<ProxyError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(p) = c.downcast_ref::<ProxyError>() {
            return Some(p.clone());
        }
        cur = c.source();
    }
    None
}

/// The `Retry-After` header of an answer, as a wait from now.
pub fn retry_after(h: &http::HeaderMap) -> Option<std::time::Duration> {
    let v = h.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    crate::timefmt::retry_after(v, crate::timefmt::unix_now() as i64)
}

/// Walks an error's source chain into one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

impl HttpClient {
    /// A client that uses the process's proxy settings.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        HttpClient::with_proxies(tls, crate::net::proxy::global().clone())
    }

    /// A client that never uses a proxy (the GCE metadata server).
    pub fn direct(tls: Arc<rustls::ClientConfig>) -> Self {
        HttpClient::with_proxies(tls, Ok(Proxies::none()))
    }

    fn with_proxies(tls: Arc<rustls::ClientConfig>, proxies: Result<Proxies, ProxyError>) -> Self {
        let conn = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(Connector { proxies });
        // A connection's read buffer grows with the answers it reads and
        // keeps its size while pooled: capped, so that setup's 50 pooled
        // connections after 375 KB instance listings do not hold 20 MB
        // (bodies stream through the buffer whatever its size).
        let inner = Client::builder(TokioExecutor::new())
            .http1_max_buf_size(64 * 1024)
            .build(conn);
        HttpClient { inner }
    }

    /// Sends a request; any HTTP status is a successful [`Response`].
    pub async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Bytes)>,
    ) -> Result<Response, HttpError> {
        // Error messages never carry a query string (it may hold a token).
        let shown = || url.split('?').next().unwrap_or("").to_string();
        let uri: http::Uri = url.parse().map_err(|_| HttpError::Build(shown()))?;
        let host = host_of(&uri);
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b = b.header("user-agent", concat!("iap-ssh/", env!("CARGO_PKG_VERSION")));
        match crate::gcloud::request_reason() {
            Ok(Some(r)) => b = b.header("x-goog-request-reason", r.clone()),
            Ok(None) => {}
            Err(e) => return Err(HttpError::Setting(e)),
        }
        let payload = match body {
            Some((ctype, data)) => {
                b = b.header("content-type", ctype);
                data
            }
            None => Bytes::new(),
        };
        let req = b
            .body(Full::new(payload))
            .map_err(|_| HttpError::Build(shown()))?;
        let fut = async {
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| match proxy_error(&e) {
                    Some(p) => HttpError::Proxy(p),
                    None => HttpError::Unreachable {
                        host: host.clone(),
                        reason: error_chain(&e),
                    },
                })?;
            let status = resp.status();
            let retry_after = retry_after(resp.headers());
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| HttpError::Unreachable {
                    host: host.clone(),
                    reason: error_chain(&e),
                })?
                .to_bytes();
            Ok(Response {
                status,
                body,
                retry_after,
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| HttpError::Timeout {
                host: host.clone(),
                secs: REQUEST_TIMEOUT.as_secs(),
            })?
    }
}
