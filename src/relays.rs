//! The connections the threads of this Apache child are relaying over
//! (requests to daemons, and tunnels to applications in either mode), so
//! that a child told to stop at once (`-k stop`, `-k restart`) ends them: a
//! thread waiting for a daemon's answer, or relaying a WebSocket, is
//! otherwise deaf to Apache's stop until the other side speaks or
//! socket-timeout passes, and Apache's stop waits on the child, then kills
//! it.

use parking_lot::Mutex;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};

static RELAYS: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());
static ABANDONED: AtomicBool = AtomicBool::new(false);

/// A relay in progress; dropped (before its socket is closed) when it ends.
pub struct Relay(RawFd);

/// Notes `stream` as a relay in progress until the returned value drops.
/// Declare it after the stream, so that it drops first: the fd is never
/// shut down after its number was closed and reused.
pub fn begin(stream: &UnixStream) -> Relay {
    let fd = stream.as_raw_fd();
    RELAYS.lock().push(fd);
    Relay(fd)
}

impl Drop for Relay {
    fn drop(&mut self) {
        let mut relays = RELAYS.lock();
        if let Some(at) = relays.iter().position(|&fd| fd == self.0) {
            relays.swap_remove(at);
        }
    }
}

/// Ends every relay in progress: their sockets are shut down, so the
/// threads waiting on them return at once.
pub fn abandon_all() {
    ABANDONED.store(true, Ordering::SeqCst);
    for &fd in RELAYS.lock().iter() {
        // Under the lock: the fd is still the relay's (see `begin`).
        let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Both);
    }
}

/// Whether this child ended its relays (a broken relay is then not the
/// daemon's doing).
pub fn abandoned() -> bool {
    ABANDONED.load(Ordering::SeqCst)
}
