//! mod_wsgi's process and request metrics, as mod_wsgi 6 keeps and reports
//! them: `process_metrics()` and `request_metrics()` (None until the
//! application calls `start_recording_metrics()`), and `server_metrics()`
//! (Apache's scoreboard, with WSGIServerMetrics On in an Apache child or
//! server-metrics=On for a daemon group; None otherwise).
//!
//! Counted for every request whatever the recording: running requests,
//! requests done, the busy time of the request threads (running requests
//! integrated over time) and each thread's requests. Recorded once asked
//! for: per interval (between two `request_metrics()` calls) the time of
//! each phase of a request (server, queue, daemon, application, request,
//! input reads, output writes) as a total, min, max and a 65-bucket
//! histogram, response status classes, I/O totals and per-thread figures.

use super::Backend;
use super::BackendError;
use super::BodyBuf;
use crate::apache::log::Level;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Buckets of a phase histogram: 16 octaves of milliseconds (1 ms to
/// 65536 ms), 4 linear buckets each, and one overflow bucket.
const BUCKETS: usize = 65;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The histogram bucket of a duration: below 1 ms the first; from 1 ms on,
/// the octave of the milliseconds (2^k <= ms < 2^(k+1)) split in four equal
/// parts (a value on a boundary goes up); 65536 ms and more the last.
fn bucket(seconds: f64) -> usize {
    let ms = seconds * 1000.0;
    if ms.is_nan() || ms < 1.0 {
        return 0;
    }
    if ms >= 65536.0 {
        return BUCKETS - 1;
    }
    let octave = ms.log2().floor().clamp(0.0, 15.0);
    let low = octave.exp2();
    let sub = (((ms - low) / low) * 4.0).floor().clamp(0.0, 3.0);
    octave as usize * 4 + sub as usize
}

/// One phase of a request over an interval.
#[derive(Clone)]
struct Phase {
    total: f64,
    /// None until a request recorded this phase in the interval.
    min_us: Option<u64>,
    max_us: u64,
    buckets: [u64; BUCKETS],
}

impl Default for Phase {
    fn default() -> Self {
        Phase {
            total: 0.0,
            min_us: None,
            max_us: 0,
            buckets: [0; BUCKETS],
        }
    }
}

impl Phase {
    fn record(&mut self, us: u64) {
        let seconds = us as f64 / 1e6;
        self.total += seconds;
        self.min_us = Some(self.min_us.map_or(us, |m| m.min(us)));
        self.max_us = self.max_us.max(us);
        self.buckets[bucket(seconds)] += 1;
    }
}

/// The phases mod_wsgi reports, in one interval.
#[derive(Clone, Default)]
struct Phases {
    server: Phase,
    queue: Phase,
    daemon: Phase,
    application: Phase,
    request: Phase,
    gil_wait: Phase,
    input_read: Phase,
    output_write: Phase,
}

/// What one request thread did in the interval (indexed by thread id - 1).
#[derive(Clone, Copy, Default)]
struct Slot {
    /// When the running request started and when its busy time was last
    /// accounted (seconds since the epoch); None when idle.
    running: Option<(f64, f64)>,
    cpu_start: Option<ThreadCpu>,
    completed: u64,
    busy_us: u64,
    cpu_us: u64,
    max_duration_us: u64,
}

/// The interval being recorded (from `start_recording_metrics()` or the
/// last `request_metrics()`).
struct Interval {
    start: f64,
    start_busy: f64,
    start_count: u64,
    start_cpu: (f64, f64),
    requests: u64,
    phases: Phases,
    input_bytes: u64,
    input_reads: u64,
    output_bytes: u64,
    output_writes: u64,
    gil_wait_count: u64,
    /// Responses by class, 1xx to 5xx.
    statuses: [u64; 5],
}

struct State {
    /// Requests running now and done so far.
    active: u64,
    total: u64,
    /// Busy time of the request threads (seconds), integrated up to
    /// `busy_last`.
    busy: f64,
    busy_last: Option<f64>,
    /// Requests each request thread served, by thread id.
    threads: std::collections::BTreeMap<u64, u64>,
    slots: Vec<Slot>,
    interval: Option<Interval>,
}

static STATE: Mutex<State> = Mutex::new(State {
    active: 0,
    total: 0,
    busy: 0.0,
    busy_last: None,
    threads: std::collections::BTreeMap::new(),
    slots: Vec::new(),
    interval: None,
});

impl State {
    /// Brings the busy time up to now, then adds `change` running requests.
    fn account(&mut self, change: i64) -> f64 {
        let t = now();
        if let Some(last) = self.busy_last {
            self.busy += (t - last).max(0.0) * self.active as f64;
        }
        self.busy_last = Some(t);
        if change > 0 {
            self.active += change as u64;
        } else if change < 0 {
            let done = change.unsigned_abs();
            self.active = self.active.saturating_sub(done);
            self.total += done;
        }
        self.busy
    }

    fn slot(&mut self, thread_id: u64) -> Option<&mut Slot> {
        let max = threads_maximum();
        if self.slots.len() != max {
            self.slots.resize(max, Slot::default());
        }
        let index = usize::try_from(thread_id).ok()?.checked_sub(1)?;
        self.slots.get_mut(index)
    }
}

/// Request threads a process has at most: the daemon group's threads, or
/// the MPM's threads per child.
fn threads_maximum() -> usize {
    // Fixed for the life of a serving process (daemon mode says it before
    // the first request).
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| super::module::request_threads_maximum().max(1))
}

