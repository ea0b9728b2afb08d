//! Certificate-based access (mTLS): whether a client certificate is in use
//! (gcloud's `context_aware/use_client_certificate`), where it comes from,
//! and presenting it on every TLS connection whose server asks for one.
//!
//! Sources, as gcloud picks them (`context_aware.py _ConfigImpl.Load`):
//! 1. `certificate_config.json` (`context_aware/certificate_config_file_path`,
//!    else in gcloud's configuration directory): its `cert_configs.workload`
//!    `cert_path`/`key_path` PEM files (gcloud 528 attaches nothing on this
//!    path; we present the workload certificate);
//! 2. else Endpoint Verification's `~/.secureConnect/context_aware_metadata.json`
//!    (`context_aware/auto_discovery_file_path`): its `cert_provider_command`
//!    is run and its output read (one CERTIFICATE span, one PRIVATE KEY);
//!    the key stays in memory (gcloud writes it to `caa_cert.pem`).
//!
//! The parsing of files and helper output is pure; loading runs at most
//! once per process, and only when the setting is on.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::gcloud::GcloudConfig;

#[derive(Debug, Clone, thiserror::Error)]
pub enum MtlsError {
    #[error("certificate-based access: {0}")]
    Config(String),
    #[error("certificate-based access: the certificate provider command {cmd} {why}")]
    Provider { cmd: String, why: String },
}

impl MtlsError {
    pub fn fix(&self) -> &'static str {
        match self {
            MtlsError::Config(_) => {
                "fix the certificate configuration (`gcloud topic client-certificate`), or turn it off with `gcloud config unset context_aware/use_client_certificate`"
            }
            MtlsError::Provider { .. } => {
                "check that Endpoint Verification is installed and signed in (the helper in ~/.secureConnect/context_aware_metadata.json must print a certificate and key)"
            }
        }
    }
}

/// gcloud's boolean property parsing (`true`/`1`/`yes`/`on`).
fn truthy(v: Option<&str>) -> bool {
    v.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "true" | "1" | "yes" | "on"
        )
    })
}

/// Is certificate-based access on for this process?
pub fn enabled() -> bool {
    truthy(
        GcloudConfig::process()
            .context_aware
            .use_client_certificate
            .as_deref(),
    )
}

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// PEM files named by `certificate_config.json`.
    Workload { cert: PathBuf, key: PathBuf },
    /// `cert_provider_command` of `context_aware_metadata.json`.
    Provider { argv: Vec<String> },
}

/// Picks the source as gcloud does (see the module doc). `config_dir` is
/// gcloud's configuration directory, `home` the user's.
pub fn source(
    g: &GcloudConfig,
    config_dir: Option<&Path>,
    home: Option<&Path>,
) -> Result<CertSource, MtlsError> {
    let ecp = g
        .context_aware
        .certificate_config_file_path
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| config_dir.map(|d| d.join("certificate_config.json")));
    if let Some(p) = ecp.filter(|p| p.exists()) {
        return workload_paths(&p);
    }
    let meta = g
        .context_aware
        .auto_discovery_file_path
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".secureConnect/context_aware_metadata.json")));
    if let Some(p) = meta.filter(|p| p.exists()) {
        return provider_argv(&p);
    }
    Err(MtlsError::Config(
        "context_aware/use_client_certificate is on, but there is no certificate_config.json and no Endpoint Verification (~/.secureConnect/context_aware_metadata.json)".into(),
    ))
}

fn read_json(p: &Path) -> Result<serde_json::Value, MtlsError> {
    let data = std::fs::read(p)
        .map_err(|e| MtlsError::Config(format!("cannot read {}: {e}", p.display())))?;
    serde_json::from_slice(&data)
        .map_err(|e| MtlsError::Config(format!("{} is not valid JSON: {e}", p.display())))
}

/// `cert_configs.workload.{cert_path,key_path}` of a certificate config.
pub fn workload_paths(p: &Path) -> Result<CertSource, MtlsError> {
    let v = read_json(p)?;
    let w = &v["cert_configs"]["workload"];
    match (w["cert_path"].as_str(), w["key_path"].as_str()) {
        (Some(c), Some(k)) if !c.is_empty() && !k.is_empty() => Ok(CertSource::Workload {
            cert: PathBuf::from(c),
            key: PathBuf::from(k),
        }),
        _ => {
            let kinds: Vec<&str> = v["cert_configs"]
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            Err(MtlsError::Config(format!(
                "{} has no cert_configs.workload cert_path/key_path (it has: {}); iap-ssh reads certificates from files, not from the macOS keychain, the Windows store or PKCS#11",
                p.display(),
                if kinds.is_empty() {
                    "nothing".into()
                } else {
                    kinds.join(", ")
                }
            )))
        }
    }
}

