//! The ProxyCommand byte source: stdin → relay → stdout.
//!
//! When stdin/stdout are pipes or sockets (as under ssh), they are driven
//! non-blocking through the reactor, with no thread hand-off per read or
//! write; their original file status flags are restored on exit. Anything
//! else (a terminal, a file) goes through tokio's blocking stdio.

use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Relay, TunnelConfig, run};
use crate::relay::RelayError;
use crate::relay::url::Target;

/// Original `fcntl(F_GETFL)` flags of descriptors we made non-blocking.
static SAVED_FLAGS: Mutex<Vec<(RawFd, libc::c_int)>> = Mutex::new(Vec::new());

/// Puts the descriptors back as we found them (other processes may share
/// the same open file description).
pub fn restore_flags() {
    let mut saved = SAVED_FLAGS.lock().unwrap_or_else(|e| e.into_inner());
    for (fd, flags) in saved.drain(..) {
        // SAFETY: fcntl on a descriptor number with plain integer arguments.
        unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
    }
}

/// [`restore_flags`] from a panic hook: never blocks (the panicking thread
/// may hold the lock).
pub fn restore_flags_after_panic() {
    if let Ok(mut saved) = SAVED_FLAGS.try_lock() {
        for (fd, flags) in saved.drain(..) {
            // SAFETY: fcntl on a descriptor number with plain integer arguments.
            unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
        }
    }
}

struct Fd(RawFd);

impl std::os::fd::AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A pipe or socket descriptor, non-blocking and registered with the reactor.
pub struct NonBlocking(AsyncFd<Fd>);

impl NonBlocking {
    /// Some when `fd` is a pipe or a socket that could be made non-blocking.
    pub fn new(fd: RawFd) -> Option<NonBlocking> {
        // SAFETY: fstat fills a plain struct for a descriptor number.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return None;
        }
        let kind = st.st_mode & libc::S_IFMT;
        if kind != libc::S_IFIFO && kind != libc::S_IFSOCK {
            return None;
        }
        // SAFETY: fcntl with integer arguments.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return None;
        }
        if flags & libc::O_NONBLOCK == 0 {
            if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
                return None;
            }
            SAVED_FLAGS.lock().unwrap().push((fd, flags));
        }
        // SAFETY: descriptors 0 and 1 stay open for the whole process and
        // are never closed or replaced by us while registered.
        match unsafe { AsyncFd::register(Fd(fd)) } {
            Ok(a) => Some(NonBlocking(a)),
            Err(_) => {
                // Not pollable after all: back to blocking for tokio's stdio.
                let mut saved = SAVED_FLAGS.lock().unwrap();
                if let Some(i) = saved.iter().position(|(f, _)| *f == fd) {
                    let (_, flags) = saved.remove(i);
                    // SAFETY: fcntl with integer arguments.
                    unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
                }
                None
            }
        }
    }
}

fn cvt(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl AsyncRead for NonBlocking {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            // SAFETY: reading into an initialised, exclusively borrowed slice.
            let res = guard.try_io(|fd| {
                cvt(unsafe {
                    libc::read(fd.get_ref().0, unfilled.as_mut_ptr().cast(), unfilled.len())
                })
            });
            match res {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for NonBlocking {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            // SAFETY: writing from a borrowed slice.
            let res = guard.try_io(|fd| {
                cvt(unsafe { libc::write(fd.get_ref().0, data.as_ptr().cast(), data.len()) })
            });
            match res {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A future resolving on SIGHUP (what ssh sends its ProxyCommand when it
/// exits), SIGTERM or SIGINT. The handlers are installed now, not when the
/// future is first polled, so an early signal is not fatal.
fn terminated() -> impl std::future::Future<Output = ()> + Send {
    use tokio::signal::unix::{SignalKind, signal};
    let sigs = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut hup), Ok(mut term), Ok(mut int)) = sigs else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = hup.recv() => {}
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}

/// How long a signalled proxy waits for its clean close before it exits
/// anyway (it may be connecting or resuming, where there is no session to
/// close).
const SIGNAL_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Carries stdin/stdout through a relay session to `target`; a signal ends
/// the session cleanly (Close 1000) instead of dropping it, and the process
/// always ends soon after a signal, whatever it was doing.
pub async fn proxy(relay: &Relay, target: &Target, cfg: &TunnelConfig) -> Result<(), RelayError> {
    let signalled = terminated();
    let stop_now = std::sync::Arc::new(tokio::sync::Notify::new());
    let stop = {
        let n = stop_now.clone();
        async move { n.notified().await }
    };
    let input: Pin<Box<dyn AsyncRead + Send>> = match NonBlocking::new(0) {
        Some(nb) => Box::pin(nb),
        None => Box::pin(tokio::io::stdin()),
    };
    let output: Pin<Box<dyn AsyncWrite + Send>> = match NonBlocking::new(1) {
        Some(nb) => Box::pin(nb),
        None => Box::pin(tokio::io::stdout()),
    };
    // For the test of the panic hook: a bug surfacing mid-session.
    if std::env::var_os("IAP_SSH_TEST_PANIC").is_some() {
        panic!("IAP_SSH_TEST_PANIC is set");
    }
    let r = tokio::select! {
        r = run(input, output, relay, target, cfg, stop) => r,
        () = async {
            signalled.await;
            tracing::debug!("signalled: closing");
            stop_now.notify_one();
            tokio::time::sleep(SIGNAL_GRACE).await;
        } => Ok(()),
    };
    restore_flags();
    r
}
