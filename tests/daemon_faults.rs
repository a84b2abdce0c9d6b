//! A daemon process that dies in the middle of a request: the Apache
//! parent says how it ended (an exit status is not a signal: os._exit(9)
//! and SIGKILL both reach it as 9), a replacement serves again, and the
//! client of the request gets a 502 with one line naming the group and
//! the pid.

mod common;
use common::*;
use std::time::Duration;

/// Every way to die waits half a second first, so the worker has been told
/// by the daemon itself which process serves it; deaths a moment after the
/// daemon took the request (found on the request board instead) are
/// drilled under load in tests/reliability.rs.
const APP: &str = r#"
import ctypes, os, signal, time
def application(environ, start_response):
    path = environ["PATH_INFO"]
    arg = environ.get("QUERY_STRING", "")
    if path != "/":
        time.sleep(0.5)
    if path == "/exit":
        os._exit(int(arg))
    if path == "/c-exit":
        ctypes.CDLL(None).exit(int(arg))
    if path == "/kill-self":
        os.kill(os.getpid(), int(arg))
    if path == "/segfault":
        ctypes.string_at(0)
    if path == "/forked-exit-then-sigkill":
        # A child of the application exits with 9 first: its exit must not
        # be taken for the daemon's.
        child = os.fork()
        if child == 0:
            os._exit(9)
        os.waitpid(child, 0)
        os.kill(os.getpid(), signal.SIGKILL)
    if path == "/sleep":
        time.sleep(30)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"#;

/// A daemon group of one process; `interpreter` the WSGIApplicationGroup
/// (None: the default, a sub-interpreter).
fn server(interpreter: Option<&str>) -> Apache {
    let group = interpreter.map_or(String::new(), |g| format!("WSGIApplicationGroup {g}\n"));
    Apache::builder()
        .file("app/faults.wsgi", APP)
        .directives(&format!(
            "WSGIDaemonProcess g processes=1 threads=2\n\
             WSGIScriptAlias / {{dir}}/app/faults.wsgi process-group=g\n{group}"
        ))
        .start()
}

/// The pid of the daemon process serving now (waiting for one to serve).
fn serving_pid(apache: &Apache) -> u32 {
    let mut pid = 0;
    assert!(
        wait_until(Duration::from_secs(15), || {
            let r = apache.get("/");
            if r.status == 200 {
                pid = r.text().parse().unwrap();
            }
            pid != 0
        }),
        "no daemon serves\n{}",
        apache.error_log()
    );
    pid
}

/// After the daemon `pid` died on a request: the client got `response`,
/// a 502; one error line of the worker names the group and the pid; the
/// parent's line says `how`; a replacement serves.
fn check_death(apache: &Apache, pid: u32, response: &Response, how: &str) {
    assert_eq!(response.status, 502, "{}", apache.error_log());
    let said = format!("daemon process 'g' (pid {pid}) {how} after ");
    assert!(
        apache.wait_for_log(&said, Duration::from_secs(10)),
        "expected '{said}' in\n{}",
        apache.error_log()
    );
    let log = apache.error_log();
    let supervisor_line = log.lines().find(|l| l.contains(&said)).unwrap();
    assert!(
        supervisor_line.contains("starting a replacement"),
        "{supervisor_line}"
    );
    // The worker's line for the client, and only one.
    let worker_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&format!("daemon process group 'g' (pid {pid})")))
        .collect();
    assert_eq!(worker_lines.len(), 1, "{worker_lines:#?}\n{log}");
    assert!(
        worker_lines[0].contains(":error]")
            && worker_lines[0]
                .contains("closed the connection before sending the response headers"),
        "{}",
        worker_lines[0]
    );
    let replacement = serving_pid(apache);
    assert_ne!(replacement, pid, "{log}");
}

/// Requests `path` (on which the daemon dies) and checks how its death was
/// told.
fn dies_on(path: &str, how: &str) {
    dies_in(None, path, how)
}

fn dies_in(interpreter: Option<&str>, path: &str, how: &str) {
    let apache = server(interpreter);
    let pid = serving_pid(&apache);
    let r = apache.get(path);
    check_death(&apache, pid, &r, how);
    // Not read as a signal number.
    let log = apache.error_log();
    if !how.contains("killed") {
        assert!(
            !log.contains(&format!("(pid {pid}) was killed by")),
            "{log}"
        );
    }
}

#[test]
fn os_exit_1_is_an_exit_status_not_sighup() {
    dies_on("/exit?1", "exited with status 1");
}

#[test]
fn os_exit_9_is_an_exit_status_not_sigkill() {
    dies_on("/exit?9", "exited with status 9");
}

/// 15 is APEXIT_CHILDFATAL: a child of the Apache parent exiting with it
/// stopped the whole server.
#[test]
fn os_exit_15_does_not_stop_apache() {
    dies_on("/exit?15", "exited with status 15");
}

#[test]
fn exit_15_from_c_does_not_stop_apache() {
    dies_on("/c-exit?15", "exited with status 15");
}

#[test]
fn exit_from_c_is_an_exit_status() {
    dies_on("/c-exit?3", "exited with status 3");
}

#[test]
fn sigkill_sent_to_itself_is_sigkill() {
    dies_on("/kill-self?9", "was killed by SIGKILL");
}

/// In the main interpreter, and with no sub-interpreter in the process:
/// Python 3.11's child of a fork exits at once when the fork was made in a
/// sub-interpreter, and hangs in PyOS_AfterFork_Child while one exists.
#[test]
fn a_forked_child_exiting_does_not_speak_for_the_daemon() {
    dies_in(
        Some("%{GLOBAL}"),
        "/forked-exit-then-sigkill",
        "was killed by SIGKILL",
    );
}

