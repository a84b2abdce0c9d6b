//! Which daemon process took which request: a board in memory the group's
//! daemons share with Apache's children (made by the parent before either
//! forks), two words per request thread of the group (process slot x
//! thread): the ticket of the request the thread serves, and the pid of
//! its process.
//!
//! A worker whose daemon dies or goes silent before saying who it is (the
//! daemon names itself with the first bytes of its answer, or at the
//! monitor's next tick) finds the pid here by its ticket, so its log line
//! names the process even for a request killed a millisecond after it was
//! taken. Marking a request costs two stores, no system call and no extra
//! frame on the socket.

use crate::apache::shared_words::SharedWords;
use std::sync::atomic::Ordering;

#[derive(Debug)]
pub struct RequestBoard {
    words: SharedWords,
    threads: usize,
}

impl RequestBoard {
    /// Maps an empty board for `processes` x `threads` request threads.
    pub fn new(processes: usize, threads: usize) -> std::io::Result<RequestBoard> {
        let threads = threads.max(1);
        Ok(RequestBoard {
            words: SharedWords::new(2 * processes.max(1) * threads)?,
            threads,
        })
    }

    /// The ticket word of a request thread (its pid word follows).
    fn index(&self, process: usize, thread: usize) -> Option<usize> {
        (thread < self.threads).then(|| 2 * (process * self.threads + thread))
    }

    /// In a daemon: `thread` of process slot `process` (pid `pid`) serves
    /// the request with `ticket`.
    pub fn take(&self, process: usize, thread: usize, ticket: u64, pid: u32) {
        let Some(i) = self.index(process, thread) else {
            return;
        };
        if let (Some(t), Some(p)) = (self.words.get(i), self.words.get(i + 1)) {
            p.store(u64::from(pid), Ordering::Relaxed);
            // Release: whoever sees the ticket sees the pid stored first.
            t.store(ticket, Ordering::Release);
        }
    }

    /// In a daemon: the thread's request is over.
    pub fn clear(&self, process: usize, thread: usize) {
        if let Some(t) = self.index(process, thread).and_then(|i| self.words.get(i)) {
            t.store(0, Ordering::Release);
        }
    }

    /// In a worker: the pid of the daemon that took the request with
    /// `ticket`, if one did and has not finished it (a dead process's
    /// entries stay until its replacement's thread takes a request).
    pub fn holder(&self, ticket: u64) -> Option<u32> {
        if ticket == 0 {
            return None;
        }
        (0..self.words.len() / 2).find_map(|slot| {
            let t = self.words.get(2 * slot)?;
            (t.load(Ordering::Acquire) == ticket)
                .then(|| self.words.get(2 * slot + 1))
                .flatten()
                .map(|p| p.load(Ordering::Relaxed) as u32)
        })
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
        let board = RequestBoard::new(2, 3).unwrap();
        assert_eq!(board.holder(5), None);
        board.take(1, 2, 5, 4242);
        board.take(0, 0, 6, 4141);
        assert_eq!(board.holder(5), Some(4242));
        assert_eq!(board.holder(6), Some(4141));
        assert_eq!(board.holder(0), None, "0 is no ticket");
        board.clear(1, 2);
        assert_eq!(board.holder(5), None);
        // Out of range: ignored, not a panic.
        board.take(2, 0, 7, 1);
        board.take(0, 3, 7, 1);
        assert_eq!(board.holder(7), None);
    }

    #[test]
    fn tickets_differ_and_are_never_0() {
        let a = next_ticket();
        let b = next_ticket();
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert_eq!(a >> 32, u64::from(std::process::id()));
    }
}
