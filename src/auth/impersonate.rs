//! Service-account impersonation: which chain of accounts to act as (the
//! `--impersonate-service-account` flag, gcloud's
//! `auth/impersonate_service_account` setting, or an ADC file of type
//! `impersonated_service_account`), and the IAM Credentials
//! `generateAccessToken` exchange that turns the caller's token into the
//! target's. Parsing and the request/response shapes are pure; the call
//! itself is made by [`super::TokenProvider`].

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::{AccessToken, AuthError, Token};

/// The scopes asked for the impersonated token: everything iap-ssh calls
/// (cloud-platform) and the email, so tokeninfo can name the account.
pub const SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
];

/// Where a chain was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `--impersonate-service-account` on the command line.
    Flag,
    /// `CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT`.
    Env,
    /// gcloud's `auth/impersonate_service_account` property.
    Property,
    /// An ADC file of type `impersonated_service_account`.
    AdcFile(PathBuf),
}

/// Accounts to act as: the caller needs Token Creator on the first,
/// each on the next; the token is the last one's (`target`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub target: String,
    /// The accounts before the target, in order (gcloud's
    /// `ParseImpersonationAccounts`: `A,B,C` → delegates `A`, `B`).
    pub delegates: Vec<String>,
    pub origin: Origin,
}

/// An account as the API takes it: an email (`name@project.iam.gserviceaccount.com`)
/// or a numeric unique ID. Anything else is refused, which also keeps the
/// value safe to put into a ProxyCommand line and a URL path.
pub fn valid_account(a: &str) -> bool {
    if !a.is_empty() && a.len() <= 21 && a.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let Some((local, domain)) = a.split_once('@') else {
        return false;
    };
    a.len() <= 254
        && !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
        && domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with('.')
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b))
}

impl Chain {
    /// Parses `A[,B…]` as gcloud does: split on `,`, blanks stripped and
    /// dropped; the last account is the target.
    pub fn parse(value: &str, origin: Origin) -> Result<Chain, AuthError> {
        let accounts: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let bad = |why: String| AuthError::Setting {
            what: origin.describe(),
            why,
        };
        if let Some(a) = accounts.iter().find(|a| !valid_account(a)) {
            return Err(bad(format!(
                "`{}` is not a service account email or unique ID",
                crate::error::printable(a)
            )));
        }
        let Some((target, delegates)) = accounts.split_last() else {
            return Err(bad("no service account given".into()));
        };
        Ok(Chain {
            target: target.clone(),
            delegates: delegates.to_vec(),
            origin,
        })
    }

    /// `A,B,…,TARGET`, as typed on the command line.
    pub fn joined(&self) -> String {
        let mut v = self.delegates.clone();
        v.push(self.target.clone());
        v.join(",")
    }

    /// The `generateAccessToken` URL under the IAM Credentials base URL.
    pub fn url(&self, base: &str) -> String {
        format!(
            "{base}v1/projects/-/serviceAccounts/{}:generateAccessToken",
            self.target
        )
    }

    /// The request body. Delegates go in the API's documented form
    /// (`projects/-/serviceAccounts/EMAIL`); gcloud sends bare emails, and
    /// whether the service takes those is UNCONFIRMED.
    pub fn body(&self) -> serde_json::Value {
        let delegates: Vec<String> = self
            .delegates
            .iter()
            .map(|d| format!("projects/-/serviceAccounts/{d}"))
            .collect();
        let mut v = serde_json::json!({
            "scope": SCOPES,
            "lifetime": "3600s",
        });
        if !delegates.is_empty() {
            v["delegates"] = delegates.into();
        }
        v
    }

    /// Identifies the chain in the token cache.
    pub(super) fn cache_key(&self, base: &str) -> String {
        format!("imp\0{}\0{}", self.joined(), self.url(base))
    }

    /// `--impersonate-service-account=…`, for a ProxyCommand line that
    /// must act as the same account when ssh runs it later; None when the
    /// chain comes from a setting that ssh's child will read itself (a
    /// gcloud property, an ADC file). Safe unquoted: [`valid_account`].
    pub fn launcher_arg(&self) -> Option<String> {
        match self.origin {
            Origin::Flag | Origin::Env => {
                Some(format!("--impersonate-service-account={}", self.joined()))
            }
            Origin::Property | Origin::AdcFile(_) => None,
        }
    }
}

