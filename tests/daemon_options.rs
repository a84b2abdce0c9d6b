//! WSGIDaemonProcess options acted on by the worker or the daemon, each
//! observed from outside against a real Apache.

mod common;
use common::*;
use std::time::Duration;

const APP: &str = r#"
import os, time
def application(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"#;

fn server(options: &str) -> Apache {
    server_with_app(APP, options)
}

/// The daemon logged that it raised mod_wsgi.RequestTimeout in a request.
fn assert_request_timeout_raised(apache: &Apache) {
    let log = apache.error_log();
    assert!(
        log.contains("raising mod_wsgi.RequestTimeout in it (raised)"),
        "{log}"
    );
}

/// `app` mounted at / in daemon process group `g` with `options`.
fn server_with_app(app: &str, options: &str) -> Apache {
    Apache::builder()
        .file("app/a.wsgi", app)
        .directives(&format!(
            "WSGIDaemonProcess g {options}\nWSGIScriptAlias / {{dir}}/app/a.wsgi process-group=g\n"
        ))
        .start()
}

#[test]
fn script_user_must_own_the_script() {
    // The harness writes files as the test's user (root here): a script-user
    // that does not own it is refused with 403 and a line naming both.
    let apache = server("threads=1 script-user=nobody");
    let r = apache.get("/");
    assert_eq!(r.status, 403, "{}", apache.error_log());
    assert!(
        apache.wait_for_log("not by script-user=nobody", Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
    // Owned by nobody: served.
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    nix::unistd::chown(&apache.dir.join("app/a.wsgi"), Some(nobody.uid), None).unwrap();
    assert_eq!(apache.get("/").status, 200, "{}", apache.error_log());
}

#[test]
fn script_group_must_own_the_script() {
    let apache = server("threads=1 script-group=nogroup");
    assert_eq!(apache.get("/").status, 403);
    assert!(
        apache.wait_for_log("not to script-group=nogroup", Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
}

#[test]
fn queue_timeout_fails_a_request_that_waited_too_long() {
    let apache = server("processes=1 threads=1 queue-timeout=1");
    apache.get("/"); // started and loaded
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| apache.get("/sleep?3"));
        std::thread::sleep(Duration::from_millis(300));
        // Waits for the only thread for ~2.7s, over queue-timeout=1.
        let queued = apache.get("/");
        assert_eq!(queued.status, 504, "{}", apache.error_log());
        assert_eq!(slow.join().unwrap().status, 200);
    });
    assert!(
        apache.wait_for_log("over queue-timeout=1s", Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
    // Without queueing, requests are served.
    assert_eq!(apache.get("/").status, 200);
}

#[test]
fn socket_buffer_sizes_reach_the_daemon_socket() {
    // ss shows a Unix socket's buffers as skmem:(...,rb<recv>,...,tb<send>,...);
    // the kernel doubles what setsockopt asks for.
    let apache = server("processes=1 threads=1 send-buffer-size=40000 receive-buffer-size=50000");
    let pid: u32 = apache.get("/").text().parse().unwrap();
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| apache.get("/sleep?2"));
        std::thread::sleep(Duration::from_millis(700));
        let out = std::process::Command::new("ss")
            .args(["-x", "-m", "-p"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // The daemon's accepted connection.
        let found = text.lines().any(|l| {
            l.contains(&format!("pid={pid},"))
                && l.contains("ESTAB")
                && l.contains("rb100000")
                && l.contains("tb80000")
        });
        assert!(
            found,
            "no daemon socket with rb100000/tb80000 for pid {pid}:\n{text}"
        );
        assert_eq!(slow.join().unwrap().status, 200);
    });
}

/// Every WSGIDaemonProcess option is acted on: none is announced as
/// accepted but not acted on at startup.
#[test]
fn every_daemon_option_is_acted_on() {
    let apache =
        server("threads=1 server-metrics=On response-flush-delay=10 response-buffer-size=65536");
    assert_eq!(apache.get("/").status, 200);
    let log = apache.error_log();
    assert!(!log.contains("accepted but not acted on"), "{log}");
}

#[test]
fn restrict_process_limits_the_groups_a_location_may_use() {
    let apache = Apache::builder()
        .file("app/a.wsgi", APP)
        .directives(
            "WSGIDaemonProcess allowed threads=1\nWSGIDaemonProcess other threads=1\n\
             WSGIScriptAlias /ok {dir}/app/a.wsgi process-group=allowed\n\
             WSGIScriptAlias /no {dir}/app/a.wsgi process-group=other\n\
             <Location />\n  WSGIRestrictProcess allowed\n</Location>\n",
        )
        .start();
    assert_eq!(apache.get("/ok").status, 200, "{}", apache.error_log());
    assert_eq!(apache.get("/no").status, 403);
    assert!(
        apache.wait_for_log(
            "WSGIRestrictProcess allows only allowed",
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
}

#[test]
fn changed_script_recycles_the_daemon() {
    let apache = server("processes=1 threads=2");
    let before: u32 = apache.get("/").text().parse().unwrap();
    let path = apache.dir.join("app/a.wsgi");
    std::fs::write(
        &path,
        APP.replace(
            "str(os.getpid()).encode()",
            "b'v2:' + str(os.getpid()).encode()",
        ),
    )
    .unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(10);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    // The request that notices the change already gets the new code...
    assert!(
        apache.get("/").text().starts_with("v2:"),
        "{}",
        apache.error_log()
    );
    assert!(
        apache.wait_for_log("changed; recycling", Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
    // ...and a fresh process takes over.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = apache.get("/").text();
        let pid: u32 = text.trim_start_matches("v2:").parse().unwrap();
        if pid != before {
            assert!(text.starts_with("v2:"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "daemon {before} was not recycled"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn interrupt_timeout_raises_request_timeout_before_restarting() {
    // A request that keeps running Python code past request-timeout gets
    // mod_wsgi.RequestTimeout raised in it; the process is not restarted.
    let app = r#"
import os, time, mod_wsgi
def application(environ, start_response):
    if environ["PATH_INFO"] == "/loop":
        try:
            while True:
                time.sleep(0.05)
        except mod_wsgi.RequestTimeout:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"interrupted"]
    start_response("200 OK", [])
    return [str(os.getpid()).encode()]
"#;
    let apache = server_with_app(app, "threads=2 request-timeout=1 interrupt-timeout=5");
    let pid: u32 = apache.get("/").text().parse().unwrap();
    let r = apache.get("/loop");
    assert_eq!(r.status, 503, "{}", apache.error_log());
    assert_eq!(r.text(), "interrupted");
    assert_request_timeout_raised(&apache);
    assert_eq!(
        apache.get("/").text().parse::<u32>().unwrap(),
        pid,
        "no restart was needed"
    );
}

/// A RequestTimeout that lands after its request ended (the thread ran no
/// bytecode between the raise and the end: here it waited in a C read
/// of a pipe that wsgi.file_wrapper relays) is taken before the thread's
/// next request, which is served as usual.
#[test]
fn a_request_timeout_landing_after_its_request_does_not_hit_the_next() {
    let app = r#"
import os, threading, time
def application(environ, start_response):
    if environ["PATH_INFO"] == "/late":
        r, w = os.pipe()
        def feed():
            time.sleep(2.5)
            os.write(w, b"late")
            os.close(w)
        threading.Thread(target=feed).start()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](os.fdopen(r, "rb", buffering=0), 4096)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"#;
    let apache = server_with_app(app, "threads=1 request-timeout=1 interrupt-timeout=30");
    let pid: u32 = apache.get("/").text().parse().unwrap();
    let late = apache.get("/late");
    assert_eq!(late.text(), "late", "{}", apache.error_log());
    assert_request_timeout_raised(&apache);
    let next = apache.get("/");
    assert_eq!(next.status, 200, "{}", apache.error_log());
    assert_eq!(next.text().parse::<u32>().unwrap(), pid);
}

/// A request that leaves a profile function set on its thread
/// (sys.setprofile, as profilers do) does not hang the next request on
/// it: clearing a RequestTimeout that was never raised used to leave the
/// interpreter's eval breaker on, and the eval loop then spun at 100% CPU
/// on the next function entry of a thread with a profile function
/// (CPython 3.11). The same held for an ASGI app's event loop.
#[test]
fn a_profile_function_left_by_a_request_does_not_hang_the_next() {
    let app = r#"
import os, sys
def application(environ, start_response):
    if environ["PATH_INFO"] == "/profile":
        sys.setprofile(lambda *args: None)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"#;
    let apache = server_with_app(app, "threads=1 socket-timeout=5");
    let pid = apache.get("/profile").text();
    for _ in 0..3 {
        let next = apache.get("/");
        assert_eq!(next.status, 200, "{}", apache.error_log());
        assert_eq!(next.text(), pid);
    }
}

#[test]
fn process_options_are_applied_in_the_daemon() {
    // What the daemon process reports about itself, one option per line.
    let app = r#"
import os, resource
def application(environ, start_response):
    mask = os.umask(0); os.umask(mask)
    lines = [
        "umask=%o" % mask,
        "lang=%s" % os.environ.get("LANG"),
        "cwd=%s" % os.getcwd(),
        "nice=%d" % os.nice(0),
        "data=%d" % resource.getrlimit(resource.RLIMIT_DATA)[0],
        "as=%d" % resource.getrlimit(resource.RLIMIT_AS)[0],
        "cpu=%d" % resource.getrlimit(resource.RLIMIT_CPU)[0],
        "groups=%s" % ",".join(str(g) for g in sorted(os.getgroups())),
    ]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode()]
"#;
    let sockdir = temp_dir_with_mode("mwrs-opts-", 0o755);
    let home = sockdir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let apache = Apache::builder()
        .file("app/o.wsgi", app)
        .directives(&format!(
            "WSGISocketPrefix {sock}/wsgi\n\
             WSGIDaemonProcess g threads=1 umask=0027 lang=C.UTF-8 home={home} cpu-priority=5 \
             memory-limit=3000000000 virtual-memory-limit=6000000000 cpu-time-limit=100000 \
             supplementary-groups=nogroup listen-backlog=37\n\
             WSGIScriptAlias / {{dir}}/app/o.wsgi process-group=g\n",
            sock = sockdir.path().display(),
            home = home.display()
        ))
        .start();
    let text = ok_body(&apache, "/");
    let field = |k: &str| field(&text, k);
    assert_eq!(field("umask"), "27");
    assert_eq!(field("lang"), "C.UTF-8");
    assert_eq!(field("cwd"), home.display().to_string());
    assert_eq!(field("nice"), "5");
    assert_eq!(field("data"), "3000000000");
    assert_eq!(field("as"), "6000000000");
    assert_eq!(field("cpu"), "100000");
    let nogroup = nix::unistd::Group::from_name("nogroup")
        .unwrap()
        .unwrap()
        .gid
        .as_raw();
    assert!(
        field("groups").split(',').any(|g| g == nogroup.to_string()),
        "{text}"
    );
    // The listener: owned by Apache's User, mode 0700, backlog as asked.
    let sock = std::fs::read_dir(sockdir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sock"))
        .expect("listener socket");
    let meta = std::fs::metadata(&sock).unwrap();
    let www = nix::unistd::User::from_name("www-data")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), www);
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o700
    );
    let ss = std::process::Command::new("ss")
        .args(["-x", "-l"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&ss.stdout).into_owned();
    let line = listing
        .lines()
        .find(|l| l.contains(sock.to_str().unwrap()))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        line.split_whitespace().nth(3) == Some("37"),
        "backlog 37 expected (Send-Q of a listener): {line}"
    );
}

#[test]
fn socket_user_owns_the_listener() {
    // socket-user is for MPMs whose children run as other users (ITK): here
    // the children run as www-data, so a socket given to nobody (mode 0700)
    // is refused to them, and the worker says why.
    let apache = server("threads=1 socket-user=nobody");
    let r = apache.get("/");
    assert_eq!(r.status, 503);
    assert!(
        apache.wait_for_log("Permission denied", Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
    assert!(
        apache
            .error_log()
            .contains("must be reachable by Apache's User"),
        "{}",
        apache.error_log()
    );
}

/// The lines mod_wsgi-express writes: whole arguments and every option value
/// quoted, a quoted value holding spaces, and `python-path=''`.
#[test]
fn quoted_arguments_and_option_values_as_mod_wsgi_express_writes_them() {
    let app = r#"
import os, sys
def application(environ, start_response):
    with open("/proc/self/cmdline", "rb") as f:
        argv0 = f.read().split(b"\0")[0].decode()
    lines = [
        "cwd=%s" % os.getcwd(),
        "lang=%s" % os.environ.get("LANG"),
        "argv0=%s" % argv0,
        "group=%s" % environ["mod_wsgi.process_group"],
        "callable=%s" % environ["mod_wsgi.callable_object"],
    ]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode()]
"#;
    let home = temp_dir_with_mode("mwrs home ", 0o755);
    let apache = Apache::builder()
        .file(
            "app/o.wsgi",
            &app.replace("def application", "def app_entry"),
        )
        .directives(&format!(
            "WSGIDaemonProcess 'localhost:{{port}}' \\\n   \
                 display-name='(wsgi:localhost:{{port}}:0) quoted' \\\n   \
                 home=\"{home}\" lang='C.UTF-8' threads='2' \\\n   \
                 python-path='' python-home=\"\" \\\n   \
                 header-buffer-size='32768'\n\
             WSGICallableObject 'app_entry'\n\
             WSGIScriptAlias / '{{dir}}/app/o.wsgi' process-group='localhost:{{port}}' \
             application-group=\"%{{GLOBAL}}\"\n",
            home = home.path().display()
        ))
        .start();
    let text = ok_body(&apache, "/");
    let field = |k: &str| field(&text, k);
    assert_eq!(field("cwd"), home.path().display().to_string(), "{text}");
    assert_eq!(field("lang"), "C.UTF-8");
    assert_eq!(
        field("argv0"),
        format!("(wsgi:localhost:{}:0) quoted", apache.port)
    );
    assert_eq!(field("group"), format!("localhost:{}", apache.port));
    assert_eq!(field("callable"), "app_entry");
}
