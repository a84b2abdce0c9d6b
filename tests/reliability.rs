//! Reliability drills under keep-alive load (docs/reliability.md): restarts
//! of every kind while 16 keep-alive connections send requests, each drill
//! printing its figures (`DRILL ...` lines) and failing on any request that
//! did not get a whole 2xx answer. The long versions are `#[ignore]`d and
//! run by `make soak`.
//!
//! The same drills run against another module (C mod_wsgi, for the
//! comparison in docs/reliability.md) with `MOD_WSGI_RS_SO` pointing at it;
//! they then print their figures and fail where it loses requests.

mod common;
use common::load::{Load, LoadReport, LoadSpec, run_for};
use common::*;
use std::time::{Duration, Instant};

/// Answers after 20 ms, so that every restart finds requests running in
/// the daemons and connections waiting in their backlog.
const APP: &str = r#"import time
def application(environ, start_response):
    time.sleep(0.02)
    body = b'hello from the drill'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;
const BODY: &[u8] = b"hello from the drill";

/// Answers its pid after sleeping the seconds the query string says.
const SLOW_APP: &str = r#"import os, time
def application(environ, start_response):
    time.sleep(float(environ.get('QUERY_STRING') or 0))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [str(os.getpid()).encode()]
"#;

const PID_APP: &str = r#"import os
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [str(os.getpid()).encode()]
"#;

fn daemon_site(options: &str) -> Apache {
    daemon_site_with(options, "")
}

/// Apache workers for 64 connections: the event MPM closes a keep-alive
/// connection whose next request comes when its child has no idle worker
/// (event.c: "don't wait for a worker for a keepalive request"), which the
/// drill would count. The connections need not split evenly between the
/// children (one may take all 64), so each child has more threads than
/// there are connections: with 2 x 40 threads embedded runs saw such
/// closes, with 2 x 64 daemon runs did (the relayed requests keep every
/// worker of a child busy while they wait for a daemon thread), with
/// 2 x 80 none did in 150-250 s runs of either mode.
const WORKERS_FOR_64: &str = "ServerLimit 4\nThreadLimit 80\nThreadsPerChild 80\n\
    MaxRequestWorkers 160\nMinSpareThreads 80\nMaxSpareThreads 160\n";

fn daemon_site_with(options: &str, extra: &str) -> Apache {
    Apache::builder()
        .file("app/drill.wsgi", APP)
        .file("app/pid.wsgi", PID_APP)
        .file("app/fault.wsgi", FAULT_APP)
        .file("htdocs/static.txt", "hello from the drill")
        .directives(&format!(
            "KeepAliveTimeout 30\nMaxKeepAliveRequests 0\n\
             WSGIDaemonProcess drill {options} display-name=drill-daemon\n\
             WSGIScriptAlias /app {{dir}}/app/drill.wsgi process-group=drill application-group=%{{GLOBAL}}\n\
             WSGIScriptAlias /pid {{dir}}/app/pid.wsgi process-group=drill application-group=%{{GLOBAL}}\n\
             Alias /static.txt {{dir}}/htdocs/static.txt\n\
             <Directory {{dir}}/htdocs>\nRequire all granted\n</Directory>\n{extra}"
        ))
        .start()
}

fn spec(apache: &Apache, path: &str, connections: usize) -> LoadSpec {
    LoadSpec {
        port: apache.port,
        path: path.into(),
        connections,
        answer_timeout: Duration::from_secs(30),
        expect_body: Some(BODY.to_vec()),
    }
}

/// The pids of the group's daemons (by their display-name).
fn daemon_pids(apache: &Apache) -> Vec<u32> {
    apache.pids_named("drill-daemon")
}

/// No Apache child or daemon died of a signal during the drill.
fn assert_no_crash(apache: &Apache) {
    let log = apache.error_log();
    for bad in ["exit signal", "Segmentation fault", "was killed by"] {
        assert!(!log.contains(bad), "'{bad}' in the error log:\n{log}");
    }
}

fn drill_line(name: &str, report: &LoadReport) {
    println!("DRILL {name}: {}", report.summary());
}

fn assert_lossless(name: &str, apache: &Apache, report: &LoadReport) {
    drill_line(name, report);
    assert!(report.ok > 0, "{name}: nothing served");
    assert_eq!(
        report.failed(),
        0,
        "{name}: requests failed: {}\nsamples: {:#?}\n{}",
        report.summary(),
        report.samples,
        apache.error_log()
    );
    assert_no_crash(apache);
}

