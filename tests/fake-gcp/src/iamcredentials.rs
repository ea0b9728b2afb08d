//! IAM Credentials `generateAccessToken`: a caller with
//! `roles/iam.serviceAccountTokenCreator` on a service account (through a
//! chain of delegates, each hop checked) gets a token that belongs to that
//! account everywhere in the fake (relay, OS Login, tokeninfo).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::oauth::Reply;
use crate::state::State;

fn denied() -> Reply {
    // The message is the one documented for a missing permission (exact
    // text UNCONFIRMED, per spec).
    (
        403,
        json!({"error": {"code": 403,
            "message": "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
            "status": "PERMISSION_DENIED"}})
        .to_string(),
    )
}

fn bad_request(msg: &str) -> Reply {
    (
        400,
        json!({"error": {"code": 400, "message": msg, "status": "INVALID_ARGUMENT"}}).to_string(),
    )
}

/// `projects/-/serviceAccounts/X` or a bare `X` → `X`.
fn account_of(s: &str) -> &str {
    s.strip_prefix("projects/-/serviceAccounts/").unwrap_or(s)
}

/// `POST /v1/projects/-/serviceAccounts/{email-or-id}:generateAccessToken`.
pub fn generate_access_token(
    state: &State,
    bearer: Option<&str>,
    path: &str,
    body: &[u8],
) -> Reply {
    let Some(target) = path
        .strip_prefix("/v1/projects/-/serviceAccounts/")
        .and_then(|t| t.strip_suffix(":generateAccessToken"))
    else {
        return (
            404,
            json!({"error": {"code": 404, "message": "no such method"}}).to_string(),
        );
    };
    let caller = match bearer.filter(|t| state.token_valid(t)) {
        Some(t) => state.token_account(t).unwrap_or_default(),
        None => {
            state.event("iamcredentials 401");
            return (
                401,
                json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
                    "message": "Request had invalid authentication credentials."}})
                .to_string(),
            );
        }
    };
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return bad_request("Invalid JSON payload received.");
    };
    let delegates: Vec<String> = match v.get("delegates") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => {
            let mut out = vec![];
            for d in a {
                let Some(d) = d.as_str() else {
                    return bad_request("delegates must be strings");
                };
                out.push(account_of(d).to_string());
            }
            out
        }
        Some(_) => return bad_request("delegates must be a list"),
    };
    if v["scope"].as_array().is_none_or(|s| s.is_empty()) {
        return bad_request("Scope required.");
    }
    let lifetime = match v.get("lifetime").and_then(Value::as_str) {
        None => 3600,
        Some(l) => match l.strip_suffix('s').and_then(|n| n.parse::<u64>().ok()) {
            Some(n) if (1..=3600).contains(&n) => n,
            _ => return bad_request("The lifetime must be between 1s and 3600s."),
        },
    };
    state.event(format!(
        "iamcredentials generateAccessToken caller={caller} target={target} delegates={} raw_delegates={}",
        delegates.join(","),
        v.get("delegates").map(|d| d.to_string()).unwrap_or_else(|| "absent".into()),
    ));
    // Each hop: the one before holds Token Creator on the next.
    let mut who = caller.clone();
    for hop in delegates.iter().map(String::as_str).chain([target]) {
        let Some(sa) = state.config.service_account(hop) else {
            return denied();
        };
        if !sa.token_creators.contains(&who) {
            state.event(format!("iamcredentials denied: {who} on {}", sa.email));
            return denied();
        }
        who = sa.email.clone();
    }
    let life = Duration::from_secs(lifetime.min(state.config.token_lifetime_secs));
    let (token, _) = state.mint_impersonated(&who, life);
    let expire = SystemTime::now() + life;
    (
        200,
        json!({"accessToken": token, "expireTime": rfc3339(expire)}).to_string(),
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ`, without fractions (as the API writes it).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_750_431_845)),
            "2025-06-20T15:04:05Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_709_164_800)),
            "2024-02-29T00:00:00Z"
        );
    }
}
