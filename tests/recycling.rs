//! Processes that recycle often (MaxConnectionsPerChild in embedded mode,
//! maximum-requests= in daemon mode) end Python cleanly: every request
//! answered, nothing from Python's shutdown in the error log, and each
//! interpreter's atexit handlers run exactly once in every process that
//! exited.

mod common;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Imports threading and logging at load time (what made threading's
/// shutdown assert in a prefork child), registers one atexit handler per
/// interpreter at its first request, and answers "pid group".
const APP: &str = r#"
import atexit, logging, os, threading
logging.getLogger("recycling").debug("loaded")
NOTES = "{notes}"
registered = []

def note(group):
    with open(NOTES, "a") as f:
        f.write("%d %s\n" % (os.getpid(), group))

def application(environ, start_response):
    group = environ["mod_wsgi.application_group"] or "GLOBAL"
    if not registered:
        registered.append(group)
        atexit.register(note, group)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%d %s" % (os.getpid(), group)).encode()]
"#;

/// /main runs in the main interpreter, /sub in a sub-interpreter.
const ROUTES: &str = "WSGIScriptAlias /main {dir}/app/a.wsgi\n\
     WSGIScriptAlias /sub {dir}/app/a.wsgi\n\
     <Location /main>\n    WSGIApplicationGroup %{GLOBAL}\n</Location>\n\
     <Location /sub>\n    WSGIApplicationGroup other\n</Location>\n";

const REQUESTS: usize = 100;

fn server(mpm: Mpm, notes: &std::path::Path, directives: &str) -> Apache {
    Apache::builder()
        .mpm(mpm)
        .file(
            "app/a.wsgi",
            &APP.replace("{notes}", &notes.display().to_string()),
        )
        .directives(directives)
        .directives(ROUTES)
        .start()
}

/// One request on a connection of its own (HTTP/1.0, no keep-alive):
/// (status, body).
fn get_alone(apache: &Apache, path: &str) -> (u16, String) {
    let raw = apache.raw(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes());
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

/// Sends the requests, alternating interpreters; returns which
/// interpreters each process served.
fn load(apache: &Apache) -> BTreeMap<u32, BTreeSet<String>> {
    let mut served: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    for i in 0..REQUESTS {
        let path = if i % 2 == 0 { "/main" } else { "/sub" };
        let (status, body) = get_alone(apache, path);
        assert_eq!(
            status,
            200,
            "request {i} {path}: {body}\n{}",
            apache.error_log()
        );
        let (pid, group) = body.split_once(' ').expect("pid group");
        served
            .entry(pid.parse().expect("pid"))
            .or_default()
            .insert(group.to_string());
    }
    served
}

/// Checks the error log and the atexit notes once the processes that
/// recycled are gone.
fn check(apache: &Apache, notes: &std::path::Path, served: &BTreeMap<u32, BTreeSet<String>>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let exited = loop {
        // Processes still alive at the end may be the last ones serving;
        // the others must all have gone (at least a few of them).
        let exited: Vec<u32> = served.keys().copied().filter(|&p| !pid_alive(p)).collect();
        if exited.len() + 3 >= served.len() || Instant::now() >= deadline {
            break exited;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        exited.len() >= 4,
        "only {} of {} processes exited: {served:?}\n{}",
        exited.len(),
        served.len(),
        apache.error_log()
    );
    let text = std::fs::read_to_string(notes).unwrap_or_default();
    let mut ran: BTreeMap<(u32, String), usize> = BTreeMap::new();
    for line in text.lines() {
        let (pid, group) = line.split_once(' ').expect("pid group");
        *ran.entry((pid.parse().unwrap(), group.to_string()))
            .or_default() += 1;
    }
    for (&pid, groups) in served {
        for group in groups {
            let count = ran.get(&(pid, group.clone())).copied().unwrap_or(0);
            let expected = if exited.contains(&pid) {
                1
            } else {
                count.min(1)
            };
            assert_eq!(
                count,
                expected,
                "atexit handler of interpreter {group} in pid {pid} ran {count} times (exited: {})\nnotes:\n{text}\n{}",
                exited.contains(&pid),
                apache.error_log()
            );
        }
    }
    for (pid, group) in ran.keys() {
        assert!(
            served.get(pid).is_some_and(|g| g.contains(group)),
            "note from an interpreter that served nothing: {pid} {group}\n{text}"
        );
    }
    let log = apache.error_log();
    for bad in [
        "Traceback",
        "Exception ignored",
        "AssertionError",
        "Warning:",
    ] {
        assert!(!log.contains(bad), "{bad} in the error log:\n{log}");
    }
}

fn embedded(mpm: Mpm) {
    let notes_dir = temp_dir_with_mode("mwrs-recycle-", 0o777);
    let notes = notes_dir.path().join("atexit.txt");
    let apache = server(mpm, &notes, "MaxConnectionsPerChild 5\n");
    let served = load(&apache);
    check(&apache, &notes, &served);
}

#[test]
fn prefork_children_recycling_end_python_cleanly() {
    embedded(Mpm::Prefork);
}

#[test]
fn worker_children_recycling_end_python_cleanly() {
    embedded(Mpm::Worker);
}

#[test]
fn event_children_recycling_end_python_cleanly() {
    embedded(Mpm::Event);
}

#[test]
fn daemons_recycling_on_maximum_requests_end_python_cleanly() {
    let notes_dir = temp_dir_with_mode("mwrs-recycle-", 0o777);
    let notes = notes_dir.path().join("atexit.txt");
    let apache = server(
        Mpm::Event,
        &notes,
        "WSGIDaemonProcess g processes=2 threads=2 maximum-requests=10\nWSGIProcessGroup g\n",
    );
    let served = load(&apache);
    check(&apache, &notes, &served);
    assert!(
        apache.error_log().contains("reached maximum-requests=10"),
        "{}",
        apache.error_log()
    );
}
