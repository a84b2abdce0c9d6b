//! Daemon mode against a real Apache: groups forked and supervised by the
//! parent, requests proxied over the Unix socket, the N + 3 thread layout,
//! and the failures a worker reports.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::time::Duration;

const PID_APP: &str = r#"
import os, time
import threading
def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
    if path == "/post":
        data = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d:" % len(data), data[:16]]
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [b"x" * (3 * 1024 * 1024 + 7)]
    body = "%d %s %s %s" % (os.getpid(), environ["mod_wsgi.process_group"], environ["wsgi.multithread"], environ["wsgi.multiprocess"])
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
    return [body.encode()]
"#;

fn daemon_server(mpm: Mpm, options: &str) -> Apache {
    Apache::builder()
        .mpm(mpm)
        .file("app/pid.wsgi", PID_APP)
        .directives(&format!(
            "WSGIDaemonProcess mysite {options}\nWSGIProcessGroup mysite\nWSGIScriptAlias / {{dir}}/app/pid.wsgi\n"
        ))
        .start()
}

fn cmdline(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .replace('\0', " ")
        .trim()
        .to_string()
}

fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn gid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Gid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// pids of the daemon processes, found by their title.
fn titled(apache: &Apache, title: &str) -> Vec<u32> {
    apache
        .pids()
        .into_iter()
        .filter(|&p| cmdline(p) == title)
        .collect()
}

/// Waits until requests are answered by a process other than `old`.
fn replaced(apache: &Apache, old: u32) -> bool {
    wait_until(Duration::from_secs(10), || {
        let r = apache.get("/");
        r.status == 200
            && r.text()
                .split(' ')
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|p| p != old)
    })
}

fn served_pid(apache: &Apache) -> u32 {
    let r = apache.get("/");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), apache.error_log());
    r.text().split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn seed_layout_three_processes_of_five_threads() {
    let apache = daemon_server(Mpm::Event, "processes=3 threads=2 display-name=mod_wsgi");
    assert!(
        wait_until(Duration::from_secs(10), || titled(&apache, "mod_wsgi")
            .len()
            == 3),
        "ps: {:?}",
        apache
            .pids()
            .iter()
            .map(|&p| cmdline(p))
            .collect::<Vec<_>>()
    );
    let daemons: BTreeSet<u32> = titled(&apache, "mod_wsgi").into_iter().collect();
    // Threads: 2 request + caretaker + monitor + deadlock.
    for &pid in &daemons {
        assert!(
            wait_until(Duration::from_secs(5), || threads_of(pid) == 5),
            "pid {pid} has {} threads",
            threads_of(pid)
        );
    }
    // Requests are answered by the daemons, not by Apache's children.
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        let r = apache.get("/");
        assert_eq!(r.status, 200, "{}", apache.error_log());
        let text = r.text();
        let mut parts = text.split(' ');
        let pid: u32 = parts.next().unwrap().parse().unwrap();
        assert_eq!(parts.next(), Some("mysite"), "{text}");
        assert_eq!(
            parts.next(),
            Some("True"),
            "threads=2 is multithreaded: {text}"
        );
        assert_eq!(
            parts.next(),
            Some("True"),
            "processes=3 is multiprocess: {text}"
        );
        assert!(
            daemons.contains(&pid),
            "pid {pid} is not a daemon {daemons:?}"
        );
        seen.insert(pid);
    }
    assert!(!seen.is_empty());
    // Daemons run as Apache's User (www-data) when Apache starts as root.
    if uid_of(std::process::id()) == Some(0) {
        for &pid in &daemons {
            assert_eq!(uid_of(pid), Some(33), "daemon {pid} should run as www-data");
        }
    }
}

#[test]
fn default_thread_count_is_eighteen() {
    let apache = daemon_server(Mpm::Prefork, "display-name=%{GROUP}");
    let title = "(wsgi:mysite)";
    assert!(
        wait_until(Duration::from_secs(10), || titled(&apache, title).len()
            == 1),
        "{:?}",
        apache
            .pids()
            .iter()
            .map(|&p| cmdline(p))
            .collect::<Vec<_>>()
    );
    let pid = titled(&apache, title)[0];
    assert!(
        wait_until(Duration::from_secs(5), || threads_of(pid) == 18),
        "{} threads",
        threads_of(pid)
    );
    assert_eq!(served_pid(&apache), pid);
    let r = apache.get("/");
    assert!(
        r.text().ends_with("mysite True False"),
        "one process is not multiprocess: {}",
        r.text()
    );
}

