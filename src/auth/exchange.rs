//! Turning a credential into an access token: the refresh-token grant,
//! the JWT-bearer grant, the metadata server; what a token endpoint's
//! answer means (refused credentials, or a failing service asked again).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Deserialize;

use super::sources::{Source, sa_token_url, user_token_url};
use super::{AccessToken, AuthError, SCOPE, Token, jwt};
use crate::net::endpoints::Endpoints;
use crate::net::http::HttpClient;
use crate::timefmt::unix_now;

/// Longest lifetime believed from a token endpoint: Google's access tokens
/// live an hour; anything claiming more than a day is refreshed after one.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);

/// When a token with `expires_in` (default one hour) expires; never
/// overflows, whatever the endpoint says.
fn expiry(now: SystemTime, expires_in: Option<u64>) -> SystemTime {
    let life = Duration::from_secs(expires_in.unwrap_or(3600)).min(MAX_TOKEN_LIFETIME);
    now.checked_add(life).unwrap_or(now)
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

pub(crate) fn parse_token_response(
    desc: &str,
    status: http::StatusCode,
    body: &[u8],
) -> Result<Token, AuthError> {
    let parsed: Result<TokenResponse, _> = serde_json::from_slice(body);
    match parsed {
        Ok(TokenResponse {
            access_token: Some(t),
            expires_in,
            ..
        }) if status.is_success() && !t.is_empty() => Ok(Token {
            access: AccessToken::new(t),
            expires_at: Some(expiry(SystemTime::now(), expires_in)),
        }),
        Ok(TokenResponse {
            error: Some(e),
            error_description,
            ..
        }) if status != http::StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() => {
            // The endpoint's words, made printable: they end up in the
            // one line the user sees (a newline in error_description was
            // a fuzzing find).
            Err(AuthError::Refused {
                source_desc: desc.to_string(),
                detail: crate::error::printable(&match error_description {
                    Some(d) => format!("{e} ({d})"),
                    None => e,
                }),
            })
        }
        // A rate limit is not a refusal of the credentials.
        _ if status.is_client_error() && status != http::StatusCode::TOO_MANY_REQUESTS => {
            Err(AuthError::Refused {
                source_desc: desc.to_string(),
                detail: format!("HTTP {status}"),
            })
        }
        _ => Err(AuthError::BadResponse {
            source_desc: desc.to_string(),
            detail: format!("HTTP {status}"),
        }),
    }
}

fn form(pairs: &[(&str, &str)]) -> Bytes {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    Bytes::from(s.finish())
}

/// Exchanges the source's credential for a fresh access token.
pub async fn fetch(source: &Source, ep: &Endpoints, http: &HttpClient) -> Result<Token, AuthError> {
    let desc = source.describe();
    const FORM: &str = "application/x-www-form-urlencoded";
    // (method, URL, headers, form body) of the one request this takes.
    let (method, url, headers, body): (_, String, &[(&str, &str)], _) = match source {
        Source::Static { token, .. } => {
            return Ok(Token {
                access: AccessToken::new(token.clone()),
                expires_at: None,
            });
        }
        Source::AuthorizedUser { creds, .. } => {
            let body = form(&[
                ("grant_type", "refresh_token"),
                ("client_id", &creds.client_id),
                ("client_secret", &creds.client_secret),
                ("refresh_token", &creds.refresh_token),
            ]);
            (
                http::Method::POST,
                user_token_url(ep),
                &[],
                Some((FORM, body)),
            )
        }
        Source::ServiceAccount { path, key } => {
            let url = sa_token_url(key, ep);
            let a = jwt::assertion(
                &key.private_key,
                key.private_key_id.as_deref(),
                &key.client_email,
                &url,
                SCOPE,
                unix_now(),
            )
            .map_err(|reason| AuthError::BadFile {
                path: path.clone(),
                reason,
            })?;
            let body = form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &a),
            ]);
            (http::Method::POST, url, &[], Some((FORM, body)))
        }
        Source::Metadata => {
            let url = format!(
                "{}instance/service-accounts/default/token?scopes={}",
                ep.metadata,
                form_urlencoded::byte_serialize(SCOPE.as_bytes()).collect::<String>()
            );
            (
                http::Method::GET,
                url,
                &[("metadata-flavor", "Google")],
                None,
            )
        }
    };
    // A token endpoint answering 429 or 5xx is asked again, a few times
    // (after its Retry-After if that is short); the answer is read as it
    // is then. An unreachable endpoint is not retried: it fails fast.
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let resp = http
            .send(method.clone(), &url, headers, body.clone())
            .await
            .map_err(|err| AuthError::Http {
                source_desc: desc.clone(),
                err,
            })?;
        if let Some(pause) = retry_pause(&resp, attempt) {
            tracing::info!("{desc}: HTTP {}; retrying in {pause:?}", resp.status);
            tokio::time::sleep(pause).await;
            continue;
        }
        return parse_token_response(&desc, resp.status, &resp.body);
    }
}

