//! The Python lifecycle in an Apache child: start-up settings, a virtualenv
//! as WSGIPythonHome, sys.stdin/stdout/stderr and signals inside Apache,
//! finalization at child exit, the `mod_wsgi` module and wsgi.file_wrapper.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A directory outside Apache's ServerRoot (it outlives the server) that
/// Apache's user may write to.
fn shared_dir() -> tempfile::TempDir {
    temp_dir_with_mode("mwsgi-py-", 0o777)
}

const SETTINGS_APP: &str = r#"
import os, sys
import helper_mod
def application(environ, start_response):
    try:
        assert False
        asserts = "stripped"
    except AssertionError:
        asserts = "active"
    out = {
        "optimize": sys.flags.optimize,
        "docstring": repr(helper_mod.documented.__doc__),
        "asserts": asserts,
        "hash": hash("mod_wsgi_rs hash seed"),
        "hash_randomization": sys.flags.hash_randomization,
        "warnoptions": "|".join(sys.warnoptions),
        "dont_write_bytecode": sys.dont_write_bytecode,
        "switchinterval": round(sys.getswitchinterval(), 6),
        "eggs": os.environ.get("PYTHON_EGG_CACHE", "-"),
    }
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["".join("%s=%s\n" % kv for kv in out.items()).encode()]
"#;

const HELPER: &str = "def documented():\n    \"\"\"A docstring.\"\"\"\n";

fn settings_server(extra: &str) -> Apache {
    // Python honours PYTHON* variables of Apache's environment, as with
    // mod_wsgi; empty values (= unset) keep the test's own out of the way.
    let apache = Apache::builder()
        .env("PYTHONDONTWRITEBYTECODE", "")
        .env("PYTHONOPTIMIZE", "")
        .env("PYTHONHASHSEED", "")
        .env("PYTHONWARNINGS", "")
        .file("app/settings.wsgi", SETTINGS_APP)
        .file("lib/helper_mod.py", HELPER)
        .directives(&format!(
            "WSGIPythonPath {{dir}}/lib\nWSGIScriptAlias /s {{dir}}/app/settings.wsgi\n{extra}"
        ))
        .start();
    // Let Apache's user write __pycache__ there, so only the setting decides.
    fs::set_permissions(apache.dir.join("lib"), fs::Permissions::from_mode(0o777)).unwrap();
    apache
}