/// CPU time the calling thread used so far.
#[derive(Clone, Copy, Debug)]
pub struct ThreadCpu {
    pub user: f64,
    pub system: f64,
}

fn seconds(t: nix::sys::time::TimeVal) -> f64 {
    t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6
}

impl ThreadCpu {
    pub fn now() -> Option<ThreadCpu> {
        let usage =
            nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD).ok()?;
        Some(ThreadCpu {
            user: seconds(usage.user_time()),
            system: seconds(usage.system_time()),
        })
    }
}

/// CPU time of the whole process (user, system) and its peak RSS in bytes.
fn process_usage() -> ((f64, f64), Option<u64>) {
    match nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF) {
        // ru_maxrss is in KiB on Linux.
        Ok(u) => (
            (seconds(u.user_time()), seconds(u.system_time())),
            u64::try_from(u.max_rss()).ok().map(|k| k * 1024),
        ),
        Err(_) => ((0.0, 0.0), None),
    }
}

/// Current RSS in bytes (VmRSS of /proc/self/status).
fn current_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A request started in this process (before its script is loaded).
pub fn request_began() {
    STATE.lock().account(1);
}

/// The application of a request is about to run on thread `thread_id`.
pub fn application_started(thread_id: u64) {
    let cpu = ThreadCpu::now();
    let t = now();
    let mut state = STATE.lock();
    *state.threads.entry(thread_id).or_insert(0) += 1;
    if let Some(slot) = state.slot(thread_id) {
        slot.running = Some((t, t));
        slot.cpu_start = cpu;
    }
    CURRENT_SLOT.with(|c| c.set(Some(thread_id)));
}

