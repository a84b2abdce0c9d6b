//! The rest of the `mod_wsgi` module of mod_wsgi 6, in embedded and daemon
//! mode: events (`subscribe_events`, `subscribe_shutdown`,
//! `subscribe_signals`, `request_data()`, `active_requests`), metrics
//! (`process_metrics()`, `request_metrics()`, `start_recording_metrics()`,
//! `server_metrics()` with WSGIServerMetrics / server-metrics), `LogHandler`,
//! and the `apache` module (description, mpm_name, build_date).

mod common;
use common::*;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// A directory outside ServerRoot that Apache's user (www-data when the
/// tests run as root) may write to; it outlives the server.
fn shared_dir() -> tempfile::TempDir {
    let td = tempfile::Builder::new()
        .prefix("mwsgi-api-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    fs::set_permissions(td.path(), fs::Permissions::from_mode(0o777)).unwrap();
    td
}

/// The file's lines once `done` says they are complete (or the timeout).
fn wait_for_lines(p: &Path, timeout: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let lines: Vec<String> = fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if done(&lines) || Instant::now() >= deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Records each event it gets in EVENTS_LOG: name, request id and the
/// sorted payload keys, plus a detail per event. A second subscriber wraps
/// the application of /wrapped, as a subscriber may through
/// `application_object`.
const EVENTS_APP: &str = r#"
import os, threading, mod_wsgi

LOG = os.environ.get("EVENTS_LOG") or open(os.path.join(os.path.dirname(__file__), "log_path")).read().strip()

def record(line):
    with open(LOG, "a") as f:
        f.write(line + "\n")

@mod_wsgi.subscribe_events
def on_event(name, **event):
    data = event.get("request_data")
    detail = ""
    if name == "request_started":
        data["seen_started"] = True
        env = event["request_environ"]
        # The arrival facts are the environ's (the Apache child's pid in
        # both modes; this process's when the environ has none).
        arrival = [event[k] == env["mod_wsgi." + k]
                   for k in ("request_start", "queue_start", "daemon_start", "thread_id")]
        arrival.append(event["server_pid"] == int(env.get("mod_wsgi.server_pid", os.getpid())))
        detail = "callable=%s environ_has_id=%s arrival_as_environ=%s" % (
            event["callable_object"], "mod_wsgi.request_id" in env, all(arrival))
    elif name == "response_started":
        detail = "status=%s" % event["response_status"]
    elif name == "request_exception":
        detail = "type=%s" % event["exception_info"][0].__name__
    elif name == "request_finished":
        detail = "status=%s from_app=%s output=%s gil_waits=%s" % (
            event["status"], data.get("from_app"), event["output_length"],
            event["gil_wait_count"] if event["gil_wait_time"] >= 0 else "negative")
    record("%s id=%s keys=%s %s" % (name, event.get("request_id"), ",".join(sorted(event)), detail))

def wrapping(name, **event):
    if name == "request_started" and event["request_environ"]["PATH_INFO"] == "/wrapped":
        inner = event["application_object"]
        def wrapper(environ, start_response):
            body = b"".join(inner(environ, start_response))
            return [b"wrapped:" + body]
        return {"application_object": wrapper}

mod_wsgi.subscribe_events(wrapping)

def application(environ, start_response):
    data = mod_wsgi.request_data()
    data["from_app"] = "yes"
    rid = environ.get("mod_wsgi.request_id")
    active = mod_wsgi.active_requests.get(rid) is data
    if environ["PATH_INFO"] == "/boom":
        raise ValueError("boom")
    elsewhere = []
    def other_thread():
        try:
            mod_wsgi.request_data()
            elsewhere.append("no error")
        except RuntimeError as e:
            elsewhere.append(str(e))
    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    body = "started=%s\nactive=%s\nid=%s\nother_thread=%s\nsubscribers=%d\n" % (
        data.get("seen_started"), active, rid, elsewhere[0], len(mod_wsgi.event_callbacks))
    start_response("200 OK", [("Content-Type", "text/plain")])
    # Streamed in two blocks: in embedded mode each is sent with the GIL
    # let go and taken back (gil_wait_count 2); a daemon process sends
    # small blocks with the GIL held (0); a list's last block goes out
    # after the request let go of the GIL for good (none: /wrapped).
    def blocks(body=body.encode()):
        yield body[:10]
        yield body[10:]
    return blocks()
"#;

const STARTED_KEYS: &str = "application_object,application_start,callable_object,daemon_connects,daemon_restarts,daemon_start,queue_start,request_data,request_environ,request_id,request_start,server_pid,thread_id";
const RESPONSE_KEYS: &str =
    "exception_info,request_data,request_id,response_headers,response_status";
const FINISHED_KEYS: &str = "application_finish,application_time,cpu_system_time,cpu_time,cpu_user_time,daemon_start,gil_wait_count,gil_wait_time,input_length,input_reads,input_time,output_length,output_time,output_writes,queue_start,request_data,request_id,request_start,server_pid,status,thread_id";
const EXCEPTION_KEYS: &str = "exception_info,request_data,request_id";

fn events_of<'a>(lines: &'a [String], id: &str) -> Vec<&'a str> {
    let tag = format!(" id={id} ");
    lines
        .iter()
        .filter(|l| l.contains(&tag))
        .map(String::as_str)
        .collect()
}