#[test]
fn serves_under_every_mpm_with_post_and_large_body() {
    for mpm in Mpm::ALL {
        let apache = daemon_server(mpm, "processes=2 threads=2");
        let pid = served_pid(&apache);
        assert_ne!(pid, apache.parent_pid());
        let body = vec![b'a'; 200_000];
        let r = apache.request(
            "POST",
            "/post",
            &[("Content-Type", "application/octet-stream")],
            &body,
        );
        assert_eq!(r.status, 200, "{mpm:?}: {}", apache.error_log());
        assert_eq!(r.text(), format!("200000:{}", "a".repeat(16)));
        let big = apache.get("/big");
        assert_eq!(big.body.len(), 3 * 1024 * 1024 + 7, "{mpm:?}");
    }
}

#[test]
fn killed_daemon_is_replaced_and_requests_go_on() {
    let apache = daemon_server(Mpm::Event, "processes=1 threads=2");
    let first = served_pid(&apache);
    let _ = std::process::Command::new("kill")
        .args(["-s", "KILL", "--", &first.to_string()])
        .status();
    let mut replacement = 0;
    assert!(
        wait_until(Duration::from_secs(15), || {
            let r = apache.get("/");
            if r.status == 200 {
                replacement = r.text().split(' ').next().unwrap().parse().unwrap();
            }
            replacement != 0 && replacement != first
        }),
        "{}",
        apache.error_log()
    );
    assert!(
        apache.wait_for_log(
            &format!("(pid {first}) was killed by SIGKILL"),
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
}

#[test]
fn exception_in_daemon_is_500_with_traceback_naming_group_and_pid() {
    let apache = Apache::builder()
        .file(
            "app/bad.wsgi",
            "def application(environ, start_response):\n    raise KeyError('daemon boom')\n",
        )
        .directives(
            "WSGIDaemonProcess g threads=1\nWSGIScriptAlias / {dir}/app/bad.wsgi process-group=g\n",
        )
        .start();
    let r = apache.get("/");
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("daemon boom"));
    assert!(
        apache.wait_for_log("KeyError: 'daemon boom'", Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
    let log = apache.error_log();
    let line = log
        .lines()
        .find(|l| l.contains("KeyError exception raised processing WSGI script"))
        .unwrap();
    assert!(
        line.contains("of daemon process 'g'") && line.contains("pid "),
        "{line}"
    );
}

#[test]
fn request_timeout_restarts_the_daemon_and_the_client_gets_a_clear_error() {
    let apache = daemon_server(
        Mpm::Event,
        "processes=1 threads=1 request-timeout=1 shutdown-timeout=1",
    );
    let before = served_pid(&apache);
    let r = apache.get("/sleep?30");
    assert_eq!(r.status, 502, "{}", apache.error_log());
    assert!(
        apache.wait_for_log("over request-timeout=1s", Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
    // The worker's line names the group, the daemon's pid and the cause.
    let expected = format!(
        "daemon process group 'mysite' (pid {before}) failed the request (Abandoned): the process was forced to exit"
    );
    let log = apache.error_log();
    assert!(
        log.lines()
            .any(|l| l.contains(&expected) && l.contains("over request-timeout=1s; restarting")),
        "{log}"
    );
    assert!(replaced(&apache, before), "{}", apache.error_log());
}

#[test]
fn deadlock_timeout_restarts_a_process_stuck_holding_the_gil() {
    let app = "import ctypes, os\ndef application(environ, start_response):\n    if environ['PATH_INFO'] == '/hang':\n        ctypes.PyDLL(None).sleep(60)\n    start_response('200 OK', [])\n    return [str(os.getpid()).encode()]\n";
    let apache = Apache::builder()
        .file("app/d.wsgi", app)
        .directives("WSGIDaemonProcess g threads=2 deadlock-timeout=2 shutdown-timeout=1\nWSGIScriptAlias / {dir}/app/d.wsgi process-group=g\n")
        .start();
    let before: u32 = apache.get("/").text().parse().unwrap();
    let hung = apache.get("/hang");
    assert_eq!(hung.status, 502);
    assert!(
        apache.wait_for_log(
            "GIL not acquirable for deadlock-timeout=2s",
            Duration::from_secs(10)
        ),
        "{}",
        apache.error_log()
    );
    assert!(replaced(&apache, before), "{}", apache.error_log());
}

#[test]
fn inactivity_timeout_recycles_an_idle_daemon() {
    let apache = daemon_server(Mpm::Event, "processes=1 threads=1 inactivity-timeout=1");
    let before = served_pid(&apache);
    assert!(
        apache.wait_for_log(
            "no requests for inactivity-timeout=1s",
            Duration::from_secs(10)
        ),
        "{}",
        apache.error_log()
    );
    assert!(wait_until(Duration::from_secs(10), || served_pid(&apache) != before));
}

/// As mod_wsgi's idle timer, ours runs from the first request: a daemon
/// that never served one is not recycled over and over.
#[test]
fn inactivity_timeout_waits_for_a_first_request() {
    let apache = Apache::builder()
        .file("app/pid.wsgi", PID_APP)
        .directives(
            "WSGIDaemonProcess g processes=1 threads=1 inactivity-timeout=1
             WSGIScriptAlias / {dir}/app/pid.wsgi process-group=g
",
        )
        .start();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !apache
            .error_log()
            .contains("no requests for inactivity-timeout"),
        "{}",
        apache.error_log()
    );
}

/// Sends `count` requests from `clients` threads; returns the failures.
fn load(apache: &Apache, clients: usize, count: usize) -> Vec<String> {
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                for _ in 0..count / clients {
                    match apache.try_request("GET", "/", &[], b"") {
                        Ok(r) if r.status == 200 => {}
                        Ok(r) => failures
                            .lock()
                            .unwrap()
                            .push(format!("status {}", r.status)),
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            });
        }
    });
    failures.into_inner().unwrap()
}

#[test]
fn maximum_requests_recycles_without_failing_requests() {
    let apache = daemon_server(Mpm::Event, "processes=2 threads=2 maximum-requests=20");
    let failures = load(&apache, 4, 400);
    assert!(
        failures.is_empty(),
        "{} failed: {:?}\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        apache.error_log()
    );
    assert!(
        apache.error_log().contains("reached maximum-requests=20"),
        "{}",
        apache.error_log()
    );
}

#[test]
fn user_and_display_name_as_ps_shows_them() {
    if uid_of(std::process::id()) != Some(0) {
        return; // needs root to switch users
    }
    let apache = daemon_server(
        Mpm::Event,
        "processes=1 threads=1 user=nobody group=nogroup display-name=wsgi-custom",
    );
    assert!(wait_until(Duration::from_secs(10), || titled(
        &apache,
        "wsgi-custom"
    )
    .len()
        == 1));
    let pid = titled(&apache, "wsgi-custom")[0];
    let nobody = std::process::Command::new("id")
        .args(["-u", "nobody"])
        .output()
        .unwrap();
    let nobody: u32 = String::from_utf8_lossy(&nobody.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(uid_of(pid), Some(nobody));
    let nogroup = nix::unistd::Group::from_name("nogroup")
        .unwrap()
        .unwrap()
        .gid
        .as_raw();
    assert_eq!(gid_of(pid), Some(nogroup));
    assert_eq!(served_pid(&apache), pid);
}

#[test]
fn unknown_runtime_group_from_env_is_a_clear_500() {
    let apache = Apache::builder()
        .file("app/pid.wsgi", PID_APP)
        .directives("WSGIDaemonProcess real threads=1\nSetEnv WHICH ghost\nWSGIProcessGroup %{ENV:WHICH}\nWSGIScriptAlias / {dir}/app/pid.wsgi\n")
        .start();
    assert_eq!(apache.get("/").status, 500);
    assert!(apache.wait_for_log(
        "no WSGI daemon process group 'ghost' is configured",
        Duration::from_secs(5)
    ));
}

#[test]
fn stop_leaves_no_daemon_and_no_socket() {
    let sockdir = temp_dir_with_mode("mwrs-sock-", 0o755);
    let apache = Apache::builder()
        .file("app/pid.wsgi", PID_APP)
        .directives(&format!(
            "WSGISocketPrefix {}/wsgi\nWSGIDaemonProcess mysite processes=2 threads=1\nWSGIProcessGroup mysite\nWSGIScriptAlias / {{dir}}/app/pid.wsgi\n",
            sockdir.path().display()
        ))
        .start();
    served_pid(&apache);
    let sockets = || {
        std::fs::read_dir(sockdir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".sock")
            })
            .count()
    };
    assert_eq!(
        sockets(),
        1,
        "one listener socket per group, under WSGISocketPrefix"
    );
    apache.stop(); // the harness fails if any process of the group is left
    assert_eq!(sockets(), 0, "the socket is removed at stop");
}

