//! A small evaluator of the CEL that IAP conditions use (`||`, `&&`, `!`,
//! parentheses, comparisons, `in`, `timestamp()`; the attributes
//! `destination.port`, `destination.ip`, `request.time`,
//! `request.auth.access_levels`), written apart from iap-ssh's builder so
//! a bug in one is caught by the other. An expression it cannot parse is
//! one IAM would refuse.

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

pub fn parse(expr: &str) -> Result<(), String> {
    parse_expr(expr).map(|_| ())
}

fn parse_expr(expr: &str) -> Result<Expr, String> {
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
pub fn rfc3339(s: &str) -> Option<i64> {
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
    eval(&parse_expr(expr)?, port, ip, levels)
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
