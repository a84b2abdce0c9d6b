//! Processes as Apache sees them: the worker identity (User/Group), restart
//! generations, forking from the parent, watching a forked child through
//! APR's "other child" registry, and the process title shown by ps.

use super::{cstr, ffi, pool::Pool};
use std::ffi::{CString, c_int, c_void};

/// The identity Apache's children run as (User / Group directives).
pub struct WorkerIdentity {
    pub uid: u32,
    pub gid: u32,
    pub user_name: String,
}

pub fn worker_identity() -> WorkerIdentity {
    // SAFETY: ap_unixd_config is filled while reading the configuration and
    // only read afterwards; we copy the values out.
    unsafe {
        let cfg = &*std::ptr::addr_of!(ffi::ap_unixd_config);
        WorkerIdentity {
            uid: cfg.user_id,
            gid: cfg.group_id,
            user_name: cstr(cfg.user_name).unwrap_or("").to_string(),
        }
    }
}

fn mpm_query(code: i32) -> i32 {
    let mut v: i32 = 0;
    // SAFETY: ap_mpm_query writes one int through the pointer we own.
    unsafe { ffi::ap_mpm_query(code, &mut v) };
    v
}

/// True while Apache is shutting down or restarting.
pub fn mpm_stopping() -> bool {
    mpm_query(ffi::MWRS_AP_MPMQ_MPM_STATE) == ffi::MWRS_AP_MPMQ_STOPPING
}

/// True while the parent tears down one configuration generation to read
/// the next (a graceful or full restart), false when it is exiting: what
/// the generation's pool cleanups run for.
pub fn reloading_config() -> bool {
    // SAFETY: ap_state_query only reads a global of the server.
    unsafe { ffi::ap_state_query(ffi::MWRS_AP_SQ_MAIN_STATE) == ffi::MWRS_AP_SQ_MS_DESTROY_CONFIG }
}

/// The signal the parent sends a daemon of a generation that ends with a
/// restart: keep serving until the next generation's socket has taken the
/// group's path, then drain and exit. A realtime signal: nothing else
/// sends it (not a terminal, as SIGWINCH; not Apache's MPMs to the process
/// group, as SIGHUP and SIGTERM under prefork).
pub fn retire_signal() -> c_int {
    libc::SIGRTMIN() + 2
}

extern "C" fn note_child_exit(_sig: c_int) {}

/// In the Apache parent: a child's exit interrupts the parent's
/// once-a-second sleep (apr_sleep is a select(2), which a caught signal
/// ends), so a daemon that exits is reaped and replaced at once rather than
/// up to a second later; with maximum-requests small that second was most
/// of a daemon's life. The handler does nothing: reaping stays Apache's.
/// Undone by `restore_child_exit_signal` before the module is unloaded (a
/// handler left pointing into an unloaded module would crash the parent).
pub fn wake_on_child_exit() {
    // SAFETY: installs a handler that does nothing; SA_RESTART so that
    // other system calls of the parent are restarted, not failed.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = note_child_exit as *const () as usize;
        action.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGCHLD, &action, std::ptr::null_mut());
    }
}

/// Puts SIGCHLD back to the default (the end of a generation in the
/// parent; and in Apache's children, which must not inherit the handler).
pub fn restore_child_exit_signal() {
    // SAFETY: SIG_DFL is always a valid disposition for SIGCHLD.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
}

