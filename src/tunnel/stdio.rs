//! The ProxyCommand byte source: stdin → relay → stdout.

use super::{Relay, TunnelConfig, run};
use crate::relay::RelayError;
use crate::relay::url::Target;

/// Carries stdin/stdout through a relay session to `target`.
pub async fn proxy(relay: &Relay, target: &Target, cfg: &TunnelConfig) -> Result<(), RelayError> {
    run(tokio::io::stdin(), tokio::io::stdout(), relay, target, cfg).await
}
