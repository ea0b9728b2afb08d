//! Where Google's services are: defaults (per universe domain, and the
//! mTLS hosts when a client certificate is in use), the `IAP_SSH_*_URL`
//! overrides (used verbatim, as gcloud's endpoint overrides are), and the
//! rule that plain `ws://`/`http://` is only allowed to a loopback host.
//!
//! Pure: values come in as a lookup function so tests need no process
//! environment.

use std::net::IpAddr;

pub const DEFAULT_TUNNEL_URL: &str = "wss://tunnel.cloudproxy.app";
pub const DEFAULT_COMPUTE_URL: &str = "https://compute.googleapis.com/compute/v1/";
pub const DEFAULT_OSLOGIN_URL: &str = "https://oslogin.googleapis.com/v1/";
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
pub const DEFAULT_IAMCREDENTIALS_URL: &str = "https://iamcredentials.googleapis.com/";
pub const DEFAULT_IAP_URL: &str = "https://iap.googleapis.com/v1/";
pub const DEFAULT_CRM_URL: &str = "https://cloudresourcemanager.googleapis.com/v1/";
pub const DEFAULT_TOKENINFO_URL: &str = "https://oauth2.googleapis.com/tokeninfo";
pub const DEFAULT_METADATA_URL: &str = "http://metadata.google.internal/computeMetadata/v1/";

/// gcloud's default `core/universe_domain`.
pub const DEFAULT_UNIVERSE: &str = "googleapis.com";

/// Where the services are, before overrides: gcloud's
/// `core/universe_domain` and whether a client certificate is in use
/// (`context_aware/use_client_certificate`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// None or `googleapis.com`: Google's public cloud.
    pub universe: Option<String>,
    pub mtls: bool,
}

/// Is `u` a plausible universe domain (a DNS name of two or more labels)?
pub fn valid_universe(u: &str) -> bool {
    u.len() <= 253
        && u.contains('.')
        && u.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl Placement {
    fn universe(&self) -> Option<&str> {
        self.universe
            .as_deref()
            .filter(|u| !u.eq_ignore_ascii_case(DEFAULT_UNIVERSE))
    }

    /// The default relay: `tunnel.cloudproxy.app` (`mtls.` in front with a
    /// client certificate); `tunnel-cloudproxy.U` in another universe
    /// (a hyphen, not a subdomain; no mTLS variant there), as gcloud's
    /// `_CreateWebSocketUrl`.
    pub fn tunnel(&self) -> String {
        match (self.universe(), self.mtls) {
            (Some(u), _) => format!("wss://tunnel-cloudproxy.{u}"),
            (None, true) => "wss://mtls.tunnel.cloudproxy.app".into(),
            (None, false) => DEFAULT_TUNNEL_URL.into(),
        }
    }

    /// The same universe without the mTLS hosts (for the APIs gcloud never
    /// reaches over mTLS).
    fn plain(&self) -> Placement {
        Placement {
            mtls: false,
            ..self.clone()
        }
    }

    /// `https://SERVICE.[mtls.]UNIVERSE/PATH`: gcloud's universified base
    /// URLs, the mTLS host with a client certificate.
    pub fn api(&self, service: &str, path: &str) -> String {
        let u = self.universe().unwrap_or(DEFAULT_UNIVERSE);
        let m = if self.mtls { "mtls." } else { "" };
        format!("https://{service}.{m}{u}/{path}")
    }
}

/// A URL that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("{var}={url} is not a valid URL")]
    Invalid { var: &'static str, url: String },
    #[error("{var}={url} uses scheme `{scheme}`; expected {expected}")]
    Scheme {
        var: &'static str,
        url: String,
        scheme: String,
        expected: &'static str,
    },
    #[error("{var}={url} sends traffic unencrypted to a non-loopback host")]
    Plaintext { var: &'static str, url: String },
    #[error("gcloud's core/universe_domain `{0}` is not a domain name")]
    Universe(String),
}

/// All endpoints, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Relay base: scheme, authority and path root (no trailing slash),
    /// e.g. `wss://tunnel.cloudproxy.app/v4`.
    pub tunnel_base: String,
    pub compute: String,
    pub oslogin: String,
    /// Explicit token endpoint override, if any (service-account keys
    /// otherwise use their own `token_uri`).
    pub token_override: Option<String>,
    /// The token endpoint otherwise (`oauth2.[mtls.]UNIVERSE/token`).
    pub token_default: String,
    pub metadata: String,
    /// OAuth tokeninfo: who a token belongs to (for OS Login).
    pub tokeninfo: String,
    /// The IAP API (testIamPermissions, for `doctor`).
    pub iap: String,
    /// IAM Credentials base URL (service-account impersonation).
    pub iamcredentials: String,
    /// Cloud Resource Manager v1 (`setup --all-projects`).
    pub crm: String,
    /// True when the metadata URL was set explicitly (tests, or a user who
    /// knows they are on GCE); otherwise the server is only tried on GCE.
    pub metadata_explicit: bool,
}

/// Is `host` (as written in a URL authority, IPv6 in brackets) a loopback host?
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// The GCE metadata server is plain HTTP by design and link-local.
fn is_metadata_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("metadata.google.internal") || host == "169.254.169.254"
}

