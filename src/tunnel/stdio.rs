//! The ProxyCommand byte source: stdin → relay → stdout.

use super::{Relay, TunnelConfig, run};
use crate::relay::RelayError;
use crate::relay::url::Target;

/// Resolves on SIGHUP (what ssh sends its ProxyCommand when it exits),
/// SIGTERM or SIGINT.
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = hup.recv() => {}
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Carries stdin/stdout through a relay session to `target`; a signal ends
/// the session cleanly (Close 1000) instead of dropping it.
pub async fn proxy(relay: &Relay, target: &Target, cfg: &TunnelConfig) -> Result<(), RelayError> {
    run(
        tokio::io::stdin(),
        tokio::io::stdout(),
        relay,
        target,
        cfg,
        terminated(),
    )
    .await
}
