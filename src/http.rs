//! A small HTTPS client (hyper + rustls) for Google's REST and OAuth
//! endpoints. Bodies are small JSON or form documents, read whole.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

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
}

/// A response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: http::StatusCode,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

fn host_of(uri: &http::Uri) -> String {
    uri.authority()
        .map(|a| a.to_string())
        .unwrap_or_else(|| uri.to_string())
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
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        let conn = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .build();
        let inner = Client::builder(TokioExecutor::new()).build(conn);
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
                .map_err(|e| HttpError::Unreachable {
                    host: host.clone(),
                    reason: error_chain(&e),
                })?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| HttpError::Unreachable {
                    host: host.clone(),
                    reason: error_chain(&e),
                })?
                .to_bytes();
            Ok(Response { status, body })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| HttpError::Timeout {
                host: host.clone(),
                secs: REQUEST_TIMEOUT.as_secs(),
            })?
    }
}
