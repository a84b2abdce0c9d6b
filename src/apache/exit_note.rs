//! Death notes: how a daemon process ended, written by the process itself
//! for the Apache parent.
//!
//! The parent learns of a daemon's death through APR's other-child
//! callback, which gets the exit status or the signal number without
//! saying which (the MPM keeps `apr_exit_why_e` to itself): `os._exit(9)`
//! and SIGKILL both arrive as 9. So each daemon process slot has a word in
//! a page the parent maps shared before it forks the daemons, and every
//! way a daemon ends by its own hand writes its pid and how into that word
//! first: `exit_now` (our own exits), `os._exit` (through the Python hook
//! calling [`note_exit`]), `exit(3)` (an `on_exit(3)` handler), and the
//! fatal signals a handler can catch (SIGSEGV, SIGBUS, SIGABRT, SIGFPE,
//! SIGILL: noted, then re-raised with the default action so the process
//! still dies of them). A death without a note was a signal the process
//! could not catch (SIGKILL, the OOM killer).
//!
//! Only the process that was armed for a slot writes to it: a process the
//! application forks inherits the handlers, but its pid differs, so its
//! own exits leave the note alone.
//!
//! The same paths keep a daemon's exit status from stopping Apache: the
//! MPMs read two statuses of any child of the parent as verdicts on the
//! server (see [`status_for`]).

use super::shared_words::SharedWords;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, Ordering};

/// How a daemon process said it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// It exited with this status (the low 8 bits, as the parent sees it).
    Exited(i32),
    /// It was killed by this signal, which it caught first.
    Signaled(i32),
}

const EXITED: u64 = 1;
const SIGNALED: u64 = 2;

/// One word per note: pid in bits 0-31, kind in 32-39, value in 40-47;
/// 0 = nothing noted.
fn pack(pid: i32, kind: u64, value: i32) -> u64 {
    (pid as u32 as u64) | (kind << 32) | (((value & 0xff) as u64) << 40)
}

fn unpack(word: u64) -> Option<(i32, Noted)> {
    let pid = (word & 0xffff_ffff) as u32 as i32;
    let value = ((word >> 40) & 0xff) as i32;
    match (word >> 32) & 0xff {
        EXITED => Some((pid, Noted::Exited(value))),
        SIGNALED => Some((pid, Noted::Signaled(value))),
        _ => None,
    }
}

/// The notes of one daemon process group: one word per process slot, in
/// memory the group's processes share with the parent.
#[derive(Debug)]
pub struct ExitNotes {
    words: SharedWords,
}

impl ExitNotes {
    /// Maps zeroed notes for `slots` processes (in the parent, before they
    /// fork).
    pub fn new(slots: usize) -> std::io::Result<ExitNotes> {
        Ok(ExitNotes {
            words: SharedWords::new(slots)?,
        })
    }

    fn word(&self, slot: usize) -> Option<&AtomicU64> {
        self.words.get(slot)
    }

    /// In the parent, once `pid` of `slot` died: what it noted, if it noted
    /// anything; the slot is empty again for the next process.
    pub fn take(&self, slot: usize, pid: i32) -> Option<Noted> {
        let word = self.word(slot)?.swap(0, Ordering::AcqRel);
        match unpack(word) {
            Some((noted_by, noted)) if noted_by == pid => Some(noted),
            _ => None,
        }
    }

    /// In a daemon process, right after the fork and before any other
    /// thread exists: this process writes its note into `slot` when it
    /// ends. Installs the fatal-signal handlers and the exit(3) handler.
    pub fn arm(&self, slot: usize) {
        let Some(word) = self.word(slot) else {
            return;
        };
        // SAFETY: getpid has no preconditions.
        OWN_PID.store(unsafe { libc::getpid() }, Ordering::SeqCst);
        OWN_WORD.store(std::ptr::from_ref(word).cast_mut(), Ordering::SeqCst);
        // SAFETY: the handlers only touch atomics and call async-signal-safe
        // functions (getpid, sigaction, raise); no other thread exists yet.
        unsafe {
            for sig in FATAL_SIGNALS {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = note_fatal_signal as *const () as usize;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
            on_exit(note_exit_status, std::ptr::null_mut());
        }
    }
}

/// The slot this process writes its note into (null: not a daemon process).
static OWN_WORD: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());
/// The process it was armed in.
static OWN_PID: AtomicI32 = AtomicI32::new(0);

/// Signals that end a process by default and that a process can catch to
/// note first.
const FATAL_SIGNALS: [c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGABRT,
    libc::SIGFPE,
    libc::SIGILL,
];

/// httpd.h: a child exiting with APEXIT_CHILDFATAL makes the MPM stop the
/// whole server; APEXIT_CHILDSICK does too while no child has started
/// well yet.
const APEXIT_CHILDSICK: i32 = 0x7;
const APEXIT_CHILDFATAL: i32 = 0xf;
/// What a daemon adds to those two statuses when it exits with them.
const SHIFTED_BY: i32 = 200;

/// The status a daemon process passes to `_exit` when it ends with `code`:
/// the low 8 bits (all the parent sees), except that APEXIT_CHILDSICK and
/// APEXIT_CHILDFATAL, which Apache would take for its own children's
/// verdicts (an application's `os._exit(15)` stopped the server), are
/// shifted out of the way. The note keeps `code`.
pub fn status_for(code: i32) -> i32 {
    match code & 0xff {
        c @ (APEXIT_CHILDSICK | APEXIT_CHILDFATAL) => c + SHIFTED_BY,
        c => c,
    }
}

