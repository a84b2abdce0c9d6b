//! mod_wsgi's events, as mod_wsgi 6 publishes them to what an application
//! subscribed with `mod_wsgi.subscribe_events(callback)`:
//!
//! - `request_started` before the application is called (it may replace
//!   the application: a subscriber returning `{"application_object": x}`),
//! - `response_started` when the application calls start_response,
//! - `request_exception` when an exception of the application is logged,
//! - `request_finished` once the response is done (close() included),
//! - `process_stopping` when the process shuts down, also to the
//!   `subscribe_shutdown` callbacks,
//! - `process_signal` (daemon processes: SIGHUP, SIGUSR2), also to the
//!   `subscribe_signals` callbacks.
//!
//! Each callback is called as `callback(name, **event)`; one that returns a
//! dict has it merged into the event before the next callback runs. The
//! lists (`event_callbacks`, `shutdown_callbacks`, `signal_callbacks`) and
//! `active_requests` are attributes of each interpreter's `mod_wsgi`
//! module, as in mod_wsgi. `request_data()` is the dict of the request the
//! calling thread serves, in every event of that request.

use super::Level;
use super::environ::Arrival;
use super::metrics::{self, RequestIo};
use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyModule, PyTuple};
use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Application groups of the interpreters this process started (their
/// `mod_wsgi` modules hold the callbacks), in order of creation.
static INTERPRETERS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The request the current thread serves.
struct Current {
    request_data: Py<PyDict>,
    request_id: Option<String>,
    /// Its interpreter's `mod_wsgi` module and the module's
    /// `event_callbacks` list, looked up once per request: each event of
    /// the request asks whether the list is empty.
    module: Py<PyAny>,
    subscribers: Option<Py<PyList>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Adds the event names and containers to a new interpreter's module and
/// remembers the interpreter for process-wide events.
pub(super) fn install(module: &Bound<'_, PyModule>, application_group: &str) -> PyResult<()> {
    let py = module.py();
    module.add_function(wrap_pyfunction!(subscribe_events, module)?)?;
    module.add_function(wrap_pyfunction!(subscribe_shutdown, module)?)?;
    module.add_function(wrap_pyfunction!(subscribe_signals, module)?)?;
    module.add_function(wrap_pyfunction!(request_data, module)?)?;
    module.setattr("event_callbacks", PyList::empty(py))?;
    module.setattr("shutdown_callbacks", PyList::empty(py))?;
    module.setattr("signal_callbacks", PyList::empty(py))?;
    module.setattr("active_requests", PyDict::new(py))?;
    let mut known = INTERPRETERS.lock();
    if !known.iter().any(|g| g == application_group) {
        known.push(application_group.to_string());
    }
    Ok(())
}

/// The current interpreter's `mod_wsgi` module: the one of the request
/// this thread serves, else the one in sys.modules.
fn module(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let current = CURRENT.with(|c| c.borrow().as_ref().map(|c| c.module.clone_ref(py)));
    match current {
        Some(m) => Ok(m.into_bound(py)),
        None => crate::python::loaded_module(py, "mod_wsgi"),
    }
}

/// The list `name` of the current interpreter's `mod_wsgi` module.
fn callbacks<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyList>> {
    module(py)?
        .getattr(name)
        .ok()
        .and_then(|l| l.downcast_into::<PyList>().ok())
        .ok_or_else(|| PyRuntimeError::new_err(format!("mod_wsgi {name} not initialised")))
}

fn subscribe<'py>(list: &str, callback: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    callbacks(callback.py(), list)?.append(&callback)?;
    // The callback back, so the functions work as decorators.
    Ok(callback)
}

/// mod_wsgi.subscribe_events(callback): called for every event.
#[pyfunction]
#[pyo3(signature = (callback, /))]
fn subscribe_events(callback: Bound<'_, PyAny>) -> PyResult<Bound<'_, PyAny>> {
    subscribe("event_callbacks", callback)
}

/// mod_wsgi.subscribe_shutdown(callback): called with `process_stopping`.
#[pyfunction]
#[pyo3(signature = (callback, /))]
fn subscribe_shutdown(callback: Bound<'_, PyAny>) -> PyResult<Bound<'_, PyAny>> {
    subscribe("shutdown_callbacks", callback)
}

/// mod_wsgi.subscribe_signals(callback): called with `process_signal` when
/// a daemon process gets SIGHUP or SIGUSR2. Outside daemon mode nothing
/// delivers signals to applications: as mod_wsgi, the call is logged (with
/// where it came from) and the callback is not kept.
#[pyfunction]
#[pyo3(signature = (callback, /))]
fn subscribe_signals(callback: Bound<'_, PyAny>) -> PyResult<Bound<'_, PyAny>> {
    if !super::module::in_daemon_process() {
        let py = callback.py();
        super::errors::log_line(
            Level::Info,
            "mod_wsgi.subscribe_signals() called outside daemon mode; the callback will not be invoked. Signal callbacks are only delivered in daemon mode processes.",
        );
        let stack = py
            .import("traceback")
            .and_then(|t| t.call_method0("format_stack"))
            .and_then(|s| s.extract::<Vec<String>>())
            .unwrap_or_default();
        for line in stack.concat().lines() {
            super::errors::log_line(Level::Info, line);
        }
        return Ok(callback);
    }
    start_signal_dispatcher();
    subscribe("signal_callbacks", callback)
}

/// mod_wsgi.request_data(): the dict of the request this thread serves.
#[pyfunction]
fn request_data(py: Python<'_>) -> PyResult<Py<PyDict>> {
    CURRENT
        .with(|c| c.borrow().as_ref().map(|c| c.request_data.clone_ref(py)))
        .ok_or_else(|| PyRuntimeError::new_err("no active request for thread"))
}

/// Whether anything subscribed to events in the current interpreter: the
/// list the current request looked up, else the module's.
fn has_subscribers(py: Python<'_>) -> bool {
    let looked_up = CURRENT.with(|c| {
        c.borrow().as_ref().map(|c| {
            c.subscribers
                .as_ref()
                .is_some_and(|l| !l.bind(py).is_empty())
        })
    });
    looked_up.unwrap_or_else(|| callbacks(py, "event_callbacks").is_ok_and(|l| !l.is_empty()))
}

/// Calls each of `list` (a copy of it: a callback may subscribe or leave
/// meanwhile) with `name` and the event as keyword arguments; a dict
/// returned is merged into the event. Failures are logged and the next
/// callback runs.
fn call_each(py: Python<'_>, name: &str, list: &Bound<'_, PyList>, event: &Bound<'_, PyDict>) {
    let snapshot: Vec<Bound<'_, PyAny>> = list.iter().collect();
    let args = match PyTuple::new(py, [name]) {
        Ok(args) => args,
        Err(e) => return log_callback_error(py, name, &e),
    };
    for callback in snapshot {
        let outcome = callback.call(&args, Some(event)).and_then(|result| {
            match result.downcast::<PyDict>() {
                Ok(update) => event.update(update.as_mapping()),
                Err(_) => Ok(()),
            }
        });
        if let Err(e) = outcome {
            log_callback_error(py, name, &e);
        }
    }
}

fn log_callback_error(py: Python<'_>, name: &str, e: &PyErr) {
    let traceback = super::response::format_exception(py, e);
    let mut lines = traceback.lines();
    let last = traceback.lines().last().unwrap_or("").to_string();
    super::errors::log_line(
        Level::Error,
        &format!(
            "exception raised by event callback for '{name}' (pid {}): {last}",
            std::process::id()
        ),
    );
    for line in lines.by_ref() {
        super::errors::log_line(Level::Error, line);
    }
}

/// Publishes event `name` in the current interpreter: to the event
/// subscribers, and for `process_stopping` / `process_signal` to the
/// shutdown / signal subscribers.
fn publish(py: Python<'_>, name: &str, event: &Bound<'_, PyDict>) {
    let Ok(events) = callbacks(py, "event_callbacks") else {
        super::errors::log_line(
            Level::Error,
            "Unable to find event subscribers (no mod_wsgi module in this interpreter)",
        );
        return;
    };
    call_each(py, name, &events, event);
    let also = match name {
        "process_stopping" => Some("shutdown_callbacks"),
        "process_signal" => Some("signal_callbacks"),
        _ => None,
    };
    if let Some(list) = also.and_then(|l| callbacks(py, l).ok()) {
        call_each(py, name, &list, event);
    }
}

/// Adds request_id (when Apache gave the request one) and request_data.
fn add_request(event: &Bound<'_, PyDict>) -> PyResult<()> {
    let py = event.py();
    let (id, data) = CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .map(|c| (c.request_id.clone(), Some(c.request_data.clone_ref(py))))
            .unwrap_or((None, None))
    });
    if let Some(id) = id {
        event.set_item("request_id", id)?;
    }
    if let Some(data) = data {
        event.set_item("request_data", data)?;
    }
    Ok(())
}

/// The Apache child's pid: the environ's, else this process in embedded
/// mode (0 in a daemon process that was not told).
fn server_pid(arrival: &Arrival) -> i64 {
    arrival.server_pid.unwrap_or_else(|| {
        if super::module::in_daemon_process() {
            0
        } else {
            i64::from(std::process::id())
        }
    })
}

thread_local! {
    /// How many times the Apache child tried to connect to this daemon for
    /// the request this thread serves (set before it is served).
    static DAEMON_CONNECTS: std::cell::Cell<u32> = const { std::cell::Cell::new(1) };
}

/// The daemon side of a request records the worker's connection attempts
/// for its `request_started` event.
pub fn note_daemon_connects(attempts: u32) {
    DAEMON_CONNECTS.with(|c| c.set(attempts));
}

/// One request from its start (before the script is loaded) to its end,
/// as mod_wsgi brackets it: the request's `request_data` dict and its entry
/// in `active_requests`, the events, and the process metrics.
/// The scope ends when dropped (however the request went).
pub struct RequestScope<'py> {
    py: Python<'py>,
    request_id: Option<String>,
    /// `active_requests`, which holds the request while it runs.
    active: Option<Bound<'py, PyAny>>,
    arrival: Option<Arrival>,
    application_start: f64,
    cpu_start: Option<metrics::ThreadCpu>,
    /// The request went on in the event loop (see [`LoopRecord`]).
    handed_over: bool,
}

/// A request whose exchange the event loop took over (an ASGI request in
/// daemon mode): what its end needs, there, to publish `request_finished`
/// with the real status and record its times, as [`RequestScope`] does
/// for a request that ends on its thread. It stays in `active_requests`
/// and counts as active until then.
pub struct LoopRecord {
    /// The request's `Current`, put back in place while it is finished.
    current: Option<Current>,
    /// Its id and the `active_requests` dict that holds it.
    active: Option<(String, Py<PyAny>)>,
    arrival: Arrival,
    application_start: f64,
}

impl LoopRecord {
    /// The request ended with `status` (0: none was sent) after the body
    /// bytes in `io`: the event goes out, the times are recorded, the
    /// request leaves `active_requests`.
    pub fn finish(self, py: Python<'_>, status: u16, io: &RequestIo) {
        let LoopRecord {
            current,
            active,
            arrival,
            application_start,
        } = self;
        let outer = CURRENT.with(|c| c.replace(current));
        // No CPU times: the loop runs other requests meanwhile.
        request_finished(py, &arrival, application_start, None, status, io);
        drop(CURRENT.with(|c| c.replace(outer)));
        if let Some((id, requests)) = active {
            let _ = requests.bind(py).del_item(id);
        }
        metrics::loop_request_ended();
    }
}

impl<'py> RequestScope<'py> {
    /// The request starts on this thread; `request_id` is Apache's log id
    /// of the request (mod_wsgi.request_id), if it has one.
    pub fn begin(py: Python<'py>, request_id: Option<&str>) -> RequestScope<'py> {
        metrics::request_began();
        let request_data = PyDict::new(py);
        let mut active = None;
        // No module (an application removed it from sys.modules): the
        // request goes on without request_data() and events.
        if let Ok(module) = module(py) {
            if let Some(id) = request_id
                && let Ok(requests) = module.getattr("active_requests")
            {
                match requests.set_item(id, &request_data) {
                    Ok(()) => active = Some(requests),
                    Err(e) => e.write_unraisable(py, None),
                }
            }
            let subscribers = module
                .getattr("event_callbacks")
                .ok()
                .and_then(|l| l.downcast_into::<PyList>().ok())
                .map(Bound::unbind);
            CURRENT.with(|c| {
                *c.borrow_mut() = Some(Current {
                    request_data: request_data.unbind(),
                    request_id: request_id.map(str::to_string),
                    module: module.unbind(),
                    subscribers,
                })
            });
        }
        RequestScope {
            py,
            request_id: request_id.map(str::to_string),
            active,
            arrival: None,
            application_start: now(),
            cpu_start: None,
            handed_over: false,
        }
    }

    /// The exchange went to the event loop: the request ends there
    /// ([`LoopRecord::finish`]), not with this scope; its thread is free.
    /// None when the application was never called.
    pub fn hand_over(&mut self) -> Option<LoopRecord> {
        let arrival = self.arrival.take()?;
        self.handed_over = true;
        let active = match (self.request_id.take(), self.active.take()) {
            (Some(id), Some(requests)) => Some((id, requests.unbind())),
            _ => None,
        };
        Some(LoopRecord {
            current: CURRENT.with(|c| c.borrow_mut().take()),
            active,
            arrival,
            application_start: self.application_start,
        })
    }

    /// The environ is built and the application about to be called:
    /// publishes `request_started`. Returns the application to call, which
    /// a subscriber may have replaced (`application_object` in the event).
    pub fn application_starting(
        &mut self,
        environ: &Bound<'py, PyDict>,
        arrival: Arrival,
        application: Bound<'py, PyAny>,
        callable_object: &str,
    ) -> Bound<'py, PyAny> {
        let py = environ.py();
        self.application_start = now();
        metrics::application_started(arrival.thread_id);
        metrics::slow_request_starting(environ);
        let chosen = if has_subscribers(py) {
            self.cpu_start = metrics::ThreadCpu::now();
            let event = PyDict::new(py);
            let filled = (|| -> PyResult<()> {
                add_request(&event)?;
                event.set_item("thread_id", arrival.thread_id)?;
                // The Apache child's attempts to connect to this daemon
                // (0 in embedded mode); restarts are mod_wsgi's answer to a
                // daemon that asks the child to reconnect, which ours
                // never do.
                let connects = if super::module::in_daemon_process() {
                    DAEMON_CONNECTS.with(|c| c.get())
                } else {
                    0
                };
                event.set_item("daemon_connects", connects)?;
                event.set_item("daemon_restarts", 0)?;
                event.set_item("server_pid", server_pid(&arrival))?;
                event.set_item("request_start", arrival.request_start)?;
                event.set_item("queue_start", arrival.queue_start)?;
                event.set_item("daemon_start", arrival.daemon_start)?;
                event.set_item("application_object", &application)?;
                event.set_item("callable_object", callable_object)?;
                event.set_item("request_environ", environ)?;
                event.set_item("application_start", self.application_start)?;
                Ok(())
            })();
            match filled {
                Ok(()) => {
                    publish(py, "request_started", &event);
                    event
                        .get_item("application_object")
                        .ok()
                        .flatten()
                        .unwrap_or(application)
                }
                Err(e) => {
                    log_callback_error(py, "request_started", &e);
                    application
                }
            }
        } else {
            application
        };
        self.arrival = Some(arrival);
        chosen
    }

    /// The application is done with the request (close() included):
    /// publishes `request_finished` and records the request's times.
    /// `status`: the status the application gave (0 when none).
    pub fn application_finished(&mut self, status: u16, io: &RequestIo) {
        let Some(arrival) = self.arrival.take() else {
            return;
        };
        let cpu = self
            .cpu_start
            .and_then(|start| metrics::ThreadCpu::now().map(|end| (start, end)));
        request_finished(self.py, &arrival, self.application_start, cpu, status, io);
    }
}

/// Publishes `request_finished` (when anything subscribed) and records the
/// request's times: the end of a request, on its thread or in the loop.
/// `cpu`: the thread's CPU clock at the start and the end, when measured.
fn request_finished(
    py: Python<'_>,
    arrival: &Arrival,
    application_start: f64,
    cpu: Option<(metrics::ThreadCpu, metrics::ThreadCpu)>,
    status: u16,
    io: &RequestIo,
) {
    let finish = now();
    let application_time = (finish - application_start).max(0.0);
    if has_subscribers(py) {
        let event = PyDict::new(py);
        let filled = (|| -> PyResult<()> {
            add_request(&event)?;
            event.set_item("thread_id", arrival.thread_id)?;
            event.set_item("server_pid", server_pid(arrival))?;
            event.set_item("request_start", arrival.request_start)?;
            event.set_item("queue_start", arrival.queue_start)?;
            event.set_item("daemon_start", arrival.daemon_start)?;
            event.set_item("input_reads", io.input_reads)?;
            event.set_item("input_length", io.input_bytes)?;
            event.set_item("input_time", io.input_time)?;
            event.set_item("output_length", io.output_bytes)?;
            event.set_item("output_writes", io.output_writes)?;
            if let Some((start, end)) = cpu {
                // As mod_wsgi: never more CPU than the request's wall
                // time (thread CPU clocks tick coarser than it).
                let mut user = (end.user - start.user).max(0.0);
                let mut system = (end.system - start.system).max(0.0);
                let total = user + system;
                if total > application_time && total > 0.0 {
                    user = user / total * application_time;
                    system = application_time - user;
                }
                event.set_item("cpu_user_time", user)?;
                event.set_item("cpu_system_time", system)?;
                event.set_item("cpu_time", user + system)?;
            }
            event.set_item("output_time", io.output_time)?;
            event.set_item("application_finish", finish)?;
            event.set_item("application_time", application_time)?;
            event.set_item("status", status)?;
            event.set_item("gil_wait_time", io.gil_wait_time)?;
            event.set_item("gil_wait_count", io.gil_wait_count)?;
            Ok(())
        })();
        match filled {
            Ok(()) => publish(py, "request_finished", &event),
            Err(e) => log_callback_error(py, "request_finished", &e),
        }
    }
    metrics::record_request(&metrics::RequestTimes {
        request_start: arrival.request_start,
        queue_start: arrival.queue_start,
        daemon_start: arrival.daemon_start,
        application_start,
        application_finish: finish,
        status,
        io: io.clone(),
    });
}

impl Drop for RequestScope<'_> {
    /// The request is over: its `active_requests` entry goes, and so does
    /// this thread's `request_data()`.
    fn drop(&mut self) {
        if let (Some(id), Some(active)) = (&self.request_id, &self.active) {
            let _ = active.del_item(id);
        }
        let current = CURRENT.with(|c| c.borrow_mut().take());
        drop(current);
        if self.handed_over {
            metrics::request_left_thread();
        } else {
            metrics::request_ended();
        }
    }
}

