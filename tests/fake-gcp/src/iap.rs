//! IAP's IAM on tunnel resources (admin-windows-putty §1): getIamPolicy,
//! setIamPolicy (etag-locked; a stale etag is 409 ABORTED, a conditional
//! binding below version 3 or a condition IAM cannot parse is 400) and
//! testIamPermissions, for every resource form (project given by ID or
//! number). When `Config::iap_policies` is set, the relay admits a tunnel
//! only if a `roles/iap.tunnelResourceAccessor` binding on the project,
//! the zone or the VM names the principal and its condition holds for the
//! destination port and IP and the time: a small evaluator of the CEL
//! that IAP conditions use (`||`, `&&`, `!`, parentheses, comparisons,
//! `in`, `timestamp()`), written apart from iap-ssh's builder so a bug in
//! one is caught by the other.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::state::State;

pub const TUNNEL_ROLE: &str = "roles/iap.tunnelResourceAccessor";

/// Stored policies: resource path (project by ID) → policy without etag.
#[derive(Debug, Default)]
pub struct Policies {
    pub map: BTreeMap<String, Value>,
    versions: BTreeMap<String, u64>,
    conflicts_left: u32,
    /// setIamPolicy calls that were stored.
    pub writes: u64,
}

impl Policies {
    pub fn new(initial: &BTreeMap<String, Value>, conflicts: u32) -> Policies {
        Policies {
            map: initial.clone(),
            conflicts_left: conflicts,
            ..Policies::default()
        }
    }

    fn etag(&self, res: &str) -> String {
        let v = self.versions.get(res).copied().unwrap_or(0);
        if v == 0 {
            "ACAB".into()
        } else {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(format!("etag-{v}"))
        }
    }

    fn bump(&mut self, res: &str) {
        *self.versions.entry(res.to_string()).or_default() += 1;
    }

    /// The policy as getIamPolicy returns it.
    pub fn get(&self, res: &str) -> Value {
        let mut p = self.map.get(res).cloned().unwrap_or_else(|| json!({}));
        let conditional = p["bindings"]
            .as_array()
            .is_some_and(|b| b.iter().any(|x| x.get("condition").is_some()));
        if p["bindings"].as_array().is_some_and(|b| !b.is_empty()) {
            p["version"] = json!(if conditional { 3 } else { 1 });
        }
        p["etag"] = json!(self.etag(res));
        p
    }
}

/// A fake project number for a project ID (stable, 12 digits).
pub fn project_number(id: &str) -> String {
    let mut h: u64 = 1469598103934665603;
    for b in id.bytes() {
        h = (h ^ b as u64).wrapping_mul(1099511628211);
    }
    format!("{}", 100_000_000_000 + h % 900_000_000_000)
}

fn err(code: u16, status: &str, message: &str) -> (u16, String) {
    (
        code,
        json!({"error": {"code": code, "status": status, "message": message}}).to_string(),
    )
}

/// `projects/P/iap_tunnel/...` with P as the ID, or None when the path
/// is no tunnel resource.
fn normalize(state: &State, res: &str) -> Option<String> {
    let segs: Vec<&str> = res.split('/').collect();
    if segs.len() < 3 || segs[0] != "projects" || segs[2] != "iap_tunnel" {
        return None;
    }
    let ok = matches!(
        &segs[3..],
        [] | ["zones", _]
            | ["zones", _, "instances", _]
            | ["locations", _]
            | ["locations", _, "destGroups", _]
    );
    if !ok || segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    let project = state
        .cloud
        .lock()
        .unwrap()
        .projects
        .keys()
        .find(|id| id.as_str() == segs[1] || project_number(id) == segs[1])
        .cloned()
        .or_else(|| {
            state
                .config
                .has_project(segs[1])
                .then(|| segs[1].to_string())
        })?;
    let mut out = vec!["projects", project.as_str()];
    out.extend(&segs[2..]);
    Some(out.join("/"))
}