/// Whether this is the process armed for a note (not one forked from it).
/// Async-signal-safe: atomics and getpid only.
fn own_word() -> Option<(&'static AtomicU64, i32)> {
    let word = OWN_WORD.load(Ordering::Acquire);
    if word.is_null() {
        return None;
    }
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    if pid != OWN_PID.load(Ordering::Acquire) {
        return None;
    }
    // SAFETY: `word` points into the notes mapping, which stays mapped in
    // this process until it ends (the parent's unmapping does not reach it).
    Some((unsafe { &*word }, pid))
}

/// Async-signal-safe, as `own_word`. Returns whether it wrote.
fn write_note(kind: u64, value: i32) -> bool {
    let Some((word, pid)) = own_word() else {
        return false;
    };
    word.store(pack(pid, kind, value), Ordering::Release);
    true
}

/// Whether this process keeps a note for the parent (a daemon process).
pub fn armed() -> bool {
    !OWN_WORD.load(Ordering::Acquire).is_null()
}

/// The Apache child (embedded mode) whose application's `os._exit` is
/// watched, 0 for none.
static GUARDED_CHILD: AtomicI32 = AtomicI32::new(0);

/// In an Apache child that runs Python: an application's `os._exit(15)`
/// or `os._exit(7)` here would stop the whole server too, so such statuses
/// are shifted as a daemon's are. Only Python's exit is watched in a
/// child: Apache's own C code exits with those statuses on purpose.
pub fn guard_apache_child() {
    // SAFETY: getpid has no preconditions.
    GUARDED_CHILD.store(unsafe { libc::getpid() }, Ordering::SeqCst);
}

/// Whether the application's `os._exit` needs watching in this process.
pub fn watching_app_exits() -> bool {
    armed() || GUARDED_CHILD.load(Ordering::Acquire) != 0
}

/// The application calls `os._exit(code)`: the status to pass on. In a
/// daemon, noted for the parent ([`note_exit`]); in a guarded Apache
/// child, shifted ([`status_for`]); in a process the application forked,
/// `code` as it is (its parent is the application, which expects it).
pub fn app_exit_status(code: i32) -> i32 {
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } == GUARDED_CHILD.load(Ordering::Acquire) {
        return status_for(code);
    }
    note_exit(code)
}

/// This process is about to `_exit(code)`: notes it (in an armed daemon
/// process) and returns the status to pass to `_exit`, [`status_for`]
/// `code` there; elsewhere, and in processes forked from one, nothing is
/// noted and `code` comes back as it is.
pub fn note_exit(code: i32) -> i32 {
    if write_note(EXITED, code) {
        status_for(code)
    } else {
        code
    }
}

extern "C" fn note_fatal_signal(sig: c_int) {
    write_note(SIGNALED, sig);
    // SAFETY: sigaction and raise are async-signal-safe. With the default
    // action back, the re-raised signal (blocked until this handler returns)
    // ends the process, so the parent sees the signal itself; a fault
    // re-executed after the return would do the same.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(sig, &action, std::ptr::null_mut());
        libc::raise(sig);
    }
}

extern "C" fn note_exit_status(status: c_int, _arg: *mut c_void) {
    let passed = note_exit(status);
    if passed & 0xff != status & 0xff {
        // SAFETY: _exit(2) is always safe to call. Our handler was
        // registered before Python's, so Python is finalized already; what
        // it skips are the exit handlers of the Apache parent's libraries.
        unsafe { libc::_exit(passed) };
    }
}

unsafe extern "C" {
    /// glibc's on_exit(3): like atexit, with the status given to exit().
    fn on_exit(function: extern "C" fn(c_int, *mut c_void), arg: *mut c_void) -> c_int;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_round_trip() {
        assert_eq!(
            unpack(pack(1234, EXITED, 9)),
            Some((1234, Noted::Exited(9)))
        );
        assert_eq!(
            unpack(pack(i32::MAX, SIGNALED, 11)),
            Some((i32::MAX, Noted::Signaled(11)))
        );
        // The status the parent sees is the low 8 bits of exit's argument.
        assert_eq!(
            unpack(pack(7, EXITED, 256 + 3)),
            Some((7, Noted::Exited(3)))
        );
        assert_eq!(unpack(0), None);
    }

    #[test]
    fn statuses_apache_reads_as_verdicts_are_shifted() {
        assert_eq!(status_for(0), 0);
        assert_eq!(status_for(1), 1);
        assert_eq!(status_for(9), 9);
        assert_eq!(status_for(7), 207);
        assert_eq!(status_for(15), 215);
        assert_eq!(status_for(256 + 15), 215);
        assert_eq!(status_for(-1), 255);
    }

    #[test]
    fn only_the_noting_pid_counts() {
        let notes = ExitNotes::new(2).unwrap();
        notes
            .word(1)
            .unwrap()
            .store(pack(42, EXITED, 1), Ordering::SeqCst);
        assert_eq!(notes.take(1, 43), None);
        notes
            .word(1)
            .unwrap()
            .store(pack(42, EXITED, 1), Ordering::SeqCst);
        assert_eq!(notes.take(1, 42), Some(Noted::Exited(1)));
        assert_eq!(notes.take(1, 42), None, "taking empties the slot");
        assert_eq!(notes.take(5, 42), None, "out of range");
    }
}
