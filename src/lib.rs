//! iap-ssh: reach Compute Engine VMs through Identity-Aware Proxy TCP
//! forwarding with plain OpenSSH.
//!
//! Layout: [`relay`] speaks the IAP relay protocol, [`tunnel`] moves bytes
//! between a local stream and a relay session, [`auth`] finds credentials
//! and tokens, [`endpoints`]/[`tls`]/[`http`] reach Google, [`cli`] is the
//! command line.

pub mod auth;
pub mod cli;
pub mod endpoints;
pub mod error;
pub mod fsutil;
pub mod http;
pub mod relay;
pub mod tls;
pub mod tunnel;