/// `cert_provider_command` (an argv list) of Endpoint Verification's file.
pub fn provider_argv(p: &Path) -> Result<CertSource, MtlsError> {
    let v = read_json(p)?;
    let argv: Option<Vec<String>> = v["cert_provider_command"].as_array().map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    });
    match argv {
        Some(a)
            if !a.is_empty()
                && a.len() == v["cert_provider_command"].as_array().map_or(0, Vec::len) =>
        {
            Ok(CertSource::Provider { argv: a })
        }
        _ => Err(MtlsError::Config(format!(
            "{} has no cert_provider_command list",
            p.display()
        ))),
    }
}

/// A certificate chain and its key.
pub struct ClientCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// The one span from the first `-----BEGIN {label}` to the last
/// `-----END {label}-----` (a chain matches as one span, as gcloud's
/// greedy regular expression does).
fn span<'a>(text: &'a str, begin: &str, end: &str) -> Option<&'a str> {
    let a = text.find(begin)?;
    let b = text.rfind(end)? + end.len();
    (b > a).then(|| &text[a..b])
}

/// What a certificate provider printed.
pub enum ProviderOutput {
    Plain(ClientCert),
    /// An encrypted PKCS#8 key: run again with `--with_passphrase` unless
    /// the passphrase came along.
    Encrypted {
        chain: Vec<CertificateDer<'static>>,
        key_pem: String,
        passphrase: Option<String>,
    },
}

/// Reads a certificate provider's output: the CERTIFICATE span, the
/// PRIVATE KEY block (plain, or `ENCRYPTED PRIVATE KEY` with an optional
/// `PASSPHRASE` block), as gcloud's `_mtls_helper` reads it.
pub fn parse_provider_output(out: &str) -> Result<ProviderOutput, String> {
    let certs = span(
        out,
        "-----BEGIN CERTIFICATE-----",
        "-----END CERTIFICATE-----",
    )
    .ok_or("printed no CERTIFICATE")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(certs.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("printed a bad CERTIFICATE: {e}"))?;
    if chain.is_empty() {
        return Err("printed no CERTIFICATE".into());
    }
    if out.contains("Proc-Type: 4,ENCRYPTED") {
        return Err("printed a legacy OpenSSL-encrypted key; only PKCS#8 (ENCRYPTED PRIVATE KEY) is supported".into());
    }
    if let Some(key) = span(
        out,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        "-----END ENCRYPTED PRIVATE KEY-----",
    ) {
        let passphrase = span(
            out,
            "-----BEGIN PASSPHRASE-----",
            "-----END PASSPHRASE-----",
        )
        .map(|p| {
            p.trim_start_matches("-----BEGIN PASSPHRASE-----")
                .trim_end_matches("-----END PASSPHRASE-----")
                .trim()
                .to_string()
        });
        return Ok(ProviderOutput::Encrypted {
            chain,
            key_pem: key.to_string(),
            passphrase,
        });
    }
    let key = PrivateKeyDer::from_pem_slice(out.as_bytes())
        .map_err(|e| format!("printed no usable PRIVATE KEY: {e}"))?;
    Ok(ProviderOutput::Plain(ClientCert { chain, key }))
}

/// Decrypts a PKCS#8 `ENCRYPTED PRIVATE KEY` (PBES2) with `passphrase`.
pub fn decrypt_key(key_pem: &str, passphrase: &str) -> Result<PrivateKeyDer<'static>, String> {
    use pkcs8::der::Decode;
    let (label, doc) = pkcs8::SecretDocument::from_pem(key_pem)
        .map_err(|e| format!("printed a bad ENCRYPTED PRIVATE KEY: {e}"))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(format!(
            "printed a `{label}` block where an encrypted key was expected"
        ));
    }
    let enc = pkcs8::EncryptedPrivateKeyInfo::from_der(doc.as_bytes())
        .map_err(|e| format!("printed a bad ENCRYPTED PRIVATE KEY: {e}"))?;
    let plain = enc
        .decrypt(passphrase.as_bytes())
        .map_err(|_| "printed a key its PASSPHRASE does not decrypt".to_string())?;
    Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()))
}

