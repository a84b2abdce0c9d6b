//! The group's board: what each daemon process of a group and each of its
//! request threads is doing, in memory the daemons share with Apache's
//! children and the parent (mapped by the parent before any of them
//! forks). Every field is an atomic word written by one process only.
//!
//! It serves two readers:
//! - a worker whose daemon dies or goes silent before saying who it is
//!   (the daemon names itself with the first bytes of its answer, or at the
//!   monitor's next tick) finds the pid by its request's ticket, so its log
//!   line names the process even for a request killed a millisecond after
//!   it was taken;
//! - the status page (`SetHandler wsgi-status`, `daemon::status`), which
//!   shows each process and thread.
//!
//! Marking a request costs a few stores, no system call and no message on
//! the socket.

use crate::apache::shared_words::SharedWords;
use std::sync::atomic::{AtomicU64, Ordering};

/// Words per process slot: pid, started (ms since the epoch), requests
/// served by that pid, replacements of the slot, how its last process
/// ended (`End::pack`), the pid once it serves (0 before), how many of
/// its processes in a row died at startup, the pid of its last process
/// that ended and when (ms since the epoch), its seats (see `take_seat`),
/// the connections its process took from the listener, how many of
/// those it took with every seat promised (overbooked), and the requests
/// its event loop holds (ASGI, past their thread) and when the oldest of
/// them started (ms since the epoch).
const PROCESS_WORDS: usize = 14;
/// Seats of a process that takes no more requests: below any count of
/// threads, so no worker takes one.
const NO_SEATS: i64 = -(1 << 40);
/// Longest URL kept for a running request, in bytes.
pub const URL_BYTES: usize = 120;
/// Words per request thread: ticket, pid, started (ms since the epoch),
/// URL length, then the URL.
const THREAD_WORDS: usize = 4 + URL_BYTES / 8;

/// Why a daemon process ended, in a word: the reason the process gave
/// itself (mod_wsgi's `shutdown_reason` words), or what the parent saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Reason(&'static str),
    Exited(i32),
    Killed(i32),
}

/// The reasons a daemon process stops by itself, as mod_wsgi names them.
pub const REASONS: [&str; 10] = [
    "graceful_signal",
    "shutdown_signal",
    "eviction_signal",
    "maximum_requests",
    "restart_interval",
    "inactivity_timeout",
    "request_timeout",
    "deadlock_timeout",
    "startup_timeout",
    "script_reload",
];

impl End {
    fn pack(self) -> u64 {
        let (kind, value) = match self {
            End::Reason(r) => (1, REASONS.iter().position(|x| *x == r).unwrap_or(0) as u64),
            End::Exited(n) => (2, n as u8 as u64),
            End::Killed(n) => (3, n as u8 as u64),
        };
        (kind << 8) | value
    }

    fn unpack(word: u64) -> Option<End> {
        let value = word & 0xff;
        match word >> 8 {
            1 => REASONS.get(value as usize).map(|r| End::Reason(r)),
            2 => Some(End::Exited(value as i32)),
            3 => Some(End::Killed(value as i32)),
            _ => None,
        }
    }
}

/// One process slot as the board shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessView {
    pub pid: u32,
    pub started_ms: u64,
    pub requests: u64,
    /// Connections taken from the listener (the others came on kept ones).
    pub connections: u64,
    /// Of those, taken while every waiting thread was promised to a kept
    /// connection: the process then held a request more than it has
    /// threads (see `GroupBoard::accepted`).
    pub overbooked: u64,
    pub restarts: u64,
    pub last_end: Option<End>,
    pub threads: Vec<ThreadView>,
    /// Requests the process's event loop holds now (they have no thread).
    pub loop_held: u64,
    /// When the oldest of them started (ms since the epoch; 0: none).
    pub loop_oldest_ms: u64,
}

/// One request thread as the board shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadView {
    Idle,
    Busy { since_ms: u64, url: Vec<u8> },
}

