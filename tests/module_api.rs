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

/// Apps answer with "key=value" lines; this reads them back.
fn fields(body: &str) -> HashMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn get_fields(apache: &Apache, path: &str) -> HashMap<String, String> {
    let r = apache.get(path);
    assert_eq!(
        r.status,
        200,
        "{path}: {}\n{}",
        r.text(),
        apache.error_log()
    );
    fields(&r.text())
}

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
        detail = "callable=%s environ_has_id=%s" % (
            event["callable_object"], "mod_wsgi.request_id" in event["request_environ"])
    elif name == "response_started":
        detail = "status=%s" % event["response_status"]
    elif name == "request_exception":
        detail = "type=%s" % event["exception_info"][0].__name__
    elif name == "request_finished":
        detail = "status=%s from_app=%s output=%s" % (
            event["status"], data.get("from_app"), event["output_length"])
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
    return [body.encode()]
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
        mine[0].contains("callable=application environ_has_id=True"),
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
    assert!(
        mine[2].ends_with(&format!("status=200 from_app=yes output={body_len}")),
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
