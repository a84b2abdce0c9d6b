//! Around one request, as mod_wsgi 6 does it, in embedded and daemon mode:
//! `mod_wsgi.RequestTimeout` (a 504 before the headers, a cut response
//! after, an info line instead of a traceback), the log lines of
//! exceptions and SystemExit, and script (re)loading (the Loading line,
//! `__mtime__`, `reload_required()`).

mod common;
use common::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Embedded,
    Daemon,
}

const MODES: [Mode; 2] = [Mode::Embedded, Mode::Daemon];

/// `app/a.wsgi` (plus `files`) at `/`, in the main interpreter of one
/// process: one Apache child of ten threads, or one daemon process of four
/// threads with `daemon_options`. Other scripts go at `/NAME` for
/// `app/NAME.wsgi`.
fn server(mode: Mode, files: &[(&str, &str)], daemon_options: &str) -> Apache {
    let mut builder = Apache::builder();
    let mut aliases = String::new();
    for (name, content) in files {
        builder = builder.file(&format!("app/{name}.wsgi"), content);
        let mount = if *name == "a" {
            "/".to_string()
        } else {
            format!("/{name}")
        };
        aliases = format!("WSGIScriptAlias {mount} {{dir}}/app/{name}.wsgi\n{aliases}");
    }
    let placement = match mode {
        Mode::Embedded => "ServerLimit 1\nStartServers 1\nMaxRequestWorkers 10\n\
                           MinSpareThreads 1\nMaxSpareThreads 10\n"
            .to_string(),
        Mode::Daemon => format!(
            "WSGIDaemonProcess g processes=1 threads=4 {daemon_options}\nWSGIProcessGroup g\n"
        ),
    };
    builder
        .directives(&format!(
            "{placement}WSGIApplicationGroup %{{GLOBAL}}\n{aliases}"
        ))
        .start()
}

/// How mod_wsgi names where the scripts run.
fn context(mode: Mode) -> &'static str {
    match mode {
        Mode::Embedded => "main interpreter in embedded mode",
        Mode::Daemon => "main interpreter of daemon process 'g'",
    }
}

fn script(apache: &Apache, name: &str) -> String {
    apache
        .dir
        .join(format!("app/{name}.wsgi"))
        .display()
        .to_string()
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// As `count`, among error lines only (daemon mode's worker repeats a
/// failure's first line at info level).
fn count_errors(log: &str, needle: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("[wsgi:error]") && l.contains(needle))
        .count()
}

/// Index of the first log line containing `needle`.
fn line_of(log: &str, needle: &str) -> Option<usize> {
    log.lines().position(|l| l.contains(needle))
}

