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
