//! The IAP relay v4 protocol: message codec ([`frame`]), session state
//! ([`session`]), URLs ([`url`]) and the WebSocket transport ([`transport`]).
//! This module also maps relay close codes to what they mean for the user.

pub mod frame;
pub mod retry;
pub mod session;
pub mod sock;
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
    /// Close 4000 (unknown error): one resume, then give up (as IAP Desktop).
    UnknownError,
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
        /// The `iap-ssh grant` command an admin runs to let you in.
        grant: String,
    },
    #[error("IAP cannot find {}{target}: close {code} '{reason}'", if *host { "" } else { "instance " })]
    NotFound {
        target: String,
        /// A host reached through a destination group, not a VM.
        host: bool,
        code: u16,
        reason: String,
    },
    #[error("IAP could not connect to port {port} of {target}: close {code} '{reason}'")]
    BackendUnreachable {
        target: String,
        host: bool,
        port: u16,
        code: u16,
        reason: String,
    },
    #[error(
        "IAP closed the tunnel to {target} for a protocol error on our side: close {code} '{reason}'"
    )]
    RelayBug {
        target: String,
        code: u16,
        reason: String,
    },
    #[error("IAP refused to resume the session to {target}: HTTP {status} on reconnect")]
    ResumeHttp { target: String, status: u16 },
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

/// `iap-ssh grant …` for this target's resource and port (the member
/// left for the admin to fill in).
fn grant_command(t: &Target) -> String {
    let place = match &t.dest {
        url::Dest::Instance { zone, instance, .. } => {
            format!("--zone {zone} --instance {instance}")
        }
        url::Dest::Host {
            region,
            group: Some(g),
            ..
        } => format!("--region {region} --dest-group {g}"),
        url::Dest::Host { .. } => String::new(),
    };
    let place = if place.is_empty() {
        String::new()
    } else {
        format!(" {place}")
    };
    format!(
        "iap-ssh grant --project {}{place} --port {} --member user:YOU",
        t.project, t.port
    )
}

