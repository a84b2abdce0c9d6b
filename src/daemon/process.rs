//! A daemon process: forked from the Apache parent, it becomes the group's
//! user, starts Python, and runs exactly `threads + 3` threads:
//!
//! - the main thread, which started the others and then is the caretaker:
//!   it sleeps on a pipe that the signal handler (and the monitor) write one
//!   byte into, `T` to shut down, `G` to drain gracefully first;
//! - the monitor thread, which enforces the time-based options;
//! - the deadlock thread, which takes the GIL about once a second so the
//!   monitor can tell when the interpreter is stuck;
//! - `threads` request threads, each taking a new connection from the
//!   group's listener, or the next request on a connection kept from an
//!   earlier exchange, and serving it.
//!
//! At shutdown one transient thread more, the reaper, force-exits the
//! process if it is still alive after shutdown-timeout.

use super::GroupRuntime;
use super::board::End;
use super::loop_exchange::{LoopOwner, LoopSetup};
use super::service::{self, Service};
use super::socket_backend::{Conn, SocketBackend, failure_frame};
use super::supervisor::Daemons;
use crate::apache::log::{self, Level};
use crate::apache::process::{self as proc_edge, RLimit};
use crate::protocol::{Environ, FailureKind, Frame, Limits, ProtocolError};
use crate::wsgi::serve::{self, AppTarget, ReportTarget};
use crate::wsgi::{Backend, EnvironContext};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{SockFlag, accept4};
use nix::unistd::{Gid, Uid};
use parking_lot::Mutex;
use std::borrow::Cow;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Tokens of the request threads' epoll set: the listener, the stop pipe,
/// then one per kept connection.
const LISTENER: u64 = 0;
/// How long a request thread leaves a new connection in the backlog while
/// every seat of its process is promised (`request_thread`): far longer
/// than a worker takes from the seat to its request's bytes.
const PROMISE_WAIT: Duration = Duration::from_millis(50);
const STOP: u64 = 1;
const FIRST_KEPT: u64 = 2;
/// Most connections a process keeps open between exchanges (each Apache
/// child keeps at most one per request thread of the group).
const MAX_KEPT: usize = 256;

/// Bytes the caretaker understands.
const SHUTDOWN: u8 = b'T';
const GRACEFUL: u8 = b'G';
/// SIGUSR1: a graceful drain bounded by eviction-timeout.
const EVICTION: u8 = b'E';
/// Apache restarts: serve until the next generation's socket takes the
/// path over, then drain (see `retire`).
const RETIRE: u8 = b'R';

/// What the threads of one daemon process share.
struct Shared {
    group: &'static GroupRuntime,
    limits: Limits,
    started: Instant,
    /// No new connections once set (graceful drain or shutdown).
    stopping: AtomicBool,
    /// Read end stays readable once the caretaker writes into it: wakes
    /// every request thread out of its wait. Only `ready` reads it, but it
    /// must stay open for as long as the epoll set watches it.
    #[allow(dead_code)]
    stop_read: OwnedFd,
    stop_write: OwnedFd,
    /// What the idle request threads wait on: the group's listener and
    /// `stop_read`. Threads of one process waiting on one epoll set are woken
    /// one per event, and the listener is in it with EPOLLEXCLUSIVE, so a new
    /// connection wakes one thread of one process rather than every request
    /// thread of the group (which then raced for it in accept).
    ready: Epoll,
    /// The caretaker's pipe (the monitor writes reasons into it too).
    wake_write: RawFd,
    /// Per request thread: when its current request started.
    active: Mutex<Vec<Option<Instant>>>,
    requests: AtomicU64,
    /// Milliseconds since `started` of the last request activity (at least
    /// 1); 0 until a request counts as activity, as mod_wsgi's idle timer
    /// only runs from the first one.
    last_activity_ms: AtomicU64,
    /// Why this process stops, when it decided so itself (mod_wsgi's
    /// `shutdown_reason` words); signals name themselves.
    shutdown_reason: std::sync::OnceLock<&'static str>,
    /// The same, in the words of the log line that said it.
    shutdown_why: std::sync::OnceLock<String>,
    /// Milliseconds since `started` when the deadlock thread last held the GIL.
    last_gil_ms: AtomicU64,
    /// Set once the script has loaded (for startup-timeout).
    script_loaded: AtomicBool,
    /// True once the interpreter is being destroyed; held by the deadlock
    /// thread around its GIL probe so it never touches a dying interpreter.
    python_gate: Mutex<bool>,
    /// Modification time of each script when this process first ran it:
    /// a script that changes later makes the process recycle, as mod_wsgi's
    /// daemon mode does with WSGIScriptReloading On.
    script_mtimes: Mutex<std::collections::HashMap<String, i64>>,
    /// Per request thread, while it runs Python: its thread id and the
    /// application group, so interrupt-timeout can raise in it.
    running: Mutex<Vec<Option<(u64, String)>>>,
    /// Per request thread, the exchange it is serving, for the monitor to
    /// send a held-back `Accepted` to the worker.
    exchanges: Mutex<Vec<Option<Arc<SocketBackend>>>>,
    /// Connections kept open after their exchange, by their token in
    /// `ready` (registered one-shot: a thread takes the connection out when
    /// its next request, or its end, arrives). Emptied, so closed, when the
    /// process stops taking requests.
    kept: Mutex<std::collections::HashMap<u64, Conn>>,
    next_token: AtomicU64,
    /// Exchanges the event loop holds (ASGI requests handed over by their
    /// request thread: see `loop_exchange`), by a number of their own,
    /// with when each started: requests running like those on threads
    /// for drains, inactivity-timeout and a forced exit.
    in_loop: Mutex<InLoopMap>,
    next_in_loop: AtomicU64,
    /// Places on the event loop taken under loop-held-limit: the exchanges
    /// it holds (counted from the hand-over, so that threads handing over
    /// at once cannot take it past the limit).
    loop_places: AtomicU64,
    pid: u32,
    /// This process's slot in the group (exit notes, request board).
    index: usize,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn who(&self) -> String {
        format!("daemon process '{}' (pid {})", self.group.name, self.pid)
    }

    /// Whether no request runs, on a thread or on the event loop.
    fn idle(&self) -> bool {
        self.active.lock().iter().all(Option::is_none) && self.in_loop.lock().is_empty()
    }

    /// Asks the caretaker to stop the process, saying why.
    /// Asks the caretaker to stop this process (`how`); `reason` is
    /// mod_wsgi's word for why, reported as `shutdown_reason` (the first
    /// one asked stands).
    fn request_exit(&self, how: u8, reason: &'static str, why: &str) {
        let _ = self.shutdown_reason.set(reason);
        let _ = self.shutdown_why.set(why.to_string());
        log::server(None, Level::Info, &format!("{}: {why}", self.who()));
        let _ = nix::unistd::write(process_fd(self.wake_write), &[how]);
    }
}

