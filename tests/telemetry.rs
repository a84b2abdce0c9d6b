//! WSGITelemetryService / WSGISlowRequests / WSGITelemetryOptions against
//! the real ingester: PyPI's `mod-wsgi-telemetry` (installed in a cached
//! virtualenv) runs `mod_wsgi-telemetry dump`, which binds the UNIX
//! datagram socket and decodes every datagram with the package's own wire
//! decoder; the tests read what it printed.

mod common;
use common::venv::ensure_venv;
use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VENV_NAME: &str = "test-venv-telemetry";
const REQUIREMENTS: &[&str] = &["mod-wsgi-telemetry==1.1.0"];

/// One datagram as the ingester decoded it.
#[derive(Debug, Clone)]
struct Record {
    pid: u32,
    seq: u32,
    kind: String,
    fields: BTreeMap<String, String>,
}

impl Record {
    fn u(&self, key: &str) -> u64 {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from {self:?}"))
            .parse()
            .unwrap_or_else(|e| panic!("{key} of {self:?}: {e}"))
    }
    fn f(&self, key: &str) -> f64 {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from {self:?}"))
            .parse()
            .unwrap_or_else(|e| panic!("{key} of {self:?}: {e}"))
    }
    fn s(&self, key: &str) -> &str {
        self.fields.get(key).map_or("", String::as_str)
    }
}

/// `mod_wsgi-telemetry dump` listening on a socket in a directory Apache's
/// user may reach; killed (by its pid) when dropped.
struct Ingester {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    out: PathBuf,
    err: PathBuf,
    child: Child,
}

impl Ingester {
    fn start() -> Ingester {
        let venv = ensure_venv(VENV_NAME, REQUIREMENTS);
        let dir = tempfile::Builder::new()
            .prefix("mwsgi-tel-")
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let socket = dir.path().join("telemetry.sock");
        let out = dir.path().join("dump.out");
        let err = dir.path().join("dump.err");
        let child = Command::new(venv.join("bin/mod_wsgi-telemetry"))
            .args([
                "dump",
                "--format",
                "text",
                "--socket-mode",
                "0666",
                "--listen",
            ])
            .arg(format!("unix:{}", socket.display()))
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .expect("starting mod_wsgi-telemetry dump");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "the ingester did not bind {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ingester {
            _dir: dir,
            socket,
            out,
            err,
            child,
        }
    }

    fn target(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// Every record printed so far (the dump's text format: a header line
    /// "[stamp] pid=P seq=S kind=K vN", then "  name = value" lines).
    fn records(&self) -> Vec<Record> {
        let text = fs::read_to_string(&self.out).unwrap_or_default();
        let mut out: Vec<Record> = Vec::new();
        for line in text.lines() {
            if line.starts_with('[') {
                let word = |k: &str| {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix(k))
                        .unwrap_or_default()
                        .to_string()
                };
                out.push(Record {
                    pid: word("pid=").parse().unwrap(),
                    seq: word("seq=").parse().unwrap(),
                    kind: word("kind="),
                    fields: BTreeMap::new(),
                });
            } else if let Some((k, v)) = line.trim_start().split_once(" = ")
                && let Some(r) = out.last_mut()
            {
                r.fields.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        out
    }

    /// Records once `done` holds for them (or after `timeout`).
    fn wait(&self, timeout: Duration, done: impl Fn(&[Record]) -> bool) -> Vec<Record> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.records();
            if done(&r) || Instant::now() >= deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn errors(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }
}

impl Drop for Ingester {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Answers with the status named in the path; /raise fails before
/// start_response; /accessors says what the in-process accessors return.
const APP: &str = r#"
import os, time, mod_wsgi

def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/raise":
        raise RuntimeError("no response")
    if path == "/accessors":
        body = "pid=%d\nprocess_metrics=%r\nrequest_metrics=%r\n" % (
            os.getpid(), mod_wsgi.process_metrics(), mod_wsgi.request_metrics())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]
    if path == "/slow":
        time.sleep(1.6)
    code = path.strip("/") if path.strip("/").isdigit() else "200"
    headers = [("Content-Type", "text/plain")]
    if code.startswith("3"):
        headers.append(("Location", "/"))
    start_response(code + " X", headers)
    return [b"pid=%d\n" % os.getpid()]
"#;

fn requests(kind: &str) -> impl Fn(&Record) -> bool + '_ {
    move |r: &Record| r.kind == kind
}

