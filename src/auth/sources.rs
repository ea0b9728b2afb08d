//! Where credentials come from (discovery) and how each kind is turned into
//! an access token (refresh-token grant, JWT-bearer grant, metadata server).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Deserialize;

use super::{AccessToken, AuthError, SCOPE, Token, jwt, unix_now};
use crate::endpoints::Endpoints;
use crate::http::HttpClient;

/// The `authorized_user` credential written by `gcloud auth application-default login`.
#[derive(Clone, Deserialize)]
pub struct AuthorizedUser {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// The account's email, when the file names it (often empty).
    #[serde(default)]
    pub account: Option<String>,
}

/// A service-account JSON key.
#[derive(Clone, Deserialize)]
pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    #[serde(default)]
    pub token_uri: Option<String>,
}

/// What [`discover`] found: the caller's credential, and the service
/// accounts to impersonate with it, if any.
#[derive(Clone)]
pub struct Credentials {
    pub source: Source,
    pub chain: Option<super::Chain>,
}

impl From<Source> for Credentials {
    fn from(source: Source) -> Self {
        Credentials {
            source,
            chain: None,
        }
    }
}

/// A credential source, found by [`discover`].
#[derive(Clone)]
pub enum Source {
    Static {
        token: String,
        var: &'static str,
    },
    ServiceAccount {
        path: PathBuf,
        key: ServiceAccountKey,
    },
    AuthorizedUser {
        path: PathBuf,
        creds: AuthorizedUser,
    },
    Metadata,
}

impl Source {
    /// The credential's IAM member (`user:…`, `serviceAccount:…`), when
    /// it is known without a call; for the fixes we print.
    pub fn member(&self) -> Option<String> {
        let valid = |e: &str| crate::auth::impersonate::valid_account(e) && e.contains('@');
        match self {
            Source::ServiceAccount { key, .. } if valid(&key.client_email) => {
                Some(format!("serviceAccount:{}", key.client_email))
            }
            Source::AuthorizedUser { creds, .. } => creds
                .account
                .as_deref()
                .filter(|a| valid(a))
                .map(|a| format!("user:{a}")),
            _ => None,
        }
    }

    /// A description safe to print (no secrets).
    pub fn describe(&self) -> String {
        match self {
            Source::Static { var, .. } => format!("static token from {var}"),
            Source::ServiceAccount { path, key } => {
                format!("service account {} ({})", key.client_email, path.display())
            }
            Source::AuthorizedUser { path, .. } => {
                format!("authorized user credentials ({})", path.display())
            }
            Source::Metadata => "GCE metadata server".to_string(),
        }
    }

    /// Identity of the credential for the token cache (never stored).
    pub(super) fn cache_key(&self, ep: &Endpoints) -> String {
        match self {
            Source::Static { .. } => String::new(),
            Source::ServiceAccount { key, .. } => format!(
                "sa\0{}\0{}\0{}",
                key.client_email,
                key.private_key_id.as_deref().unwrap_or(""),
                sa_token_url(key, ep)
            ),
            Source::AuthorizedUser { creds, .. } => {
                let rt =
                    ring::digest::digest(&ring::digest::SHA256, creds.refresh_token.as_bytes());
                format!(
                    "user\0{}\0{:?}\0{}",
                    creds.client_id,
                    rt.as_ref(),
                    user_token_url(ep)
                )
            }
            Source::Metadata => format!("metadata\0{}", ep.metadata),
        }
    }
}

fn sa_token_url(key: &ServiceAccountKey, ep: &Endpoints) -> String {
    ep.token_override
        .clone()
        .or_else(|| key.token_uri.clone())
        .unwrap_or_else(|| ep.token_default.clone())
}

fn user_token_url(ep: &Endpoints) -> String {
    ep.token_override
        .clone()
        .unwrap_or_else(|| ep.token_default.clone())
}

/// The fields of an `impersonated_service_account` file that we read.
#[derive(Deserialize)]
struct ImpersonatedFile {
    service_account_impersonation_url: String,
    #[serde(default)]
    delegates: Option<Vec<String>>,
    source_credentials: serde_json::Value,
}

/// Reads a credential file (parsed once) and dispatches on its `type`; an
/// `impersonated_service_account` file gives its source credential and
/// its chain.
pub fn read_credential_file(path: &Path) -> Result<Credentials, AuthError> {
    let bad = |reason: String| AuthError::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    let data = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&data).map_err(|e| bad(format!("not JSON: {e}")))?;
    if v["type"] == "impersonated_service_account" {
        let f: ImpersonatedFile = serde_json::from_value(v)
            .map_err(|e| bad(format!("bad impersonated_service_account file: {e}")))?;
        let chain = super::impersonate::from_adc(
            path,
            &f.service_account_impersonation_url,
            f.delegates.as_deref().unwrap_or_default(),
        )
        .map_err(bad)?;
        let source = parse_source(path, f.source_credentials, "source_credentials: ")?;
        return Ok(Credentials {
            source,
            chain: Some(chain),
        });
    }
    parse_source(path, v, "").map(Credentials::from)
}