/// Retries of a token request (OAuth, IAM Credentials) answered 429 or
/// 5xx (0.5, 1, 2 s apart).
const TOKEN_RETRIES: u32 = 3;

/// The longest `Retry-After` a token request waits for.
const MAX_TOKEN_RETRY_PAUSE: Duration = Duration::from_secs(10);

/// How long to wait before asking a token service (OAuth, IAM
/// Credentials) again after `resp` to attempt `attempt` (1-based): for a
/// 429 or 5xx, its short `Retry-After` or our own pause, [`TOKEN_RETRIES`]
/// times; None: take the answer as it is.
pub(super) fn retry_pause(resp: &crate::net::http::Response, attempt: u32) -> Option<Duration> {
    let transient =
        resp.status == http::StatusCode::TOO_MANY_REQUESTS || resp.status.is_server_error();
    if !transient || attempt > TOKEN_RETRIES {
        return None;
    }
    let pause = resp
        .retry_after
        .unwrap_or(Duration::from_millis(500 << (attempt - 1)));
    (pause <= MAX_TOKEN_RETRY_PAUSE).then_some(pause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_responses() {
        let ok = parse_token_response(
            "x",
            http::StatusCode::OK,
            br#"{"access_token":"t","expires_in":3599,"token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(ok.access.secret(), "t");
        let e = parse_token_response(
            "x",
            http::StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant","error_description":"Bad Request"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("invalid_grant (Bad Request)"), "{e}");
        let e = parse_token_response("x", http::StatusCode::BAD_GATEWAY, b"<html>").unwrap_err();
        assert!(matches!(e, AuthError::BadResponse { .. }));
        // A rate limit or a failing server is not a refusal of the
        // credentials (that would say they are revoked, exit 3).
        for (status, body) in [
            (http::StatusCode::TOO_MANY_REQUESTS, &b"{}"[..]),
            (
                http::StatusCode::TOO_MANY_REQUESTS,
                br#"{"error":"rate_limit_exceeded"}"#,
            ),
            (
                http::StatusCode::SERVICE_UNAVAILABLE,
                br#"{"error":"backend_error"}"#,
            ),
        ] {
            let e = parse_token_response("x", status, body).unwrap_err();
            assert!(matches!(e, AuthError::BadResponse { .. }), "{status}: {e}");
            assert!(e.fix().contains("retry in a moment"), "{}", e.fix());
        }
        // An absurd lifetime neither panics nor is believed.
        let huge = format!(r#"{{"access_token":"t","expires_in":{}}}"#, u64::MAX);
        let t = parse_token_response("x", http::StatusCode::OK, huge.as_bytes()).unwrap();
        let left = t
            .expires_at
            .unwrap()
            .duration_since(SystemTime::now())
            .unwrap();
        assert!(left <= MAX_TOKEN_LIFETIME, "{left:?}");
    }
}