/// start_response was called: publishes `response_started`.
pub fn response_started(
    py: Python<'_>,
    status: &Bound<'_, PyAny>,
    headers: &Bound<'_, PyAny>,
    exc_info: Option<&Bound<'_, PyAny>>,
) {
    if !has_subscribers(py) || CURRENT.with(|c| c.borrow().is_none()) {
        return;
    }
    let event = PyDict::new(py);
    let filled = (|| -> PyResult<()> {
        add_request(&event)?;
        event.set_item("response_status", status)?;
        event.set_item("response_headers", headers)?;
        match exc_info {
            Some(e) => event.set_item("exception_info", e)?,
            None => event.set_item("exception_info", py.None())?,
        }
        Ok(())
    })();
    match filled {
        Ok(()) => publish(py, "response_started", &event),
        Err(e) => log_callback_error(py, "response_started", &e),
    }
}

/// An exception of the application is being logged: publishes
/// `request_exception` with its `exception_info` (type, value, traceback).
pub fn request_exception(py: Python<'_>, error: &PyErr) {
    if !has_subscribers(py) || CURRENT.with(|c| c.borrow().is_none()) {
        return;
    }
    let event = PyDict::new(py);
    let info = (
        error.get_type(py),
        error.value(py).clone(),
        error
            .traceback(py)
            .map_or_else(|| py.None(), |t| t.into_any().unbind()),
    );
    let filled = add_request(&event).and_then(|()| event.set_item("exception_info", info));
    match filled {
        Ok(()) => publish(py, "request_exception", &event),
        Err(e) => log_callback_error(py, "request_exception", &e),
    }
}

