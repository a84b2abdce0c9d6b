//! Application groups against a real Apache: each group name is its own
//! Python interpreter in the process serving the request (an Apache child in
//! embedded mode, a daemon process in daemon mode), %{GLOBAL} is the main
//! one, thread states persist per (thread, interpreter), extension modules
//! that refuse sub-interpreters are reported, and sub-interpreters end
//! cleanly (atexit handlers run) when the process exits.

mod common;
use common::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A module shared by every script of an interpreter: its state tells
/// interpreters apart.
const SHARED_STATE: &str = r#"
import threading
hits = 0
local = threading.local()
"#;

/// Counts requests in its interpreter (module state) and on its thread
/// (threading.local), and says where it runs.
const STATE_APP: &str = r#"
import os, sys, threading, mod_wsgi
import shared_state

def application(environ, start_response):
    shared_state.hits += 1
    local = shared_state.local
    local.n = getattr(local, "n", 0) + 1
    out = {
        "hits": shared_state.hits,
        "local": local.n,
        "thread": threading.get_ident(),
        "pid": os.getpid(),
        "group": mod_wsgi.application_group,
        "environ_group": environ["mod_wsgi.application_group"],
        "interpreter": id(sys.modules),
    }
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["".join("%s=%s\n" % kv for kv in out.items()).encode()]
"#;

/// One process, one request thread: embedded prefork with a single child.
const ONE_PREFORK_CHILD: &str = "StartServers 1\nMinSpareServers 1\nMaxSpareServers 1\n\
     ServerLimit 1\nMaxRequestWorkers 1\n";

/// The routes of the group tests: /a and /b default to %{RESOURCE}; the
/// others pick their group through the alias option or a Location.
const GROUP_ROUTES: &str = "\
WSGIScriptAlias /a {dir}/app/a.wsgi\n\
WSGIScriptAlias /b {dir}/app/b.wsgi\n\
WSGIScriptAlias /g1 {dir}/app/a.wsgi application-group=%{GLOBAL}\n\
WSGIScriptAlias /g2 {dir}/app/b.wsgi application-group=%{GLOBAL}\n\
WSGIScriptAlias /n1 {dir}/app/a.wsgi application-group=shop\n\
WSGIScriptAlias /n2 {dir}/app/b.wsgi application-group=shop\n\
WSGIScriptAlias /s {dir}/app/a.wsgi\n\
WSGIScriptAlias /e {dir}/app/b.wsgi\n\
<Location /s>\n    WSGIApplicationGroup %{SERVER}\n</Location>\n\
SetEnv APPGROUP from-env\n\
<Location /e>\n    WSGIApplicationGroup %{ENV:APPGROUP}\n</Location>\n";

fn group_server(mode_directives: &str, mpm: Mpm) -> Apache {
    Apache::builder()
        .mpm(mpm)
        .file("lib/shared_state.py", SHARED_STATE)
        .file("app/a.wsgi", STATE_APP)
        .file("app/b.wsgi", STATE_APP)
        .directives(mode_directives)
        .directives(GROUP_ROUTES)
        .start()
}

/// The same expectations in embedded and daemon mode: one process and one
/// request thread serve everything, so module state and threading.local
/// show which interpreter (and thread state) each request ran in.
fn check_groups(apache: &Apache, mode: &str) {
    let port = apache.port;
    let server = format!("127.0.0.1:{port}");
    let seq = [
        // path, group, hits in that interpreter, threading.local count
        ("/a", format!("{server}|/a"), 1, 1),
        ("/a", format!("{server}|/a"), 2, 2),
        ("/b", format!("{server}|/b"), 1, 1),
        ("/g1", String::new(), 1, 1),
        ("/g2", String::new(), 2, 2),
        ("/n1", "shop".to_string(), 1, 1),
        ("/n2", "shop".to_string(), 2, 2),
        ("/s", server.clone(), 1, 1),
        ("/e", "from-env".to_string(), 1, 1),
        ("/a", format!("{server}|/a"), 3, 3),
        ("/g1", String::new(), 3, 3),
        ("/b", format!("{server}|/b"), 2, 2),
    ];
    let mut pids = std::collections::BTreeSet::new();
    let mut threads = std::collections::BTreeSet::new();
    let mut interpreters: HashMap<String, String> = HashMap::new();
    for (path, group, hits, local) in &seq {
        let f = get_fields(apache, path);
        let at = format!("{mode} {path}: {f:?}");
        assert_eq!(&f["group"], group, "mod_wsgi.application_group, {at}");
        assert_eq!(&f["environ_group"], group, "environ, {at}");
        assert_eq!(f["hits"], hits.to_string(), "module state, {at}");
        assert_eq!(
            f["local"],
            local.to_string(),
            "threading.local did not survive between requests of one thread, {at}"
        );
        pids.insert(f["pid"].clone());
        threads.insert(f["thread"].clone());
        let known = interpreters
            .entry(group.clone())
            .or_insert_with(|| f["interpreter"].clone());
        assert_eq!(known, &f["interpreter"], "one interpreter per group, {at}");
    }
    assert_eq!(pids.len(), 1, "{mode}: one process serves all: {pids:?}");
    assert_eq!(
        threads.len(),
        1,
        "{mode}: one thread serves all: {threads:?}"
    );
    let distinct: std::collections::BTreeSet<_> = interpreters.values().collect();
    assert_eq!(
        distinct.len(),
        interpreters.len(),
        "{mode}: groups share an interpreter: {interpreters:?}"
    );
    let log = apache.error_log();
    assert!(
        log.contains(&format!(
            "created sub-interpreter for application group '{server}|/a'"
        )),
        "{mode}: {log}"
    );
}