/// Runs the helper with `extra` arguments; its standard output.
fn run_provider(argv: &[String], extra: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot be run: {e}"))?;
    if !out.status.success() {
        return Err(match out.status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".into(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Loads the certificate from its source (runs the helper).
pub fn load(src: &CertSource) -> Result<ClientCert, MtlsError> {
    match src {
        CertSource::Workload { cert, key } => {
            let bad = |p: &Path, e: String| MtlsError::Config(format!("{}: {e}", p.display()));
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| bad(cert, e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad(cert, e.to_string()))?;
            if chain.is_empty() {
                return Err(bad(cert, "holds no CERTIFICATE".into()));
            }
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e.to_string()))?;
            Ok(ClientCert { chain, key })
        }
        CertSource::Provider { argv } => {
            let cmd = crate::error::printable(&argv.join(" "));
            let err = |why: String| MtlsError::Provider {
                cmd: cmd.clone(),
                why,
            };
            // Plain first, as gcloud; an encrypted key without its
            // passphrase: again with `--with_passphrase`.
            let mut out =
                parse_provider_output(&run_provider(argv, &[]).map_err(err)?).map_err(err)?;
            if let ProviderOutput::Encrypted {
                passphrase: None, ..
            } = out
            {
                out = parse_provider_output(
                    &run_provider(argv, &["--with_passphrase"]).map_err(err)?,
                )
                .map_err(err)?;
            }
            match out {
                ProviderOutput::Plain(c) => Ok(c),
                ProviderOutput::Encrypted {
                    chain,
                    key_pem,
                    passphrase: Some(p),
                } => Ok(ClientCert {
                    chain,
                    key: decrypt_key(&key_pem, &p).map_err(err)?,
                }),
                ProviderOutput::Encrypted { .. } => Err(err(
                    "printed an encrypted key but no PASSPHRASE, even with --with_passphrase"
                        .into(),
                )),
            }
        }
    }
}

/// Presents the certificate (if any) when a server asks, and remembers
/// that one asked.
#[derive(Debug)]
struct Resolver {
    key: Option<Arc<CertifiedKey>>,
    asked: &'static AtomicBool,
}

impl ResolvesClientCert for Resolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        // Asked even without a certificate, so we learn that the server
        // wanted one (rustls then sends an empty Certificate message,
        // as with no client authentication).
        true
    }
}

static RELAY_ASKED: AtomicBool = AtomicBool::new(false);
static REST_ASKED: AtomicBool = AtomicBool::new(false);

/// The process's certificate: None when certificate-based access is off.
/// Loaded at most once.
pub fn process_cert() -> Result<Option<Arc<CertifiedKey>>, MtlsError> {
    static C: OnceLock<Result<Option<Arc<CertifiedKey>>, MtlsError>> = OnceLock::new();
    C.get_or_init(|| {
        if !enabled() {
            return Ok(None);
        }
        let g = GcloudConfig::process();
        let dir = crate::gcloud::config_dir(&|k| std::env::var(k).ok());
        let src = source(g, dir.as_deref(), dirs::home_dir().as_deref())?;
        tracing::debug!("client certificate from {src:?}");
        let c = load(&src)?;
        let provider = rustls::crypto::ring::default_provider();
        let ck = CertifiedKey::from_der(c.chain, c.key, &provider).map_err(|e| {
            MtlsError::Config(format!(
                "the certificate and key do not match or are unusable: {e}"
            ))
        })?;
        Ok(Some(Arc::new(ck)))
    })
    .clone()
}

/// `base` with the client certificate resolver for the relay (`relay`)
/// or the REST APIs.
pub fn with_client_cert(
    base: &rustls::ClientConfig,
    relay: bool,
) -> Result<Arc<rustls::ClientConfig>, MtlsError> {
    let mut c = base.clone();
    c.client_auth_cert_resolver = Arc::new(Resolver {
        key: process_cert()?,
        asked: if relay { &RELAY_ASKED } else { &REST_ASKED },
    });
    Ok(Arc::new(c))
}

