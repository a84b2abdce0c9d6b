//! WSGIFreeThreading: with a module built against a free-threaded Python
//! (PEP 703, `--disable-gil`; `make python-matrix` builds one as 3.13t),
//! On runs Python without the GIL, so CPU-bound requests in one
//! interpreter run in parallel, in embedded and in daemon mode; Off keeps
//! the GIL (they take turns). With a GIL build, On only warns.
//!
//! Parallelism is not judged by the clock (the machine is shared): two
//! requests meet at a barrier, then each spins for 3 s, counting its own
//! iterations and how often it sees the other's counter move between two
//! of its own. With a GIL handed over every 5 s at most
//! (`sys.setswitchinterval(5.0)`, set by the app) one request spins to its
//! end before the other starts: the other's counter stands still, a move
//! or two at most. Without the GIL both run at once: with a core each, the
//! other's counter moves between almost any two iterations; on a loaded
//! machine the two still take the CPU from each other at every time slice
//! of the kernel (milliseconds): tens of moves (21 to 51 in 3 s with a
//! load average of 15 on 2 cores; 4648 once, the two on both cores), and
//! rarely fewer (5 once, at a load of 21: hence up to three pairs).

mod common;
use common::*;
use std::collections::HashMap;

const SPIN_APP: &str = r#"
import os, sys, threading, time

# The GIL, where there is one, is handed over every 5 s at most: of two
# requests spinning for 3 s under it, one spins to its end first.
sys.setswitchinterval(5.0)

counters = {"a": 0, "b": 0}
barrier = threading.Barrier(2)

def application(environ, start_response):
    me, secs = environ["QUERY_STRING"].split("&")
    other = "b" if me == "a" else "a"
    counters[me] = 0
    try:
        barrier.wait(timeout=30)
    except threading.BrokenBarrierError:
        barrier.reset()
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"the other request never arrived in this interpreter\n"]
    mine = 0
    seen = 0
    last = counters[other]
    deadline = time.monotonic() + float(secs)
    while True:
        mine += 1
        counters[me] = mine
        now = counters[other]
        if now != last:
            seen += 1
            last = now
        if mine % 1000 == 0 and time.monotonic() > deadline:
            break
    is_gil_enabled = getattr(sys, "_is_gil_enabled", lambda: True)
    out = {
        "gil": is_gil_enabled(),
        "iterations": mine,
        "seen": seen,
        "pid": os.getpid(),
    }
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["".join("%s=%s\n" % kv for kv in out.items()).encode()]
"#;

/// One child with 10 threads (the two requests must meet in one process),
/// the app embedded at /embedded and in two daemon groups, `par` and
/// `serial`, one process of 4 threads each.
fn spin_server(free_threading: &str) -> Apache {
    Apache::builder()
        .file("app/spin.wsgi", SPIN_APP)
        .directives(&format!(
            "StartServers 1\nServerLimit 1\nMaxRequestWorkers 10\n\
             MinSpareThreads 1\nMaxSpareThreads 10\n\
             {free_threading}\n\
             WSGIDaemonProcess par processes=1 threads=4\n\
             WSGIDaemonProcess serial processes=1 threads=4\n\
             WSGIScriptAlias /embedded {{dir}}/app/spin.wsgi\n\
             WSGIScriptAlias /par {{dir}}/app/spin.wsgi process-group=par application-group=%{{GLOBAL}}\n\
             WSGIScriptAlias /serial {{dir}}/app/spin.wsgi process-group=serial application-group=%{{GLOBAL}}\n"
        ))
        .start()
}

/// The two requests to `path` spinning for `secs` seconds, sent together:
/// each one's fields.
fn spin_pair(apache: &Apache, path: &str, secs: f64) -> [HashMap<String, String>; 2] {
    let answers = std::thread::scope(|s| {
        let handles: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|me| s.spawn(move || apache.get(&format!("{path}?{me}&{secs}"))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("request thread"))
            .collect::<Vec<_>>()
    });
    let fields = |r: &Response| {
        assert_eq!(
            r.status,
            200,
            "{path}: {}\n{}",
            r.text(),
            apache.error_log()
        );
        common::fields(&r.text())
    };
    let (a, b) = (fields(&answers[0]), fields(&answers[1]));
    assert_eq!(
        a["pid"], b["pid"],
        "{path}: the two requests ran in different processes"
    );
    [a, b]
}

fn seen(answers: &[HashMap<String, String>; 2]) -> [u64; 2] {
    answers.each_ref().map(|f| f["seen"].parse().unwrap())
}

/// Loads the app on `path` (and starts its interpreter) before the
/// measured pair.
fn warm(apache: &Apache, path: &str) {
    spin_pair(apache, path, 0.01);
}

/// How long each measured request spins.
const SPIN_SECS: f64 = 3.0;
/// At most this many moves of the other's counter: the requests took turns
/// (none is expected: the first one spins to its end).
const SERIAL_AT_MOST: u64 = 2;
/// More than this: they ran at the same time (see the top of the file).
const PARALLEL_AT_LEAST: u64 = 8;

/// Pairs measured at most for [`assert_parallel`]: under a load that gives
/// the two requests long turns of the CPU one pair may see few moves (5
/// each, once, with a load average of 21 on 2 cores), but a GIL never lets
/// any pair see more than a hand-over.
const PARALLEL_TRIES: usize = 3;

