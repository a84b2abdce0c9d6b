//! Real frameworks from a real virtualenv: a Flask application and a Django
//! project, installed from PyPI into a virtualenv that this test builds
//! once per machine (under target/test-venv), reached through
//! `WSGIPythonHome` in embedded mode and `python-home=` in daemon mode.
//! Pages, Django's CSRF-protected form, multipart uploads and streamed
//! responses.

mod common;
use common::forms::{cookie_value, hidden_value};
use common::*;
use std::path::{Path, PathBuf};

const FLASK_APP: &str = include_str!("apps/frameworks/flask_app.wsgi");
const DJANGO_WSGI: &str = include_str!("apps/frameworks/django.wsgi");
const DJANGO_FILES: &[(&str, &str)] = &[
    (
        "djproj/__init__.py",
        include_str!("apps/frameworks/djproj/__init__.py"),
    ),
    (
        "djproj/settings.py",
        include_str!("apps/frameworks/djproj/settings.py"),
    ),
    (
        "djproj/urls.py",
        include_str!("apps/frameworks/djproj/urls.py"),
    ),
    (
        "djproj/views.py",
        include_str!("apps/frameworks/djproj/views.py"),
    ),
];

/// The cached virtualenv (see `common::venv`): `target/test-venv`.
fn ensure_venv() -> PathBuf {
    common::venv::frameworks_venv()
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Embedded,
    Daemon,
}

fn server(mpm: Mpm, mode: Mode, venv: &Path) -> Apache {
    let venv = venv.display();
    let python = match mode {
        Mode::Embedded => format!("WSGIPythonHome {venv}\nWSGIPythonPath {{dir}}/django\n"),
        Mode::Daemon => format!(
            "WSGIDaemonProcess fw threads=4 python-home={venv} python-path={{dir}}/django\n\
             WSGIProcessGroup fw\n"
        ),
    };
    let mut builder = Apache::builder()
        .mpm(mpm)
        .file("flask/app.wsgi", FLASK_APP)
        .file("django/django.wsgi", DJANGO_WSGI);
    for (rel, text) in DJANGO_FILES {
        builder = builder.file(&format!("django/{rel}"), text);
    }
    builder
        .directives(&format!(
            "{python}WSGIScriptAlias /flask {{dir}}/flask/app.wsgi\n\
             WSGIScriptAlias /django {{dir}}/django/django.wsgi\n"
        ))
        .start()
}

/// A multipart/form-data body with one text field and one file.
fn multipart(boundary: &str, note: &str, filename: &str, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n{note}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

/// Bytes of every value, CR/LF pairs and dashes included, so the parser
/// has to find the real boundary.
fn upload_data(len: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..len)
        .map(|i| {
            if i % 1000 == 0 {
                return b'\r';
            }
            if i % 1000 == 1 {
                return b'\n';
            }
            if i % 1000 < 4 {
                return b'-';
            }
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += byte as u32;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

fn check_upload(apache: &Apache, path: &str, label: &str) {
    let data = upload_data(300_000);
    let boundary = "----mwsgi-boundary-7d1f";
    let body = multipart(boundary, "hi there", "data.bin", &data);
    let ctype = format!("multipart/form-data; boundary={boundary}");
    let r = apache.request("POST", path, &[("Content-Type", &ctype)], &body);
    assert_eq!(r.status, 200, "{label} {path}: {}", apache.error_log());
    assert_eq!(
        r.text(),
        format!(
            "upload data.bin size={} adler={:08x} note=hi there",
            data.len(),
            adler32(&data)
        ),
        "{label} {path}"
    );
}

fn check_flask(apache: &Apache, venv: &Path, label: &str) {
    let r = apache.get("/flask/");
    assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
    let text = r.text();
    assert!(text.starts_with("flask 3."), "{label}: {text}");
    // The interpreter runs from the virtualenv.
    assert!(
        text.ends_with(&format!("prefix={}", venv.display())),
        "{label}: {text}"
    );
    let r = apache.get("/flask/hello/World");
    assert_eq!(r.text(), "Hello, World! (GET /hello/World)", "{label}");
    assert_eq!(apache.get("/flask/missing").status, 404, "{label}");
    check_upload(apache, "/flask/upload", label);
    // Over 8000 bytes (Apache's write buffer): in daemon mode, a shorter
    // stream whose end comes within response-flush-delay of its last block
    // is passed whole with its end and may get a Content-Length.
    let r = apache.get("/flask/stream?n=1500&tag=t");
    assert_eq!(r.status, 200, "{label}");
    // Streamed: no length known up front.
    assert_eq!(r.header("Content-Length"), None, "{label}");
    let expected: String = (0..1500).map(|i| format!("row {i} t\n")).collect();
    assert_eq!(r.text(), expected, "{label}");
}

fn check_django(apache: &Apache, venv: &Path, label: &str) {
    let r = apache.get("/django/");
    assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
    let text = r.text();
    assert!(text.starts_with("django "), "{label}: {text}");
    assert!(
        text.contains(&format!("prefix={} ", venv.display())),
        "{label}: {text}"
    );
    assert!(text.ends_with("script=/django"), "{label}: {text}");

    // CSRF: GET the form, send back the cookie and the hidden field.
    let form = apache.get("/django/form/");
    assert_eq!(form.status, 200, "{label}: {}", apache.error_log());
    let cookie = cookie_value(&form, "csrftoken")
        .unwrap_or_else(|| panic!("{label}: no csrftoken cookie: {:?}", form.headers));
    let token = hidden_value(&form.text(), "csrfmiddlewaretoken")
        .unwrap_or_else(|| panic!("{label}: no hidden token in {}", form.text()));
    let form_type = ("Content-Type", "application/x-www-form-urlencoded");
    let cookie_header = format!("csrftoken={cookie}");
    let body = format!("csrfmiddlewaretoken={token}&message=hello+django");
    let r = apache.request(
        "POST",
        "/django/form/",
        &[form_type, ("Cookie", &cookie_header)],
        body.as_bytes(),
    );
    assert_eq!(
        r.status,
        200,
        "{label}: {}\n{}",
        r.text(),
        apache.error_log()
    );
    assert_eq!(r.text(), "posted: hello django", "{label}");
    // Without the token: 403, and the view never runs.
    let r = apache.request(
        "POST",
        "/django/form/",
        &[form_type, ("Cookie", &cookie_header)],
        b"message=sneaky",
    );
    assert_eq!(r.status, 403, "{label}: {}", r.text());
    assert!(!r.text().contains("posted"), "{label}");

    check_upload(apache, "/django/upload/", label);

    // Over 8000 bytes: see check_flask.
    let r = apache.get("/django/stream/?n=1500");
    assert_eq!(r.status, 200, "{label}");
    assert_eq!(r.header("Content-Length"), None, "{label}");
    let expected: String = (0..1500).map(|i| format!("item {i}\n")).collect();
    assert_eq!(r.text(), expected, "{label}");
}

#[test]
fn flask_and_django_in_embedded_mode() {
    let venv = ensure_venv();
    let apache = server(Mpm::Event, Mode::Embedded, &venv);
    check_flask(&apache, &venv, "embedded");
    check_django(&apache, &venv, "embedded");
}

#[test]
fn flask_and_django_in_daemon_mode() {
    let venv = ensure_venv();
    let apache = server(Mpm::Event, Mode::Daemon, &venv);
    check_flask(&apache, &venv, "daemon");
    check_django(&apache, &venv, "daemon");
}