/// Borrows a raw fd this process owns for the whole run.
fn process_fd(fd: RawFd) -> BorrowedFd<'static> {
    crate::apache::process::borrow_fd(fd)
}

/// Runs the daemon process; never returns.
pub fn run(daemons: &'static Daemons, group_index: usize, index: usize, delay: Duration) -> ! {
    let group = &daemons.groups[group_index];
    group.exit_notes.arm(index);
    let code = match setup_and_serve(daemons, group, index, delay) {
        Ok(()) => 0,
        Err(message) => {
            log::server(
                None,
                Level::Crit,
                &format!(
                    "daemon process '{}' (pid {}): {message}",
                    group.name,
                    std::process::id()
                ),
            );
            super::supervisor::EXIT_STARTUP_FAILED
        }
    };
    proc_edge::exit_now(code)
}

fn setup_and_serve(
    daemons: &'static Daemons,
    group: &'static GroupRuntime,
    index: usize,
    delay: Duration,
) -> Result<(), String> {
    // This process serves only its own group: drop Apache's HTTP listeners
    // and the other groups' sockets.
    proc_edge::close_http_listeners();
    for g in &daemons.groups {
        if !std::ptr::eq(g, group) {
            let _ = nix::unistd::close(g.listener);
        }
    }
    let (wake_read, wake_write) =
        nix::unistd::pipe().map_err(|e| format!("cannot create pipe: {e}"))?;
    proc_edge::route_signals_to(std::os::fd::AsRawFd::as_raw_fd(&wake_write));
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    if let Some(title) = group.display_name()
        && let Some(t) = &daemons.title
    {
        t.set(&title);
    }
    become_group_identity(group)?;
    crate::wsgi::scripts::set_case_sensitive(group.python.case_sensitivity());
    let settings =
        crate::python::InitSettings::for_daemon(&group.python, &group.name, &group.options);
    crate::wsgi::module::set_process_info(
        &group.name,
        group.options.threads,
        group.options.processes,
    );
    crate::python::initialize(&settings).map_err(|e| format!("cannot start Python: {e}"))?;
    // Without request threads the group's WSGIImportScripts are service
    // scripts: they run on this thread once the others are started (see
    // `service`), and only this thread takes SIGINT.
    let runs_service = group.options.threads == 0 && !group.import_scripts.is_empty();
    // Threads started from here on leave SIGINT to this one.
    let interrupt_blocked = if runs_service {
        crate::wsgi::scripts::arm_service_stop()
            .map_err(|e| format!("cannot prepare the service scripts: {e}"))?;
        Some(proc_edge::InterruptBlocked::here())
    } else {
        // WSGIImportScript for this group: loaded before the first request.
        for (path, application_group) in &group.import_scripts {
            if let Err(e) = crate::wsgi::scripts::preload(path, application_group) {
                log::server(
                    None,
                    Level::Error,
                    &format!(
                        "daemon process '{}' (pid {}): WSGIImportScript {path}: {e}",
                        group.name,
                        std::process::id()
                    ),
                );
            }
        }
        None
    };
    crate::telemetry::start(&group.name);

    let (stop_read, stop_write) =
        nix::unistd::pipe().map_err(|e| format!("cannot create pipe: {e}"))?;
    let ready = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
        .map_err(|e| format!("cannot create epoll set: {e}"))?;
    ready
        .add(
            process_fd(group.listener),
            EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE, LISTENER),
        )
        .and_then(|()| ready.add(&stop_read, EpollEvent::new(EpollFlags::EPOLLIN, STOP)))
        .map_err(|e| format!("cannot watch the listening socket: {e}"))?;
    let threads = group.options.threads;
    let limits = Limits {
        max_header: group.options.header_buffer_size,
        ..Limits::default()
    };
    let shared = Arc::new(Shared {
        group,
        limits,
        started: Instant::now(),
        stopping: AtomicBool::new(false),
        stop_read,
        stop_write,
        ready,
        wake_write: std::os::fd::AsRawFd::as_raw_fd(&wake_write),
        active: Mutex::new(vec![None; threads]),
        requests: AtomicU64::new(0),
        last_activity_ms: AtomicU64::new(0),
        shutdown_reason: std::sync::OnceLock::new(),
        shutdown_why: std::sync::OnceLock::new(),
        last_gil_ms: AtomicU64::new(0),
        script_loaded: AtomicBool::new(false),
        python_gate: Mutex::new(false),
        script_mtimes: Mutex::new(std::collections::HashMap::new()),
        running: Mutex::new(vec![None; threads]),
        exchanges: Mutex::new(vec![None; threads]),
        kept: Mutex::new(std::collections::HashMap::new()),
        next_token: AtomicU64::new(FIRST_KEPT),
        in_loop: Mutex::new(std::collections::HashMap::new()),
        next_in_loop: AtomicU64::new(0),
        loop_places: AtomicU64::new(0),
        pid: std::process::id(),
        index,
    });
    std::mem::forget(wake_write);

    let mut workers = Vec::new();
    for slot in 0..threads {
        let s = shared.clone();
        let mut builder = std::thread::Builder::new().name(format!("wsgi-req-{slot}"));
        if let Some(size) = group.options.stack_size {
            builder = builder.stack_size(size);
        }
        workers.push(
            builder
                .spawn(move || request_thread(&s, slot))
                .map_err(|e| format!("cannot start request thread: {e}"))?,
        );
    }
    let s = shared.clone();
    std::thread::Builder::new()
        .name("wsgi-monitor".into())
        .spawn(move || monitor_thread(&s))
        .map_err(|e| e.to_string())?;
    let s = shared.clone();
    std::thread::Builder::new()
        .name("wsgi-deadlock".into())
        .spawn(move || deadlock_thread(&s))
        .map_err(|e| e.to_string())?;
    log::server(
        None,
        Level::Info,
        &format!("{}: ready with {threads} request threads", shared.who()),
    );
    group.board.ready(index, shared.pid);

    if runs_service {
        let (service, main) = service::new();
        let s = shared.clone();
        std::thread::Builder::new()
            .name("wsgi-caretaker".into())
            .spawn(move || {
                let code = match caretaker(&s, wake_read, workers, Some(&service)) {
                    Ok(()) => 0,
                    Err(e) => {
                        log::server(None, Level::Crit, &format!("{}: {e}", s.who()));
                        super::supervisor::EXIT_STARTUP_FAILED
                    }
                };
                proc_edge::exit_now(code)
            })
            .map_err(|e| format!("cannot start the caretaker thread: {e}"))?;
        drop(interrupt_blocked);
        service::run_scripts(main, &shared.who(), &group.import_scripts, || {
            if !shared.stopping.load(Ordering::SeqCst) {
                shared.request_exit(
                    SHUTDOWN,
                    "shutdown_signal",
                    "its service script ended (SystemExit or a failure); stopping",
                );
            }
        })
    }
    caretaker(&shared, wake_read, workers, None)
}