fn check_events(mode: &str, directives: &str) {
    let shared = shared_dir();
    let log = shared.path().join("events.log");
    let apache = Apache::builder()
        .file("app/events.wsgi", EVENTS_APP)
        .file("app/log_path", &log.display().to_string())
        .directives(directives)
        .start();

    let f = get_fields(&apache, "/app/plain");
    assert_eq!(
        f["started"], "True",
        "{mode}: request_started did not see request_data: {f:?}"
    );
    assert_eq!(
        f["active"], "True",
        "{mode}: active_requests[id] is not request_data(): {f:?}"
    );
    assert_eq!(
        f["other_thread"], "no active request for thread",
        "{mode}: {f:?}"
    );
    assert_eq!(f["subscribers"], "2", "{mode}: {f:?}");
    let id = f["id"].clone();
    assert!(
        !id.is_empty() && id != "None",
        "{mode}: no request id: {f:?}"
    );

    let lines = wait_for_lines(&log, Duration::from_secs(10), |l| {
        events_of(l, &id)
            .iter()
            .any(|e| e.starts_with("request_finished"))
    });
    let mine = events_of(&lines, &id);
    let names: Vec<&str> = mine.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        ["request_started", "response_started", "request_finished"],
        "{mode}: {lines:#?}"
    );
    assert!(
        mine[0].contains(&format!("keys={STARTED_KEYS} ")),
        "{mode}: {}",
        mine[0]
    );
    assert!(
        mine[0].contains("callable=application environ_has_id=True arrival_as_environ=True"),
        "{mode}: {}",
        mine[0]
    );
    assert!(
        mine[1].contains(&format!("keys={RESPONSE_KEYS} status=200 OK")),
        "{mode}: {}",
        mine[1]
    );
    assert!(
        mine[2].contains(&format!("keys={FINISHED_KEYS} ")),
        "{mode}: {}",
        mine[2]
    );
    // The application's own key in request_data reaches request_finished,
    // with the status and the body length.
    let body_len = apache.get("/app/plain").text().len();
    let gil_waits = if mode == "daemon" { 0 } else { 2 };
    assert!(
        mine[2].ends_with(&format!(
            "status=200 from_app=yes output={body_len} gil_waits={gil_waits}"
        )),
        "{mode}: {}",
        mine[2]
    );

    // An exception of the application: request_exception with the
    // exception, then request_finished (no status: start_response was not
    // called).
    let boom = apache.get("/app/boom");
    assert_eq!(boom.status, 500, "{mode}");
    let lines = wait_for_lines(&log, Duration::from_secs(10), |l| {
        l.iter().any(|e| e.starts_with("request_exception"))
            && l.iter()
                .filter(|e| e.starts_with("request_finished"))
                .count()
                >= 3
    });
    let exception = lines
        .iter()
        .find(|l| l.starts_with("request_exception"))
        .unwrap_or_else(|| panic!("{mode}: no request_exception: {lines:#?}"));
    assert!(
        exception.contains(&format!("keys={EXCEPTION_KEYS} type=ValueError")),
        "{mode}: {exception}"
    );
    let boom_id = exception
        .split(' ')
        .nth(1)
        .unwrap()
        .trim_start_matches("id=");
    let boom_events: Vec<&str> = events_of(&lines, boom_id)
        .iter()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        boom_events,
        ["request_started", "request_exception", "request_finished"],
        "{mode}: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("request_finished")
            && l.contains(&format!("id={boom_id} "))
            && l.contains("status=0 ")),
        "{mode}: {lines:#?}"
    );

    // A subscriber's dict is merged into the event: here it replaces the
    // application.
    let wrapped = apache.get("/app/wrapped");
    assert_eq!(wrapped.status, 200, "{mode}: {}", apache.error_log());
    assert!(
        wrapped.text().starts_with("wrapped:started=True"),
        "{mode}: {}",
        wrapped.text()
    );
    // Its one-block list took the GIL once: no wait to take it back.
    let wrapped_id = wrapped
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("id=").map(str::to_string))
        .unwrap_or_default();
    let lines = wait_for_lines(&log, Duration::from_secs(10), |l| {
        events_of(l, &wrapped_id)
            .iter()
            .any(|e| e.starts_with("request_finished"))
    });
    let finished = events_of(&lines, &wrapped_id)
        .into_iter()
        .find(|e| e.starts_with("request_finished"))
        .unwrap_or_else(|| panic!("{mode}: no request_finished for {wrapped_id}: {lines:#?}"));
    assert!(finished.ends_with(" gil_waits=0"), "{mode}: {finished}");

    // After the requests: nothing left in active_requests of finished ones
    // is checked by the next request's `active` only holding itself.
    let f = get_fields(&apache, "/app/plain");
    assert_eq!(f["active"], "True");
}

