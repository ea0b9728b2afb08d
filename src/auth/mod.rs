//! OAuth 2.0 access tokens for the relay and the REST APIs.
//!
//! Lookup order (first match wins):
//! 1. a static token in `IAP_SSH_ACCESS_TOKEN` or gcloud's `CLOUDSDK_AUTH_ACCESS_TOKEN`;
//! 2. the key file named by `GOOGLE_APPLICATION_CREDENTIALS` (service account or authorized user);
//! 3. gcloud's application-default credentials file;
//! 4. the GCE metadata server (when on GCE, or when `IAP_SSH_METADATA_URL` is set).
//!
//! Refreshed tokens are cached on disk (0600) so a ProxyCommand start does
//! not hit the token endpoint each time. Tokens never reach logs or output:
//! [`AccessToken`]'s `Debug` and `Display` are redacted.

mod cache;
mod jwt;
mod sources;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use sources::{AuthorizedUser, ServiceAccountKey, Source, discover};

use crate::endpoints::Endpoints;
use crate::http::{HttpClient, HttpError};

/// Scope that covers the relay, Compute and OS Login.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A cached token is used only while it has at least this long to live
/// (gcloud's `_CREDENTIALS_EXPIRY_WINDOW`).
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// An OAuth access token. Never printed.
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

/// A token with its expiry (None: static token, never refreshed).
#[derive(Debug, Clone)]
pub struct Token {
    pub access: AccessToken,
    pub expires_at: Option<SystemTime>,
}

impl Token {
    fn fresh_enough(&self, now: SystemTime) -> bool {
        match self.expires_at {
            None => true,
            Some(t) => t > now + EXPIRY_MARGIN,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no Google credentials found")]
    NoCredentials,
    #[error("credential file {path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("{source_desc}: token endpoint refused the credentials: {detail}")]
    Refused { source_desc: String, detail: String },
    #[error("{source_desc}: cannot get a token: {err}")]
    Http {
        source_desc: String,
        #[source]
        err: HttpError,
    },
    #[error("{source_desc}: unexpected token response: {detail}")]
    BadResponse { source_desc: String, detail: String },
}

impl AuthError {
    /// The one-line fix for the user.
    pub fn fix(&self) -> &'static str {
        match self {
            AuthError::NoCredentials => {
                "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a key file"
            }
            AuthError::BadFile { .. } => {
                "fix or replace the file, e.g. re-run `gcloud auth application-default login`"
            }
            AuthError::Refused { .. } => {
                "the credentials are expired or revoked: run `gcloud auth application-default login` (or use a valid key file)"
            }
            AuthError::Http { .. } | AuthError::BadResponse { .. } => {
                "check your network connection and proxy settings (IAP_SSH_TOKEN_URL / IAP_SSH_METADATA_URL if set)"
            }
        }
    }
}

/// Hands out access tokens from one [`Source`], with the disk cache.
pub struct TokenProvider {
    source: Source,
    endpoints: Endpoints,
    http: tokio::sync::OnceCell<HttpClient>,
    tls: std::sync::Arc<rustls::ClientConfig>,
    cache_dir: Option<PathBuf>,
    /// Store fetched tokens in the cache (off for dry runs).
    cache_write: bool,
    /// The last token; the lock also makes concurrent callers (many
    /// forwarded connections) share one fetch.
    memo: tokio::sync::Mutex<Option<Token>>,
}

impl TokenProvider {
    pub fn new(
        source: Source,
        endpoints: Endpoints,
        tls: std::sync::Arc<rustls::ClientConfig>,
        cache_dir: Option<PathBuf>,
    ) -> Self {
        TokenProvider {
            source,
            endpoints,
            http: tokio::sync::OnceCell::new(),
            tls,
            cache_dir,
            cache_write: true,
            memo: tokio::sync::Mutex::new(None),
        }
    }

    /// Reads the disk cache but never writes it (for `--dry-run`).
    pub fn read_only_cache(mut self) -> Self {
        self.cache_write = false;
        self
    }

    /// The default cache directory: `<user cache dir>/iap-ssh/tokens`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("iap-ssh").join("tokens"))
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// A static token: asking again gives the same one.
    pub fn is_static(&self) -> bool {
        matches!(self.source, Source::Static { .. })
    }

    /// A token valid for at least [`EXPIRY_MARGIN`]. `rejected` is a token
    /// the relay refused (close 4004, HTTP 401/403): it is never handed out
    /// again, so a new one is fetched unless another caller already did
    /// (many connections told to re-authenticate at once share one fetch).
    pub async fn token(&self, rejected: Option<&AccessToken>) -> Result<Token, AuthError> {
        let now = SystemTime::now();
        if let Source::Static { token, .. } = &self.source {
            return Ok(Token {
                access: AccessToken::new(token.clone()),
                expires_at: None,
            });
        }
        let mut memo = self.memo.lock().await;
        let usable = |t: &Token| t.fresh_enough(now) && Some(&t.access) != rejected;
        if let Some(t) = memo.as_ref().filter(|t| usable(t)) {
            return Ok(t.clone());
        }
        let key = self.source.cache_key(&self.endpoints);
        if let Some(dir) = &self.cache_dir
            && let Some(t) = cache::load(dir, &key)
            && usable(&t)
        {
            tracing::debug!("using cached access token for {}", self.source.describe());
            *memo = Some(t.clone());
            return Ok(t);
        }
        let http = self
            .http
            .get_or_init(|| async {
                // The metadata server is link-local: never through a proxy.
                match self.source {
                    sources::Source::Metadata => HttpClient::direct(self.tls.clone()),
                    _ => HttpClient::new(self.tls.clone()),
                }
            })
            .await;
        tracing::debug!("requesting an access token for {}", self.source.describe());
        let t = sources::fetch(&self.source, &self.endpoints, http).await?;
        if let Some(dir) = &self.cache_dir
            && self.cache_write
            && let Err(e) = cache::store(dir, &key, &t)
        {
            tracing::debug!("token cache not written: {e}");
        }
        *memo = Some(t.clone());
        Ok(t)
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
