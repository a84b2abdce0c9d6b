//! The Apache child's side of an upgraded connection (a WebSocket): after
//! the daemon's `Tunnel` frame, bytes go both ways between the client and
//! the daemon unchanged, as mod_proxy_wstunnel relays them, until either
//! side closes, nothing moves for the idle timeout, or the child stops.

use crate::apache::tunnel::ClientTunnel;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// How a tunnel ended.
#[derive(Debug)]
pub enum TunnelEnd {
    /// The daemon closed its side (the application is done).
    DaemonClosed,
    /// The client closed, and then the daemon.
    ClientClosed,
    /// Nothing went either way for the idle timeout.
    Idle(Duration),
    /// This Apache child is stopping.
    Abandoned,
    /// Reading from or writing to the client failed.
    ClientFailed(std::io::Error),
    /// Reading from or writing to the daemon failed.
    DaemonFailed(std::io::Error),
}

impl std::fmt::Display for TunnelEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TunnelEnd::DaemonClosed => write!(f, "the application closed it"),
            TunnelEnd::ClientClosed => write!(f, "the client closed it"),
            TunnelEnd::Idle(t) => write!(f, "nothing moved for {}s", t.as_secs_f64()),
            TunnelEnd::Abandoned => write!(f, "the Apache child is stopping"),
            TunnelEnd::ClientFailed(e) => write!(f, "the client connection failed: {e}"),
            TunnelEnd::DaemonFailed(e) => write!(f, "the daemon connection failed: {e}"),
        }
    }
}

/// What went through a tunnel, and how it ended.
pub struct TunnelReport {
    pub to_daemon: u64,
    pub to_client: u64,
    pub end: TunnelEnd,
}

/// Relays until the tunnel ends. `early` holds daemon bytes read past the
/// `Tunnel` frame (they go to the client first); `idle` is how long the
/// tunnel may stay silent both ways.
pub fn relay(
    client: &mut ClientTunnel<'_>,
    daemon: &UnixStream,
    early: &[u8],
    idle: Duration,
) -> TunnelReport {
    let mut report = TunnelReport {
        to_daemon: 0,
        to_client: 0,
        end: TunnelEnd::DaemonClosed,
    };
    report.end = run(client, daemon, early, idle, &mut report);
    report
}

fn run(
    client: &mut ClientTunnel<'_>,
    daemon: &UnixStream,
    early: &[u8],
    idle: Duration,
    report: &mut TunnelReport,
) -> TunnelEnd {
    // A daemon that stops reading must not hold this thread for ever.
    let _ = daemon.set_write_timeout(Some(idle.max(Duration::from_secs(1))));
    if !early.is_empty() {
        if let Err(e) = client.write(early) {
            return TunnelEnd::ClientFailed(e);
        }
        report.to_client += early.len() as u64;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut client_open = true;
    let mut last = Instant::now();
    loop {
        // The client's bytes first, until there are none: mod_ssl may hold
        // decrypted bytes that a poll of the socket does not show.
        while client_open {
            match client.read(&mut buf) {
                Ok(0) => {
                    // Half-close: the application sees the end, and may
                    // still answer (a WebSocket close handshake).
                    client_open = false;
                    let _ = daemon.shutdown(std::net::Shutdown::Write);
                }
                Ok(n) => {
                    if let Err(e) = (&*daemon).write_all(&buf[..n]) {
                        return TunnelEnd::DaemonFailed(e);
                    }
                    report.to_daemon += n as u64;
                    last = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return TunnelEnd::ClientFailed(e),
            }
        }
        if super::relays::abandoned() {
            return TunnelEnd::Abandoned;
        }
        let quiet = last.elapsed();
        if quiet >= idle {
            return TunnelEnd::Idle(idle);
        }
        // Woken at least once a second to notice the child stopping.
        let wait = (idle - quiet).min(Duration::from_secs(1));
        let daemon_ready =
            match wait_readable(daemon.as_fd(), client_open.then(|| client.fd()), wait) {
                Ok(ready) => ready,
                Err(e) => return TunnelEnd::DaemonFailed(e),
            };
        if daemon_ready {
            match (&*daemon).read(&mut buf) {
                Ok(0) if client_open => return TunnelEnd::DaemonClosed,
                Ok(0) => return TunnelEnd::ClientClosed,
                Ok(n) => {
                    if let Err(e) = client.write(&buf[..n]) {
                        return TunnelEnd::ClientFailed(e);
                    }
                    report.to_client += n as u64;
                    last = Instant::now();
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => return TunnelEnd::DaemonFailed(e),
            }
        }
    }
}

/// Waits up to `wait` for either side to have something to read (or to
/// have closed); whether the daemon's side has.
fn wait_readable(
    daemon: BorrowedFd<'_>,
    client: Option<BorrowedFd<'_>>,
    wait: Duration,
) -> std::io::Result<bool> {
    let mut fds = vec![PollFd::new(daemon, PollFlags::POLLIN)];
    if let Some(client) = client {
        fds.push(PollFd::new(client, PollFlags::POLLIN));
    }
    let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, timeout) {
        Ok(_) => Ok(fds[0].revents().is_some_and(|r| !r.is_empty())),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
