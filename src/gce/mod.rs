//! Clients for Google's REST APIs: Compute Engine and OS Login (plus
//! OAuth tokeninfo), over [`crate::net::http`] with tokens from [`crate::auth`].
//! One error type, [`ApiError`], turned into a one-line user error with
//! the fix for each status.

pub mod compute;
pub mod crm;
pub mod firewall;
pub mod flags;
pub mod iap;
pub mod lookup;
pub mod oslogin;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::auth::{AccessToken, AuthError, TokenProvider};
use crate::error::{UserError, exit};
use crate::net::endpoints::Endpoints;
use crate::net::http::{HttpClient, HttpError};

/// Retries of an API call answered 429 or 5xx.
pub const API_RETRIES: u32 = 5;

/// Most time spent waiting between the attempts of one API call.
pub const API_RETRY_BUDGET: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{what}: HTTP {status}: {message}")]
    Status {
        what: String,
        status: u16,
        reason: String,
        message: String,
    },
    #[error("{what}: unexpected response: {detail}")]
    Decode { what: String, detail: String },
    #[error("{what}: operation failed: {detail}")]
    Operation { what: String, detail: String },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The one-line error for the user, with `fix_403` as the fix for a
    /// permission error (each call site knows which role is missing).
    pub fn to_user(&self, fix_403: &str) -> UserError {
        match self {
            ApiError::Auth(_) => {
                let ApiError::Auth(a) = self else { unreachable!() };
                UserError::new(exit::NO_CREDENTIALS, crate::net::http::error_chain(a)).with_fix(a.fix())
            }
            ApiError::Http(e) if crate::net::tls::untrusted(&crate::net::http::error_chain(e)) => {
                UserError::new(exit::OTHER, crate::net::http::error_chain(e))
                    .with_fix(crate::net::tls::untrusted_fix())
            }
            ApiError::Http(e) => UserError::new(exit::OTHER, crate::net::http::error_chain(e)).with_fix(
                "check your network connection (IAP_SSH_COMPUTE_URL / IAP_SSH_OSLOGIN_URL if set)",
            ),
            ApiError::Status { status: 401, .. } => UserError::new(exit::NO_CREDENTIALS, self.to_string())
                .with_fix("the credentials were refused: run `gcloud auth application-default login`"),
            ApiError::Status { status: 403, .. } => {
                UserError::new(exit::NOT_AUTHORIZED, self.to_string()).with_fix(fix_403)
            }
            ApiError::Status { status: 404, .. } => UserError::new(exit::NOT_FOUND, self.to_string())
                .with_fix("check the project, zone and instance names (and that the Compute Engine API is enabled)"),
            ApiError::Status { status: 429, .. } => UserError::new(exit::OTHER, self.to_string())
                .with_fix("the API is rate-limiting these requests (a quota): wait a minute and run again; for many VMs, fewer projects per run help, and quotas are raised in the Cloud console (IAM & Admin > Quotas)"),
            _ => UserError::new(exit::OTHER, self.to_string())
                .with_fix("retry; if it persists, run with -v and report the message"),
        }
    }
}

/// Percent-encodes a path segment (keeps `@` and `:`, like gcloud).
pub fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An authenticated REST client.
pub struct Api {
    http: HttpClient,
    tokens: Arc<TokenProvider>,
    pub endpoints: Endpoints,
}

impl Api {
    pub fn new(http: HttpClient, tokens: Arc<TokenProvider>, endpoints: Endpoints) -> Api {
        Api {
            http,
            tokens,
            endpoints,
        }
    }

