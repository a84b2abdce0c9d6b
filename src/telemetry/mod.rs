//! WSGITelemetryService, WSGISlowRequests and WSGITelemetryOptions as
//! mod_wsgi 6.1.1 acts on them: each Apache child (embedded mode allowed
//! and Python running) and each daemon process starts one reporter thread
//! that sends, to a UNIX datagram socket, a PROCESS_STARTED record, then
//! every interval a REQUEST sample (the interval's requests, phases,
//! status classes, I/O, threads, CPU and memory) and, with WSGISlowRequests,
//! one SLOW_REQUEST record per request that took at least the threshold;
//! at shutdown PROCESS_STOPPING, a last sample and PROCESS_STOPPED.
//! Datagrams that cannot be sent (no ingester listening) are dropped.
//!
//! While the reporter is configured, mod_wsgi.process_metrics() and
//! request_metrics() return None: the reporter takes the intervals.
//!
//! No thread and no socket in the Apache parent: `start` runs in the
//! process that reports.

pub mod wire;

use crate::config::ServerConfig;
use parking_lot::{Condvar, Mutex};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wire::Identity;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// mod_wsgi's default interval (seconds) when `interval=` is not given.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The reporter never samples more often than this.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Completed slow records kept between two ticks at most.
const SLOW_RING: usize = 64;

/// Set in a process whose configuration has WSGITelemetryService.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// True when the telemetry reporter is the consumer of the metrics.
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

struct Reporter {
    socket: UnixDatagram,
    target: PathBuf,
    identity: Identity,
    started: f64,
    interval: Duration,
    slow_threshold: f64,
    capture_user_agent: bool,
    seq: AtomicU32,
    /// Set to stop the thread; the condvar wakes it.
    stop: Mutex<bool>,
    wake: Condvar,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stopped_sent: AtomicBool,
    slow: Mutex<Vec<wire::SlowRecord>>,
}

static REPORTER: OnceLock<Reporter> = OnceLock::new();

impl Reporter {
    fn next_seq(&self) -> u32 {
        self.seq.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
    }

    fn send(&self, datagram: &[u8]) {
        // No ingester (yet): the datagram is dropped, as mod_wsgi does.
        let _ = self.socket.send_to(datagram, &self.target);
    }

    /// One periodic sample, then the slow records gathered since.
    fn tick(&self) {
        if let Some(mut sample) = crate::wsgi::metrics::telemetry_sample() {
            sample.telemetry_interval = self.interval.as_secs_f64();
            sample.slow_requests_threshold = self.slow_threshold;
            let seq = self.next_seq();
            self.send(&wire::encode_sample(&self.identity, seq, now(), &sample));
        }
        if self.slow_threshold <= 0.0 {
            return;
        }
        // Completed records first, then the requests still running past
        // the threshold (one record each per tick), as mod_wsgi.
        let mut slow = std::mem::take(&mut *self.slow.lock());
        let stamp = now();
        slow.extend(crate::wsgi::metrics::slow_running(
            stamp,
            self.slow_threshold,
        ));
        for record in slow {
            let seq = self.next_seq();
            self.send(&wire::encode_slow(self.identity.pid, seq, stamp, &record));
        }
    }

    fn run(&self) {
        let mut stop = self.stop.lock();
        loop {
            let _ = self.wake.wait_for(&mut stop, self.interval);
            if *stop {
                return;
            }
            drop(stop);
            self.tick();
            stop = self.stop.lock();
        }
    }