/// Graceful restarts (`apache2 -k graceful`) under keep-alive load, the
/// drill of issue 11: every request gets its whole answer. Requests
/// running in the old daemons finish there, connections in their backlog
/// are served, and the old generation's Apache children, which keep the
/// clients' keep-alive connections, reach the new daemons at the same
/// socket path. The static file beside it gives Apache's own figure for
/// idle keep-alive connections closed at a restart (retried, not failed).
#[test]
fn graceful_restarts_under_keep_alive_load_lose_no_request() {
    let apache = daemon_site("processes=2 threads=4");
    assert_eq!(apache.get("/app").text().as_bytes(), BODY);
    for (path, name) in [
        (
            "/static.txt",
            "graceful x3, static file (Apache's baseline)",
        ),
        ("/app", "graceful x3, daemon processes=2 threads=4"),
    ] {
        let load = Load::start(&spec(&apache, path, 16));
        std::thread::sleep(Duration::from_secs(2));
        for _ in 0..3 {
            apache.graceful_restart();
            std::thread::sleep(Duration::from_secs(2));
        }
        let report = load.finish();
        assert_lossless(name, &apache, &report);
    }
    // The old generations' daemons drained and exited, quietly.
    assert!(
        wait_until(Duration::from_secs(20), || daemon_pids(&apache).len() == 2),
        "{:?}\n{}",
        daemon_pids(&apache),
        apache.error_log()
    );
    assert!(!apache.error_log().contains("long lost child"));
}

/// Embedded mode through graceful restarts: the old children finish what
/// they read, the new ones take the rest.
#[test]
fn graceful_restarts_in_embedded_mode_lose_no_request() {
    let apache = Apache::builder()
        .file("app/drill.wsgi", APP)
        .directives("KeepAliveTimeout 30\nMaxKeepAliveRequests 0\nWSGIScriptAlias /app {dir}/app/drill.wsgi\n")
        .start();
    let load = Load::start(&spec(&apache, "/app", 16));
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..2 {
        apache.graceful_restart();
        std::thread::sleep(Duration::from_secs(2));
    }
    assert_lossless("graceful x2, embedded", &apache, &load.finish());
}