/// Sends the retire signal to `pid` (nix's Signal has no realtime ones).
pub fn send_retire_signal(pid: i32) -> std::io::Result<()> {
    // SAFETY: kill(2) with a pid we forked and a valid signal number.
    match unsafe { libc::kill(pid, retire_signal()) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// `fname` under Apache's runtime directory (DefaultRuntimeDir).
pub fn runtime_dir_relative(pool: Pool, fname: &str) -> String {
    let c = CString::new(fname).unwrap_or_default();
    // SAFETY: the result is a pool string, copied out before returning.
    unsafe { cstr(ffi::ap_runtime_dir_relative(pool.as_ptr(), c.as_ptr())) }
        .unwrap_or(fname)
        .to_string()
}

/// `path` relative to ServerRoot (absolute paths are returned unchanged).
pub fn server_root_relative(pool: Pool, path: &str) -> String {
    let c = CString::new(path).unwrap_or_default();
    // SAFETY: as above.
    unsafe { cstr(ffi::ap_server_root_relative(pool.as_ptr(), c.as_ptr())) }
        .unwrap_or(path)
        .to_string()
}

/// Closes Apache's listening sockets (in a process that must not accept
/// HTTP connections, e.g. a daemon process).
pub fn close_http_listeners() {
    // SAFETY: closes the listener fds of this process; nothing else uses
    // them in a daemon process.
    unsafe { ffi::ap_close_listeners() };
}

pub enum Forked {
    Parent { child: i32 },
    Child,
}

/// fork(2) from the Apache parent.
pub fn fork() -> std::io::Result<Forked> {
    // SAFETY: called only in the Apache parent, which runs no threads of its
    // own (we start none there), so the child inherits a consistent state.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent { child: pid }),
    }
}

/// What APR tells us about a watched child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEvent {
    /// It exited; the wait status.
    Died(i32),
    /// Apache restarts or stops: stop watching.
    Restart,
    /// Something else (health checks, unregister).
    Other,
}

/// A child process watched through apr_proc_other_child_register. The
/// handler may return a new pid to keep watching (a restarted process).
pub struct ChildWatch {
    proc_: ffi::apr_proc_t,
    pool: Pool,
    handler: Box<dyn FnMut(ChildEvent, i32) -> Option<i32>>,
}

unsafe extern "C" fn child_maintenance(reason: c_int, data: *mut c_void, status: c_int) {
    super::guard("daemon supervision", (), || {
        // SAFETY: `data` is the ChildWatch we registered; it lives in pconf,
        // which outlives every registration made with it.
        let watch = unsafe { &mut *(data as *mut ChildWatch) };
        let event = match reason {
            r if r == ffi::MWRS_APR_OC_REASON_DEATH || r == ffi::MWRS_APR_OC_REASON_LOST => {
                ChildEvent::Died(status)
            }
            r if r == ffi::MWRS_APR_OC_REASON_RESTART => ChildEvent::Restart,
            _ => return,
        };
        // SAFETY: unregistering the record APR just reported on.
        unsafe { ffi::apr_proc_other_child_unregister(data) };
        let pid = watch.proc_.pid;
        if let Some(new_pid) = (watch.handler)(event, pid) {
            watch.register(new_pid);
        }
    })
}

impl ChildWatch {
    /// Starts watching `pid`; `handler` runs in the Apache parent when it
    /// dies (return a new pid to go on watching) or when Apache restarts.
    pub fn watch(pool: Pool, pid: i32, handler: Box<dyn FnMut(ChildEvent, i32) -> Option<i32>>) {
        let watch = pool.adopt(ChildWatch {
            proc_: ffi::apr_proc_t {
                pid,
                in_: std::ptr::null_mut(),
                out: std::ptr::null_mut(),
                err: std::ptr::null_mut(),
            },
            pool,
            handler,
        });
        // SAFETY: adopt returned a live pointer owned by the pool.
        unsafe { &mut *watch }.register(pid);
    }

    fn register(&mut self, pid: i32) {
        self.proc_.pid = pid;
        let data = self as *mut ChildWatch as *mut c_void;
        // SAFETY: the record and its apr_proc_t live in the pool for as long
        // as the registration (APR unregisters on that pool's cleanup).
        unsafe {
            ffi::apr_proc_other_child_register(
                &mut self.proc_,
                Some(child_maintenance),
                data,
                std::ptr::null_mut(),
                self.pool.as_ptr(),
            )
        };
    }
}

/// The memory ps reads a process's command line from: the original argv.
pub struct ProcessTitle {
    start: *mut u8,
    len: usize,
}

impl ProcessTitle {
    /// The argv area of this Apache process.
    ///
    /// # Safety
    /// `s` must be a live server_rec from Apache.
    pub unsafe fn of(s: *mut ffi::server_rec) -> Option<ProcessTitle> {
        // SAFETY: process->argv is the argv main() received (argc entries,
        // each NUL-terminated, laid out one after another by the kernel).
        unsafe {
            let process = (*s).process;
            if process.is_null() || (*process).argc < 1 {
                return None;
            }
            let argv = (*process).argv;
            let first = *argv as *mut u8;
            let last = *argv.add((*process).argc as usize - 1);
            let end = last.add(libc::strlen(last)) as *mut u8;
            let len = end.offset_from(first);
            (len > 0).then_some(ProcessTitle {
                start: first,
                len: len as usize,
            })
        }
    }