/// Parses and checks one URL: `secure` / `plain` are the allowed schemes.
pub fn check_url(
    var: &'static str,
    url: &str,
    secure: &'static str,
    plain: &'static str,
) -> Result<http::Uri, EndpointError> {
    let uri: http::Uri = url.parse().map_err(|_| EndpointError::Invalid {
        var,
        url: url.to_string(),
    })?;
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return Err(EndpointError::Invalid {
            var,
            url: url.to_string(),
        });
    };
    if scheme == secure {
        return Ok(uri);
    }
    if scheme != plain {
        return Err(EndpointError::Scheme {
            var,
            url: url.to_string(),
            scheme: scheme.to_string(),
            expected: if secure == "wss" {
                "wss:// (or ws:// to a loopback host)"
            } else {
                "https:// (or http:// to a loopback host)"
            },
        });
    }
    if is_loopback_host(host) || (var == "IAP_SSH_METADATA_URL" && is_metadata_host(host)) {
        Ok(uri)
    } else {
        Err(EndpointError::Plaintext {
            var,
            url: url.to_string(),
        })
    }
}

fn with_slash(s: &str) -> String {
    if s.ends_with('/') {
        s.to_string()
    } else {
        format!("{s}/")
    }
}

/// The relay base after gcloud's override rule: the override's scheme and
/// authority replace the default; a path other than empty or `/` replaces
/// `/v4` (a trailing slash is dropped).
pub fn tunnel_base(url: &str) -> Result<String, EndpointError> {
    let uri = check_url("IAP_SSH_TUNNEL_URL", url, "wss", "ws")?;
    let scheme = uri.scheme_str().unwrap_or("wss");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let path = uri.path().trim_end_matches('/');
    let root = if path.is_empty() { "/v4" } else { path };
    Ok(format!("{scheme}://{authority}{root}"))
}