/// SIGUSR1 to a daemon (mod_wsgi's eviction): it stops taking
/// connections, finishes its requests and is replaced; its sibling takes
/// the load meanwhile.
#[test]
fn evicting_a_daemon_under_load_loses_no_request() {
    let apache = daemon_site("processes=2 threads=4");
    assert_eq!(apache.get("/app").text().as_bytes(), BODY);
    let load = Load::start(&spec(&apache, "/app", 16));
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..3 {
        let pids = daemon_pids(&apache);
        assert_eq!(pids.len(), 2, "{pids:?}");
        assert!(signal_pid(pids[0], "USR1"));
        assert!(
            wait_until(Duration::from_secs(15), || !daemon_pids(&apache)
                .contains(&pids[0])),
            "{}",
            apache.error_log()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_lossless("SIGUSR1 x3 to a daemon", &apache, &load.finish());
}

/// maximum-requests=50 under load: each daemon recycles every 50 requests
/// (dozens of times in the run) without a failed request, with a single
/// process too, where the backlog waits for the replacement.
#[test]
fn recycling_by_maximum_requests_loses_no_request() {
    for processes in [2, 1] {
        let apache = daemon_site(&format!(
            "processes={processes} threads=4 maximum-requests=50"
        ));
        let report = run_for(&spec(&apache, "/app", 16), Duration::from_secs(6));
        let recycled = apache
            .error_log()
            .matches("reached maximum-requests=50")
            .count();
        assert_lossless(
            &format!("maximum-requests=50, processes={processes} threads=4 ({recycled} recycles)"),
            &apache,
            &report,
        );
        assert!(recycled >= 3, "recycled only {recycled} times");
    }
}

/// `apache2 -k restart` (SIGHUP): Apache ends its children at once, so the
/// requests they were serving are cut by Apache itself; nothing else fails
/// (no error status from us), and the daemons serve again within 2 s.
#[test]
fn full_restart_under_load_fails_only_what_apache_cuts() {
    let apache = daemon_site("processes=2 threads=4");
    assert_eq!(apache.get("/app").text().as_bytes(), BODY);
    let load = Load::start(&spec(&apache, "/app", 16));
    std::thread::sleep(Duration::from_secs(2));
    let old = daemon_pids(&apache);
    apache.restart();
    // From Apache answering again to a daemon of the new generation
    // answering.
    let back = Instant::now();
    let mut served_by_new = false;
    while back.elapsed() < Duration::from_secs(2) {
        if let Ok(r) = apache.try_request("GET", "/pid", &[], &[])
            && r.status == 200
            && !old.contains(&r.text().trim().parse().unwrap_or(0))
        {
            served_by_new = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let recovery = back.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let report = load.finish();
    drill_line(
        &format!(
            "-k restart (daemons serve again {:.2}s after Apache)",
            recovery.as_secs_f64()
        ),
        &report,
    );
    assert!(served_by_new, "no new daemon answered within 2 s");
    assert!(
        report.non_2xx.is_empty() && report.wrong_body == 0 && report.timeouts == 0,
        "{}\n{:#?}\n{}",
        report.summary(),
        report.samples,
        apache.error_log()
    );
    assert_no_crash(&apache);
}

/// A request running in a daemon when Apache restarts gracefully finishes
/// there and reaches its client whole (mod_wsgi stops the daemon and the
/// client gets an error), while new requests go to the new generation; a
/// stop during the drain ends the draining daemon too.
#[test]
fn a_request_running_across_a_graceful_restart_finishes() {
    let apache = Apache::builder()
        .file("app/slow.wsgi", SLOW_APP)
        .directives(
            "WSGIDaemonProcess drill processes=1 threads=2 display-name=drill-daemon\n\
             WSGIScriptAlias /slow {dir}/app/slow.wsgi process-group=drill application-group=%{GLOBAL}\n",
        )
        .start();
    let old: u32 = apache.get("/slow").text().parse().unwrap();
    let port = apache.port;
    let running = std::thread::spawn(move || {
        let r = ureq::get(&format!("http://127.0.0.1:{port}/slow?3")).call();
        r.map(|r| r.into_string().unwrap_or_default())
            .map_err(|e| e.to_string())
    });
    std::thread::sleep(Duration::from_millis(500));
    apache.graceful_restart();
    let new: u32 = apache.get("/slow").text().parse().unwrap();
    assert_ne!(new, old, "a new daemon serves new requests");
    assert!(
        daemon_pids(&apache).contains(&old),
        "the old daemon is still draining"
    );
    let answer = running.join().unwrap();
    assert_eq!(
        answer.as_deref(),
        Ok(old.to_string().as_str()),
        "{}",
        apache.error_log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || !daemon_pids(&apache)
            .contains(&old)),
        "{}",
        apache.error_log()
    );
    assert!(apache.wait_for_log(
        &format!(
            "daemon process 'drill' (pid {old}) of an earlier generation exited after draining"
        ),
        Duration::from_secs(5)
    ));

    // A stop while a daemon drains: nothing is left (the harness checks).
    // (The request is shorter than Apache's own 10 s reclaim of a child
    // that finishes a graceful stop: Apache cannot tell such a child to
    // stop at once, whatever it serves.)
    let port = apache.port;
    let running = std::thread::spawn(move || {
        let _ = ureq::get(&format!("http://127.0.0.1:{port}/slow?4")).call();
    });
    std::thread::sleep(Duration::from_millis(500));
    apache.graceful_restart();
    assert_eq!(daemon_pids(&apache).len(), 2, "one draining, one new");
    apache.stop();
    let _ = running.join();
}

/// `apache2 -k stop` while a request waits for a daemon: the Apache child
/// abandons the relay at once (Apache's child_stopping hook) instead of
/// holding Apache's stop until its reclaim kills the child after 10 s.
#[test]
fn a_stop_does_not_wait_for_a_relayed_request() {
    let apache = Apache::builder()
        .file("app/slow.wsgi", SLOW_APP)
        .directives(
            "WSGIDaemonProcess drill threads=1 shutdown-timeout=1 display-name=drill-daemon\n\
             WSGIScriptAlias /slow {dir}/app/slow.wsgi process-group=drill\n",
        )
        .start();
    let port = apache.port;
    let running = std::thread::spawn(move || {
        let _ = ureq::get(&format!("http://127.0.0.1:{port}/slow?30")).call();
    });
    assert!(apache.wait_for_log("Loading WSGI script", Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    apache.stop();
    let took = started.elapsed();
    println!(
        "DRILL -k stop with a request in a daemon: stopped in {:.1}s",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(8), "stop took {took:?}");
    let _ = running.join();
}

/// Apache's event MPM, stopping a child at once, closes its busy workers'
/// sockets from the main thread while a worker that is closing its own
/// connection frees that connection's memory: the child died of SIGSEGV
/// (Apache 2.4.71 alone does; see src/apache/stop_sweep.rs). With the
/// module loaded, hard restarts while clients keep opening and closing
/// connections crash no child. Each child has more threads than there
/// are connections, so that the MPM frees connections only when it stops
/// (a child with few threads also frees some while it runs, a race with
/// the stop the module cannot see). Three servers in turn: how often the
/// race comes varies from one server to the next (without the module's
/// guard some crash within a few restarts, some not in 60).
#[test]
fn hard_restarts_while_connections_close_crash_no_child() {
    for _ in 0..3 {
        hard_restarts_while_connections_close(20);
    }
}

fn hard_restarts_while_connections_close(restarts: usize) {
    let apache = Apache::builder()
        .file("htdocs/static.txt", "hello")
        .file("app/pid.wsgi", PID_APP)
        .directives(
            "ThreadLimit 32\nThreadsPerChild 32\nMaxRequestWorkers 128\n\
             MinSpareThreads 32\nMaxSpareThreads 128\n\
             WSGIDaemonProcess drill threads=1 display-name=drill-daemon\n\
             WSGIScriptAlias /pid {dir}/app/pid.wsgi process-group=drill\n",
        )
        .start();
    assert_eq!(apache.get("/pid").status, 200);
    let port = apache.port;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut connections = 0u64;
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..8)
            .map(|i| {
                let stop = &stop;
                scope.spawn(move || {
                    use std::io::{Read, Write};
                    // Half ask the server to close, half close themselves
                    // after the answer: either way a worker closes it.
                    let how = if i % 2 == 0 { "close" } else { "keep-alive" };
                    let mut made = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        };
                        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                        let _ = write!(
                            s,
                            "GET /static.txt HTTP/1.1\r\nHost: x\r\nConnection: {how}\r\n\r\n"
                        );
                        let _ = s.read(&mut [0u8; 1024]);
                        made += 1;
                    }
                    made
                })
            })
            .collect();
        for _ in 0..restarts {
            std::thread::sleep(Duration::from_millis(30));
            apache.restart();
            if apache.error_log().contains("exit signal") {
                break;
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        connections = clients.into_iter().map(|c| c.join().unwrap_or(0)).sum();
    });
    println!("DRILL {restarts} hard restarts while {connections} connections opened and closed");
    assert!(connections > 0, "no connection was served");
    assert_no_crash(&apache);
}

/// A group gone from the configuration at a graceful restart: its socket
/// is removed, and its daemons, with nothing more to serve, finish and
/// exit.
#[test]
fn a_group_removed_at_a_graceful_restart_drains_and_goes() {
    let sockdir = temp_dir_with_mode("mwrs-drain-", 0o755);
    let apache = Apache::builder()
        .file("app/pid.wsgi", PID_APP)
        .directives(&format!(
            "WSGISocketPrefix {}/wsgi\n\
             WSGIDaemonProcess drill processes=1 threads=1 display-name=drill-daemon\n\
             WSGIScriptAlias /pid {{dir}}/app/pid.wsgi process-group=drill\n",
            sockdir.path().display()
        ))
        .start();
    let old: u32 = apache.get("/pid").text().parse().unwrap();
    let conf = apache.dir.join("httpd.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let text = text
        .replace("WSGIDaemonProcess drill", "WSGIDaemonProcess other")
        .replace("process-group=drill", "process-group=other");
    std::fs::write(&conf, text).unwrap();
    apache.graceful_restart();
    assert_ne!(apache.get("/pid").text().parse::<u32>().unwrap(), old);
    assert!(
        wait_until(Duration::from_secs(10), || !common::pid_alive(old)),
        "{}",
        apache.error_log()
    );
    let sockets: Vec<String> = std::fs::read_dir(sockdir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(sockets.len(), 1, "only the new group's socket: {sockets:?}");
    assert!(sockets[0].ends_with(".other.sock"), "{sockets:?}");
}

/// restart-interval under load: each daemon restarts every 2 s, no
/// request fails.
#[test]
fn restart_interval_under_load_loses_no_request() {
    let apache = daemon_site("processes=2 threads=4 restart-interval=2");
    let report = run_for(&spec(&apache, "/app", 16), Duration::from_secs(7));
    let restarts = apache
        .error_log()
        .matches("restart-interval=2s reached")
        .count();
    assert_lossless(
        &format!("restart-interval=2, processes=2 threads=4 ({restarts} restarts)"),
        &apache,
        &report,
    );
    assert!(restarts >= 2, "restarted only {restarts} times");
}

/// Connections waiting in the backlog of the old generation's socket when
/// the new one takes the path over (the old daemon's only thread is busy)
/// are served by the old daemon before it exits, not reset with it.
#[test]
fn connections_queued_at_a_restart_are_served_by_the_old_daemon() {
    let apache = Apache::builder()
        .file("app/slow.wsgi", SLOW_APP)
        .directives(
            "WSGIDaemonProcess drill processes=1 threads=1 display-name=drill-daemon\n\
             WSGIScriptAlias /slow {dir}/app/slow.wsgi process-group=drill application-group=%{GLOBAL}\n",
        )
        .start();
    let old: u32 = apache.get("/slow").text().parse().unwrap();
    let port = apache.port;
    let request = move |query: &'static str| {
        std::thread::spawn(move || {
            ureq::get(&format!("http://127.0.0.1:{port}/slow?{query}"))
                .call()
                .map(|r| (r.status(), r.into_string().unwrap_or_default()))
                .map_err(|e| e.to_string())
        })
    };
    let busy = request("2");
    std::thread::sleep(Duration::from_millis(300));
    let queued: Vec<_> = (0..3).map(|_| request("0")).collect();
    std::thread::sleep(Duration::from_millis(300));
    apache.graceful_restart();
    for q in std::iter::once(busy).chain(queued) {
        let answer = q.join().unwrap();
        assert_eq!(answer, Ok((200, old.to_string())), "{}", apache.error_log());
    }
}

// ------------------------------------------------------ faults under load

/// Fails in the way its query string names, after half a second (so the
/// worker has been told which process serves it), in a request thread of
/// the drill's group.
const FAULT_APP: &str = r#"import ctypes, os, threading, time
def application(environ, start_response):
    how = environ.get('QUERY_STRING', '')
    time.sleep(0.5)
    if how == 'exit':
        os._exit(1)
    if how == 'segfault':
        ctypes.string_at(0)
    if how == 'hang':
        threading.Event().wait()
    if how == 'hold-gil':
        # A C call that keeps the GIL: PyDLL does not release it.
        ctypes.PyDLL(None).sleep(3600)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [str(os.getpid()).encode()]
"#;

/// The faults of issue 11's drill, from inside the application or from
/// outside the process.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `kill -9` of a daemon.
    Kill9,
    /// SIGSTOP to a daemon (SIGCONT at the end of the drill).
    Stop,
    /// The application calls `os._exit(1)`.
    Exit,
    /// The application dereferences NULL.
    Segfault,
    /// The application waits for ever (request-timeout recovers).
    Hang,
    /// The application sleeps in a C call holding the GIL (deadlock-timeout
    /// recovers).
    HoldGil,
}

/// What a fault drill measured.
struct FaultOutcome {
    report: LoadReport,
    /// The status the faulting request got (None: no request made it, or
    /// it got no answer).
    fault_status: Option<u16>,
    /// The daemon that failed.
    failed_pid: u32,
    /// From the fault to a replacement daemon's first answer (None: the
    /// failed process was not replaced, as for SIGSTOP).
    replaced_after: Option<Duration>,
    /// Longest time the load went without a whole answer.
    longest_gap: Duration,
}

/// Runs `fault` against a daemon group of processes=2 threads=4 under 16
/// keep-alive connections, and measures what it cost.
fn fault_drill(fault: Fault) -> (Apache, FaultOutcome) {
    // request-timeout only where the drill is about it: it would end the
    // GIL drill before deadlock-timeout does.
    let request_timeout = match fault {
        Fault::Hang | Fault::Stop => " request-timeout=1",
        _ => "",
    };
    let apache = daemon_site_with(
        &format!(
            "processes=2 threads=4 deadlock-timeout=3 socket-timeout=8 shutdown-timeout=2{request_timeout}"
        ),
        "WSGIScriptAlias /fault {dir}/app/fault.wsgi process-group=drill application-group=%{GLOBAL}\n",
    );
    assert_eq!(apache.get("/app").text().as_bytes(), BODY);
    let before = daemon_pids(&apache);
    assert_eq!(before.len(), 2, "{before:?}");
    let load = Load::start(&spec(&apache, "/app", 16));
    std::thread::sleep(Duration::from_secs(2));
    let port = apache.port;
    let fault_request = |query: &'static str| {
        std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build();
            match agent
                .get(&format!("http://127.0.0.1:{port}/fault?{query}"))
                .call()
            {
                Ok(r) => Some(r.status()),
                Err(ureq::Error::Status(s, _)) => Some(s),
                Err(_) => None,
            }
        })
    };
    let started = Instant::now();
    let (failed_pid, pending) = match fault {
        Fault::Kill9 | Fault::Stop => {
            let sig = if matches!(fault, Fault::Kill9) {
                "KILL"
            } else {
                "STOP"
            };
            let pid = before[0];
            assert!(signal_pid(pid, sig));
            (pid, None)
        }
        Fault::Exit | Fault::Segfault | Fault::Hang | Fault::HoldGil => {
            let query = match fault {
                Fault::Exit => "exit",
                Fault::Segfault => "segfault",
                Fault::Hang => "hang",
                _ => "hold-gil",
            };
            let pending = fault_request(query);
            // The daemon that goes away is the one that failed.
            let mut gone = 0;
            assert!(
                wait_until(Duration::from_secs(20), || {
                    let now = daemon_pids(&apache);
                    match before.iter().find(|p| !now.contains(p)) {
                        Some(&p) => {
                            gone = p;
                            true
                        }
                        None => false,
                    }
                }),
                "no daemon went away after the fault {fault:?}\n{}",
                apache.error_log()
            );
            (gone, Some(pending))
        }
    };
    // Service back: a daemon that was not there before answers /pid.
    let mut replaced_after = None;
    if !matches!(fault, Fault::Stop) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = apache.try_request("GET", "/pid", &[], &[])
                && r.status == 200
                && !before.contains(&r.text().trim().parse().unwrap_or(0))
            {
                replaced_after = Some(started.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Long enough for what the failed process held to time out
    // (socket-timeout=8), and for the load to show it goes on.
    std::thread::sleep(
        Duration::from_secs(8).saturating_sub(started.elapsed()) + Duration::from_secs(2),
    );
    let report = load.finish();
    let fault_status = pending.and_then(|p| p.join().unwrap());
    if matches!(fault, Fault::Stop) {
        signal_pid(failed_pid, "CONT");
    }
    let longest_gap = Duration::from_secs(
        report
            .per_second
            .split(|&n| n > 0)
            .map(|run| run.len() as u64)
            .max()
            .unwrap_or(0),
    );
    let outcome = FaultOutcome {
        report,
        fault_status,
        failed_pid,
        replaced_after,
        longest_gap,
    };
    println!(
        "DRILL fault {fault:?} (daemon {failed_pid}, processes=2 threads=4): {}; the fault's own request: {:?}; replacement answered after {}; longest second without an answer: {} s",
        outcome.report.summary(),
        outcome.fault_status,
        outcome
            .replaced_after
            .map_or("-".to_string(), |d| format!("{:.2}s", d.as_secs_f64())),
        outcome.longest_gap.as_secs(),
    );
    for line in apache
        .error_log()
        .lines()
        .filter(|l| l.contains(&format!("pid {failed_pid}")))
    {
        println!("  {line}");
    }
    (apache, outcome)
}

/// The bounds every fault drill holds: at most the requests the failed
/// process was running fail (threads=4, plus the fault's own), with an
/// error status and a log line naming the group and the failed pid; the
/// load never stops; no Apache child dies of a signal.
fn assert_contained(fault: Fault, apache: &Apache, outcome: &FaultOutcome) {
    let report = &outcome.report;
    let log = apache.error_log();
    assert!(
        report.failed() <= 4,
        "{fault:?}: {} requests of the load failed; the failed process ran at most 4\n{:#?}\n{log}",
        report.failed(),
        report.samples
    );
    assert_eq!(
        report.cut + report.connect_errors + report.wrong_body,
        0,
        "{fault:?}: failures other than an error status\n{:#?}\n{log}",
        report.samples
    );
    assert_eq!(
        outcome.longest_gap,
        Duration::ZERO,
        "{fault:?}: the load stalled"
    );
    // One line per failed request, each naming the group and the pid,
    // even for requests killed a moment after the daemon took them.
    let pid = format!("'drill' (pid {})", outcome.failed_pid);
    let request_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("[client ") && l.contains("daemon process group 'drill'"))
        .collect();
    let expected = report.failed() + u64::from(outcome.fault_status.is_some_and(|s| s >= 500));
    assert_eq!(
        request_lines.len() as u64,
        expected,
        "{fault:?}: one log line per failed request\n{log}"
    );
    assert!(
        request_lines.iter().all(|l| l.contains(&pid)),
        "{fault:?}: a request's line does not name {pid}\n{log}"
    );
    // Apache logs "exit signal" for any child that dies of one (AH00052):
    // the daemon killed on purpose may, no Apache child may.
    let crashed: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("exit signal")
                && !l.contains(&format!("pid {} exit signal", outcome.failed_pid))
        })
        .collect();
    assert!(
        crashed.is_empty(),
        "{fault:?}: an Apache child died of a signal\n{log}"
    );
}

