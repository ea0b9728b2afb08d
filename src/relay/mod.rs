//! The IAP relay v4 protocol: message codec ([`frame`]), session state
//! ([`session`]), URLs ([`url`]) and the WebSocket transport ([`transport`]).
//! This module also maps relay close codes to what they mean for the user.

pub mod frame;
pub mod session;
pub mod transport;
pub mod url;

use crate::error::{UserError, exit};
use url::Target;

/// What a WebSocket Close from the relay means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseMeaning {
    /// The session ended normally (1000, or the backend closed: 4009/4010).
    Eof,
    /// Resume with `/v4/reconnect` and a refreshed token (4004).
    Reauthenticate,
    /// Resume with `/v4/reconnect` (transient server-side errors).
    Transient,
    /// The session is over with an error.
    Fatal(RelayError),
}

/// Errors of the relay layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    #[error("IAP denied access to {target}: close {code} '{reason}'")]
    NotAuthorized {
        target: String,
        code: u16,
        reason: String,
    },
    #[error("IAP cannot find instance {target}: close {code} '{reason}'")]
    NotFound {
        target: String,
        code: u16,
        reason: String,
    },
    #[error("IAP could not connect to port {port} of {target}: close {code} '{reason}'")]
    BackendUnreachable {
        target: String,
        port: u16,
        code: u16,
        reason: String,
    },
    #[error("IAP could not resume the session to {target}: close {code} '{reason}'")]
    ResumeRefused {
        target: String,
        code: u16,
        reason: String,
    },
    #[error("IAP closed the tunnel to {target}: close {code} '{reason}'")]
    Closed {
        target: String,
        code: u16,
        reason: String,
    },
    #[error("relay protocol violation: {0}")]
    Protocol(#[from] session::ProtocolError),
    #[error("{0}")]
    Transport(#[from] transport::TransportError),
    #[error("{cause}")]
    Auth {
        code: i32,
        cause: String,
        fix: String,
    },
    #[error("lost the connection to IAP for {target} and could not resume: {last}")]
    ReconnectExhausted { target: String, last: String },
}

/// Classifies a close code from the relay.
pub fn classify_close(code: u16, reason: &str, target: &Target) -> CloseMeaning {
    let t = || target.to_string();
    let r = || reason.to_string();
    match code {
        1000 | 4009 | 4010 => CloseMeaning::Eof,
        4004 => CloseMeaning::Reauthenticate,
        // 1001 going away, 1006 abnormal, 1011/1012/1013/1014 server trouble:
        // the session may live on at the relay; try to resume.
        1001 | 1006 | 1011 | 1012 | 1013 | 1014 => CloseMeaning::Transient,
        4033 => CloseMeaning::Fatal(RelayError::NotAuthorized {
            target: t(),
            code,
            reason: r(),
        }),
        4047 | 4051 => CloseMeaning::Fatal(RelayError::NotFound {
            target: t(),
            code,
            reason: r(),
        }),
        4003 => CloseMeaning::Fatal(RelayError::BackendUnreachable {
            target: t(),
            port: target.port,
            code,
            reason: r(),
        }),
        4001 | 4002 | 4074 => CloseMeaning::Fatal(RelayError::ResumeRefused {
            target: t(),
            code,
            reason: r(),
        }),
        _ => CloseMeaning::Fatal(RelayError::Closed {
            target: t(),
            code,
            reason: r(),
        }),
    }
}

impl RelayError {
    /// Exit status and the one-line fix.
    pub fn into_user_error(self) -> UserError {
        let (code, fix): (i32, String) = match &self {
            RelayError::NotAuthorized { .. } => (
                exit::NOT_AUTHORIZED,
                "grant your account the role roles/iap.tunnelResourceAccessor on the project or instance, and check the project id".into(),
            ),
            RelayError::NotFound { .. } => (
                exit::NOT_FOUND,
                "check the instance name, zone and project (`gcloud compute instances list`); a VM created moments ago may not be known to IAP yet".into(),
            ),
            RelayError::BackendUnreachable { port, .. } => (
                exit::BACKEND_UNREACHABLE,
                format!(
                    "allow ingress from 35.235.240.0/20 to tcp:{port} in a firewall rule on the VM's network, and check the VM is running and listening on port {port}"
                ),
            ),
            RelayError::ResumeRefused { .. } | RelayError::ReconnectExhausted { .. } => (
                exit::RECONNECT_EXHAUSTED,
                "the session is lost; reconnect (check your network if this repeats)".into(),
            ),
            RelayError::Closed { .. } => (
                exit::OTHER,
                "retry; run with -v for details if it repeats".into(),
            ),
            RelayError::Protocol(_) => (
                exit::PROTOCOL,
                "the relay broke the IAP protocol; retry, and report it with the output of -v if it repeats".into(),
            ),
            RelayError::Transport(t) => return t.clone().into_user_error(),
            RelayError::Auth { code, fix, .. } => (*code, fix.clone()),
        };
        UserError::new(code, self.to_string()).with_fix(fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Target {
        Target::instance("p", "z", "vm", 3389)
    }

    #[test]
    fn close_codes() {
        for c in [1000, 4009, 4010] {
            assert_eq!(classify_close(c, "", &t()), CloseMeaning::Eof);
        }
        assert_eq!(classify_close(4004, "", &t()), CloseMeaning::Reauthenticate);
        let CloseMeaning::Fatal(e) = classify_close(4003, "failed to connect to backend", &t())
        else {
            panic!()
        };
        let u = e.into_user_error();
        assert_eq!(u.code, exit::BACKEND_UNREACHABLE);
        assert!(
            u.line().contains("35.235.240.0/20 to tcp:3389"),
            "{}",
            u.line()
        );
        let CloseMeaning::Fatal(e) = classify_close(4033, "not authorized", &t()) else {
            panic!()
        };
        let u = e.into_user_error();
        assert_eq!(u.code, exit::NOT_AUTHORIZED);
        assert!(u.line().contains("roles/iap.tunnelResourceAccessor"));
        for c in [4047, 4051] {
            let CloseMeaning::Fatal(e) = classify_close(c, "x", &t()) else {
                panic!()
            };
            assert_eq!(e.into_user_error().code, exit::NOT_FOUND);
        }
        for c in [4001, 4002, 4074] {
            let CloseMeaning::Fatal(e) = classify_close(c, "x", &t()) else {
                panic!()
            };
            assert_eq!(e.into_user_error().code, exit::RECONNECT_EXHAUSTED);
        }
    }
}