thread_local! {
    /// The thread id whose slot the request of this thread holds.
    static CURRENT_SLOT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// A request is over (whatever happened to it).
pub fn request_ended() {
    end_on_thread(true);
}

/// The request left its thread for the event loop: the thread is free, the
/// request still active until [`loop_request_ended`].
pub fn request_left_thread() {
    end_on_thread(false);
}

/// A request the event loop held ended.
pub fn loop_request_ended() {
    STATE.lock().account(-1);
}

fn end_on_thread(request_over: bool) {
    let thread_id = CURRENT_SLOT.with(|c| c.take());
    if let Some(id) = thread_id {
        SLOW_RUNNING.lock().remove(&id);
    }
    let cpu = thread_id.and_then(|_| ThreadCpu::now());
    let t = now();
    let mut state = STATE.lock();
    if let Some(id) = thread_id
        && let Some(slot) = state.slot(id)
        && let Some((start, busy_since)) = slot.running.take()
    {
        slot.completed += 1;
        slot.busy_us += ((t - busy_since).max(0.0) * 1e6) as u64;
        slot.max_duration_us = slot
            .max_duration_us
            .max(((t - start).max(0.0) * 1e6) as u64);
        if let (Some(a), Some(b)) = (slot.cpu_start.take(), cpu) {
            let used = (b.user - a.user).max(0.0) + (b.system - a.system).max(0.0);
            slot.cpu_us += (used * 1e6) as u64;
        }
    }
    if request_over {
        state.account(-1);
    }
}

/// Reads and writes of one request's body, as its backend counted them.
#[derive(Clone, Debug, Default)]
pub struct RequestIo {
    pub input_bytes: u64,
    pub input_reads: u64,
    /// Seconds spent reading.
    pub input_time: f64,
    pub output_bytes: u64,
    pub output_writes: u64,
    pub output_time: f64,
    /// Times the request thread took the GIL back after releasing it, and
    /// the seconds it waited for it.
    pub gil_wait_count: u64,
    pub gil_wait_time: f64,
}

/// When a request passed each point (seconds since the epoch; queue and
/// daemon are 0 in embedded mode) and what it did.
pub struct RequestTimes {
    pub request_start: f64,
    pub queue_start: f64,
    pub daemon_start: f64,
    pub application_start: f64,
    pub application_finish: f64,
    pub status: u16,
    pub io: RequestIo,
}

fn micros_between(from: f64, to: f64) -> u64 {
    if from <= 0.0 {
        return 0;
    }
    ((to - from).max(0.0) * 1e6) as u64
}

/// Adds a finished request to the interval being recorded, if any.
pub fn record_request(times: &RequestTimes) {
    let mut state = STATE.lock();
    let active = state.active;
    let Some(interval) = state.interval.as_mut() else {
        return;
    };
    // Server time runs to where the request left the Apache child: the
    // daemon queue in daemon mode, the application in embedded mode.
    let daemon_mode = times.queue_start > 0.0;
    let (server, queue, daemon) = if daemon_mode {
        (
            micros_between(times.request_start, times.queue_start),
            micros_between(times.queue_start, times.daemon_start),
            micros_between(times.daemon_start, times.application_start),
        )
    } else {
        (
            micros_between(times.request_start, times.application_start),
            0,
            0,
        )
    };
    let application = micros_between(times.application_start, times.application_finish);
    slow_request_finished(times, active);
    let p = &mut interval.phases;
    interval.requests += 1;
    p.server.record(server);
    p.application.record(application);
    p.request.record(server + queue + daemon + application);
    p.input_read.record((times.io.input_time * 1e6) as u64);
    p.output_write.record((times.io.output_time * 1e6) as u64);
    p.gil_wait.record((times.io.gil_wait_time * 1e6) as u64);
    interval.gil_wait_count += times.io.gil_wait_count;
    if super::module::in_daemon_process() {
        p.queue.record(queue);
        p.daemon.record(daemon);
    }
    interval.input_bytes += times.io.input_bytes;
    interval.input_reads += times.io.input_reads;
    interval.output_bytes += times.io.output_bytes;
    interval.output_writes += times.io.output_writes;
    // No status (the application failed before start_response) counts as
    // the 500 the client got.
    let class = match times.status {
        0 => Some(4),
        100..=599 => Some(usize::from(times.status / 100 - 1)),
        _ => None,
    };
    if let Some(c) = class {
        interval.statuses[c] += 1;
    }
}

/// A request that may become a slow record: what the record says about
/// it, and when it arrived (the Apache child) and its application started.
struct SlowCandidate {
    record: crate::telemetry::wire::SlowRecord,
    arrival: (f64, f64, f64),
    application_start: f64,
}

/// The running requests, by request thread id (kept only while
/// WSGISlowRequests is on).
static SLOW_RUNNING: Mutex<std::collections::BTreeMap<u64, SlowCandidate>> =
    Mutex::new(std::collections::BTreeMap::new());

/// The application of a request is about to run: keeps what a slow record
/// of it would say (only with WSGISlowRequests and the reporter running).
pub fn slow_request_starting(environ: &Bound<'_, PyDict>) {
    if crate::telemetry::slow_threshold().is_none() {
        return;
    }
    let text = |key: &str| -> String {
        environ
            .get_item(key)
            .ok()
            .flatten()
            .and_then(|v| v.extract::<String>().ok())
            .unwrap_or_default()
    };
    let number = |key: &str| -> u64 {
        environ
            .get_item(key)
            .ok()
            .flatten()
            .and_then(|v| {
                v.extract::<u64>()
                    .ok()
                    .or_else(|| v.extract::<String>().ok()?.parse().ok())
            })
            .unwrap_or(0)
    };
    let host = text("HTTP_HOST");
    // Host without its port (an IPv6 literal keeps its brackets).
    let hostname = match host.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && !port.contains(']') => h.to_string(),
        _ if host.is_empty() => text("SERVER_NAME"),
        _ => host,
    };
    let server_pid = match number("mod_wsgi.server_pid") {
        0 if !super::module::in_daemon_process() => u64::from(std::process::id()),
        pid => pid,
    };
    let record = crate::telemetry::wire::SlowRecord {
        log_id: text("mod_wsgi.request_id"),
        thread_id: number("mod_wsgi.thread_id"),
        server_pid,
        method: text("REQUEST_METHOD"),
        scheme: text("wsgi.url_scheme"),
        hostname,
        script_name: text("SCRIPT_NAME"),
        path_info: text("PATH_INFO"),
        protocol: text("SERVER_PROTOCOL"),
        peer_ip: text("REMOTE_ADDR"),
        user_agent: if crate::telemetry::captures_user_agent() {
            text("HTTP_USER_AGENT")
        } else {
            String::new()
        },
        active_at_start: STATE.lock().active,
        ..Default::default()
    };
    // Seconds since the epoch (a float in the environ; 0 when not known).
    let micros = |key: &str| -> f64 {
        environ
            .get_item(key)
            .ok()
            .flatten()
            .and_then(|v| v.extract::<f64>().ok())
            .unwrap_or(0.0)
    };
    let candidate = SlowCandidate {
        arrival: (
            micros("mod_wsgi.request_start"),
            micros("mod_wsgi.queue_start"),
            micros("mod_wsgi.daemon_start"),
        ),
        application_start: now(),
        record,
    };
    SLOW_RUNNING
        .lock()
        .insert(candidate.record.thread_id, candidate);
}