/// A process that dies (the fault's own request, if it had one, gets 502)
/// is replaced within 5 s.
fn dies_and_is_replaced(fault: Fault, own_request: Option<u16>) {
    let (apache, outcome) = fault_drill(fault);
    assert_contained(fault, &apache, &outcome);
    assert_eq!(outcome.fault_status, own_request);
    assert!(
        outcome
            .replaced_after
            .is_some_and(|d| d < Duration::from_secs(5)),
        "{:?}",
        outcome.replaced_after
    );
}

#[test]
fn kill_9_of_a_daemon_under_load_fails_only_its_requests() {
    dies_and_is_replaced(Fault::Kill9, None);
}

/// The requests the stopped process holds time out (socket-timeout=8, 504);
/// its sibling takes every new one. Continued, it serves again and does not
/// take the time it was stopped for a deadlock.
#[test]
fn a_stopped_daemon_fails_only_the_requests_it_holds() {
    let (apache, outcome) = fault_drill(Fault::Stop);
    assert_contained(Fault::Stop, &apache, &outcome);
    assert!(outcome.report.non_2xx.iter().all(|&(s, _)| s == 504));
    // Continued (by fault_drill) after about 10 s stopped: past
    // deadlock-timeout=3, and the monitor checks every 200 ms.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        daemon_pids(&apache).contains(&outcome.failed_pid),
        "{}",
        apache.error_log()
    );
    for option in ["deadlock-timeout", "request-timeout"] {
        assert!(
            !apache.error_log().contains(option),
            "{}",
            apache.error_log()
        );
    }
}