#[test]
fn events_reach_subscribers_with_mod_wsgi_payloads_embedded() {
    check_events("embedded", "WSGIScriptAlias /app {dir}/app/events.wsgi\n");
}

#[test]
fn events_reach_subscribers_with_mod_wsgi_payloads_daemon() {
    check_events(
        "daemon",
        "WSGIDaemonProcess ev processes=1 threads=2\n\
         WSGIScriptAlias /app {dir}/app/events.wsgi process-group=ev\n",
    );
}

/// Writes one line per shutdown callback call into the file named in
/// `marker_path` next to the script.
const SHUTDOWN_APP: &str = r#"
import os, mod_wsgi

MARKER = open(os.path.join(os.path.dirname(__file__), "marker_path")).read().strip()

def stopping(*args, **kwargs):
    with open(MARKER, "a") as f:
        f.write("%s reason=[%s] pid=%d\n" % (args[0], kwargs.get("shutdown_reason"), os.getpid()))

# What mod_wsgi-express's reloader does.
from mod_wsgi import subscribe_shutdown
subscribe_shutdown(stopping)

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("pid=%d\nshutdown_callbacks=%d\n" % (os.getpid(), len(mod_wsgi.shutdown_callbacks))).encode()]
"#;

fn check_shutdown(mode: &str, directives: &str, reason: &str) {
    let shared = shared_dir();
    let marker = shared.path().join("stopped");
    let apache = Apache::builder()
        .file("app/s.wsgi", SHUTDOWN_APP)
        .file("app/marker_path", &marker.display().to_string())
        .directives(directives)
        .start();
    let f = get_fields(&apache, "/s");
    assert_eq!(f["shutdown_callbacks"], "1", "{mode}: {f:?}");
    let pid = f["pid"].clone();
    assert!(!marker.exists(), "{mode}: called before any shutdown");
    // The process that served the request ends with the old generation.
    apache.graceful_restart();
    let expected = format!("process_stopping reason=[{reason}] pid={pid}");
    let lines = wait_for_lines(&marker, Duration::from_secs(15), |l| l.contains(&expected));
    assert!(
        lines.contains(&expected),
        "{mode}: wanted {expected:?} in {lines:?}\n{}",
        apache.error_log()
    );
    assert_eq!(get_fields(&apache, "/s")["shutdown_callbacks"], "1");
}

#[test]
fn subscribe_shutdown_runs_when_a_daemon_process_stops() {
    check_shutdown(
        "daemon",
        "WSGIDaemonProcess sd processes=1 threads=1\n\
         WSGIScriptAlias /s {dir}/app/s.wsgi process-group=sd\n",
        "shutdown_signal",
    );
}

/// A daemon that recycles on its own names why, with mod_wsgi's word.
#[test]
fn shutdown_reason_names_a_recycle_for_maximum_requests() {
    let shared = shared_dir();
    let marker = shared.path().join("stopped");
    let apache = Apache::builder()
        .file("app/s.wsgi", SHUTDOWN_APP)
        .file("app/marker_path", &marker.display().to_string())
        .directives(
            "WSGIDaemonProcess mr processes=1 threads=1 maximum-requests=1
             WSGIScriptAlias /s {dir}/app/s.wsgi process-group=mr
",
        )
        .start();
    let pid = get_fields(&apache, "/s")["pid"].clone();
    let expected = format!("process_stopping reason=[maximum_requests] pid={pid}");
    let lines = wait_for_lines(&marker, Duration::from_secs(15), |l| l.contains(&expected));
    assert!(
        lines.contains(&expected),
        "wanted {expected:?} in {lines:?}\n{}",
        apache.error_log()
    );
}

#[test]
fn subscribe_shutdown_runs_when_an_apache_child_exits() {
    check_shutdown("embedded", "WSGIScriptAlias /s {dir}/app/s.wsgi\n", "");
}

/// Subscribes to signals and records each one it gets.
const SIGNALS_APP: &str = r#"
import os, mod_wsgi

MARKER = open(os.path.join(os.path.dirname(__file__), "marker_path")).read().strip()

