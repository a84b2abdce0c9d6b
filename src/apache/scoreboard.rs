//! Apache's scoreboard, read for `mod_wsgi.server_metrics()`: a copy of the
//! global record and of every process and worker slot, as mod_wsgi reports
//! them. The scoreboard is shared memory the parent creates before it
//! forks the children (and, here, the daemon processes); a process forked
//! before it existed has none.

use super::ffi;
use std::ffi::c_char;

/// The global part of the scoreboard and all its slots.
pub struct Scoreboard {
    pub server_limit: i32,
    pub thread_limit: i32,
    pub running_generation: i32,
    /// When the server last (re)started, microseconds since the epoch.
    pub restart_time_us: i64,
    pub processes: Vec<ProcessSlot>,
}

/// One child process slot.
pub struct ProcessSlot {
    pub pid: i32,
    pub generation: i32,
    pub quiescing: bool,
    pub workers: Vec<WorkerSlot>,
}

/// One worker (thread) slot of a child.
pub struct WorkerSlot {
    pub thread_num: i32,
    pub generation: i32,
    /// The status flag mod_wsgi reports: "." dead, "_" ready, "S" starting,
    /// "R" reading, "W" writing, "K" keep-alive, "L" logging, "D" DNS,
    /// "C" closing, "G" graceful, "I" idle kill.
    pub status: &'static str,
    pub access_count: u64,
    pub bytes_served: u64,
    /// Microseconds since the epoch (0 when never set).
    pub start_time_us: i64,
    pub stop_time_us: i64,
    pub last_used_us: i64,
    pub client: String,
    pub request: String,
    pub vhost: String,
}

/// The scoreboard status codes (scoreboard.h), as one-character flags.
fn status_flag(status: i32) -> &'static str {
    const FLAGS: [(i32, &str); 11] = [
        (ffi::MWRS_SERVER_DEAD, "."),
        (ffi::MWRS_SERVER_READY, "_"),
        (ffi::MWRS_SERVER_STARTING, "S"),
        (ffi::MWRS_SERVER_BUSY_READ, "R"),
        (ffi::MWRS_SERVER_BUSY_WRITE, "W"),
        (ffi::MWRS_SERVER_BUSY_KEEPALIVE, "K"),
        (ffi::MWRS_SERVER_BUSY_LOG, "L"),
        (ffi::MWRS_SERVER_BUSY_DNS, "D"),
        (ffi::MWRS_SERVER_CLOSING, "C"),
        (ffi::MWRS_SERVER_GRACEFUL, "G"),
        (ffi::MWRS_SERVER_IDLE_KILL, "I"),
    ];
    FLAGS
        .iter()
        .find(|(code, _)| *code == status)
        .map_or("?", |(_, flag)| flag)
}

/// A fixed-size C char field: up to its first NUL, latin-1 decoded (what
/// Apache copies there is client-supplied and need not be UTF-8).
fn text(field: &[c_char]) -> String {
    field
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect()
}

/// A copy of the scoreboard, or None when this process has none.
pub fn snapshot() -> Option<Scoreboard> {
    // SAFETY: ap_exists_scoreboard_image only reads httpd's global pointer.
    if unsafe { ffi::ap_exists_scoreboard_image() } == 0 {
        return None;
    }
    // SAFETY: the scoreboard exists (checked above); the global record and
    // the slots it sizes stay mapped for the life of this process. Other
    // processes write the slots concurrently: each field is copied as it
    // is at the moment, as mod_status and mod_wsgi read them.
    unsafe {
        let global = ffi::ap_get_scoreboard_global();
        if global.is_null() {
            return None;
        }
        let g = &*global;
        let mut processes = Vec::with_capacity(g.server_limit.max(0) as usize);
        for i in 0..g.server_limit {
            let p = ffi::ap_get_scoreboard_process(i);
            if p.is_null() {
                continue;
            }
            let p = &*p;
            let mut workers = Vec::with_capacity(g.thread_limit.max(0) as usize);
            for j in 0..g.thread_limit {
                let w = ffi::ap_get_scoreboard_worker_from_indexes(i, j);
                if w.is_null() {
                    continue;
                }
                let w = &*w;
                workers.push(WorkerSlot {
                    thread_num: w.thread_num,
                    generation: w.generation,
                    status: status_flag(i32::from(w.status)),
                    access_count: w.access_count,
                    bytes_served: w.bytes_served as u64,
                    start_time_us: w.start_time,
                    stop_time_us: w.stop_time,
                    last_used_us: w.last_used,
                    client: text(&w.client),
                    request: text(&w.request),
                    vhost: text(&w.vhost),
                });
            }
            processes.push(ProcessSlot {
                pid: p.pid,
                generation: p.generation,
                quiescing: p.quiescing != 0,
                workers,
            });
        }
        Some(Scoreboard {
            server_limit: g.server_limit,
            thread_limit: g.thread_limit,
            running_generation: g.running_generation,
            restart_time_us: g.restart_time,
            processes,
        })
    }
}

/// Whether this process can read a scoreboard (the parent once the MPM
/// made it, and every process forked after that).
pub fn exists() -> bool {
    // SAFETY: only reads httpd's global pointer.
    unsafe { ffi::ap_exists_scoreboard_image() != 0 }
}
