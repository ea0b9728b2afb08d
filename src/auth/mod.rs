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
mod exchange;
pub mod impersonate;
mod jwt;
mod sources;

pub(crate) use exchange::parse_token_response;
pub(crate) use sources::parse_source;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub use impersonate::Chain;
pub use sources::{AuthorizedUser, Credentials, ServiceAccountKey, Source, discover};

use crate::net::endpoints::Endpoints;
pub use crate::net::http::AccessToken;
use crate::net::http::{HttpClient, HttpError};

/// Scope that covers the relay, Compute and OS Login.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A cached token is used only while it has at least this long to live
/// (gcloud's `_CREDENTIALS_EXPIRY_WINDOW`).
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

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
    #[error("{what}: {why}")]
    Setting { what: String, why: String },
    #[error("{}", impersonation_cause(*.status, target, chain, message))]
    Impersonation {
        chain: String,
        target: String,
        status: u16,
        message: String,
        /// The account the caller must be able to impersonate: the first
        /// delegate, else the target.
        first_hop: String,
        /// The chain has delegates (each hop needs the role on the next).
        delegated: bool,
        /// The caller's IAM member, when known (see [`Source::member`]).
        caller: Option<String>,
    },
}

fn impersonation_cause(status: u16, target: &str, chain: &str, message: &str) -> String {
    let m = crate::error::printable(message);
    match status {
        403 => format!(
            "cannot impersonate {target}: you lack roles/iam.serviceAccountTokenCreator on {target} (IAM Credentials: HTTP 403 {m})"
        ),
        404 => format!(
            "cannot impersonate {target}: no such service account (IAM Credentials: HTTP 404 {m})"
        ),
        401 => format!(
            "cannot impersonate {target}: IAM Credentials refused your own credentials (HTTP 401 {m})"
        ),
        s => format!("cannot impersonate {chain}: IAM Credentials answered HTTP {s} {m}"),
    }
}

impl AuthError {
    /// The one-line fix for the user.
    pub fn fix(&self) -> String {
        match self {
            AuthError::Setting { .. } => {
                "give one service account email, or several separated by commas (the last is the one acted as)".into()
            }
            AuthError::Impersonation {
                first_hop,
                status: 403,
                delegated,
                caller,
                ..
            } => {
                let member = caller.as_deref().unwrap_or("user:YOU");
                let mut f = format!(
                    "ask an admin to run `gcloud iam service-accounts add-iam-policy-binding {first_hop} --member={member} --role=roles/iam.serviceAccountTokenCreator`"
                );
                if *delegated {
                    f.push_str(" (with delegates, each account in the chain needs that role on the next one: --member=serviceAccount:PREVIOUS on each next account)");
                }
                f
            }
            AuthError::Impersonation { status: 404, .. } => {
                "check the service account email in --impersonate-service-account / auth/impersonate_service_account".into()
            }
            AuthError::Impersonation { status: 401, .. } => {
                "run `gcloud auth application-default login` (the caller's credentials are expired or revoked)".into()
            }
            AuthError::Impersonation { .. } => {
                "retry; check IAP_SSH_IAMCREDENTIALS_URL if set".into()
            }
            // gcloud's IsContextAwareAccessDeniedError: both strings.
            AuthError::Refused { detail, .. }
                if detail.contains("access_denied") && detail.contains("Account restricted") =>
            {
                "access was blocked by Context Aware Access: this device must present a device certificate (turn on `gcloud config set context_aware/use_client_certificate true` with Endpoint Verification installed), or ask your admin about the access policy".into()
            }
            AuthError::Http { err, .. } if crate::net::tls::untrusted(&crate::net::http::error_chain(err)) => {
                crate::net::tls::untrusted_fix()
            }
            AuthError::BadResponse { detail, .. }
                if detail.starts_with("HTTP 5") || detail.starts_with("HTTP 429") =>
            {
                "the token service is failing or rate-limiting (iap-ssh already asked again): retry in a moment".into()
            }
            _ => self.static_fix().into(),
        }
    }

    fn static_fix(&self) -> &'static str {
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
            AuthError::Setting { .. } | AuthError::Impersonation { .. } => "",
        }
    }
}

/// Hands out access tokens from one [`Source`] (exchanged for a service
/// account's through IAM Credentials when a [`Chain`] is set), with the
/// disk cache.
pub struct TokenProvider {
    source: Source,
    chain: Option<Chain>,
    endpoints: Endpoints,
    http: tokio::sync::OnceCell<HttpClient>,
    /// For the metadata server, which is never reached through a proxy.
    direct: tokio::sync::OnceCell<HttpClient>,
    tls: std::sync::Arc<rustls::ClientConfig>,
    cache_dir: Option<PathBuf>,
    /// Store fetched tokens in the cache (off for dry runs).
    cache_write: bool,
    /// The last token; the lock also makes concurrent callers (many
    /// forwarded connections) share one fetch.
    memo: tokio::sync::Mutex<Option<Token>>,
    /// The caller's own last token, under impersonation.
    source_memo: tokio::sync::Mutex<Option<Token>>,
}