pub fn handle(state: &State, caller: &str, method: &str, rest: &str, body: &[u8]) -> (u16, String) {
    let Some((res, verb)) = rest.rsplit_once(':') else {
        return err(
            404,
            "NOT_FOUND",
            &format!("no IAP route for {method} {rest}"),
        );
    };
    if method != "POST" {
        return err(
            404,
            "NOT_FOUND",
            &format!("no IAP route for {method} {rest}"),
        );
    }
    let Some(res) = normalize(state, res) else {
        return err(404, "NOT_FOUND", "Requested entity was not found.");
    };
    let segs: Vec<&str> = res.split('/').collect();
    if let ["projects", p, "iap_tunnel", "zones", z, "instances", n] = segs.as_slice()
        && state.config.find(p, z, n).is_none()
    {
        return err(404, "NOT_FOUND", "Requested entity was not found.");
    }
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match verb {
        "getIamPolicy" => {
            state.event(format!(
                "iap getIamPolicy {res} requested={}",
                body["options"]["requestedPolicyVersion"]
            ));
            (200, state.iap.lock().unwrap().get(&res).to_string())
        }
        "setIamPolicy" => set(state, caller, &res, &body),
        "testIamPermissions" => {
            let (p, z, n) = match segs.as_slice() {
                ["projects", p, "iap_tunnel", "zones", z, "instances", n] => (*p, *z, *n),
                _ => return (200, "{}".into()),
            };
            let granted = state.config.iap_access
                && (state.config.iap_policies.is_none() || bound(state, caller, p, z, n, None));
            if granted {
                (
                    200,
                    json!({"permissions": ["iap.tunnelInstances.accessViaIAP"]}).to_string(),
                )
            } else {
                (200, "{}".into())
            }
        }
        _ => err(404, "NOT_FOUND", &format!("no IAP method {verb}")),
    }
}

fn set(state: &State, caller: &str, res: &str, body: &Value) -> (u16, String) {
    if !state.config.iap_admin {
        state.event(format!("iap setIamPolicy {res} denied caller={caller}"));
        return err(
            403,
            "PERMISSION_DENIED",
            &format!("The caller does not have permission iap.tunnel*.setIamPolicy on {res}"),
        );
    }
    let Some(policy) = body.get("policy").filter(|p| p.is_object()) else {
        return err(400, "INVALID_ARGUMENT", "policy is required");
    };
    let version = policy["version"].as_i64().unwrap_or(0);
    let bindings = policy["bindings"].as_array().cloned().unwrap_or_default();
    for b in &bindings {
        if !b["role"].as_str().is_some_and(|r| r.starts_with("roles/")) {
            return err(
                400,
                "INVALID_ARGUMENT",
                &format!("invalid role in binding {b}"),
            );
        }
        for m in b["members"].as_array().into_iter().flatten() {
            let m = m.as_str().unwrap_or("");
            let known = [
                "user:",
                "group:",
                "serviceAccount:",
                "domain:",
                "principal://",
                "principalSet://",
                "deleted:",
            ]
            .iter()
            .any(|p| m.starts_with(p) && m.len() > p.len());
            if !known || m.chars().any(char::is_whitespace) {
                return err(400, "INVALID_ARGUMENT", &format!("Invalid member: {m}"));
            }
        }
        if let Some(c) = b.get("condition") {
            if version < 3 {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    "Conditional bindings require policy version 3",
                );
            }
            let (Some(expr), Some(title)) = (c["expression"].as_str(), c["title"].as_str()) else {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    "A condition needs a title and an expression",
                );
            };
            if title.is_empty() || title.len() > 100 {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    "Condition title must be 1 to 100 characters",
                );
            }
            if let Err(e) = parse(expr) {
                return err(
                    400,
                    "INVALID_ARGUMENT",
                    &format!("Condition expression {expr:?} is invalid: {e}"),
                );
            }
        }
    }
    let mut pol = state.iap.lock().unwrap();
    if pol.conflicts_left > 0 {
        // Another administrator writes first: our caller's etag is stale.
        pol.conflicts_left -= 1;
        let mut other = pol.map.get(res).cloned().unwrap_or_else(|| json!({}));
        let list = other
            .as_object_mut()
            .unwrap()
            .entry("bindings")
            .or_insert_with(|| json!([]));
        let n = pol.versions.get(res).copied().unwrap_or(0);
        list.as_array_mut().unwrap().push(json!({
            "role": "roles/iap.admin",
            "members": [format!("user:other-admin-{n}@example.com")]
        }));
        pol.map.insert(res.to_string(), other);
        pol.bump(res);
        state.event(format!(
            "iap setIamPolicy {res} conflict (a concurrent writer went first)"
        ));
    }
    let current = pol.etag(res);
    match policy["etag"].as_str() {
        Some(e) if e != current => {
            state.event(format!("iap setIamPolicy {res} stale etag"));
            return err(
                409,
                "ABORTED",
                "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.",
            );
        }
        _ => {}
    }
    let mut stored = json!({});
    if !bindings.is_empty() {
        stored["bindings"] = json!(bindings);
    }
    for (k, v) in policy.as_object().unwrap() {
        if !matches!(k.as_str(), "etag" | "version" | "bindings") {
            stored[k] = v.clone();
        }
    }
    pol.map.insert(res.to_string(), stored);
    pol.bump(res);
    pol.writes += 1;
    state.event(format!(
        "iap setIamPolicy {res} version={version} etag_sent={} policy={}",
        policy.get("etag").is_some(),
        pol.map[res]
    ));
    (200, pol.get(res).to_string())
}

