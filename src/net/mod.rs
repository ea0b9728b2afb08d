//! The network layer: everything below the relay and the API clients that
//! opens a connection to Google. [`endpoints`] says where (universe domain,
//! overrides, mTLS hosts), [`proxy`] how to get there (direct, HTTP CONNECT,
//! SOCKS5, `IAP_SSH_CONNECT_TO`), [`tls`] whom to trust, [`mtls`] which
//! client certificate to present, and [`http`] is the HTTP client the
//! services use. It knows nothing of credentials beyond carrying a bearer
//! token, nor of commands.

pub mod endpoints;
pub mod http;
pub mod mtls;
pub mod proxy;
pub mod tls;
