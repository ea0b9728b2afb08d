//! The signed JWT assertion of the service-account grant (RFC 7523), RS256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

/// Builds `header.claims.signature` for `iss` → `aud` with `scope`, valid
/// for one hour from `now` (unix seconds).
pub fn assertion(
    private_key_pem: &str,
    key_id: Option<&str>,
    iss: &str,
    aud: &str,
    scope: &str,
    now: u64,
) -> Result<String, String> {
    let der = PrivatePkcs8KeyDer::from_pem_slice(private_key_pem.as_bytes())
        .map_err(|e| format!("private_key is not a PKCS#8 PEM key: {e}"))?;
    let key = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|e| format!("private_key is not a usable RSA key: {e}"))?;
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = key_id {
        header["kid"] = kid.into();
    }
    let claims = serde_json::json!({
        "iss": iss,
        "scope": scope,
        "aud": aud,
        "iat": now,
        "exp": now + 3600,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| "signing the JWT assertion failed".to_string())?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_pkcs8_keys() {
        let e = assertion(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            None,
            "a",
            "b",
            "c",
            0,
        )
        .unwrap_err();
        assert!(e.contains("PKCS#8"), "{e}");
    }
}
