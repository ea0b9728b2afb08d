//! gcloud's configuration: the active named configuration
//! (`CLOUDSDK_ACTIVE_CONFIG_NAME`, else the `active_config` file, else
//! `default`) in `CLOUDSDK_CONFIG` (default `~/.config/gcloud`), file
//! `configurations/config_NAME`, overridden by `CLOUDSDK_<SECTION>_<NAME>`
//! variables. Only the properties iap-ssh uses are read.
//!
//! The INI parsing is pure ([`parse_ini`]); [`GcloudConfig::load`] takes the
//! environment as a lookup function so tests need no process environment.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The properties iap-ssh takes from gcloud.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcloudConfig {
    pub project: Option<String>,
    pub account: Option<String>,
    pub zone: Option<String>,
    pub proxy: ProxyProps,
    /// `core/request_reason`, sent as `X-Goog-Request-Reason`.
    pub request_reason: Option<String>,
    /// `auth/impersonate_service_account`.
    pub impersonate: Option<String>,
    /// `core/universe_domain`.
    pub universe_domain: Option<String>,
    /// `core/custom_ca_certs_file`: only named in a hint (roots are added
    /// by `IAP_SSH_CA_FILE` alone).
    pub custom_ca_certs_file: Option<String>,
    /// `context_aware/*`.
    pub context_aware: ContextAware,
}

/// gcloud's `[context_aware]` section (certificate-based access).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextAware {
    pub use_client_certificate: Option<String>,
    pub certificate_config_file_path: Option<String>,
    pub auto_discovery_file_path: Option<String>,
}

/// gcloud's `[proxy]` section, as set (see `crate::net::proxy`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyProps {
    pub kind: Option<String>,
    pub address: Option<String>,
    pub port: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `proxy/rdns`: a SOCKS proxy resolves names (gcloud's default: yes).
    pub rdns: Option<String>,
}

/// `section/name` → value, from gcloud's INI-style properties file, read
/// as Python's `configparser` (which gcloud uses) reads it, checked against
/// gcloud 528: the key ends at the first `=` or `:`; keys are lower-cased,
/// section names kept exactly (`[Compute]`, `[ compute ]` are other
/// sections); `#` and `;` start comments only at the start of a line, so a
/// password may hold them; backslashes and quotes are literal; an indented
/// line continues the value before it; an empty value is unset. Where gcloud
/// refuses the whole file (a line without a delimiter, a duplicate) we skip
/// the line, later values winning. No INI crate reads it this way:
/// `configparser` cuts values at `#`/`;`, `rust-ini` turns `\t` into a tab.
pub fn parse_ini(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut section: Option<String> = None;
    // The key whose value an indented line continues.
    let mut last: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t'])
            && let Some(k) = &last
        {
            if let Some(v) = out.get_mut(k) {
                let v: &mut String = v;
                if !v.is_empty() {
                    v.push('\n');
                }
                v.push_str(line);
            }
            continue;
        }
        last = None;
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(s.to_string());
            continue;
        }
        let Some(at) = line.find(['=', ':']) else {
            continue;
        };
        let Some(section) = &section else {
            continue;
        };
        let key = format!("{section}/{}", line[..at].trim().to_lowercase());
        out.insert(key.clone(), line[at + 1..].trim().to_string());
        last = Some(key);
    }
    out.retain(|_, v| !v.is_empty());
    out
}

/// gcloud's configuration directory.
pub fn config_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(d) = env("CLOUDSDK_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    // gcloud itself uses ~/.config/gcloud (whether it follows
    // XDG_CONFIG_HOME is UNCONFIRMED, so HOME is the safe choice).
    dirs::home_dir().map(|h| h.join(".config").join("gcloud"))
}