    /// Stops the thread (waiting for it); later calls do nothing.
    fn pause(&self) {
        *self.stop.lock() = true;
        self.wake.notify_all();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

/// WSGITelemetryOptions lines in order: whether +CaptureUserAgent holds at
/// the end (None resets, All sets, +/- adjust).
pub fn capture_user_agent(lines: &[String]) -> bool {
    let mut on = false;
    for token in lines {
        let t = token.to_ascii_lowercase();
        match t.as_str() {
            "none" => on = false,
            "all" => on = true,
            "+captureuseragent" => on = true,
            "-captureuseragent" => on = false,
            _ => {}
        }
    }
    on
}

/// What the configuration asks of the reporter.
#[derive(Clone, Debug)]
struct Settings {
    target: String,
    interval: Duration,
    slow_threshold: f64,
    capture_user_agent: bool,
}

/// Set in the Apache parent at post_config; processes forked afterwards
/// inherit it.
static SETTINGS: Mutex<Option<Settings>> = Mutex::new(None);

/// Apache parent, post_config: remembers the telemetry settings of the
/// main server (the directives are server-wide). No thread, no socket.
pub fn configure(main: &ServerConfig) {
    *SETTINGS.lock() = main.telemetry_service.as_ref().map(|service| Settings {
        target: service.socket.clone(),
        interval: service
            .interval
            .unwrap_or(DEFAULT_INTERVAL)
            .max(MIN_INTERVAL),
        slow_threshold: main.slow_requests.map_or(0.0, |d| d.as_secs_f64()),
        capture_user_agent: capture_user_agent(&main.telemetry_options),
    });
}

/// Starts this process's reporter if the configuration names a telemetry
/// service. `process_group` is the daemon group ("" in an Apache child).
pub fn start(process_group: &str) {
    let Some(settings) = SETTINGS.lock().clone() else {
        return;
    };
    ENABLED.store(true, Ordering::Relaxed);
    if REPORTER.get().is_some() {
        return;
    }
    let socket = match UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => {
            crate::apache::log::server(
                None,
                crate::apache::log::Level::Warning,
                &format!(
                    "Telemetry reporter could not open target 'unix:{}' ({e}); metrics will not be sent.",
                    settings.target
                ),
            );
            return;
        }
    };
    let _ = socket.set_nonblocking(true);
    let description = crate::apache::server_facts::server_description();
    let identity = Identity {
        pid: std::process::id(),
        parent_pid: std::os::unix::process::parent_id(),
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
        process_group: process_group.to_string(),
        mod_wsgi_version: crate::VERSION.to_string(),
        python_version: crate::PYTHON_VERSION.to_string(),
        apache_version: description
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string(),
        mpm_name: crate::apache::server_facts::mpm_name(),
    };
    // Per-request accounting from now on, so the first interval is whole.
    crate::wsgi::metrics::start_recording_for_telemetry();
    let reporter = Reporter {
        socket,
        target: PathBuf::from(&settings.target),
        identity,
        started: now(),
        interval: settings.interval,
        slow_threshold: settings.slow_threshold,
        capture_user_agent: settings.capture_user_agent,
        seq: AtomicU32::new(0),
        stop: Mutex::new(false),
        wake: Condvar::new(),
        thread: Mutex::new(None),
        stopped_sent: AtomicBool::new(false),
        slow: Mutex::new(Vec::new()),
    };
    let Ok(()) = REPORTER.set(reporter) else {
        return;
    };
    let r = REPORTER.get().expect("just set");
    let seq = r.next_seq();
    r.send(&wire::encode_started(&r.identity, seq, r.started));
    match std::thread::Builder::new()
        .name("wsgi-telemetry".into())
        .spawn(|| REPORTER.get().expect("set before").run())
    {
        Ok(handle) => *r.thread.lock() = Some(handle),
        Err(e) => crate::apache::log::server(
            None,
            crate::apache::log::Level::Warning,
            &format!("Unable to create telemetry reporter thread ({e}); metrics will not be sent."),
        ),
    }
}

/// Shutdown is decided (`reason` as mod_wsgi words it; "" in an Apache
/// child): PROCESS_STOPPING with the requests still running.
pub fn process_stopping(reason: &str) {
    let Some(r) = REPORTER.get() else { return };
    let (active, _) = crate::wsgi::metrics::request_counts();
    let seq = r.next_seq();
    r.send(&wire::encode_stopping(
        &r.identity,
        seq,
        now(),
        reason,
        active,
    ));
}

/// The process is about to exit: stops the reporter, sends the last
/// (partial) interval and PROCESS_STOPPED. Once per process.
pub fn process_stopped(reason: &str) {
    let Some(r) = REPORTER.get() else { return };
    if r.stopped_sent.swap(true, Ordering::SeqCst) {
        return;
    }
    r.pause();
    r.tick();
    let (active, total) = crate::wsgi::metrics::request_counts();
    let stamp = now();
    let seq = r.next_seq();
    r.send(&wire::encode_stopped(
        &r.identity,
        seq,
        stamp,
        &wire::Stopped {
            reason,
            uptime: (stamp - r.started).max(0.0),
            lifetime_requests: total,
            active_at_exit: active,
        },
    ));
}

/// An Apache child ends (its requests are over): STOPPING, the last
/// sample and STOPPED back to back, as mod_wsgi.
pub fn child_exiting() {
    process_stopping("");
    process_stopped("");
}

/// The slow-request threshold in seconds, when slow records are wanted.
pub fn slow_threshold() -> Option<f64> {
    REPORTER
        .get()
        .map(|r| r.slow_threshold)
        .filter(|t| *t > 0.0)
}

/// Whether slow records carry the User-Agent (+CaptureUserAgent).
pub fn captures_user_agent() -> bool {
    REPORTER.get().is_some_and(|r| r.capture_user_agent)
}

/// Queues a completed slow record for the next tick.
pub fn push_slow(record: wire::SlowRecord) {
    let Some(r) = REPORTER.get() else { return };
    let mut ring = r.slow.lock();
    if ring.len() >= SLOW_RING {
        ring.remove(0);
    }
    ring.push(record);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_layer_in_order() {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(!capture_user_agent(&[]));
        assert!(capture_user_agent(&v(&["+CaptureUserAgent"])));
        assert!(!capture_user_agent(&v(&["+CaptureUserAgent", "None"])));
        assert!(capture_user_agent(&v(&["All"])));
        assert!(!capture_user_agent(&v(&["All", "-captureuseragent"])));
    }
}