#[test]
fn application_groups_in_embedded_mode() {
    let apache = group_server(
        &format!("{ONE_PREFORK_CHILD}WSGIPythonPath {{dir}}/lib\n"),
        Mpm::Prefork,
    );
    check_groups(&apache, "embedded");
}

#[test]
fn application_groups_in_daemon_mode() {
    let apache = group_server(
        "WSGIDaemonProcess g processes=1 threads=1 python-path={dir}/lib\n\
         WSGIProcessGroup g\n",
        Mpm::Event,
    );
    check_groups(&apache, "daemon");
}

#[test]
fn groups_are_separate_under_a_threaded_mpm() {
    // Many threads, many processes: the interpreter still follows the group.
    let apache = group_server("WSGIPythonPath {dir}/lib\n", Mpm::Event);
    let port = apache.port;
    for _ in 0..10 {
        for (path, group) in [
            ("/a", format!("127.0.0.1:{port}|/a")),
            ("/g1", String::new()),
            ("/n2", "shop".into()),
        ] {
            let f = get_fields(&apache, path);
            assert_eq!(f["group"], group, "{path}: {f:?}");
        }
    }
}

/// Imports [`rust_extension`]: pyo3 lets an extension module load in one
/// interpreter of a process only.
fn rust_extension_app() -> String {
    format!(
        r#"
import {} as rust
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("loaded=%s\n" % rust.__name__).encode()]
"#,
        rust_extension()
    )
}

/// A pyo3-built extension module: the Rust part of cryptography; on a
/// free-threaded Python, for which cryptography has no build (its cffi
/// refuses 3.13t), pydantic-core's, which has one. (rpds-py's 3.13t build
/// does not refuse a sub-interpreter: it fails there registering its types
/// with the main interpreter's abc, a TypeError that names no interpreter.)
fn rust_extension() -> &'static str {
    if common::python::free_threaded() {
        "pydantic_core._pydantic_core"
    } else {
        "cryptography.hazmat.bindings._rust"
    }
}

fn check_refused_extension(apache: &Apache, mode: &str) {
    let port = apache.port;
    let rust_extension = rust_extension();
    // First in the main interpreter: that works.
    let f = get_fields(apache, "/global");
    assert_eq!(f["loaded"], rust_extension, "{mode}");
    // Then in a sub-interpreter of the same process: refused, reported once.
    for _ in 0..2 {
        let r = apache.get("/sub");
        assert_eq!(r.status, 500, "{mode}: {}", r.text());
    }
    let needle = format!(
        "Python extension module '{rust_extension}' refuses to load in the sub-interpreter of application group '127.0.0.1:{port}|/sub'"
    );
    assert!(
        apache.wait_for_log(&needle, Duration::from_secs(5)),
        "{mode}: {}",
        apache.error_log()
    );
    let log = apache.error_log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&needle)).collect();
    assert_eq!(lines.len(), 1, "{mode}: one line per module: {lines:#?}");
    assert!(
        lines[0].contains("use 'WSGIApplicationGroup %{GLOBAL}'"),
        "{mode}: {}",
        lines[0]
    );
    // The traceback of the failed request carries the hint as well.
    assert!(
        log.contains("only works in the main interpreter: use WSGIApplicationGroup %{GLOBAL}"),
        "{mode}: {log}"
    );
}

/// [`rust_extension`] for the Python under test: Debian's
/// python3-cryptography for the system's Python, PyPI's cryptography (or
/// pydantic-core, as a wheel) in a virtualenv (made the Python home) for
/// another.
fn rust_extension_home() -> (String, String) {
    if !common::python::is_other() {
        return (common::python::SYSTEM.to_string(), String::new());
    }
    let venv = if common::python::free_threaded() {
        common::venv::ensure_venv(
            "pydantic-core-venv",
            &["--only-binary=:all:", "pydantic-core"],
        )
    } else {
        common::venv::ensure_venv("cryptography-venv", &["cryptography"])
    };
    (
        venv.join("bin/python").display().to_string(),
        format!("WSGIPythonHome {}\n", venv.display()),
    )
}

