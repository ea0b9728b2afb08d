//! OAuth token endpoints: the refresh-token grant (authorized_user
//! credentials), the JWT-bearer grant (service-account keys, RS256 signature
//! checked) and the GCE metadata server's token URL.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::signature::Verifier;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

use crate::state::{State, random_hex};

/// The credentials the fake hands out (as files) and accepts.
pub struct Identities {
    pub sa_email: String,
    pub sa_key_id: String,
    pub sa_private_pem: String,
    pub sa_public: RsaPublicKey,
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
}

/// RSA key generation is slow; one key per process is enough.
fn sa_keypair() -> &'static (String, RsaPublicKey) {
    static K: OnceLock<(String, RsaPublicKey)> = OnceLock::new();
    K.get_or_init(|| {
        let k = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key generation");
        let pem = k
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 PEM")
            .to_string();
        (pem, RsaPublicKey::from(&k))
    })
}

impl Identities {
    pub fn generate() -> Self {
        let (pem, public) = sa_keypair().clone();
        Identities {
            sa_email: "tunnel-sa@fake-project.iam.gserviceaccount.com".into(),
            sa_key_id: random_hex(20),
            sa_private_pem: pem,
            sa_public: public,
            client_id: format!("{}.apps.googleusercontent.com", random_hex(8)),
            client_secret: random_hex(12),
            refresh_token: format!("1//fake-refresh-{}", random_hex(16)),
        }
    }

    pub fn service_account_json(&self, token_uri: &str) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": "fake-project",
            "private_key_id": self.sa_key_id,
            "private_key": self.sa_private_pem,
            "client_email": self.sa_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
        })
        .to_string()
    }

    pub fn authorized_user_json(&self) -> String {
        serde_json::json!({
            "type": "authorized_user",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
            "account": "",
            "quota_project_id": "fake-project",
            "universe_domain": "googleapis.com",
        })
        .to_string()
    }
}

/// A JSON reply: status and body.
pub type Reply = (u16, String);

fn error(status: u16, code: &str, desc: &str) -> Reply {
    (
        status,
        serde_json::json!({"error": code, "error_description": desc}).to_string(),
    )
}

fn token_reply(state: &State) -> Reply {
    let t = state.mint_token();
    (
        200,
        serde_json::json!({
            "access_token": t,
            "expires_in": state.config.token_lifetime_secs,
            "token_type": "Bearer",
        })
        .to_string(),
    )
}

fn verify_jwt(state: &State, assertion: &str) -> Result<(), String> {
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 {
        return Err("assertion is not a JWT".into());
    }
    let dec = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|e| format!("bad base64: {e}"))
    };
    let header: serde_json::Value =
        serde_json::from_slice(&dec(parts[0])?).map_err(|e| format!("bad header: {e}"))?;
    let claims: serde_json::Value =
        serde_json::from_slice(&dec(parts[1])?).map_err(|e| format!("bad claims: {e}"))?;
    if header["alg"] != "RS256" {
        return Err("alg must be RS256".into());
    }
    let sig = Signature::try_from(dec(parts[2])?.as_slice()).map_err(|e| e.to_string())?;
    VerifyingKey::<Sha256>::new(state.identities.sa_public.clone())
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .map_err(|_| "invalid JWT signature".to_string())?;
    if claims["iss"] != state.identities.sa_email.as_str() {
        return Err("unknown issuer".into());
    }
    let aud = claims["aud"].as_str().unwrap_or_default();
    if !aud.ends_with("/token") {
        return Err(format!("unexpected audience {aud}"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().unwrap_or(0);
    let iat = claims["iat"].as_u64().unwrap_or(0);
    if exp <= now || iat > now + 300 || exp > iat + 3600 {
        return Err("assertion expired or not yet valid".into());
    }
    if !claims["scope"]
        .as_str()
        .unwrap_or_default()
        .contains("https://www.googleapis.com/auth/cloud-platform")
    {
        return Err("scope cloud-platform missing".into());
    }
    Ok(())
}

/// `POST /token` (and `/o/oauth2/token`), form-encoded.
pub fn token_endpoint(state: &State, body: &[u8]) -> Reply {
    state
        .stats
        .token_requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    match get("grant_type") {
        "refresh_token" => {
            let id = &state.identities;
            if get("client_id") != id.client_id || get("client_secret") != id.client_secret {
                state.event("token refresh_token invalid_client");
                return error(401, "invalid_client", "The OAuth client was not found.");
            }
            if get("refresh_token") != id.refresh_token {
                state.event("token refresh_token invalid_grant");
                return error(400, "invalid_grant", "Token has been expired or revoked.");
            }
            if state.config.faults.token_caa_denied {
                // What Google answers when Context Aware Access blocks the
                // device (the strings gcloud matches; status UNCONFIRMED).
                state.event("token refresh_token access_denied (CAA)");
                return error(400, "access_denied", "Account restricted");
            }
            state.event("token refresh_token ok");
            token_reply(state)
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            match verify_jwt(state, get("assertion")) {
                Ok(()) => {
                    state.event("token jwt-bearer ok");
                    token_reply(state)
                }
                Err(e) => {
                    state.event(format!("token jwt-bearer invalid_grant: {e}"));
                    error(400, "invalid_grant", &e)
                }
            }
        }
        other => error(
            400,
            "unsupported_grant_type",
            &format!("grant_type {other:?}"),
        ),
    }
}

/// `GET /computeMetadata/v1/instance/service-accounts/default/token`.
pub fn metadata_token(state: &State, flavor: Option<&str>) -> Reply {
    state
        .stats
        .metadata_token_requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if flavor != Some("Google") {
        return (403, "Missing Metadata-Flavor:Google header.".into());
    }
    state.event("metadata token ok");
    token_reply(state)
}