/// Slow records (state active) of the requests running for at least
/// `threshold` seconds at `at`, for the reporter's tick.
pub fn slow_running(at: f64, threshold: f64) -> Vec<crate::telemetry::wire::SlowRecord> {
    let running = SLOW_RUNNING.lock();
    let mut out = Vec::new();
    for c in running.values() {
        if at - c.start() < threshold {
            continue;
        }
        let mut r = c.timed(at);
        r.state = 0;
        out.push(r);
    }
    out
}

impl SlowCandidate {
    /// The request's start: its arrival in the Apache child, else the
    /// start of its application.
    fn start(&self) -> f64 {
        if self.arrival.0 > 0.0 {
            self.arrival.0
        } else {
            self.application_start
        }
    }

    /// The record with its times up to `at`.
    fn timed(&self, at: f64) -> crate::telemetry::wire::SlowRecord {
        let (request_start, queue_start, daemon_start) = self.arrival;
        let mut r = self.record.clone();
        let start = self.start();
        r.start_stamp = start;
        r.duration = (at - start).max(0.0);
        let secs = |us: u64| us as f64 / 1e6;
        if queue_start > 0.0 {
            r.server_time = secs(micros_between(request_start, queue_start));
            r.queue_time = secs(micros_between(queue_start, daemon_start));
            r.daemon_time = secs(micros_between(daemon_start, self.application_start));
        } else {
            r.server_time = secs(micros_between(request_start, self.application_start));
        }
        r.application_time = (at - self.application_start).max(0.0);
        r
    }
}

/// A finished request that took at least the WSGISlowRequests threshold
/// goes to the reporter as a completed slow record.
fn slow_request_finished(times: &RequestTimes, active: u64) {
    let Some(thread_id) = CURRENT_SLOT.with(|c| c.get()) else {
        return;
    };
    let Some(candidate) = SLOW_RUNNING.lock().remove(&thread_id) else {
        return;
    };
    let Some(threshold) = crate::telemetry::slow_threshold() else {
        return;
    };
    let finish = times.application_finish;
    if finish - candidate.start() < threshold {
        return;
    }
    let mut record = candidate.timed(finish);
    record.state = 1;
    record.input_bytes = times.io.input_bytes;
    record.input_reads = times.io.input_reads;
    record.output_bytes = times.io.output_bytes;
    record.output_writes = times.io.output_writes;
    record.input_read_time = times.io.input_time;
    record.output_write_time = times.io.output_time;
    // No status (failed before start_response) is the 500 the client got.
    record.status = if times.status == 0 { 500 } else { times.status };
    record.active_at_completion = active;
    crate::telemetry::push_slow(record);
}

/// mod_wsgi.start_recording_metrics(): records from now on (once; later
/// calls change nothing).
#[pyfunction]
fn start_recording_metrics() {
    let (cpu, _) = process_usage();
    let mut state = STATE.lock();
    if state.interval.is_some() {
        return;
    }
    let busy = state.account(0);
    let count = state.total;
    state.interval = Some(Interval {
        start: now(),
        start_busy: busy,
        start_count: count,
        start_cpu: cpu,
        requests: 0,
        phases: Phases::default(),
        input_bytes: 0,
        input_reads: 0,
        gil_wait_count: 0,
        output_bytes: 0,
        output_writes: 0,
        statuses: [0; 5],
    });
}

/// mod_wsgi.process_metrics(): this process, once recording started.
#[pyfunction]
fn process_metrics(py: Python<'_>) -> PyResult<PyObject> {
    if crate::telemetry::is_enabled() {
        return Ok(py.None());
    }
    let (busy, count, active, threads) = {
        let mut state = STATE.lock();
        if state.interval.is_none() {
            return Ok(py.None());
        }
        let busy = state.account(0);
        let threads: Vec<(u64, u64)> = state.threads.iter().map(|(k, v)| (*k, *v)).collect();
        (busy, state.total, state.active, threads)
    };
    let ((user, system), max_rss) = process_usage();
    let d = PyDict::new(py);
    let started = super::module::process_started();
    let current = now();
    d.set_item("pid", std::process::id())?;
    d.set_item("request_busy_time", busy)?;
    d.set_item("request_count", count)?;
    d.set_item("memory_max_rss", max_rss.unwrap_or(0))?;
    d.set_item("memory_rss", current_rss().unwrap_or(0))?;
    d.set_item("cpu_user_time", user)?;
    d.set_item("cpu_system_time", system)?;
    d.set_item("cpu_time", user + system)?;
    d.set_item("restart_time", started)?;
    d.set_item("current_time", current)?;
    d.set_item("running_time", (current - started).max(0.0) as i64)?;
    d.set_item("request_threads", threads.len())?;
    d.set_item("active_requests", active)?;
    let list = PyList::empty(py);
    for (thread_id, requests) in threads {
        let t = PyDict::new(py);
        t.set_item("thread_id", thread_id)?;
        t.set_item("request_count", requests)?;
        list.append(t)?;
    }
    d.set_item("threads", list)?;
    Ok(d.into_any().unbind())
}