    /// Rewrites what ps shows for this process (cut to the original length)
    /// and the short name top shows.
    pub fn set(&self, title: &str) {
        let bytes = title.as_bytes();
        let n = bytes.len().min(self.len);
        // SAFETY: [start, start+len] is the argv area of this process, which
        // nothing else reads once we are a daemon process; we keep the final NUL.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.start, n);
            std::ptr::write_bytes(self.start.add(n), 0, self.len - n);
        }
        if let Ok(short) = CString::new(bytes.iter().take(15).copied().collect::<Vec<u8>>()) {
            // SAFETY: PR_SET_NAME reads at most 16 bytes of a NUL-terminated string.
            unsafe { libc::prctl(libc::PR_SET_NAME, short.as_ptr()) };
        }
    }
}

// SAFETY: the title is written only by a daemon process's main thread at
// start-up, before any other thread exists; elsewhere it is never touched.
unsafe impl Send for ProcessTitle {}
// SAFETY: as above.
unsafe impl Sync for ProcessTitle {}

/// The configuration pool of a server (lives for one restart generation).
///
/// # Safety
/// `s` must be a live server_rec from Apache.
pub unsafe fn configuration_pool_of(s: *mut ffi::server_rec) -> Pool {
    // SAFETY: server->process->pconf is the live configuration pool.
    unsafe { Pool::from_raw((*(*s).process).pconf) }
}

