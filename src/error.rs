//! What the user sees when something fails: one line with the cause and the
//! fix, and a documented exit status.

use std::fmt;

/// Exit statuses (stable; documented in the README).
pub mod exit {
    pub const OK: i32 = 0;
    pub const OTHER: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NO_CREDENTIALS: i32 = 3;
    pub const NOT_AUTHORIZED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const BACKEND_UNREACHABLE: i32 = 6;
    pub const PROTOCOL: i32 = 7;
    pub const RECONNECT_EXHAUSTED: i32 = 8;
}

/// A failure ready to be shown: `iap-ssh: <cause>; hint: <fix>`.
#[derive(Debug)]
pub struct UserError {
    pub code: i32,
    pub cause: String,
    pub fix: Option<String>,
}

impl UserError {
    pub fn new(code: i32, cause: impl Into<String>) -> Self {
        UserError {
            code,
            cause: cause.into(),
            fix: None,
        }
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// The single line printed on stderr (no trailing newline). Newlines
    /// inside a cause are folded so the message stays on one line.
    pub fn line(&self) -> String {
        let fold = |s: &str| printable(&s.split_whitespace().collect::<Vec<_>>().join(" "));
        match &self.fix {
            Some(f) => {
                let c = fold(&self.cause);
                let sep = if c.ends_with('.') { " " } else { "; " };
                format!("iap-ssh: {c}{sep}hint: {}", fold(f))
            }
            None => format!("iap-ssh: {}", fold(&self.cause)),
        }
    }
}

/// `s` with control characters (terminal escapes, bells, carriage
/// returns) written as escapes (`\u{1b}`), so text that came from a server
/// (a close reason, an SSH banner) cannot drive the user's terminal.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

impl std::error::Error for UserError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_fix() {
        let e = UserError::new(4, "denied\nby relay").with_fix("grant a role");
        assert_eq!(e.line(), "iap-ssh: denied by relay; hint: grant a role");
        assert!(!e.line().contains('\n'));
        let e = UserError::new(1, "close 4000 'evil\x1b[2J\x07'");
        assert_eq!(e.line(), "iap-ssh: close 4000 'evil\\u{1b}[2J\\u{7}'");
    }
}