fn refusal_server(mode_directives: &str, mpm: Mpm) -> Apache {
    let (python, home) = rust_extension_home();
    let probe = std::process::Command::new(&python)
        .args(["-c", &format!("import {}", rust_extension())])
        .output()
        .unwrap_or_else(|e| panic!("run {python}: {e}"));
    assert!(
        probe.status.success(),
        "this test needs {} (a pyo3-built extension; Debian's python3-cryptography for /usr/bin/python3) for {python}: {}",
        rust_extension(),
        String::from_utf8_lossy(&probe.stderr)
    );
    Apache::builder()
        .mpm(mpm)
        .file("app/rust.wsgi", &rust_extension_app())
        .directives(&home)
        .directives(mode_directives)
        .directives(
            "WSGIScriptAlias /global {dir}/app/rust.wsgi application-group=%{GLOBAL}\n\
             WSGIScriptAlias /sub {dir}/app/rust.wsgi\n",
        )
        .start()
}

#[test]
fn extension_refusing_sub_interpreters_is_reported_embedded() {
    let apache = refusal_server(ONE_PREFORK_CHILD, Mpm::Prefork);
    check_refused_extension(&apache, "embedded");
}

#[test]
fn extension_refusing_sub_interpreters_is_reported_daemon() {
    let apache = refusal_server(
        "WSGIDaemonProcess g processes=1 threads=2\nWSGIProcessGroup g\n",
        Mpm::Event,
    );
    check_refused_extension(&apache, "daemon");
}

/// Registers an atexit handler in its (sub-)interpreter; /thread also
/// starts a daemon thread that never ends.
const ATEXIT_APP: &str = r#"
import atexit, os, threading, time, mod_wsgi
MARKER_DIR = open(os.path.join(os.path.dirname(__file__), "marker_dir")).read().strip()
def goodbye():
    with open(os.path.join(MARKER_DIR, "atexit-%d" % os.getpid()), "w") as f:
        f.write("ran in %r" % mod_wsgi.application_group)
atexit.register(goodbye)
def spin():
    while True:
        time.sleep(0.01)
def application(environ, start_response):
    if environ["PATH_INFO"] == "/thread":
        threading.Thread(target=spin, daemon=True).start()
    start_response("200 OK", [])
    return [("pid=%d\n" % os.getpid()).encode()]
"#;