/// Is `name` a configuration name gcloud would accept (and a safe file name)?
fn valid_config_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl GcloudConfig {
    pub fn load(env: &dyn Fn(&str) -> Option<String>) -> GcloudConfig {
        let mut props = BTreeMap::new();
        if let Some(dir) = config_dir(env) {
            let name = env("CLOUDSDK_ACTIVE_CONFIG_NAME")
                .or_else(|| {
                    std::fs::read_to_string(dir.join("active_config"))
                        .ok()
                        .map(|s| s.trim().to_string())
                })
                .filter(|n| valid_config_name(n))
                .unwrap_or_else(|| "default".into());
            let path = dir.join("configurations").join(format!("config_{name}"));
            if let Ok(text) = std::fs::read_to_string(&path) {
                props = parse_ini(&text);
            }
        }
        let get = |section: &str, name: &str| {
            let var = format!(
                "CLOUDSDK_{}_{}",
                section.to_ascii_uppercase(),
                name.to_ascii_uppercase()
            );
            env(&var)
                .or_else(|| props.get(&format!("{section}/{name}")).cloned())
                .filter(|v| !v.is_empty())
        };
        GcloudConfig {
            project: get("core", "project"),
            account: get("core", "account"),
            zone: get("compute", "zone"),
            request_reason: get("core", "request_reason"),
            impersonate: get("auth", "impersonate_service_account"),
            universe_domain: get("core", "universe_domain"),
            custom_ca_certs_file: get("core", "custom_ca_certs_file"),
            context_aware: ContextAware {
                use_client_certificate: get("context_aware", "use_client_certificate"),
                certificate_config_file_path: get("context_aware", "certificate_config_file_path"),
                auto_discovery_file_path: get("context_aware", "auto_discovery_file_path"),
            },
            proxy: ProxyProps {
                kind: get("proxy", "type"),
                address: get("proxy", "address"),
                port: get("proxy", "port"),
                username: get("proxy", "username"),
                password: get("proxy", "password"),
                rdns: get("proxy", "rdns"),
            },
        }
    }

    /// From the process environment.
    pub fn from_env() -> GcloudConfig {
        GcloudConfig::load(&|k| std::env::var(k).ok())
    }

    /// [`GcloudConfig::from_env`], read once per process (the proxy and
    /// request-reason settings both need it on the ProxyCommand path).
    pub fn process() -> &'static GcloudConfig {
        static C: std::sync::OnceLock<GcloudConfig> = std::sync::OnceLock::new();
        C.get_or_init(GcloudConfig::from_env)
    }
}

/// gcloud's `core/request_reason` (`CLOUDSDK_CORE_REQUEST_REASON`), as the
/// `X-Goog-Request-Reason` header value of every relay and REST request;
/// read once. A value with a control character is refused (gcloud sends it
/// verbatim, so a newline would inject headers). Other text goes as its
/// UTF-8 bytes (HTTP's obs-text), the same on both paths; gcloud's Python
/// client would send Latin-1 and fail on anything beyond it.
pub fn request_reason() -> Result<Option<&'static http::HeaderValue>, String> {
    static R: std::sync::OnceLock<Result<Option<http::HeaderValue>, String>> =
        std::sync::OnceLock::new();
    R.get_or_init(|| check_request_reason(GcloudConfig::process().request_reason.clone()))
        .as_ref()
        .map(Option::as_ref)
        .map_err(Clone::clone)
}