/// Publishes a process-wide event in every interpreter of this process,
/// one after the other; `fill` builds its payload in each.
fn publish_everywhere(name: &str, fill: impl Fn(&Bound<'_, PyDict>) -> PyResult<()>) {
    if !crate::python::is_initialized() {
        return;
    }
    let groups = INTERPRETERS.lock().clone();
    for group in groups {
        let outcome = crate::python::with_interpreter(&group, |py| {
            let event = PyDict::new(py);
            match fill(&event) {
                Ok(()) => publish(py, name, &event),
                Err(e) => log_callback_error(py, name, &e),
            }
        });
        if let Err(why) = outcome {
            crate::apache::log::server(
                None,
                Level::Info,
                &format!(
                    "'{name}' not published in application group '{group}' (pid {}): {why}",
                    std::process::id()
                ),
            );
        }
    }
}

/// The process is shutting down: `process_stopping` with `shutdown_reason`
/// (mod_wsgi's words: "shutdown_signal", "graceful_signal", ...; "" in an
/// Apache child) to the event and shutdown subscribers of every
/// interpreter. Once per process.
pub fn process_stopping(reason: &str) {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if DONE.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    publish_everywhere("process_stopping", |event| {
        event.set_item("shutdown_reason", reason)
    });
}

/// A daemon process got SIGHUP or SIGUSR2: `process_signal` to the event
/// and signal subscribers of every interpreter.
pub fn process_signal(signum: i32, signame: &str) {
    publish_everywhere("process_signal", |event| {
        event.set_item("signame", signame)?;
        event.set_item("signum", signum)
    });
}

/// Starts, once per daemon process, the thread that hands SIGHUP and
/// SIGUSR2 to the signal subscribers, and routes the two signals to it
/// (until then they are dropped, as mod_wsgi drops them with nobody
/// subscribed). Started on the first subscription, so a process nobody
/// listens in keeps its thread layout.
fn start_signal_dispatcher() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let (read, write) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok(pair) => pair,
            Err(e) => {
                super::errors::log_line(
                    Level::Error,
                    &format!("mod_wsgi.subscribe_signals(): cannot create the signal pipe: {e}"),
                );
                return;
            }
        };
        // The signal handler must never block on a full pipe.
        let _ = nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&write),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        let mut pipe = std::fs::File::from(read);
        let started = std::thread::Builder::new()
            .name("wsgi-signals".into())
            .spawn(move || {
                use std::io::Read;
                let mut byte = [0u8; 1];
                loop {
                    match pipe.read(&mut byte) {
                        Ok(1) if byte[0] == b'H' => process_signal(nix::libc::SIGHUP, "SIGHUP"),
                        Ok(1) if byte[0] == b'U' => process_signal(nix::libc::SIGUSR2, "SIGUSR2"),
                        Ok(1) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        _ => return,
                    }
                }
            });
        match started {
            Ok(_) => {
                // The write end stays open for the life of the process.
                let fd = std::os::fd::IntoRawFd::into_raw_fd(write);
                crate::apache::process::route_signal_events_to(crate::apache::process::borrow_fd(
                    fd,
                ));
            }
            Err(e) => super::errors::log_line(
                Level::Error,
                &format!("mod_wsgi.subscribe_signals(): cannot start the signal thread: {e}"),
            ),
        }
    });
}
