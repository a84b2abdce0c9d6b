//! The environ and process set-up of C mod_wsgi 6, in embedded and daemon
//! mode: the keys it gives and the ones it stopped giving, its times as
//! float seconds, `WSGIMapHEADToGET`, `WSGIIgnoreActivity`, and what a
//! daemon process's `home=` does (sys.path, working directory) and does
//! not do (HOME is the account's), with `sys.argv == ['mod_wsgi']`.
//! docs/environ-differences.md lists what is compared with C mod_wsgi.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Answers facts about the request and the process, one `name<TAB>value`
/// per line; REQUEST_METHOD also as the X-Method header (HEAD has no body).
const APP: &str = r#"
import os, pwd, sys

def application(environ, start_response):
    lines = []
    def fact(name, value):
        lines.append("%s\t%s" % (name, value))
    fact("keys", " ".join(sorted(environ)))
    for key in sorted(environ):
        if key.startswith("mod_wsgi.") or key in ("LD_LIBRARY_PATH", "REQUEST_METHOD"):
            value = environ[key]
            fact("type:" + key, type(value).__name__)
            fact("value:" + key, value)
    fact("pid", os.getpid())
    fact("argv", repr(sys.argv))
    fact("path", "|".join(sys.path))
    fact("cwd", os.getcwd())
    fact("HOME", os.environ.get("HOME"))
    fact("account_home", pwd.getpwuid(os.geteuid()).pw_dir)
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("X-Method", environ["REQUEST_METHOD"])])
    return ["\n".join(lines).encode("utf-8")]
"#;

type Facts = BTreeMap<String, String>;

fn facts(apache: &Apache, path: &str) -> Facts {
    ok_body(apache, path)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn get<'a>(f: &'a Facts, name: &str) -> &'a str {
    f.get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no {name} in {f:#?}"))
}

fn time(f: &Facts, key: &str) -> f64 {
    assert_eq!(get(f, &format!("type:{key}")), "float", "{key}");
    get(f, &format!("value:{key}")).parse().unwrap()
}

const DAEMON: &str = "WSGIDaemonProcess six threads=2\nWSGIProcessGroup six\n";

fn server(mpm: Mpm, mode: &str, extra: &str) -> Apache {
    Apache::builder()
        .mpm(mpm)
        .file("app/env.wsgi", APP)
        .env("LD_LIBRARY_PATH", "/nonexistent/from-apache-environment")
        .directives(mode)
        .directives(extra)
        .directives("WSGIScriptAlias / {dir}/app/env.wsgi\n")
        .start()
}

/// Keys C mod_wsgi 4 had and 6 does not (the test would see them here).
const GONE: &[&str] = &[
    "GATEWAY_INTERFACE",
    "SERVER_SIGNATURE",
    "PATH_TRANSLATED",
    "LD_LIBRARY_PATH",
    "PATH",
    "mod_wsgi.script_reloading",
    "mod_wsgi.enable_sendfile",
    "mod_wsgi.ignore_activity",
    "mod_wsgi.script_start",
    "mod_wsgi.thread_requests",
    "mod_wsgi.total_requests",
    "mod_wsgi.daemon_connects",
    "mod_wsgi.daemon_restarts",
];