impl Endpoints {
    /// Builds the endpoints from a variable lookup (the process environment
    /// in production).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, EndpointError> {
        Self::place(get, &Placement::default())
    }

    /// [`Endpoints::from_lookup`] in a universe / with mTLS hosts.
    pub fn place(
        get: impl Fn(&str) -> Option<String>,
        at: &Placement,
    ) -> Result<Self, EndpointError> {
        let val = |k: &str| get(k).filter(|v| !v.is_empty());
        let tunnel = val("IAP_SSH_TUNNEL_URL").unwrap_or_else(|| at.tunnel());
        let compute =
            val("IAP_SSH_COMPUTE_URL").unwrap_or_else(|| at.api("compute", "compute/v1/"));
        let oslogin = val("IAP_SSH_OSLOGIN_URL").unwrap_or_else(|| at.api("oslogin", "v1/"));
        // The OAuth hosts of another universe follow the same rule
        // (UNCONFIRMED: gcloud takes them from the credential there); a
        // service-account key's own token_uri still wins over this.
        let token = val("IAP_SSH_TOKEN_URL");
        let metadata_set = val("IAP_SSH_METADATA_URL");
        let metadata = metadata_set
            .clone()
            .unwrap_or_else(|| DEFAULT_METADATA_URL.into());
        check_url("IAP_SSH_COMPUTE_URL", &compute, "https", "http")?;
        check_url("IAP_SSH_OSLOGIN_URL", &oslogin, "https", "http")?;
        if let Some(t) = &token {
            check_url("IAP_SSH_TOKEN_URL", t, "https", "http")?;
        }
        // `https://oauth2.googleapis.com/token` in Google's public cloud.
        let token_default = at.api("oauth2", "token");
        check_url("IAP_SSH_METADATA_URL", &metadata, "https", "http")?;
        let tokeninfo =
            val("IAP_SSH_TOKENINFO_URL").unwrap_or_else(|| at.plain().api("oauth2", "tokeninfo"));
        check_url("IAP_SSH_TOKENINFO_URL", &tokeninfo, "https", "http")?;
        let iap = val("IAP_SSH_IAP_URL").unwrap_or_else(|| at.api("iap", "v1/"));
        check_url("IAP_SSH_IAP_URL", &iap, "https", "http")?;
        // Never the mTLS host (gcloud's GetEffectiveIamEndpoint).
        let iamcredentials = val("IAP_SSH_IAMCREDENTIALS_URL")
            .unwrap_or_else(|| at.plain().api("iamcredentials", ""));
        check_url(
            "IAP_SSH_IAMCREDENTIALS_URL",
            &iamcredentials,
            "https",
            "http",
        )?;
        let crm = val("IAP_SSH_CRM_URL").unwrap_or_else(|| at.api("cloudresourcemanager", "v1/"));
        check_url("IAP_SSH_CRM_URL", &crm, "https", "http")?;
        Ok(Endpoints {
            crm: with_slash(&crm),
            iamcredentials: with_slash(&iamcredentials),
            iap: with_slash(&iap),
            tokeninfo,
            tunnel_base: tunnel_base(&tunnel)?,
            compute: with_slash(&compute),
            oslogin: with_slash(&oslogin),
            token_override: token,
            token_default,
            metadata: with_slash(&metadata),
            metadata_explicit: metadata_set.is_some(),
        })
    }

    /// From the process environment and gcloud's configuration.
    pub fn from_env() -> Result<Self, EndpointError> {
        let g = crate::gcloud::GcloudConfig::process();
        let universe = g.universe_domain.clone();
        if let Some(u) = &universe
            && !valid_universe(u)
        {
            return Err(EndpointError::Universe(u.clone()));
        }
        let at = Placement {
            universe,
            mtls: crate::net::mtls::enabled(),
        };
        Self::place(|k| std::env::var(k).ok(), &at)
    }
}

impl From<EndpointError> for crate::error::UserError {
    fn from(e: EndpointError) -> Self {
        if let EndpointError::Universe(_) = e {
            return crate::error::UserError::new(crate::error::exit::USAGE, e.to_string()).with_fix(
                "set it to your universe's domain (e.g. `gcloud config set universe_domain googleapis.com`), or unset CLOUDSDK_CORE_UNIVERSE_DOMAIN",
            );
        }
        crate::error::UserError::new(crate::error::exit::USAGE, e.to_string()).with_fix(
            "use https:// (wss:// for IAP_SSH_TUNNEL_URL); plain http:// and ws:// are only allowed to 127.0.0.1, ::1 or localhost",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(pairs: &[(&str, &str)]) -> Result<Endpoints, EndpointError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Endpoints::from_lookup(move |k| pairs.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone()))
    }

    #[test]
    fn defaults() {
        let e = eps(&[]).unwrap();
        assert_eq!(e.tunnel_base, "wss://tunnel.cloudproxy.app/v4");
        assert_eq!(e.compute, DEFAULT_COMPUTE_URL);
        assert!(!e.metadata_explicit);
        assert_eq!(e.token_override, None);
    }

    #[test]
    fn tunnel_override_follows_gcloud_rules() {
        assert_eq!(
            tunnel_base("wss://127.0.0.1:8443").unwrap(),
            "wss://127.0.0.1:8443/v4"
        );
        assert_eq!(
            tunnel_base("wss://127.0.0.1:8443/").unwrap(),
            "wss://127.0.0.1:8443/v4"
        );
        assert_eq!(tunnel_base("wss://h:1/x").unwrap(), "wss://h:1/x");
        assert_eq!(tunnel_base("wss://h:1/x/").unwrap(), "wss://h:1/x");
        assert_eq!(
            tunnel_base("ws://localhost:9/").unwrap(),
            "ws://localhost:9/v4"
        );
        assert_eq!(tunnel_base("ws://[::1]:9").unwrap(), "ws://[::1]:9/v4");
    }