fn check_request_reason(r: Option<String>) -> Result<Option<http::HeaderValue>, String> {
    const BAD: &str = "gcloud's core/request_reason (CLOUDSDK_CORE_REQUEST_REASON) contains a control character and cannot be sent as a header: set it to one line of text";
    match r {
        Some(r) if r.chars().any(char::is_control) => Err(BAD.into()),
        // No control character left, so every byte is visible ASCII, a
        // space or part of a multi-byte character: all valid in a header.
        Some(r) => http::HeaderValue::from_bytes(r.as_bytes())
            .map(Some)
            .map_err(|_| BAD.into()),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini() {
        let p = parse_ini(
            "[core]\naccount = a@example.com\nproject=p-1\n# c\n; c\n\n[compute]\nzone = us-east1-b\nbad line\n",
        );
        assert_eq!(p["core/account"], "a@example.com");
        assert_eq!(p["core/project"], "p-1");
        assert_eq!(p["compute/zone"], "us-east1-b");
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn request_reason_is_one_line() {
        assert_eq!(check_request_reason(None), Ok(None));
        assert_eq!(
            check_request_reason(Some("ticket 42: fix é".into()))
                .unwrap()
                .unwrap()
                .as_bytes(),
            "ticket 42: fix é".as_bytes()
        );
        for bad in ["a\r\nX-Evil: 1", "a\nb", "tab\there", "nul\0"] {
            assert!(check_request_reason(Some(bad.into())).is_err(), "{bad:?}");
        }
    }

    /// What gcloud 528 itself reads from these lines (`gcloud config get`).
    #[test]
    fn ini_reads_as_gcloud_does() {
        let p = parse_ini(concat!(
            "[proxy]\npassword = pa#ss;word\naddress: http://h=1\nport = 3128 ; not a comment\n",
            "[core]\nProject = Bob\naccount = a\\tb \"q\"\n",
            "[compute]\nzone = z1\n  continued\nregion =\n",
            "[Compute]\nzone = upper\n[ compute ]\nzone = spaced\n",
        ));
        assert_eq!(p["proxy/password"], "pa#ss;word");
        assert_eq!(p["proxy/address"], "http://h=1");
        assert_eq!(p["proxy/port"], "3128 ; not a comment");
        assert_eq!(p["core/project"], "Bob");
        assert_eq!(p["core/account"], "a\\tb \"q\"");
        assert_eq!(p["compute/zone"], "z1\ncontinued");
        assert!(!p.contains_key("compute/region"), "empty is unset");
        assert_eq!(p["Compute/zone"], "upper");
        assert_eq!(p[" compute /zone"], "spaced");
    }

    #[test]
    fn active_config_and_overrides() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_path_buf();
        std::fs::create_dir_all(dir.join("configurations")).unwrap();
        std::fs::write(dir.join("active_config"), "work\n").unwrap();
        std::fs::write(
            dir.join("configurations/config_work"),
            "[core]\nproject = from-file\naccount = w@example.com\n[compute]\nzone = europe-west1-b\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("configurations/config_default"),
            "[core]\nproject = default-p\n",
        )
        .unwrap();
        let base = dir.display().to_string();
        let env = |extra: &'static [(&'static str, &'static str)]| {
            let base = base.clone();
            move |k: &str| {
                if k == "CLOUDSDK_CONFIG" {
                    return Some(base.clone());
                }
                extra
                    .iter()
                    .find(|(a, _)| *a == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let c = GcloudConfig::load(&env(&[]));
        assert_eq!(c.project.as_deref(), Some("from-file"));
        assert_eq!(c.zone.as_deref(), Some("europe-west1-b"));
        assert_eq!(c.account.as_deref(), Some("w@example.com"));
        let c = GcloudConfig::load(&env(&[("CLOUDSDK_ACTIVE_CONFIG_NAME", "default")]));
        assert_eq!(c.project.as_deref(), Some("default-p"));
        assert_eq!(c.zone, None);
        let c = GcloudConfig::load(&env(&[
            ("CLOUDSDK_CORE_PROJECT", "env-p"),
            ("CLOUDSDK_COMPUTE_ZONE", "asia-east1-a"),
        ]));
        assert_eq!(c.project.as_deref(), Some("env-p"));
        assert_eq!(c.zone.as_deref(), Some("asia-east1-a"));
        // A hostile configuration name never becomes a path.
        let c = GcloudConfig::load(&env(&[("CLOUDSDK_ACTIVE_CONFIG_NAME", "../../etc")]));
        assert_eq!(c.project.as_deref(), Some("default-p"));
    }
}
