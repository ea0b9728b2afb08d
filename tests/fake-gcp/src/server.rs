//! The HTTPS front end: one TLS port serving the relay WebSocket
//! (`/v4/connect`, `/v4/reconnect`), the OAuth token endpoint and the
//! metadata server's token URL, `tokeninfo`, Compute (`/compute/v1/`) and
//! OS Login (`/oslogin/v1/`). REST calls need a valid bearer token.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::oauth;
use crate::state::State;

const SUBPROTOCOL: &str = "relay.tunnel.cloudproxy.app";

fn reply(status: u16, ctype: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", ctype)
        .body(Full::new(body.into()))
        .expect("valid response")
}

/// A faulted answer, with the `retry_after` fault's header when set.
fn fault_reply(state: &State, status: u16, ctype: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = reply(status, ctype, body);
    if let Some(v) = &state.config.faults.retry_after
        && let Ok(v) = hyper::header::HeaderValue::from_str(v)
    {
        r.headers_mut().insert("retry-after", v);
    }
    r
}

/// The `api_http` fault's answer to a REST call, if it has one for it.
fn api_fault(state: &State, method: &str, path: &str) -> Option<Response<Full<Bytes>>> {
    let status = state.api_fault(path)?;
    state.event(format!(
        "fault: api {method} {path} answered with HTTP {status}"
    ));
    let body = serde_json::json!({"error": {"code": status, "status": "UNAVAILABLE",
        "message": format!("fault: HTTP {status}")}});
    Some(fault_reply(
        state,
        status,
        "application/json",
        body.to_string(),
    ))
}

fn json((status, body): oauth::Reply) -> Response<Full<Bytes>> {
    reply(status, "application/json", body)
}

async fn upgrade(
    state: Arc<State>,
    mut req: Request<Incoming>,
    client_cert: bool,
) -> Response<Full<Bytes>> {
    let h = req.headers();
    let is_ws = h
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = h
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()))
    else {
        return reply(400, "text/plain", "not a WebSocket request");
    };
    if !is_ws {
        return reply(400, "text/plain", "not a WebSocket request");
    }
    let offered = h
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim() == SUBPROTOCOL));
    if !offered {
        state.event("upgrade refused: subprotocol not offered");
        return reply(
            400,
            "text/plain",
            "subprotocol relay.tunnel.cloudproxy.app required",
        );
    }
    if h.get("origin").and_then(|v| v.to_str().ok()) != Some("bot:iap-tunneler") {
        state.event("upgrade refused: bad origin");
        return reply(403, "text/plain", "bad origin");
    }
    // Counts this handshake as in flight until the answer is returned.
    struct InFlight(Arc<State>);
    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.handshakes_in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let now = state.handshakes_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _in_flight = InFlight(state.clone());
    if let Some(max) = state.config.faults.max_concurrent_handshakes
        && now > max
    {
        state.handshakes_refused.fetch_add(1, Ordering::SeqCst);
        state.event(format!(
            "handshake limit: {now} in flight > {max}: HTTP 429"
        ));
        return reply(429, "text/plain", "Too Many Requests");
    }
    state.handshakes_peak.fetch_max(now, Ordering::SeqCst);
    let path = req.uri().path().to_string();
    let reconnect = path.ends_with("/reconnect");
    if reconnect {
        state.event("reconnect upgrade requested");
    }
    if reconnect && state.refuse_reconnect() {
        state.event("fault: reconnect refused with HTTP 503");
        return reply(503, "text/plain", "fault: reconnect refused");
    }
    if reconnect
        && state
            .chaos_429_due
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        state.event("fault: chaos reconnect answered with HTTP 429");
        return fault_reply(&state, 429, "text/plain", "Too Many Requests".into());
    }
    if let Some(status) = state.upgrade_fault(reconnect) {
        let what = if reconnect { "reconnect" } else { "connect" };
        state.event(format!("fault: {what} answered with HTTP {status}"));
        return fault_reply(
            &state,
            status,
            "text/plain",
            format!("fault: HTTP {status}"),
        );
    }
    if let Some(status) = state.config.faults.bad_token_http {
        let token = h
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !state.token_valid(token) {
            state.event(format!("bad token: HTTP {status}"));
            return reply(status, "text/plain", "invalid credentials");
        }
    }
    if !reconnect && state.config.faults.upgrade_delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(
            state.config.faults.upgrade_delay_ms,
        ))
        .await;
    }
    let query: HashMap<String, String> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let headers = req.headers().clone();
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => {
                // Under a certificate access policy IAP upgrades, then
                // closes 4033 (enterprise.md §3.5).
                let cert_ok =
                    client_cert || state.config.client_certs.as_deref() != Some("require");
                crate::relay::handle(state, up, path, query, headers, cert_ok).await
            }
            Err(e) => state.event(format!("upgrade failed: {e}")),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", key)
        .header("sec-websocket-protocol", SUBPROTOCOL)
        .body(Full::new(Bytes::new()))
        .expect("valid response")
}

/// The service a request is for when a client reaches the fake under a
/// real host name (`oslogin.…`, `iap.…`): the path it has on the fake's
/// single port.
fn path_for_host(host: &str, path: &str) -> String {
    let service = host.split('.').next().unwrap_or("");
    match service {
        "oslogin" if !path.starts_with("/oslogin/") => format!("/oslogin{path}"),
        "iap" if !path.starts_with("/iap/") => format!("/iap{path}"),
        "cloudresourcemanager" if !path.starts_with("/crm/") => format!("/crm{path}"),
        _ => path.to_string(),
    }
}