/// Drops root for the group's user/group (Apache's User/Group by default),
/// and applies the per-process options that need privileges first.
fn become_group_identity(group: &GroupRuntime) -> Result<(), String> {
    let o = &group.options;
    if let Some(mask) = o.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    if o.cpu_time_limit > 0 {
        proc_edge::set_rlimit(RLimit::Cpu, o.cpu_time_limit)
            .map_err(|e| format!("cpu-time-limit: {e}"))?;
    }
    if o.memory_limit > 0 {
        proc_edge::set_rlimit(RLimit::Data, o.memory_limit)
            .map_err(|e| format!("memory-limit: {e}"))?;
    }
    if o.virtual_memory_limit > 0 {
        proc_edge::set_rlimit(RLimit::AddressSpace, o.virtual_memory_limit)
            .map_err(|e| format!("virtual-memory-limit: {e}"))?;
    }
    if o.cpu_priority != 0 {
        proc_edge::renice(o.cpu_priority).map_err(|e| format!("cpu-priority: {e}"))?;
    }
    if let Some(lang) = &o.lang {
        crate::apache::process::set_env("LANG", lang);
    }
    if let Some(locale) = &o.locale {
        crate::apache::process::set_env("LC_ALL", locale);
        if !proc_edge::set_locale(locale) {
            log::server(
                None,
                Level::Warning,
                &format!(
                    "daemon process '{}': unsupported locale '{locale}'",
                    group.name
                ),
            );
        }
    }
    if let Some(dir) = &o.chroot
        && Uid::effective().is_root()
    {
        nix::unistd::chroot(dir.as_str()).map_err(|e| format!("chroot to {dir}: {e}"))?;
        std::env::set_current_dir("/").map_err(|e| format!("chdir / in chroot: {e}"))?;
    }
    let worker = proc_edge::worker_identity();
    let uid = o.user.as_ref().map_or(worker.uid, |u| u.uid);
    let gid = o.group.as_ref().map_or(worker.gid, |g| g.gid);
    let user_name = o
        .user
        .as_ref()
        .map_or(worker.user_name.clone(), |u| u.name.clone());
    if Uid::effective().is_root() {
        let mut groups: Vec<Gid> = vec![Gid::from_raw(gid)];
        if let Ok(Some(user)) = nix::unistd::User::from_uid(Uid::from_raw(uid))
            && let Ok(name) = std::ffi::CString::new(user.name.clone())
            && let Ok(list) = nix::unistd::getgrouplist(&name, Gid::from_raw(gid))
        {
            groups = list;
        }
        groups.extend(o.supplementary_groups.iter().map(|g| Gid::from_raw(g.gid)));
        nix::unistd::setgroups(&groups).map_err(|e| format!("setgroups: {e}"))?;
        nix::unistd::setgid(Gid::from_raw(gid)).map_err(|e| format!("setgid({gid}): {e}"))?;
        nix::unistd::setuid(Uid::from_raw(uid))
            .map_err(|e| format!("setuid({uid}) for user '{user_name}': {e}"))?;
    }
    // The working directory, as mod_wsgi chooses it: home=, else the home
    // directory of the account when it is not Apache's own. mod_wsgi
    // stops the process when it cannot go there; an account without a
    // usable home directory (nobody's /nonexistent) keeps the current one.
    let account = nix::unistd::User::from_uid(Uid::effective()).ok().flatten();
    if let Some(home) = &o.home {
        std::env::set_current_dir(home)
            .map_err(|e| format!("cannot change to home={home}: {e}"))?;
    } else if Uid::effective().as_raw() != worker.uid
        && let Some(u) = &account
        && std::env::set_current_dir(&u.dir).is_err()
    {
        log::server(
            None,
            Level::Info,
            &format!(
                "daemon process '{}': home directory {} of user '{user_name}' is not usable; staying in the current directory",
                group.name,
                u.dir.display()
            ),
        );
    }
    // HOME, and USER, USERNAME and LOGNAME where the Apache parent had
    // them, name the account the process runs as (not root's, inherited),
    // whatever home= says: as mod_wsgi sets them in a daemon process.
    if let Some(u) = &account {
        crate::apache::process::set_env("HOME", &u.dir.to_string_lossy());
        for name in ["USER", "USERNAME", "LOGNAME"] {
            if std::env::var_os(name).is_some() {
                crate::apache::process::set_env(name, &u.name);
            }
        }
    }
    Ok(())
}

/// The main thread after start-up (a thread of its own while service
/// scripts hold the main one): waits for a reason to stop, then drains and
/// exits.
fn caretaker(
    shared: &Arc<Shared>,
    wake_read: OwnedFd,
    workers: Vec<std::thread::JoinHandle<()>>,
    service: Option<&Service>,
) -> Result<(), String> {
    let mut pipe = std::fs::File::from(wake_read);
    let mut byte = [0u8; 1];
    let how = loop {
        match pipe.read(&mut byte) {
            Ok(1) if [SHUTDOWN, GRACEFUL, EVICTION, RETIRE].contains(&byte[0]) => break byte[0],
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break SHUTDOWN,
        }
    };
    let o = &shared.group.options;
    let how = match how {
        RETIRE => retire(shared, &mut pipe),
        other => {
            // Stop taking connections; running requests go on. (Under the
            // lock the request threads hold while accepting: see
            // request_thread.)
            let _busy = shared.active.lock();
            shared.stopping.store(true, Ordering::SeqCst);
            stop_keeping(shared);
            other
        }
    };
    let _ = nix::unistd::write(shared.stop_write.as_fd(), b"x");
    // Service scripts run on the main thread until they are told to stop.
    let scripts_over = service.is_none_or(|s| s.end(o.shutdown_timeout));
    match how {
        GRACEFUL | RETIRE => wait_idle(shared, o.graceful_timeout, Some(&mut pipe)),
        EVICTION if !o.eviction_timeout.is_zero() => {
            wait_idle(shared, o.eviction_timeout, Some(&mut pipe))
        }
        EVICTION => wait_idle(shared, o.graceful_timeout, Some(&mut pipe)),
        _ => {}
    }
    // The reaper: whatever happens next may hang (a stuck request, atexit
    // handlers), so the process ends after shutdown-timeout regardless.
    let timeout = o.shutdown_timeout;
    let reaped = shared.clone();
    let _ = std::thread::Builder::new()
        .name("wsgi-reaper".into())
        .spawn(move || {
            std::thread::sleep(timeout);
            force_exit(&reaped, timeout);
        });
    let reason = shared.shutdown_reason.get().copied().unwrap_or(match how {
        GRACEFUL => "graceful_signal",
        RETIRE => "shutdown_signal",
        EVICTION => "eviction_signal",
        _ => "shutdown_signal",
    });
    shared
        .group
        .board
        .process_ended(shared.index, Some(End::Reason(reason)), false);
    crate::wsgi::events::process_stopping(reason);
    crate::telemetry::process_stopping(reason);
    wait_idle(shared, timeout, None);
    crate::telemetry::process_stopped(reason);
    let idle = shared.idle();
    if !idle {
        // The same budget as the reaper's: whichever of the two sees it
        // run out first ends the process, and the workers hear why.
        force_exit(shared, timeout);
    }
    // Destroying the interpreter runs the application's atexit handlers;
    // only safe once no request thread is inside Python.
    if idle && scripts_over && shared.group.python.destroy_interpreter() {
        *shared.python_gate.lock() = true;
        match service {
            // Python is finalized where it started.
            Some(s) => s.on_main(crate::python::finalize),
            None => crate::python::finalize(),
        }
    }
    drop(workers);
    log::server(
        None,
        Level::Info,
        &format!(
            "{}: stopped after {} requests",
            shared.who(),
            shared.requests.load(Ordering::Relaxed)
        ),
    );
    Ok(())
}

