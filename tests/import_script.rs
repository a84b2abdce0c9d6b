//! WSGIImportScript: a script loaded when the process starts, before any
//! request, in the interpreter it names; requests then find it loaded.

mod common;
use common::*;
use std::time::{Duration, Instant};

/// A WSGI script that appends "<pid>\n" to a marker file each time it is
/// executed (not each time it is called).
fn app(marker: &std::path::Path) -> String {
    format!(
        "import os\nwith open({marker:?}, 'a') as f:\n    f.write('%d\\n' % os.getpid())\n\
         def application(environ, start_response):\n    start_response('200 OK', [])\n    return [str(os.getpid()).encode()]\n"
    )
}

fn wait_for_file(path: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} never appeared", path.display());
}

fn marker_dir() -> tempfile::TempDir {
    temp_dir_with_mode("mwrs-import-", 0o777)
}

#[test]
fn daemon_loads_the_script_at_start_and_requests_reuse_it() {
    let dir = marker_dir();
    let marker = dir.path().join("loaded");
    let apache = Apache::builder()
        .file("app/a.wsgi", &app(&marker))
        .directives(
            "WSGIDaemonProcess g processes=1 threads=2\n\
             WSGIImportScript {dir}/app/a.wsgi process-group=g application-group=%{GLOBAL}\n\
             WSGIScriptAlias / {dir}/app/a.wsgi process-group=g application-group=%{GLOBAL}\n",
        )
        .start();
    // Loaded without any request.
    let loaded = wait_for_file(&marker);
    let pid: u32 = loaded.trim().parse().unwrap();
    // The request is served by that process, from the module already loaded.
    assert_eq!(
        apache.get("/").text(),
        pid.to_string(),
        "{}",
        apache.error_log()
    );
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().lines().count(),
        1,
        "executed once"
    );
}

#[test]
fn embedded_children_load_the_script_at_start() {
    let dir = marker_dir();
    let marker = dir.path().join("loaded");
    let apache = Apache::builder()
        .mpm(Mpm::Prefork)
        .file("app/a.wsgi", &app(&marker))
        .directives(
            "StartServers 1\nMinSpareServers 1\nMaxSpareServers 1\nMaxRequestWorkers 1\n\
             WSGIImportScript {dir}/app/a.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}\n\
             WSGIScriptAlias / {dir}/app/a.wsgi application-group=%{GLOBAL}\n",
        )
        .start();
    let loaded = wait_for_file(&marker);
    let pid: u32 = loaded.lines().next().unwrap().parse().unwrap();
    assert!(apache.pids().contains(&pid), "loaded in an Apache child");
    assert_eq!(apache.get("/").text(), pid.to_string());
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().lines().count(),
        1,
        "executed once"
    );
}

