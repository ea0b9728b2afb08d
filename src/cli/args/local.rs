//! Local listening addresses (`HOST:PORT`), binding them, and the signals
//! that end a listener (shared by `forward` and `rdp`).

use crate::error::{UserError, exit};
use crate::tunnel::listener;

use super::target::usage;

/// `HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` (host defaults to localhost).
pub fn parse_host_port(s: &str) -> Result<(String, u16), UserError> {
    let bad = || {
        usage(
            format!("invalid local address `{}`", s.escape_default()),
            "use HOST:PORT, e.g. localhost:3389, [::1]:0 or 0",
        )
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        (h.to_string(), p)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (String::new(), s),
        }
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = if host.is_empty() {
        "localhost".to_string()
    } else {
        host
    };
    Ok((host, port))
}

/// [`listener::bind`] with the one-line error for the user; `flags`
/// names the options that choose the port.
pub async fn bind_local(
    host: &str,
    port: u16,
    flags: &str,
) -> Result<Vec<tokio::net::TcpListener>, UserError> {
    listener::bind(host, port).await.map_err(|e| {
        let fix = match e {
            listener::BindError::InUse(_) => {
                format!("pick another port with {flags}, or 0 for a free one")
            }
            _ => "check the local address".into(),
        };
        UserError::new(exit::OTHER, e.to_string()).with_fix(fix)
    })
}

pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