/// Serves `path` from a sub-interpreter, stops Apache, and returns what the
/// atexit handler wrote and the error log of the run.
fn atexit_in_sub_interpreter(
    mode_directives: &str,
    mpm: Mpm,
    path: &str,
) -> (Option<String>, String) {
    let markers = temp_dir_with_mode("mwsgi-interp-", 0o777);
    let apache = Apache::builder()
        .mpm(mpm)
        .file("app/exit.wsgi", ATEXIT_APP)
        .file("app/marker_dir", &markers.path().display().to_string())
        .directives(mode_directives)
        .directives("WSGIScriptAlias /x {dir}/app/exit.wsgi application-group=exiting\n")
        .start();
    let f = get_fields(&apache, &format!("/x{path}"));
    let marker = markers.path().join(format!("atexit-{}", f["pid"]));
    assert!(!marker.exists(), "atexit ran before the process exited");
    assert!(apache.signal("TERM"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !apache.pids().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let written = wait_for_file(&marker, Duration::from_secs(5));
    (written, apache.error_log())
}

fn assert_clean_exit(log: &str, what: &str) {
    for bad in [
        "Fatal Python error",
        "Segmentation fault",
        "exit signal",
        "panicked",
    ] {
        assert!(!log.contains(bad), "{what}: '{bad}' in the log:\n{log}");
    }
}

#[test]
fn sub_interpreters_end_at_exit_running_atexit_handlers() {
    for (mode, directives, mpm) in [
        ("embedded", ONE_PREFORK_CHILD.to_string(), Mpm::Prefork),
        (
            "daemon",
            "WSGIDaemonProcess g processes=1 threads=2\nWSGIProcessGroup g\n".to_string(),
            Mpm::Event,
        ),
    ] {
        let (written, log) = atexit_in_sub_interpreter(&directives, mpm, "");
        assert_eq!(
            written.as_deref(),
            Some("ran in 'exiting'"),
            "{mode}:\n{log}"
        );
        assert_clean_exit(&log, mode);
        assert!(!log.contains("Python not finalized"), "{mode}:\n{log}");
    }
}

#[test]
fn sub_interpreter_with_live_daemon_thread_still_runs_atexit() {
    // A daemon thread of the application cannot be stopped: the
    // interpreter is left alone (deleting the thread's state would crash
    // it), but the atexit handlers run and the process exits cleanly.
    for (mode, directives, mpm) in [
        ("embedded", ONE_PREFORK_CHILD.to_string(), Mpm::Prefork),
        (
            "daemon",
            "WSGIDaemonProcess g processes=1 threads=2\nWSGIProcessGroup g\n".to_string(),
            Mpm::Event,
        ),
    ] {
        let (written, log) = atexit_in_sub_interpreter(&directives, mpm, "/thread");
        assert_eq!(
            written.as_deref(),
            Some("ran in 'exiting'"),
            "{mode}:\n{log}"
        );
        assert_clean_exit(&log, mode);
        assert!(
            log.contains("application group 'exiting' still runs 1 thread of its own"),
            "{mode}:\n{log}"
        );
    }
}

/// `<WSGIInterpreterOptions>`: the sections matching an interpreter add
/// their WSGIPythonPath after the server's and set its stream restrictions;
/// other interpreters keep the server-wide settings. In embedded mode and
/// in a daemon group (process-group= selects it).
#[test]
fn interpreter_options_sections_apply_per_interpreter() {
    let app = r#"
import sys
def application(environ, start_response):
    lines = ["group=%s" % environ["mod_wsgi.application_group"]]
    lines.append("extra=%s" % ",".join(p.rsplit("/", 1)[1] for p in sys.path if "/extra-" in p))
    try:
        print("stdout works")
        lines.append("stdout=ok")
    except OSError as e:
        lines.append("stdout=%s" % e)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode()]
"#;
    let apache = Apache::builder()
        .file("app/o.wsgi", app)
        .file("extra-all/.keep", "")
        .file("extra-a/.keep", "")
        .file("extra-daemon/.keep", "")
        .directives(
            "WSGIPythonPath {dir}/extra-all\n\
             <WSGIInterpreterOptions application-group=a>\n\
             WSGIPythonPath {dir}/extra-a\n\
             WSGIRestrictStdout On\n\
             </WSGIInterpreterOptions>\n\
             <WSGIInterpreterOptions process-group=d>\n\
             WSGIPythonPath {dir}/extra-daemon\n\
             </WSGIInterpreterOptions>\n\
             WSGIDaemonProcess d threads=1\n\
             WSGIScriptAlias /a {dir}/app/o.wsgi application-group=a\n\
             WSGIScriptAlias /b {dir}/app/o.wsgi application-group=b\n\
             WSGIScriptAlias /d {dir}/app/o.wsgi application-group=a process-group=d\n",
        )
        .start();
    let body = |path: &str| {
        let r = apache.get(path);
        assert_eq!(r.status, 200, "{path}: {}", apache.error_log());
        r.text()
    };
    assert_eq!(
        body("/a"),
        "group=a\nextra=extra-all,extra-a\nstdout=sys.stdout access restricted by mod_wsgi"
    );
    assert_eq!(body("/b"), "group=b\nextra=extra-all\nstdout=ok");
    // In the daemon the process-group section matches the main interpreter
    // too, and a sub-interpreter starts from the main one's sys.path (as
    // CPython makes it, with mod_wsgi too): extra-daemon is there before
    // the section for application group a adds extra-a.
    assert_eq!(
        body("/d"),
        "group=a\nextra=extra-all,extra-daemon,extra-a\nstdout=sys.stdout access restricted by mod_wsgi"
    );
}

/// %{RESOURCE} keeps the case of the URL as mod_wsgi 6 does on Linux
/// (WSGICaseSensitivity On, the default); WSGICaseSensitivity Off lowers
/// it, taking paths that differ in case as one (as mod_wsgi 4 always did).
#[test]
fn case_sensitivity_decides_the_resource_group_name() {
    for (setting, expected) in [
        ("", "/MixedCase"),
        ("WSGICaseSensitivity Off\n", "/mixedcase"),
    ] {
        let apache = Apache::builder()
            .file("app/state.wsgi", STATE_APP)
            .file("app/shared_state.py", SHARED_STATE)
            .directives(&format!(
                "{setting}WSGIPythonPath {{dir}}/app\nWSGIScriptAlias /MixedCase {{dir}}/app/state.wsgi\n"
            ))
            .start();
        let f = get_fields(&apache, "/MixedCase/more");
        assert_eq!(
            f["group"],
            format!("127.0.0.1:{}|{expected}", apache.port),
            "{setting}"
        );
    }
}