#[test]
fn environ_has_the_keys_of_mod_wsgi_six_in_both_modes() {
    for (mode, daemon) in [("", false), (DAEMON, true)] {
        let apache = server(
            Mpm::Event,
            mode,
            "WSGIScriptReloading On\nWSGIEnableSendfile On\n\
             <Location /setenv>\n    SetEnv LD_LIBRARY_PATH /from/setenv\n</Location>\n",
        );
        let label = if daemon { "daemon" } else { "embedded" };
        // With PATH_INFO: Apache would compute PATH_TRANSLATED for it.
        let f = facts(&apache, "/x/y?q=1");
        let keys: Vec<&str> = get(&f, "keys").split(' ').collect();
        for gone in GONE {
            assert!(!keys.contains(gone), "[{label}] {gone} in {keys:?}");
        }
        assert!(
            !keys.iter().any(|k| k.starts_with("mod_wsgi.x-")),
            "[{label}] internal keys leaked: {keys:?}"
        );
        // Times: float seconds since the epoch, in the order they happen.
        let request = time(&f, "mod_wsgi.request_start");
        let application = time(&f, "mod_wsgi.application_start");
        let (queue, daemon_start) = (
            time(&f, "mod_wsgi.queue_start"),
            time(&f, "mod_wsgi.daemon_start"),
        );
        assert!(request > 1.6e9, "[{label}] request_start {request}");
        if daemon {
            assert!(
                request <= queue && queue <= daemon_start && daemon_start <= application,
                "[{label}] {request} {queue} {daemon_start} {application}"
            );
        } else {
            assert_eq!((queue, daemon_start), (0.0, 0.0), "[{label}]");
            assert!(request <= application, "[{label}]");
        }
        // server_pid: the Apache child that took the request.
        assert_eq!(get(&f, "type:mod_wsgi.server_pid"), "str");
        let server_pid: u32 = get(&f, "value:mod_wsgi.server_pid").parse().unwrap();
        let pid: u32 = get(&f, "pid").parse().unwrap();
        if daemon {
            assert_ne!(server_pid, pid, "[{label}] the daemon's own pid");
            assert!(apache.pids().contains(&server_pid), "[{label}]");
            assert_ne!(server_pid, apache.parent_pid(), "[{label}]");
        } else {
            assert_eq!(server_pid, pid, "[{label}]");
        }
        assert_eq!(get(&f, "type:mod_wsgi.thread_id"), "int", "[{label}]");
        // A variable the configuration sets is kept, whatever its name.
        let f = facts(&apache, "/setenv");
        assert_eq!(
            get(&f, "value:LD_LIBRARY_PATH"),
            "/from/setenv",
            "[{label}]"
        );
    }
}

#[test]
fn trusted_script_name_sets_mount_point_and_keeps_the_original() {
    let apache = server(
        Mpm::Event,
        "",
        "WSGITrustedProxies 127.0.0.1\nWSGITrustedProxyHeaders X-Script-Name\n",
    );
    let r = apache.request("GET", "/app/x", &[("X-Script-Name", "/shop")], b"");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    let f: Facts = r
        .text()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(get(&f, "value:mod_wsgi.mount_point"), "/shop");
    assert_eq!(get(&f, "value:mod_wsgi.script_name"), "");
    assert_eq!(get(&f, "value:mod_wsgi.path_info"), "/app/x");
    // Without the header: no mount point.
    let f = facts(&apache, "/app/x");
    assert!(!get(&f, "keys").contains("mod_wsgi.mount_point"));
}

/// WSGIMapHEADToGET: On, Off and Auto (the default) at /h/on, /h/off and
/// /h/auto, each with and without mod_deflate in the output chain.
const HEAD_CONFIG: &str = "\
<Location /h/on>
    WSGIMapHEADToGET On
</Location>
<Location /h/off>
    WSGIMapHEADToGET Off
</Location>
<LocationMatch \"^/h/[a-z]+/deflate\">
    SetOutputFilter DEFLATE
</LocationMatch>
";

#[test]
fn map_head_to_get_on_off_auto_with_and_without_an_output_filter() {
    let deflate = format!("LoadModule deflate_module {MODULES_DIR}/mod_deflate.so\n{HEAD_CONFIG}");
    for (mode, label) in [("", "embedded"), (DAEMON, "daemon")] {
        let apache = server(Mpm::Event, mode, &deflate);
        for (setting, filter, want) in [
            ("on", "plain", "GET"),
            ("on", "deflate", "GET"),
            ("off", "plain", "HEAD"),
            ("off", "deflate", "HEAD"),
            ("auto", "plain", "HEAD"),
            ("auto", "deflate", "GET"),
        ] {
            let path = format!("/h/{setting}/{filter}");
            let r = apache.request("HEAD", &path, &[], b"");
            assert_eq!(r.status, 200, "[{label}] {path}: {}", apache.error_log());
            assert_eq!(r.header("X-Method"), Some(want), "[{label}] HEAD {path}");
            assert!(r.body.is_empty(), "[{label}] HEAD {path} sent a body");
            let r = apache.get(&path);
            assert_eq!(r.header("X-Method"), Some("GET"), "[{label}] GET {path}");
        }
    }
}

