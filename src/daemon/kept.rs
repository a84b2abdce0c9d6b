//! The Apache child's connections to daemon processes kept open between
//! requests (docs/protocol.md, "Connections"): after a clean exchange the
//! connection goes back here, and the next request to the group takes one
//! only if the process at its other end has a seat left on the group's
//! board, i.e. a request thread waiting that no other worker was promised.
//! Otherwise the request connects anew, and the listener hands it to
//! whichever process has a thread free: a request is never sent to a busy
//! process while a sibling is idle.

use super::GroupRuntime;
use parking_lot::Mutex;
use std::os::unix::net::UnixStream;

/// A connection waiting in the pool.
struct Idle {
    /// Which group (its runtime's address: one per restart generation).
    group: usize,
    /// The board slot and pid of the process at the other end.
    slot: usize,
    pid: u32,
    stream: UnixStream,
}

static POOL: Mutex<Vec<Idle>> = Mutex::new(Vec::new());

/// A kept connection with a seat taken for the request about to be sent.
pub struct Seated {
    pub stream: UnixStream,
    pub slot: usize,
}

fn id(group: &GroupRuntime) -> usize {
    std::ptr::from_ref(group) as usize
}

/// The most recently kept connection to a process of `group` with a seat
/// left, the seat taken. Connections whose process is gone are dropped.
pub fn take(group: &GroupRuntime) -> Option<Seated> {
    let board = &group.board;
    let mut pool = POOL.lock();
    let mut i = pool.len();
    while i > 0 {
        i -= 1;
        let idle = &pool[i];
        if idle.group != id(group) {
            continue;
        }
        if board.slot_of(idle.pid) != Some(idle.slot) {
            // Its process ended: the connection is closed at the other end.
            pool.swap_remove(i);
            continue;
        }
        if board.take_seat(idle.slot, idle.pid) {
            let idle = pool.swap_remove(i);
            return Some(Seated {
                stream: idle.stream,
                slot: idle.slot,
            });
        }
    }
    None
}

/// Keeps `stream`, whose exchange with process `pid` of `group` ended
/// cleanly, for a later request; at most one per request thread of the
/// group, beyond which it is closed.
pub fn put(group: &GroupRuntime, pid: u32, stream: UnixStream) {
    let Some(slot) = group.board.slot_of(pid) else {
        return;
    };
    let most = group.options.processes.max(1) * group.options.threads.max(1);
    let mut pool = POOL.lock();
    if pool.iter().filter(|i| i.group == id(group)).count() < most {
        pool.push(Idle {
            group: id(group),
            slot,
            pid,
            stream,
        });
    }
}

/// Closes every kept connection (the child stops).
pub fn close_all() {
    POOL.lock().clear();
}