/// Classifies a close code from the relay.
pub fn classify_close(code: u16, reason: &str, target: &Target) -> CloseMeaning {
    let t = || target.to_string();
    let r = || reason.to_string();
    let host = matches!(target.dest, url::Dest::Host { .. });
    match code {
        1000 | 4009 | 4010 => CloseMeaning::Eof,
        4004 => CloseMeaning::Reauthenticate,
        // 1001 going away, 1006 abnormal, 1011/1012/1013/1014 server trouble:
        // the session may live on at the relay; try to resume.
        1001 | 1006 | 1011 | 1012 | 1013 | 1014 => CloseMeaning::Transient,
        4000 => CloseMeaning::UnknownError,
        4033 => CloseMeaning::Fatal(RelayError::NotAuthorized {
            target: t(),
            code,
            reason: r(),
            grant: grant_command(target),
        }),
        4047 | 4051 => CloseMeaning::Fatal(RelayError::NotFound {
            target: t(),
            host,
            code,
            reason: r(),
        }),
        4003 => CloseMeaning::Fatal(RelayError::BackendUnreachable {
            target: t(),
            host,
            port: target.port,
            code,
            reason: r(),
        }),
        4001 | 4002 | 4074 => CloseMeaning::Fatal(RelayError::ResumeRefused {
            target: t(),
            code,
            reason: r(),
        }),
        // BAD_ACK, INVALID_ACK, INVALID_WEBSOCKET_OPCODE, INVALID_TAG,
        // INVALID_DATA: the relay says we broke the protocol.
        4005..=4008 | 4013 => CloseMeaning::Fatal(RelayError::RelayBug {
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
            // The relay asked for a device certificate and got none: the
            // access policy, not IAM (gcloud reports both as 4033).
            RelayError::NotAuthorized { code, reason, .. }
                if crate::net::mtls::relay_wanted_missing_cert() =>
            {
                return UserError::new(
                    exit::NOT_AUTHORIZED,
                    format!(
                        "certificate-based access: no valid client certificate (IAP asked for one and none was configured; close {code} '{reason}')"
                    ),
                )
                .with_fix(crate::net::mtls::FIX_NO_CERT);
            }
            RelayError::NotAuthorized { grant, .. } if crate::net::mtls::relay_got_cert() => (
                exit::NOT_AUTHORIZED,
                format!("grant your account the role roles/iap.tunnelResourceAccessor on the project or instance (an admin: `{grant}`); if you have it, the access policy did not accept your device certificate (check Endpoint Verification)"),
            ),
            RelayError::NotAuthorized { grant, .. } => (
                exit::NOT_AUTHORIZED,
                format!("grant your account the role roles/iap.tunnelResourceAccessor on the project or instance (an admin: `{grant}`), and check the project id"),
            ),
            RelayError::NotFound { host: false, .. } => (
                exit::NOT_FOUND,
                "check the instance name, zone and project (`gcloud compute instances list`); a VM created moments ago may not be known to IAP yet".into(),
            ),
            RelayError::NotFound { host: true, .. } => (
                exit::NOT_FOUND,
                "check the host, --region and --network, and that a destination group of that region covers the host (`gcloud iap tcp dest-groups list --region REGION`); pass --dest-group when one is required".into(),
            ),
            RelayError::BackendUnreachable {
                port, host: false, ..
            } => (
                exit::BACKEND_UNREACHABLE,
                format!(
                    "allow ingress from 35.235.240.0/20 to tcp:{port} in a firewall rule on the VM's network, and check the VM is running and listening on port {port}"
                ),
            ),
            RelayError::BackendUnreachable {
                port, host: true, ..
            } => (
                exit::BACKEND_UNREACHABLE,
                format!(
                    "allow ingress from 35.235.240.0/20 to tcp:{port} on the host's network (the VPC of the destination group, and any firewall in front of the host), and check the host is up and listening on port {port}"
                ),
            ),
            RelayError::RelayBug { code, .. } => (
                exit::PROTOCOL,
                format!(
                    "this is a bug in iap-ssh or IAP: please report it with close code {code} and the output of -vv"
                ),
            ),
            RelayError::ResumeHttp {
                status: 401 | 403, ..
            } => (
                exit::NOT_AUTHORIZED,
                "your credentials were refused even after a fresh token (or a proxy refused the WebSocket): run `gcloud auth application-default login`, check roles/iap.tunnelResourceAccessor, then reconnect".into(),
            ),
            RelayError::ResumeHttp { .. } => (
                exit::RECONNECT_EXHAUSTED,
                "the session is lost; reconnect".into(),
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

    #[test]
    fn host_targets_speak_of_hosts_and_relay_bugs_ask_for_a_report() {
        let mut h = t();
        h.dest = url::Dest::Host {
            region: "r1".into(),
            network: "n1".into(),
            host: "10.1.2.3".into(),
            group: None,
        };
        let CloseMeaning::Fatal(e) = classify_close(4047, "x", &h) else {
            panic!()
        };
        let l = e.into_user_error().line();
        assert!(l.contains("cannot find host 10.1.2.3"), "{l}");
        assert!(l.contains("destination group"), "{l}");
        assert!(!l.contains("instance"), "{l}");
        let CloseMeaning::Fatal(e) = classify_close(4003, "x", &h) else {
            panic!()
        };
        let l = e.into_user_error().line();
        assert!(l.contains("host's network"), "{l}");
        assert!(!l.contains("VM"), "{l}");
        for c in [4005, 4006, 4007, 4008, 4013] {
            let CloseMeaning::Fatal(e) = classify_close(c, "bad", &t()) else {
                panic!()
            };
            let u = e.into_user_error();
            assert_eq!(u.code, exit::PROTOCOL);
            assert!(u.line().contains("report it"), "{}", u.line());
            assert!(
                u.line().contains(&format!("close code {c}")),
                "{}",
                u.line()
            );
        }
        assert_eq!(classify_close(4000, "", &t()), CloseMeaning::UnknownError);
    }
}
