//! The Windows guest agent's account manager (admin-windows-putty §3.4,
//! §3.5) for instances whose boot disk has the `WINDOWS` feature: after a
//! metadata change (and the guest delay) it reads the instance's
//! `windows-keys` lines (field names matched case-insensitively, as Go's
//! encoding/json does), skips expired, incomplete and already-seen ones
//! (by user, modulus and expireOn), creates or resets the account with a
//! fresh password, and writes one JSON reply line to serial port 4: the
//! password encrypted with RSA-OAEP (SHA-1 unless the request names
//! `sha256`/`sha512`, which is then echoed), or an `errorMessage`. Never
//! for project metadata; nothing at all with `disable-account-manager`.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use rand::Rng;
use serde_json::{Value, json};

use crate::state::State;

/// An instance: (project, zone, name).
pub type VmKey = (String, String, String);

/// A request the agent has handled: (user, modulus, expireOn).
type Handled = (String, String, String);

/// Serial port 4 and the agent's memory, per instance.
#[derive(Debug, Default)]
pub struct Agents {
    pub port4: BTreeMap<VmKey, String>,
    seen: BTreeMap<VmKey, Vec<Handled>>,
    /// Passwords set, per instance and user (for tests).
    pub passwords: BTreeMap<(String, String, String, String), String>,
}

/// A field of a JSON object, its name matched case-insensitively.
fn field<'a>(o: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a str> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

fn password() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789~!@#$%^&*_-+=|\\(){}[]:;<>,.?/";
    let mut r = rand::thread_rng();
    loop {
        let p: String = (0..15)
            .map(|_| CHARS[r.gen_range(0..CHARS.len())] as char)
            .collect();
        let classes = [
            p.bytes().any(|b| b.is_ascii_lowercase()),
            p.bytes().any(|b| b.is_ascii_uppercase()),
            p.bytes().any(|b| b.is_ascii_digit()),
            p.bytes().any(|b| !b.is_ascii_alphanumeric()),
        ];
        if classes.iter().filter(|c| **c).count() >= 3 {
            return p;
        }
    }
}

fn encrypt(modulus: &str, exponent: &str, hash: &str, plain: &[u8]) -> Result<String, String> {
    let e = base64::engine::general_purpose::STANDARD;
    let n = rsa::BigUint::from_bytes_be(&e.decode(modulus).map_err(|x| x.to_string())?);
    let x = rsa::BigUint::from_bytes_be(&e.decode(exponent).map_err(|x| x.to_string())?);
    let key = rsa::RsaPublicKey::new(n, x).map_err(|x| x.to_string())?;
    let mut rng = rand::thread_rng();
    let ct = match hash {
        "sha256" => key.encrypt(&mut rng, rsa::Oaep::new::<sha2::Sha256>(), plain),
        "sha512" => key.encrypt(&mut rng, rsa::Oaep::new::<sha2::Sha512>(), plain),
        _ => key.encrypt(&mut rng, rsa::Oaep::new::<sha1::Sha1>(), plain),
    }
    .map_err(|x| x.to_string())?;
    Ok(e.encode(ct))
}

/// Processes the instance's `windows-keys` (after the guest delay).
pub fn schedule(state: Arc<State>, key: (String, String, String)) {
    let delay = state.config.guest_delay_ms;
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(delay));
        process(&state, &key);
    });
}

fn process(state: &State, key: &(String, String, String)) {
    let Some(inst) = state.config.find(&key.0, &key.1, &key.2) else {
        return;
    };
    if !inst.os_features.iter().any(|f| f == "WINDOWS") {
        return;
    }
    let (value, disabled) = {
        let c = state.cloud.lock().unwrap();
        let Some((meta, _)) = c.instances.get(key) else {
            return;
        };
        let project_off = c
            .projects
            .get(&key.0)
            .and_then(|m| m.get("disable-account-manager"))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let off = meta
            .get("disable-account-manager")
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(project_off);
        (meta.get("windows-keys").unwrap_or("").to_string(), off)
    };
    if disabled {
        state.event(format!(
            "windows agent: account manager disabled on {}",
            key.2
        ));
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut agents = state.windows.lock().unwrap();
    for line in value.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Ok(Value::Object(o)) = serde_json::from_str::<Value>(line) else {
            state.event("windows agent: unparsable windows-keys line skipped");
            continue;
        };
        let (Some(user), Some(modulus), Some(exponent), Some(expire)) = (
            field(&o, "userName"),
            field(&o, "modulus"),
            field(&o, "exponent"),
            field(&o, "expireOn"),
        ) else {
            continue;
        };
        if user.is_empty() || modulus.is_empty() || exponent.is_empty() {
            continue;
        }
        match crate::cel::rfc3339(expire) {
            Some(t) if t > now => {}
            _ => continue,
        }
        let id = (user.to_string(), modulus.to_string(), expire.to_string());
        let seen = agents.seen.entry(key.clone()).or_default();
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        let hash = field(&o, "hashFunction").map(str::to_string);
        let mut reply = serde_json::Map::new();
        if let Some(msg) = state.config.windows_agent_errors.get(user) {
            reply.insert("errorMessage".into(), json!(msg));
            reply.insert("userName".into(), json!(user));
        } else if user.len() > 20 {
            reply.insert(
                "errorMessage".into(),
                json!(format!("error running createUser: error creating user: The user name or group name parameter is invalid ({user})")),
            );
            reply.insert("userName".into(), json!(user));
        } else {
            let p = password();
            match encrypt(
                modulus,
                exponent,
                hash.as_deref().unwrap_or("sha1"),
                p.as_bytes(),
            ) {
                Ok(ct) => {
                    reply.insert("encryptedPassword".into(), json!(ct));
                    reply.insert("userName".into(), json!(user));
                    reply.insert("passwordFound".into(), json!(true));
                    agents.passwords.insert(
                        (
                            key.0.clone(),
                            key.1.clone(),
                            key.2.clone(),
                            user.to_string(),
                        ),
                        p,
                    );
                }
                Err(e) => {
                    reply.insert(
                        "errorMessage".into(),
                        json!(format!("error encrypting password: {e}")),
                    );
                    reply.insert("userName".into(), json!(user));
                }
            }
        }
        reply.insert("exponent".into(), json!(exponent));
        reply.insert("modulus".into(), json!(modulus));
        if let Some(h) = hash {
            reply.insert("hashFunction".into(), json!(h));
        }
        let out = agents.port4.entry(key.clone()).or_default();
        out.push_str(&Value::Object(reply).to_string());
        out.push('\n');
        state.event(format!("windows agent: answered {user} on {}", key.2));
    }
}

/// `getSerialPortOutput`: the buffer from `start` (absolute offset; none or
/// 0 = the oldest byte kept; negative = the last N bytes), `next` = its end.
pub fn serial_output(
    state: &State,
    key: &(String, String, String),
    port: u32,
    start: Option<i64>,
) -> Value {
    let agents = state.windows.lock().unwrap();
    let buf = if port == 4 {
        agents.port4.get(key).map(String::as_str).unwrap_or("")
    } else {
        ""
    };
    let len = buf.len() as i64;
    let from = match start {
        None => 0,
        Some(s) if s < 0 => (len + s).max(0),
        Some(s) => s.min(len),
    };
    json!({
        "kind": "compute#serialPortOutput",
        "contents": &buf[from as usize..],
        "start": from.to_string(),
        "next": len.to_string(),
    })
}
