//! Connections between the Apache child and the daemon processes kept
//! open between requests (docs/protocol.md, "Connections"), against a real
//! Apache and real daemon processes: later requests travel on kept
//! connections (the daemons take far fewer connections than they serve
//! requests, by the status page's counts), a request is never sent on a
//! kept connection to a process whose threads are all busy while a
//! sibling is idle, and recycled processes (maximum-requests) lose no
//! request sent on a connection they kept.

mod common;
use common::load::{LoadSpec, run_for};
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const APP: &str = r#"import os, time
def application(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(float(environ.get("QUERY_STRING") or 6))
    body = ("%d %s" % (os.getpid(), environ["mod_wsgi.server_pid"])).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
"#;

fn site(options: &str) -> Apache {
    Apache::builder()
        .file("app/app.wsgi", APP)
        .directives(&format!(
            "WSGIDaemonProcess kc {options} display-name=kc-daemon\n\
             WSGIScriptAlias /app {{dir}}/app/app.wsgi process-group=kc application-group=%{{GLOBAL}}\n\
             <Location /wsgi-status>\nSetHandler wsgi-status\nRequire ip 127.0.0.1\n</Location>\n"
        ))
        .start()
}

/// (daemon pid, Apache child pid) of one request to `path`, on a new
/// client connection.
fn served(apache: &Apache, path: &str) -> (u32, u32) {
    let r = apache.get(path);
    assert_eq!(r.status, 200, "{path}: {}", apache.error_log());
    let text = r.text();
    let mut words = text.split(' ').map(|w| w.parse::<u32>().unwrap());
    (words.next().unwrap(), words.next().unwrap())
}

/// Requests served and connections taken from the listener, summed over
/// the group's processes.
fn counts(apache: &Apache) -> (u64, u64) {
    let (requests, connections, _) = counts_with_overbooked(apache);
    (requests, connections)
}

/// As `counts`, and the connections taken while every waiting thread of
/// the process was promised to a kept connection.
fn counts_with_overbooked(apache: &Apache) -> (u64, u64, u64) {
    let r = apache.get("/wsgi-status?json");
    let page: Value = serde_json::from_str(&r.text()).unwrap();
    let group = page["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "kc")
        .unwrap();
    group["processes"]
        .as_array()
        .unwrap()
        .iter()
        .fold((0, 0, 0), |(req, conn, over), p| {
            (
                req + p["requests"].as_u64().unwrap(),
                conn + p["connections"].as_u64().unwrap(),
                over + p["overbooked"].as_u64().unwrap(),
            )
        })
}

#[test]
fn later_requests_travel_on_kept_connections() {
    let apache = site("processes=2 threads=2");
    for _ in 0..200 {
        served(&apache, "/app/hello");
    }
    let (requests, connections) = counts(&apache);
    assert!(requests >= 200, "{requests} requests");
    // One kept connection or so per Apache child and daemon thread; a new
    // connection per request without them.
    assert!(
        connections <= 20,
        "{connections} connections for {requests} requests: {}",
        apache.error_log()
    );
}

#[test]
fn a_busy_process_gets_no_request_while_a_sibling_is_idle() {
    let apache = site("processes=2 threads=1");
    // Until both Apache children have served requests: each then keeps a
    // connection to the process that served them (the first of the group
    // that waits on the listener, the same for both).
    let mut children = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while children.len() < 2 && Instant::now() < deadline {
        let (_, child) = served(&apache, "/app/hello");
        children.insert(child);
    }
    assert_eq!(children.len(), 2, "one Apache child served everything");
    // A slow request occupies the one thread of a process.
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| served(&apache, "/app/slow?6"));
        std::thread::sleep(Duration::from_secs(1));
        // Meanwhile every request goes to the idle process, at once, from
        // both children; until the child that did not send the slow one
        // (which still holds its kept connection to the busy process) has
        // served a few.
        let mut others: Vec<(u32, u32)> = Vec::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            let asked = Instant::now();
            let got = served(&apache, "/app/fast");
            assert!(
                asked.elapsed() < Duration::from_secs(2),
                "a request waited {:?} (served by {got:?}) while a process was idle",
                asked.elapsed()
            );
            others.push(got);
        }
        let slow = slow.join().unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "the slow request did not overlap the others"
        );
        assert!(
            others.iter().all(|(daemon, _)| *daemon != slow.0),
            "requests went to the busy process {}: {others:?}",
            slow.0
        );
        assert!(
            others.iter().filter(|(_, child)| *child != slow.1).count() >= 3,
            "too few requests through the other Apache child: {others:?} (slow: {slow:?})"
        );
    });
}

/// Under a load that keeps every thread busy, new connections and requests
/// on kept ones race for the thread that comes free. A thread woken by the
/// listener while each waiting thread of its process is promised to a kept
/// connection leaves the new connection to another: no process holds more
/// requests than it has threads (a hung process would fail the extra one
/// too), so the status page's `overbooked` stays 0.
#[test]
fn a_saturated_process_takes_no_connection_beyond_its_threads() {
    let apache = site("processes=2 threads=2");
    let spec = LoadSpec {
        port: apache.port,
        path: "/app/hello".into(),
        connections: 16,
        answer_timeout: Duration::from_secs(30),
        expect_body: None,
    };
    let report = run_for(&spec, Duration::from_secs(4));
    assert_eq!(report.failed(), 0, "{}", report.summary());
    let (requests, connections, overbooked) = counts_with_overbooked(&apache);
    println!("{requests} requests, {connections} new connections, {overbooked} overbooked");
    assert!(requests >= 1000, "{}", report.summary());
    assert_eq!(
        overbooked, 0,
        "{overbooked} of {connections} connections were taken with every thread promised"
    );
}

#[test]
fn recycled_processes_lose_no_request_sent_on_a_kept_connection() {
    // Each process stops after 5 requests; the connections kept to it close
    // with it, some just as a request is sent on them.
    let apache = site("processes=2 threads=2 maximum-requests=5");
    std::thread::scope(|scope| {
        for client in 0..4 {
            let apache = &apache;
            scope.spawn(move || {
                for i in 0..100 {
                    let r = apache.get("/app/hello");
                    assert_eq!(
                        r.status,
                        200,
                        "client {client} request {i}: {}",
                        apache.error_log()
                    );
                }
            });
        }
    });
    let log = apache.error_log();
    assert!(!log.contains("closed the connection"), "{log}");
}