#[test]
fn os_exit_in_the_main_interpreter_is_an_exit_status() {
    dies_in(Some("%{GLOBAL}"), "/exit?9", "exited with status 9");
}

#[test]
fn a_segfault_is_sigsegv() {
    dies_on("/segfault", "was killed by SIGSEGV");
}

#[test]
fn sigkill_from_outside_is_sigkill() {
    let apache = server(None);
    let pid = serving_pid(&apache);
    std::thread::scope(|scope| {
        let request = scope.spawn(|| apache.get("/sleep"));
        // Once the request runs (and the worker was told who serves it).
        std::thread::sleep(Duration::from_secs(1));
        assert!(signal_pid(pid, "KILL"));
        let r = request.join().unwrap();
        check_death(&apache, pid, &r, "was killed by SIGKILL");
    });
}

/// A group whose every process dies at startup (here in its
/// WSGIImportScript): a request gets 503 within seconds, with one line
/// naming the group, instead of waiting out socket-timeout (Timeout 60)
/// for a daemon that never comes, as with C mod_wsgi. A group that is
/// only slow to start keeps the request until it serves.
#[test]
fn a_group_that_keeps_dying_at_startup_answers_503_at_once() {
    let apache = Apache::builder()
        .file("app/app.wsgi", APP)
        .file("app/die.py", "import os\nos._exit(3)\n")
        .file("app/slow.py", "import time\ntime.sleep(3)\n")
        .directives(
            "Timeout 60\n\
             WSGIDaemonProcess dying processes=2 threads=1\n\
             WSGIImportScript {dir}/app/die.py process-group=dying application-group=%{GLOBAL}\n\
             WSGIScriptAlias /dying {dir}/app/app.wsgi process-group=dying application-group=%{GLOBAL}\n\
             WSGIDaemonProcess slow processes=1 threads=1\n\
             WSGIImportScript {dir}/app/slow.py process-group=slow application-group=%{GLOBAL}\n\
             WSGIScriptAlias /slow {dir}/app/app.wsgi process-group=slow application-group=%{GLOBAL}\n",
        )
        .start();
    let started = std::time::Instant::now();
    let r = apache.get("/dying");
    let took = started.elapsed();
    assert_eq!(r.status, 503, "{}", apache.error_log());
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        apache
            .error_log()
            .contains("daemon process group 'dying' has no process to serve the request: each keeps dying at startup"),
        "{}",
        apache.error_log()
    );
    let r = apache.get("/slow");
    assert_eq!(r.status, 200, "{}", apache.error_log());
}

/// Embedded mode: an application's `os._exit(15)` ends its Apache child
/// only (Apache took status 15 from any child as a fatal error and stopped
/// the whole server, as with C mod_wsgi); a process the application forks
/// keeps its own status for the application to read.
#[test]
fn os_exit_15_in_an_apache_child_does_not_stop_apache() {
    let app = r#"
import os
def application(environ, start_response):
    if environ["PATH_INFO"] == "/exit":
        os._exit(15)
    if environ["PATH_INFO"] == "/fork":
        child = os.fork()
        if child == 0:
            os._exit(15)
        _, status = os.waitpid(child, 0)
        body = "child status %d" % os.waitstatus_to_exitcode(status)
    else:
        body = "pid %d" % os.getpid()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;
    let apache = Apache::builder()
        .mpm(Mpm::Prefork)
        .file("app/exit.wsgi", app)
        // The main interpreter: Python 3.11 ends the child of a fork made
        // in a sub-interpreter at once (see above).
        .directives("WSGIScriptAlias / {dir}/app/exit.wsgi\nWSGIApplicationGroup %{GLOBAL}\n")
        .start();
    assert_eq!(apache.get("/fork").text(), "child status 15");
    let _ = apache.try_request("GET", "/exit", &[], &[]);
    // Apache goes on: the next request is answered.
    assert!(
        wait_until(Duration::from_secs(10), || apache
            .try_request("GET", "/", &[], &[])
            .is_ok_and(|r| r.status == 200)),
        "{}",
        apache.error_log()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        apache
            .try_request("GET", "/", &[], &[])
            .is_ok_and(|r| r.status == 200)
    );
    assert!(
        !apache.error_log().contains("Apache is exiting"),
        "{}",
        apache.error_log()
    );
}

/// The Apache parent killed outright (SIGKILL: nothing of Apache's runs to
/// stop the daemons): each daemon notices within a monitor tick or two
/// and stops, rather than live on orphaned, as C mod_wsgi's do.
#[test]
fn daemons_stop_when_the_apache_parent_is_killed() {
    let apache = server(None);
    let daemon = serving_pid(&apache);
    let parent = apache.parent_pid();
    assert!(signal_pid(parent, "KILL"));
    let gone = wait_until(Duration::from_secs(10), || {
        !std::path::Path::new(&format!("/proc/{daemon}")).exists()
            || std::fs::read_to_string(format!("/proc/{daemon}/stat"))
                .is_ok_and(|s| s.split_whitespace().nth(2) == Some("Z"))
    });
    let log = apache.error_log();
    // What Apache's children do without their parent is Apache's affair:
    // they are stopped here so the harness finds nothing left.
    for p in apache.pids() {
        signal_pid(p, "KILL");
    }
    assert!(
        gone,
        "daemon {daemon} still alive 10 s after its parent was killed\n{log}"
    );
    assert!(
        log.contains(&format!(
            "the Apache parent (pid {parent}) is gone; stopping"
        )),
        "{log}"
    );
}