fn assert_parallel(apache: &Apache, path: &str) {
    let mut tries = Vec::new();
    for _ in 0..PARALLEL_TRIES {
        let answers = spin_pair(apache, path, SPIN_SECS);
        for f in &answers {
            assert_eq!(
                f["gil"], "False",
                "{path}: sys._is_gil_enabled() in a request: {f:?}"
            );
        }
        let seen = seen(&answers);
        eprintln!(
            "{path}: without the GIL the requests saw each other move {seen:?} times: {answers:?}"
        );
        if seen.iter().all(|&n| n > PARALLEL_AT_LEAST) {
            return;
        }
        tries.push(seen);
    }
    panic!(
        "{path}: CPU-bound requests did not run in parallel: in {PARALLEL_TRIES} pairs each saw the other's counter move {tries:?} times; more than {PARALLEL_AT_LEAST} expected in one pair at least"
    );
}

fn assert_serial(apache: &Apache, path: &str) {
    let answers = spin_pair(apache, path, SPIN_SECS);
    for f in &answers {
        assert_eq!(
            f["gil"], "True",
            "{path}: sys._is_gil_enabled() in a request: {f:?}"
        );
    }
    let seen = seen(&answers);
    eprintln!("{path}: with the GIL the requests saw each other move {seen:?} times: {answers:?}");
    assert!(
        seen.iter().all(|&n| n <= SERIAL_AT_MOST),
        "{path}: CPU-bound requests under the GIL should take turns (each saw the other's counter move {seen:?} times; at most {SERIAL_AT_MOST} expected): {answers:?}"
    );
}

/// The module's Python, as the harness runs it, is the free-threaded build
/// the module was compiled for (a mix-up would make the tests below
/// meaningless).
fn check_free_threaded_python() {
    let out = std::process::Command::new(python::interpreter())
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_config_var('Py_GIL_DISABLED'))",
        ])
        .output()
        .expect("running the module's Python");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "{} is not a free-threaded build",
        python::interpreter()
    );
}

/// On: no GIL in Apache's children (a sub-interpreter) nor in a daemon
/// process (the main interpreter); a `<WSGIInterpreterOptions
/// process-group=>` section turns it Off for its group's processes.
#[test]
#[cfg_attr(
    not(Py_GIL_DISABLED),
    ignore = "needs the module built against a free-threaded Python: make python-matrix PYTHON_VERSIONS=3.13t"
)]
fn on_runs_cpu_bound_requests_in_parallel() {
    check_free_threaded_python();
    let apache = spin_server(
        "WSGIFreeThreading On\n\
         <WSGIInterpreterOptions process-group=serial>\nWSGIFreeThreading Off\n</WSGIInterpreterOptions>",
    );
    for path in ["/embedded", "/par", "/serial"] {
        warm(&apache, path);
    }
    assert_parallel(&apache, "/embedded");
    assert_parallel(&apache, "/par");
    assert_serial(&apache, "/serial");
    let log = apache.error_log();
    assert!(
        log.contains("WSGIFreeThreading On: Python 3.13 runs without the GIL in pid"),
        "{log}"
    );
    assert!(
        log.contains("the GIL is enabled in pid"),
        "the serial group's process says it keeps the GIL: {log}"
    );
    assert!(!log.contains("has no effect"), "{log}");
}

/// Off (as when not set): the GIL is enabled, as with PYTHON_GIL=1, and
/// each process says so; CPU-bound requests take turns.
#[test]
#[cfg_attr(
    not(Py_GIL_DISABLED),
    ignore = "needs the module built against a free-threaded Python: make python-matrix PYTHON_VERSIONS=3.13t"
)]
fn off_keeps_the_gil() {
    check_free_threaded_python();
    let apache = spin_server("WSGIFreeThreading Off");
    for path in ["/embedded", "/par"] {
        warm(&apache, path);
    }
    assert_serial(&apache, "/embedded");
    assert_serial(&apache, "/par");
    let log = apache.error_log();
    assert!(
        log.contains(
            "Python 3.13 is a free-threaded build, but WSGIFreeThreading is Off: the GIL is enabled in pid"
        ),
        "{log}"
    );
}

/// With a GIL build, On has nothing to act on: one warning at startup
/// naming the directive and why; requests are served as before.
#[test]
#[cfg_attr(
    Py_GIL_DISABLED,
    ignore = "the module is built against a free-threaded Python"
)]
fn on_with_a_gil_build_warns_once() {
    let apache = Apache::builder()
        .file("app/hello.wsgi", include_str!("../conf-examples/hello.wsgi"))
        .directives(
            "WSGIFreeThreading On\n\
             <WSGIInterpreterOptions application-group=x>\nWSGIFreeThreading On\n</WSGIInterpreterOptions>\n\
             WSGIScriptAlias / {dir}/app/hello.wsgi\n",
        )
        .start();
    assert_eq!(apache.get("/").text(), "Hello, World!");
    let log = apache.error_log();
    let warning = "WSGIFreeThreading On has no effect: Python 3.";
    assert_eq!(log.matches(warning).count(), 1, "{log}");
    assert!(
        log.contains("is not a free-threaded build (PEP 703)"),
        "{log}"
    );
    assert_eq!(
        log.matches("with application-group= at ").count(),
        1,
        "the section naming an application group is reported: {log}"
    );
    assert!(!log.contains("not implemented yet"), "{log}");
}