impl TokenProvider {
    pub fn new(
        creds: Credentials,
        endpoints: Endpoints,
        tls: std::sync::Arc<rustls::ClientConfig>,
        cache_dir: Option<PathBuf>,
    ) -> Self {
        TokenProvider {
            source: creds.source,
            chain: creds.chain,
            source_memo: tokio::sync::Mutex::new(None),
            endpoints,
            http: tokio::sync::OnceCell::new(),
            direct: tokio::sync::OnceCell::new(),
            tls,
            cache_dir,
            cache_write: true,
            memo: tokio::sync::Mutex::new(None),
        }
    }

    /// From the process environment: the credential found by [`discover`]
    /// (with gcloud's impersonation setting) and the default cache.
    pub fn from_env(
        endpoints: &Endpoints,
        tls: std::sync::Arc<rustls::ClientConfig>,
    ) -> Result<Self, AuthError> {
        let creds = discover(
            &|k| std::env::var(k).ok(),
            endpoints,
            crate::gcloud::GcloudConfig::process()
                .impersonate
                .as_deref(),
        )?;
        let p = TokenProvider::new(creds, endpoints.clone(), tls, Self::default_cache_dir());
        tracing::info!("credentials: {}", p.describe());
        Ok(p)
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

    /// The service accounts acted as, if any.
    pub fn chain(&self) -> Option<&Chain> {
        self.chain.as_ref()
    }

    /// Who the tokens are for, safe to print: the source, or
    /// "impersonating SA (as SOURCE)".
    pub fn describe(&self) -> String {
        self.describe_as(&self.source.describe())
    }

    /// [`TokenProvider::describe`] with `caller` (e.g. the caller's email)
    /// in place of the source's description under impersonation.
    pub fn describe_as(&self, caller: &str) -> String {
        match &self.chain {
            None => self.source.describe(),
            Some(c) if c.delegates.is_empty() => {
                format!("impersonating {} (as {caller})", c.target)
            }
            Some(c) => format!(
                "impersonating {} through {} (as {caller})",
                c.target,
                c.delegates.join(", ")
            ),
        }
    }

    /// A static token: asking again gives the same one.
    pub fn is_static(&self) -> bool {
        self.chain.is_none() && matches!(self.source, Source::Static { .. })
    }

    async fn http(&self) -> &HttpClient {
        self.http
            .get_or_init(|| async { HttpClient::new(self.tls.clone()) })
            .await
    }

    /// The client for the source's token call: the metadata server is
    /// link-local, never reached through a proxy.
    async fn source_http(&self) -> &HttpClient {
        match self.source {
            Source::Metadata => {
                self.direct
                    .get_or_init(|| async { HttpClient::direct(self.tls.clone()) })
                    .await
            }
            _ => self.http().await,
        }
    }

    /// A token valid for at least [`EXPIRY_MARGIN`]. `rejected` is a token
    /// the relay refused (close 4004, HTTP 401/403): it is never handed out
    /// again, so a new one is fetched unless another caller already did
    /// (many connections told to re-authenticate at once share one fetch).
    /// Under impersonation this is the service account's token.
    pub async fn token(&self, rejected: Option<&AccessToken>) -> Result<Token, AuthError> {
        let Some(chain) = &self.chain else {
            return self.source_token(rejected).await;
        };
        // Keyed by the chain and by the caller's credential, so another
        // caller or chain never gets this token.
        let key = format!(
            "{}\0{}",
            chain.cache_key(&self.endpoints.iamcredentials),
            match &self.source {
                Source::Static { token, .. } => format!(
                    "static\0{:?}",
                    ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref()
                ),
                s => s.cache_key(&self.endpoints),
            }
        );
        let what = || chain.target.clone();
        self.memoized(&self.memo, &key, rejected, &what, || {
            self.impersonate(chain)
        })
        .await
    }

    /// The memoised token if still usable (fresh enough, not `rejected`),
    /// else the one cached on disk under `key`, else `fetch`'s, which is
    /// cached. The lock on `memo` makes concurrent callers share one fetch.
    async fn memoized<F, Fut>(
        &self,
        memo: &tokio::sync::Mutex<Option<Token>>,
        key: &str,
        rejected: Option<&AccessToken>,
        what: &(dyn Fn() -> String + Sync),
        fetch: F,
    ) -> Result<Token, AuthError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Token, AuthError>>,
    {
        let now = SystemTime::now();
        let mut memo = memo.lock().await;
        let usable = |t: &Token| t.fresh_enough(now) && Some(&t.access) != rejected;
        if let Some(t) = memo.as_ref().filter(|t| usable(t)) {
            return Ok(t.clone());
        }
        if let Some(t) = self.cached(key).filter(|t| usable(t)) {
            tracing::debug!("using cached access token for {}", what());
            *memo = Some(t.clone());
            return Ok(t);
        }
        let t = fetch().await?;
        self.store(key, &t);
        *memo = Some(t.clone());
        Ok(t)
    }

    /// IAM Credentials `generateAccessToken` for `chain` with the caller's
    /// token (a fresh caller token once if that one is refused).
    async fn impersonate(&self, chain: &Chain) -> Result<Token, AuthError> {
        let mut caller = self.source_token(None).await?;
        let url = chain.url(&self.endpoints.iamcredentials);
        let body = bytes::Bytes::from(chain.body().to_string());
        let mut refreshed = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            tracing::debug!("impersonating {} (IAM Credentials)", chain.joined());
            let bearer = format!("Bearer {}", caller.access.secret());
            let resp = self
                .http()
                .await
                .send(
                    http::Method::POST,
                    &url,
                    &[("authorization", bearer.as_str())],
                    Some(("application/json", body.clone())),
                )
                .await
                .map_err(|err| AuthError::Http {
                    source_desc: format!("impersonating {}", chain.target),
                    err,
                })?;
            // A cached caller token that was revoked: one fresh one.
            if resp.status == http::StatusCode::UNAUTHORIZED
                && !refreshed
                && !self.source_is_static()
            {
                refreshed = true;
                caller = self.source_token(Some(&caller.access)).await?;
                continue;
            }
            // Rate-limited or failing: asked again a few times, like a
            // token endpoint.
            if let Some(pause) = exchange::retry_pause(&resp, attempt) {
                tracing::info!(
                    "IAM Credentials: HTTP {}; retrying in {pause:?}",
                    resp.status
                );
                tokio::time::sleep(pause).await;
                continue;
            }
            return impersonate::parse_response(chain, resp.status, &resp.body).map_err(|mut e| {
                if let AuthError::Impersonation { caller, .. } = &mut e {
                    *caller = self.source.member();
                }
                e
            });
        }
    }

