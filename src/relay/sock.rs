//! The relay's TCP socket. Behind an HTTP proxy it acknowledges what
//! arrives at once while the connection is being set up: a proxy that does
//! not set `TCP_NODELAY` (tinyproxy) holds each small segment (Nagle) until
//! the one before is acknowledged, and Linux delays that ACK by 40 ms, so
//! the TLS and WebSocket handshakes and the relay's first frame paid 40 ms
//! each time (measured with `scripts/bench.sh`: first byte 50 ms through
//! tinyproxy, 9 ms direct). After setup it is a plain socket.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub struct RelaySock {
    tcp: TcpStream,
    /// Re-arm `TCP_QUICKACK` after every read (Linux re-enters delayed
    /// ACKs whenever we send right after receiving).
    quick_ack: bool,
}

impl RelaySock {
    pub fn new(tcp: TcpStream, quick_ack: bool) -> Self {
        let s = RelaySock { tcp, quick_ack };
        if quick_ack {
            s.ack_now();
        }
        s
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Ends the set-up phase (one last immediate ACK).
    pub fn setup_done(&mut self) {
        if self.quick_ack {
            self.ack_now();
            self.quick_ack = false;
        }
    }

    fn ack_now(&self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let one: libc::c_int = 1;
            // SAFETY: a valid socket descriptor and a c_int option value.
            unsafe {
                libc::setsockopt(
                    self.tcp.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_QUICKACK,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }
}

impl AsyncRead for RelaySock {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if this.quick_ack && matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.ack_now();
        }
        r
    }
}

impl AsyncWrite for RelaySock {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, b)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}