/// Sums a field over the request_metrics samples of `pids`.
fn total(records: &[Record], key: &str) -> u64 {
    records
        .iter()
        .filter(|r| r.kind == "request_metrics")
        .map(|r| r.u(key))
        .sum()
}

/// The requests of the test: 3 x 200, 2 x 404, 1 x 302, 1 x 503 and one
/// failure before start_response (a 500 for the client, 5xx in telemetry).
const MIX: &[(&str, u16)] = &[
    ("/t/200", 200),
    ("/t/200", 200),
    ("/t/", 200),
    ("/t/404", 404),
    ("/t/404", 404),
    ("/t/302", 302),
    ("/t/503", 503),
    ("/t/raise", 500),
];

fn run_mix(apache: &Apache) {
    for (path, status) in MIX {
        let r = apache.get(path);
        assert_eq!(r.status, *status, "{path}: {}", r.text());
    }
}

fn check(mode: &str, directives: &str, process_group: &str) {
    let ingester = Ingester::start();
    let apache = Apache::builder()
        .file("app/t.wsgi", APP)
        .directives(&format!(
            "WSGITelemetryService {} interval=1\n{directives}",
            ingester.target()
        ))
        .start();
    // The accessors give None while the reporter is the consumer.
    let r = apache.get("/t/accessors");
    assert_eq!(r.status, 200, "{mode}: {}", r.text());
    let body = r.text();
    assert!(
        body.contains("process_metrics=None") && body.contains("request_metrics=None"),
        "{mode}: {body}"
    );
    run_mix(&apache);
    let n = MIX.len() as u64 + 1;
    let records = ingester.wait(Duration::from_secs(20), |r| total(r, "request_count") >= n);
    let context = || {
        format!(
            "{mode}: ingester stderr:\n{}\nrecords: {:#?}\n{}",
            ingester.errors(),
            ingester.records(),
            apache.error_log()
        )
    };
    assert!(!ingester.errors().contains("decode error"), "{}", context());
    assert_eq!(total(&records, "request_count"), n, "{}", context());
    assert_eq!(total(&records, "status_1xx_total"), 0, "{}", context());
    assert_eq!(total(&records, "status_2xx_total"), 4, "{}", context());
    assert_eq!(total(&records, "status_3xx_total"), 1, "{}", context());
    assert_eq!(total(&records, "status_4xx_total"), 2, "{}", context());
    assert_eq!(total(&records, "status_5xx_total"), 2, "{}", context());

    let parent = apache.parent_pid();
    let samples: Vec<&Record> = records
        .iter()
        .filter(|r| requests("request_metrics")(r))
        .collect();
    assert!(!samples.is_empty(), "{}", context());
    for s in &samples {
        assert_ne!(
            s.pid,
            parent,
            "no reporter in the Apache parent: {}",
            context()
        );
        assert_eq!(
            s.u("process_parent_pid"),
            u64::from(parent),
            "{}",
            context()
        );
        assert!((s.f("telemetry_interval") - 1.0).abs() < 1e-9, "{s:?}");
        assert!(
            s.f("sample_period") > 0.5 && s.f("sample_period") < 5.0,
            "{s:?}"
        );
        assert!(s.u("request_threads_maximum") >= 1, "{s:?}");
        // Requests of the sample's interval partition into the classes.
        let classes: u64 = (1..=5).map(|c| s.u(&format!("status_{c}xx_total"))).sum();
        assert_eq!(classes, s.u("request_count"), "{s:?}");
        assert!(s.fields.contains_key("request_time_buckets"), "{s:?}");
        // Apache children report too (embedded mode is allowed), without
        // a group and without the daemon-only phases.
        assert_eq!(
            s.fields.contains_key("queue_time"),
            !s.s("process_group").is_empty(),
            "queue/daemon phases only from daemon processes: {s:?}"
        );
        if s.u("request_count") > 0 {
            assert!(s.f("request_time_max") >= s.f("request_time_min"), "{s:?}");
            assert!(s.f("server_time_max") > 0.0, "{s:?}");
            assert!(s.f("request_time") > s.f("application_time"), "{s:?}");
        }
    }
    // Sequence numbers go up in each process.
    let mut last: BTreeMap<u32, u32> = BTreeMap::new();
    for r in &records {
        let prev = last.insert(r.pid, r.seq).unwrap_or(0);
        assert!(
            r.seq > prev,
            "seq of {} went {prev} -> {}: {}",
            r.pid,
            r.seq,
            context()
        );
    }
    // Each reporting process announced itself first.
    let served: std::collections::BTreeSet<u32> = samples
        .iter()
        .filter(|s| s.u("request_count") > 0)
        .map(|s| s.pid)
        .collect();
    for pid in &served {
        let started = records
            .iter()
            .find(|r| r.pid == *pid)
            .expect("a record of the pid");
        assert_eq!(started.kind, "process_started", "{}", context());
        assert_eq!(started.u("process_parent_pid"), u64::from(parent));
        assert_eq!(started.s("mod_wsgi_version"), env!("CARGO_PKG_VERSION"));
        assert!(
            started.s("apache_version").starts_with("Apache/2.4"),
            "{started:?}"
        );
        assert!(!started.s("mpm_name").is_empty(), "{started:?}");
        assert_eq!(started.s("process_group"), process_group);
        for s in samples.iter().filter(|s| s.pid == *pid) {
            assert_eq!(s.s("process_group"), process_group, "{s:?}");
        }
    }

    // Stopping Apache: each process that served says it stops, sends its
    // last interval, then PROCESS_STOPPED with its lifetime count.
    drop(apache);
    let records = ingester.wait(Duration::from_secs(20), |r| {
        served
            .iter()
            .all(|p| r.iter().any(|x| x.pid == *p && x.kind == "process_stopped"))
    });
    let mut lifetime = 0;
    for pid in &served {
        let mine: Vec<&Record> = records.iter().filter(|r| r.pid == *pid).collect();
        let kinds: Vec<&str> = mine.iter().map(|r| r.kind.as_str()).collect();
        let stopping = kinds.iter().position(|k| *k == "process_stopping");
        let stopped = kinds.iter().position(|k| *k == "process_stopped");
        assert!(
            matches!((stopping, stopped), (Some(a), Some(b)) if a < b && b + 1 == kinds.len()),
            "{mode}: pid {pid}: {kinds:?}\n{}",
            ingester.errors()
        );
        let last = mine.last().unwrap();
        assert_eq!(last.u("active_requests_at_exit"), 0, "{last:?}");
        assert_eq!(last.u("graceful_drain"), 1, "{last:?}");
        assert!(last.f("process_uptime") > 0.0, "{last:?}");
        if !process_group.is_empty() {
            assert_eq!(last.s("shutdown_reason"), "shutdown_signal", "{last:?}");
            assert_eq!(last.s("process_group"), process_group, "{last:?}");
        }
        lifetime += last.u("lifetime_request_count");
    }
    assert_eq!(lifetime, n, "{mode}: lifetime counts {:#?}", records);
    assert_eq!(
        total(&records, "request_count"),
        n,
        "{mode}: no request counted twice"
    );
}