/// A service-account key or authorized-user credential (`v` is the JSON
/// object; `ctx` prefixes error reasons).
fn parse_source(path: &Path, v: serde_json::Value, ctx: &str) -> Result<Source, AuthError> {
    let bad = |reason: String| AuthError::BadFile {
        path: path.to_path_buf(),
        reason: format!("{ctx}{reason}"),
    };
    match v.get("type").and_then(|t| t.as_str()) {
        Some("service_account") => {
            let key: ServiceAccountKey = serde_json::from_value(v)
                .map_err(|e| bad(format!("bad service account key: {e}")))?;
            if let Some(u) = &key.token_uri {
                crate::endpoints::check_url("token_uri", u, "https", "http")
                    .map_err(|e| bad(e.to_string()))?;
            }
            Ok(Source::ServiceAccount {
                path: path.to_path_buf(),
                key,
            })
        }
        Some("authorized_user") => {
            let creds: AuthorizedUser = serde_json::from_value(v)
                .map_err(|e| bad(format!("bad authorized_user credentials: {e}")))?;
            Ok(Source::AuthorizedUser {
                path: path.to_path_buf(),
                creds,
            })
        }
        Some(other) => Err(bad(format!(
            "credential type `{other}` is not supported (use a service_account key or authorized_user credentials)"
        ))),
        None => Err(bad("no `type` field".into())),
    }
}

/// gcloud's application-default credentials files, most specific first.
fn adc_paths(get: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(c) = get("CLOUDSDK_CONFIG").filter(|s| !s.is_empty()) {
        v.push(PathBuf::from(c).join("application_default_credentials.json"));
    }
    if let Some(c) = dirs::config_dir() {
        v.push(
            c.join("gcloud")
                .join("application_default_credentials.json"),
        );
    }
    if let Some(h) = dirs::home_dir() {
        v.push(
            h.join(".config")
                .join("gcloud")
                .join("application_default_credentials.json"),
        );
    }
    v.dedup();
    v
}

/// Are we on a Compute Engine VM? Checked from DMI data, without network.
fn on_gce() -> bool {
    [
        "/sys/class/dmi/id/product_name",
        "/sys/class/dmi/id/bios_vendor",
    ]
    .iter()
    .any(|p| {
        std::fs::read_to_string(p)
            .map(|s| s.contains("Google"))
            .unwrap_or(false)
    })
}

/// Finds the credential source, in the documented order, and the chain
/// to impersonate: the `--impersonate-service-account` flag, then
/// `CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT`, then gcloud's
/// `auth/impersonate_service_account` (`property`), then the chain of an
/// `impersonated_service_account` credential file (whose source
/// credential is used either way).
pub fn discover(
    get: &dyn Fn(&str) -> Option<String>,
    ep: &Endpoints,
    property: Option<&str>,
) -> Result<Credentials, AuthError> {
    let setting = super::impersonate::from_settings(get, property)?;
    let mut found = discover_source(get, ep)?;
    if setting.is_some() {
        found.chain = setting;
    }
    Ok(found)
}

fn discover_source(
    get: &dyn Fn(&str) -> Option<String>,
    ep: &Endpoints,
) -> Result<Credentials, AuthError> {
    for var in ["IAP_SSH_ACCESS_TOKEN", "CLOUDSDK_AUTH_ACCESS_TOKEN"] {
        if let Some(t) = get(var)
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
        {
            return Ok(Source::Static { token: t, var }.into());
        }
    }
    if let Some(p) = get("GOOGLE_APPLICATION_CREDENTIALS").filter(|s| !s.is_empty()) {
        return read_credential_file(Path::new(&p));
    }
    for p in adc_paths(get) {
        if p.is_file() {
            return read_credential_file(&p);
        }
    }
    if ep.metadata_explicit || on_gce() {
        return Ok(Source::Metadata.into());
    }
    Err(AuthError::NoCredentials)
}

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