#[test]
fn sys_argv_is_mod_wsgi_in_every_interpreter_and_mode() {
    let global = "<Location /global>\n    WSGIApplicationGroup %{GLOBAL}\n</Location>\n";
    for (mode, label) in [("", "embedded"), (DAEMON, "daemon")] {
        let apache = server(Mpm::Event, mode, global);
        for path in ["/global", "/sub-interpreter"] {
            let f = facts(&apache, path);
            assert_eq!(get(&f, "argv"), "['mod_wsgi']", "[{label}] {path}");
        }
    }
}

#[test]
fn daemon_home_is_first_on_sys_path_and_the_working_directory_not_home() {
    let apache = Apache::builder()
        .file("app/env.wsgi", APP)
        .file("home/.keep", "")
        .file("lib/.keep", "")
        .directives(
            "WSGIDaemonProcess six threads=2 home={dir}/home python-path={dir}/lib\n\
             WSGIProcessGroup six\n\
             WSGIScriptAlias / {dir}/app/env.wsgi\n\
             <Location /global>\n    WSGIApplicationGroup %{GLOBAL}\n</Location>\n",
        )
        .start();
    let dir = apache.dir.display().to_string();
    for path in ["/global", "/sub-interpreter"] {
        let f = facts(&apache, path);
        let sys_path: Vec<&str> = get(&f, "path").split('|').collect();
        // home= first, then python-path ahead of the standard library.
        assert_eq!(
            sys_path[..2],
            [format!("{dir}/home"), format!("{dir}/lib")],
            "{path}: {sys_path:?}"
        );
        assert_eq!(get(&f, "cwd"), format!("{dir}/home"), "{path}");
        // HOME is the home directory of the account the daemon runs as.
        let account_home = get(&f, "account_home");
        assert_eq!(get(&f, "HOME"), account_home, "{path}");
        assert_ne!(account_home, format!("{dir}/home"));
    }
}

#[test]
fn python_path_goes_before_the_standard_library_in_embedded_mode() {
    let apache = Apache::builder()
        .file("app/env.wsgi", APP)
        .file("lib/.keep", "")
        .directives("WSGIPythonPath {dir}/lib\nWSGIScriptAlias / {dir}/app/env.wsgi\n")
        .start();
    let dir = apache.dir.display().to_string();
    let f = facts(&apache, "/");
    let sys_path: Vec<&str> = get(&f, "path").split('|').collect();
    assert_eq!(sys_path[0], format!("{dir}/lib"), "{sys_path:?}");
}

fn served_pid(apache: &Apache, path: &str) -> u32 {
    get(&facts(apache, path), "pid").parse().unwrap()
}

#[test]
fn ignore_activity_requests_do_not_keep_an_idle_daemon() {
    let apache = Apache::builder()
        .file("app/env.wsgi", APP)
        .directives(
            "WSGIDaemonProcess six processes=1 threads=2 inactivity-timeout=2\n\
             WSGIProcessGroup six\n\
             WSGIScriptAlias / {dir}/app/env.wsgi\n\
             <Location /health>\n    WSGIIgnoreActivity On\n</Location>\n",
        )
        .start();
    let poll = Duration::from_millis(250);
    // An ordinary request first: the process has been active.
    let first = served_pid(&apache, "/work");
    // Polled only at the ignored location, it counts as idle and recycles.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut recycled = None;
    while Instant::now() < deadline {
        let pid = served_pid(&apache, "/health");
        if pid != first {
            recycled = Some(pid);
            break;
        }
        std::thread::sleep(poll);
    }
    assert!(
        recycled.is_some(),
        "still pid {first} after 20 s of /health only\n{}",
        apache.error_log()
    );
    assert!(
        apache
            .error_log()
            .contains("no requests for inactivity-timeout=2s")
    );
    // Polled at an ordinary location, the new process stays, for three
    // times inactivity-timeout.
    let kept = served_pid(&apache, "/work");
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        assert_eq!(
            served_pid(&apache, "/work"),
            kept,
            "recycled while busy\n{}",
            apache.error_log()
        );
        std::thread::sleep(poll);
    }
}