/// Every line of a failed request names the option that ended its process.
fn assert_cause_named(apache: &Apache, option: &str) {
    let log = apache.error_log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("[client ") && l.contains("daemon process group 'drill'"))
        .collect();
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l.contains(option)),
        "request lines do not name {option}\n{log}"
    );
}

#[test]
fn os_exit_under_load_fails_only_its_process_requests() {
    dies_and_is_replaced(Fault::Exit, Some(502));
}

#[test]
fn a_segfault_under_load_fails_only_its_process_requests() {
    dies_and_is_replaced(Fault::Segfault, Some(502));
}

#[test]
fn a_hung_request_under_load_is_ended_by_request_timeout() {
    let (apache, outcome) = fault_drill(Fault::Hang);
    assert_contained(Fault::Hang, &apache, &outcome);
    // request-timeout=1 with 4 threads fires after 1 x (1 + ln 4) = 2.4 s,
    // as mod_wsgi 6.1, then shutdown-timeout=2; before socket-timeout=8.
    assert_cause_named(&apache, "request-timeout=1s scaled to 2.4s for 4 threads");
    assert_eq!(outcome.fault_status, Some(502));
    assert!(
        outcome
            .replaced_after
            .is_some_and(|d| d > Duration::from_secs(4) && d < Duration::from_secs(10)),
        "{:?}",
        outcome.replaced_after
    );
}