fn parse_token_response(
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
            Err(AuthError::Refused {
                source_desc: desc.to_string(),
                detail: match error_description {
                    Some(d) => format!("{e} ({d})"),
                    None => e,
                },
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
        let transient =
            resp.status == http::StatusCode::TOO_MANY_REQUESTS || resp.status.is_server_error();
        if transient && attempt <= TOKEN_RETRIES {
            let pause = resp
                .retry_after
                .unwrap_or(Duration::from_millis(500 << (attempt - 1)));
            if pause <= MAX_TOKEN_RETRY_PAUSE {
                tracing::info!("{desc}: HTTP {}; retrying in {pause:?}", resp.status);
                tokio::time::sleep(pause).await;
                continue;
            }
        }
        return parse_token_response(&desc, resp.status, &resp.body);
    }
}

/// Retries of a token request (OAuth, IAM Credentials) answered 429 or
/// 5xx (0.5, 1, 2 s apart).
pub(super) const TOKEN_RETRIES: u32 = 3;

/// The longest `Retry-After` a token request waits for.
pub(super) const MAX_TOKEN_RETRY_PAUSE: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> Endpoints {
        Endpoints::from_lookup(|_| None).unwrap()
    }

    #[test]
    fn static_token_wins_and_iap_var_first() {
        let get = |k: &str| match k {
            "IAP_SSH_ACCESS_TOKEN" => Some("a".to_string()),
            "CLOUDSDK_AUTH_ACCESS_TOKEN" => Some("b".to_string()),
            "GOOGLE_APPLICATION_CREDENTIALS" => Some("/nonexistent".to_string()),
            _ => None,
        };
        match discover(&get, &ep(), None).unwrap().source {
            Source::Static { token, var } => {
                assert_eq!(token, "a");
                assert_eq!(var, "IAP_SSH_ACCESS_TOKEN");
            }
            _ => panic!("expected a static token"),
        }
    }

    #[test]
    fn gac_pointing_nowhere_is_an_error_not_a_fallthrough() {
        let get = |k: &str| {
            (k == "GOOGLE_APPLICATION_CREDENTIALS").then(|| "/nonexistent/k.json".to_string())
        };
        assert!(matches!(
            discover(&get, &ep(), None),
            Err(AuthError::BadFile { .. })
        ));
    }

    #[test]
    fn file_type_dispatch() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("u.json");
        std::fs::write(
            &p,
            r#"{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r","account":""}"#,
        )
        .unwrap();
        assert!(matches!(
            read_credential_file(&p).map(|c| c.source),
            Ok(Source::AuthorizedUser { .. })
        ));
        std::fs::write(&p, r#"{"type":"external_account"}"#).unwrap();
        let e = read_credential_file(&p).err().unwrap();
        assert!(e.to_string().contains("external_account"), "{e}");
        std::fs::write(
            &p,
            r#"{"type":"service_account","client_email":"a@b","private_key":"x","token_uri":"http://10.1.1.1/token"}"#,
        )
        .unwrap();
        let e = read_credential_file(&p).err().unwrap();
        assert!(e.to_string().contains("unencrypted"), "{e}");
    }

    #[test]
    fn impersonated_service_account_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("adc.json");
        std::fs::write(
            &p,
            r#"{"delegates":["d@p.iam.gserviceaccount.com"],
               "service_account_impersonation_url":"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/t@p.iam.gserviceaccount.com:generateAccessToken",
               "source_credentials":{"client_id":"c","client_secret":"s","refresh_token":"r","type":"authorized_user","universe_domain":"googleapis.com"},
               "type":"impersonated_service_account"}"#,
        )
        .unwrap();
        let c = read_credential_file(&p).unwrap();
        assert!(matches!(c.source, Source::AuthorizedUser { .. }));
        assert_eq!(c.source.member(), None, "no account in the file");
        let chain = c.chain.unwrap();
        assert_eq!(chain.target, "t@p.iam.gserviceaccount.com");
        assert_eq!(chain.delegates, ["d@p.iam.gserviceaccount.com"]);
        // A setting replaces the file's chain; the file's source stays.
        let path = p.display().to_string();
        let get = |k: &str| (k == "GOOGLE_APPLICATION_CREDENTIALS").then(|| path.clone());
        let c = discover(&get, &ep(), Some("x@p.iam.gserviceaccount.com")).unwrap();
        assert!(matches!(c.source, Source::AuthorizedUser { .. }));
        assert_eq!(c.chain.unwrap().target, "x@p.iam.gserviceaccount.com");
        // A file that names its account: the member for the fixes we print.
        for (account, member) in [
            ("ann@example.com", Some("user:ann@example.com")),
            ("", None),
            ("a b@example.com", None),
        ] {
            std::fs::write(
                &p,
                serde_json::json!({"type": "authorized_user", "client_id": "c",
                    "client_secret": "s", "refresh_token": "r", "account": account})
                .to_string(),
            )
            .unwrap();
            let c = read_credential_file(&p).unwrap();
            assert_eq!(c.source.member().as_deref(), member, "{account:?}");
        }
        std::fs::write(
            &p,
            r#"{"service_account_impersonation_url":"https://x/v1/projects/-/serviceAccounts/t@p.iam.gserviceaccount.com:generateAccessToken",
               "source_credentials":{"type":"external_account_authorized_user"},
               "type":"impersonated_service_account"}"#,
        )
        .unwrap();
        let e = read_credential_file(&p).err().unwrap().to_string();
        assert!(e.contains("source_credentials: credential type `external_account_authorized_user` is not supported"), "{e}");
    }

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
