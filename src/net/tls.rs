//! TLS trust for every connection iap-ssh makes: the system roots plus the
//! extra PEM roots of `IAP_SSH_CA_FILE`. Always verified; rustls with the
//! ring provider only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("CA file {0} holds no PEM certificate")]
    CaFileEmpty(PathBuf),
    #[error(
        "no trusted root certificates: the system store is empty and IAP_SSH_CA_FILE is not set"
    )]
    NoRoots,
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

fn read_ca_file(path: &Path, roots: &mut RootCertStore) -> Result<(), TlsError> {
    let err = |reason: String| TlsError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let data = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(&data) {
        let cert = cert.map_err(|e| err(format!("bad PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| err(format!("unusable certificate: {e}")))?;
        n += 1;
    }
    if n == 0 {
        return Err(TlsError::CaFileEmpty(path.to_path_buf()));
    }
    Ok(())
}

/// Builds the client configuration: system roots + `ca_file` roots.
pub fn client_config(ca_file: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(p) = ca_file {
        read_ca_file(p, &mut roots)?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // No ALPN here: hyper-rustls sets its own (and refuses a preset one);
    // the relay WebSocket needs none.
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| TlsError::Setup(e.to_string()))
}

/// Does an error's text say the server's certificate chain was not
/// trusted (rustls' `invalid peer certificate: UnknownIssuer`)?
pub fn untrusted(reason: &str) -> bool {
    reason.contains("UnknownIssuer") || reason.contains("invalid peer certificate")
}

/// The fix for a server certificate we do not trust: usually a
/// TLS-inspecting proxy, whose root gcloud may already be told about.
pub fn untrusted_fix() -> String {
    let base = "behind a TLS-inspecting proxy, set IAP_SSH_CA_FILE to its root CA (PEM)";
    match &crate::gcloud::GcloudConfig::process().custom_ca_certs_file {
        Some(p) => format!(
            "{base}; gcloud trusts core/custom_ca_certs_file, so: IAP_SSH_CA_FILE={} (iap-ssh adds roots from this variable only)",
            crate::error::printable(p)
        ),
        None => base.into(),
    }
}

/// `IAP_SSH_CA_FILE` from the environment, if set and non-empty.
pub fn ca_file_from_env() -> Option<PathBuf> {
    std::env::var_os("IAP_SSH_CA_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Shared client configuration from the environment.
pub fn from_env() -> Result<Arc<ClientConfig>, TlsError> {
    client_config(ca_file_from_env().as_deref()).map(Arc::new)
}

impl From<TlsError> for crate::error::UserError {
    fn from(e: TlsError) -> Self {
        crate::error::UserError::new(crate::error::exit::OTHER, e.to_string()).with_fix(
            "set IAP_SSH_CA_FILE to a readable PEM file of extra root certificates, or unset it",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_ca_files_are_clear_errors() {
        let e = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.pem");
        std::fs::write(&p, "not a certificate\n").unwrap();
        let e = client_config(Some(&p)).unwrap_err();
        assert!(matches!(e, TlsError::CaFileEmpty(_)), "{e}");
    }
}
