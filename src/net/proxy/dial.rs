//! The one way out for every connection iap-ssh makes, relay and REST
//! alike: the address to dial (`IAP_SSH_CONNECT_TO`, [`super::connect_to`]),
//! then a CONNECT tunnel through the proxy unless `NO_PROXY` exempts the
//! name, else a direct TCP connection. TLS then runs over it with the
//! URL's own name, whatever address was dialled.

use tokio::net::TcpStream;

use super::{Proxies, Proxy, ProxyError};

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The proxy could not be reached or refused the tunnel.
    #[error(transparent)]
    Proxy(ProxyError),
    /// The direct connection failed.
    #[error(transparent)]
    Io(std::io::Error),
}

/// Where a connection to a host goes.
#[derive(Debug, Clone)]
pub struct Route {
    /// The proxy to tunnel through, if any.
    pub proxy: Option<Proxy>,
    /// The address to dial (or to ask the proxy for).
    pub host: String,
    pub port: u16,
}

impl Route {
    /// The route to `host:port` under `proxies`; `Err` with the message
    /// when `IAP_SSH_CONNECT_TO` is malformed (before any connection).
    pub fn to(proxies: &Proxies, host: &str, port: u16) -> Result<Route, String> {
        let (dial_host, dial_port) = super::connect_to::route(host, port)?;
        Ok(Route {
            proxy: proxies.for_host(host).cloned(),
            host: dial_host,
            port: dial_port,
        })
    }

    /// A TCP connection along the route, with `TCP_NODELAY` (requests and
    /// relay frames are small and latency-bound).
    pub async fn dial(&self) -> Result<TcpStream, DialError> {
        let s = match &self.proxy {
            Some(p) => super::connect::open(p, &self.host, self.port)
                .await
                .map_err(DialError::Proxy)?,
            None => TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(DialError::Io)?,
        };
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}
