//! Why a daemon process ended, as the supervisor tells it: from the status
//! APR hands the Apache parent (an exit status or a signal number, without
//! saying which) and the note the process wrote before it ended (see
//! `apache::exit_note`).

use super::supervisor::{EXIT_REAPED, EXIT_STARTUP_FAILED};
use crate::apache::exit_note::{Noted, status_for};
use nix::sys::signal::Signal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCause {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it.
    Killed(i32),
}

impl ExitCause {
    /// `status` is what the parent was told; `noted` what the process said.
    ///
    /// A note counts only when it agrees with the status: one written by a
    /// path that then did not end the process (an exit handler that hung
    /// until the reaper ended it) is stale. Every way a daemon ends by its
    /// own hand writes a note, so without one a status that can be a signal
    /// number was a signal it did not catch (SIGKILL, or one the application
    /// left at its default action); a larger one an exit status (of C code
    /// calling _exit(2) itself).
    pub fn of(noted: Option<Noted>, status: i32) -> ExitCause {
        match noted {
            Some(Noted::Exited(code)) if status_for(code) == status => ExitCause::Exited(code),
            Some(Noted::Signaled(sig)) if sig == status => ExitCause::Killed(sig),
            _ if (1..=64).contains(&status) => ExitCause::Killed(status),
            _ => ExitCause::Exited(status),
        }
    }

    /// An ordinary end (logged at info, not as an error).
    pub fn is_clean(self) -> bool {
        self == ExitCause::Exited(0)
    }

    /// What follows "daemon process 'g' (pid N)" in the log line.
    pub fn describe(self) -> String {
        match self {
            ExitCause::Exited(0) => "exited".to_string(),
            ExitCause::Exited(EXIT_STARTUP_FAILED) => {
                "failed to start (see the line before)".to_string()
            }
            ExitCause::Exited(EXIT_REAPED) => {
                "was ended by its reaper (shutdown took longer than shutdown-timeout)".to_string()
            }
            ExitCause::Exited(n) => format!("exited with status {n}"),
            ExitCause::Killed(sig) => match Signal::try_from(sig) {
                Ok(sig) => format!("was killed by {sig}"),
                Err(_) => format!("was killed by signal {sig}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_tells_an_exit_status_from_the_same_signal_number() {
        assert_eq!(
            ExitCause::of(Some(Noted::Exited(9)), 9).describe(),
            "exited with status 9"
        );
        assert_eq!(ExitCause::of(None, 9).describe(), "was killed by SIGKILL");
        assert_eq!(
            ExitCause::of(Some(Noted::Exited(1)), 1).describe(),
            "exited with status 1"
        );
        assert_eq!(
            ExitCause::of(Some(Noted::Signaled(11)), 11).describe(),
            "was killed by SIGSEGV"
        );
        // Passed on as 215, so as not to stop Apache; told as asked.
        assert_eq!(
            ExitCause::of(Some(Noted::Exited(15)), 215).describe(),
            "exited with status 15"
        );
    }

    #[test]
    fn a_note_that_disagrees_with_the_status_is_ignored() {
        // Noted an exit(3), then killed before it got there.
        assert_eq!(
            ExitCause::of(Some(Noted::Exited(3)), 9),
            ExitCause::Killed(9)
        );
        assert_eq!(
            ExitCause::of(Some(Noted::Exited(3)), EXIT_REAPED),
            ExitCause::Exited(EXIT_REAPED)
        );
    }

    #[test]
    fn without_a_note() {
        assert_eq!(ExitCause::of(None, 0).describe(), "exited");
        assert!(ExitCause::of(None, 0).is_clean());
        assert_eq!(
            ExitCause::of(None, 200).describe(),
            "exited with status 200"
        );
        assert_eq!(
            ExitCause::of(None, 34).describe(),
            "was killed by signal 34"
        );
        assert_eq!(
            ExitCause::of(
                Some(Noted::Exited(EXIT_STARTUP_FAILED)),
                EXIT_STARTUP_FAILED
            )
            .describe(),
            "failed to start (see the line before)"
        );
    }
}