#[test]
fn a_c_call_holding_the_gil_under_load_is_ended_by_deadlock_timeout() {
    let (apache, outcome) = fault_drill(Fault::HoldGil);
    assert_contained(Fault::HoldGil, &apache, &outcome);
    assert_cause_named(&apache, "deadlock-timeout=3s");
    assert!(outcome.fault_status.is_some_and(|s| s >= 500));
    assert!(
        outcome
            .replaced_after
            .is_some_and(|d| d < Duration::from_secs(10))
    );
}

// ------------------------------------------------------------ soak (make soak)

/// VmRSS in KiB of each of `pids`.
fn rss_of(pids: &[u32]) -> Vec<(u32, u64)> {
    pids.iter()
        .filter_map(|&p| {
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
            let kb = status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((p, kb))
        })
        .collect()
}

/// Apache's children and the daemons (the parent left out).
fn worker_and_daemon_pids(apache: &Apache) -> Vec<u32> {
    let parent = apache.parent_pid();
    apache.pids().into_iter().filter(|&p| p != parent).collect()
}

/// Graceful restarts every 5 s for 30 s under 16 keep-alive connections:
/// no failed request, and the rate during the restarts at least half the
/// steady rate measured just before.
#[test]
#[ignore = "soak: make soak"]
fn soak_graceful_every_5s_for_30s() {
    let apache = daemon_site("processes=2 threads=4");
    let steady = run_for(&spec(&apache, "/app", 16), Duration::from_secs(10));
    assert_lossless("soak: steady before the restarts", &apache, &steady);
    let load = Load::start(&spec(&apache, "/app", 16));
    for _ in 0..6 {
        std::thread::sleep(Duration::from_secs(5));
        apache.graceful_restart();
    }
    let drill = load.finish();
    assert_lossless("soak: -k graceful every 5 s for 30 s", &apache, &drill);
    println!(
        "DRILL soak: rate during the restarts {:.0}/s = {:.2} of the steady {:.0}/s",
        drill.rate(),
        drill.rate() / steady.rate(),
        steady.rate()
    );
    assert!(drill.rate() >= steady.rate() / 2.0);
}

