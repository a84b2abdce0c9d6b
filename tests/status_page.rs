//! The status page (`SetHandler wsgi-status`): every daemon group, its
//! processes and what each request thread is doing, under load, with
//! restarts and why; HTML and `?json`; access controlled by Apache.

mod common;
use common::load::{Load, LoadSpec};
use common::*;
use serde_json::Value;
use std::time::Duration;

const APP: &str = r#"import os, time
def application(environ, start_response):
    seconds = float(environ.get('QUERY_STRING') or 0)
    time.sleep(seconds)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'fast' if not seconds else str(os.getpid()).encode()]
"#;

fn site(options: &str) -> Apache {
    Apache::builder()
        .file("app/app.wsgi", APP)
        .directives(&format!(
            "WSGIDaemonProcess g {options} display-name=status-daemon\n\
             WSGIDaemonProcess other processes=1 threads=1\n\
             WSGIScriptAlias /app {{dir}}/app/app.wsgi process-group=g application-group=%{{GLOBAL}}\n\
             <Location /wsgi-status>\nSetHandler wsgi-status\nRequire ip 127.0.0.1\n</Location>\n\
             <Location /hidden-status>\nSetHandler wsgi-status\nRequire all denied\n</Location>\n"
        ))
        .start()
}

fn status(apache: &Apache) -> Value {
    let r = apache.get("/wsgi-status?json");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    serde_json::from_str(&r.text()).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn group<'a>(page: &'a Value, name: &str) -> &'a Value {
    page["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no group {name} in {page}"))
}

/// Busy threads of group `g`: (pid, url, seconds).
fn busy(page: &Value) -> Vec<(u64, String, f64)> {
    let mut out = Vec::new();
    for p in group(page, "g")["processes"].as_array().unwrap() {
        for t in p["threads"].as_array().unwrap() {
            if t["state"] == "busy" {
                out.push((
                    p["pid"].as_u64().unwrap(),
                    t["url"].as_str().unwrap().to_string(),
                    t["seconds"].as_f64().unwrap(),
                ));
            }
        }
    }
    out
}

fn daemon_pids(apache: &Apache) -> Vec<u64> {
    apache
        .pids_named("status-daemon")
        .into_iter()
        .map(u64::from)
        .collect()
}

/// Under load, three slow requests show as busy threads with their URL and
/// how long they have run, in the process that serves them; the page lists
/// every group and process, and the requests each served.
#[test]
fn busy_threads_show_under_load() {
    let apache = site("processes=2 threads=4");
    assert_eq!(apache.get("/app").text(), "fast");
    let load = Load::start(&LoadSpec {
        port: apache.port,
        path: "/app".into(),
        connections: 4,
        answer_timeout: Duration::from_secs(30),
        expect_body: Some(b"fast".to_vec()),
    });
    let port = apache.port;
    let slow: Vec<_> = (0..3)
        .map(|i| {
            std::thread::spawn(move || {
                ureq::get(&format!("http://127.0.0.1:{port}/app?3.{i}"))
                    .call()
                    .map(|r| r.into_string().unwrap_or_default())
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let page = status(&apache);
    let load_report = load.finish();
    let slow_pids: Vec<u64> = slow
        .into_iter()
        .map(|t| t.join().unwrap().unwrap().parse().unwrap())
        .collect();
    let shown: Vec<(u64, String, f64)> = busy(&page)
        .into_iter()
        .filter(|(_, url, _)| url.starts_with("/app?3."))
        .collect();
    assert_eq!(shown.len(), 3, "{page:#}");
    for (pid, url, seconds) in &shown {
        assert!(
            (1.0..3.0).contains(seconds),
            "{url} shown running for {seconds}s\n{page:#}"
        );
        let i: usize = url["/app?3.".len()..].parse().unwrap();
        assert_eq!(*pid, slow_pids[i], "{url} shown in the wrong process");
    }
    let g = group(&page, "g");
    let processes = g["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 2);
    let mut pids: Vec<u64> = processes
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    pids.sort_unstable();
    let mut live = daemon_pids(&apache);
    live.sort_unstable();
    assert_eq!(pids, live);
    assert!(
        processes
            .iter()
            .all(|p| p["threads"].as_array().unwrap().len() == 4)
    );
    let served: u64 = processes
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .sum();
    assert!(served >= 10, "{served} requests served\n{page:#}");
    assert!(
        load_report.ok > 0 && load_report.failed() == 0,
        "{}",
        load_report.summary()
    );
    // The other group is listed, idle.
    assert_eq!(
        group(&page, "other")["processes"].as_array().unwrap().len(),
        1
    );
    // Done: no busy thread left (a thread clears its entry just after its
    // answer went out).
    assert!(
        wait_until(Duration::from_secs(5), || busy(&status(&apache)).is_empty()),
        "{:#}",
        status(&apache)
    );
}

/// A daemon killed and one recycled: the page counts the restarts of their
/// slots and says how the last process ended.
#[test]
fn restarts_and_why_are_shown() {
    let apache = site("processes=2 threads=2 maximum-requests=5");
    let first = status(&apache);
    let victim = group(&first, "g")["processes"][0]["pid"].as_u64().unwrap();
    assert!(signal_pid(victim as u32, "KILL"));
    assert!(
        wait_until(Duration::from_secs(10), || {
            let page = status(&apache);
            let slot = &group(&page, "g")["processes"][0];
            slot["restarts"] == 1 && slot["pid"].as_u64() != Some(victim)
        }),
        "{:#}\n{}",
        status(&apache),
        apache.error_log()
    );
    let page = status(&apache);
    assert_eq!(
        group(&page, "g")["processes"][0]["last_end"],
        "was killed by SIGKILL"
    );
    // maximum-requests=5: the processes recycle.
    for _ in 0..20 {
        assert_eq!(apache.get("/app").status, 200);
    }
    assert!(
        wait_until(Duration::from_secs(10), || {
            let page = status(&apache);
            group(&page, "g")["processes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["last_end"] == "maximum_requests")
        }),
        "{:#}",
        status(&apache)
    );
}

/// The HTML page for a person, with the same facts; Apache's access
/// control applies (403 where denied), as for mod_status.
#[test]
fn html_page_and_access_control() {
    let apache = site("processes=1 threads=2");
    let r = apache.get("/wsgi-status");
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
    let text = r.text();
    assert!(text.contains("Daemon process group g"), "{text}");
    assert!(text.contains("Daemon process group other"), "{text}");
    assert!(text.contains("0 of 2 request threads busy"), "{text}");
    let pid = daemon_pids(&apache)[0];
    assert!(
        text.contains(&format!("<td rowspan=\"2\">{pid}</td>")),
        "{text}"
    );
    assert_eq!(apache.get("/hidden-status").status, 403);
}
