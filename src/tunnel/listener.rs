//! The port-forwarding byte source: local TCP listeners, one relay session
//! per accepted connection, and an orderly shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{Relay, TunnelConfig, run};
use crate::relay::url::Target;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("Local port [{0}] is not available.")]
    InUse(u16),
    #[error("cannot resolve local host `{host}`: {reason}")]
    Resolve { host: String, reason: String },
    #[error("Unable to open socket on port [{port}]: {reason}")]
    Other { port: u16, reason: String },
}

/// Binds `host:port` on every address the host resolves to (both
/// 127.0.0.1 and ::1 for `localhost`), all with the same port; port 0 picks
/// a free one. Addresses the machine lacks (e.g. no IPv6) are skipped.
pub async fn bind(host: &str, port: u16) -> Result<Vec<TcpListener>, BindError> {
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| BindError::Resolve {
            host: host.into(),
            reason: e.to_string(),
        })?
        .collect();
    addrs.sort_by_key(|a| a.is_ipv6());
    addrs.dedup();
    if addrs.is_empty() {
        return Err(BindError::Resolve {
            host: host.into(),
            reason: "no address".into(),
        });
    }
    // With port 0 the port chosen for the first address may be taken on
    // another one: try a few times.
    for _ in 0..5 {
        match bind_all(&addrs, port).await {
            Err(BindError::InUse(_)) if port == 0 => continue,
            r => return r,
        }
    }
    Err(BindError::Other {
        port,
        reason: "no port free on every address".into(),
    })
}

async fn bind_all(addrs: &[SocketAddr], port: u16) -> Result<Vec<TcpListener>, BindError> {
    let mut out: Vec<TcpListener> = Vec::new();
    let mut chosen = port;
    for a in addrs {
        let mut a = *a;
        a.set_port(chosen);
        match TcpListener::bind(a).await {
            Ok(l) => {
                if chosen == 0 {
                    chosen = l.local_addr().map(|x| x.port()).unwrap_or(0);
                }
                out.push(l);
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Err(BindError::InUse(chosen)),
            Err(e)
                if e.kind() == io::ErrorKind::AddrNotAvailable || e.raw_os_error() == Some(97) =>
            {
                // This address family is not configured here.
                continue;
            }
            Err(e) => {
                return Err(BindError::Other {
                    port: chosen,
                    reason: e.to_string(),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(BindError::Other {
            port,
            reason: "no local address could be bound".into(),
        });
    }
    Ok(out)
}

/// One forward: its listeners and where accepted connections go.
pub struct Forward {
    pub listeners: Vec<TcpListener>,
    pub target: Target,
}

/// What [`serve`] did, for the caller's log.
#[derive(Debug, Default)]
pub struct ServeStats {
    pub accepted: u64,
    pub failed: u64,
}

/// Accepts connections on every forward until `shutdown` resolves; then
/// stops listening, gives open connections `grace` to finish, and closes the
/// rest cleanly (Close 1000).
pub async fn serve<S: Future<Output = ()>>(
    relay: Arc<Relay>,
    forwards: Vec<Forward>,
    cfg: TunnelConfig,
    shutdown: S,
    grace: Duration,
) -> ServeStats {
    let (stop_tx, stop_rx) = watch::channel(false);
    let accepted = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let cfg = Arc::new(cfg);
    let mut conns = JoinSet::new();
    let (conn_tx, mut conn_rx) =
        tokio::sync::mpsc::unbounded_channel::<(tokio::net::TcpStream, SocketAddr, Arc<Target>)>();
    let mut acceptors = JoinSet::new();
    for f in forwards {
        let target = Arc::new(f.target);
        for l in f.listeners {
            let tx = conn_tx.clone();
            let target = target.clone();
            acceptors.spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((s, peer)) => {
                            if tx.send((s, peer, target.clone())).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            // Out of file descriptors and the like: wait, go on.
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
        }
    }
    drop(conn_tx);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some((sock, peer, target)) = conn_rx.recv() => {
                accepted.fetch_add(1, Ordering::Relaxed);
                let _ = sock.set_nodelay(true);
                let relay = relay.clone();
                let cfg = cfg.clone();
                let failed = failed.clone();
                let mut stop = stop_rx.clone();
                conns.spawn(async move {
                    let (r, w) = sock.into_split();
                    let stopped = async move {
                        let _ = stop.wait_for(|v| *v).await;
                    };
                    tracing::info!("connection from {peer} to {target}");
                    if let Err(e) = run(r, w, &relay, &target, &cfg, stopped).await {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("{} (connection from {peer})", e.into_user_error().line());
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {
                // For `-v` and the forward soak (scripts/soak.sh): what
                // stays alive once a connection is gone.
                tracing::info!(
                    "connection closed; {} open, {} tasks alive",
                    conns.len(),
                    tokio::runtime::Handle::current().metrics().num_alive_tasks()
                );
            }
        }
    }
    // Stop listening, let open connections finish, then close the rest.
    acceptors.abort_all();
    drop(conn_rx);
    let open = conns.len();
    if open > 0 {
        tracing::info!(
            "waiting up to {} s for {open} open connection(s)",
            grace.as_secs()
        );
    }
    let drained =
        tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        conns.abort_all();
    }
    ServeStats {
        accepted: accepted.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
    }
}
