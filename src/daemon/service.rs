//! Daemon processes that run service scripts: a group with `threads=0`
//! whose WSGIImportScripts are long-running programs rather than
//! applications (mod_wsgi-express's `--service-script`: a task queue's
//! worker, a scheduler).
//!
//! The main thread runs the scripts, for as long as they run; the
//! caretaker runs on a thread of its own. Told to stop, the caretaker
//! interrupts the main thread with SIGINT, which Python turns into
//! SystemExit in the script (`scripts::arm_service_stop`), as mod_wsgi
//! does, and waits up to shutdown-timeout for the scripts to end; Python
//! is then finalized on the main thread, where it started. A script that
//! returns by itself leaves the process running, with whatever threads it
//! started (mod_wsgi 6.1 lets the process exit and starts a new one, over
//! and over); one that ends with SystemExit of its own (a SIGINT from
//! outside, `sys.exit()`) or fails stops the process, which the supervisor
//! starts again (with its growing delay when that happens at once).

use crate::apache::log::{self, Level};
use crate::apache::process::{self as proc_edge, ThreadHandle};
use crate::wsgi::scripts::{self, PreloadError};
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Work the caretaker hands to the main thread once the scripts ended.
type Job = Box<dyn FnOnce() + Send>;

/// The scripts' main thread, as the caretaker sees it.
pub(super) struct Service {
    main: ThreadHandle,
    ended: Mutex<bool>,
    ended_changed: Condvar,
    jobs: mpsc::Sender<Job>,
}

/// What the main thread keeps: where the caretaker's jobs arrive.
pub(super) struct MainSide {
    service: Arc<Service>,
    jobs: mpsc::Receiver<Job>,
}

/// Call on the main thread, which is to run the scripts.
pub(super) fn new() -> (Arc<Service>, MainSide) {
    let (sender, jobs) = mpsc::channel();
    let service = Arc::new(Service {
        main: proc_edge::this_thread(),
        ended: Mutex::new(false),
        ended_changed: Condvar::new(),
        jobs: sender,
    });
    (service.clone(), MainSide { service, jobs })
}

impl Service {
    /// Interrupts the scripts if they still run and waits up to `budget`
    /// for them to end; whether they did.
    pub(super) fn end(&self, budget: Duration) -> bool {
        let deadline = Instant::now() + budget;
        let mut ended = self.ended.lock();
        if !*ended {
            proc_edge::interrupt_thread(self.main);
        }
        while !*ended {
            if self
                .ended_changed
                .wait_until(&mut ended, deadline)
                .timed_out()
            {
                break;
            }
        }
        *ended
    }

    /// Runs `job` on the main thread (after the scripts ended) and waits
    /// for it.
    pub(super) fn on_main(&self, job: impl FnOnce() + Send + 'static) {
        let (done, finished) = mpsc::channel();
        let sent = self.jobs.send(Box::new(move || {
            job();
            let _ = done.send(());
        }));
        if sent.is_ok() {
            let _ = finished.recv();
        }
    }
}

/// The main thread: runs the group's scripts in order, then the
/// caretaker's jobs until the caretaker ends the process. `stop` is
/// called when a script ended with SystemExit of its own or failed.
pub(super) fn run_scripts(
    main: MainSide,
    who: &str,
    import_scripts: &[(String, String)],
    stop: impl FnOnce(),
) -> ! {
    let mut ended = "returned; the process goes on";
    let mut stops = false;
    for (path, application_group) in import_scripts {
        match scripts::preload(path, application_group) {
            Ok(()) => {}
            Err(PreloadError::SystemExit(_)) => {
                (ended, stops) = ("ended with SystemExit", true);
                break;
            }
            Err(PreloadError::Failed(e)) => {
                // A service that cannot start (its database not up yet)
                // is tried again in a new process, not left idle.
                log::server(
                    None,
                    Level::Error,
                    &format!("{who}: service script {path}: {e}"),
                );
                (ended, stops) = ("failed; the process stops to be started again", true);
                break;
            }
        }
    }
    log::server(
        None,
        Level::Info,
        &format!("{who}: service scripts {ended}"),
    );
    {
        *main.service.ended.lock() = true;
        main.service.ended_changed.notify_all();
    }
    if stops {
        stop();
    }
    for job in main.jobs.iter() {
        job();
    }
    // The caretaker is gone without ending the process: it will.
    loop {
        std::thread::park();
    }
}