    /// Sends one request with a bearer token; a 401 is retried once with a
    /// new token, 429 and 5xx up to [`API_RETRIES`] times, after the
    /// server's `Retry-After` or else a growing, jittered pause, for at
    /// most [`API_RETRY_BUDGET`] of waiting in all (a longer `Retry-After`
    /// is reported at once). Returns the decoded JSON body of a 2xx answer.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: http::Method,
        url: &str,
        body: Option<&serde_json::Value>,
        what: &str,
    ) -> Result<T, ApiError> {
        let mut rejected: Option<AccessToken> = None;
        let mut attempt = 0u32;
        let mut waited = Duration::ZERO;
        loop {
            attempt += 1;
            let token = self.tokens.token(rejected.as_ref()).await?;
            let auth = format!("Bearer {}", token.access.secret());
            let payload = body.map(|b| ("application/json", Bytes::from(b.to_string())));
            tracing::debug!("{method} {url}");
            let resp = self
                .http
                .send(method.clone(), url, &[("authorization", &auth)], payload)
                .await?;
            let status = resp.status.as_u16();
            if (200..300).contains(&status) {
                let data: &[u8] = if resp.body.is_empty() {
                    b"null"
                } else {
                    &resp.body
                };
                return serde_json::from_slice(data).map_err(|e| ApiError::Decode {
                    what: what.to_string(),
                    detail: e.to_string(),
                });
            }
            if status == 401 && rejected.is_none() {
                rejected = Some(token.access);
                continue;
            }
            let mut asked = None;
            if matches!(status, 429 | 500 | 502 | 503 | 504) && attempt <= API_RETRIES {
                let pause = match resp.retry_after {
                    Some(ra) => ra,
                    None => {
                        Duration::from_millis(250 << attempt.min(8)) + crate::tunnel::jitter() / 4
                    }
                };
                if waited + pause <= API_RETRY_BUDGET {
                    tracing::info!("{what}: HTTP {status}; retrying in {pause:?}");
                    tokio::time::sleep(pause).await;
                    waited += pause;
                    continue;
                }
                asked = resp.retry_after;
            }
            let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
            let err = &v["error"];
            let message = err["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| {
                    String::from_utf8_lossy(&resp.body)
                        .chars()
                        .take(200)
                        .collect()
                });
            let reason = err["errors"][0]["reason"]
                .as_str()
                .or(err["status"].as_str())
                .unwrap_or("")
                .to_string();
            return Err(ApiError::Status {
                what: what.to_string(),
                status,
                reason,
                message: match asked {
                    Some(ra) => format!(
                        "{message} (the server asks to retry after {} s)",
                        ra.as_secs()
                    ),
                    None => message,
                },
            });
        }
    }

    /// The email of the principal the tokens belong to (OAuth tokeninfo).
    pub async fn token_email(&self) -> Result<Option<String>, ApiError> {
        let token = self.tokens.token(None).await?;
        self.email_of(&token.access).await
    }

    /// Under impersonation, the caller's own email (tokeninfo of the
    /// caller's token); otherwise the same as [`Api::token_email`].
    pub async fn caller_email(&self) -> Result<Option<String>, ApiError> {
        let token = self.tokens.source_token(None).await?;
        self.email_of(&token.access).await
    }

    async fn email_of(&self, token: &crate::auth::AccessToken) -> Result<Option<String>, ApiError> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("access_token", token.secret())
            .finish();
        // POST keeps the token out of URLs and logs. Google documents
        // `GET ?access_token=`; whether every deployment takes the POST
        // form is UNCONFIRMED, so a 404/405 (method or route refused)
        // falls back to the documented GET over the same TLS connection.
        let mut resp = self
            .http
            .send(
                http::Method::POST,
                &self.endpoints.tokeninfo,
                &[],
                Some((
                    "application/x-www-form-urlencoded",
                    Bytes::from(form.clone()),
                )),
            )
            .await?;
        if matches!(resp.status.as_u16(), 404 | 405) {
            let sep = if self.endpoints.tokeninfo.contains('?') {
                '&'
            } else {
                '?'
            };
            let url = format!("{}{sep}{form}", self.endpoints.tokeninfo);
            resp = self.http.send(http::Method::GET, &url, &[], None).await?;
        }
        if !resp.status.is_success() {
            return Ok(None);
        }
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
        Ok(v["email"].as_str().map(str::to_string))
    }

    /// From the environment: endpoints, TLS trust, credentials (no
    /// network access yet).
    pub fn from_env() -> Result<Api, UserError> {
        Api::from_env_for(false)
    }

    /// Like [`Api::from_env`]; a dry run reads the token cache but never
    /// writes it.
    pub fn from_env_for(dry_run: bool) -> Result<Api, UserError> {
        let endpoints = Endpoints::from_env()?;
        let base = crate::net::tls::from_env()?;
        let tls = crate::net::mtls::with_client_cert(&base, false)?;
        let mut tokens = TokenProvider::from_env(&endpoints, tls.clone())?;
        if dry_run {
            tokens = tokens.read_only_cache();
        }
        Ok(Api::new(HttpClient::new(tls), Arc::new(tokens), endpoints))
    }

    pub fn tokens(&self) -> &TokenProvider {
        &self.tokens
    }
}