/// How long the soak load runs before the RSS the run is compared with is
/// taken. In embedded mode the RSS of Apache's children rises for the
/// first minutes and levels off (at 3000 requests/s with 2 x 80 threads:
/// +6.5% from 10 s to 70 s, +1.0% from 120 s to 180 s, +0.6% from 180 s
/// to 240 s): glibc's per-thread malloc caches (tcache: up to 7 freed
/// chunks per size class in each thread) fill as threads happen to free
/// more chunks of one size at once than before, the more slowly the more
/// threads share the requests. It is not a leak: with
/// `GLIBC_TUNABLES=glibc.malloc.tcache_count=0` the RSS is flat from 10 s
/// on, heaptrack attached to a child finds no allocation that accumulates,
/// and Python's count of allocated blocks does not move. A leak of 16
/// bytes per request shows as +13% in the 60 s measured.
const SOAK_WARM_UP: Duration = Duration::from_secs(120);

/// The load held after the warm-up, with the RSS sampled every
/// `SOAK_SAMPLE`.
const SOAK_HELD: Duration = Duration::from_secs(60);
const SOAK_SAMPLE: Duration = Duration::from_secs(10);

/// Total VmRSS in KiB of Apache's children and the daemons.
fn rss_total(apache: &Apache) -> u64 {
    rss_of(&worker_and_daemon_pids(apache))
        .iter()
        .map(|(_, kb)| kb)
        .sum()
}

