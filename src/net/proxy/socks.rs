//! The SOCKS5 exchange (RFC 1928) with a proxy: the greeting (no
//! authentication, or username/password per RFC 1929 when credentials are
//! set), then CONNECT to the target by name (the proxy resolves it:
//! `socks5h://`, gcloud's `proxy/rdns`) or by an address resolved here
//! (`socks5://`). A success leaves a byte stream to the target; TLS runs
//! inside it with the target's name. The message layouts are pure
//! functions, tested against the RFCs' bytes.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Proxy, ProxyError, authority};

/// The greeting: version 5 and the methods we offer (0 none, 2
/// username/password).
pub fn greeting(with_password: bool) -> Vec<u8> {
    if with_password {
        vec![5, 2, 0, 2]
    } else {
        vec![5, 1, 0]
    }
}

/// RFC 1929's username/password request; None when a field is over 255
/// bytes (the format's limit).
pub fn password_request(user: &str, password: &str) -> Option<Vec<u8>> {
    let (u, p) = (user.as_bytes(), password.as_bytes());
    let mut v = vec![1, u8::try_from(u.len()).ok()?];
    v.extend_from_slice(u);
    v.push(u8::try_from(p.len()).ok()?);
    v.extend_from_slice(p);
    Some(v)
}

/// Where to connect: a name the proxy resolves, or an address.
pub enum Dest<'a> {
    Name(&'a str),
    Addr(std::net::IpAddr),
}

/// The CONNECT request; None for a name over 255 bytes.
pub fn connect_request(dest: &Dest, port: u16) -> Option<Vec<u8>> {
    let mut v = vec![5, 1, 0];
    match dest {
        Dest::Addr(std::net::IpAddr::V4(a)) => {
            v.push(1);
            v.extend_from_slice(&a.octets());
        }
        Dest::Addr(std::net::IpAddr::V6(a)) => {
            v.push(4);
            v.extend_from_slice(&a.octets());
        }
        Dest::Name(n) => {
            v.push(3);
            v.push(u8::try_from(n.len()).ok()?);
            v.extend_from_slice(n.as_bytes());
        }
    }
    v.extend_from_slice(&port.to_be_bytes());
    Some(v)
}

/// What a reply code means (RFC 1928 §6).
pub fn reply_text(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown reply",
    }
}