@mod_wsgi.subscribe_signals
def on_signal(name, **event):
    with open(MARKER, "a") as f:
        f.write("%s %s %d pid=%d\n" % (name, event["signame"], event["signum"], os.getpid()))

returned = mod_wsgi.subscribe_signals(on_signal) is on_signal
if on_signal in mod_wsgi.signal_callbacks:
    mod_wsgi.signal_callbacks.remove(on_signal)

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    body = "pid=%d\nreturned=%s\nsignal_callbacks=%d\n" % (
        os.getpid(), returned, len(mod_wsgi.signal_callbacks))
    return [body.encode()]
"#;

#[test]
fn subscribe_signals_gets_sighup_and_sigusr2_in_a_daemon_process() {
    let shared = shared_dir();
    let marker = shared.path().join("signals");
    let apache = Apache::builder()
        .file("app/s.wsgi", SIGNALS_APP)
        .file("app/marker_path", &marker.display().to_string())
        .directives(
            "WSGIDaemonProcess sig processes=1 threads=1\n\
             WSGIScriptAlias /s {dir}/app/s.wsgi process-group=sig\n\
             WSGIScriptAlias /pid {dir}/app/pid.wsgi process-group=sig\n",
        )
        .file("app/pid.wsgi", "import os\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [('pid=%d' % os.getpid()).encode()]\n")
        .start();
    // Before anyone subscribes, SIGHUP does not stop a daemon process (as
    // with mod_wsgi, it is the application's signal).
    let first: i32 = get_fields(&apache, "/pid")["pid"].parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        get_fields(&apache, "/pid")["pid"],
        first.to_string(),
        "SIGHUP stopped the daemon: {}",
        apache.error_log()
    );
    let f = get_fields(&apache, "/s");
    assert_eq!(f["returned"], "True", "{f:?}");
    assert_eq!(f["signal_callbacks"], "1", "{f:?}");
    let pid: i32 = f["pid"].parse().unwrap();
    for (sig, line) in [
        (
            nix::sys::signal::Signal::SIGUSR2,
            "process_signal SIGUSR2 12",
        ),
        (nix::sys::signal::Signal::SIGHUP, "process_signal SIGHUP 1"),
    ] {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
        let expected = format!("{line} pid={pid}");
        let lines = wait_for_lines(&marker, Duration::from_secs(10), |l| l.contains(&expected));
        assert!(
            lines.contains(&expected),
            "wanted {expected:?} in {lines:?}\n{}",
            apache.error_log()
        );
    }
    // Neither signal stopped the process: the same one still serves.
    assert_eq!(get_fields(&apache, "/s")["pid"], pid.to_string());
}