impl Origin {
    pub fn describe(&self) -> String {
        match self {
            Origin::Flag => "--impersonate-service-account".into(),
            Origin::Env => "CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT".into(),
            Origin::Property => "gcloud's auth/impersonate_service_account".into(),
            Origin::AdcFile(p) => format!("impersonated_service_account file {}", p.display()),
        }
    }
}

static FLAG: OnceLock<String> = OnceLock::new();

/// Records `--impersonate-service-account` for this process (set once, by
/// the command line, before any credential is loaded).
pub fn set_flag(value: String) {
    let _ = FLAG.set(value);
}

/// The options a ProxyCommand needs to act as this process does: empty,
/// or ` --impersonate-service-account=…` when the chain was set by the
/// flag or the environment (see [`Chain::launcher_arg`]). An invalid
/// setting gives nothing here; loading the credentials reports it.
pub fn launcher_args() -> String {
    let env = |k: &str| std::env::var(k).ok();
    match from_settings(&env, None) {
        Ok(Some(c)) => c
            .launcher_arg()
            .map(|a| format!(" {a}"))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The chain set by the flag, the environment or gcloud's property, in
/// that order (an explicit setting also replaces an ADC file's own chain).
pub fn from_settings(
    env: &dyn Fn(&str) -> Option<String>,
    property: Option<&str>,
) -> Result<Option<Chain>, AuthError> {
    let nonempty = |s: &str| !s.trim().is_empty();
    if let Some(v) = FLAG.get().filter(|v| nonempty(v)) {
        return Chain::parse(v, Origin::Flag).map(Some);
    }
    if let Some(v) = env("CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT").filter(|v| nonempty(v)) {
        return Chain::parse(&v, Origin::Env).map(Some);
    }
    match property.filter(|v| nonempty(v)) {
        Some(v) => Chain::parse(v, Origin::Property).map(Some),
        None => Ok(None),
    }
}

/// The chain of an `impersonated_service_account` ADC file: the target is
/// the text between the last `/` and `:generateAccessToken` of
/// `service_account_impersonation_url` (whose host is not used, as in
/// google-auth), the delegates as listed.
pub fn from_adc(path: &std::path::Path, url: &str, delegates: &[String]) -> Result<Chain, String> {
    let target = url
        .strip_suffix(":generateAccessToken")
        .and_then(|s| s.rsplit('/').next())
        .filter(|t| valid_account(t))
        .ok_or_else(|| {
            format!(
                "service_account_impersonation_url `{}` does not end in /serviceAccounts/EMAIL:generateAccessToken",
                crate::error::printable(url)
            )
        })?;
    let delegates = delegates
        .iter()
        // The file may hold either form; keep the email.
        .map(|d| d.rsplit('/').next().unwrap_or(d).to_string())
        .collect::<Vec<_>>();
    if let Some(d) = delegates.iter().find(|d| !valid_account(d)) {
        return Err(format!(
            "delegate `{}` is not a service account",
            crate::error::printable(d)
        ));
    }
    Ok(Chain {
        target: target.to_string(),
        delegates,
        origin: Origin::AdcFile(path.to_path_buf()),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Generated {
    access_token: Option<String>,
    expire_time: Option<String>,
}

/// Reads `generateAccessToken`'s answer; errors say what the user must do.
pub fn parse_response(
    chain: &Chain,
    status: http::StatusCode,
    body: &[u8],
) -> Result<Token, AuthError> {
    if status.is_success() {
        let g: Generated = serde_json::from_slice(body).map_err(|e| AuthError::BadResponse {
            source_desc: format!("impersonating {}", chain.target),
            detail: format!("not JSON: {e}"),
        })?;
        let (Some(t), Some(exp)) = (g.access_token.filter(|t| !t.is_empty()), g.expire_time) else {
            return Err(AuthError::BadResponse {
                source_desc: format!("impersonating {}", chain.target),
                detail: "no accessToken or expireTime".into(),
            });
        };
        let expires_at = parse_rfc3339(&exp).ok_or_else(|| AuthError::BadResponse {
            source_desc: format!("impersonating {}", chain.target),
            detail: format!(
                "expireTime `{}` is not a time",
                crate::error::printable(&exp)
            ),
        })?;
        return Ok(Token {
            access: AccessToken::new(t),
            expires_at: Some(expires_at),
        });
    }
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let message = v["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    Err(AuthError::Impersonation {
        chain: chain.joined(),
        target: chain.target.clone(),
        status: status.as_u16(),
        message,
        first_hop: chain.delegates.first().unwrap_or(&chain.target).clone(),
        delegated: !chain.delegates.is_empty(),
        caller: None,
    })
}

/// `expireTime` as IAM Credentials writes it (`YYYY-MM-DDTHH:MM:SSZ`).
/// Fractions and offsets are accepted too (google-auth 2.39 would fail on
/// a fraction; whether the service sends one is UNCONFIRMED).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let secs = u64::try_from(crate::timefmt::parse(s)?).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_parse_as_gcloud_does() {
        let c = Chain::parse(" a@p.iam.gserviceaccount.com , ,b@p.iam.gserviceaccount.com,c@p.iam.gserviceaccount.com ", Origin::Flag).unwrap();
        assert_eq!(c.target, "c@p.iam.gserviceaccount.com");
        assert_eq!(
            c.delegates,
            ["a@p.iam.gserviceaccount.com", "b@p.iam.gserviceaccount.com"]
        );
        assert_eq!(
            c.body()["delegates"],
            serde_json::json!([
                "projects/-/serviceAccounts/a@p.iam.gserviceaccount.com",
                "projects/-/serviceAccounts/b@p.iam.gserviceaccount.com"
            ])
        );
        let one = Chain::parse("sa@p.iam.gserviceaccount.com", Origin::Env).unwrap();
        assert!(one.delegates.is_empty());
        assert!(one.body().get("delegates").is_none());
        assert_eq!(one.body()["lifetime"], "3600s");
        assert_eq!(
            one.url("https://iamcredentials.googleapis.com/"),
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken"
        );
        assert_eq!(
            one.launcher_arg().unwrap(),
            "--impersonate-service-account=sa@p.iam.gserviceaccount.com"
        );
        assert!(Chain::parse("123456789012345678901", Origin::Flag).is_ok());
    }

    #[test]
    fn hostile_accounts_are_refused() {
        for bad in [
            "",
            " , ",
            "a@b.c;touch x",
            "$(id)@p.iam.gserviceaccount.com",
            "a@b.c d@e.f",
            "a b@c.d",
            "a@b/../x.com",
            "a@b.c%2F",
            "a@b\nc.d",
            "'a'@b.c",
            "a@-b.c",
            "a@b.c.",
            "nodomain",
        ] {
            assert!(Chain::parse(bad, Origin::Flag).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn adc_target_from_url() {
        let p = std::path::Path::new("/x.json");
        let c = from_adc(
            p,
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/t@p.iam.gserviceaccount.com:generateAccessToken",
            &["d@p.iam.gserviceaccount.com".into(), "projects/-/serviceAccounts/e@p.iam.gserviceaccount.com".into()],
        )
        .unwrap();
        assert_eq!(c.target, "t@p.iam.gserviceaccount.com");
        assert_eq!(
            c.delegates,
            ["d@p.iam.gserviceaccount.com", "e@p.iam.gserviceaccount.com"]
        );
        assert!(c.launcher_arg().is_none());
        assert!(from_adc(p, "https://x/v1/projects/-/serviceAccounts/t@p.com", &[]).is_err());
    }

    #[test]
    fn rfc3339() {
        let t = |s| parse_rfc3339(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs());
        assert_eq!(t("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(t("2025-06-20T15:04:05Z"), Some(1_750_431_845));
        assert_eq!(t("2025-06-20T15:04:05.123456Z"), Some(1_750_431_845));
        assert_eq!(t("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        for bad in [
            "2025-06-20 15:04:05",
            "2025-13-01T00:00:00Z",
            "x",
            "2025-06-20T15:04Z",
            "+2025-06-20T15:04:05Z",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn responses() {
        let c = Chain::parse("t@p.iam.gserviceaccount.com", Origin::Flag).unwrap();
        let ok = parse_response(
            &c,
            http::StatusCode::OK,
            br#"{"accessToken":"ya29.imp","expireTime":"2099-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(ok.access.secret(), "ya29.imp");
        let e = parse_response(
            &c,
            http::StatusCode::FORBIDDEN,
            br#"{"error":{"code":403,"message":"Permission 'iam.serviceAccounts.getAccessToken' denied","status":"PERMISSION_DENIED"}}"#,
        )
        .unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("roles/iam.serviceAccountTokenCreator on t@p.iam.gserviceaccount.com"),
            "{s}"
        );
        assert!(
            e.fix().contains(
                "gcloud iam service-accounts add-iam-policy-binding t@p.iam.gserviceaccount.com"
            ),
            "{}",
            e.fix()
        );
        assert!(parse_response(&c, http::StatusCode::OK, br#"{"accessToken":"x"}"#).is_err());
    }
}