/// Does a tunnel binding at the VM's project, zone or VM level name
/// `principal`, with its condition true for this destination (`port`
/// None: conditions are not evaluated, as testIamPermissions does)?
pub fn bound(
    state: &State,
    principal: &str,
    p: &str,
    z: &str,
    n: &str,
    dest: Option<(u16, &str)>,
) -> bool {
    let levels = [
        format!("projects/{p}/iap_tunnel"),
        format!("projects/{p}/iap_tunnel/zones/{z}"),
        format!("projects/{p}/iap_tunnel/zones/{z}/instances/{n}"),
    ];
    bound_at(state, principal, &levels, dest)
}

/// [`bound`] for a host reached through destination group `g` of region
/// `r`: the project's, the region's or the group's policy.
pub fn host_bound(
    state: &State,
    principal: &str,
    p: &str,
    r: &str,
    g: Option<&str>,
    dest: (u16, &str),
) -> bool {
    let mut levels = vec![
        format!("projects/{p}/iap_tunnel"),
        format!("projects/{p}/iap_tunnel/locations/{r}"),
    ];
    if let Some(g) = g {
        levels.push(format!(
            "projects/{p}/iap_tunnel/locations/{r}/destGroups/{g}"
        ));
    }
    bound_at(state, principal, &levels, Some(dest))
}

fn bound_at(state: &State, principal: &str, levels: &[String], dest: Option<(u16, &str)>) -> bool {
    let pol = state.iap.lock().unwrap();
    levels.iter().any(|res| {
        pol.map.get(res).is_some_and(|policy| {
            policy["bindings"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|b| {
                    b["role"] == TUNNEL_ROLE
                        && b["members"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|m| member_is(m.as_str().unwrap_or(""), principal))
                        && match (b.get("condition"), dest) {
                            (None, _) | (Some(_), None) => true,
                            (Some(c), Some((port, ip))) => {
                                let expr = c["expression"].as_str().unwrap_or("");
                                matches!(
                                    eval_str(expr, port, ip, &state.config.access_levels),
                                    Ok(Val::Bool(true))
                                )
                            }
                        }
                })
        })
    })
}

fn member_is(member: &str, principal: &str) -> bool {
    match member.split_once(':') {
        Some(("user" | "serviceAccount", e)) => e.eq_ignore_ascii_case(principal),
        Some(("domain", d)) => principal
            .rsplit_once('@')
            .is_some_and(|(_, pd)| pd.eq_ignore_ascii_case(d)),
        _ => false,
    }
}

