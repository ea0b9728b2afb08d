//! The OS Login API (`/oslogin/v1/…`): loginProfile, importSshPublicKey and
//! the per-key GET / PATCH / DELETE, for the one principal the fake's tokens
//! belong to; plus the OAuth `tokeninfo` endpoint that tells a client who
//! that principal is.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::cloud::{LoginKey, key_fingerprint, now_usec};
use crate::compute::{error, json_body};
use crate::oauth::Reply;
use crate::state::State;

fn profile_json(state: &State, email: &str, project: Option<&str>) -> Value {
    let c = state.cloud.lock().unwrap();
    let now = now_usec();
    let empty = crate::cloud::Profile::default();
    let profile = c.profiles.get(email).unwrap_or(&empty);
    let keys: serde_json::Map<String, Value> = profile
        .keys
        .iter()
        // Expired keys disappear from the profile (UNCONFIRMED, per spec).
        .filter(|(_, k)| k.expiration_usec.is_none_or(|e| e > now))
        .map(|(fp, k)| {
            let mut v = json!({"key": k.key, "fingerprint": fp,
                "name": format!("users/{email}/sshPublicKeys/{fp}")});
            if let Some(e) = k.expiration_usec {
                v["expirationTimeUsec"] = json!(e.to_string());
            }
            (fp.clone(), v)
        })
        .collect();
    let id = state
        .config
        .service_account(email)
        .map_or("103245889572338520153", |s| s.unique_id.as_str());
    let mut v = json!({"name": id});
    // POSIX accounts are per project: the one for `projectId` (once any
    // import created the user; per-project names from the configuration).
    if profile.posix {
        let account = project.unwrap_or("fake-project");
        let user = state.config.posix_username_in(email, account);
        v["posixAccounts"] = json!([{
            "primary": true, "username": user, "uid": "1234567890", "gid": "1234567890",
            "homeDirectory": format!("/home/{user}"), "operatingSystemType": "LINUX",
            "accountId": account, "name": format!("users/{email}/projects/{account}"),
        }]);
    }
    if !keys.is_empty() {
        v["sshPublicKeys"] = Value::Object(keys);
    }
    v
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("u={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn parse_key(body: &[u8]) -> Result<(String, Option<i64>), Reply> {
    let v = json_body(body)?;
    let key = v
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string();
    let mut f = key.split_whitespace();
    let valid = matches!(f.next(), Some(t) if t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-"))
        && f.next().is_some_and(|b| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(b).is_ok()
        });
    if !valid {
        return Err(error(400, "invalid", "Invalid SSH public key"));
    }
    let exp = match v.get("expirationTimeUsec") {
        None => None,
        Some(e) => Some(
            e.as_str()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| error(400, "invalid", "Invalid value for expirationTimeUsec"))?,
        ),
    };
    Ok((key, exp))
}

/// One OS Login call by `caller` (the principal of the request's token):
/// a principal reaches only its own profile.
pub fn handle(
    state: &Arc<State>,
    caller: &str,
    method: &str,
    rest: &str,
    query: &[(String, String)],
    body: &[u8],
) -> Reply {
    let project = query
        .iter()
        .find(|(k, _)| k == "projectId")
        .map(|(_, v)| v.as_str());
    let Some(rest) = rest.strip_prefix("users/") else {
        return error(
            404,
            "notFound",
            &format!("no OS Login route for {method} {rest}"),
        );
    };
    let (user_raw, tail) = match rest.find(['/', ':']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let user = percent_decode(user_raw);
    if user != caller {
        return (
            403,
            json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
                "message": "The caller does not have permission"}})
            .to_string(),
        );
    }
    match (method, tail) {
        ("GET", "/loginProfile") => (200, profile_json(state, &user, project).to_string()),
        ("POST", ":importSshPublicKey") => {
            let (key, exp) = match parse_key(body) {
                Ok(x) => x,
                Err(r) => return r,
            };
            {
                let mut c = state.cloud.lock().unwrap();
                let fp = key_fingerprint(&key);
                let profile = c.profiles.entry(user.clone()).or_default();
                profile.posix = true;
                profile.keys.insert(
                    fp,
                    LoginKey {
                        key,
                        expiration_usec: exp,
                    },
                );
                c.oslogin_writes += 1;
            }
            state.event("oslogin import");
            crate::guest::sync_now(state);
            (
                200,
                json!({"loginProfile": profile_json(state, &user, project), "details": ""})
                    .to_string(),
            )
        }
        (m, t) if t.starts_with("/sshPublicKeys/") => {
            let fp = &t["/sshPublicKeys/".len()..];
            let mut c = state.cloud.lock().unwrap();
            let Some(k) = c.profiles.get(&user).and_then(|p| p.keys.get(fp)).cloned() else {
                return error(404, "notFound", "Requested entity was not found.");
            };
            let view = |k: &LoginKey| {
                let mut v = json!({"key": k.key, "fingerprint": fp});
                if let Some(e) = k.expiration_usec {
                    v["expirationTimeUsec"] = json!(e.to_string());
                }
                v
            };
            match m {
                "GET" => (200, view(&k).to_string()),
                "DELETE" => {
                    c.profiles.entry(user.clone()).or_default().keys.remove(fp);
                    c.oslogin_writes += 1;
                    drop(c);
                    state.event("oslogin delete");
                    crate::guest::sync_now(state);
                    (200, "{}".into())
                }
                "PATCH" => {
                    let (_, exp) = match parse_key(body) {
                        Ok(x) => x,
                        Err(r) => return r,
                    };
                    let k2 = LoginKey {
                        key: k.key.clone(),
                        expiration_usec: exp,
                    };
                    let out = view(&k2);
                    c.profiles
                        .entry(user.clone())
                        .or_default()
                        .keys
                        .insert(fp.to_string(), k2);
                    c.oslogin_writes += 1;
                    drop(c);
                    state.event("oslogin patch");
                    crate::guest::sync_now(state);
                    (200, out.to_string())
                }
                _ => error(405, "methodNotAllowed", "method not allowed"),
            }
        }
        _ => error(
            404,
            "notFound",
            &format!("no OS Login route for {method} users/{rest}"),
        ),
    }
}

/// `tokeninfo`: the token's principal and scopes.
pub fn tokeninfo(state: &State, token: Option<&str>) -> Reply {
    match token {
        Some(t) if state.token_valid(t) => (
            200,
            json!({"email": state.token_account(t).unwrap_or_default(), "email_verified": "true",
                "scope": "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email openid",
                "expires_in": "3000"})
            .to_string(),
        ),
        _ => (400, json!({"error": "invalid_token", "error_description": "Invalid Value"}).to_string()),
    }
}
