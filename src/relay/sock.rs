//! The relay's TCP socket. Behind an HTTP proxy it acknowledges what
//! arrives at once while the connection is being set up: a proxy that does
//! not set `TCP_NODELAY` (tinyproxy) holds each small segment (Nagle) until
//! the one before is acknowledged, and Linux delays that ACK by 40 ms, so
//! the TLS and WebSocket handshakes and the relay's first frame paid 40 ms
//! each time (measured with `scripts/bench.sh`: first byte 50 ms through
//! tinyproxy, 9 ms direct). It goes on for the first reads after setup
//! (the relay's first frame, the start of the SSH handshake), then it is
//! a plain socket: bulk data needs no help, and a syscall per read would
//! cost.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Reads after setup that still acknowledge at once.
const QUICK_READS_AFTER_SETUP: u32 = 32;

pub struct RelaySock {
    tcp: TcpStream,
    /// Re-arm `TCP_QUICKACK` after this many more reads (Linux re-enters
    /// delayed ACKs whenever we send right after receiving); 0: off.
    quick_reads: u32,
}

impl RelaySock {
    pub fn new(tcp: TcpStream, quick_ack: bool) -> Self {
        let s = RelaySock {
            tcp,
            quick_reads: if quick_ack { u32::MAX } else { 0 },
        };
        if quick_ack {
            s.ack_now();
        }
        s
    }

    /// Ends the set-up phase: an immediate ACK, then a few more reads.
    pub fn setup_done(&mut self) {
        if self.quick_reads > 0 {
            self.ack_now();
            self.quick_reads = QUICK_READS_AFTER_SETUP;
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
        if this.quick_reads > 0 && matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.quick_reads -= 1;
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