#[test]
fn stuck_shutdown_is_ended_by_the_reaper() {
    // An atexit handler that never returns: interpreter destruction hangs.
    let app = "import atexit, os, time\natexit.register(lambda: time.sleep(120))\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [str(os.getpid()).encode()]\n";
    let apache = Apache::builder()
        .file("app/s.wsgi", app)
        .directives("WSGIDaemonProcess g threads=2 shutdown-timeout=2 display-name=stuck-daemon\nWSGIScriptAlias / {dir}/app/s.wsgi process-group=g\n")
        .start();
    let pid: u32 = apache.get("/").text().parse().unwrap();
    assert_eq!(titled(&apache, "stuck-daemon"), vec![pid]);
    assert!(wait_until(Duration::from_secs(5), || threads_of(pid) == 5));
    let _ = std::process::Command::new("kill")
        .args(["-s", "TERM", "--", &pid.to_string()])
        .status();
    // While it hangs: the 2 + 3 threads plus the reaper.
    assert!(
        wait_until(Duration::from_secs(3), || threads_of(pid) == 6),
        "{} threads",
        threads_of(pid)
    );
    assert!(
        apache.wait_for_log("after shutdown began; forcing exit", Duration::from_secs(6)),
        "{}",
        apache.error_log()
    );
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(pid)));
    assert!(
        apache.wait_for_log("was ended by its reaper", Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
    // The replacement serves.
    assert!(replaced(&apache, pid), "{}", apache.error_log());
}

#[test]
fn sigusr1_drains_running_requests_while_a_replacement_takes_new_ones() {
    let apache = daemon_server(Mpm::Event, "processes=1 threads=4 graceful-timeout=10");
    let pid = served_pid(&apache);
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| apache.get("/sleep?2"));
        std::thread::sleep(Duration::from_millis(500));
        let _ = std::process::Command::new("kill")
            .args(["-s", "USR1", "--", &pid.to_string()])
            .status();
        // New requests keep being answered during the drain.
        let failures = load(&apache, 2, 40);
        assert!(failures.is_empty(), "{failures:?}\n{}", apache.error_log());
        let r = slow.join().unwrap();
        assert_eq!(
            r.status,
            200,
            "the running request completes: {}",
            apache.error_log()
        );
    });
    assert!(wait_until(Duration::from_secs(10), || !pid_alive(pid)));
    assert_ne!(served_pid(&apache), pid);
}

