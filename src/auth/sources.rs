//! Where credentials come from (discovery) and what each kind is: the
//! files read, the token URL each uses, its IAM member. Turning one into an
//! access token is [`super::exchange`].

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::AuthError;
use crate::net::endpoints::Endpoints;

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

pub(super) fn sa_token_url(key: &ServiceAccountKey, ep: &Endpoints) -> String {
    ep.token_override
        .clone()
        .or_else(|| key.token_uri.clone())
        .unwrap_or_else(|| ep.token_default.clone())
}

pub(super) fn user_token_url(ep: &Endpoints) -> String {
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
pub(crate) fn parse_source(
    path: &Path,
    v: serde_json::Value,
    ctx: &str,
) -> Result<Source, AuthError> {
    let bad = |reason: String| AuthError::BadFile {
        path: path.to_path_buf(),
        reason: format!("{ctx}{reason}"),
    };
    match v.get("type").and_then(|t| t.as_str()) {
        Some("service_account") => {
            let key: ServiceAccountKey = serde_json::from_value(v)
                .map_err(|e| bad(format!("bad service account key: {e}")))?;
            if let Some(u) = &key.token_uri {
                crate::net::endpoints::check_url("token_uri", u, "https", "http")
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
}
