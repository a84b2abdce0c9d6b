//! The Apache child's side of an upgraded connection (a WebSocket): after
//! the 101, bytes go both ways unchanged between the client and the
//! application's side (the daemon's connection after its `Tunnel` frame;
//! in embedded mode one end of a socket pair whose other end the
//! application holds), as mod_proxy_wstunnel relays them, until either
//! side closes, nothing moves for the idle timeout, or the child stops.

use crate::apache::log::Level;
use crate::apache::request::Request;
use crate::apache::status;
use crate::apache::tunnel::ClientTunnel;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// How a tunnel ended.
#[derive(Debug)]
pub enum TunnelEnd {
    /// The application's side closed (the application is done).
    ApplicationClosed,
    /// The client closed, and then the application's side.
    ClientClosed,
    /// Nothing went either way for the idle timeout.
    Idle(Duration),
    /// This Apache child is stopping.
    Abandoned,
    /// Reading from or writing to the client failed.
    ClientFailed(std::io::Error),
    /// Reading from or writing to the application's side failed.
    ApplicationFailed(std::io::Error),
}

impl std::fmt::Display for TunnelEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TunnelEnd::ApplicationClosed => write!(f, "the application closed it"),
            TunnelEnd::ClientClosed => write!(f, "the client closed it"),
            TunnelEnd::Idle(t) => write!(f, "nothing moved for {}s", t.as_secs_f64()),
            TunnelEnd::Abandoned => write!(f, "the Apache child is stopping"),
            TunnelEnd::ClientFailed(e) => write!(f, "the client connection failed: {e}"),
            TunnelEnd::ApplicationFailed(e) => {
                write!(f, "the connection to the application failed: {e}")
            }
        }
    }
}

/// What went through a tunnel, and how it ended.
pub struct TunnelReport {
    pub to_application: u64,
    pub to_client: u64,
    pub end: TunnelEnd,
}

/// Sends the 101 set on `r` and relays its client connection to
/// `application` until the tunnel ends, then logs how it went (`who` names
/// the application's side); the hook status. A client connection that
/// cannot be upgraded (HTTP/1.0, HTTP/2) gets `refused` and a log line.
pub fn carry(
    r: &mut Request,
    application: &UnixStream,
    early: &[u8],
    idle: Duration,
    who: &str,
    refused: i32,
) -> i32 {
    let Some(mut client) = r.switch_protocols() else {
        r.log(
            Level::Error,
            &format!(
                "{who} switched protocols, which this client connection cannot (HTTP/1.0, or HTTP/2)"
            ),
        );
        return refused;
    };
    let report = relay(&mut client, application, early, idle);
    r.log(
        Level::Info,
        &format!(
            "connection upgraded to {who} closed after {} bytes from the client and {} to it: {}",
            report.to_application, report.to_client, report.end
        ),
    );
    status::DONE
}

/// Relays until the tunnel ends. `early` holds the application's bytes
/// read already (a daemon's past its `Tunnel` frame): they go to the
/// client first. `idle` is how long the tunnel may stay silent both ways.
pub fn relay(
    client: &mut ClientTunnel<'_>,
    application: &UnixStream,
    early: &[u8],
    idle: Duration,
) -> TunnelReport {
    let mut report = TunnelReport {
        to_application: 0,
        to_client: 0,
        end: TunnelEnd::ApplicationClosed,
    };
    report.end = run(client, application, early, idle, &mut report);
    report
}

fn run(
    client: &mut ClientTunnel<'_>,
    application: &UnixStream,
    early: &[u8],
    idle: Duration,
    report: &mut TunnelReport,
) -> TunnelEnd {
    // An application that stops reading must not hold this thread for ever.
    let _ = application.set_write_timeout(Some(idle.max(Duration::from_secs(1))));
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
                    let _ = application.shutdown(std::net::Shutdown::Write);
                }
                Ok(n) => {
                    if let Err(e) = (&*application).write_all(&buf[..n]) {
                        return TunnelEnd::ApplicationFailed(e);
                    }
                    report.to_application += n as u64;
                    last = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return TunnelEnd::ClientFailed(e),
            }
        }
        if crate::relays::abandoned() {
            return TunnelEnd::Abandoned;
        }
        let quiet = last.elapsed();
        if quiet >= idle {
            return TunnelEnd::Idle(idle);
        }
        // Woken at least once a second to notice the child stopping.
        let wait = (idle - quiet).min(Duration::from_secs(1));
        let application_ready =
            match wait_readable(application.as_fd(), client_open.then(|| client.fd()), wait) {
                Ok(ready) => ready,
                Err(e) => return TunnelEnd::ApplicationFailed(e),
            };
        if application_ready {
            match (&*application).read(&mut buf) {
                Ok(0) if client_open => return TunnelEnd::ApplicationClosed,
                Ok(0) => return TunnelEnd::ClientClosed,
                Ok(n) => {
                    if let Err(e) = client.write(&buf[..n]) {
                        return TunnelEnd::ClientFailed(e);
                    }
                    report.to_client += n as u64;
                    last = Instant::now();
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => return TunnelEnd::ApplicationFailed(e),
            }
        }
    }
}

/// Waits up to `wait` for either side to have something to read (or to
/// have closed); whether the application's side has.
fn wait_readable(
    application: BorrowedFd<'_>,
    client: Option<BorrowedFd<'_>>,
    wait: Duration,
) -> std::io::Result<bool> {
    let mut fds = vec![PollFd::new(application, PollFlags::POLLIN)];
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