// ---- a small CEL subset ----

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Int(i64),
    Str(String),
    Op(&'static str),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let st = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Tok::Int(s[st..i].parse().map_err(|_| "integer overflow")?));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let st = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            out.push(Tok::Ident(s[st..i].to_string()));
        } else if c == b'"' {
            let st = i + 1;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    return Err("escapes are not supported".into());
                }
                i += 1;
            }
            if i >= b.len() {
                return Err("unterminated string".into());
            }
            out.push(Tok::Str(s[st..i].to_string()));
            i += 1;
        } else {
            let two = s.get(i..i + 2).unwrap_or("");
            let op = ["||", "&&", "==", "!=", "<=", ">="]
                .into_iter()
                .find(|o| *o == two);
            if let Some(o) = op {
                out.push(Tok::Op(o));
                i += 2;
            } else {
                let one = ["(", ")", "<", ">", "!", ","]
                    .into_iter()
                    .find(|o| o.as_bytes()[0] == c);
                match one {
                    Some(o) => out.push(Tok::Op(o)),
                    None => return Err(format!("unexpected character {:?}", c as char)),
                }
                i += 1;
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(&'static str, Box<Expr>, Box<Expr>),
    In(Box<Expr>, Box<Expr>),
    Attr(String),
    Int(i64),
    Str(String),
    Timestamp(String),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.eat(&Tok::Op("||")) {
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.unary()?;
        while self.eat(&Tok::Op("&&")) {
            l = Expr::And(Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat(&Tok::Op("!")) {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        let l = self.primary()?;
        for op in ["==", "!=", "<=", ">=", "<", ">"] {
            if self.eat(&Tok::Op(op)) {
                return Ok(Expr::Cmp(op, Box::new(l), Box::new(self.primary()?)));
            }
        }
        if self.eat(&Tok::Ident("in".into())) {
            return Ok(Expr::In(Box::new(l), Box::new(self.primary()?)));
        }
        Ok(l)
    }
    fn primary(&mut self) -> Result<Expr, String> {
        let t = self.peek().cloned().ok_or("unexpected end")?;
        self.pos += 1;
        match t {
            Tok::Op("(") => {
                let e = self.or()?;
                if !self.eat(&Tok::Op(")")) {
                    return Err("missing )".into());
                }
                Ok(e)
            }
            Tok::Int(n) => Ok(Expr::Int(n)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Ident(f) if f == "timestamp" => {
                if !self.eat(&Tok::Op("(")) {
                    return Err("timestamp needs (".into());
                }
                let Some(Tok::Str(s)) = self.peek().cloned() else {
                    return Err("timestamp takes a string".into());
                };
                self.pos += 1;
                if !self.eat(&Tok::Op(")")) {
                    return Err("missing )".into());
                }
                if rfc3339(&s).is_none() {
                    return Err(format!("bad timestamp {s:?}"));
                }
                Ok(Expr::Timestamp(s))
            }
            Tok::Ident(a) => {
                let known = [
                    "destination.port",
                    "destination.ip",
                    "request.time",
                    "request.auth.access_levels",
                ];
                if known.contains(&a.as_str()) {
                    Ok(Expr::Attr(a))
                } else {
                    Err(format!("unknown attribute {a}"))
                }
            }
            t => Err(format!("unexpected {t:?}")),
        }
    }
}

fn parse(expr: &str) -> Result<Expr, String> {
    let mut p = Parser {
        toks: lex(expr)?,
        pos: 0,
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("trailing {:?}", p.toks[p.pos]));
    }
    Ok(e)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Bool(bool),
    Int(i64),
    Str(String),
    Time(i64),
    List(Vec<String>),
}

/// `YYYY-MM-DDTHH:MM:SSZ` → Unix seconds.
pub fn rfc3339_secs(s: &str) -> Option<i64> {
    rfc3339(s)
}

fn rfc3339(s: &str) -> Option<i64> {
    // YYYY-MM-DDTHH:MM:SSZ only (what clients send).
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().ok();
    let (y, m, d, hh, mm, ss) = (
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    );
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

fn eval(e: &Expr, port: u16, ip: &str, levels: &[String]) -> Result<Val, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let b = |x: &Expr| match eval(x, port, ip, levels)? {
        Val::Bool(v) => Ok(v),
        v => Err(format!("not a bool: {v:?}")),
    };
    Ok(match e {
        Expr::Or(l, r) => Val::Bool(b(l)? || b(r)?),
        Expr::And(l, r) => Val::Bool(b(l)? && b(r)?),
        Expr::Not(x) => Val::Bool(!b(x)?),
        Expr::Int(n) => Val::Int(*n),
        Expr::Str(s) => Val::Str(s.clone()),
        Expr::Timestamp(s) => Val::Time(rfc3339(s).ok_or("bad timestamp")?),
        Expr::Attr(a) => match a.as_str() {
            "destination.port" => Val::Int(port as i64),
            "destination.ip" => Val::Str(ip.to_string()),
            "request.time" => Val::Time(now),
            _ => Val::List(levels.to_vec()),
        },
        Expr::In(l, r) => match (eval(l, port, ip, levels)?, eval(r, port, ip, levels)?) {
            (Val::Str(s), Val::List(v)) => Val::Bool(v.contains(&s)),
            x => return Err(format!("bad `in` operands {x:?}")),
        },
        Expr::Cmp(op, l, r) => {
            let ord = match (eval(l, port, ip, levels)?, eval(r, port, ip, levels)?) {
                (Val::Int(a), Val::Int(b)) => a.cmp(&b),
                (Val::Str(a), Val::Str(b)) => a.cmp(&b),
                (Val::Time(a), Val::Time(b)) => a.cmp(&b),
                x => return Err(format!("cannot compare {x:?}")),
            };
            use std::cmp::Ordering::*;
            Val::Bool(match *op {
                "==" => ord == Equal,
                "!=" => ord != Equal,
                "<" => ord == Less,
                "<=" => ord != Greater,
                ">" => ord == Greater,
                _ => ord != Less,
            })
        }
    })
}

/// Evaluates a condition for a tunnel to `ip:port` now, with the caller's
/// device in `levels`.
pub fn eval_str(expr: &str, port: u16, ip: &str, levels: &[String]) -> Result<Val, String> {
    eval(&parse(expr)?, port, ip, levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_evaluate() {
        let t = |e: &str, port| {
            eval_str(
                e,
                port,
                "10.128.0.2",
                &["accessPolicies/1/accessLevels/corp".into()],
            )
        };
        let e = "(destination.port == 22 || destination.port == 3389)";
        assert_eq!(t(e, 22), Ok(Val::Bool(true)));
        assert_eq!(t(e, 3389), Ok(Val::Bool(true)));
        assert_eq!(t(e, 80), Ok(Val::Bool(false)));
        assert_eq!(
            t(
                "destination.ip == \"10.128.0.2\" && destination.port == 22",
                22
            ),
            Ok(Val::Bool(true))
        );
        assert_eq!(
            t("request.time < timestamp(\"2000-01-01T00:00:00Z\")", 22),
            Ok(Val::Bool(false))
        );
        assert_eq!(
            t("request.time < timestamp(\"2999-01-01T00:00:00Z\")", 22),
            Ok(Val::Bool(true))
        );
        assert_eq!(
            t(
                "\"accessPolicies/1/accessLevels/corp\" in request.auth.access_levels",
                22
            ),
            Ok(Val::Bool(true))
        );
        assert_eq!(t("!(destination.port == 22)", 22), Ok(Val::Bool(false)));
        assert!(parse("resource.name == \"x\"").is_err());
        assert!(parse("destination.port ==").is_err());
        assert!(parse("destination.port == 22)").is_err());
        assert_eq!(rfc3339("1970-01-02T00:00:00Z"), Some(86400));
    }
}
