//! Keeps an Apache child of the event MPM alive through a stop at once.
//!
//! Told to stop at once (`-k stop`, `-k restart`, SIGTERM, SIGHUP), the
//! event MPM's main thread closes the client socket of every busy worker
//! (`close_worker_sockets`) while the workers run on. A worker that is
//! just closing its own connection at that moment frees the connection's
//! pool (a stopping listener keeps no pools for reuse), and with it the
//! socket the main thread is about to read: the child dies of SIGSEGV in
//! `apr_os_sock_get`. That is Apache's race (2.4.71 alone, with no module
//! loaded, dies the same way), but it hits the children this module runs
//! in. The MPM runs the child_stopping hooks right after that sweep; so
//! while a stop is under way and they have not run yet, a connection's
//! pool waits for them before its memory goes. The worker has closed its
//! socket by then, so the sweep only reads it and moves on. The wait is
//! bounded: a stop that never reaches the hooks holds a worker a second
//! at most.
//!
//! Not covered, as nothing of a module runs in time: a connection freed
//! just before the stop begins (a running child frees rather than keeps
//! a pool once 3/4 of ThreadsPerChild pools are idle), and the sweep of a
//! stop at once that follows a graceful one (the hooks ran already).

use super::{ffi, pool::Pool};
use parking_lot::{Condvar, Mutex};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Connections are held in this process (a child of an async MPM).
static ARMED: AtomicBool = AtomicBool::new(false);
/// The child_stopping hooks have run: the sweep is over.
static SWEPT: Mutex<bool> = Mutex::new(false);
static SWEEP_OVER: Condvar = Condvar::new();

/// Longest a closing connection waits for the sweep.
const LONGEST_HOLD: Duration = Duration::from_secs(1);

/// In a new Apache child: hold its connections if its MPM is the event
/// MPM (the async one; the worker MPM frees a connection's pool only
/// once the sweep can no longer see it).
pub fn arm() {
    let mut is_async: i32 = 0;
    // SAFETY: ap_mpm_query writes one int through the pointer we own.
    unsafe { ffi::ap_mpm_query(ffi::MWRS_AP_MPMQ_IS_ASYNC, &mut is_async) };
    ARMED.store(is_async != 0, Ordering::SeqCst);
}

/// A new connection (pre_connection): its pool waits for the sweep when
/// it is cleared during a stop.
pub fn hold_connection(pool: Pool) {
    if !ARMED.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: the connection's pool is live (Apache passed it); the
    // cleanup takes no data and runs once, when the pool is cleared or
    // destroyed, before its memory is released.
    unsafe {
        ffi::apr_pool_cleanup_register(
            pool.as_ptr(),
            std::ptr::null(),
            Some(wait_for_sweep),
            Some(ffi::apr_pool_cleanup_null),
        )
    };
}

unsafe extern "C" fn wait_for_sweep(_data: *mut c_void) -> ffi::apr_status_t {
    super::guard("connection cleanup", (), || {
        if !super::process::mpm_stopping() {
            return;
        }
        let deadline = Instant::now() + LONGEST_HOLD;
        let mut swept = SWEPT.lock();
        while !*swept && !SWEEP_OVER.wait_until(&mut swept, deadline).timed_out() {}
    });
    0
}

/// child_stopping: the MPM has swept its workers' sockets (or, stopping
/// gracefully, does not), so closing connections go on at once.
pub fn sweep_over() {
    *SWEPT.lock() = true;
    SWEEP_OVER.notify_all();
}
