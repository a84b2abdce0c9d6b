//! Tests of the test harness itself (tests/common). They do not load
//! mod_wsgi_rs: plain Apache serving static files.

mod common;
use common::*;

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

fn static_server(mpm: Mpm) {
    let apache = Apache::builder()
        .mpm(mpm)
        .with_module(false)
        .file("htdocs/hello.txt", "hello from the harness\n")
        .file("htdocs/sub/dir/deep.txt", "deep\n")
        .directives("Header set X-Harness-Mpm {port}")
        .start();

    let r = apache.get("/hello.txt");
    assert_eq!(r.status, 200, "{mpm}: {}", r.text());
    assert_eq!(r.text(), "hello from the harness\n");
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain"),
        "{:?}",
        r.headers
    );
    assert_eq!(
        r.header("X-HARNESS-MPM"),
        Some(apache.port.to_string().as_str())
    );

    assert_eq!(apache.get("/sub/dir/deep.txt").text(), "deep\n");

    let r = apache.get("/no-such-file.txt");
    assert_eq!(r.status, 404);

    let r = apache.request("POST", "/hello.txt", &[("X-Test", "1")], b"abc");
    assert!(
        r.status == 200 || r.status == 405,
        "POST status {}",
        r.status
    );

    let raw =
        apache.raw(b"GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert!(raw.ends_with("hello from the harness\n"), "{raw}");

    assert!(apache.wait_for_log("resuming normal operations", Duration::from_secs(10)));
    let log = apache.error_log();
    assert!(
        log.contains(&format!("[mpm_{}:notice]", mpm.name())),
        "{log}"
    );

    let pids = apache.pids();
    assert!(!pids.is_empty());
    assert!(pids.contains(&apache.parent_pid()));
    assert!(pids.len() >= 2, "expected parent and children: {pids:?}");
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
    {
        // Children must have dropped to www-data.
        let www = pids
            .iter()
            .filter(|p| {
                std::fs::metadata(format!("/proc/{p}"))
                    .map(|m| m.uid() == 33)
                    .unwrap_or(false)
            })
            .count();
        assert!(www >= 1, "no child runs as www-data: {pids:?}");
    }
    apache.stop();
    for p in pids {
        assert!(!pid_alive(p), "pid {p} still alive after stop()");
    }
}

#[test]
fn static_event() {
    static_server(Mpm::Event);
}

#[test]
fn static_worker() {
    static_server(Mpm::Worker);
}

#[test]
fn static_prefork() {
    static_server(Mpm::Prefork);
}

#[test]
fn config_test_reports_bad_directive() {
    for mpm in Mpm::ALL {
        let t = Apache::builder()
            .mpm(mpm)
            .with_module(false)
            .directives("NoSuchDirective x")
            .config_test();
        assert!(!t.ok, "{mpm}: {}", t.output);
        assert!(t.output.contains("NoSuchDirective"), "{mpm}: {}", t.output);
    }
}

#[test]
fn config_test_accepts_good_config() {
    for mpm in Mpm::ALL {
        let t = Apache::builder()
            .mpm(mpm)
            .with_module(false)
            .directives("Alias /x {dir}/htdocs")
            .config_test();
        assert!(t.ok, "{mpm}: {}", t.output);
        assert!(t.output.contains("Syntax OK"), "{mpm}: {}", t.output);
    }
}

#[test]
#[should_panic(expected = "exited during startup")]
fn start_panics_on_bad_config() {
    let _a = Apache::builder()
        .with_module(false)
        .directives("NoSuchDirective x")
        .start();
}

#[test]
fn parallel_servers_get_distinct_ports() {
    let a = Apache::builder()
        .with_module(false)
        .file("htdocs/a.txt", "A")
        .start();
    let b = Apache::builder()
        .with_module(false)
        .file("htdocs/a.txt", "B")
        .start();
    assert_ne!(a.port, b.port);
    assert_eq!(a.get("/a.txt").text(), "A");
    assert_eq!(b.get("/a.txt").text(), "B");
}

#[test]
#[should_panic(expected = "processes left behind")]
fn stragglers_are_killed_and_fail_the_test() {
    // A piped logger forks a grandchild that Apache does not know about; it
    // stays in the process group after Apache exits.
    let a = Apache::builder()
        .with_module(false)
        .directives("CustomLog \"|/bin/sh -c 'sleep 300 & exec cat > /dev/null'\" \"%h\"")
        .start();
    assert!(a.pids().len() >= 3);
    a.stop();
}

#[test]
fn graceful_restart_keeps_serving() {
    let a = Apache::builder()
        .mpm(Mpm::Prefork)
        .with_module(false)
        .file("htdocs/r.txt", "r")
        .start();
    a.graceful_restart();
    assert_eq!(a.get("/r.txt").text(), "r");
    a.restart();
    assert_eq!(a.get("/r.txt").text(), "r");
}