#[derive(Debug)]
pub struct GroupBoard {
    words: SharedWords,
    processes: usize,
    threads: usize,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl GroupBoard {
    /// Maps an empty board for `processes` x `threads` request threads.
    pub fn new(processes: usize, threads: usize) -> std::io::Result<GroupBoard> {
        let (processes, threads) = (processes.max(1), threads.max(1));
        Ok(GroupBoard {
            words: SharedWords::new(processes * (PROCESS_WORDS + threads * THREAD_WORDS))?,
            processes,
            threads,
        })
    }

    fn process_base(&self, process: usize) -> Option<usize> {
        (process < self.processes).then(|| process * (PROCESS_WORDS + self.threads * THREAD_WORDS))
    }

    fn thread_base(&self, process: usize, thread: usize) -> Option<usize> {
        (thread < self.threads)
            .then(|| self.process_base(process))
            .flatten()
            .map(|p| p + PROCESS_WORDS + thread * THREAD_WORDS)
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        // Indices come from the bases above, in range by construction.
        self.words.get(i).expect("board index in range")
    }

    /// In the parent, having forked it: process slot `process` is now
    /// `pid`.
    pub fn process_started(&self, process: usize, pid: u32) {
        if let Some(b) = self.process_base(process) {
            self.word(b + 9).store(0, Ordering::Relaxed);
            self.word(b + 10).store(0, Ordering::Relaxed);
            self.word(b + 11).store(0, Ordering::Relaxed);
            self.word(b + 12).store(0, Ordering::Relaxed);
            self.word(b + 13).store(0, Ordering::Relaxed);
            self.word(b + 2).store(0, Ordering::Relaxed);
            self.word(b + 1).store(now_ms(), Ordering::Relaxed);
            self.word(b).store(u64::from(pid), Ordering::Release);
        }
    }

    /// In a daemon: it takes requests now.
    pub fn ready(&self, process: usize, pid: u32) {
        if let Some(b) = self.process_base(process) {
            self.word(b + 5).store(u64::from(pid), Ordering::Release);
        }
    }

    /// In the parent: how many processes of the slot in a row died at
    /// startup.
    pub fn quick_deaths(&self, process: usize, count: u32) {
        if let Some(b) = self.process_base(process) {
            self.word(b + 6).store(u64::from(count), Ordering::Relaxed);
        }
    }

    /// In a worker: the process slot whose serving process is `pid`.
    pub fn slot_of(&self, pid: u32) -> Option<usize> {
        (0..self.processes).find(|&p| {
            self.process_base(p)
                .is_some_and(|b| self.word(b + 5).load(Ordering::Acquire) == u64::from(pid))
        })
    }

    /// Seats are how a worker knows that a daemon process has a request
    /// thread waiting for it before it sends a request on a connection it
    /// kept to that process (docs/protocol.md, "Connections"): each thread
    /// of the process adds one when it starts to wait, and takes one when
    /// it takes a connection from the listener (if none is left, it waits a
    /// moment for the promised request; past that it takes the connection
    /// anyway: a count below zero is a promise the listener broke, repaid
    /// as that thread finishes); a worker takes one only while some are
    /// left.
    /// In a daemon: one of its threads waits.
    pub fn add_seat(&self, process: usize) {
        if let Some(b) = self.process_base(process) {
            self.word(b + 9).fetch_add(1, Ordering::AcqRel);
        }
    }

    /// In a daemon whose thread was woken by the listener: takes that
    /// thread's seat for the connection it is about to accept, if a seat is
    /// left that no worker was promised.
    pub fn claim_seat(&self, process: usize) -> bool {
        self.process_base(process)
            .is_some_and(|b| self.take_if_left(b))
    }

    /// In a daemon: one of its threads took a connection from the listener,
    /// its seat claimed before (`claim_seat`), or not: taken although every
    /// seat was promised, the count goes below zero.
    pub fn accepted(&self, process: usize, claimed: bool) {
        if let Some(b) = self.process_base(process) {
            if !claimed {
                self.word(b + 9).fetch_sub(1, Ordering::AcqRel);
                self.word(b + 11).fetch_add(1, Ordering::Relaxed);
            }
            self.word(b + 10).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes one of the seats of the process at `b` while some are left.
    fn take_if_left(&self, b: usize) -> bool {
        self.word(b + 9)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                ((n as i64) > 0).then(|| n - 1)
            })
            .is_ok()
    }

    /// In a daemon that stops taking requests: no worker takes a seat again.
    pub fn close_seats(&self, process: usize) {
        if let Some(b) = self.process_base(process) {
            self.word(b + 9).store(NO_SEATS as u64, Ordering::Release);
        }
    }

    /// In a worker: takes a seat of process slot `process` if its process
    /// is still `pid` and has one left.
    pub fn take_seat(&self, process: usize, pid: u32) -> bool {
        let Some(b) = self.process_base(process) else {
            return false;
        };
        self.word(b + 5).load(Ordering::Acquire) == u64::from(pid) && self.take_if_left(b)
    }

    /// In a worker that took a seat and then did not send on it.
    pub fn give_seat_back(&self, process: usize) {
        self.add_seat(process);
    }

    /// Seats of process slot `process` now.
    pub fn seats(&self, process: usize) -> i64 {
        self.process_base(process)
            .map_or(0, |b| self.word(b + 9).load(Ordering::Acquire) as i64)
    }

    /// In a worker: no process of the group serves now, and each slot's
    /// last two processes or more died at startup, so a request waiting
    /// in the socket's backlog would wait for nothing.
    pub fn keeps_dying(&self) -> bool {
        (0..self.processes).all(|p| {
            self.process_base(p).is_some_and(|b| {
                let pid = self.word(b).load(Ordering::Acquire);
                self.word(b + 5).load(Ordering::Acquire) != pid
                    && self.word(b + 6).load(Ordering::Relaxed) >= 2
            })
        })
    }

    /// In a worker: whether some process of the group has said it serves.
    pub fn any_ready(&self) -> bool {
        (0..self.processes).any(|p| {
            self.process_base(p).is_some_and(|b| {
                let pid = self.word(b).load(Ordering::Acquire);
                pid != 0 && self.word(b + 5).load(Ordering::Acquire) == pid
            })
        })
    }

    /// In a daemon: how many requests it has served.
    pub fn served(&self, process: usize, requests: u64) {
        if let Some(b) = self.process_base(process) {
            self.word(b + 2).store(requests, Ordering::Relaxed);
        }
    }

    /// In a daemon: its event loop holds `count` requests now, the oldest
    /// started at `oldest_ms` (ms since the epoch).
    pub fn loop_held(&self, process: usize, count: u64, oldest_ms: u64) {
        if let Some(b) = self.process_base(process) {
            self.word(b + 13).store(oldest_ms, Ordering::Relaxed);
            self.word(b + 12).store(count, Ordering::Release);
        }
    }

    /// In the daemon deciding to stop, then (unless it ended cleanly) in the
    /// parent that saw it end: how the slot's process ended. `replaced`
    /// counts a replacement (the parent's call).
    pub fn process_ended(&self, process: usize, end: Option<End>, replaced: bool) {
        if let Some(b) = self.process_base(process) {
            if let Some(end) = end {
                self.word(b + 4).store(end.pack(), Ordering::Relaxed);
            }
            if replaced {
                self.word(b + 3).fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// In the parent, having reaped it: process slot `process`'s process
    /// `pid` is gone.
    pub fn process_gone(&self, process: usize, pid: u32) {
        if let Some(b) = self.process_base(process) {
            self.word(b + 8).store(now_ms(), Ordering::Relaxed);
            self.word(b + 7).store(u64::from(pid), Ordering::Release);
        }
    }

    /// In a worker: the pids of the group's processes that ended at or
    /// after `since_ms` (as the parent saw them go), the last one per slot.
    pub fn gone_since(&self, since_ms: u64) -> Vec<u32> {
        (0..self.processes)
            .filter_map(|p| self.process_base(p))
            .filter_map(|b| {
                let pid = self.word(b + 7).load(Ordering::Acquire) as u32;
                (pid != 0 && self.word(b + 8).load(Ordering::Relaxed) >= since_ms).then_some(pid)
            })
            .collect()
    }

    /// In a daemon: `thread` of process slot `process` (pid `pid`) serves
    /// the request with `ticket` for `url`.
    pub fn take(&self, process: usize, thread: usize, ticket: u64, pid: u32, url: &[u8]) {
        let Some(b) = self.thread_base(process, thread) else {
            return;
        };
        // The ticket is 0 while the rest changes: a reader that sees the
        // same non-zero ticket before and after its reads saw one request.
        self.word(b).store(0, Ordering::Release);
        self.word(b + 1).store(u64::from(pid), Ordering::Relaxed);
        self.word(b + 2).store(now_ms(), Ordering::Relaxed);
        let url = &url[..url.len().min(URL_BYTES)];
        self.word(b + 3).store(url.len() as u64, Ordering::Relaxed);
        for (i, chunk) in url.chunks(8).enumerate() {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            self.word(b + 4 + i)
                .store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        self.word(b).store(ticket.max(1), Ordering::Release);
    }

    /// In a daemon: the thread's request is over.
    pub fn clear(&self, process: usize, thread: usize) {
        if let Some(b) = self.thread_base(process, thread) {
            self.word(b).store(0, Ordering::Release);
        }
    }

    /// In a worker: the pid of the daemon that took the request with
    /// `ticket`, if one did and has not finished it (a dead process's
    /// entries stay until its replacement's thread takes a request).
    pub fn holder(&self, ticket: u64) -> Option<u32> {
        if ticket == 0 {
            return None;
        }
        (0..self.processes)
            .flat_map(|p| (0..self.threads).map(move |t| (p, t)))
            .filter_map(|(p, t)| self.thread_base(p, t))
            .find(|&b| self.word(b).load(Ordering::Acquire) == ticket)
            .map(|b| self.word(b + 1).load(Ordering::Relaxed) as u32)
    }

    /// What every process slot and thread is doing now.
    pub fn view(&self) -> Vec<ProcessView> {
        (0..self.processes)
            .filter_map(|p| {
                let b = self.process_base(p)?;
                let pid = self.word(b).load(Ordering::Acquire) as u32;
                Some(ProcessView {
                    pid,
                    started_ms: self.word(b + 1).load(Ordering::Relaxed),
                    requests: self.word(b + 2).load(Ordering::Relaxed),
                    connections: self.word(b + 10).load(Ordering::Relaxed),
                    overbooked: self.word(b + 11).load(Ordering::Relaxed),
                    restarts: self.word(b + 3).load(Ordering::Relaxed),
                    last_end: End::unpack(self.word(b + 4).load(Ordering::Relaxed)),
                    threads: (0..self.threads)
                        .map(|t| self.thread_view(p, t, pid))
                        .collect(),
                    loop_held: self.word(b + 12).load(Ordering::Acquire),
                    loop_oldest_ms: self.word(b + 13).load(Ordering::Relaxed),
                })
            })
            .collect()
    }

    fn thread_view(&self, process: usize, thread: usize, pid: u32) -> ThreadView {
        let Some(b) = self.thread_base(process, thread) else {
            return ThreadView::Idle;
        };
        let ticket = self.word(b).load(Ordering::Acquire);
        // A request of an earlier process of the slot (it died in it) is not
        // this process's.
        if ticket == 0 || self.word(b + 1).load(Ordering::Relaxed) as u32 != pid {
            return ThreadView::Idle;
        }
        let since_ms = self.word(b + 2).load(Ordering::Relaxed);
        let len = (self.word(b + 3).load(Ordering::Relaxed) as usize).min(URL_BYTES);
        let mut url = Vec::with_capacity(len);
        for i in 0..len.div_ceil(8) {
            url.extend_from_slice(&self.word(b + 4 + i).load(Ordering::Relaxed).to_le_bytes());
        }
        url.truncate(len);
        if self.word(b).load(Ordering::Acquire) != ticket {
            // The thread moved on to another request while this was read.
            return ThreadView::Busy {
                since_ms: now_ms(),
                url: Vec::new(),
            };
        }
        ThreadView::Busy { since_ms, url }
    }
}

/// A ticket for the next request this Apache child hands to a daemon:
/// unique in the server (the child's pid, then a count), never 0.
pub fn next_ticket() -> u64 {
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed).wrapping_add(1).max(1);
    (u64::from(std::process::id()) << 32) | u64::from(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_finds_the_pid_that_took_it_until_cleared() {
        let board = GroupBoard::new(2, 3).unwrap();
        assert_eq!(board.holder(5), None);
        board.take(1, 2, 5, 4242, b"/a");
        board.take(0, 0, 6, 4141, b"/b");
        assert_eq!(board.holder(5), Some(4242));
        assert_eq!(board.holder(6), Some(4141));
        assert_eq!(board.holder(0), None, "0 is no ticket");
        board.clear(1, 2);
        assert_eq!(board.holder(5), None);
        // Out of range: ignored, not a panic.
        board.take(2, 0, 7, 1, b"");
        board.take(0, 3, 7, 1, b"");
        assert_eq!(board.holder(7), None);
    }

    #[test]
    fn processes_gone_since_a_moment_are_named_last_per_slot() {
        let board = GroupBoard::new(2, 1).unwrap();
        let before = now_ms();
        assert!(board.gone_since(before).is_empty());
        board.process_gone(1, 300);
        assert_eq!(board.gone_since(before), vec![300]);
        assert!(
            board.gone_since(now_ms() + 1_000).is_empty(),
            "ended earlier"
        );
        board.process_gone(1, 301);
        board.process_gone(0, 200);
        assert_eq!(board.gone_since(before), vec![200, 301]);
        board.process_gone(5, 1);
        assert_eq!(board.gone_since(before).len(), 2, "out of range: ignored");
    }

    #[test]
    fn the_view_shows_processes_and_their_busy_threads() {
        let board = GroupBoard::new(2, 2).unwrap();
        board.process_started(0, 100);
        board.process_started(1, 200);
        board.served(1, 7);
        let long = vec![b'x'; 300];
        board.take(1, 1, 9, 200, &long);
        board.take(0, 0, 8, 100, b"/slow?3");
        // A request left by an earlier process of slot 1 is not shown.
        board.take(1, 0, 10, 199, b"/old");
        board.process_ended(1, Some(End::Killed(9)), true);
        let view = board.view();
        assert_eq!(view.len(), 2);
        assert_eq!(view[0].pid, 100);
        assert!(matches!(&view[0].threads[0], ThreadView::Busy { url, .. } if url == b"/slow?3"));
        assert_eq!(view[0].threads[1], ThreadView::Idle);
        assert_eq!(view[1].requests, 7);
        assert_eq!(view[1].restarts, 1);
        assert_eq!(view[1].last_end, Some(End::Killed(9)));
        assert_eq!(view[1].threads[0], ThreadView::Idle);
        assert!(
            matches!(&view[1].threads[1], ThreadView::Busy { url, .. } if url.len() == URL_BYTES)
        );
    }

    #[test]
    fn a_group_keeps_dying_when_no_slot_serves_and_each_died_twice() {
        let board = GroupBoard::new(2, 1).unwrap();
        board.process_started(0, 10);
        board.process_started(1, 20);
        assert!(!board.any_ready());
        assert!(!board.keeps_dying(), "starting is not dying");
        board.quick_deaths(0, 2);
        board.quick_deaths(1, 3);
        assert!(board.keeps_dying());
        board.ready(1, 20);
        assert!(board.any_ready());
        assert!(!board.keeps_dying(), "one serves");
        // Its replacement has not said it serves yet.
        board.process_started(1, 21);
        assert!(board.keeps_dying());
    }

    #[test]
    fn ends_round_trip() {
        for end in [
            End::Reason("maximum_requests"),
            End::Reason("script_reload"),
            End::Exited(3),
            End::Killed(11),
        ] {
            assert_eq!(End::unpack(end.pack()), Some(end));
        }
        assert_eq!(End::unpack(0), None);
    }

    #[test]
    fn tickets_differ_and_are_never_0() {
        let a = next_ticket();
        let b = next_ticket();
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert_eq!(a >> 32, u64::from(std::process::id()));
    }

    #[test]
    fn seats_are_taken_only_while_some_are_left() {
        let board = GroupBoard::new(2, 2).unwrap();
        board.process_started(0, 10);
        board.ready(0, 10);
        assert_eq!(board.slot_of(10), Some(0));
        assert_eq!(board.slot_of(11), None);
        assert!(!board.take_seat(0, 10));
        board.add_seat(0);
        board.add_seat(0);
        assert!(board.take_seat(0, 10));
        // Another pid in the slot: not the process the connection went to.
        assert!(!board.take_seat(0, 11));
        // The listener claims the last one; then none is left to claim,
        // and a connection taken all the same is a broken promise.
        assert!(board.claim_seat(0));
        board.accepted(0, true);
        assert!(!board.claim_seat(0));
        board.accepted(0, false);
        assert_eq!(board.seats(0), -1);
        assert_eq!(board.view()[0].connections, 2);
        assert_eq!(board.view()[0].overbooked, 1);
        assert!(!board.take_seat(0, 10));
        board.add_seat(0);
        board.add_seat(0);
        assert!(board.take_seat(0, 10));
        board.give_seat_back(0);
        board.close_seats(0);
        assert!(!board.take_seat(0, 10));
        board.add_seat(0);
        assert!(!board.take_seat(0, 10));
        // A new process in the slot starts from none.
        board.process_started(0, 12);
        board.ready(0, 12);
        assert_eq!(board.seats(0), 0);
    }

    #[test]
    fn loop_held_requests_show_per_slot_until_a_new_process_starts() {
        let board = GroupBoard::new(2, 1).unwrap();
        board.process_started(0, 10);
        board.process_started(1, 11);
        board.loop_held(1, 3, 5_000);
        let view = board.view();
        assert_eq!((view[0].loop_held, view[0].loop_oldest_ms), (0, 0));
        assert_eq!((view[1].loop_held, view[1].loop_oldest_ms), (3, 5_000));
        board.process_started(1, 12);
        assert_eq!(
            (board.view()[1].loop_held, board.view()[1].loop_oldest_ms),
            (0, 0)
        );
    }
}