    fn source_is_static(&self) -> bool {
        matches!(self.source, Source::Static { .. })
    }

    fn cached(&self, key: &str) -> Option<Token> {
        self.cache_dir.as_deref().and_then(|d| cache::load(d, key))
    }

    fn store(&self, key: &str, t: &Token) {
        if let Some(dir) = &self.cache_dir
            && self.cache_write
            && let Err(e) = cache::store(dir, key, t)
        {
            tracing::debug!("token cache not written: {e}");
        }
    }

    /// The caller's own token (the only one without impersonation).
    pub async fn source_token(&self, rejected: Option<&AccessToken>) -> Result<Token, AuthError> {
        if let Source::Static { token, .. } = &self.source {
            return Ok(Token {
                access: AccessToken::new(token.clone()),
                expires_at: None,
            });
        }
        let memo = if self.chain.is_some() {
            &self.source_memo
        } else {
            &self.memo
        };
        let key = self.source.cache_key(&self.endpoints);
        let what = || self.source.describe();
        self.memoized(memo, &key, rejected, &what, || async {
            let http = self.source_http().await;
            tracing::debug!("requesting an access token for {}", what());
            exchange::fetch(&self.source, &self.endpoints, http).await
        })
        .await
    }
}

impl From<AuthError> for crate::error::UserError {
    fn from(e: AuthError) -> Self {
        use AuthError as A;
        let code = match e {
            A::NoCredentials | A::BadFile { .. } | A::Refused { .. } => {
                crate::error::exit::NO_CREDENTIALS
            }
            A::Http { .. } | A::BadResponse { .. } => crate::error::exit::OTHER,
            A::Setting { .. } => crate::error::exit::USAGE,
            A::Impersonation { status: 401, .. } => crate::error::exit::NO_CREDENTIALS,
            A::Impersonation { status: 403, .. } => crate::error::exit::NOT_AUTHORIZED,
            A::Impersonation { .. } => crate::error::exit::OTHER,
        };
        let cause = crate::net::http::error_chain(&e);
        crate::error::UserError::new(code, cause).with_fix(e.fix())
    }
}

/// The tunnel asks for tokens through this; a failure becomes the user's
/// one line (cause and fix).
impl crate::tunnel::Tokens for TokenProvider {
    fn token<'a>(
        &'a self,
        rejected: Option<&'a AccessToken>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<AccessToken, crate::error::UserError>>
                + Send
                + 'a,
        >,
    > {
        Box::pin(async move {
            TokenProvider::token(self, rejected)
                .await
                .map(|t| t.access)
                .map_err(crate::error::UserError::from)
        })
    }

    fn is_static(&self) -> bool {
        TokenProvider::is_static(self)
    }
}