fn python_hash_with_seed(seed: &str) -> String {
    let out = Command::new(common::python::interpreter())
        .args(["-c", "print(hash('mod_wsgi_rs hash seed'))"])
        .env("PYTHONHASHSEED", seed)
        .output()
        .expect("run python3");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn python_startup_directives_are_applied() {
    let apache = settings_server(
        "WSGIPythonOptimize 2\n\
         WSGIPythonHashSeed 12345\n\
         WSGIPythonWarnings ignore::DeprecationWarning\n\
         WSGIPythonWarnings error::ResourceWarning\n\
         WSGIDontWriteBytecode On\n\
         WSGISwitchInterval 0.025\n\
         WSGIPythonEggs {dir}/eggs\n",
    );
    let f = get_fields(&apache, "/s");
    assert_eq!(f["optimize"], "2", "{f:?}");
    assert_eq!(f["docstring"], "None", "-OO strips docstrings: {f:?}");
    assert_eq!(f["asserts"], "stripped", "{f:?}");
    assert_eq!(f["hash"], python_hash_with_seed("12345"), "{f:?}");
    assert_eq!(
        f["warnoptions"],
        "ignore::DeprecationWarning|error::ResourceWarning"
    );
    assert_eq!(f["dont_write_bytecode"], "True");
    assert_eq!(f["switchinterval"], "0.025");
    assert_eq!(f["eggs"], format!("{}/eggs", apache.dir.display()));
    assert!(
        !apache.dir.join("lib/__pycache__").exists(),
        "bytecode was written despite WSGIDontWriteBytecode On"
    );
    // Settings now in effect no longer warn as "not implemented".
    let log = apache.error_log();
    assert!(
        !log.contains("is accepted but not implemented yet"),
        "{log}"
    );
}

#[test]
fn python_startup_defaults() {
    let apache = settings_server("");
    let f = get_fields(&apache, "/s");
    assert_eq!(f["optimize"], "0", "{f:?}");
    assert_eq!(f["docstring"], "'A docstring.'");
    assert_eq!(f["asserts"], "active");
    assert_eq!(
        f["hash_randomization"], "1",
        "hash seed is random by default"
    );
    assert_ne!(f["hash"], python_hash_with_seed("12345"));
    assert_eq!(f["warnoptions"], "");
    assert_eq!(f["dont_write_bytecode"], "False");
    assert_eq!(f["switchinterval"], "0.005");
    assert_eq!(f["eggs"], "-");
    assert!(
        apache.dir.join("lib/__pycache__").is_dir(),
        "bytecode is written by default"
    );
}

#[test]
fn python_hash_seed_zero_disables_randomization() {
    let apache = settings_server("WSGIPythonHashSeed 0\n");
    let f = get_fields(&apache, "/s");
    assert_eq!(f["hash_randomization"], "0", "{f:?}");
    assert_eq!(f["hash"], python_hash_with_seed("0"));
}

#[test]
fn python_home_can_be_a_virtualenv() {
    let venv_root = shared_dir();
    fs::set_permissions(venv_root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let venv = venv_root.path().join("venv");
    let st = Command::new(common::python::interpreter())
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .expect("python3 -m venv");
    assert!(st.success(), "python3 -m venv failed");
    let site: PathBuf = fs::read_dir(venv.join("lib"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .expect("venv site-packages");
    fs::write(site.join("venv_only_mod.py"), "VALUE = 'from the venv'\n").unwrap();
    // Readable by Apache's user whatever the umask was.
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(venv_root.path())
        .status()
        .unwrap();
    let system = Command::new(common::python::interpreter())
        .args(["-c", "import venv_only_mod"])
        .output()
        .unwrap();
    assert!(
        !system.status.success(),
        "the module must exist only in the venv"
    );

    let app = r#"
import sys, venv_only_mod
def application(environ, start_response):
    start_response('200 OK', [])
    return [('prefix=%s\nbase=%s\nvalue=%s\n' % (sys.prefix, sys.base_prefix, venv_only_mod.VALUE)).encode()]
"#;
    let apache = Apache::builder()
        .file("app/venv.wsgi", app)
        .directives(&format!(
            "WSGIPythonHome {}\nWSGIScriptAlias /v {{dir}}/app/venv.wsgi\n",
            venv.display()
        ))
        .start();
    let f = get_fields(&apache, "/v");
    assert_eq!(f["prefix"], venv.display().to_string(), "{f:?}");
    assert_eq!(f["value"], "from the venv");
    assert_ne!(f["base"], f["prefix"]);
}

const STDIO_APP: &str = r#"
import sys
def application(environ, start_response):
    out = []
    try:
        out.append("stdin_read=%r" % sys.stdin.read())
    except OSError as e:
        out.append("stdin_error=%s" % e)
    try:
        print("print line one\nprint line two")
        sys.stdout.flush()
        out.append("stdout=ok")
    except OSError as e:
        out.append("stdout_error=%s" % e)
    sys.stderr.write("stderr line\n")
    sys.stderr.write("partial ")
    sys.stderr.write("then finished\n")
    errors = environ["wsgi.errors"]
    out.append("errors_type=%s.%s" % (type(errors).__module__, type(errors).__name__))
    out.append("errors_buffer=%s" % errors.buffer.name)
    errors.buffer.write(b"bytes through the buffer\n")
    errors.writelines(["written ", "lines\n"])
    errors.write("left without a newline")
    global KEPT
    KEPT = errors
    start_response("200 OK", [])
    return [("\n".join(out) + "\n").encode()]

KEPT = None
def kept(environ, start_response):
    try:
        KEPT.write("too late\n")
        result = "no error"
    except RuntimeError as e:
        result = str(e)
    start_response("200 OK", [])
    return [("kept=%s\n" % result).encode()]
"#;

/// The error-log lines containing `needle`.
fn log_lines(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

#[test]
fn stdout_and_stderr_go_to_the_error_log_line_by_line() {
    // A virtual host with its own error log: output written while one of
    // its requests runs belongs there, tagged with the client.
    let apache = Apache::builder()
        .file("app/stdio.wsgi", STDIO_APP)
        .directives(
            "<VirtualHost 127.0.0.1:{port}>\n\
             ServerName vhost.test\n\
             ErrorLog {dir}/vhost_error.log\n\
             WSGIScriptAlias /io {dir}/app/stdio.wsgi\n\
             </VirtualHost>\n",
        )
        .start();
    let f = get_fields(&apache, "/io");
    assert_eq!(f.get("stdout").map(String::as_str), Some("ok"), "{f:?}");
    assert_eq!(f.get("stdin_read").map(String::as_str), Some("''"), "{f:?}");
    let vhost_log = apache.dir.join("vhost_error.log");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !fs::read_to_string(&vhost_log)
        .unwrap_or_default()
        .contains("then finished")
    {
        assert!(Instant::now() < deadline, "{}", apache.error_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!apache.error_log().contains("print line one"));
    let log = fs::read_to_string(&vhost_log).unwrap();
    // As mod_wsgi 6: wsgi.errors is a text wrapper over a binary buffer,
    // everything logs at error level tagged with the request's script, and
    // a partial line is logged when the request ends.
    assert_eq!(f["errors_type"], "_io.TextIOWrapper", "{f:?}");
    assert_eq!(f["errors_buffer"], "<wsgi.errors>", "{f:?}");
    let script = format!("[script {}/app/stdio.wsgi]", apache.dir.display());
    for (text, level) in [
        ("print line one", "[wsgi:error]"),
        ("print line two", "[wsgi:error]"),
        ("stderr line", "[wsgi:error]"),
        ("partial then finished", "[wsgi:error]"),
        ("bytes through the buffer", "[wsgi:error]"),
        ("written lines", "[wsgi:error]"),
        ("left without a newline", "[wsgi:error]"),
    ] {
        let lines = log_lines(&log, text);
        assert_eq!(lines.len(), 1, "{text}: {log}");
        assert!(
            lines[0].contains(level),
            "{text} not at {level}: {}",
            lines[0]
        );
        assert!(
            lines[0].ends_with(&format!("{script} {text}")),
            "one message per line, tagged with the script: {}",
            lines[0]
        );
    }
}

/// wsgi.errors kept beyond its request refuses, as mod_wsgi's does (one
/// daemon process, so the second request finds what the first kept).
#[test]
fn wsgi_errors_kept_beyond_the_request_refuses() {
    let apache = Apache::builder()
        .file("app/stdio.wsgi", STDIO_APP)
        .directives(
            "WSGIDaemonProcess one processes=1 threads=1
             WSGIScriptAlias /io {dir}/app/stdio.wsgi process-group=one application-group=%{GLOBAL}
             WSGIScriptAlias /kept {dir}/app/stdio.wsgi process-group=one application-group=%{GLOBAL} callable-object=kept
",
        )
        .start();
    get_fields(&apache, "/io");
    let f = get_fields(&apache, "/kept");
    assert_eq!(
        f["kept"], "write() called on wsgi.errors after request completed",
        "{f:?}"
    );
}

/// Each request's wsgi.errors: one a request left alone serves a later
/// one (weakly remembered here, so that remembering it keeps nothing
/// alive); one that was reconfigured, given an attribute, or whose buffer
/// the application kept, never does; a kept buffer refuses as the stream
/// does. One daemon thread, so that the requests come one after the other.
const ERRORS_REUSE_APP: &str = r#"
import weakref

LAST = [lambda: None]
KEPT = []

def application(environ, start_response):
    e = environ["wsgi.errors"]
    action = environ["QUERY_STRING"]
    reused = LAST[0]() is e
    fields = {"reused": reused, "line_buffering": e.line_buffering,
              "write_through": e.write_through, "extra": hasattr(e, "extra")}
    e.write("request %s reused=%s\n" % (action, reused))
    if action == "reconfigure":
        e.reconfigure(line_buffering=False, write_through=False)
    elif action == "attribute":
        e.extra = 1
    elif action == "keep-buffer":
        KEPT.append(e.buffer)
    elif action == "write-kept":
        try:
            KEPT[0].write(b"late\n")
            fields["kept"] = "written"
        except RuntimeError as error:
            fields["kept"] = str(error)
    e.flush()
    LAST[0] = weakref.ref(e)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["".join("%s=%s\n" % kv for kv in fields.items()).encode()]
"#;

#[test]
fn wsgi_errors_is_reused_only_when_left_as_made() {
    let apache = Apache::builder()
        .file("app/reuse.wsgi", ERRORS_REUSE_APP)
        .directives(
            "WSGIDaemonProcess one processes=1 threads=1
             WSGIScriptAlias /e {dir}/app/reuse.wsgi process-group=one application-group=%{GLOBAL}
",
        )
        .start();
    let steps = [
        ("first", "False"),
        ("plain", "True"),
        ("reconfigure", "True"),
        ("after-reconfigure", "False"),
        ("attribute", "True"),
        ("after-attribute", "False"),
        ("keep-buffer", "True"),
        ("after-keep", "False"),
        ("write-kept", "True"),
    ];
    for (action, reused) in steps {
        let f = get_fields(&apache, &format!("/e?{action}"));
        assert_eq!(f["reused"], reused, "{action}: {f:?}");
        // Whatever the stream went through before, it is as new.
        assert_eq!(f["line_buffering"], "True", "{action}: {f:?}");
        assert_eq!(f["write_through"], "True", "{action}: {f:?}");
        assert_eq!(f["extra"], "False", "{action}: {f:?}");
        if action == "write-kept" {
            assert_eq!(
                f["kept"], "write() called on wsgi.errors after request completed",
                "{f:?}"
            );
        }
    }
    // Each request's line went to the log once, as that request's.
    let log = apache.error_log();
    for (action, reused) in steps {
        let lines = log_lines(&log, &format!("request {action} reused={reused}"));
        assert_eq!(lines.len(), 1, "{action}: {log}");
    }
    assert!(!log.contains("late"), "{log}");
}

#[test]
fn restricted_stdin_and_stdout_raise() {
    let apache = Apache::builder()
        .file("app/stdio.wsgi", STDIO_APP)
        .directives(
            "WSGIRestrictStdin On\nWSGIRestrictStdout On\nWSGIScriptAlias /io {dir}/app/stdio.wsgi\n",
        )
        .start();
    let f = get_fields(&apache, "/io");
    assert_eq!(
        f.get("stdin_error").map(String::as_str),
        Some("sys.stdin access restricted by mod_wsgi"),
        "{f:?}"
    );
    assert_eq!(
        f.get("stdout_error").map(String::as_str),
        Some("sys.stdout access restricted by mod_wsgi"),
        "{f:?}"
    );
    // stderr still logs.
    assert!(apache.wait_for_log("stderr line", Duration::from_secs(5)));
    assert!(!apache.error_log().contains("print line one"));
}

const SIGNAL_APP: &str = r#"
import os, signal
def handler(signum, frame):
    pass
def application(environ, start_response):
    previous = signal.signal(signal.SIGUSR2, handler)
    installed = signal.getsignal(signal.SIGUSR2) is handler
    start_response("200 OK", [])
    return [("returned=%r\ninstalled=%s\npid=%d\n" % (previous, installed, os.getpid())).encode()]
"#;

#[test]
fn signal_registration_is_ignored_by_default() {
    // Prefork runs requests on the child's main thread, where
    // signal.signal() would otherwise succeed.
    let apache = Apache::builder()
        .mpm(Mpm::Prefork)
        .file("app/sig.wsgi", SIGNAL_APP)
        .directives("WSGIScriptAlias /sig {dir}/app/sig.wsgi\n")
        .start();
    let f = get_fields(&apache, "/sig");
    assert_eq!(f["returned"], "None", "{f:?}");
    assert_eq!(f["installed"], "False", "{f:?}");
    let needle = format!(
        "signal.signal(SIGUSR2) from the application ignored in pid {}",
        f["pid"]
    );
    assert!(
        apache.wait_for_log(&needle, Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
    let line = log_lines(&apache.error_log(), &needle).remove(0);
    assert!(line.contains("[wsgi:warn]"), "{line}");
}

#[test]
fn signal_registration_allowed_with_restrict_signal_off() {
    let apache = Apache::builder()
        .mpm(Mpm::Prefork)
        .file("app/sig.wsgi", SIGNAL_APP)
        // Python only lets the main thread of the main interpreter install
        // handlers: the application must run in %{GLOBAL}.
        .directives(
            "WSGIRestrictSignal Off\n\
             WSGIScriptAlias /sig {dir}/app/sig.wsgi application-group=%{GLOBAL}\n",
        )
        .start();
    let f = get_fields(&apache, "/sig");
    assert_eq!(f["installed"], "True", "{f:?}");
    assert!(!apache.error_log().contains("from the application ignored"));
}

const ATEXIT_APP: &str = r#"
import atexit, os
MARKER_DIR = open(os.path.join(os.path.dirname(__file__), "marker_dir")).read().strip()
def goodbye():
    with open(os.path.join(MARKER_DIR, "atexit-%d" % os.getpid()), "w") as f:
        f.write("ran")
atexit.register(goodbye)
def application(environ, start_response):
    start_response("200 OK", [])
    return [("pid=%d\n" % os.getpid()).encode()]
"#;

fn atexit_run(mpm: Mpm, extra: &str) -> (PathBuf, tempfile::TempDir) {
    let markers = shared_dir();
    let apache = Apache::builder()
        .mpm(mpm)
        .file("app/exit.wsgi", ATEXIT_APP)
        .file("app/marker_dir", &markers.path().display().to_string())
        .directives(&format!(
            "{extra}WSGIScriptAlias /x {{dir}}/app/exit.wsgi\n"
        ))
        .start();
    let f = get_fields(&apache, "/x");
    let marker = markers.path().join(format!("atexit-{}", f["pid"]));
    assert!(!marker.exists(), "atexit ran before the child exited");
    apache.stop();
    (marker, markers)
}

#[test]
fn destroy_interpreter_runs_atexit_handlers_at_child_exit() {
    for mpm in Mpm::ALL {
        let (marker, _keep) = atexit_run(mpm, "");
        assert_eq!(
            wait_for_file(&marker, Duration::from_secs(15)).as_deref(),
            Some("ran"),
            "{mpm}: atexit handler did not run at child exit"
        );
    }
}

#[test]
fn destroy_interpreter_off_skips_finalization() {
    let (marker, _keep) = atexit_run(Mpm::Event, "WSGIDestroyInterpreter Off\n");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !marker.exists(),
        "Python was finalized with WSGIDestroyInterpreter Off"
    );
}

const MODULE_APP: &str = r#"
import os, mod_wsgi
def application(environ, start_response):
    # As mod_wsgi 6: None until recording starts (tests/module_api.rs).
    mod_wsgi.start_recording_metrics()
    m = mod_wsgi.process_metrics()
    out = {
        "version": mod_wsgi.version,
        "process_group": repr(mod_wsgi.process_group),
        "application_group": repr(mod_wsgi.application_group),
        "maximum_processes": mod_wsgi.maximum_processes,
        "threads_per_process": mod_wsgi.threads_per_process,
        "server_metrics": mod_wsgi.server_metrics(),
        "metrics_pid_ok": m["pid"] == os.getpid(),
        "memory_rss_positive": m["memory_rss"] > 0,
        "threads_positive": len(m["threads"]) >= 1,
        "running_time_ok": 0 <= m["running_time"] < 600,
        "cpu_ok": m["cpu_user_time"] >= 0 and m["cpu_system_time"] >= 0,
        "environ_version": environ["mod_wsgi.version"] == mod_wsgi.version,
    }
    start_response("200 OK", [])
    return ["".join("%s=%s\n" % kv for kv in out.items()).encode()]
"#;

#[test]
fn mod_wsgi_module_describes_the_embedded_process() {
    // The harness tunes event with MaxRequestWorkers 20 / ThreadsPerChild 10
    // (2 processes of 10 threads) and prefork with MaxRequestWorkers 10.
    for (mpm, processes, threads) in [(Mpm::Event, "2", "10"), (Mpm::Prefork, "10", "1")] {
        let apache = Apache::builder()
            .mpm(mpm)
            .file("app/m.wsgi", MODULE_APP)
            .directives("WSGIScriptAlias /m {dir}/app/m.wsgi\n")
            .start();
        let f = get_fields(&apache, "/m");
        let v: Vec<&str> = env!("CARGO_PKG_VERSION").split('.').collect();
        assert_eq!(
            f["version"],
            format!("({}, {}, {})", v[0], v[1], v[2]),
            "{f:?}"
        );
        assert_eq!(f["process_group"], "''");
        // The default application group, %{RESOURCE}: a sub-interpreter
        // named after the server, port and mount point.
        assert_eq!(
            f["application_group"],
            format!("'127.0.0.1:{}|/m'", apache.port),
            "{mpm}: {f:?}"
        );
        assert_eq!(f["maximum_processes"], processes, "{mpm}: {f:?}");
        assert_eq!(f["threads_per_process"], threads, "{mpm}: {f:?}");
        assert_eq!(f["server_metrics"], "None");
        for key in [
            "metrics_pid_ok",
            "memory_rss_positive",
            "threads_positive",
            "running_time_ok",
            "cpu_ok",
            "environ_version",
        ] {
            assert_eq!(f[key], "True", "{mpm}: {key}: {f:?}");
        }
    }
}

const WRAPPER_APP: &str = r#"
import io, os
DATA = os.path.join(os.path.dirname(__file__), "data.bin")
MARKERS = open(os.path.join(os.path.dirname(__file__), "marker_dir")).read().strip()

def note(name, text):
    with open(os.path.join(MARKERS, name), "w") as f:
        f.write(text)

class Tracked(io.FileIO):
    def close(self):
        note("real-closed", "closed")
        super().close()

class NoRead(io.FileIO):
    """A real file whose read() fails: only the descriptor path can serve it."""
    def read(self, n=-1):
        raise RuntimeError("read() called: the descriptor path was not used")
    readinto = read

class FileLike:
    """Not a real file: only read() and close()."""
    def __init__(self, data):
        self.data = io.BytesIO(data)
        self.sizes = []
    def read(self, n):
        self.sizes.append(n)
        return self.data.read(n)
    def close(self):
        note("filelike-closed", "sizes=%s" % sorted(set(self.sizes)))

def application(environ, start_response):
    wrapper = environ["wsgi.file_wrapper"]
    path = environ["PATH_INFO"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    if path == "/real":
        f = Tracked(DATA, "r")
        f = io.BufferedReader(f)
        f.read(1000)  # the wrapper starts at the current position
        return wrapper(f)
    if path == "/fast":
        f = NoRead(DATA, "r")
        f.seek(5)
        return wrapper(f, 1)
    if path == "/filelike":
        return wrapper(FileLike(b"0123456789" * 1000), 333)
    if path == "/badsize":
        return wrapper(FileLike(b""), 0)
"#;

#[test]
fn file_wrapper_streams_real_files_and_file_likes() {
    let markers = shared_dir();
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for mpm in [Mpm::Event, Mpm::Prefork] {
        for f in ["real-closed", "filelike-closed"] {
            let _ = fs::remove_file(markers.path().join(f));
        }
        let apache = Apache::builder()
            .mpm(mpm)
            .file("app/w.wsgi", WRAPPER_APP)
            .file_bytes("app/data.bin", &data)
            .file("app/marker_dir", &markers.path().display().to_string())
            .directives("WSGIScriptAlias /w {dir}/app/w.wsgi\n")
            .start();

        let r = apache.get("/w/real");
        assert_eq!(r.status, 200, "{}", apache.error_log());
        assert_eq!(r.body.len(), data.len() - 1000, "{mpm}");
        assert!(r.body == data[1000..], "{mpm}: body differs from the file");
        assert_eq!(
            wait_for_file(&markers.path().join("real-closed"), Duration::from_secs(5)).as_deref(),
            Some("closed"),
            "{mpm}: the wrapper's close() must close the file"
        );

        let r = apache.get("/w/fast");
        assert_eq!(r.status, 200, "{}", apache.error_log());
        assert!(r.body == data[5..], "{mpm}: descriptor path body differs");

        let r = apache.get("/w/filelike");
        assert_eq!(r.status, 200, "{}", apache.error_log());
        assert_eq!(r.text(), "0123456789".repeat(1000));
        assert_eq!(
            wait_for_file(
                &markers.path().join("filelike-closed"),
                Duration::from_secs(5)
            )
            .as_deref(),
            Some("sizes=[333]"),
            "{mpm}: read(blksize) and close() on a file-like object"
        );

        let r = apache.get("/w/badsize");
        assert_eq!(r.status, 500);
        assert!(
            apache.wait_for_log("blksize must be > 0", Duration::from_secs(5)),
            "{}",
            apache.error_log()
        );
    }
}

const SLEEPY_APP: &str = r#"
import time
def application(environ, start_response):
    body = environ['wsgi.input'].read()
    time.sleep(0.5)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'slept ', str(len(body)).encode()]
"#;

/// Request threads queue for the GIL in front of it (src/python/interp.rs,
/// GIL_WAITERS), but only while waiting: an application that releases the
/// GIL (time.sleep here, as any blocking I/O does) lets the other requests
/// run meanwhile. Ten requests sleeping 0.5 s each in one Apache child must
/// overlap, not take 5 s one after the other; in a sub-interpreter and in
/// the main interpreter (two ways of taking the GIL).
#[test]
fn requests_that_release_the_gil_run_concurrently() {
    let apache = Apache::builder()
        .file("app/sleepy.wsgi", SLEEPY_APP)
        // One child with 10 threads: the queue is per process.
        .directives(
            "StartServers 1\nServerLimit 1\nMaxRequestWorkers 10\n\
             MinSpareThreads 1\nMaxSpareThreads 10\n\
             WSGIScriptAlias /sub {dir}/app/sleepy.wsgi\n\
             WSGIScriptAlias /main {dir}/app/sleepy.wsgi application-group=%{GLOBAL}",
        )
        .start();
    for path in ["/sub", "/main"] {
        // Load the script once, so its import is not part of the timing.
        assert_eq!(apache.get(path).status, 200, "{}", apache.error_log());
        let started = Instant::now();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..10)
                .map(|i| {
                    let apache = &apache;
                    s.spawn(move || {
                        let body = vec![b'x'; 1000 + i];
                        apache.request("POST", path, &[], &body)
                    })
                })
                .collect();
            for (i, h) in handles.into_iter().enumerate() {
                let r = h.join().expect("request thread");
                assert_eq!(r.status, 200, "{}", apache.error_log());
                assert_eq!(r.text(), format!("slept {}", 1000 + i));
            }
        });
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "{path}: 10 requests of 0.5 s took {took:?}: they ran one after the other"
        );
    }
}