/// Did the relay ask for a client certificate while we had none? (Then a
/// close 4033 is about the certificate policy, not IAM.)
pub fn relay_wanted_missing_cert() -> bool {
    RELAY_ASKED.load(Ordering::Relaxed) && !matches!(process_cert(), Ok(Some(_)))
}

/// Did the relay ask for a certificate, and we presented one?
pub fn relay_got_cert() -> bool {
    RELAY_ASKED.load(Ordering::Relaxed) && matches!(process_cert(), Ok(Some(_)))
}

/// The fix for "no valid client certificate".
pub const FIX_NO_CERT: &str = "this access policy requires a device certificate: install Endpoint Verification (or write a certificate_config.json with a workload certificate) and run `gcloud config set context_aware/use_client_certificate true`";

/// The fix for a certificate the relay refused.
pub const FIX_BAD_CERT: &str = "use a device certificate issued by a CA the access policy trusts (check Endpoint Verification, or the cert_path in certificate_config.json) and that it has not expired";

impl From<MtlsError> for crate::error::UserError {
    fn from(e: MtlsError) -> Self {
        crate::error::UserError::new(crate::error::exit::USAGE, e.to_string()).with_fix(e.fix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_selection() {
        let d = tempfile::tempdir().unwrap();
        let g = GcloudConfig::default();
        let cfg = d.path().join("gcloud");
        let home = d.path().join("home");
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::create_dir_all(home.join(".secureConnect")).unwrap();
        let e = source(&g, Some(&cfg), Some(&home)).unwrap_err();
        assert!(e.to_string().contains("no certificate_config.json"), "{e}");
        std::fs::write(
            home.join(".secureConnect/context_aware_metadata.json"),
            r#"{"cert_provider_command":["/opt/ev/helper","--print_certificate"]}"#,
        )
        .unwrap();
        assert_eq!(
            source(&g, Some(&cfg), Some(&home)).unwrap(),
            CertSource::Provider {
                argv: vec!["/opt/ev/helper".into(), "--print_certificate".into()]
            }
        );
        // certificate_config.json wins when it exists.
        std::fs::write(
            cfg.join("certificate_config.json"),
            r#"{"cert_configs":{"workload":{"cert_path":"/c.pem","key_path":"/k.pem"}},"libs":{}}"#,
        )
        .unwrap();
        assert_eq!(
            source(&g, Some(&cfg), Some(&home)).unwrap(),
            CertSource::Workload {
                cert: "/c.pem".into(),
                key: "/k.pem".into()
            }
        );
        std::fs::write(
            cfg.join("certificate_config.json"),
            r#"{"cert_configs":{"pkcs11":{"module":"/x.so"}}}"#,
        )
        .unwrap();
        let e = source(&g, Some(&cfg), Some(&home)).unwrap_err().to_string();
        assert!(e.contains("it has: pkcs11") && e.contains("PKCS#11"), "{e}");
        std::fs::write(cfg.join("certificate_config.json"), "{").unwrap();
        let e = source(&g, Some(&cfg), Some(&home)).unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn provider_output() {
        let e = parse_provider_output("nothing").err().unwrap();
        assert!(e.contains("no CERTIFICATE"), "{e}");
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let enc =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let out = parse_provider_output(&format!("{cert}{enc}")).ok().unwrap();
        assert!(matches!(
            out,
            ProviderOutput::Encrypted {
                passphrase: None,
                ..
            }
        ));
        let out = parse_provider_output(&format!(
            "{cert}{enc}-----BEGIN PASSPHRASE-----\n pw \n-----END PASSPHRASE-----\n"
        ))
        .ok()
        .unwrap();
        assert!(matches!(out, ProviderOutput::Encrypted { passphrase: Some(p), .. } if p == "pw"));
        let e = parse_provider_output(&format!("{cert}Proc-Type: 4,ENCRYPTED\n"))
            .err()
            .unwrap();
        assert!(e.contains("legacy"), "{e}");
        let e = decrypt_key(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "x",
        )
        .err()
        .unwrap();
        assert!(e.contains("bad ENCRYPTED PRIVATE KEY"), "{e}");
        assert!(
            truthy(Some("True")) && truthy(Some("1")) && !truthy(Some("false")) && !truthy(None)
        );
    }
}