/// One interval, taken (and a new one started) by `drain`.
struct Drained {
    interval: Interval,
    stop: f64,
    period: f64,
    cpu_user: f64,
    cpu_system: f64,
    max_rss: Option<u64>,
    max: usize,
    threads_started: usize,
    request_busy: f64,
    request_count: u64,
    active_threads: usize,
    /// Per slot: completed, busy us, cpu us, current elapsed us, max us.
    slots: Vec<(u64, u64, u64, u64, u64)>,
}

/// Ends the interval being recorded (None if none is) and starts the next.
fn drain() -> Option<Drained> {
    let (cpu_now, max_rss) = process_usage();
    let stop = now();
    let max = threads_maximum();
    let (interval, busy, count, slots, threads_started) = {
        let mut state = STATE.lock();
        state.interval.as_ref()?;
        let busy = state.account(0);
        let count = state.total;
        // Each slot's figures for the interval, the running request's busy
        // time so far included (a long request counts in every interval).
        let mut slots = Vec::with_capacity(max);
        for index in 0..max {
            let slot = state.slot(index as u64 + 1).copied().unwrap_or_default();
            let (tail_us, elapsed_us) = match slot.running {
                Some((start, busy_since)) => (
                    ((stop - busy_since).max(0.0) * 1e6) as u64,
                    ((stop - start).max(0.0) * 1e6) as u64,
                ),
                None => (0, 0),
            };
            slots.push((
                slot.completed,
                slot.busy_us + tail_us,
                slot.cpu_us,
                elapsed_us,
                slot.max_duration_us,
            ));
            if let Some(s) = state.slot(index as u64 + 1) {
                if let Some((start, _)) = s.running {
                    s.running = Some((start, stop));
                }
                s.completed = 0;
                s.busy_us = 0;
                s.cpu_us = 0;
                s.max_duration_us = 0;
            }
        }
        let next = Interval {
            start: stop,
            start_busy: busy,
            start_count: count,
            start_cpu: cpu_now,
            requests: 0,
            phases: Phases::default(),
            input_bytes: 0,
            input_reads: 0,
            gil_wait_count: 0,
            output_bytes: 0,
            output_writes: 0,
            statuses: [0; 5],
        };
        let interval = state.interval.replace(next).expect("checked above");
        let started = state.threads.len();
        (interval, busy, count, slots, started)
    };
    let period = {
        let p = stop - interval.start;
        if p <= 0.0 { 1e-6 } else { p }
    };
    let cpu_user = (cpu_now.0 - interval.start_cpu.0).max(0.0) / period;
    let cpu_system = (cpu_now.1 - interval.start_cpu.1).max(0.0) / period;
    let request_busy = busy - interval.start_busy;
    let request_count = count - interval.start_count;
    let active_threads = slots
        .iter()
        .filter(|(completed, _, _, elapsed, _)| *completed > 0 || *elapsed > 0)
        .count();
    Some(Drained {
        interval,
        stop,
        period,
        cpu_user,
        cpu_system,
        max_rss,
        max,
        threads_started,
        request_busy,
        request_count,
        active_threads,
        slots,
    })
}