async fn route(
    state: Arc<State>,
    req: Request<Incoming>,
    client_cert: bool,
) -> Response<Full<Bytes>> {
    let host = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .map(|h| {
            h.rsplit_once(':').map_or(h, |(n, p)| {
                if p.bytes().all(|b| b.is_ascii_digit()) {
                    n
                } else {
                    h
                }
            })
        })
        .unwrap_or("")
        .to_string();
    let mut path = req.uri().path().to_string();
    let by_name = !host.is_empty()
        && !host.starts_with('[')
        && host.parse::<std::net::IpAddr>().is_err()
        && host != "localhost";
    if by_name || state.config.client_certs.is_some() {
        state.event(format!(
            "request host={host} path={path} client_cert={}",
            if client_cert { "yes" } else { "no" }
        ));
    }
    if by_name {
        path = path_for_host(&host, &path);
    }
    let method = req.method().clone();
    // gcloud's core/request_reason, as the client sent it (tests assert it).
    if let Some(r) = req.headers().get("x-goog-request-reason") {
        state.event(format!(
            "request reason {method} {path}: {}",
            String::from_utf8_lossy(r.as_bytes())
        ));
    }
    if path.ends_with("/connect") || path.ends_with("/reconnect") {
        return upgrade(state, req, client_cert).await;
    }
    match (method.as_str(), path.as_str()) {
        ("POST", "/token" | "/o/oauth2/token") => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            if let Some(status) = state.token_fault() {
                state.event(format!("fault: token answered with HTTP {status}"));
                return fault_reply(&state, status, "text/html", format!("<html>fault: HTTP {status}</html>"));
            }
            json(oauth::token_endpoint(&state, &body))
        }
        ("GET", "/computeMetadata/v1/instance/service-accounts/default/token") => {
            let flavor = req
                .headers()
                .get("metadata-flavor")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            json(oauth::metadata_token(&state, flavor.as_deref()))
        }
        ("POST", "/tokeninfo") if state.config.tokeninfo_get_only => {
            state.event("tokeninfo POST refused");
            json((405, r#"{"error":"method not allowed"}"#.to_string()))
        }
        ("GET" | "POST", "/tokeninfo") => {
            state.event(format!("tokeninfo {method}"));
            let query = req.uri().query().unwrap_or("").to_string();
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let token = form_urlencoded::parse(query.as_bytes())
                .chain(form_urlencoded::parse(&body))
                .find(|(k, _)| k == "access_token")
                .map(|(_, v)| v.into_owned());
            json(crate::oslogin::tokeninfo(&state, token.as_deref()))
        }
        (_, p) if p.starts_with("/compute/v1/") || p.starts_with("/oslogin/v1/") || p.starts_with("/oslogin/v1beta/") || p.starts_with("/iap/v1/") || p.starts_with("/crm/v1/") => {
            let bearer = crate::relay::bearer(req.headers());
            let query: Vec<(String, String)> =
                form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            if !bearer.as_deref().is_some_and(|t| state.token_valid(t)) {
                state.event(format!("api 401 {method} {p}"));
                return json((
                    401,
                    serde_json::json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
                        "message": "Request had invalid authentication credentials. Expected OAuth 2 access token."}})
                    .to_string(),
                ));
            }
            if let Some(r) = api_fault(&state, method.as_str(), p) {
                return r;
            }
            if state.config.api_latency_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(state.config.api_latency_ms)).await;
            }
            let r = if let Some(rest) = p.strip_prefix("/compute/v1/") {
                crate::compute::handle(&state, method.as_str(), rest, &query, &body)
            } else if let Some(rest) = p.strip_prefix("/crm/v1/") {
                crate::crm::handle(&state, method.as_str(), rest, &query)
            } else if let Some(rest) = p.strip_prefix("/iap/v1/") {
                let caller = bearer.as_deref().and_then(|t| state.token_account(t)).unwrap_or_default();
                crate::iap::handle(&state, &caller, method.as_str(), rest, &body)
            } else {
                let caller = bearer.as_deref().and_then(|t| state.token_account(t)).unwrap_or_default();
                match p.strip_prefix("/oslogin/v1beta/") {
                    Some(rest) => crate::oslogin_certs::handle(&state, &caller, method.as_str(), rest, &body),
                    None => crate::oslogin::handle(&state, &caller, method.as_str(), &p["/oslogin/v1/".len()..], &query, &body),
                }
            };
            json(r)
        }
        ("POST", p) if p.starts_with("/v1/projects/-/serviceAccounts/") => {
            let bearer = crate::relay::bearer(req.headers());
            let p = p.to_string();
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            if let Some(r) = api_fault(&state, "POST", &p) {
                return r;
            }
            json(crate::iamcredentials::generate_access_token(&state, bearer.as_deref(), &p, &body))
        }
        _ => json((
            404,
            serde_json::json!({"error": {"code": 404, "message": format!("no route for {method} {path}")}})
                .to_string(),
        )),
    }
}

/// Accepts TLS connections forever.
pub async fn serve(state: Arc<State>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        let _ = sock.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(sock).await {
                Ok(t) => t,
                Err(e) => {
                    if state.config.client_certs.is_some() {
                        state.event(format!("tls handshake failed: {e}"));
                    }
                    return;
                }
            };
            let client_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(state, req, client_cert).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades()
                .await;
        });
    }
}