/// The modification time of a file as mod_wsgi keeps it (APR microseconds).
fn mtime_us(path: &str) -> i64 {
    std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn set_mtime(path: &str, when: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

// ------------------------------------------------------- RequestTimeout

const TIMEOUT_APP: &str = r#"
import os, mod_wsgi
def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/early":
        raise mod_wsgi.RequestTimeout()
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/started":
        raise mod_wsgi.RequestTimeout()
    if path == "/late":
        return late()
    return [str(os.getpid()).encode()]

def late():
    yield b"first chunk\n"
    raise mod_wsgi.RequestTimeout()
    yield b"never sent\n"
"#;

#[test]
fn request_timeout_before_the_headers_is_a_504_with_an_info_line() {
    for mode in MODES {
        let apache = server(mode, &[("a", TIMEOUT_APP)], "");
        let pid = apache.get("/").text();
        let path = script(&apache, "a");
        // Raised before start_response(), and after it but before any
        // output: the headers were not sent either way.
        for url in ["/early", "/started"] {
            let r = apache.get(url);
            assert_eq!(r.status, 504, "{mode:?} {url}: {}", apache.error_log());
        }
        let line =
            format!("[script {path}] Request interrupted by RequestTimeout; thread recovered.");
        assert!(
            apache.wait_for_log(&line, Duration::from_secs(5)),
            "{mode:?}: {}",
            apache.error_log()
        );
        let log = apache.error_log();
        assert_eq!(count(&log, &line), 2, "{mode:?}: {log}");
        assert!(
            log.lines()
                .any(|l| l.contains(&line) && l.contains(context(mode))),
            "{mode:?}: {log}"
        );
        assert!(!log.contains("Traceback"), "{mode:?}: {log}");
        // The thread recovered: the same process serves the next request.
        assert_eq!(apache.get("/").text(), pid, "{mode:?}");
    }
}

#[test]
fn request_timeout_after_the_first_chunk_cuts_the_response() {
    for mode in MODES {
        let apache = server(mode, &[("a", TIMEOUT_APP)], "");
        let path = script(&apache, "a");
        let data = apache.raw(b"GET /late HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let text = String::from_utf8_lossy(&data);
        assert!(text.starts_with("HTTP/1.1 200 "), "{mode:?}: {text}");
        assert!(text.contains("first chunk\n"), "{mode:?}: {text}");
        assert!(!text.contains("never sent"), "{mode:?}: {text}");
        let line = format!(
            "[script {path}] Request interrupted by RequestTimeout after headers sent; response truncated."
        );
        assert!(
            apache.wait_for_log(&line, Duration::from_secs(5)),
            "{mode:?}: {}",
            apache.error_log()
        );
        let log = apache.error_log();
        assert!(!log.contains("Traceback"), "{mode:?}: {log}");
        assert!(!log.contains("exception raised"), "{mode:?}: {log}");
    }
}

#[test]
fn injected_request_timeout_is_a_504_and_the_daemon_serves_on() {
    // request-timeout with interrupt-timeout raises mod_wsgi.RequestTimeout
    // in a request that runs too long; one that does not catch it ends
    // with a 504, and the process is not restarted.
    let app = r#"
import os, time
def application(environ, start_response):
    if environ["PATH_INFO"] == "/loop":
        while True:
            time.sleep(0.05)
    start_response("200 OK", [])
    return [str(os.getpid()).encode()]
"#;
    let apache = server(
        Mode::Daemon,
        &[("a", app)],
        "request-timeout=1 interrupt-timeout=20",
    );
    let pid = apache.get("/").text();
    let r = apache.get("/loop");
    assert_eq!(r.status, 504, "{}", apache.error_log());
    assert!(
        apache.wait_for_log(
            "Request interrupted by RequestTimeout; thread recovered.",
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
    assert!(!apache.error_log().contains("Traceback"));
    assert_eq!(apache.get("/").text(), pid, "no restart was needed");
}

// ------------------------------------------------- exception log lines

const RAISING_APP: &str = r#"
import os
def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/value":
        raise ValueError("boom from the app")
    if path == "/exit":
        raise SystemExit(3)
    start_response("200 OK", [])
    return [str(os.getpid()).encode()]
"#;

#[test]
fn exceptions_and_system_exit_are_logged_with_mod_wsgi_lines() {
    for mode in MODES {
        let apache = server(
            mode,
            &[
                ("a", RAISING_APP),
                ("exits", "raise SystemExit(1)\n"),
                ("divides", "x = 1 / 0\n"),
                ("broken", "def application(:\n"),
            ],
            "",
        );
        let ctx = context(mode);
        let pid = apache.get("/").text();
        for url in ["/value", "/exit", "/exits", "/divides", "/broken"] {
            let r = apache.get(url);
            assert_eq!(r.status, 500, "{mode:?} {url}: {}", apache.error_log());
            assert!(!r.text().contains("boom"), "{mode:?}");
        }
        let a = script(&apache, "a");
        let exits = script(&apache, "exits");
        let divides = script(&apache, "divides");
        let broken = script(&apache, "broken");
        let expected = [
            format!(
                "WSGI0174: [script {a}] ValueError exception raised processing WSGI script '{a}' for {ctx}."
            ),
            format!(
                "WSGI0175: [script {a}] SystemExit exception raised by WSGI script '{a}' for {ctx}; ignored."
            ),
            format!(
                "WSGI0107: SystemExit exception raised when doing exec of Python script file '{exits}'."
            ),
            format!("WSGI0109: Unable to execute Python script file '{divides}'."),
            format!(
                "WSGI0174: ZeroDivisionError exception raised processing WSGI script '{divides}' for {ctx}."
            ),
            format!("WSGI0105: Could not read or compile WSGI script '{broken}' for {ctx}."),
            format!(
                "WSGI0174: SyntaxError exception raised processing WSGI script '{broken}' for {ctx}."
            ),
        ];
        assert!(
            apache.wait_for_log(&expected[6], Duration::from_secs(5)),
            "{mode:?}: {}",
            apache.error_log()
        );
        let log = apache.error_log();
        for line in &expected {
            assert_eq!(count_errors(&log, line), 1, "{mode:?}: {line}\n{log}");
        }
        // The headline comes first, then the traceback, line by line.
        let headline = line_of(&log, &expected[0]).unwrap();
        let traceback = line_of(&log, "Traceback (most recent call last):").unwrap();
        let last = line_of(&log, "ValueError: boom from the app").unwrap();
        assert!(headline < traceback && traceback < last, "{mode:?}: {log}");
        assert!(
            log.lines()
                .nth(headline)
                .is_some_and(|l| l.contains("[wsgi:error]") && l.contains("(pid ")),
            "{mode:?}: {log}"
        );
        // SystemExit from a request does not end the process.
        assert_eq!(apache.get("/").text(), pid, "{mode:?}");
    }
}

// ------------------------------------------------------- (re)loading

/// Slow to load, so that requests arriving together would each load it
/// if nothing made them wait for the first.
const LOADING_APP: &str = r#"
import os, time, uuid
time.sleep(0.5)
TOKEN = uuid.uuid4().hex
def application(environ, start_response):
    start_response("200 OK", [])
    return [f"{os.getpid()} {__mtime__} {TOKEN}".encode()]
"#;

/// (pid, __mtime__, load token) of one response.
fn loaded(apache: &Apache) -> (String, i64, String) {
    let r = apache.get("/");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    let text = r.text();
    let mut parts = text.split(' ');
    (
        parts.next().unwrap().to_string(),
        parts.next().unwrap().parse().unwrap(),
        parts.next().unwrap().to_string(),
    )
}

#[test]
fn a_script_loads_once_with_its_mtime_and_again_when_touched() {
    for mode in MODES {
        let apache = server(mode, &[("a", LOADING_APP)], "");
        let path = script(&apache, "a");
        let loading = format!("Loading WSGI script '{path}' into {}.", context(mode));
        let reloading = format!("Reloading WSGI script '{path}' into {}.", context(mode));
        // Requests arriving together at the fresh process: one load.
        let first: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| loaded(&apache))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(first.iter().all(|r| *r == first[0]), "{mode:?}: {first:?}");
        let log = apache.error_log();
        assert_eq!(count(&log, &loading), 1, "{mode:?}: {log}");
        assert_eq!(count(&log, "Reloading WSGI script"), 0, "{mode:?}: {log}");
        // __mtime__ is the file's modification time in microseconds.
        assert_eq!(first[0].1, mtime_us(&path), "{mode:?}");
        assert_eq!(loaded(&apache), first[0], "{mode:?}: still the same load");

        set_mtime(&path, SystemTime::now() + Duration::from_secs(10));
        let (_, mtime, token) = loaded(&apache);
        assert_eq!(mtime, mtime_us(&path), "{mode:?}");
        assert_ne!(token, first[0].2, "{mode:?}: loaded again");
        let log = apache.error_log();
        assert_eq!(count(&log, &reloading), 1, "{mode:?}: {log}");
        assert_eq!(count(&log, &loading), 1, "{mode:?}: {log}");
    }
}

/// reload_required() answers from files next to the script: True while
/// `reload-now` exists, raising while `reload-raises` exists; each
/// argument it gets is appended to `reload-args`.
const RELOAD_REQUIRED_APP: &str = r#"
import os, uuid
HERE = os.path.dirname(__file__)
TOKEN = uuid.uuid4().hex
def reload_required(resource):
    with open(os.path.join(HERE, "reload-args"), "a") as f:
        f.write(resource + "\n")
    if os.path.exists(os.path.join(HERE, "reload-raises")):
        raise RuntimeError("reload check failed")
    return os.path.exists(os.path.join(HERE, "reload-now"))
def application(environ, start_response):
    start_response("200 OK", [])
    return [f"{os.getpid()} {__mtime__} {TOKEN}".encode()]
"#;

#[test]
fn reload_required_true_reloads_without_a_file_change() {
    for mode in MODES {
        let apache = server(mode, &[("a", RELOAD_REQUIRED_APP)], "");
        let path = script(&apache, "a");
        let app_dir = apache.dir.join("app");
        // Writable by the user the application runs as.
        let args_file = app_dir.join("reload-args");
        std::fs::write(&args_file, "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&args_file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let mtime = mtime_us(&path);
        let first = loaded(&apache);
        assert_eq!(loaded(&apache), first, "{mode:?}: False keeps the module");

        // Raising: logged, and the module is kept.
        std::fs::write(app_dir.join("reload-raises"), "").unwrap();
        assert_eq!(loaded(&apache), first, "{mode:?}");
        std::fs::remove_file(app_dir.join("reload-raises")).unwrap();
        let log = apache.error_log();
        assert!(
            log.contains(&format!(
                "RuntimeError exception raised processing WSGI script '{path}'"
            )) && log.contains("RuntimeError: reload check failed"),
            "{mode:?}: {log}"
        );

        // True: loaded again, though the file did not change.
        std::fs::write(app_dir.join("reload-now"), "").unwrap();
        let (pid, reloaded_mtime, token) = loaded(&apache);
        std::fs::remove_file(app_dir.join("reload-now")).unwrap();
        assert_eq!(pid, first.0, "{mode:?}: the same process reloaded it");
        assert_ne!(token, first.2, "{mode:?}: loaded again");
        assert_eq!((reloaded_mtime, mtime_us(&path)), (mtime, mtime));
        let log = apache.error_log();
        assert_eq!(
            count(
                &log,
                &format!("Reloading WSGI script '{path}' into {}.", context(mode))
            ),
            1,
            "{mode:?}: {log}"
        );
        // Its argument is the file Apache matched (here the script).
        let args = std::fs::read_to_string(&args_file).unwrap();
        assert!(
            args.lines().count() >= 3 && args.lines().all(|l| l == path),
            "{mode:?}: {args}"
        );
        match mode {
            Mode::Embedded => {
                assert_eq!(loaded(&apache).2, token, "{mode:?}: kept from now on");
            }
            Mode::Daemon => {
                // As mod_wsgi restarts the daemon process for it, ours
                // recycles: a fresh process takes over.
                assert!(
                    apache.wait_for_log("asked for a reload; recycling", Duration::from_secs(5)),
                    "{}",
                    apache.error_log()
                );
                let deadline = std::time::Instant::now() + Duration::from_secs(15);
                while loaded(&apache).0 == pid {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "daemon {pid} was not recycled: {}",
                        apache.error_log()
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }
}
