//! Every file in conf-examples/, started as a user would start it and
//! checked on real pages: a Django site in daemon mode (static files from
//! Apache, the admin login with CSRF), a Flask app, the seed layout, two
//! virtual hosts with a daemon group and user each, HTTPS and HTTP/2, and
//! embedded mode under prefork.
//!
//! Each test copies conf-examples/ into a fresh directory (the examples'
//! `{examples}`), prepares what the example's header asks for, fills its
//! placeholders (`common::conf_examples::render`) and appends it to the
//! harness's httpd.conf.

mod common;
use common::conf_examples::{make_cert, render};
use common::forms::{cookie_value, hidden_value};
use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// A copy of conf-examples/ that Apache's user (and the example users)
/// can read: directories 0755, files 0644.
fn examples_copy() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                fs::create_dir(&target).unwrap();
                fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
                copy(&e.path(), &target);
            } else {
                fs::copy(e.path(), &target).unwrap();
                fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
    }
    let dir = temp_dir_with_mode("mwsgi-examples-", 0o755);
    copy(&common::conf_examples::dir(), dir.path());
    dir
}

/// Runs a command, panicking with its output if it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// No Python traceback in the error log (a page can look fine while the
/// log shows an application error on another request).
fn assert_no_traceback(apache: &Apache) {
    let log = apache.error_log();
    assert!(!log.contains("Traceback"), "error log:\n{log}");
}

/// Pids of the Apache's processes whose command line is exactly `name`
/// (what display-name= sets).
fn processes_named(apache: &Apache, name: &str) -> Vec<u32> {
    apache
        .pids()
        .into_iter()
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/cmdline"))
                .map(|c| c.replace('\0', " ").trim() == name)
                .unwrap_or(false)
        })
        .collect()
}

// ------------------------------------------------------------ Django

#[test]
fn django_site_in_daemon_mode_static_files_and_admin_login() {
    let venv = common::venv::frameworks_venv();
    let examples = examples_copy();
    let project = examples.path().join("django-site");
    let python = venv.join("bin/python");
    let manage = |args: &[&str]| {
        run(Command::new(&python)
            .arg("manage.py")
            .args(args)
            .current_dir(&project)
            .env("DJANGO_SUPERUSER_PASSWORD", "correct horse battery"))
    };
    // What django-site/mysite/settings.py's header asks for.
    manage(&["migrate", "--noinput"]);
    manage(&[
        "createsuperuser",
        "--noinput",
        "--username",
        "ada",
        "--email",
        "ada@example.com",
    ]);
    manage(&["collectstatic", "--noinput"]);
    run(Command::new("chown")
        .args(["-R", "www-data:www-data"])
        .arg(project.join("var")));

    let conf = render(
        "django.conf",
        &[
            ("examples", examples.path().to_str().unwrap()),
            ("venv", venv.to_str().unwrap()),
        ],
    );
    let apache = Apache::builder().directives(&conf).start();

    // Static files come from Apache: the file's bytes, Apache's validators,
    // and none of Django's headers (its middleware adds X-Frame-Options to
    // every response it makes; with DEBUG off it serves no static files).
    let css = apache.get("/static/site.css");
    assert_eq!(css.status, 200, "{}", apache.error_log());
    assert_eq!(
        css.text(),
        fs::read_to_string(project.join("assets/site.css")).unwrap()
    );
    assert_eq!(css.header("Content-Type"), Some("text/css"));
    assert!(css.header("ETag").is_some(), "{:?}", css.headers);
    assert_eq!(css.header("X-Frame-Options"), None, "{:?}", css.headers);
    let admin_css = apache.get("/static/admin/css/base.css");
    assert_eq!(admin_css.status, 200);
    assert_eq!(admin_css.header("X-Frame-Options"), None);

    // Not logged in: the admin sends us to its login page.
    let r = apache.get("/admin/");
    assert_eq!(r.status, 302, "{}\n{}", r.text(), apache.error_log());
    assert_eq!(r.header("Location"), Some("/admin/login/?next=/admin/"));

    // The login form, from Django (in a daemon process) with its CSRF token.
    let form = apache.get("/admin/login/?next=/admin/");
    assert_eq!(form.status, 200, "{}", apache.error_log());
    assert_eq!(form.header("X-Frame-Options"), Some("DENY"));
    let html = form.text();
    assert!(html.contains("/static/admin/css/base.css"), "{html}");
    let csrf_cookie = cookie_value(&form, "csrftoken")
        .unwrap_or_else(|| panic!("no csrftoken cookie: {:?}", form.headers));
    let token = hidden_value(&html, "csrfmiddlewaretoken")
        .unwrap_or_else(|| panic!("no csrfmiddlewaretoken in {html}"));
    let form_type = ("Content-Type", "application/x-www-form-urlencoded");
    let cookie = format!("csrftoken={csrf_cookie}");
    let login = |token: &str, password: &str| {
        let body = format!(
            "csrfmiddlewaretoken={token}&username=ada&password={password}&next=%2Fadmin%2F"
        );
        apache.request(
            "POST",
            "/admin/login/?next=/admin/",
            &[form_type, ("Cookie", &cookie)],
            body.as_bytes(),
        )
    };

    // Without the form's token: refused before any password check.
    let r = login("", "correct+horse+battery");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(cookie_value(&r, "sessionid"), None);
    // A wrong password: the form again, with Django's message.
    let r = login(&token, "wrong");
    assert_eq!(r.status, 200);
    assert!(
        r.text()
            .contains("Please enter the correct username and password"),
        "{}",
        r.text()
    );

    // The right one: a session, and the admin index greets the user.
    let r = login(&token, "correct+horse+battery");
    assert_eq!(r.status, 302, "{}\n{}", r.text(), apache.error_log());
    assert_eq!(r.header("Location"), Some("/admin/"));
    let session = cookie_value(&r, "sessionid")
        .unwrap_or_else(|| panic!("no sessionid cookie: {:?}", r.headers));
    let session_cookie = format!("{cookie}; sessionid={session}");
    let index = apache.request("GET", "/admin/", &[("Cookie", &session_cookie)], b"");
    assert_eq!(index.status, 200, "{}", apache.error_log());
    let html = index.text();
    assert!(html.contains("<strong>ada</strong>"), "{html}");
    assert!(html.contains("Site administration"), "{html}");

    // Served by the two daemon processes display-name=%{GROUP} names.
    assert_eq!(processes_named(&apache, "(wsgi:django)").len(), 2);
    assert_no_traceback(&apache);
}