#[test]
fn subscribe_signals_outside_daemon_mode_is_logged_and_not_kept() {
    let shared = shared_dir();
    let marker = shared.path().join("signals");
    let apache = Apache::builder()
        .file("app/s.wsgi", SIGNALS_APP)
        .file("app/marker_path", &marker.display().to_string())
        .directives("WSGIScriptAlias /s {dir}/app/s.wsgi\n")
        .start();
    let f = get_fields(&apache, "/s");
    assert_eq!(f["returned"], "True", "{f:?}");
    assert_eq!(f["signal_callbacks"], "0", "{f:?}");
    assert!(
        apache.wait_for_log(
            "mod_wsgi.subscribe_signals() called outside daemon mode; the callback will not be invoked",
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
}

/// Reports what server_metrics() gives.
const SERVER_METRICS_APP: &str = r#"
import os, mod_wsgi

def application(environ, start_response):
    m = mod_wsgi.server_metrics()
    if m is None:
        body = "metrics=None\n"
    else:
        procs = m["processes"]
        workers = [w for p in procs for w in p["workers"]]
        server_pid = int(environ.get("mod_wsgi.server_pid", os.getpid()))
        serving = [p for p in procs if p["pid"] == server_pid]
        body = "".join("%s=%s\n" % kv for kv in [
            ("metrics", "dict"),
            ("keys", ",".join(sorted(m))),
            ("process_keys", ",".join(sorted(procs[0]))),
            ("worker_keys", ",".join(sorted(workers[0]))),
            ("processes_match_limit", len(procs) == m["server_limit"]),
            ("workers_match_limit", all(len(p["workers"]) == m["thread_limit"] for p in procs)),
            ("serving_child_listed", bool(serving)),
            # The serving child of the running generation (an old one
            # finishing after a graceful restart shows "G", not "W").
            ("serving_child_current", bool(serving) and serving[0]["generation"] == m["running_generation"]),
            # The worker serving this request, in the serving child.
            ("writing", any(w["status"] == "W" for p in serving for w in p["workers"])),
            ("statuses_known", all(w["status"] in "._SRWKLDCGI" for w in workers)),
            ("running_time_ok", 0 <= m["running_time"] < 3600),
            ("apache_pids", ",".join(str(p["pid"]) for p in procs if p["pid"])),
        ])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

const SERVER_METRICS_DIRECTIVES: &str = "WSGIDaemonProcess on processes=1 threads=1 server-metrics=On\n\
     WSGIDaemonProcess off processes=1 threads=1\n\
     WSGIScriptAlias /embedded {dir}/app/m.wsgi\n\
     WSGIScriptAlias /on {dir}/app/m.wsgi process-group=on\n\
     WSGIScriptAlias /off {dir}/app/m.wsgi process-group=off\n";

fn check_scoreboard(what: &str, f: &HashMap<String, String>) {
    assert_eq!(f["metrics"], "dict", "{what}: {f:?}");
    assert_eq!(
        f["keys"],
        "current_time,processes,restart_time,running_generation,running_time,server_limit,thread_limit",
        "{what}"
    );
    assert_eq!(
        f["process_keys"], "generation,pid,process_num,quiescing,workers",
        "{what}"
    );
    assert_eq!(
        f["worker_keys"],
        "access_count,bytes_served,client,generation,last_used,request,start_time,status,stop_time,thread_num,vhost",
        "{what}"
    );
    for key in [
        "processes_match_limit",
        "workers_match_limit",
        "serving_child_current",
        "writing",
        "statuses_known",
        "running_time_ok",
    ] {
        assert_eq!(f[key], "True", "{what}: {key}: {f:?}");
    }
}

#[test]
fn server_metrics_reads_the_scoreboard_when_enabled() {
    let apache = Apache::builder()
        .file("app/m.wsgi", SERVER_METRICS_APP)
        .directives(&format!(
            "WSGIServerMetrics On\n{SERVER_METRICS_DIRECTIVES}"
        ))
        .start();
    let embedded = get_fields(&apache, "/embedded");
    check_scoreboard("embedded", &embedded);
    assert_eq!(embedded["serving_child_listed"], "True", "{embedded:?}");
    // A daemon process with server-metrics=On sees the same scoreboard
    // (it was forked after Apache made it), one without sees None.
    check_scoreboard("daemon", &get_fields(&apache, "/on"));
    assert_eq!(get_fields(&apache, "/off")["metrics"], "None");
    // The daemons of the next generation too, once a child of that
    // generation serves (a child of the last one may still take a
    // connection just after the restart, and its workers show "G").
    apache.graceful_restart();
    for (what, path) in [
        ("daemon after graceful restart", "/on"),
        ("embedded after graceful restart", "/embedded"),
    ] {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let fields = loop {
            let f = get_fields(&apache, path);
            if f.get("serving_child_current").map(String::as_str) == Some("True")
                || std::time::Instant::now() > deadline
            {
                break f;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        check_scoreboard(what, &fields);
    }
}

#[test]
fn server_metrics_is_none_without_wsgi_server_metrics() {
    let apache = Apache::builder()
        .file("app/m.wsgi", SERVER_METRICS_APP)
        .directives(SERVER_METRICS_DIRECTIVES)
        .start();
    assert_eq!(get_fields(&apache, "/embedded")["metrics"], "None");
    assert_eq!(get_fields(&apache, "/off")["metrics"], "None");
    check_scoreboard("daemon", &get_fields(&apache, "/on"));
    assert!(
        !apache
            .error_log()
            .contains("WSGIServerMetrics is accepted but not implemented"),
        "{}",
        apache.error_log()
    );
}

/// /before: both accessors before recording; /start: start recording;
/// /report: both after.
const METRICS_APP: &str = r#"
import os, mod_wsgi

def describe(prefix, m):
    if m is None:
        return "%s=None\n" % prefix
    return "".join("%s.%s=%r\n" % (prefix, k, v) for k, v in sorted(m.items()) if not k.endswith("_buckets") and k not in ("threads",))

def application(environ, start_response):
    path = environ["PATH_INFO"]
    body = ""
    if path == "/start":
        body = "started=%r\n" % (mod_wsgi.start_recording_metrics(),)
    elif path in ("/before", "/report"):
        p = mod_wsgi.process_metrics()
        r = mod_wsgi.request_metrics()
        body = describe("process", p) + describe("request", r)
        if p is not None:
            body += "process.keys=%s\n" % ",".join(sorted(p))
            body += "process.thread_keys=%s\n" % ",".join(sorted(p["threads"][0]))
            body += "process.thread_requests=%d\n" % sum(t["request_count"] for t in p["threads"])
            body += "request.keys=%s\n" % ",".join(sorted(r))
            body += "request.bucket_lengths=%s\n" % sorted(set(len(v) for k, v in r.items() if k.endswith("_time_buckets")))
            body += "request.pid_ok=%s\n" % (r["pid"] == os.getpid())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

const PROCESS_KEYS: &str = "active_requests,cpu_system_time,cpu_time,cpu_user_time,current_time,memory_max_rss,memory_rss,pid,request_busy_time,request_count,request_threads,restart_time,running_time,threads";
const REQUEST_KEYS: &str = "application_time,application_time_buckets,application_time_max_us,application_time_min_us,capacity_utilization,cpu_system_time,cpu_system_utilization,cpu_time,cpu_user_time,cpu_user_utilization,cpu_utilization,daemon_time,daemon_time_buckets,daemon_time_max_us,daemon_time_min_us,gil_wait_count,gil_wait_time,gil_wait_time_buckets,gil_wait_time_max_us,gil_wait_time_min_us,input_bytes,input_read_time,input_read_time_buckets,input_read_time_max_us,input_read_time_min_us,input_reads,memory_max_rss,memory_rss,output_bytes,output_write_time,output_write_time_buckets,output_write_time_max_us,output_write_time_min_us,output_writes,pid,queue_time,queue_time_buckets,queue_time_max_us,queue_time_min_us,request_count,request_threads_active,request_threads_buckets,request_threads_busy_time,request_threads_completed,request_threads_cpu_time,request_threads_current_elapsed,request_threads_max_duration,request_threads_maximum,request_threads_started,request_throughput,request_time,request_time_buckets,request_time_max_us,request_time_min_us,sample_period,server_time,server_time_buckets,server_time_max_us,server_time_min_us,start_time,status_1xx,status_2xx,status_3xx,status_4xx,status_5xx,stop_time";

#[test]
fn process_and_request_metrics_once_recording_started() {
    // One daemon process with one thread: every request below is counted
    // by the same process, so the counts are exact.
    let apache = Apache::builder()
        .file("app/m.wsgi", METRICS_APP)
        .directives(
            "WSGIDaemonProcess m processes=1 threads=1\n\
             WSGIScriptAlias /m {dir}/app/m.wsgi process-group=m\n",
        )
        .start();
    let before = get_fields(&apache, "/m/before");
    assert_eq!(before["process"], "None", "{before:?}");
    assert_eq!(before["request"], "None", "{before:?}");
    assert_eq!(get_fields(&apache, "/m/start")["started"], "None");
    for _ in 0..3 {
        assert_eq!(apache.get("/m/other").status, 200);
    }
    assert_eq!(apache.get("/m/missing-status-is-fine").status, 200);
    let f = get_fields(&apache, "/m/report");
    assert_eq!(f["process.keys"], PROCESS_KEYS);
    assert_eq!(f["process.thread_keys"], "request_count,thread_id");
    assert_eq!(f["request.keys"], REQUEST_KEYS);
    assert_eq!(f["request.bucket_lengths"], "[65]");
    assert_eq!(f["request.pid_ok"], "True");
    // Requests done before this one: /before, /start, 3 x /other, 1 more;
    // this one runs.
    assert_eq!(f["process.request_count"], "6", "{f:?}");
    assert_eq!(f["process.active_requests"], "1", "{f:?}");
    assert_eq!(f["process.request_threads"], "1", "{f:?}");
    assert_eq!(f["process.thread_requests"], "7", "{f:?}");
    // The interval since recording started: /start (it finished after
    // recording started) and the 4 after it, all 200.
    assert_eq!(f["request.request_count"], "5", "{f:?}");
    assert_eq!(f["request.status_2xx"], "5", "{f:?}");
    assert_eq!(f["request.status_5xx"], "0", "{f:?}");
    assert_eq!(f["request.request_threads_maximum"], "1", "{f:?}");
    // Per-thread figures run from the last request_metrics() call (here:
    // the process start), recording or not, as mod_wsgi's.
    assert_eq!(f["request.request_threads_completed"], "[6]", "{f:?}");
    // Daemon mode has queue and daemon phases.
    assert!(f["request.queue_time"].parse::<f64>().is_ok(), "{f:?}");
    assert!(f["request.daemon_time"].parse::<f64>().is_ok(), "{f:?}");
    // A new interval began with the last call: only the report itself
    // (done now) is in the next one.
    let next = get_fields(&apache, "/m/report");
    assert_eq!(next["request.request_count"], "1", "{next:?}");
    assert_eq!(next["process.request_count"], "7", "{next:?}");
}

#[test]
fn request_metrics_in_an_apache_child_have_no_queue_or_daemon_phase() {
    let apache = Apache::builder()
        .mpm(Mpm::Prefork)
        .file("app/m.wsgi", METRICS_APP)
        .directives("WSGIScriptAlias /m {dir}/app/m.wsgi\n")
        .start();
    // The children are separate processes: start recording in each (a
    // prefork child serves one connection at a time; the harness's agent
    // opens one per request).
    for _ in 0..30 {
        assert_eq!(get_fields(&apache, "/m/start")["started"], "None");
    }
    let f = get_fields(&apache, "/m/report");
    assert_eq!(f["request.keys"], REQUEST_KEYS, "{f:?}");
    assert_eq!(f["process.keys"], PROCESS_KEYS, "{f:?}");
    for key in [
        "queue_time",
        "daemon_time",
        "queue_time_min_us",
        "daemon_time_max_us",
    ] {
        assert_eq!(f[&format!("request.{key}")], "None", "{key}: {f:?}");
    }
    assert!(f["request.server_time"].parse::<f64>().is_ok(), "{f:?}");
    assert_eq!(f["request.request_threads_maximum"], "1", "{f:?}");
}

/// Logs through mod_wsgi.LogHandler at three levels.
const LOG_HANDLER_APP: &str = r#"
import logging, mod_wsgi

logger = logging.getLogger("api-test")
logger.setLevel(logging.DEBUG)
logger.propagate = False
handler = mod_wsgi.LogHandler()
logger.addHandler(handler)

def application(environ, start_response):
    where = environ["mod_wsgi.process_group"] or "embedded"
    logger.warning("warned from %s", where)
    logger.debug("debugged from %s", where)
    logger.error("first line from %s\nsecond line from %s", where, where)
    logger.critical("critical from %s", where)
    start_response("200 OK", [("Content-Type", "text/plain")])
    body = "is_handler=%s\nmodule=%s\n" % (
        isinstance(handler, logging.Handler), type(handler).__module__)
    return [body.encode()]
"#;

#[test]
fn log_handler_writes_records_to_the_error_log_at_their_level() {
    let apache = Apache::builder()
        .file("app/l.wsgi", LOG_HANDLER_APP)
        .directives(
            "WSGIDaemonProcess lg processes=1 threads=1\n\
             WSGIScriptAlias /embedded {dir}/app/l.wsgi\n\
             WSGIScriptAlias /daemon {dir}/app/l.wsgi process-group=lg\n",
        )
        .start();
    for (path, mode) in [("/embedded", "embedded"), ("/daemon", "lg")] {
        let f = get_fields(&apache, path);
        assert_eq!(f["is_handler"], "True", "{f:?}");
        assert_eq!(f["module"], "mod_wsgi", "{f:?}");
        assert!(
            apache.wait_for_log(&format!("critical from {mode}"), Duration::from_secs(5)),
            "{}",
            apache.error_log()
        );
        let log = apache.error_log();
        let line = |text: &str| {
            log.lines()
                .find(|l| l.ends_with(text))
                .unwrap_or_else(|| panic!("{text:?} not logged:\n{log}"))
                .to_string()
        };
        assert!(line(&format!("warned from {mode}")).contains("[wsgi:warn]"));
        assert!(line(&format!("first line from {mode}")).contains("[wsgi:error]"));
        assert!(line(&format!("second line from {mode}")).contains("[wsgi:error]"));
        assert!(line(&format!("critical from {mode}")).contains("[wsgi:crit]"));
        // LogLevel info: the debug record is dropped by Apache.
        assert!(!log.contains(&format!("debugged from {mode}")), "{log}");
    }
}

/// What mod_wsgi 6's modules offer, by name.
const NAMES_APP: &str = r#"
import apache, mod_wsgi

NAMES = ["FileWrapper", "LogHandler", "RequestTimeout", "active_requests",
         "application_group", "event_callbacks", "maximum_processes",
         "process_group", "process_metrics", "request_data", "request_metrics",
         "server_metrics", "shutdown_callbacks", "signal_callbacks",
         "start_recording_metrics", "subscribe_events", "subscribe_shutdown",
         "subscribe_signals", "threads_per_process", "version"]

def application(environ, start_response):
    from mod_wsgi import LogHandler
    lines = [
        "missing=%s" % [n for n in NAMES if not hasattr(mod_wsgi, n)],
        "file_wrapper=%s" % (environ["wsgi.file_wrapper"] is mod_wsgi.FileWrapper),
        "containers=%s" % [type(getattr(mod_wsgi, n)).__name__ for n in
                            ("event_callbacks", "shutdown_callbacks", "signal_callbacks", "active_requests")],
        "unknown_is_attribute_error=%s" % (not hasattr(mod_wsgi, "no_such_name")),
        "request_timeout_bases=%s" % ([c.__name__ for c in mod_wsgi.RequestTimeout.__mro__],),
        "apache.version=%s" % (apache.version,),
        "apache.description=%s" % apache.description,
        "apache.mpm_name=%s" % apache.mpm_name,
        "apache.build_date=%s" % apache.build_date,
        "apache.maximum_processes=%s" % apache.maximum_processes,
        "apache.threads_per_process=%s" % apache.threads_per_process,
    ]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode()]
"#;

#[test]
fn every_mod_wsgi_name_and_the_apache_module_in_both_modes() {
    let apache = Apache::builder()
        .file("app/n.wsgi", NAMES_APP)
        .directives(
            "WSGIDaemonProcess nm processes=1 threads=1\n\
             WSGIScriptAlias /embedded {dir}/app/n.wsgi\n\
             WSGIScriptAlias /daemon {dir}/app/n.wsgi process-group=nm\n",
        )
        .start();
    let log = apache.error_log();
    let built = log
        .lines()
        .find_map(|l| l.split("Server built: ").nth(1))
        .expect("Apache logs when it was built")
        .to_string();
    let description = log
        .lines()
        .find_map(|l| l.split("AH00489: ").nth(1))
        .and_then(|l| l.split(" configured").next())
        .expect("Apache logs its description")
        .to_string();
    for path in ["/embedded", "/daemon"] {
        let f = get_fields(&apache, path);
        assert_eq!(f["missing"], "[]", "{path}: {f:?}");
        assert_eq!(f["file_wrapper"], "True", "{path}");
        assert_eq!(
            f["containers"], "['list', 'list', 'list', 'dict']",
            "{path}"
        );
        assert_eq!(f["unknown_is_attribute_error"], "True", "{path}");
        // As mod_wsgi's: not an Exception, so `except Exception:` in the
        // application does not swallow it.
        assert_eq!(
            f["request_timeout_bases"], "['RequestTimeout', 'BaseException', 'object']",
            "{path}"
        );
        assert!(f["apache.version"].starts_with("(2, 4, "), "{path}: {f:?}");
        assert_eq!(f["apache.description"], description, "{path}");
        assert_eq!(f["apache.mpm_name"], "event", "{path}");
        assert_eq!(f["apache.build_date"], built, "{path}");
        // The harness's event MPM: 2 processes of 10 threads.
        assert_eq!(f["apache.maximum_processes"], "2", "{path}");
        assert_eq!(f["apache.threads_per_process"], "10", "{path}");
    }
}

/// Records the daemon connection attempts each request's
/// request_started event reports.
const CONNECTS_APP: &str = r#"
import os, time, mod_wsgi

MARKER = open(os.path.join(os.path.dirname(__file__), "marker_path")).read().strip()

def on_event(name, **event):
    if name == "request_started":
        with open(MARKER, "a") as f:
            f.write("connects=%d\n" % event["daemon_connects"])

mod_wsgi.subscribe_events(on_event)

def application(environ, start_response):
    time.sleep(float(environ.get("QUERY_STRING") or "0"))
    start_response("200 OK", [])
    return [b"ok"]
"#;

/// daemon_connects counts the Apache child's attempts to connect: requests
/// that found no socket retry until it is back, and their events say so.
#[test]
fn daemon_connects_counts_the_connection_attempts() {
    let shared = shared_dir();
    let marker = shared.path().join("connects");
    let sockets = temp_dir_with_mode("mwrs-connects-", 0o755);
    let apache = Apache::builder()
        .file("app/c.wsgi", CONNECTS_APP)
        .file("app/marker_path", &marker.display().to_string())
        .directives(&format!(
            "WSGISocketPrefix {}/wsgi\n\
             WSGIDaemonProcess cn processes=1 threads=1\n\
             WSGIScriptAlias /c {{dir}}/app/c.wsgi process-group=cn\n",
            sockets.path().display()
        ))
        .start();
    assert_eq!(apache.get("/c").status, 200);
    // With the socket's name gone for a moment (as between two daemon
    // generations), the requests' connections fail and are retried.
    let socket = std::fs::read_dir(sockets.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sock"))
        .expect("the group's socket");
    let away = socket.with_extension("away");
    std::fs::rename(&socket, &away).unwrap();
    std::thread::scope(|scope| {
        let requests: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| apache.get("/c").status))
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        std::fs::rename(&away, &socket).unwrap();
        for r in requests {
            assert_eq!(r.join().unwrap(), 200, "{}", apache.error_log());
        }
    });
    let lines = wait_for_lines(&marker, Duration::from_secs(10), |l| l.len() >= 7);
    let counts: Vec<u32> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("connects=")?.parse().ok())
        .collect();
    assert_eq!(counts.len(), 7, "{lines:?}");
    assert!(counts.iter().all(|&c| c >= 1), "{counts:?}");
    assert!(
        counts.iter().any(|&c| c > 1),
        "no request had to retry: {counts:?}"
    );
}
