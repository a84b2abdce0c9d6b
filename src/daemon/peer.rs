//! Who may talk to a daemon process over its socket.
//!
//! The socket file is mode 0700 and owned by the user Apache's children
//! run as (or socket-user=), but a file mode is one mistake away from open:
//! a chmod by hand, a socket prefix on a file system that ignores modes,
//! the moment between bind() and chmod() at startup, a process holding
//! CAP_DAC_OVERRIDE without being root. A connection is a request with
//! whatever REMOTE_USER or REMOTE_ADDR its sender wrote, so the daemon also
//! asks the kernel who connected (SO_PEERCRED, fixed at connect() time) and
//! drops a stranger before reading a byte from it.

use super::GroupRuntime;
use crate::apache::log::{self, Level};
use crate::apache::process as proc_edge;
use nix::errno::Errno;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::Uid;
use std::fmt;
use std::os::unix::net::UnixStream;

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// The peer runs as a uid that may not connect.
    Stranger {
        uid: u32,
        pid: i32,
        /// The uids that may connect and why, for the log line.
        allowed: Vec<(u32, &'static str)>,
    },
    /// The kernel would not say who the peer is.
    Unknown(Errno),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::Stranger { uid, pid, allowed } => {
                let allowed: Vec<String> = allowed
                    .iter()
                    .map(|(uid, why)| format!("{uid} ({why})"))
                    .collect();
                write!(
                    f,
                    "refused a connection to its socket from uid {uid} (process {pid}); only these uids may connect: {}",
                    allowed.join(", ")
                )
            }
            PeerError::Unknown(e) => write!(
                f,
                "refused a connection to its socket: cannot tell who connected (SO_PEERCRED: {e})"
            ),
        }
    }
}

/// The uids that may connect to `group`'s socket: Apache's User (the
/// children that proxy requests), root, socket-user= (children running as
/// another user, e.g. under mpm-itk), and this process's own uid, which can
/// do all the daemon does anyway and is the children's uid too when Apache
/// was not started as root (User is then not applied).
fn allowed_uids(group: &GroupRuntime) -> Vec<(u32, &'static str)> {
    let socket_user = group.options.socket_user.as_ref();
    let candidates = [
        Some((proc_edge::worker_identity().uid, "Apache's User")),
        Some((0, "root")),
        socket_user.map(|u| (u.uid, "socket-user=")),
        Some((Uid::effective().as_raw(), "this daemon's user")),
    ];
    let mut allowed: Vec<(u32, &'static str)> = Vec::new();
    for (uid, why) in candidates.into_iter().flatten() {
        if !allowed.iter().any(|(u, _)| *u == uid) {
            allowed.push((uid, why));
        }
    }
    allowed
}

/// Checks the peer of `stream` against `allowed`.
pub fn check(stream: &UnixStream, allowed: &[(u32, &'static str)]) -> Result<(), PeerError> {
    let cred = getsockopt(stream, PeerCredentials).map_err(PeerError::Unknown)?;
    if allowed.iter().any(|(uid, _)| *uid == cred.uid()) {
        Ok(())
    } else {
        Err(PeerError::Stranger {
            uid: cred.uid(),
            pid: cred.pid(),
            allowed: allowed.to_vec(),
        })
    }
}

/// True if the peer of `stream` may talk to this daemon process of
/// `group`; otherwise logs one line naming the peer's uid, the group and
/// this process, and the caller drops the connection unread.
pub fn admit(stream: &UnixStream, group: &GroupRuntime, pid: u32) -> bool {
    // A daemon process serves one group and its uids do not change once it
    // serves: worked out once, not per connection.
    static ALLOWED: std::sync::OnceLock<Vec<(u32, &'static str)>> = std::sync::OnceLock::new();
    let allowed = ALLOWED.get_or_init(|| allowed_uids(group));
    match check(stream, allowed) {
        Ok(()) => true,
        Err(e) => {
            log::server(
                None,
                Level::Error,
                &format!("daemon process '{}' (pid {pid}): {e}", group.name),
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowed_uids_pass() {
        // Both ends of a pair are this process: its own uid is the peer's.
        let (a, _b) = UnixStream::pair().unwrap();
        let me = Uid::effective().as_raw();
        assert_eq!(check(&a, &[(me, "me")]), Ok(()));
        let other = me.wrapping_add(1);
        match check(&a, &[(other, "other")]) {
            Err(PeerError::Stranger { uid, pid, allowed }) => {
                assert_eq!(uid, me);
                assert_eq!(pid, std::process::id() as i32);
                assert_eq!(allowed, vec![(other, "other")]);
            }
            r => panic!("{r:?}"),
        }
    }
}
