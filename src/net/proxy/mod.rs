//! Proxies for every connection iap-ssh makes (the relay WebSocket,
//! OAuth, Compute, OS Login; never the GCE metadata server): which proxy,
//! from where, and which hosts bypass it. Pure; the HTTP CONNECT exchange
//! is in [`connect`], SOCKS5's in [`socks`]; where a connection is dialled
//! (`IAP_SSH_CONNECT_TO`) is in [`connect_to`]; [`dial`] puts them together
//! for every connection.
//!
//! Sources, first match wins: gcloud's `proxy/*` properties (`proxy/type`
//! `http`, `http_no_tunnel` or `socks5`, `proxy/address`, `proxy/port`,
//! `proxy/username`, `proxy/password`, `proxy/rdns`; `CLOUDSDK_PROXY_*`
//! over the active configuration; type, address and port all or none, as
//! gcloud insists); then `https_proxy`, else `HTTPS_PROXY`; then
//! `all_proxy`, else `ALL_PROXY`. A lowercase variable set to the empty
//! string disables its pair. A URL without a scheme means `http://`;
//! without a port, 80 (as Python's requests; give the port), 1080 for
//! `socks5://` (names resolved here) and `socks5h://` (by the proxy).
//! Credentials in the URL are percent-decoded. `https://` and SOCKS4
//! proxies are refused with a message. gcloud refuses SOCKS for the tunnel;
//! iap-ssh takes SOCKS5 for every connection. `no_proxy`, else `NO_PROXY`,
//! applies to every source, with curl's semantics ([`no_proxy`]).

pub mod connect;
pub mod connect_to;
pub mod dial;
pub mod no_proxy;
pub mod socks;

use std::sync::OnceLock;

use crate::gcloud::GcloudConfig;
pub use no_proxy::NoProxy;

/// How a proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// HTTP/1.1 CONNECT ([`connect`]).
    Http,
    /// SOCKS5 CONNECT ([`socks`]); `remote_dns`: the proxy resolves the
    /// target's name (`socks5h://`, gcloud's `proxy/rdns`, its default).
    Socks5 { remote_dns: bool },
}

/// One proxy.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    pub kind: Kind,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Where the setting came from, for messages.
    pub from: &'static str,
}

impl std::fmt::Debug for Proxy {
    // Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proxy({} from {})", self.addr(), self.from)
    }
}

impl Proxy {
    /// `host:port` (IPv6 in brackets), for messages and CONNECT.
    pub fn addr(&self) -> String {
        authority(&self.host, self.port)
    }
}

/// Host (IPv6 without brackets) and port of an `http(s)`/`ws(s)` URI, the
/// scheme's port when none is given.
pub fn host_port(uri: &http::Uri) -> Option<(String, u16)> {
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().or(match uri.scheme_str() {
        Some("wss" | "https") => Some(443),
        Some("ws" | "http") => Some(80),
        _ => None,
    })?;
    Some((host.to_string(), port))
}

/// `host:port`, with an IPv6 literal in brackets.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    Config(String),
    #[error("cannot reach proxy {proxy} (from {from}): {reason}")]
    Unreachable {
        proxy: String,
        from: &'static str,
        reason: String,
    },
    #[error("proxy {proxy} requires authentication{}", auth_cause(from, offered, *sent))]
    Auth {
        proxy: String,
        from: &'static str,
        /// The schemes its `Proxy-Authenticate` headers offer.
        offered: Vec<String>,
        /// We sent Basic credentials.
        sent: bool,
    },
    #[error("proxy {proxy} refused CONNECT to {target}: {status_line}")]
    Refused {
        proxy: String,
        target: String,
        status_line: String,
    },
    #[error("proxy {proxy} gave a malformed answer to CONNECT: {what}")]
    Malformed { proxy: String, what: String },
}

/// Does a proxy that offers `offered` take Basic (none named: assume so)?
fn takes_basic(offered: &[String]) -> bool {
    offered.is_empty() || offered.iter().any(|s| s.eq_ignore_ascii_case("basic"))
}