/// A TCP connection to `host:port` through the SOCKS5 `proxy`.
pub async fn open<S>(
    mut s: S,
    proxy: &Proxy,
    remote_dns: bool,
    host: &str,
    port: u16,
) -> Result<S, ProxyError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let addr = proxy.addr();
    let lost = |e: std::io::Error| ProxyError::Unreachable {
        proxy: addr.clone(),
        from: proxy.from,
        reason: e.to_string(),
    };
    let malformed = |what: &str| ProxyError::Malformed {
        proxy: addr.clone(),
        what: what.to_string(),
    };
    let auth_failed = |sent: bool| ProxyError::Auth {
        proxy: addr.clone(),
        from: proxy.from,
        offered: vec![],
        sent,
    };
    let with_password = proxy.user.is_some() || proxy.password.is_some();
    s.write_all(&greeting(with_password)).await.map_err(lost)?;
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await.map_err(lost)?;
    match choice {
        [5, 0] => {}
        [5, 2] if with_password => {
            let req = password_request(
                proxy.user.as_deref().unwrap_or(""),
                proxy.password.as_deref().unwrap_or(""),
            )
            .ok_or_else(|| malformed("a user or password over 255 bytes cannot be sent"))?;
            s.write_all(&req).await.map_err(lost)?;
            let mut status = [0u8; 2];
            s.read_exact(&mut status).await.map_err(lost)?;
            if status[1] != 0 {
                return Err(auth_failed(true));
            }
        }
        // No acceptable method: it wants credentials we did not offer
        // (or a method such as GSSAPI we do not speak).
        [5, 0xff] => return Err(auth_failed(with_password)),
        _ => return Err(malformed("not a SOCKS5 answer to the greeting")),
    }
    // A name is sent as is for the proxy to resolve; otherwise resolved
    // here (the first address), as socks5:// means.
    let resolved;
    let dest = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => Dest::Addr(ip),
        Err(_) if remote_dns => Dest::Name(host),
        Err(_) => {
            resolved = tokio::net::lookup_host((host, port))
                .await
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| ProxyError::Refused {
                    proxy: addr.clone(),
                    target: authority(host, port),
                    status_line: format!(
                        "{host} does not resolve here (socks5:// resolves names locally; socks5h:// lets the proxy do it)"
                    ),
                })?;
            Dest::Addr(resolved.ip())
        }
    };
    let req =
        connect_request(&dest, port).ok_or_else(|| malformed("a host name over 255 bytes"))?;
    s.write_all(&req).await.map_err(lost)?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.map_err(lost)?;
    if head[0] != 5 {
        return Err(malformed("not a SOCKS5 reply to CONNECT"));
    }
    if head[1] != 0 {
        return Err(ProxyError::Refused {
            proxy: addr.clone(),
            target: authority(host, port),
            status_line: format!("SOCKS5 reply {}: {}", head[1], reply_text(head[1])),
        });
    }
    // The bound address, which we do not need: read past it.
    let len = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut n = [0u8; 1];
            s.read_exact(&mut n).await.map_err(lost)?;
            n[0] as usize
        }
        _ => return Err(malformed("an unknown address type in the reply")),
    };
    let mut rest = vec![0u8; len + 2];
    s.read_exact(&mut rest).await.map_err(lost)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    #[test]
    fn messages_are_the_rfcs() {
        assert_eq!(greeting(false), [5, 1, 0]);
        assert_eq!(greeting(true), [5, 2, 0, 2]);
        assert_eq!(
            password_request("ann", "pw").unwrap(),
            [1, 3, b'a', b'n', b'n', 2, b'p', b'w']
        );
        assert!(password_request(&"x".repeat(256), "").is_none());
        assert_eq!(
            connect_request(&Dest::Name("tunnel.cloudproxy.app"), 443).unwrap(),
            [&[5u8, 1, 0, 3, 21][..], b"tunnel.cloudproxy.app", &[1, 187]].concat()
        );
        assert_eq!(
            connect_request(&Dest::Addr("10.1.2.3".parse().unwrap()), 22).unwrap(),
            [5, 1, 0, 1, 10, 1, 2, 3, 0, 22]
        );
        let v6 = connect_request(&Dest::Addr("::1".parse().unwrap()), 443).unwrap();
        assert_eq!(&v6[..4], &[5, 1, 0, 4]);
        assert_eq!(v6.len(), 4 + 16 + 2);
        assert!(connect_request(&Dest::Name(&"a".repeat(256)), 1).is_none());
        assert_eq!(reply_text(2), "connection not allowed by ruleset");
    }

    /// A one-shot SOCKS server that answers `answers` in turn, each after
    /// reading what the client sent; returns all it read.
    async fn scripted(answers: Vec<Vec<u8>>) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut seen = Vec::new();
            for a in answers {
                let mut b = [0u8; 512];
                let n = s.read(&mut b).await.unwrap();
                seen.extend_from_slice(&b[..n]);
                s.write_all(&a).await.unwrap();
            }
            seen
        });
        (port, h)
    }

    async fn run(port: u16, user: Option<&str>) -> Result<TcpStream, ProxyError> {
        let p = Proxy {
            kind: super::super::Kind::Socks5 { remote_dns: true },
            host: "127.0.0.1".into(),
            port,
            user: user.map(Into::into),
            password: user.map(|_| "pw".into()),
            from: "ALL_PROXY",
        };
        let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        open(s, &p, true, "tunnel.cloudproxy.app", 443).await
    }

    #[tokio::test]
    async fn handshakes_and_refusals() {
        // With credentials: greeting, RFC 1929, CONNECT by name, success
        // with a bound IPv4 address.
        let (port, h) = scripted(vec![
            vec![5, 2],
            vec![1, 0],
            vec![5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90],
        ])
        .await;
        run(port, Some("ann")).await.unwrap();
        let want = [
            &[5u8, 2, 0, 2][..],
            &[1, 3, b'a', b'n', b'n', 2, b'p', b'w'],
            &[5, 1, 0, 3, 21],
            b"tunnel.cloudproxy.app",
            &[1, 187],
        ]
        .concat();
        assert_eq!(h.await.unwrap(), want);

        // The ruleset refuses the target: its reply, named.
        let (port, _h) = scripted(vec![vec![5, 0], vec![5, 2, 0, 1, 0, 0, 0, 0, 0, 0]]).await;
        let e = run(port, None).await.unwrap_err();
        assert!(
            e.to_string().ends_with(
                "refused CONNECT to tunnel.cloudproxy.app:443: SOCKS5 reply 2: connection not allowed by ruleset"
            ),
            "{e}"
        );
        // Credentials wanted and none set; or set and refused.
        let (port, _h) = scripted(vec![vec![5, 0xff]]).await;
        let e = run(port, None).await.unwrap_err();
        assert!(
            e.to_string()
                .ends_with("ALL_PROXY gives no user and password"),
            "{e}"
        );
        let (port, _h) = scripted(vec![vec![5, 2], vec![1, 1]]).await;
        let e = run(port, Some("ann")).await.unwrap_err();
        assert!(
            e.to_string().ends_with("from ALL_PROXY were refused"),
            "{e}"
        );
        // Not SOCKS at all (an HTTP proxy's answer).
        let (port, _h) = scripted(vec![b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()]).await;
        let e = run(port, None).await.unwrap_err();
        assert!(matches!(e, ProxyError::Malformed { .. }), "{e}");
    }
}