/// mod_wsgi.request_metrics(): the interval since the last call (or since
/// recording started), which starts a new interval. None while the
/// telemetry reporter is the consumer (WSGITelemetryService), as mod_wsgi.
#[pyfunction]
fn request_metrics(py: Python<'_>) -> PyResult<PyObject> {
    if crate::telemetry::is_enabled() {
        return Ok(py.None());
    }
    let Some(Drained {
        interval,
        stop,
        period,
        cpu_user,
        cpu_system,
        max_rss,
        max,
        threads_started,
        request_busy,
        request_count,
        active_threads,
        slots,
    }) = drain()
    else {
        return Ok(py.None());
    };
    let d = PyDict::new(py);
    d.set_item("pid", std::process::id())?;
    d.set_item("start_time", interval.start)?;
    d.set_item("stop_time", stop)?;
    d.set_item("sample_period", period)?;
    d.set_item("cpu_user_utilization", cpu_user)?;
    d.set_item("cpu_user_time", cpu_user)?;
    d.set_item("cpu_system_utilization", cpu_system)?;
    d.set_item("cpu_system_time", cpu_system)?;
    d.set_item("cpu_utilization", cpu_user + cpu_system)?;
    d.set_item("cpu_time", cpu_user + cpu_system)?;
    d.set_item("memory_max_rss", max_rss.unwrap_or(0))?;
    d.set_item("memory_rss", current_rss().unwrap_or(0))?;
    d.set_item("request_threads_maximum", max)?;
    d.set_item("request_threads_started", threads_started)?;
    d.set_item("request_threads_active", active_threads)?;
    d.set_item("capacity_utilization", request_busy / period / max as f64)?;
    d.set_item("request_count", request_count)?;
    d.set_item("request_throughput", request_count as f64 / period)?;
    for (i, class) in [
        "status_1xx",
        "status_2xx",
        "status_3xx",
        "status_4xx",
        "status_5xx",
    ]
    .iter()
    .enumerate()
    {
        d.set_item(*class, interval.statuses[i])?;
    }
    d.set_item("input_bytes", interval.input_bytes)?;
    d.set_item("input_reads", interval.input_reads)?;
    d.set_item("output_bytes", interval.output_bytes)?;
    d.set_item("output_writes", interval.output_writes)?;
    let p = &interval.phases;
    let phases: [(&str, &Phase); 8] = [
        ("server_time", &p.server),
        ("queue_time", &p.queue),
        ("daemon_time", &p.daemon),
        ("application_time", &p.application),
        ("request_time", &p.request),
        ("gil_wait_time", &p.gil_wait),
        ("input_read_time", &p.input_read),
        ("output_write_time", &p.output_write),
    ];
    for (name, phase) in phases {
        d.set_item(format!("{name}_buckets"), phase.buckets.to_vec())?;
    }
    d.set_item(
        "request_threads_completed",
        slots.iter().map(|s| s.0).collect::<Vec<_>>(),
    )?;
    d.set_item(
        "request_threads_buckets",
        slots.iter().map(|s| s.0).collect::<Vec<_>>(),
    )?;
    let secs = |us: u64| us as f64 / 1e6;
    d.set_item(
        "request_threads_busy_time",
        slots.iter().map(|s| secs(s.1)).collect::<Vec<_>>(),
    )?;
    d.set_item(
        "request_threads_cpu_time",
        slots.iter().map(|s| secs(s.2)).collect::<Vec<_>>(),
    )?;
    d.set_item(
        "request_threads_current_elapsed",
        slots.iter().map(|s| secs(s.3)).collect::<Vec<_>>(),
    )?;
    d.set_item(
        "request_threads_max_duration",
        slots.iter().map(|s| secs(s.4)).collect::<Vec<_>>(),
    )?;
    let mean = |phase: &Phase| {
        if interval.requests > 0 {
            phase.total / interval.requests as f64
        } else {
            0.0
        }
    };
    // Queue and daemon phases exist in daemon processes only: None in an
    // Apache child, as mod_wsgi reports them.
    let daemon_mode = super::module::in_daemon_process();
    for (name, phase) in phases {
        let is_daemon_phase = name == "queue_time" || name == "daemon_time";
        if is_daemon_phase && !daemon_mode {
            d.set_item(name, py.None())?;
            d.set_item(format!("{name}_min_us"), py.None())?;
            d.set_item(format!("{name}_max_us"), py.None())?;
            continue;
        }
        d.set_item(name, mean(phase))?;
        match phase.min_us {
            Some(min) => {
                d.set_item(format!("{name}_min_us"), min)?;
                d.set_item(format!("{name}_max_us"), phase.max_us)?;
            }
            None => {
                d.set_item(format!("{name}_min_us"), py.None())?;
                d.set_item(format!("{name}_max_us"), py.None())?;
            }
        }
    }
    d.set_item("gil_wait_count", interval.gil_wait_count)?;
    Ok(d.into_any().unbind())
}

/// Starts recording for the telemetry reporter (WSGITelemetryService), as
/// start_recording_metrics() would.
pub fn start_recording_for_telemetry() {
    start_recording_metrics();
}

/// Requests running now and done so far in this process.
pub fn request_counts() -> (u64, u64) {
    let state = STATE.lock();
    (state.active, state.total)
}

/// The telemetry sample of the interval since the last one (which starts
/// the next); None before recording started.
pub fn telemetry_sample() -> Option<crate::telemetry::wire::Sample> {
    use crate::telemetry::wire::{PhaseStats, Sample, SlotStats};
    let d = drain()?;
    let i = &d.interval;
    let p = &i.phases;
    let stats = |phase: &Phase| PhaseStats {
        mean: if i.requests > 0 {
            phase.total / i.requests as f64
        } else {
            0.0
        },
        min_max_us: phase.min_us.map(|m| (m, phase.max_us)),
        buckets: phase
            .buckets
            .iter()
            .map(|b| i32::try_from(*b).unwrap_or(i32::MAX))
            .collect(),
    };
    let secs = |us: u64| us as f64 / 1e6;
    Some(Sample {
        sample_period: d.period,
        request_count: d.request_count,
        request_throughput: d.request_count as f64 / d.period,
        capacity_utilization: d.request_busy / d.period / d.max as f64,
        cpu_user_utilization: d.cpu_user,
        cpu_system_utilization: d.cpu_system,
        memory_rss: current_rss().unwrap_or(0),
        memory_max_rss: d.max_rss.unwrap_or(0),
        request_threads_maximum: d.max as u64,
        request_threads_started: d.threads_started as u64,
        request_threads_active: d.active_threads as u64,
        phases: [
            stats(&p.server),
            stats(&p.queue),
            stats(&p.daemon),
            stats(&p.application),
            stats(&p.request),
            stats(&p.gil_wait),
            stats(&p.input_read),
            stats(&p.output_write),
        ],
        has_daemon_timing: super::module::in_daemon_process(),
        input_bytes: i.input_bytes,
        input_reads: i.input_reads,
        output_bytes: i.output_bytes,
        output_writes: i.output_writes,
        statuses: i.statuses,
        slots: d
            .slots
            .iter()
            .map(|s| SlotStats {
                completed: s.0,
                busy: secs(s.1),
                cpu: secs(s.2),
                current_elapsed: secs(s.3),
                max_duration: secs(s.4),
            })
            .collect(),
        ..Sample::default()
    })
}

