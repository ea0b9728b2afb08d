//! A throw-away CA and a server certificate for 127.0.0.1, localhost and
//! Google's own service names (so a client can be sent here under the
//! real names, `IAP_SSH_CONNECT_TO`), trusted by iap-ssh
//! (`IAP_SSH_CA_FILE`) and gcloud (`CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE`);
//! and a client CA with one client certificate, for certificate-based
//! access (the server asks for a client certificate in those modes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Names the server certificate covers besides loopback: the default
/// hosts, their mTLS variants, and a test universe (`universe.test`).
pub const SERVICE_NAMES: &[&str] = &[
    "tunnel.cloudproxy.app",
    "mtls.tunnel.cloudproxy.app",
    "*.googleapis.com",
    "*.mtls.googleapis.com",
    "*.universe.test",
    "*.mtls.universe.test",
];

pub struct Certs {
    pub ca_pem: String,
    /// No client authentication.
    pub server: Arc<ServerConfig>,
    /// Asks for a client certificate from the client CA; none is allowed.
    pub server_asking: Arc<ServerConfig>,
    /// Requires one at the TLS handshake.
    pub server_requiring: Arc<ServerConfig>,
    /// A client certificate (PEM chain) and its PKCS#8 key, from the client CA.
    pub client_cert_pem: String,
    pub client_key_pem: String,
    /// The same key, PKCS#8-encrypted with [`CLIENT_KEY_PASSPHRASE`].
    pub client_key_encrypted_pem: String,
    /// One from a CA the server does not trust.
    pub rogue_cert_pem: String,
    pub rogue_key_pem: String,
}

fn client_ca(cn: &str) -> anyhow::Result<CertifiedIssuer<'static, KeyPair>> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name.push(DnType::CommonName, cn);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?)
}

/// The passphrase of [`Certs::client_key_encrypted_pem`].
pub const CLIENT_KEY_PASSPHRASE: &str = "correct horse battery staple";

fn client_leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
) -> anyhow::Result<(String, String, Vec<u8>)> {
    let mut leaf = CertificateParams::new(Vec::<String>::new())?;
    leaf.distinguished_name.push(DnType::CommonName, cn);
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate()?;
    let cert = leaf.signed_by(&key, ca)?;
    Ok((
        cert.pem() + &ca.pem(),
        key.serialize_pem(),
        key.serialize_der(),
    ))
}

pub fn generate() -> anyhow::Result<Certs> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "fake-gcp test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

    let mut leaf = CertificateParams::new(Vec::<String>::new())?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into()?),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ];
    for n in SERVICE_NAMES {
        leaf.subject_alt_names
            .push(SanType::DnsName((*n).try_into()?));
    }
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca)?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = || {
        ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()
    };
    let finish = |mut s: ServerConfig| {
        s.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(s)
    };
    let server = finish(
        builder()?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key.clone_key())?,
    );
    let cca = client_ca("fake-gcp client CA")?;
    let (client_cert_pem, client_key_pem, client_key_der) = client_leaf(&cca, "device-1")?;
    let client_key_encrypted_pem = {
        use pkcs8::der::Decode;
        let info = pkcs8::PrivateKeyInfo::from_der(&client_key_der)?;
        let doc = info.encrypt(rand::thread_rng(), CLIENT_KEY_PASSPHRASE)?;
        doc.to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)?
            .to_string()
    };
    let rogue = client_ca("some other CA")?;
    let (rogue_cert_pem, rogue_key_pem, _) = client_leaf(&rogue, "rogue-device")?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cca.der().clone())?;
    let roots = Arc::new(roots);
    let verifier = |optional: bool| {
        let b = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        );
        if optional {
            b.allow_unauthenticated().build()
        } else {
            b.build()
        }
    };
    let server_asking = finish(
        builder()?
            .with_client_cert_verifier(verifier(true)?)
            .with_single_cert(chain.clone(), key.clone_key())?,
    );
    let server_requiring = finish(
        builder()?
            .with_client_cert_verifier(verifier(false)?)
            .with_single_cert(chain, key)?,
    );
    Ok(Certs {
        ca_pem: ca.pem(),
        server,
        server_asking,
        server_requiring,
        client_cert_pem,
        client_key_pem,
        client_key_encrypted_pem,
        rogue_cert_pem,
        rogue_key_pem,
    })
}