fn auth_cause(from: &str, offered: &[String], sent: bool) -> String {
    if !takes_basic(offered) {
        format!(
            " by {}, which iap-ssh does not speak (only Basic)",
            offered.join(", ")
        )
    } else if sent {
        format!(": the user and password from {from} were refused")
    } else {
        format!(", and {from} gives no user and password")
    }
}

impl ProxyError {
    /// What to do about it, for the error line.
    pub fn fix(&self) -> &'static str {
        match self {
            ProxyError::Config(_) => "",
            ProxyError::Auth { offered, .. } if !takes_basic(offered) => {
                "run a local proxy that authenticates for you (e.g. cntlm or px) and point https_proxy at it, or ask for Basic authentication on the proxy"
            }
            ProxyError::Auth { sent: true, .. } => {
                "check the user and password in https_proxy or gcloud's proxy/* properties (special characters percent-encoded in a URL)"
            }
            ProxyError::Auth { .. } => {
                "give them in the proxy URL (http://USER:PASSWORD@HOST:PORT) or in gcloud's proxy/username and proxy/password"
            }
            ProxyError::Unreachable { .. } => {
                "check the proxy's address and port, or list the host in NO_PROXY to go direct"
            }
            ProxyError::Refused { .. } => {
                "ask the proxy's administrators to allow CONNECT to tunnel.cloudproxy.app:443 and *.googleapis.com:443, or list the host in NO_PROXY"
            }
            ProxyError::Malformed { .. } => "check that the proxy address points at an HTTP proxy",
        }
    }

    /// Waiting will not help (settings, credentials, policy).
    pub fn is_final(&self) -> bool {
        !matches!(self, ProxyError::Unreachable { .. })
    }
}

/// The proxy settings of this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    proxy: Option<Proxy>,
    no_proxy: NoProxy,
}

impl Proxies {
    /// No proxy at all.
    pub fn none() -> Proxies {
        Proxies::default()
    }

    /// The proxy for a connection to `host`, unless `NO_PROXY` exempts it.
    pub fn for_host(&self, host: &str) -> Option<&Proxy> {
        self.proxy
            .as_ref()
            .filter(|_| !self.no_proxy.bypasses(host))
    }

    /// The configured proxy, whatever the host.
    pub fn configured(&self) -> Option<&Proxy> {
        self.proxy.as_ref()
    }

    /// Reads the settings from `env` and gcloud's properties.
    pub fn resolve(
        env: &dyn Fn(&str) -> Option<String>,
        gcloud: &GcloudConfig,
    ) -> Result<Proxies, ProxyError> {
        let no_proxy = env("no_proxy")
            .or_else(|| env("NO_PROXY"))
            .map(|v| NoProxy::parse(&v))
            .unwrap_or_default();
        let proxy = match from_gcloud(gcloud)? {
            Some(p) => Some(p),
            None => from_env(env)?,
        };
        Ok(Proxies { proxy, no_proxy })
    }
}

const GCLOUD: &str = "gcloud's proxy/* properties";

fn from_gcloud(g: &GcloudConfig) -> Result<Option<Proxy>, ProxyError> {
    let p = &g.proxy;
    let set = [&p.kind, &p.address, &p.port]
        .iter()
        .filter(|v| v.is_some())
        .count();
    if set == 0 {
        return Ok(None);
    }
    let (Some(kind), Some(address), Some(port)) = (&p.kind, &p.address, &p.port) else {
        return Err(ProxyError::Config(
            "gcloud's proxy settings are incomplete: set all or none of proxy/type, proxy/address and proxy/port (CLOUDSDK_PROXY_TYPE, _ADDRESS, _PORT)".into(),
        ));
    };
    let kind = match kind.to_ascii_lowercase().as_str() {
        "http" | "http_no_tunnel" => Kind::Http,
        // gcloud's proxy/rdns (default true): the proxy resolves names.
        "socks5" => Kind::Socks5 {
            remote_dns: p.rdns.as_deref().is_none_or(|v| {
                !matches!(
                    v.to_ascii_lowercase().as_str(),
                    "false" | "0" | "no" | "off"
                )
            }),
        },
        "socks4" => {
            return Err(ProxyError::Config(format!(
                "gcloud's proxy/type is {kind}: SOCKS4 is not supported; use socks5 (proxy/type socks5) or an HTTP proxy"
            )));
        }
        _ => {
            return Err(ProxyError::Config(format!(
                "gcloud's proxy/type '{kind}' is not one of http, http_no_tunnel, socks5"
            )));
        }
    };
    let port = port
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            ProxyError::Config(format!("gcloud's proxy/port '{port}' is not a port number"))
        })?;
    let host = address.trim().trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return Err(ProxyError::Config(format!(
            "gcloud's proxy/address '{address}' is not a host name or IP address"
        )));
    }
    Ok(Some(Proxy {
        kind,
        host: host.to_string(),
        port,
        user: p.username.clone(),
        password: p.password.clone(),
        from: GCLOUD,
    }))
}

fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Proxy>, ProxyError> {
    for (lower, upper) in [("https_proxy", "HTTPS_PROXY"), ("all_proxy", "ALL_PROXY")] {
        let (name, value) = match env(lower) {
            // An empty lowercase variable disables its pair.
            Some(v) if v.trim().is_empty() => continue,
            Some(v) => (lower, v),
            None => match env(upper) {
                Some(v) if !v.trim().is_empty() => (upper, v),
                _ => continue,
            },
        };
        return parse_url(value.trim(), name).map(Some);
    }
    Ok(None)
}

/// `[http://][user[:password]@]host[:port][/]` → a proxy.
pub fn parse_url(url: &str, from: &'static str) -> Result<Proxy, ProxyError> {
    let bad = |why: &str| ProxyError::Config(format!("{from}: {why}"));
    let (kind, rest) = match url.split_once("://") {
        None => (Kind::Http, url),
        Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
            "http" => (Kind::Http, rest),
            "socks5" => (Kind::Socks5 { remote_dns: false }, rest),
            "socks5h" => (Kind::Socks5 { remote_dns: true }, rest),
            "https" => {
                return Err(bad(
                    "https:// proxies (TLS to the proxy) are not supported; most proxies take http:// (the tunnel inside is TLS either way)",
                ));
            }
            s if s.starts_with("socks") => {
                return Err(bad(&format!(
                    "{s}:// is not supported; use socks5h:// (or socks5://), or an HTTP proxy"
                )));
            }
            s => return Err(bad(&format!("unknown proxy scheme '{s}://'"))),
        },
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err(bad("a proxy URL has no path"));
    }
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, after) = h
            .split_once(']')
            .ok_or_else(|| bad("unclosed '[' in the host"))?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.contains([' ', '[', ']']) {
        return Err(bad("no proxy host"));
    }
    let port = match port {
        // Python's requests' default for http://; SOCKS' own port.
        None if kind == Kind::Http => 80,
        None => 1080,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(&format!("'{p}' is not a port number")))?,
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (a, b) = match u.split_once(':') {
                Some((a, b)) => (a, Some(b)),
                None => (u, None),
            };
            let dec = |s: &str| {
                percent_decode(s).ok_or_else(|| bad("bad percent-encoding in the credentials"))
            };
            (Some(dec(a)?), b.map(dec).transpose()?)
        }
    };
    Ok(Proxy {
        kind,
        host: host.to_string(),
        port,
        user,
        password,
        from,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The settings of this process: environment and gcloud's configuration,
/// read once.
pub fn global() -> &'static Result<Proxies, ProxyError> {
    static P: OnceLock<Result<Proxies, ProxyError>> = OnceLock::new();
    P.get_or_init(|| Proxies::resolve(&|k| std::env::var(k).ok(), GcloudConfig::process()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcloud::ProxyProps;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn resolve(vars: &[(&str, &str)]) -> Result<Proxies, ProxyError> {
        Proxies::resolve(&env(vars), &GcloudConfig::default())
    }

    #[test]
    fn environment_precedence() {
        let p = resolve(&[("HTTPS_PROXY", "http://up:1"), ("https_proxy", "low:2")]).unwrap();
        assert_eq!(p.configured().unwrap().addr(), "low:2");
        assert_eq!(p.configured().unwrap().from, "https_proxy");
        let p = resolve(&[("HTTPS_PROXY", "http://up:1"), ("ALL_PROXY", "all:3")]).unwrap();
        assert_eq!(p.configured().unwrap().addr(), "up:1");
        let p = resolve(&[("ALL_PROXY", "all:3")]).unwrap();
        assert_eq!(p.configured().unwrap().addr(), "all:3");
        let p = resolve(&[("HTTPS_PROXY", "http://up:1"), ("https_proxy", "")]).unwrap();
        assert_eq!(p.configured(), None, "empty lowercase disables");
        let p = resolve(&[("HTTP_PROXY", "http://h:1"), ("http_proxy", "h:2")]).unwrap();
        assert_eq!(p.configured(), None, "http_proxy is for http:// URLs");
    }

    #[test]
    fn urls() {
        let p = parse_url("http://us%40er:p%3Ass%23@proxy.corp:3128/", "x").unwrap();
        assert_eq!(
            (
                p.host.as_str(),
                p.port,
                p.user.as_deref(),
                p.password.as_deref()
            ),
            ("proxy.corp", 3128, Some("us@er"), Some("p:ss#"))
        );
        let p = parse_url("10.0.0.1", "x").unwrap();
        assert_eq!((p.host.as_str(), p.port, p.user), ("10.0.0.1", 80, None));
        let p = parse_url("http://[fd00::1]:8080", "x").unwrap();
        assert_eq!(
            (p.host.as_str(), p.addr()),
            ("fd00::1", "[fd00::1]:8080".into())
        );
        let p = parse_url("socks5h://u:p@127.0.0.1", "x").unwrap();
        assert_eq!(
            (p.kind, p.port, p.user.as_deref()),
            (Kind::Socks5 { remote_dns: true }, 1080, Some("u"))
        );
        let p = parse_url("SOCKS5://p:9050", "x").unwrap();
        assert_eq!((p.kind, p.port), (Kind::Socks5 { remote_dns: false }, 9050));
        for bad in [
            "https://p:1",
            "socks4://p:1",
            "socks4a://p:1",
            "ftp://p",
            "http://p:0",
            "http://p:x",
            "http://:3",
            "http://p/path",
        ] {
            assert!(
                matches!(parse_url(bad, "x"), Err(ProxyError::Config(_))),
                "{bad}"
            );
        }
        assert!(
            format!("{:?}", parse_url("http://u:secret@p:1", "x").unwrap())
                .find("secret")
                .is_none()
        );
    }

    #[test]
    fn gcloud_properties_first() {
        let mut g = GcloudConfig {
            proxy: ProxyProps {
                kind: Some("http".into()),
                address: Some("gp".into()),
                port: Some("3128".into()),
                username: Some("u".into()),
                password: Some("p%41".into()),
                rdns: None,
            },
            ..Default::default()
        };
        let p = Proxies::resolve(
            &env(&[("https_proxy", "envp:1"), ("no_proxy", "direct.example")]),
            &g,
        )
        .unwrap();
        let px = p.configured().unwrap();
        assert_eq!((px.addr().as_str(), px.from), ("gp:3128", GCLOUD));
        assert_eq!(
            px.password.as_deref(),
            Some("p%41"),
            "properties are not URLs"
        );
        assert!(p.for_host("direct.example").is_none());
        assert!(p.for_host("tunnel.cloudproxy.app").is_some());
        g.proxy.port = None;
        assert!(
            matches!(Proxies::resolve(&env(&[]), &g), Err(ProxyError::Config(m)) if m.contains("all or none"))
        );
        g.proxy.port = Some("1".into());
        g.proxy.kind = Some("socks5".into());
        let kind = |g: &GcloudConfig| {
            Proxies::resolve(&env(&[]), g)
                .unwrap()
                .configured()
                .unwrap()
                .kind
        };
        assert_eq!(
            kind(&g),
            Kind::Socks5 { remote_dns: true },
            "rdns by default"
        );
        g.proxy.rdns = Some("False".into());
        assert_eq!(kind(&g), Kind::Socks5 { remote_dns: false });
        g.proxy.kind = Some("socks4".into());
        assert!(
            matches!(Proxies::resolve(&env(&[]), &g), Err(ProxyError::Config(m)) if m.contains("SOCKS4"))
        );
    }
}