    #[test]
    fn plaintext_only_to_loopback() {
        assert!(matches!(
            tunnel_base("ws://example.com"),
            Err(EndpointError::Plaintext { .. })
        ));
        assert!(matches!(
            eps(&[("IAP_SSH_COMPUTE_URL", "http://10.0.0.1/compute/v1/")]),
            Err(EndpointError::Plaintext { .. })
        ));
        assert!(matches!(
            eps(&[("IAP_SSH_TOKEN_URL", "ftp://127.0.0.1/")]),
            Err(EndpointError::Scheme { .. })
        ));
        assert!(matches!(
            tunnel_base("https://127.0.0.1/"),
            Err(EndpointError::Scheme { .. })
        ));
        assert!(matches!(
            tunnel_base("not a url"),
            Err(EndpointError::Invalid { .. })
        ));
        let e = eps(&[("IAP_SSH_COMPUTE_URL", "http://127.0.0.2:5/c")]).unwrap();
        assert_eq!(e.compute, "http://127.0.0.2:5/c/");
        // The metadata server is plain HTTP by design.
        eps(&[(
            "IAP_SSH_METADATA_URL",
            "http://169.254.169.254/computeMetadata/v1/",
        )])
        .unwrap();
        assert!(matches!(
            eps(&[("IAP_SSH_TOKEN_URL", "http://metadata.google.internal/")]),
            Err(EndpointError::Plaintext { .. })
        ));
    }

    #[test]
    fn universes_and_mtls_hosts() {
        let at = |u: Option<&str>, mtls| Placement {
            universe: u.map(str::to_string),
            mtls,
        };
        let e = Endpoints::place(|_| None, &at(Some("s3nsapis.fr"), false)).unwrap();
        assert_eq!(e.tunnel_base, "wss://tunnel-cloudproxy.s3nsapis.fr/v4");
        assert_eq!(e.compute, "https://compute.s3nsapis.fr/compute/v1/");
        assert_eq!(e.oslogin, "https://oslogin.s3nsapis.fr/v1/");
        assert_eq!(e.iamcredentials, "https://iamcredentials.s3nsapis.fr/");
        assert_eq!(e.iap, "https://iap.s3nsapis.fr/v1/");
        assert_eq!(e.token_default, "https://oauth2.s3nsapis.fr/token");
        assert_eq!(e.token_override, None);
        // The default universe, named: the defaults.
        let e = Endpoints::place(|_| None, &at(Some("googleapis.com"), false)).unwrap();
        assert_eq!(e, Endpoints::from_lookup(|_| None).unwrap());
        assert_eq!(e.compute, DEFAULT_COMPUTE_URL);
        assert_eq!(e.oslogin, DEFAULT_OSLOGIN_URL);
        assert_eq!(e.iap, DEFAULT_IAP_URL);
        assert_eq!(e.tokeninfo, DEFAULT_TOKENINFO_URL);
        assert_eq!(e.token_default, DEFAULT_TOKEN_URL);
        assert_eq!(e.iamcredentials, DEFAULT_IAMCREDENTIALS_URL);
        // mTLS: the relay's and the APIs' mTLS hosts, never for IAM
        // Credentials; no mTLS relay in another universe.
        let e = Endpoints::place(|_| None, &at(None, true)).unwrap();
        assert_eq!(e.tunnel_base, "wss://mtls.tunnel.cloudproxy.app/v4");
        assert_eq!(e.compute, "https://compute.mtls.googleapis.com/compute/v1/");
        assert_eq!(e.oslogin, "https://oslogin.mtls.googleapis.com/v1/");
        assert_eq!(e.token_default, "https://oauth2.mtls.googleapis.com/token");
        assert_eq!(e.iamcredentials, DEFAULT_IAMCREDENTIALS_URL);
        let e = Endpoints::place(|_| None, &at(Some("u.example"), true)).unwrap();
        assert_eq!(e.tunnel_base, "wss://tunnel-cloudproxy.u.example/v4");
        assert_eq!(e.compute, "https://compute.mtls.u.example/compute/v1/");
        // Overrides are verbatim.
        let e = Endpoints::place(
            |k| (k == "IAP_SSH_TUNNEL_URL").then(|| "wss://127.0.0.1:9".to_string()),
            &at(Some("u.example"), true),
        )
        .unwrap();
        assert_eq!(e.tunnel_base, "wss://127.0.0.1:9/v4");
        for bad in [
            "", "com", "a..b", "-a.b", "a.b/c", "a.b:1", "a b.c", "a.b\n",
        ] {
            assert!(!valid_universe(bad), "{bad}");
        }
        assert!(valid_universe("s3nsapis.fr"));
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1",
            "127.8.9.1",
            "localhost",
            "LOCALHOST",
            "[::1]",
            "::1",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["10.0.0.1", "example.com", "localhost.example.com", "[::2]"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