/// 60 s of load at 64 connections after a warm-up (`SOAK_WARM_UP`) under
/// the same load, daemon and embedded: no failed request, and the memory
/// of Apache's children and the daemons at the end within 5% of what it
/// was after the warm-up, with the same processes alive (a process
/// replaced meanwhile would make the figures meaningless).
#[test]
#[ignore = "soak: make soak"]
fn soak_load_held_60s_at_64_connections() {
    for mode in ["daemon", "embedded"] {
        let apache = if mode == "daemon" {
            daemon_site_with("processes=2 threads=8", WORKERS_FOR_64)
        } else {
            Apache::builder()
                .file("app/drill.wsgi", APP)
                .directives(&format!("KeepAliveTimeout 30\nMaxKeepAliveRequests 0\nWSGIScriptAlias /app {{dir}}/app/drill.wsgi\n{WORKERS_FOR_64}"))
                .start()
        };
        // One load throughout: both figures are taken under it.
        let load = Load::start(&spec(&apache, "/app", 64));
        let started = Instant::now();
        std::thread::sleep(SOAK_WARM_UP);
        let mut processes = worker_and_daemon_pids(&apache);
        processes.sort_unstable();
        let mut curve = vec![rss_total(&apache)];
        let mut sampled = SOAK_WARM_UP;
        while sampled < SOAK_WARM_UP + SOAK_HELD {
            sampled += SOAK_SAMPLE;
            std::thread::sleep((started + sampled).saturating_duration_since(Instant::now()));
            curve.push(rss_total(&apache));
        }
        let report = load.finish();
        let (before, after) = (curve[0], curve[curve.len() - 1]);
        let change = after as f64 / before.max(1) as f64 - 1.0;
        println!(
            "DRILL soak {mode}: RSS of {} processes {before} KiB after the {} s warm-up, {after} KiB after 60 s more ({:+.1}%); every {} s: {curve:?} KiB",
            processes.len(),
            SOAK_WARM_UP.as_secs(),
            change * 100.0,
            SOAK_SAMPLE.as_secs(),
        );
        assert_lossless(
            &format!(
                "soak {mode}: {} s warm-up and 60 s at 64 connections",
                SOAK_WARM_UP.as_secs()
            ),
            &apache,
            &report,
        );
        assert_eq!(report.idle_closed, 0, "no socket error at all here");
        let mut processes_after = worker_and_daemon_pids(&apache);
        processes_after.sort_unstable();
        assert_eq!(
            processes_after, processes,
            "a process was replaced during the measurement"
        );
        assert!(before > 0);
        assert!(change <= 0.05, "RSS grew {:.1}%", change * 100.0);
    }
}
