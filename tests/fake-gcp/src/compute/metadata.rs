//! Metadata request bodies (`{fingerprint, items[{key, value}]}`),
//! validated like the API, and the 412 a stale fingerprint gets.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{error, json_body};
use crate::oauth::Reply;

/// A metadata body: `{fingerprint, items[{key, value}]}`, validated like the API.
pub(super) fn parse_metadata(body: &[u8]) -> Result<(String, BTreeMap<String, String>), Reply> {
    let v = json_body(body)?;
    let Some(fp) = v.get("fingerprint").and_then(Value::as_str) else {
        return Err(error(
            400,
            "required",
            "Required field 'fingerprint' not specified",
        ));
    };
    let mut items = BTreeMap::new();
    let mut total = 0;
    for it in v
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(k), Some(val)) = (
            it.get("key").and_then(Value::as_str),
            it.get("value").and_then(Value::as_str),
        ) else {
            return Err(error(
                400,
                "invalid",
                "Invalid value for field 'metadata.items'",
            ));
        };
        let key_ok = !k.is_empty()
            && k.len() <= 128
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !key_ok {
            return Err(error(
                400,
                "invalid",
                &format!("Invalid value for field 'metadata.items.key': '{k}'"),
            ));
        }
        if items.insert(k.to_string(), val.to_string()).is_some() {
            return Err(error(
                400,
                "invalid",
                &format!("Duplicate metadata key '{k}'"),
            ));
        }
        total += k.len() + val.len();
    }
    if total > 512 * 1024 {
        return Err(error(400, "invalid", "Metadata exceeds the 512 KB limit"));
    }
    Ok((fp.to_string(), items))
}

pub(super) fn conflict() -> Reply {
    // Exact message UNCONFIRMED; the status and reason are what clients use.
    error(
        412,
        "conditionNotMet",
        "Supplied fingerprint does not match current metadata fingerprint.",
    )
}