// ------------------------------------------------------------ Flask

/// Starts example `conf_name` with `{venv}` = `venv`, asks its JSON status
/// page `status_path`, and checks it names the app and the daemon group
/// `group`, and that the pid it gives is one of the group's two daemon
/// processes. Returns the copy of the examples, Apache and the status JSON.
fn daemon_example(
    conf_name: &str,
    venv: &Path,
    status_path: &str,
    app: &str,
    group: &str,
) -> (tempfile::TempDir, Apache, String) {
    let examples = examples_copy();
    let conf = render(
        conf_name,
        &[
            ("examples", examples.path().to_str().unwrap()),
            ("venv", venv.to_str().unwrap()),
        ],
    );
    let apache = Apache::builder().directives(&conf).start();

    let r = apache.get(status_path);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), apache.error_log());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let json = r.text();
    assert!(json.contains(&format!(r#""app":"{app}""#)), "{json}");
    assert!(
        json.contains(&format!(r#""process_group":"{group}""#)),
        "{json}"
    );
    let daemons = processes_named(&apache, &format!("(wsgi:{group})"));
    assert_eq!(daemons.len(), 2, "{:?}", apache.pids());
    let pid: u32 = regex::Regex::new(r#""pid":(\d+)"#)
        .unwrap()
        .captures(&json)
        .unwrap_or_else(|| panic!("no pid in {json}"))[1]
        .parse()
        .unwrap();
    assert!(daemons.contains(&pid), "{pid} not in {daemons:?}");
    (examples, apache, json)
}

#[test]
fn flask_app_in_daemon_mode_json_and_form_post() {
    let venv = common::venv::frameworks_venv();
    let (_examples, apache, _) = daemon_example(
        "flask.conf",
        &venv,
        "/app/api/status",
        "flask-example",
        "flask",
    );

    let form = apache.get("/app/greet");
    assert_eq!(form.status, 200);
    assert!(
        form.text()
            .contains(r#"<form method="post" action="greet">"#)
    );
    let form_type = ("Content-Type", "application/x-www-form-urlencoded");
    let r = apache.request("POST", "/app/greet", &[form_type], b"name=Ada+Lovelace");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.text().trim(), r#"{"greeting":"Hello, Ada Lovelace!"}"#);
    let r = apache.request("POST", "/app/greet", &[form_type], b"name=");
    assert_eq!(r.status, 400);
    assert_eq!(apache.get("/app/missing").status, 404);
    assert_no_traceback(&apache);
}

// ------------------------------------------------------------ seed

#[test]
fn seed_layout_three_daemon_processes_named_mod_wsgi() {
    let examples = examples_copy();
    let conf = render(
        "daemon-seed.conf",
        &[("examples", examples.path().to_str().unwrap())],
    );
    let apache = Apache::builder().directives(&conf).start();
    for _ in 0..6 {
        assert_eq!(ok_body(&apache, "/"), "Hello, World!");
    }
    assert!(
        wait_until(std::time::Duration::from_secs(10), || processes_named(
            &apache, "mod_wsgi"
        )
        .len()
            == 3),
        "expected three processes named mod_wsgi among {:?}",
        apache.pids()
    );
    // The app was loaded in the daemon group, not in Apache's children.
    let log = apache.error_log();
    assert!(
        log.lines()
            .any(|l| l.contains("Loading WSGI script") && l.contains("daemon process 'mysite'")),
        "{log}"
    );
    assert!(!log.contains("not built"), "{log}");
    assert_no_traceback(&apache);
}

// ------------------------------------------------------------ virtual hosts

/// Creates the system user `name` (with its own group) unless it exists.
fn ensure_system_user(name: &str) -> u32 {
    let exists = |n: &str| {
        Command::new("getent")
            .args(["passwd", n])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if !exists(name) {
        let out = Command::new("useradd")
            .args(["--system", "--no-create-home", "--user-group"])
            .args(["--shell", "/usr/sbin/nologin", name])
            .output()
            .expect("running useradd");
        // 9: made meanwhile by another test run.
        assert!(
            out.status.success() || out.status.code() == Some(9),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    run(Command::new("id").args(["-u", name]))
        .trim()
        .parse()
        .unwrap()
}

/// GET / with a Host header: (status line, body).
fn get_host(apache: &Apache, host: &str) -> (String, String) {
    let reply = apache
        .raw(format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes());
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

#[test]
fn virtual_hosts_each_with_own_daemon_user_and_private_files() {
    let uid_a = ensure_system_user("mwsgi-a");
    let uid_b = ensure_system_user("mwsgi-b");
    let examples = examples_copy();
    // {sites}/a and {sites}/b: private to their site's user.
    let sites = temp_dir_with_mode("mwsgi-sites-", 0o755);
    for (site, user) in [("a", "mwsgi-a"), ("b", "mwsgi-b")] {
        let d = sites.path().join(site);
        fs::create_dir(&d).unwrap();
        fs::write(d.join("private.txt"), format!("{site}'s secret\n")).unwrap();
        fs::set_permissions(d.join("private.txt"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
        run(Command::new("chown")
            .arg("-R")
            .arg(format!("{user}:{user}"))
            .arg(&d));
    }
    let conf = render(
        "virtual-hosts.conf",
        &[
            ("examples", examples.path().to_str().unwrap()),
            ("user_a", "mwsgi-a"),
            ("user_b", "mwsgi-b"),
            ("sites", sites.path().to_str().unwrap()),
        ],
    );
    let apache = Apache::builder().directives(&conf).start();

    for (host, group, user, uid, own, other) in [
        ("a.example", "site-a", "mwsgi-a", uid_a, "a", "b"),
        ("b.example", "site-b", "mwsgi-b", uid_b, "b", "a"),
    ] {
        let (status, body) = get_host(&apache, host);
        assert!(
            status.contains(" 200 "),
            "{host}: {status}\n{body}\n{}",
            apache.error_log()
        );
        assert_eq!(field(&body, "host"), host);
        assert_eq!(field(&body, "process_group"), group, "{body}");
        assert_eq!(field(&body, "user"), user, "{body}");
        assert_eq!(field(&body, "uid"), uid.to_string(), "{body}");
        assert_eq!(
            field(&body, "cwd"),
            sites.path().join(own).display().to_string()
        );
        assert_eq!(
            field(&body, &format!("{own}/private.txt")),
            "readable",
            "{body}"
        );
        assert_eq!(
            field(&body, &format!("{other}/private.txt")),
            "PermissionError",
            "{body}"
        );
    }
    assert_no_traceback(&apache);
}

// ------------------------------------------------------------ HTTPS, HTTP/2

/// curl `args` against `url`: (HTTP version curl used, body).
fn curl(args: &[&str], url: &str) -> (String, String) {
    let out = run(Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .args(["--write-out", "\nhttp_version=%{http_version}"])
        .args(args)
        .arg(url));
    let (body, version) = out
        .rsplit_once("\nhttp_version=")
        .unwrap_or_else(|| panic!("curl output: {out}"));
    (version.to_string(), body.to_string())
}

#[test]
fn https_with_mod_ssl_and_http2_over_tls_and_cleartext() {
    let examples = examples_copy();
    let (cert, key) = make_cert(examples.path());
    let tls_port = pick_port().to_string();
    let conf = render(
        "https-http2.conf",
        &[
            ("examples", examples.path().to_str().unwrap()),
            ("modules", MODULES_DIR),
            ("tls_port", &tls_port),
            ("cert", cert.to_str().unwrap()),
            ("key", key.to_str().unwrap()),
        ],
    );
    let apache = Apache::builder().directives(&conf).start();
    let https = format!("https://127.0.0.1:{tls_port}/");
    let http = apache.url("/");
    let cacert = cert.to_str().unwrap();

    // (curl options, URL, HTTP version, scheme, protocol the app sees).
    let cases: [(&[&str], &str, &str, &str, &str); 4] = [
        (&["--cacert", cacert], &https, "2", "https", "HTTP/2.0"),
        (
            &["--cacert", cacert, "--http1.1"],
            &https,
            "1.1",
            "https",
            "HTTP/1.1",
        ),
        (&["--http2"], &http, "2", "http", "HTTP/2.0"),
        (&["--http2-prior-knowledge"], &http, "2", "http", "HTTP/2.0"),
    ];
    for (args, url, version, scheme, protocol) in cases {
        let label = format!("curl {args:?} {url}");
        let (got_version, body) = curl(args, url);
        assert_eq!(
            got_version,
            version,
            "{label}\n{body}\n{}",
            apache.error_log()
        );
        assert_eq!(field(&body, "url_scheme"), scheme, "{label}\n{body}");
        assert_eq!(field(&body, "server_protocol"), protocol, "{label}\n{body}");
        assert_eq!(field(&body, "process_group"), "secure", "{label}\n{body}");
        assert_eq!(field(&body, "application_group"), "", "{label}\n{body}");
    }
    assert_no_traceback(&apache);
}

// ------------------------------------------------------------ embedded

#[test]
fn embedded_mode_under_prefork() {
    let examples = examples_copy();
    let conf = render(
        "embedded.conf",
        &[("examples", examples.path().to_str().unwrap())],
    );
    let apache = Apache::builder()
        .mpm(Mpm::Prefork)
        .directives(&conf)
        .start();
    assert_eq!(ok_body(&apache, "/"), "Hello, World!");
    let info = get_fields(&apache, "/info");
    // Inside one of Apache's own children: no daemon group, one request at
    // a time per process, several processes.
    assert_eq!(info["process_group"], "");
    assert_eq!(info["multithread"], "False");
    assert_eq!(info["multiprocess"], "True");
    assert_eq!(info["user"], "www-data");
    let pid: u32 = info["pid"].parse().unwrap();
    assert_ne!(pid, apache.parent_pid());
    assert!(
        apache.pids().contains(&pid),
        "{pid} not among {:?}",
        apache.pids()
    );
    assert_no_traceback(&apache);
}

#[test]
fn fastapi_app_in_daemon_mode() {
    let venv = common::venv::asgi_venv();
    let (_examples, apache, json) = daemon_example(
        "fastapi.conf",
        &venv,
        "/api/status",
        "fastapi-example",
        "fastapi",
    );
    assert!(json.contains(r#""up_seconds":"#), "lifespan state: {json}");

    let json_type = ("Content-Type", "application/json");
    let r = apache.request(
        "POST",
        "/api/echo",
        &[json_type],
        br#"{"text": "hi there"}"#,
    );
    assert_eq!(r.status, 200, "{}", apache.error_log());
    assert_eq!(r.text(), r#"{"text":"hi there","length":8}"#);
    let r = apache.request("POST", "/api/echo", &[json_type], br#"{"txt": 1}"#);
    assert_eq!(r.status, 422);

    let r = apache.get("/api/notes/welcome");
    assert_eq!(
        r.text(),
        r#"{"name":"welcome","text":"Hello from FastAPI"}"#
    );
    let r = apache.get("/api/notes/other");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), r#"{"detail":"no such note"}"#);

    let r = apache.get("/api/countdown?start=3");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "3\n2\n1\n0\n");

    let (head, ws) = common::websocket::handshake(apache.port, "/api/chat", "");
    let mut ws = ws.unwrap_or_else(|| panic!("{head}\n{}", apache.error_log()));
    ws.send_text("hi");
    assert_eq!(ws.recv_text(), "you said: hi");
    ws.send_frame(common::websocket::CLOSE, &[0x03, 0xe8], true);
    assert_eq!(ws.recv_close().0, 1000);
    assert_no_traceback(&apache);
}