/// The write end of the caretaker's wake-up pipe, for the signal handler.
static WAKE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn wake_on_signal(sig: c_int) {
    let byte: u8 = match sig {
        libc::SIGUSR1 => b'E',
        s if s == retire_signal() => b'R',
        _ => b'T',
    };
    let fd = WAKE_FD.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the byte lives on our stack.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// In a daemon process: SIGTERM and SIGINT write `T`, SIGUSR1 writes `E`,
/// the retire signal `R` into `fd` (the caretaker's pipe); SIGHUP and SIGUSR2 are the
/// application's, as in mod_wsgi 6: reported to its subscribers once it
/// calls `subscribe_signals()`, dropped until then (they never stop the
/// process). SIGPIPE is ignored so a vanished peer is an error return, not
/// a death. Replaces Apache's handlers, which the fork inherited.
pub fn route_signals_to(fd: i32) {
    WAKE_FD.store(fd, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: installing plain handlers that only call write(2); SIG_IGN
    // for SIGPIPE. No other thread exists yet.
    unsafe {
        let handlers: [(c_int, extern "C" fn(c_int)); 6] = [
            (libc::SIGTERM, wake_on_signal),
            (libc::SIGINT, wake_on_signal),
            (libc::SIGUSR1, wake_on_signal),
            (retire_signal(), wake_on_signal),
            (libc::SIGHUP, report_signal),
            (libc::SIGUSR2, report_signal),
        ];
        for (sig, handler) in handlers {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        // Apache's parent may have blocked signals; a daemon wants them.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// A thread, as [`interrupt_thread`] names it.
#[derive(Clone, Copy, Debug)]
pub struct ThreadHandle(libc::pthread_t);

/// The calling thread.
pub fn this_thread() -> ThreadHandle {
    // SAFETY: pthread_self has no preconditions.
    ThreadHandle(unsafe { libc::pthread_self() })
}

/// Sends SIGINT to `thread`, which must still be running: the main thread
/// of a daemon process running a service script, where Python turns it
/// into SystemExit (the signal interrupts a sleep or a blocking read, so
/// the script sees it at once).
pub fn interrupt_thread(thread: ThreadHandle) {
    // SAFETY: the handle came from pthread_self of a thread that lives as
    // long as the process (a daemon's main thread).
    unsafe { libc::pthread_kill(thread.0, libc::SIGINT) };
}

/// SIGINT blocked on the calling thread until dropped: threads started
/// meanwhile inherit the block, so a process-wide SIGINT reaches the
/// thread that left it unblocked (a service script's main thread).
pub struct InterruptBlocked(libc::sigset_t, std::marker::PhantomData<*const ()>);

impl InterruptBlocked {
    pub fn here() -> InterruptBlocked {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset
        // before use; pthread_sigmask only changes this thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            InterruptBlocked(old, std::marker::PhantomData)
        }
    }
}

impl Drop for InterruptBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `here` on the same thread (the
        // raw-pointer marker keeps the value from being sent elsewhere).
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// The write end of the pipe SIGHUP / SIGUSR2 are reported into once an
/// application subscribed to them (mod_wsgi.subscribe_signals).
static SIGNAL_EVENT_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn report_signal(sig: c_int) {
    let byte: u8 = if sig == libc::SIGHUP { b'H' } else { b'U' };
    let fd = SIGNAL_EVENT_FD.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the byte lives on our stack.
        // The pipe is non-blocking: with the reader behind, the signal is
        // dropped rather than the handler blocked.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// In a daemon process: from now on SIGHUP writes `H` and SIGUSR2 `U` into
/// `fd` (a non-blocking pipe) for the thread that hands them to the
/// application's subscribers (the handlers are in place since
/// `route_signals_to`).
pub fn route_signal_events_to(fd: std::os::fd::BorrowedFd<'static>) {
    SIGNAL_EVENT_FD.store(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// Ends the process at once, without running atexit handlers or Apache's
/// pool cleanups (which belong to the parent this process was forked from).
/// A daemon process notes the status for the parent first (see `exit_note`).
pub fn exit_now(code: i32) -> ! {
    let status = super::exit_note::note_exit(code);
    // SAFETY: _exit(2) is always safe to call.
    unsafe { libc::_exit(status) }
}

/// Sets a resource limit (RLIMIT_CPU / DATA / AS) for this process.
pub fn set_rlimit(resource: RLimit, value: u64) -> std::io::Result<()> {
    let which = match resource {
        RLimit::Cpu => libc::RLIMIT_CPU,
        RLimit::Data => libc::RLIMIT_DATA,
        RLimit::AddressSpace => libc::RLIMIT_AS,
    };
    let lim = libc::rlimit {
        rlim_cur: value as libc::rlim_t,
        rlim_max: value as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(which, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[derive(Clone, Copy)]
pub enum RLimit {
    Cpu,
    Data,
    AddressSpace,
}

/// nice(2) by `increment`.
pub fn renice(increment: i32) -> std::io::Result<()> {
    // SAFETY: plain syscall; errno tells failure apart from a -1 result.
    unsafe {
        *libc::__errno_location() = 0;
        if libc::nice(increment) == -1 && *libc::__errno_location() != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// setlocale(LC_ALL, locale).
pub fn set_locale(locale: &str) -> bool {
    let Ok(c) = CString::new(locale) else {
        return false;
    };
    // SAFETY: called before any other thread exists in the daemon process.
    !unsafe { libc::setlocale(libc::LC_ALL, c.as_ptr()) }.is_null()
}

/// Borrows an fd this process keeps open for as long as it runs (a daemon's
/// listener and pipes).
pub fn borrow_fd(fd: std::os::fd::RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: callers pass fds that stay open until the process exits.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// Takes ownership of a freshly accepted socket fd.
pub fn stream_from_fd(fd: std::os::fd::RawFd) -> std::os::unix::net::UnixStream {
    // SAFETY: the fd was just returned by accept(2) and nobody else owns it.
    unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
}

/// Takes ownership of a descriptor the kernel has just installed in this
/// process: one of an SCM_RIGHTS message recvmsg(2) returned.
pub fn owned_received_fd(fd: std::os::fd::RawFd) -> std::os::fd::OwnedFd {
    // SAFETY: recvmsg installed `fd` in this process for this caller alone;
    // nothing else knows its number, so the OwnedFd is its only owner.
    unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
}

/// Sets an environment variable in a process that has no other thread yet.
pub fn set_env(key: &str, value: &str) {
    // SAFETY: only called while the daemon process is still single-threaded.
    unsafe { std::env::set_var(key, value) };
}