/// WSGIServerMetrics (Apache children) and each daemon group's
/// server-metrics option, as the parent read them: every process it forks
/// afterwards inherits them.
struct ServerMetricsSetting {
    embedded: bool,
    groups: Vec<(String, bool)>,
}

static SERVER_METRICS: Mutex<ServerMetricsSetting> = Mutex::new(ServerMetricsSetting {
    embedded: false,
    groups: Vec::new(),
});

/// Remembers who may read the scoreboard (post_config, in the parent).
pub fn configure_server_metrics(
    main: &crate::config::ServerConfig,
    vhosts: &[&crate::config::ServerConfig],
) {
    let groups = std::iter::once(main)
        .chain(vhosts.iter().copied())
        .flat_map(|c| c.daemon_groups.iter())
        .map(|g| (g.name.clone(), g.options.server_metrics))
        .collect();
    *SERVER_METRICS.lock() = ServerMetricsSetting {
        embedded: main.server_metrics(),
        groups,
    };
}

/// Whether this process reports the scoreboard.
fn server_metrics_enabled() -> bool {
    let setting = SERVER_METRICS.lock();
    match super::module::daemon_group() {
        None => setting.embedded,
        Some(group) => setting
            .groups
            .iter()
            .any(|(name, on)| *on && *name == group),
    }
}

/// mod_wsgi.server_metrics(): Apache's scoreboard (every process and
/// worker slot), or None when not enabled for this process or when it has
/// no scoreboard.
#[pyfunction]
fn server_metrics(py: Python<'_>) -> PyResult<PyObject> {
    if !server_metrics_enabled() {
        return Ok(py.None());
    }
    let Some(board) = crate::apache::scoreboard::snapshot() else {
        return Ok(py.None());
    };
    let secs = |us: i64| us as f64 / 1e6;
    let current = now();
    let d = PyDict::new(py);
    d.set_item("server_limit", board.server_limit)?;
    d.set_item("thread_limit", board.thread_limit)?;
    d.set_item("running_generation", board.running_generation)?;
    d.set_item("restart_time", secs(board.restart_time_us))?;
    d.set_item("current_time", current)?;
    d.set_item(
        "running_time",
        (current - secs(board.restart_time_us)).max(0.0) as i64,
    )?;
    let processes = PyList::empty(py);
    for (num, p) in board.processes.iter().enumerate() {
        let pd = PyDict::new(py);
        pd.set_item("process_num", num)?;
        pd.set_item("pid", p.pid)?;
        pd.set_item("generation", p.generation)?;
        pd.set_item("quiescing", p.quiescing)?;
        let workers = PyList::empty(py);
        for w in &p.workers {
            let wd = PyDict::new(py);
            wd.set_item("thread_num", w.thread_num)?;
            wd.set_item("generation", w.generation)?;
            wd.set_item("status", w.status)?;
            wd.set_item("access_count", w.access_count)?;
            wd.set_item("bytes_served", w.bytes_served)?;
            wd.set_item("start_time", secs(w.start_time_us))?;
            wd.set_item("stop_time", secs(w.stop_time_us))?;
            wd.set_item("last_used", secs(w.last_used_us))?;
            wd.set_item("client", &w.client)?;
            wd.set_item("request", &w.request)?;
            wd.set_item("vhost", &w.vhost)?;
            workers.append(wd)?;
        }
        pd.set_item("workers", workers)?;
        processes.append(pd)?;
    }
    d.set_item("processes", processes)?;
    Ok(d.into_any().unbind())
}

/// Adds the metrics functions to a new interpreter's module.
pub(super) fn install(module: &Bound<'_, pyo3::types::PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(server_metrics, module)?)?;
    module.add_function(wrap_pyfunction!(process_metrics, module)?)?;
    module.add_function(wrap_pyfunction!(request_metrics, module)?)?;
    module.add_function(wrap_pyfunction!(start_recording_metrics, module)?)?;
    Ok(())
}