#[test]
fn embedded_samples_and_lifecycle_reach_the_real_ingester() {
    check("embedded", "WSGIScriptAlias /t {dir}/app/t.wsgi\n", "");
}

#[test]
fn daemon_samples_and_lifecycle_reach_the_real_ingester() {
    check(
        "daemon",
        "WSGIDaemonProcess tel processes=1 threads=2\n\
         WSGIScriptAlias /t {dir}/app/t.wsgi process-group=tel application-group=%{GLOBAL}\n",
        "tel",
    );
}

/// WSGISlowRequests: active SLOW_REQUEST records each tick while a request
/// runs past the threshold, then one completed record; none for the quick
/// ones; the User-Agent only with WSGITelemetryOptions +CaptureUserAgent.
fn check_slow(mode: &str, directives: &str, capture: bool) {
    let ingester = Ingester::start();
    let options = if capture {
        "WSGITelemetryOptions +CaptureUserAgent\n"
    } else {
        ""
    };
    let apache = Apache::builder()
        .file("app/t.wsgi", APP)
        .directives(&format!(
            "WSGITelemetryService {} interval=1\nWSGISlowRequests 0.3\n{options}{directives}",
            ingester.target()
        ))
        .start();
    let agent = [("User-Agent", "telemetry-test/1.0")];
    for path in ["/t/200", "/t/404"] {
        apache.request("GET", path, &agent, b"");
    }
    let r = apache.request("GET", "/t/slow?x=1", &agent, b"");
    assert_eq!(r.status, 200, "{mode}: {}", r.text());
    let served: u32 = common::field(&r.text(), "pid").parse().unwrap();
    let records = ingester.wait(Duration::from_secs(20), |r| {
        r.iter().any(requests("slow_request")) && total(r, "request_count") >= 3
    });
    let context = || format!("{mode}: {}\n{records:#?}", ingester.errors());
    let slow: Vec<&Record> = records
        .iter()
        .filter(|r| requests("slow_request")(r))
        .collect();
    // While it ran past the threshold, each tick (1 s) sent an active
    // record (the 1.3 s it ran past 0.3 s hold at least one tick); then
    // one completed record, the last, with the same start.
    let (done, running): (Vec<&Record>, Vec<&Record>) =
        slow.iter().partition(|r| r.u("slow_record_state") == 1);
    assert_eq!(done.len(), 1, "{}", context());
    assert!(!running.is_empty(), "{}", context());
    let s = done[0];
    assert!(std::ptr::eq(*slow.last().unwrap(), s), "{}", context());
    for a in &running {
        assert_eq!(a.u("slow_record_state"), 0, "{a:?}");
        assert_eq!(a.u("slow_status"), 0, "not known while running: {a:?}");
        assert_eq!(a.f("slow_start_stamp"), s.f("slow_start_stamp"), "{a:?}");
        assert!(
            a.f("slow_duration") >= 0.3 && a.f("slow_duration") <= s.f("slow_duration"),
            "{a:?}"
        );
        assert_eq!(a.s("slow_path_info"), "/slow", "{a:?}");
        assert_eq!(a.u("slow_thread_id"), s.u("slow_thread_id"), "{a:?}");
    }
    assert_eq!(s.pid, served, "{}", context());
    assert_eq!(s.u("slow_record_state"), 1, "completed: {s:?}");
    assert_eq!(s.u("slow_status"), 200, "{s:?}");
    assert!(
        s.f("slow_duration") >= 1.6 && s.f("slow_duration") < 10.0,
        "{s:?}"
    );
    assert!(s.f("slow_application_time") >= 1.6, "{s:?}");
    assert!(s.f("slow_start_stamp") > 1.6e9, "{s:?}");
    assert_eq!(s.s("slow_method"), "GET", "{s:?}");
    assert_eq!(s.s("slow_script_name"), "/t", "{s:?}");
    assert_eq!(s.s("slow_path_info"), "/slow", "{s:?}");
    assert_eq!(s.s("slow_scheme"), "http", "{s:?}");
    assert_eq!(s.s("slow_protocol"), "HTTP/1.1", "{s:?}");
    assert_eq!(s.s("slow_peer_ip"), "127.0.0.1", "{s:?}");
    assert_eq!(s.s("slow_hostname"), "127.0.0.1", "{s:?}");
    assert!(s.u("slow_thread_id") >= 1, "{s:?}");
    assert!(s.f("slow_server_time") > 0.0, "{s:?}");
    assert!(s.u("slow_output_bytes") > 0, "{s:?}");
    assert!(s.u("slow_active_at_start") >= 1, "{s:?}");
    let server_pid = s.u("slow_server_pid");
    if directives.contains("process-group") {
        assert_ne!(
            server_pid,
            u64::from(served),
            "the Apache child, not the daemon: {s:?}"
        );
        assert!(server_pid > 0, "{s:?}");
    } else {
        assert_eq!(server_pid, u64::from(served), "{s:?}");
    }
    assert_eq!(
        s.fields.get("slow_user_agent").map(String::as_str),
        capture.then_some("telemetry-test/1.0"),
        "{s:?}"
    );
    for sample in records.iter().filter(|r| r.kind == "request_metrics") {
        assert!(
            (sample.f("slow_requests_threshold") - 0.3).abs() < 1e-9,
            "{sample:?}"
        );
    }
}

#[test]
fn slow_requests_embedded_with_user_agent() {
    check_slow("embedded", "WSGIScriptAlias /t {dir}/app/t.wsgi\n", true);
}

#[test]
fn slow_requests_daemon_without_user_agent() {
    check_slow(
        "daemon",
        "WSGIDaemonProcess tel processes=1 threads=2\n\
         WSGIScriptAlias /t {dir}/app/t.wsgi process-group=tel application-group=%{GLOBAL}\n",
        false,
    );
}