#[test]
fn graceful_restart_under_load_fails_no_request() {
    let apache = daemon_server(Mpm::Event, "processes=2 threads=4");
    served_pid(&apache);
    let failures = std::sync::Mutex::new(Vec::new());
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut served = 0usize;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut n = 0;
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        match apache.try_request("GET", "/sleep?0.05", &[], b"") {
                            Ok(r) if r.status == 200 => n += 1,
                            Ok(r) => failures
                                .lock()
                                .unwrap()
                                .push(format!("status {}", r.status)),
                            Err(e) => failures.lock().unwrap().push(e),
                        }
                    }
                    n
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        apache.graceful_restart();
        std::thread::sleep(Duration::from_millis(1500));
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        served = workers.into_iter().map(|w| w.join().unwrap()).sum();
    });
    let failures = failures.into_inner().unwrap();
    assert!(served > 20, "only {served} requests served");
    assert!(
        failures.is_empty(),
        "{} failed: {:?}\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        apache.error_log()
    );
    // The new generation's daemons serve.
    assert_eq!(apache.get("/").status, 200);
}

#[test]
fn socket_timeout_is_a_504_naming_the_group() {
    let apache = daemon_server(Mpm::Event, "processes=1 threads=2 socket-timeout=1");
    served_pid(&apache);
    let r = apache.get("/sleep?3");
    assert_eq!(r.status, 504, "{}", apache.error_log());
    assert!(
        apache.wait_for_log(
            "timed out after 1s waiting for daemon process group 'mysite'",
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
}

#[test]
fn oversized_response_headers_are_a_502_saying_so() {
    let app = "def application(environ, start_response):\n    start_response('200 OK', [('X-Big', 'x' * 20000)])\n    return [b'never']\n";
    let apache = Apache::builder()
        .file("app/h.wsgi", app)
        .directives("WSGIDaemonProcess g threads=1 header-buffer-size=8192\nWSGIScriptAlias / {dir}/app/h.wsgi process-group=g\n")
        .start();
    let r = apache.get("/");
    assert_eq!(r.status, 502, "{}", apache.error_log());
    assert!(!r.text().contains("never"));
    assert!(
        apache.wait_for_log(
            "over the limit of 8192 (header-buffer-size)",
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
}

/// A group's socket keeps one path over restarts (a new socket file is
/// renamed over it), so Apache children of an old generation reach the
/// group; WSGISocketRotation Off puts the daemon user's uid in the name as
/// mod_wsgi's Off does (`.u<uid>.`), On (the default) does not.
#[test]
fn a_group_socket_keeps_its_path_over_restarts() {
    for rotation in ["Off", "On"] {
        let sockdir = temp_dir_with_mode("mwrs-rot-", 0o755);
        let apache = Apache::builder()
            .file("app/pid.wsgi", PID_APP)
            .directives(&format!(
                "WSGISocketPrefix {}/wsgi\nWSGISocketRotation {rotation}\n\
                 WSGIDaemonProcess g processes=1 threads=2\nWSGIProcessGroup g\n\
                 WSGIScriptAlias / {{dir}}/app/pid.wsgi\n",
                sockdir.path().display()
            ))
            .start();
        let sockets = || -> Vec<(String, u64)> {
            std::fs::read_dir(sockdir.path())
                .unwrap()
                .map(|e| e.unwrap())
                .map(|e| {
                    use std::os::unix::fs::MetadataExt;
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().unwrap().ino(),
                    )
                })
                .filter(|(n, _)| n.ends_with(".sock"))
                .collect()
        };
        let first = served_pid(&apache);
        let before = sockets();
        assert_eq!(before.len(), 1, "{before:?}");
        let www = nix::unistd::User::from_name("www-data")
            .unwrap()
            .unwrap()
            .uid;
        assert!(before[0].0.ends_with(".g.sock"), "{before:?}");
        assert_eq!(
            before[0].0.contains(&format!(".u{www}.")),
            rotation == "Off",
            "{rotation}: {before:?}"
        );
        apache.graceful_restart();
        assert!(
            wait_until(Duration::from_secs(10), || served_pid(&apache) != first),
            "{}",
            apache.error_log()
        );
        let after = sockets();
        assert_eq!(after.len(), 1, "{rotation}: {after:?}");
        assert_eq!(after[0].0, before[0].0, "the same path");
        assert_ne!(after[0].1, before[0].1, "a new socket file in it");
        apache.stop();
        assert!(sockets().is_empty(), "the socket is removed at stop");
    }
}

/// WSGIAcceptMutex has nothing to choose (the kernel wakes one daemon
/// thread per connection): said once at startup at info level, not warned
/// about as a feature missing, and the daemons serve.
#[test]
fn accept_mutex_is_explained_at_startup() {
    let apache = Apache::builder()
        .file("app/pid.wsgi", PID_APP)
        .directives(
            "LogLevel info\nWSGIAcceptMutex flock\nWSGIDaemonProcess g processes=2 threads=1\n\
             WSGIProcessGroup g\nWSGIScriptAlias / {dir}/app/pid.wsgi\n",
        )
        .start();
    served_pid(&apache);
    assert!(
        apache.wait_for_log(
            "WSGIAcceptMutex flock: daemon processes need no accept mutex",
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
    assert!(
        !apache
            .error_log()
            .contains("WSGIAcceptMutex is accepted but not"),
        "{}",
        apache.error_log()
    );
}

/// The application's lines during a request in a daemon read as C
/// mod_wsgi's daemon writes them: the client as `[remote ADDR:PORT]`, then
/// `[script PATH]`, then the text.
#[test]
fn application_log_lines_name_the_remote_client_and_script() {
    let app = "import sys\ndef application(environ, start_response):\n    print('said by print')\n    environ['wsgi.errors'].write('said to wsgi.errors\\n')\n    start_response('200 OK', [])\n    return [b'ok']\n";
    let apache = Apache::builder()
        .file("app/say.wsgi", app)
        .directives(
            "WSGIDaemonProcess g threads=1\nWSGIScriptAlias / {dir}/app/say.wsgi process-group=g\n",
        )
        .start();
    assert_eq!(apache.get("/").status, 200);
    let script = format!("[script {}/app/say.wsgi]", apache.dir.display());
    for text in ["said by print", "said to wsgi.errors"] {
        assert!(
            apache.wait_for_log(text, Duration::from_secs(5)),
            "{}",
            apache.error_log()
        );
        let log = apache.error_log();
        let line = log.lines().find(|l| l.contains(text)).unwrap();
        assert!(
            line.contains("[wsgi:error]")
                && line.contains("[remote 127.0.0.1:")
                && line.ends_with(&format!("{script} {text}")),
            "{line}"
        );
    }
}