/// A backend that counts the body bytes of one request going in and out,
/// and the time spent on them, for the request's events and metrics.
pub struct Metered {
    inner: Arc<dyn Backend>,
    input_bytes: AtomicU64,
    input_reads: AtomicU64,
    input_us: AtomicU64,
    output_bytes: AtomicU64,
    output_writes: AtomicU64,
    output_us: AtomicU64,
    /// The serving thread's GIL waits when the request started.
    gil_waits_before: (u64, f64),
}

impl Metered {
    pub fn new(inner: Arc<dyn Backend>) -> Metered {
        Metered {
            inner,
            input_bytes: AtomicU64::new(0),
            input_reads: AtomicU64::new(0),
            input_us: AtomicU64::new(0),
            output_bytes: AtomicU64::new(0),
            output_writes: AtomicU64::new(0),
            output_us: AtomicU64::new(0),
            gil_waits_before: crate::python::interp::gil_waits(),
        }
    }

    /// What went through so far (called on the thread serving the request,
    /// whose GIL waits it reports).
    pub fn io(&self) -> RequestIo {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (count, seconds) = crate::python::interp::gil_waits();
        RequestIo {
            gil_wait_count: count.saturating_sub(self.gil_waits_before.0),
            gil_wait_time: (seconds - self.gil_waits_before.1).max(0.0),
            input_bytes: get(&self.input_bytes),
            input_reads: get(&self.input_reads),
            input_time: get(&self.input_us) as f64 / 1e6,
            output_bytes: get(&self.output_bytes),
            output_writes: get(&self.output_writes),
            output_time: get(&self.output_us) as f64 / 1e6,
        }
    }

    fn wrote<T>(&self, len: u64, started: Instant, result: T) -> T {
        self.output_bytes.fetch_add(len, Ordering::Relaxed);
        self.output_writes.fetch_add(1, Ordering::Relaxed);
        self.output_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        result
    }
}

impl Backend for Metered {
    fn read_body(&self, buf: &mut BodyBuf<'_>) -> Result<usize, BackendError> {
        let started = Instant::now();
        let result = self.inner.read_body(buf);
        self.input_reads.fetch_add(1, Ordering::Relaxed);
        if let Ok(n) = result {
            self.input_bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        self.input_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        result
    }

    fn send_head(
        &self,
        status: u16,
        status_line: &str,
        headers: &[(String, String)],
    ) -> Result<(), BackendError> {
        self.inner.send_head(status, status_line, headers)
    }

    fn write_body(&self, data: &[u8]) -> Result<(), BackendError> {
        let started = Instant::now();
        let result = self.inner.write_body(data);
        self.wrote(data.len() as u64, started, result)
    }

    fn write_last_body(&self, data: &[u8]) -> Result<(), BackendError> {
        let started = Instant::now();
        let result = self.inner.write_last_body(data);
        self.wrote(data.len() as u64, started, result)
    }

    fn send_file(
        &self,
        file: &std::fs::File,
        offset: u64,
        len: u64,
    ) -> Option<Result<(), BackendError>> {
        let started = Instant::now();
        let result = self.inner.send_file(file, offset, len)?;
        Some(self.wrote(len, started, result))
    }

    fn send_now(
        &self,
        head: Option<crate::wsgi::HeadRef<'_>>,
        data: &[u8],
        last: bool,
    ) -> Option<Result<bool, BackendError>> {
        let started = Instant::now();
        let result = self.inner.send_now(head, data, last)?;
        Some(self.wrote(data.len() as u64, started, result))
    }

    fn flush_queued(&self) -> Result<(), BackendError> {
        self.inner.flush_queued()
    }

    fn switch_protocols(
        &self,
        protocol: &str,
        headers: &[(String, String)],
        start: super::TunnelStart,
    ) -> Option<Result<std::os::fd::OwnedFd, BackendError>> {
        self.inner.switch_protocols(protocol, headers, start)
    }

    fn detach_to_loop(&self, py: pyo3::Python<'_>) -> Option<pyo3::PyResult<pyo3::PyObject>> {
        self.inner.detach_to_loop(py)
    }

    fn is_detached(&self) -> bool {
        self.inner.is_detached()
    }

    fn hand_over_record(&self, py: pyo3::Python<'_>, record: super::events::LoopRecord) {
        self.inner.hand_over_record(py, record)
    }

    fn log(&self, level: Level, text: &str) {
        self.inner.log(level, text)
    }
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn buckets_split_each_octave_of_milliseconds_in_four() {
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(0.0009), 0);
        // 1 ms .. 2 ms: buckets 0..3, boundaries going up.
        assert_eq!(bucket(0.001), 0);
        assert_eq!(bucket(0.00125), 1);
        assert_eq!(bucket(0.0015), 2);
        assert_eq!(bucket(0.00175), 3);
        assert_eq!(bucket(0.002), 4);
        assert_eq!(bucket(0.003), 6);
        // The last octave, then the overflow.
        assert_eq!(bucket(65.535), 63);
        assert_eq!(bucket(65.536), 64);
        assert_eq!(bucket(1e9), 64);
    }
}