/// Ends a process whose requests outlived shutdown-timeout: one log line,
/// an `Abandoned` failure to each waiting worker, then `_exit`. Called by
/// the reaper and by the caretaker when its own wait runs out, whichever
/// comes first; the other one waits for the exit.
fn force_exit(shared: &Shared, waited: Duration) -> ! {
    static FORCING: AtomicBool = AtomicBool::new(false);
    if FORCING.swap(true, Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    log::server(
        None,
        Level::Error,
        &format!(
            "{}: still running {}s after shutdown began; forcing exit",
            shared.who(),
            waited.as_secs_f64()
        ),
    );
    abandon_running(shared, waited);
    proc_edge::exit_now(super::supervisor::EXIT_REAPED);
}

/// Just before a forced exit: tells the worker of each request still
/// running why its answer will not come (an `Abandoned` failure naming the
/// reason the process stops), rather than leave it a closed connection to
/// guess from. A request thread writing at this moment keeps its lock and
/// its worker sees the close.
fn abandon_running(shared: &Shared, waited: Duration) {
    let why = shared
        .shutdown_why
        .get()
        .cloned()
        .unwrap_or_else(|| "stopping".to_string());
    let mut running: Vec<(Option<Instant>, Arc<SocketBackend>)> = {
        let started = shared.active.lock().clone();
        let exchanges = shared.exchanges.lock();
        started
            .into_iter()
            .zip(exchanges.iter())
            .filter_map(|(start, exchange)| Some((start, exchange.clone()?)))
            .collect()
    };
    running.extend(
        shared
            .in_loop
            .lock()
            .values()
            .map(|(start, exchange)| (Some(*start), exchange.clone())),
    );
    // One short budget for all: a connection held by the monitor is free
    // again within microseconds; one held by a blocked writer never is.
    let until = Instant::now() + Duration::from_millis(100);
    for (start, exchange) in running {
        let ran = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let last_word = Frame::failure(
            FailureKind::Abandoned,
            format!(
                "the process was forced to exit with the request running for {ran:.1}s, {:.0}s after it began to stop ({why})",
                waited.as_secs_f64()
            ),
        );
        exchange.send_last_word(&last_word, until);
    }
}

/// Apache is restarting: this process belongs to the generation that
/// ends. It keeps serving from its socket until the next generation's
/// socket has taken the path over (the parent renames it in place while
/// reading the new configuration), so that connections Apache's children
/// make in between are served rather than refused. Then nothing new can
/// reach this socket: what is in its backlog is taken and served, and only
/// when the backlog is empty does it stop accepting, under the lock the
/// request threads accept under, so no connection is left in a socket
/// nobody will read. Returns how to go on: RETIRE (drain the running
/// requests for up to graceful-timeout), or SHUTDOWN when a stop came
/// meanwhile or the parent is gone.
fn retire(shared: &Shared, pipe: &mut std::fs::File) -> u8 {
    let group = shared.group;
    let o = &group.options;
    log::server(
        None,
        Level::Info,
        &format!(
            "{}: Apache is restarting; serving until the new generation's socket is in place, then finishing the running requests",
            shared.who()
        ),
    );
    let taken_over = || {
        std::fs::metadata(&group.socket_path)
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m) != group.socket_inode)
            .unwrap_or(true)
    };
    // Until the path is taken over, serve as usual; a stop (or the parent
    // dying) ends that. Other requests to stop (maximum-requests, a
    // restart-interval) wait: this process ends soon anyway, and stopping
    // now would leave its socket without a reader.
    let mut stop = false;
    while !taken_over() {
        if nix::unistd::getppid().as_raw() as u32 != group.parent_pid {
            stop = true;
            break;
        }
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        if let Ok(n) = poll(&mut fds, PollTimeout::from(50u16))
            && n > 0
        {
            let mut b = [0u8; 1];
            if matches!(pipe.read(&mut b), Ok(1) if b[0] == SHUTDOWN) {
                stop = true;
                break;
            }
        }
    }
    if !stop {
        // A connect that resolved the old path just before the rename may
        // still be on its way into the backlog.
        std::thread::sleep(Duration::from_millis(100));
    }
    // Drain the backlog, bounded by graceful-timeout (threads all busy
    // with requests longer than that would otherwise hold it forever).
    let deadline = Instant::now() + o.graceful_timeout;
    loop {
        {
            let _busy = shared.active.lock();
            if stop || !backlog_pending(group.listener) || Instant::now() >= deadline {
                shared.stopping.store(true, Ordering::SeqCst);
                stop_keeping(shared);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if stop { SHUTDOWN } else { RETIRE }
}

/// The process takes no more requests: no worker may take a seat of it,
/// and the connections it kept are closed (a worker that took a seat just
/// before and sent its request on one sees the close before any answer,
/// and sends the request again on a new connection: see
/// `daemon::worker`). Called with `stopping` set, under the `active` lock.
fn stop_keeping(shared: &Shared) {
    shared.group.board.close_seats(shared.index);
    shared.kept.lock().clear();
}

/// Whether a connection waits in the listener's backlog.
fn backlog_pending(listener: RawFd) -> bool {
    let mut fds = [PollFd::new(process_fd(listener), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Waits until no request runs, or `budget` passed. A second SIGTERM during
/// a graceful drain cuts the drain short.
fn wait_idle(shared: &Shared, budget: Duration, mut pipe: Option<&mut std::fs::File>) {
    let deadline = Instant::now() + budget;
    while Instant::now() < deadline {
        if shared.idle() {
            return;
        }
        if let Some(p) = pipe.as_deref_mut() {
            let mut fds = [PollFd::new(p.as_fd(), PollFlags::POLLIN)];
            if let Ok(n) = poll(&mut fds, PollTimeout::from(50u16))
                && n > 0
            {
                let mut b = [0u8; 1];
                if matches!(p.read(&mut b), Ok(1) if b[0] == SHUTDOWN) {
                    return;
                }
            }
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// When each request thread's request started, for request-timeout: a
/// request whose connection became a tunnel (a WebSocket) is a session
/// that lasts as long as its client wants, and is left out.
fn timed_starts(shared: &Shared) -> Vec<Option<Instant>> {
    let mut starts = shared.active.lock().clone();
    let exchanges = shared.exchanges.lock();
    for (start, exchange) in starts.iter_mut().zip(exchanges.iter()) {
        if exchange.as_ref().is_some_and(|e| e.is_tunnel()) {
            *start = None;
        }
    }
    starts
}

/// A request thread: take a connection (a new one from the listener, or a
/// kept one whose next request arrived), serve its request, repeat until
/// the process stops taking connections.
fn request_thread(shared: &Arc<Shared>, slot: usize) {
    // accept4 below runs under the `active` lock, so it must never sleep:
    // a thread woken for a connection another thread or process took gets
    // EAGAIN (a blocking accept4 here once deadlocked the whole daemon).
    // O_NONBLOCK on the listener itself; accepted sockets do not inherit it.
    let _ = nix::fcntl::fcntl(
        shared.group.listener,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let board = &shared.group.board;
    let mut events = [EpollEvent::empty()];
    // Whether this thread's seat is on the board: it waits, and no worker
    // has been promised it (see `GroupBoard::take_seat`).
    let mut seated = false;
    // Since when this thread, woken by the listener, has left the new
    // connection to others because every seat of the process is promised.
    let mut declined_since: Option<Instant> = None;
    while !shared.stopping.load(Ordering::SeqCst) {
        if !seated {
            board.add_seat(shared.index);
            seated = true;
        }
        match shared.ready.wait(&mut events, EpollTimeout::NONE) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let token = events[0].data();
        if token == STOP || shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        if token == LISTENER {
            // Every waiting thread of this process was promised to a
            // worker's kept connection, whose request is on its way: taking
            // the new connection too would hold one request more than the
            // process has threads (it would wait for a thread here, and
            // fail with the process if it hangs). Leave it in the backlog,
            // where a thread of a sibling that comes back to wait takes it,
            // or this one once its promise is kept; but only for a moment:
            // a worker that died between taking the seat and sending never
            // keeps its promise.
            let claimed = board.claim_seat(shared.index);
            if !claimed {
                let since = *declined_since.get_or_insert_with(Instant::now);
                if since.elapsed() < PROMISE_WAIT {
                    std::thread::sleep(Duration::from_micros(50));
                    continue;
                }
            }
            declined_since = None;
            // Taking a connection and marking the slot busy happen under the
            // same lock the caretaker holds to set `stopping`: a draining
            // process either sees this connection as a running request, or
            // this thread sees the drain and leaves the connection to another
            // process.
            let fd = {
                let mut active = shared.active.lock();
                if shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
                match accept4(shared.group.listener, SockFlag::SOCK_CLOEXEC) {
                    Ok(fd) => {
                        active[slot] = Some(Instant::now());
                        fd
                    }
                    Err(_) => {
                        // Another thread or process took it: still waiting.
                        if claimed {
                            board.add_seat(shared.index);
                        }
                        continue;
                    }
                }
            };
            board.accepted(shared.index, claimed);
            seated = false;
            let stream = proc_edge::stream_from_fd(fd);
            super::worker::set_buffer_sizes(&stream, shared.group);
            serve_connection(shared, slot, Conn::new(stream), Arrived::New);
        } else {
            declined_since = None;
            let Some(conn) = shared.kept.lock().remove(&token) else {
                continue;
            };
            {
                let mut active = shared.active.lock();
                if shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
                active[slot] = Some(Instant::now());
            }
            // A request here used the seat its worker took; an end of stream
            // (the worker dropped the connection) took none.
            if serve_connection(shared, slot, conn, Arrived::Kept(token)) {
                seated = false;
            }
        }
        shared.active.lock()[slot] = None;
    }
    // Stay alive, idle, so the process keeps its N + 3 layout (plus the
    // reaper) while it shuts down; the process exit ends the thread.
    loop {
        std::thread::park();
    }
}

/// How a connection came to a request thread.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arrived {
    /// From the listener: check the peer, set the timeouts.
    New,
    /// Kept from an earlier exchange, registered in `ready` under this token.
    Kept(u64),
}

/// After a clean exchange, keeps the connection open for the worker's next
/// request (see docs/protocol.md, "Connections"), unless the process is
/// stopping or keeps enough already; otherwise it closes as it drops.
fn keep(shared: &Shared, conn: Conn, arrived: Arrived) {
    use std::os::fd::AsRawFd;
    let mut kept = shared.kept.lock();
    if shared.stopping.load(Ordering::SeqCst) || kept.len() >= MAX_KEPT {
        return;
    }
    let fd = process_fd(conn.socket().as_raw_fd());
    let (token, armed) = match arrived {
        // Still registered, disarmed by EPOLLONESHOT: armed again.
        Arrived::Kept(token) => {
            let mut event = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, token);
            (token, shared.ready.modify(fd, &mut event))
        }
        Arrived::New => {
            let token = shared.next_token.fetch_add(1, Ordering::Relaxed);
            let event = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, token);
            (token, shared.ready.add(fd, event))
        }
    };
    if armed.is_ok() {
        kept.insert(token, conn);
    }
}

/// Serves the next request of a connection; true if one came. After a
/// clean exchange the connection is kept for the worker's next request
/// (`keep`), otherwise closed.
fn serve_connection(shared: &Arc<Shared>, slot: usize, conn: Conn, arrived: Arrived) -> bool {
    let o = &shared.group.options;
    if arrived == Arrived::New {
        let stream = conn.socket();
        if !super::peer::admit(stream, shared.group, shared.pid) {
            return false;
        }
        // socket-timeout, else Apache's Timeout (as mod_wsgi): a peer that
        // sends half a frame and waits must not hold this thread for ever.
        let timeout = [o.socket_timeout, shared.group.server_timeout]
            .into_iter()
            .find(|t| !t.is_zero());
        // Writes of the response back to the worker: response-socket-timeout,
        // else socket-timeout.
        let write_timeout = (!o.response_socket_timeout.is_zero())
            .then_some(o.response_socket_timeout)
            .or(timeout);
        let _ = stream.set_write_timeout(write_timeout);
        let _ = stream.set_read_timeout(timeout);
    }
    let backend = SocketBackend::new(conn, shared.limits, &shared.group.name, shared.pid);
    let frame = match backend.read_frame() {
        Ok(f) => f,
        Err(ProtocolError::Closed | ProtocolError::UnexpectedEof) => return false,
        Err(e @ ProtocolError::VersionMismatch { .. }) => {
            // An Apache child of an older or newer module (a graceful
            // restart loaded another build): said to it, as docs/protocol.md
            // promises, and here.
            let message = format!("{e}: restart Apache fully");
            log::server(None, Level::Error, &format!("{}: {message}", shared.who()));
            let _ = backend.send(&Frame::failure(FailureKind::ProtocolError, message));
            return true;
        }
        Err(e) => {
            log::server(
                None,
                Level::Error,
                &format!("{}: bad request from worker: {e}", shared.who()),
            );
            return true;
        }
    };
    // (The decoder has refused any other protocol version.)
    let Frame::Request { environ, .. } = frame else {
        log::server(
            None,
            Level::Error,
            &format!(
                "{}: worker sent {} instead of a request",
                shared.who(),
                frame.name()
            ),
        );
        return true;
    };
    // Who took the request goes out with the first bytes of the answer,
    // not on its own: a separate frame woke the worker once more per
    // request. A request still running at the monitor's next tick has it
    // sent then (see `monitor_thread`), so the worker can name this process
    // if it dies or times out on the request.
    backend.hold_accepted();
    // And on the board, at once, for a worker whose request this process
    // fails before it says so.
    let ticket = environ_number(&environ, crate::cgi::TICKET).unwrap_or(0);
    let url = environ_value(&environ, "REQUEST_URI").unwrap_or_default();
    let board = &shared.group.board;
    board.take(shared.index, slot, ticket, shared.pid, url);
    backend.note_client(&environ);
    let started = Instant::now();
    shared.active.lock()[slot] = Some(started);
    shared.exchanges.lock()[slot] = Some(backend.clone());
    // WSGIIgnoreActivity On: the request does not count as activity for
    // inactivity-timeout (a health check must not keep an idle process).
    let activity = environ_value(&environ, crate::cgi::IGNORE_ACTIVITY) != Some(b"1");
    let connects = environ_number(&environ, crate::cgi::DAEMON_CONNECTS).unwrap_or(1);
    crate::wsgi::events::note_daemon_connects(connects);
    if activity {
        shared
            .last_activity_ms
            .store(shared.now_ms().max(1), Ordering::Relaxed);
    }
    // Only a worker that says it will send more on the connection has it
    // kept (other peers, test clients among them, expect the close).
    let wanted = environ_value(&environ, crate::cgi::KEEP_CONNECTION) == Some(b"1");
    let in_loop = InLoop {
        shared: shared.clone(),
        id: shared.next_in_loop.fetch_add(1, Ordering::Relaxed),
        started,
        wanted,
        activity,
    };
    let clean = serve_request(shared, slot, &backend, environ, in_loop) && wanted;
    board.clear(shared.index, slot);
    shared.exchanges.lock()[slot] = None;
    shared.active.lock()[slot] = None;
    if backend.is_detached() {
        // The loop answers and ends it (`InLoop::ended`). A kept
        // connection's registration in `ready` goes: the loop keeps the
        // connection on a descriptor of its own.
        if let Arrived::Kept(_) = arrived {
            let _ = shared.ready.delete(process_fd(backend.raw_fd()));
        }
        return true;
    }
    backend.finish();
    request_done(shared, activity);
    // Kept only when nobody else holds the exchange any more. Otherwise
    // closed now, even while the application still holds its wsgi.input
    // (which would keep the socket open, unserved, for a worker that
    // means to send on it).
    let idle = match Arc::try_unwrap(backend) {
        Ok(backend) if clean => backend.into_idle_conn(),
        Ok(_) => None,
        Err(held) => {
            held.shut_down();
            None
        }
    };
    if let Some(conn) = idle {
        keep(shared, conn, arrived);
    }
    true
}

/// Counts a finished request: activity for inactivity-timeout (unless
/// WSGIIgnoreActivity), requests served, maximum-requests.
fn request_done(shared: &Shared, activity: bool) {
    if activity {
        shared
            .last_activity_ms
            .store(shared.now_ms().max(1), Ordering::Relaxed);
    }
    let served = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
    shared.group.board.served(shared.index, served);
    let o = &shared.group.options;
    if o.maximum_requests > 0 && served == o.maximum_requests {
        shared.request_exit(
            GRACEFUL,
            "maximum_requests",
            &format!("reached maximum-requests={}; recycling", o.maximum_requests),
        );
    }
}

/// The exchanges the event loop holds, by their number: when each request
/// began, and its connection.
type InLoopMap = std::collections::HashMap<u64, (Instant, Arc<SocketBackend>)>;

/// An exchange of this process as the event loop holds it.
struct InLoop {
    shared: Arc<Shared>,
    id: u64,
    /// When the request began, on its thread.
    started: Instant,
    /// The worker means to send more on the connection.
    wanted: bool,
    activity: bool,
}

impl LoopOwner for InLoop {
    fn take_place(&self) -> bool {
        take_loop_place(&self.shared)
    }

    fn detached(&self, backend: &Arc<SocketBackend>) {
        let mut in_loop = self.shared.in_loop.lock();
        in_loop.insert(self.id, (self.started, backend.clone()));
        show_loop_held(&self.shared, &in_loop);
    }

    fn ended(&self, idle: Option<Conn>) {
        let shared = &self.shared;
        {
            let mut in_loop = shared.in_loop.lock();
            in_loop.remove(&self.id);
            show_loop_held(shared, &in_loop);
        }
        give_back_loop_place(shared);
        request_done(shared, self.activity);
        if let Some(conn) = idle.filter(|_| self.wanted) {
            keep(shared, conn, Arrived::New);
        }
    }
}

/// A place on the event loop for an exchange handed over now, when it
/// holds fewer than loop-held-limit (always, without a limit).
fn take_loop_place(shared: &Shared) -> bool {
    let limit = shared.group.options.loop_held_limit;
    limit == 0
        || shared
            .loop_places
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
}

/// An exchange that had a place on the loop ended there.
fn give_back_loop_place(shared: &Shared) {
    if shared.group.options.loop_held_limit > 0 {
        shared.loop_places.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The requests the event loop holds, on the group's board for the status
/// page (they have no thread row): how many, and when the oldest began.
/// Called under the `in_loop` lock, so the board follows its changes in
/// order.
fn show_loop_held(shared: &Shared, in_loop: &InLoopMap) {
    let oldest_ms = in_loop
        .values()
        .map(|(start, _)| start.elapsed())
        .max()
        .map_or(0, |age| {
            super::board::now_ms().saturating_sub(age.as_millis() as u64)
        });
    shared
        .group
        .board
        .loop_held(shared.index, in_loop.len() as u64, oldest_ms);
}

/// The value of `key` in a request's environ as the worker sent it.
fn environ_value<'a>(environ: &'a Environ, key: &str) -> Option<&'a [u8]> {
    environ.get(key.as_bytes())
}

/// The same, read as a number.
fn environ_number<T: std::str::FromStr>(environ: &Environ, key: &str) -> Option<T> {
    std::str::from_utf8(environ_value(environ, key)?)
        .ok()?
        .parse()
        .ok()
}

fn var<'a>(vars: &'a [(Cow<'_, str>, Cow<'_, str>)], key: &str) -> Option<&'a str> {
    vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
}

/// A variable as the Apache child holds it (`cgi::vars`: text, request
/// header values already one character per byte, as PEP 3333 has them),
/// so that the environ is the same in both modes; bytes that are not
/// UTF-8 (no worker sends them) read as latin-1.
fn var_str(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(bytes.iter().map(|&c| char::from(c)).collect()),
    }
}

/// Serves one request and ends the exchange (`ResponseEnd` or `Failure`).
/// Runs the application for one request; true when the exchange ended
/// with `ResponseEnd` written, so that the connection may carry another.
fn serve_request(
    shared: &Shared,
    slot: usize,
    backend: &Arc<SocketBackend>,
    environ: Environ,
    in_loop: InLoop,
) -> bool {
    let mut vars: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::with_capacity(environ.len() + 1);
    vars.extend(environ.iter().map(|(k, v)| (var_str(k), var_str(v))));
    // When this daemon took the request (mod_wsgi.daemon_start).
    let daemon_start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    vars.push((
        crate::cgi::DAEMON_START_US.into(),
        daemon_start.to_string().into(),
    ));
    // A WSGIHandlerScript serves SCRIPT_FILENAME (the file Apache matched).
    let script = var(&vars, "mod_wsgi.handler_script")
        .filter(|s| !s.is_empty())
        .or_else(|| var(&vars, "SCRIPT_FILENAME"));
    let Some(script) = script.map(str::to_string) else {
        let _ = backend.send(&Frame::failure(
            FailureKind::BadRequest,
            "no SCRIPT_FILENAME in the request",
        ));
        return false;
    };
    let callable = var(&vars, "mod_wsgi.callable_object")
        .unwrap_or("application")
        .to_string();
    let app_group = var(&vars, "mod_wsgi.application_group")
        .unwrap_or("")
        .to_string();
    let reloading = var(&vars, crate::cgi::SCRIPT_RELOADING) != Some("0");
    let mtime = crate::wsgi::scripts::mtime_of(&script).unwrap_or(0);
    let o = &shared.group.options;
    if reloading {
        let first = *shared
            .script_mtimes
            .lock()
            .entry(script.clone())
            .or_insert(mtime);
        if first != mtime && !shared.stopping.load(Ordering::SeqCst) {
            shared.request_exit(
                GRACEFUL,
                "script_reload",
                &format!("script '{script}' changed; recycling (WSGIScriptReloading)"),
            );
        }
    }
    let resource = var(&vars, "SCRIPT_FILENAME").unwrap_or(&script).to_string();
    let target = AppTarget {
        script: &script,
        resource: &resource,
        callable_object: &callable,
        mtime,
        reloading,
    };
    let ctx = EnvironContext {
        process_group: &shared.group.name,
        application_group: &app_group,
        callable_object: &callable,
        script_reloading: reloading,
        multithread: o.threads > 1,
        multiprocess: o.multiprocess,
        // Not in a daemon process: Apache's request is in the Apache child.
        apache_request: None,
    };
    if !o.queue_timeout.is_zero() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let queued = var(&vars, crate::cgi::QUEUE_START_US)
            .and_then(|v| v.parse::<u128>().ok())
            .map(|t| now.saturating_sub(t));
        if let Some(waited) = queued.filter(|w| *w > o.queue_timeout.as_micros()) {
            let message = format!(
                "request waited {:.1}s for a free thread of daemon process group '{}', over queue-timeout={}s",
                waited as f64 / 1e6,
                shared.group.name,
                o.queue_timeout.as_secs_f64()
            );
            backend.log(crate::wsgi::Level::Error, &message);
            let _ = backend.send(&Frame::failure(FailureKind::QueueTimeout, message));
            return false;
        }
    }
    // An ASGI application may hand the exchange to its event loop, unless
    // the loop holds loop-held-limit already (`InLoop::take_place`): then
    // the request keeps its thread, so a process whose loop is full fills
    // its threads and stops taking connections (its siblings get them).
    backend.prepare_loop(LoopSetup {
        owner: Box::new(in_loop),
        request_timeout: o.request_timeout.as_secs_f64(),
        report: ReportTarget::new(&target, &ctx),
    });
    let dyn_backend: Arc<dyn Backend> = backend.clone();
    // The mod_wsgi.* keys the worker sent are part of the environ (C
    // mod_wsgi passes them on); environ::build sets the ones `ctx` covers.
    let pairs = vars.iter().map(|(k, v)| (k.as_ref(), v.as_ref()));
    shared.running.lock()[slot] = Some((
        crate::python::interp::current_thread_ident(),
        app_group.clone(),
    ));
    let served = serve::serve(dyn_backend, &target, pairs, &ctx);
    shared.running.lock()[slot] = None;
    shared.script_loaded.store(true, Ordering::Relaxed);
    if served.reload_requested && !shared.stopping.load(Ordering::SeqCst) {
        shared.request_exit(
            GRACEFUL,
            "script_reload",
            &format!("reload_required() of script '{script}' asked for a reload; recycling (WSGIScriptReloading)"),
        );
    }
    if backend.is_detached() {
        // The event loop answers it (and reports its failures).
        return false;
    }
    match served.outcome {
        Ok(()) => backend.send(&Frame::ResponseEnd).is_ok(),
        Err(failure) => {
            serve::report(&**backend, &failure, &target, &ctx);
            if let Some(frame) = failure_frame(&failure.error, &backend.where_logged()) {
                let _ = backend.send(&frame);
            }
            false
        }
    }
}

/// Enforces the time-based options. Runs whatever they are set to (mod_wsgi
/// only starts its monitor for some of them, so the others silently did
/// nothing).
fn monitor_thread(shared: &Shared) {
    let o = &shared.group.options;
    let tick = Duration::from_millis(200);
    // Per slot: (start of the request, when it was interrupted).
    let mut interrupted: Vec<Option<(Instant, Instant)>> = vec![None; o.threads];
    // How long one request may run: request-timeout, scaled for a
    // process of several threads by 1 + ln(threads), as mod_wsgi 6.1
    // does (more patience for outliers where other threads still
    // serve; 4 threads: x2.39, 10: x3.30).
    let fire = o
        .request_timeout
        .mul_f64(1.0 + (o.threads.max(1) as f64).ln());
    let over = || {
        if fire == o.request_timeout {
            format!("over request-timeout={}s", o.request_timeout.as_secs())
        } else {
            format!(
                "over request-timeout={}s scaled to {:.1}s for {} threads",
                o.request_timeout.as_secs(),
                fire.as_secs_f64(),
                o.threads
            )
        }
    };
    let mut last_tick = shared.now_ms();
    loop {
        std::thread::sleep(tick);
        // A tick that came late by over a second: the whole process was
        // stopped (SIGSTOP, a frozen cgroup) or starved, the deadlock thread
        // and the requests with it. Neither a deadlock nor a hung request:
        // the GIL probe starts afresh and the timeouts wait a tick, for the
        // requests to go on (a SIGCONT made the process restart itself at
        // once before).
        let woke = shared.now_ms();
        let late = woke.saturating_sub(last_tick) > tick.as_millis() as u64 + 1000;
        last_tick = woke;
        if late {
            shared.last_gil_ms.store(woke, Ordering::Relaxed);
            continue;
        }
        // Requests that outlived a tick tell their worker who serves them
        // now (fast ones said it with their answer).
        for exchange in shared.exchanges.lock().iter().flatten() {
            exchange.send_held_accepted();
        }
        if shared.stopping.load(Ordering::SeqCst) {
            continue;
        }
        // An Apache parent killed outright (SIGKILL, the OOM killer) ends
        // no daemon itself: one left orphaned would serve nobody for ever.
        if nix::unistd::getppid().as_raw() as u32 != shared.group.parent_pid {
            shared.request_exit(
                SHUTDOWN,
                "shutdown_signal",
                &format!(
                    "the Apache parent (pid {}) is gone; stopping",
                    shared.group.parent_pid
                ),
            );
            continue;
        }
        let now = shared.now_ms();
        let secs = |d: Duration| d.as_millis() as u64;
        if !o.deadlock_timeout.is_zero()
            && now.saturating_sub(shared.last_gil_ms.load(Ordering::Relaxed))
                > secs(o.deadlock_timeout)
        {
            shared.request_exit(
                SHUTDOWN,
                "deadlock_timeout",
                &format!(
                    "Python GIL not acquirable for deadlock-timeout={}s; restarting",
                    o.deadlock_timeout.as_secs()
                ),
            );
            continue;
        }
        if !o.restart_interval.is_zero() && now > secs(o.restart_interval) {
            shared.request_exit(
                GRACEFUL,
                "restart_interval",
                &format!(
                    "restart-interval={}s reached; recycling",
                    o.restart_interval.as_secs()
                ),
            );
            continue;
        }
        let busy: Vec<Instant> = shared.active.lock().iter().flatten().copied().collect();
        let last_activity = shared.last_activity_ms.load(Ordering::Relaxed);
        if !o.inactivity_timeout.is_zero()
            && busy.is_empty()
            && shared.in_loop.lock().is_empty()
            && last_activity != 0
            && now.saturating_sub(last_activity) > secs(o.inactivity_timeout)
        {
            shared.request_exit(
                GRACEFUL,
                "inactivity_timeout",
                &format!(
                    "no requests for inactivity-timeout={}s; recycling",
                    o.inactivity_timeout.as_secs()
                ),
            );
            continue;
        }
        if !o.request_timeout.is_zero() && !o.interrupt_timeout.is_zero() {
            // First raise mod_wsgi.RequestTimeout in each request over the
            // limit; restart only if one still runs interrupt-timeout later.
            let starts = timed_starts(shared);
            let mut restart = None;
            for (slot, start) in starts.iter().enumerate() {
                let Some(start) = *start else {
                    interrupted[slot] = None;
                    continue;
                };
                if start.elapsed() <= fire {
                    continue;
                }
                match interrupted[slot] {
                    Some((s, at)) if s == start => {
                        if at.elapsed() > o.interrupt_timeout {
                            restart = Some(start.elapsed());
                        }
                    }
                    _ => {
                        interrupted[slot] = Some((start, Instant::now()));
                        let target = shared.running.lock()[slot].clone();
                        if let Some((ident, group)) = target {
                            let raised = crate::python::interp::interrupt_thread(&group, ident);
                            log::server(
                                None,
                                Level::Warning,
                                &format!(
                                    "{}: a request has run {:.0}s, {}; raising mod_wsgi.RequestTimeout in it ({})",
                                    shared.who(),
                                    start.elapsed().as_secs_f64(),
                                    over(),
                                    match raised {
                                        Ok(true) => "raised".to_string(),
                                        Ok(false) => "thread not found".to_string(),
                                        Err(e) => e,
                                    },
                                ),
                            );
                        }
                    }
                }
            }
            if let Some(ran) = restart {
                shared.request_exit(SHUTDOWN, "request_timeout", &format!(
                    "a request has run {:.0}s and did not stop within interrupt-timeout={}s of being interrupted; restarting",
                    ran.as_secs_f64(),
                    o.interrupt_timeout.as_secs()
                ));
            }
            continue;
        }
        if !o.request_timeout.is_zero()
            && let Some(longest) = timed_starts(shared)
                .iter()
                .flatten()
                .map(|t| t.elapsed())
                .max()
            && longest > fire
        {
            shared.request_exit(
                SHUTDOWN,
                "request_timeout",
                &format!(
                    "a request has run {:.0}s, {}; restarting",
                    longest.as_secs_f64(),
                    over()
                ),
            );
            continue;
        }
        if !o.startup_timeout.is_zero()
            && !shared.script_loaded.load(Ordering::Relaxed)
            && now > secs(o.startup_timeout)
            && !busy.is_empty()
        {
            shared.request_exit(
                SHUTDOWN,
                "startup_timeout",
                &format!(
                    "the script did not load within startup-timeout={}s; restarting",
                    o.startup_timeout.as_secs()
                ),
            );
        }
    }
}

/// Takes and releases the GIL about once a second, recording when it last
/// could.
fn deadlock_thread(shared: &Shared) {
    loop {
        let finalizing = shared.python_gate.lock();
        if *finalizing {
            drop(finalizing);
            loop {
                std::thread::park();
            }
        }
        pyo3::Python::with_gil(|_| ());
        drop(finalizing);
        shared.last_gil_ms.store(shared.now_ms(), Ordering::Relaxed);
        std::thread::sleep(Duration::from_secs(1));
    }
}