#[test]
fn a_failing_import_script_is_logged_and_the_process_still_serves() {
    let apache = Apache::builder()
        .file("app/bad.py", "raise RuntimeError('import script failure')\n")
        .file("app/a.wsgi", "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n")
        .directives(
            "WSGIDaemonProcess g threads=1\n\
             WSGIImportScript {dir}/app/bad.py process-group=g application-group=%{GLOBAL}\n\
             WSGIScriptAlias / {dir}/app/a.wsgi process-group=g\n",
        )
        .start();
    assert_eq!(apache.get("/").text(), "ok");
    assert!(
        apache.wait_for_log(
            "RuntimeError: import script failure",
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
}

#[test]
fn embedded_import_script_starts_python_in_children_despite_restrict_embedded() {
    let dir = marker_dir();
    let marker = dir.path().join("loaded");
    let apache = Apache::builder()
        .mpm(Mpm::Prefork)
        .file("app/a.wsgi", &app(&marker))
        .directives(
            "StartServers 1\nMinSpareServers 1\nMaxSpareServers 1\nMaxRequestWorkers 1\n\
             WSGIRestrictEmbedded On\n\
             WSGIDaemonProcess g threads=1\n\
             WSGIImportScript {dir}/app/a.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}\n\
             WSGIScriptAlias / {dir}/app/a.wsgi process-group=g application-group=%{GLOBAL}\n",
        )
        .start();
    // As with mod_wsgi, WSGIRestrictEmbedded keeps applications out of the
    // Apache children, not what always runs there.
    let loaded = wait_for_file(&marker);
    let child: u32 = loaded.lines().next().unwrap().parse().unwrap();
    assert!(apache.pids().contains(&child), "loaded in an Apache child");
    let served: u32 = apache.get("/").text().parse().unwrap();
    assert_ne!(served, child, "the application runs in the daemon");
}

/// A service script (a group with threads=0, as mod_wsgi-express's
/// --service-script makes): it runs for as long as the process does,
/// appending "<pid> started" to the marker file, and "<pid> stopped" when
/// SystemExit reaches it; `returns` makes it return at once instead.
fn service_script(marker: &std::path::Path, returns: bool) -> String {
    let body = if returns {
        "pass"
    } else {
        "while True:\n        time.sleep(30)"
    };
    format!(
        "import os, time\n\
         def note(what):\n    with open({marker:?}, 'a') as f:\n        f.write('%d %s\\n' % (os.getpid(), what))\n\
         note('started')\n\
         try:\n    {body}\n\
         except SystemExit:\n    note('stopped')\n    raise\n"
    )
}

/// Lines of the marker file ("<pid> started", "<pid> stopped").
fn notes(marker: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(marker)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn service_server(marker: &std::path::Path, returns: bool) -> Apache {
    Apache::builder()
        .file("app/service.py", &service_script(marker, returns))
        .file(
            "app/hello.wsgi",
            "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'hello']\n",
        )
        .directives(
            "WSGIDaemonProcess svc threads=0 display-name=svc-daemon shutdown-timeout=10\n\
             WSGIImportScript {dir}/app/service.py process-group=svc application-group=%{GLOBAL}\n\
             WSGIDaemonProcess web threads=2\n\
             WSGIScriptAlias / {dir}/app/hello.wsgi process-group=web\n",
        )
        .start()
}

/// The service sleeps in `time.sleep(30)`: a graceful restart and a stop
/// each end it at once with SystemExit (its `except` runs), the restart
/// starting a new one; requests to the other group are served meanwhile.
#[test]
fn a_service_script_runs_until_its_process_stops_and_then_sees_system_exit() {
    let dir = marker_dir();
    let marker = dir.path().join("service");
    let apache = service_server(&marker, false);
    wait_for_file(&marker);
    assert_eq!(apache.get("/").status, 200, "{}", apache.error_log());
    let first = notes(&marker);
    assert_eq!(first.len(), 1, "{first:?}");
    let pid = first[0].split(' ').next().unwrap().to_string();
    assert_eq!(apache.pids_named("svc-daemon").len(), 1);

    apache.graceful_restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while notes(&marker).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let after_restart = notes(&marker);
    assert!(
        after_restart.contains(&format!("{pid} stopped")),
        "{after_restart:?}\n{}",
        apache.error_log()
    );
    let new_pid = after_restart
        .iter()
        .filter(|l| l.ends_with(" started"))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .find(|p| *p != pid)
        .unwrap_or_else(|| panic!("no new service: {after_restart:?}"));

    let log_path = apache.dir.join("error.log");
    let stopping = Instant::now();
    apache.stop();
    let stopped_in = stopping.elapsed();
    let last = notes(&marker);
    assert!(
        last.contains(&format!("{new_pid} stopped")),
        "{last:?}\n{}",
        std::fs::read_to_string(log_path).unwrap_or_default()
    );
    // Well within shutdown-timeout=10: nothing waited for a kill.
    assert!(
        stopped_in < Duration::from_secs(5),
        "the stop took {stopped_in:?}"
    );
}

/// A service script that returns leaves its process running (mod_wsgi
/// 6.1 lets that process exit and starts another every second): one
/// start, the same process seconds later.
#[test]
fn a_service_script_that_returns_leaves_its_process_running() {
    let dir = marker_dir();
    let marker = dir.path().join("service");
    let apache = service_server(&marker, true);
    wait_for_file(&marker);
    let pids = apache.pids_named("svc-daemon");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(notes(&marker).len(), 1, "{:?}", notes(&marker));
    assert_eq!(apache.pids_named("svc-daemon"), pids);
    assert!(
        apache.wait_for_log(
            "service scripts returned; the process goes on",
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
}

/// A service script that ends with SystemExit of its own, or fails,
/// stops its process, which is started again (a service whose database is
/// not up yet is retried, not left idle), but not in a tight loop when it
/// does so at once each time: the restarts slow down as for a process
/// that dies at start-up (a few in three seconds, not hundreds).
#[test]
fn a_service_script_exiting_or_failing_at_once_is_restarted_with_a_growing_delay() {
    for (ending, logged) in [
        ("sys.exit(0)", "service scripts ended with SystemExit"),
        (
            "raise RuntimeError('no database yet')",
            "service scripts failed; the process stops to be started again",
        ),
    ] {
        let dir = marker_dir();
        let marker = dir.path().join("service");
        let apache = Apache::builder()
            .file(
                "app/service.py",
                &format!(
                    "import os, sys\nwith open({marker:?}, 'a') as f:\n    f.write('%d\\n' % os.getpid())\n{ending}\n"
                ),
            )
            .directives(
                "WSGIDaemonProcess svc threads=0\n\
                 WSGIImportScript {dir}/app/service.py process-group=svc application-group=%{GLOBAL}\n",
            )
            .start();
        wait_for_file(&marker);
        std::thread::sleep(Duration::from_secs(3));
        let starts = notes(&marker).len();
        assert!(
            (2..=12).contains(&starts),
            "{ending}: {starts} starts in about 3 s\n{}",
            apache.error_log()
        );
        assert!(
            apache.wait_for_log(logged, Duration::from_secs(1)),
            "{ending}: {}",
            apache.error_log()
        );
        apache.stop();
    }
}
