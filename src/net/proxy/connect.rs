//! The CONNECT exchange with an HTTP proxy: HTTP/1.1 `CONNECT host:port`
//! with a `Host` header and, when credentials are set, Basic
//! `Proxy-Authorization` sent up front; a 2xx answer leaves a byte stream
//! to the target (TLS runs inside it, with the target's name), anything
//! else is the proxy's refusal, never the target's.

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Kind, Proxy, ProxyError, authority};

/// Longest answer header we read.
const MAX_HEADER: usize = 16 * 1024;

/// A TCP connection to `host:port` through `proxy` (HTTP CONNECT here,
/// SOCKS5 in [`super::socks`]).
pub async fn open(proxy: &Proxy, host: &str, port: u16) -> Result<TcpStream, ProxyError> {
    let s = TcpStream::connect((proxy.host.as_str(), proxy.port))
        .await
        .map_err(|e| ProxyError::Unreachable {
            proxy: proxy.addr(),
            from: proxy.from,
            reason: e.to_string(),
        })?;
    let _ = s.set_nodelay(true);
    if let Kind::Socks5 { remote_dns } = proxy.kind {
        return super::socks::open(s, proxy, remote_dns, host, port).await;
    }
    handshake(s, proxy, host, port).await
}

/// The CONNECT exchange on `s`, a connection to the HTTP `proxy` (any
/// stream, so that it can be fuzzed: the answer is the proxy's bytes).
pub async fn handshake<S>(mut s: S, proxy: &Proxy, host: &str, port: u16) -> Result<S, ProxyError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let target = authority(host, port);
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if proxy.user.is_some() || proxy.password.is_some() {
        let cred = format!(
            "{}:{}",
            proxy.user.as_deref().unwrap_or(""),
            proxy.password.as_deref().unwrap_or("")
        );
        req.push_str("Proxy-Authorization: Basic ");
        req.push_str(&base64::engine::general_purpose::STANDARD.encode(cred));
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let lost = |e: std::io::Error| ProxyError::Unreachable {
        proxy: proxy.addr(),
        from: proxy.from,
        reason: e.to_string(),
    };
    s.write_all(req.as_bytes()).await.map_err(lost)?;
    // Read the answer's header only: after a 2xx the next bytes are the
    // target's, and the target speaks only after our TLS hello.
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let end = loop {
        let n = s.read(&mut buf).await.map_err(lost)?;
        if n == 0 {
            return Err(ProxyError::Malformed {
                proxy: proxy.addr(),
                what: "it closed the connection without an answer".into(),
            });
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = find(&head, b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > MAX_HEADER {
            return Err(ProxyError::Malformed {
                proxy: proxy.addr(),
                what: "an answer header over 16 KiB".into(),
            });
        }
    };
    let status_line = String::from_utf8_lossy(head.split(|b| *b == b'\n').next().unwrap_or(&[]))
        .trim()
        .to_string();
    let status_line = crate::error::printable(&status_line);
    let code = parse_status(&status_line).ok_or_else(|| ProxyError::Malformed {
        proxy: proxy.addr(),
        what: format!("'{status_line}' is not an HTTP status line"),
    })?;
    match code {
        200..=299 if head.len() == end => Ok(s),
        200..=299 => Err(ProxyError::Malformed {
            proxy: proxy.addr(),
            what: "data after the 2xx answer to CONNECT".into(),
        }),
        // 407 is the standard answer; some proxies (tinyproxy) say 401.
        401 | 407 => Err(ProxyError::Auth {
            proxy: proxy.addr(),
            from: proxy.from,
            offered: auth_schemes(&head[..end]),
            sent: proxy.user.is_some() || proxy.password.is_some(),
        }),
        _ => Err(ProxyError::Refused {
            proxy: proxy.addr(),
            target,
            status_line,
        }),
    }
}

/// The schemes of an answer's `Proxy-Authenticate` (or, from proxies that
/// answer 401, `WWW-Authenticate`) headers: each header's first word.
fn auth_schemes(head: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            let name = name.trim();
            (name.eq_ignore_ascii_case("proxy-authenticate")
                || name.eq_ignore_ascii_case("www-authenticate"))
            .then(|| value.split_whitespace().next())
            .flatten()
            .map(|w| crate::error::printable(w.trim_end_matches(',')))
        })
        .filter(|w| !w.is_empty() && w.len() <= 32)
        .collect();
    out.dedup();
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `HTTP/1.x NNN reason` → NNN.
fn parse_status(line: &str) -> Option<u16> {
    let mut f = line.split_whitespace();
    let version = f.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let code = f.next()?;
    (code.len() == 3).then(|| code.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A one-shot proxy that records the request and answers `answer`.
    async fn fake(answer: &'static [u8]) -> (u16, tokio::task::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while find(&req, b"\r\n\r\n").is_none() {
                let n = s.read(&mut b).await.unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&b[..n]);
            }
            s.write_all(answer).await.unwrap();
            String::from_utf8(req).unwrap()
        });
        (port, h)
    }

    fn proxy(port: u16, user: Option<&str>, pw: Option<&str>) -> Proxy {
        Proxy {
            kind: Kind::Http,
            host: "127.0.0.1".into(),
            port,
            user: user.map(Into::into),
            password: pw.map(Into::into),
            from: "https_proxy",
        }
    }

    #[tokio::test]
    async fn connect_with_basic_auth_up_front() {
        let (port, h) = fake(b"HTTP/1.1 200 Connection established\r\n\r\n").await;
        let r = open(&proxy(port, Some("al:ice"), Some("p w")), "fd00::1", 443).await;
        assert!(r.is_ok());
        let req = h.await.unwrap();
        let cred = base64::engine::general_purpose::STANDARD.encode("al:ice:p w");
        assert_eq!(
            req,
            format!(
                "CONNECT [fd00::1]:443 HTTP/1.1\r\nHost: [fd00::1]:443\r\nProxy-Authorization: Basic {cred}\r\n\r\n"
            )
        );
    }

    #[tokio::test]
    async fn refusals_name_the_proxy() {
        let (port, _h) = fake(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
        )
        .await;
        let e = open(&proxy(port, None, None), "relay", 443)
            .await
            .unwrap_err();
        assert!(matches!(e, ProxyError::Auth { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "proxy 127.0.0.1:{port} requires authentication, and https_proxy gives no user and password"
            )
        );
        assert!(e.fix().contains("http://USER:PASSWORD@HOST:PORT"));
        // Credentials sent and refused; a proxy that only speaks NTLM /
        // Negotiate (a Windows domain's).
        let cases: [(&'static [u8], &str); 2] = [
            (
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\n\r\n",
                "requires authentication: the user and password from https_proxy were refused",
            ),
            (
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM\r\nProxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n",
                "requires authentication by NTLM, Negotiate, which iap-ssh does not speak (only Basic)",
            ),
        ];
        let mut e = None;
        for (answer, want) in cases {
            let (port, _h) = fake(answer).await;
            let err = open(&proxy(port, Some("u"), Some("p")), "relay", 443)
                .await
                .unwrap_err();
            assert!(err.to_string().ends_with(want), "{err}");
            e = Some(err);
        }
        let e = e.unwrap();
        assert!(e.fix().contains("cntlm"), "{}", e.fix());
        let (port, h) =
            fake(b"HTTP/1.0 403 Forbidden\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\n\r\n<html>")
                .await;
        let e = open(&proxy(port, None, None), "relay", 8443)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("proxy 127.0.0.1:{port} refused CONNECT to relay:8443: HTTP/1.0 403 Forbidden")
        );
        assert!(!h.await.unwrap().contains("Proxy-Authorization"));
        let (port, _h) = fake(b"SSH-2.0-OpenSSH\r\n\r\n").await;
        let e = open(&proxy(port, None, None), "relay", 443)
            .await
            .unwrap_err();
        assert!(matches!(e, ProxyError::Malformed { .. }), "{e}");
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let e = open(&proxy(port, None, None), "relay", 443)
            .await
            .unwrap_err();
        assert!(matches!(e, ProxyError::Unreachable { .. }), "{e}");
    }
}
