//! ASGI applications mounted with WSGIScriptAlias, in embedded and daemon
//! mode: FastAPI from a real virtualenv (built once per machine under
//! target/test-venv-asgi), a bare ASGI callable, lifespan, streaming in
//! both directions, background tasks, client disconnects, and a WSGI and an
//! ASGI application side by side in one daemon group.

mod common;
use common::load::{Load, LoadSpec};
use common::*;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

const FASTAPI_APP: &str = include_str!("apps/asgi/fastapi_app.py");
const RAW_APP: &str = include_str!("apps/asgi/raw_app.py");
const WS_APP: &str = include_str!("apps/asgi/ws_app.py");
const MARKERS_PY: &str = include_str!("apps/asgi/markers.py");
const FAILING_LIFESPAN: &str = include_str!("apps/asgi/failing_lifespan.py");
const HELLO_WSGI: &str = include_str!("apps/asgi/hello_wsgi.py");
const EVENTS_WSGI: &str = include_str!("apps/asgi/events_wsgi.py");
const DJANGO_ASGI: &str = include_str!("apps/asgi/django_asgi.py");
const DJANGO_PROJECT: &[(&str, &str)] = &[
    (
        "djasgi/__init__.py",
        include_str!("apps/asgi/djasgi/__init__.py"),
    ),
    (
        "djasgi/settings.py",
        include_str!("apps/asgi/djasgi/settings.py"),
    ),
    ("djasgi/urls.py", include_str!("apps/asgi/djasgi/urls.py")),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Embedded,
    Daemon,
}

/// A directory the applications (www-data) write their markers to, kept
/// after Apache stops.
fn marker_dir() -> tempfile::TempDir {
    temp_dir_with_mode("mwsgi-asgi-", 0o777)
}

fn server(mode: Mode, venv: &Path, markers: &Path) -> Apache {
    server_with(mode, venv, markers, 4, "")
}

/// `server`, with `threads` request threads in daemon mode and `extra`
/// directives.
fn server_with(mode: Mode, venv: &Path, markers: &Path, threads: usize, extra: &str) -> Apache {
    server_under(Mpm::Event, mode, venv, markers, threads, extra)
}

/// `server_with` under `mpm`.
fn server_under(
    mpm: Mpm,
    mode: Mode,
    venv: &Path,
    markers: &Path,
    threads: usize,
    extra: &str,
) -> Apache {
    let venv = venv.display();
    let python = match mode {
        Mode::Embedded => format!("WSGIPythonHome {venv}\nWSGIPythonPath {{dir}}/app\n"),
        Mode::Daemon => format!(
            "WSGIDaemonProcess asgi processes=1 threads={threads} python-home={venv} \
             python-path={{dir}}/app display-name=asgi-daemon\n\
             WSGIProcessGroup asgi\n"
        ),
    };
    let mut builder = Apache::builder().mpm(mpm);
    for (rel, text) in DJANGO_PROJECT {
        builder = builder.file(&format!("app/{rel}"), text);
    }
    builder
        .file("app/django_asgi.py", DJANGO_ASGI)
        .file("app/fastapi_app.py", FASTAPI_APP)
        .file("app/raw_app.py", RAW_APP)
        .file("app/ws_app.py", WS_APP)
        .file("app/markers.py", MARKERS_PY)
        .file("app/failing_lifespan.py", FAILING_LIFESPAN)
        .file("app/hello_wsgi.py", HELLO_WSGI)
        .file("app/events_wsgi.py", EVENTS_WSGI)
        .file("app/marker_dir", &markers.display().to_string())
        .directives(&format!(
            "KeepAliveTimeout 30\nMaxKeepAliveRequests 0\n\
             {python}WSGIApplicationGroup %{{GLOBAL}}\nWSGIChunkedRequest On\n\
             WSGIScriptAlias /api {{dir}}/app/fastapi_app.py\n\
             WSGIScriptAlias /raw {{dir}}/app/raw_app.py\n\
             WSGIScriptAlias /ws {{dir}}/app/ws_app.py\n\
             WSGIScriptAlias /failing {{dir}}/app/failing_lifespan.py\n\
             WSGIScriptAlias /wsgi {{dir}}/app/hello_wsgi.py\n\
             WSGIScriptAlias /events {{dir}}/app/events_wsgi.py\n\
             WSGIScriptAlias /dj {{dir}}/app/django_asgi.py\n\
             WSGIScriptAlias /sub {{dir}}/app/raw_app.py application-group=asgi-sub\n{extra}"
        ))
        .start()
}

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): status {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        )
    })
}

fn fastapi_in(mode: Mode) {
    let venv = common::venv::asgi_venv();
    let markers = marker_dir();
    let apache = server(mode, &venv, markers.path());

    // Path and query parameters.
    let r = apache.get("/api/items/42?q=café");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    let v = json(&r);
    assert_eq!(v["item_id"], 42);
    assert_eq!(v["q"], "café");
    assert_eq!(apache.get("/api/items/nope").status, 422);
    assert_eq!(apache.get("/api/nowhere").status, 404);

    // A JSON body, validated by pydantic.
    let r = apache.request(
        "POST",
        "/api/items",
        &[("Content-Type", "application/json")],
        br#"{"name": "lamp", "price": 21.5, "tags": ["a", "b"]}"#,
    );
    assert_eq!(r.status, 200);
    let v = json(&r);
    assert_eq!(v["name"], "lamp");
    assert_eq!(v["total"], 43.0);
    assert_eq!(v["tags"], serde_json::json!(["a", "b"]));
    let r = apache.request(
        "POST",
        "/api/items",
        &[("Content-Type", "application/json")],
        br#"{"name": "lamp"}"#,
    );
    assert_eq!(r.status, 422);

    // A dependency raising HTTPException.
    let r = apache.get("/api/private");
    assert_eq!(r.status, 403);
    assert_eq!(json(&r)["detail"], "bad token");
    let r = apache.request("GET", "/api/private", &[("X-Token", "secret")], b"");
    assert_eq!(r.status, 200);

    // A streaming response, chunked to the client.
    let r = apache.get("/api/stream?n=50");
    assert_eq!(r.status, 200);
    let want: String = (0..50).map(|i| format!("chunk {i}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&r.body), want);

    // The scope: mount point, client, server, scheme, headers, extras,
    // the lifespan's state.
    let r = apache.request("GET", "/api/scope?a=1&b=%20", &[("X-Probe", "yes")], b"");
    assert_eq!(r.status, 200);
    let v = json(&r);
    assert_eq!(v["path"], "/api/scope");
    assert_eq!(v["root_path"], "/api");
    assert_eq!(v["scheme"], "http");
    assert_eq!(v["client"][0], "127.0.0.1");
    assert!(v["client"][1].as_u64().unwrap() > 0);
    assert_eq!(v["server"][1].as_u64().unwrap(), apache.port as u64);
    assert_eq!(v["http_version"], "1.1");
    assert_eq!(v["query_string"], "a=1&b=%20");
    assert_eq!(v["header"], "yes");
    let group = if mode == Mode::Daemon { "asgi" } else { "" };
    assert_eq!(v["process_group"], group);
    assert_eq!(v["application_group"], "");
    let pid = v["pid"].as_u64().unwrap();
    assert_eq!(v["started_by"].as_u64().unwrap(), pid, "lifespan state");
    // uvloop, installed in the virtualenv, runs the interpreter's loop.
    assert_eq!(v["event_loop"], "uvloop");
    assert_eq!(v["loop_class"], "uvloop");

    // A background task runs after the response went out.
    let r = apache.get("/api/later?tag=t1");
    assert_eq!(json(&r)["scheduled"], "t1");
    let background = wait_for_file(&markers.path().join("background"), Duration::from_secs(10));
    assert_eq!(
        background.as_deref(),
        Some("t1\n"),
        "{}",
        apache.error_log()
    );

    // Lifespan startup ran once per process that served.
    let startups = fs::read_to_string(markers.path().join("startup")).unwrap();
    let served_by: std::collections::BTreeSet<&str> = startups.lines().collect();
    assert_eq!(
        startups.lines().count(),
        served_by.len(),
        "a process ran the lifespan startup twice: {startups}"
    );
    assert!(served_by.contains(pid.to_string().as_str()), "{startups}");

    // WSGI beside ASGI in the same process (group).
    let r = apache.get("/wsgi");
    assert_eq!(r.status, 200);
    let wsgi_pid: u64 = String::from_utf8_lossy(&r.body)
        .trim_start_matches("wsgi ")
        .parse()
        .unwrap();
    if mode == Mode::Daemon {
        assert_eq!(wsgi_pid, pid, "one daemon process serves both");
    }

    assert!(
        !apache.error_log().contains("Traceback"),
        "{}",
        apache.error_log()
    );
    apache.stop();
    // The lifespan shutdown ran in each process at its exit.
    let shutdowns = wait_for_file(&markers.path().join("shutdown"), Duration::from_secs(10))
        .unwrap_or_default();
    let started: std::collections::BTreeSet<&str> = startups.lines().collect();
    let stopped: std::collections::BTreeSet<&str> = shutdowns.lines().collect();
    assert_eq!(started, stopped, "lifespan shutdown per started process");
}

#[test]
fn fastapi_in_daemon_mode() {
    fastapi_in(Mode::Daemon);
}

#[test]
fn fastapi_in_embedded_mode() {
    fastapi_in(Mode::Embedded);
}

/// A bare ASGI callable named `app`: the request body arrives in several
/// `http.request` messages, whole, chunked or not.
#[test]
fn bare_asgi_callable_reads_the_body_in_messages() {
    let venv = common::venv::asgi_venv();
    let markers = marker_dir();
    for mode in [Mode::Embedded, Mode::Daemon] {
        let apache = server(mode, &venv, markers.path());
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let r = apache.request("PUT", "/raw/x", &[], &body);
        assert_eq!(r.status, 201, "{mode:?}: {}", apache.error_log());
        let v = json(&r);
        assert_eq!(v["method"], "PUT");
        assert_eq!(v["path"], "/raw/x");
        assert_eq!(v["bytes"], 3_000_000);
        assert!(v["messages"].as_u64().unwrap() >= 3_000_000 / 65536, "{v}");
        // Chunked, length unknown up front.
        let mut raw = b"POST /raw/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
                        Connection: close\r\n\r\n"
            .to_vec();
        for piece in [&b"hello "[..], b"chunked ", b"world"] {
            raw.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            raw.extend_from_slice(piece);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        let raw_answer = apache.raw(&raw);
        // The header's bytes as the application gave them (UTF-8 here),
        // not re-encoded.
        let header: &[u8] = b"\r\nx-bytes: caf\xc3\xa9 \xe2\x9c\x93\r\n";
        assert!(
            raw_answer.windows(header.len()).any(|w| w == header),
            "{mode:?}: {raw_answer:?}"
        );
        let answer = String::from_utf8_lossy(&raw_answer).into_owned();
        assert!(answer.starts_with("HTTP/1.1 201"), "{mode:?}: {answer}");
        assert!(answer.contains(r#""bytes": 19"#), "{answer}");
        apache.stop();
    }
}

/// A failed lifespan startup fails the request with a 500 and one log line
/// naming the reason, and is tried again by the next request.
#[test]
fn failed_lifespan_startup_is_a_500_with_its_message() {
    let venv = common::venv::asgi_venv();
    let markers = marker_dir();
    for mode in [Mode::Embedded, Mode::Daemon] {
        let apache = server(mode, &venv, markers.path());
        for _ in 0..2 {
            let r = apache.get("/failing/");
            assert_eq!(r.status, 500, "{mode:?}");
            assert!(!String::from_utf8_lossy(&r.body).contains("should not be served"));
        }
        let log = apache.error_log();
        let lines = log
            .lines()
            .filter(|l| l.contains("lifespan startup failed: database unreachable"))
            .count();
        assert!(lines >= 2, "{mode:?}: one line per failed request:\n{log}");
        apache.stop();
    }
}

/// A client that goes away in the middle of a streaming response: the
/// application sees the disconnect (its generator ends) and the request
/// thread is free again.
#[test]
fn client_disconnect_ends_a_streaming_response() {
    let venv = common::venv::asgi_venv();
    for mode in [Mode::Embedded, Mode::Daemon] {
        let markers = marker_dir();
        let apache = server(mode, &venv, markers.path());
        let mut s = std::net::TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
        use std::io::{Read, Write};
        s.write_all(b"GET /api/endless HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut got = vec![0u8; 8192];
        let n = s.read(&mut got).unwrap();
        assert!(String::from_utf8_lossy(&got[..n]).starts_with("HTTP/1.1 200"));
        drop(s);
        let dropped = Instant::now();
        let ended = wait_for_file(
            &markers.path().join("endless-ended"),
            Duration::from_secs(20),
        );
        assert!(
            ended.is_some(),
            "{mode:?}: the stream never ended:\n{}",
            apache.error_log()
        );
        // Told at once (http.disconnect, then send() raising), not
        // cancelled after close()'s 5 s of grace.
        assert!(
            dropped.elapsed() < Duration::from_secs(4),
            "{mode:?}: the application learnt of the disconnect only after {:?}",
            dropped.elapsed()
        );
        // Every thread is free: a few requests at once are all answered.
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let port = apache.port;
                std::thread::spawn(move || {
                    ureq::get(&format!("http://127.0.0.1:{port}/api/items/1"))
                        .call()
                        .map(|r| r.status())
                        .unwrap_or(0)
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 200);
        }
        apache.stop();
    }
}

/// Django's ASGI handler: async views on the event loop, a sync view on
/// asgiref's thread, a streamed response, the request body.
#[test]
fn django_asgi_handler_with_async_views() {
    let venv = common::venv::asgi_venv();
    let markers = marker_dir();
    for mode in [Mode::Embedded, Mode::Daemon] {
        let apache = server(mode, &venv, markers.path());
        let r = apache.request("POST", "/dj/hello?name=ada", &[], &[b'x'; 100_000]);
        assert_eq!(r.status, 200, "{mode:?}: {}", apache.error_log());
        let v = json(&r);
        assert_eq!(v["async"], true);
        assert_eq!(v["path"], "/dj/hello");
        assert_eq!(v["script_name"], "/dj");
        assert_eq!(v["method"], "POST");
        assert_eq!(v["body_length"], 100_000);
        assert_eq!(v["name"], "ada");
        assert_eq!(
            v["thread"], "mod_wsgi_rs-asgi",
            "async views run on the loop"
        );
        let r = apache.get("/dj/sync");
        assert_eq!(r.status, 200);
        assert_eq!(json(&r)["async"], false);
        let r = apache.get("/dj/stream");
        assert_eq!(r.text(), "part 0\npart 1\npart 2\n");
        assert_eq!(apache.get("/dj/missing").status, 404);
        assert!(
            !apache.error_log().contains("Traceback"),
            "{}",
            apache.error_log()
        );
        apache.stop();
    }
}

/// An ASGI application in a sub-interpreter (its own application group):
/// that interpreter gets its own event loop.
#[test]
fn asgi_in_a_sub_interpreter() {
    let venv = common::venv::asgi_venv();
    let markers = marker_dir();
    for mode in [Mode::Embedded, Mode::Daemon] {
        let apache = server(mode, &venv, markers.path());
        for path in ["/sub/a", "/raw/b"] {
            let r = apache.request("POST", path, &[], b"12345");
            assert_eq!(r.status, 201, "{mode:?} {path}: {}", apache.error_log());
            assert_eq!(json(&r)["bytes"], 5);
        }
        apache.stop();
    }
}

/// The restart drill of tests/reliability.rs with an ASGI application:
/// graceful restarts under keep-alive load lose no request, in daemon mode
/// (the old daemons drain) and in embedded mode.
#[test]
fn graceful_restarts_under_asgi_load_lose_no_request() {
    let venv = common::venv::asgi_venv();
    let markers = marker_dir();
    for mode in [Mode::Daemon, Mode::Embedded] {
        let apache = server(mode, &venv, markers.path());
        assert_eq!(apache.get("/api/drill").text(), "hello from the drill");
        let load = Load::start(&LoadSpec {
            port: apache.port,
            path: "/api/drill".into(),
            connections: 16,
            answer_timeout: Duration::from_secs(30),
            expect_body: Some(b"hello from the drill".to_vec()),
        });
        std::thread::sleep(Duration::from_secs(2));
        for _ in 0..3 {
            apache.graceful_restart();
            std::thread::sleep(Duration::from_secs(2));
        }
        let report = load.finish();
        println!("DRILL graceful x3, ASGI, {mode:?}: {}", report.summary());
        assert!(report.ok > 0, "nothing served");
        assert_eq!(
            report.failed(),
            0,
            "{mode:?}: requests failed: {}\nsamples: {:#?}\n{}",
            report.summary(),
            report.samples,
            apache.error_log()
        );
        let log = apache.error_log();
        assert!(
            !log.contains("exit signal") && !log.contains("Traceback"),
            "{log}"
        );
        apache.stop();
    }
}

/// A process that serves only WSGI applications never loads the ASGI
/// runtime (asyncio and the rest cost each daemon about 10 MiB).
#[test]
fn wsgi_only_processes_do_not_load_the_asgi_runtime() {
    const PLAIN: &str = r#"import sys
def application(environ, start_response):
    body = ("runtime=%s asyncio=%s" % ("_mod_wsgi_rs_asgi" in sys.modules,
                                        "asyncio" in sys.modules)).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
"#;
    let apache = Apache::builder()
        .file("app/plain.py", PLAIN)
        .directives(
            "WSGIDaemonProcess plain threads=2\n\
             WSGIScriptAlias /daemon {dir}/app/plain.py process-group=plain\n\
             WSGIScriptAlias /embedded {dir}/app/plain.py\n",
        )
        .start();
    for path in ["/daemon", "/embedded", "/daemon", "/embedded"] {
        let r = apache.get(path);
        assert_eq!(r.status, 200, "{}", apache.error_log());
        assert_eq!(r.text(), "runtime=False asyncio=False", "{path}");
    }
}

/// One WebSocket session after another against /ws of `apache` (either
/// mode): the handshake, messages both ways, both sides closing, denials,
/// an application error, hostile frames and a client that vanishes.
fn websocket_sessions(apache: &Apache, markers: &Path) {
    use common::websocket::{self, BINARY, CLOSE, PING, PONG, TEXT};
    // The handshake: RFC 6455's example key gives its accept value, and
    // the subprotocol the application picked comes back.
    let (head, ws) = websocket::handshake(
        apache.port,
        "/ws/echo",
        "Sec-WebSocket-Protocol: chat, superchat\r\n",
    );
    let mut ws = ws.unwrap_or_else(|| panic!("{head}\n{}", apache.error_log()));
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains(&format!(
            "\r\nsec-websocket-accept: {}\r\n",
            websocket::EXAMPLE_ACCEPT.to_ascii_lowercase()
        )),
        "{head}"
    );
    assert!(
        lower.contains("\r\nsec-websocket-protocol: chat\r\n"),
        "{head}"
    );
    assert!(lower.contains("\r\nupgrade: websocket\r\n"), "{head}");
    // The scope's path and root_path (the mount point).
    assert_eq!(ws.recv_text(), "hello /ws/echo /ws");

    // Text both ways, non-ASCII included; bytes; a message in fragments;
    // a large message (64-bit length); a ping answered with its payload.
    ws.send_text("héllo");
    assert_eq!(ws.recv_text(), "HÉLLO");
    ws.send_frame(BINARY, &[1, 2, 3, 0xff], true);
    assert_eq!(ws.recv(), Some((true, BINARY, vec![0xff, 3, 2, 1])));
    ws.send_frame(TEXT, b"frag", false);
    ws.send_frame(PING, b"mid-message ping", true);
    assert_eq!(ws.recv(), Some((true, PONG, b"mid-message ping".to_vec())));
    ws.send_frame(0x0, b"mented", true);
    assert_eq!(ws.recv_text(), "FRAGMENTED");
    let big = "z".repeat(200_000);
    ws.send_text(&big);
    assert_eq!(ws.recv_text(), big.to_uppercase());

    // The client closes: its close is echoed, the application sees the
    // disconnect with the client's code, the connection ends.
    ws.send_frame(CLOSE, &[0x03, 0xe8], true);
    assert_eq!(ws.recv_close().0, 1000);
    assert!(ws.at_end());
    let disconnects = markers.join("ws_disconnect");
    let code = wait_for_file(&disconnects, Duration::from_secs(10));
    assert_eq!(
        code.as_deref().map(str::trim),
        Some("1000"),
        "{}",
        apache.error_log()
    );

    // The application closes with its own code and reason.
    let (_, ws) = websocket::handshake(apache.port, "/ws/echo", "");
    let mut ws = ws.unwrap();
    ws.recv_text();
    ws.send_text("close");
    assert_eq!(ws.recv_close(), (4000, "asked to".to_string()));

    // The server speaks first, unasked.
    let (_, ws) = websocket::handshake(apache.port, "/ws/ticker", "");
    let mut ws = ws.unwrap();
    for i in 0..3 {
        assert_eq!(ws.recv_text(), format!("tick {i}"));
    }
    assert_eq!(ws.recv_close().0, 1000);

    // Denied before accept: a plain 403; an unknown version: 426 naming 13.
    let (head, ws) = websocket::handshake(apache.port, "/ws/deny", "");
    assert!(ws.is_none() && head.starts_with("HTTP/1.1 403 "), "{head}");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    use std::io::{Read, Write};
    s.write_all(
        b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{answer}"
    );

    // An error in the application after accept: close 1011, the traceback
    // in the log; a client frame without a mask: close 1002.
    let (_, ws) = websocket::handshake(apache.port, "/ws/echo", "");
    let mut ws = ws.unwrap();
    ws.recv_text();
    ws.send_text("boom");
    assert_eq!(ws.recv_close().0, 1011);
    assert!(
        apache.wait_for_log("boom inside a websocket", Duration::from_secs(10)),
        "{}",
        apache.error_log()
    );
    let (_, ws) = websocket::handshake(apache.port, "/ws/echo", "");
    let mut ws = ws.unwrap();
    ws.recv_text();
    ws.send_raw(&[0x81, 0x02, b'h', b'i']);
    assert_eq!(ws.recv_close().0, 1002);

    // Hostile frames: a length of 2^62 is refused from the header alone
    // (1009, nothing allocated), text that is not UTF-8 is 1007, a ping
    // longer than 125 bytes is 1002; the process serves on.
    for (frame, code) in [
        (
            {
                let mut f = vec![0x82, 0x80 | 127];
                f.extend_from_slice(&(1u64 << 62).to_be_bytes());
                f.extend_from_slice(&[0, 0, 0, 0]);
                f
            },
            1009,
        ),
        (vec![0x81, 0x82, 0, 0, 0, 0, 0xc3, 0x28], 1007),
        (
            {
                let mut f = vec![0x89, 0x80 | 126, 0, 200, 0, 0, 0, 0];
                f.extend(std::iter::repeat_n(b'p', 200));
                f
            },
            1002,
        ),
    ] {
        let (_, ws) = websocket::handshake(apache.port, "/ws/echo", "");
        let mut ws = ws.unwrap();
        ws.recv_text();
        ws.send_raw(&frame);
        assert_eq!(ws.recv_close().0, code, "{frame:?}");
    }

    // A client that vanishes: the application sees 1006.
    let (_, ws) = websocket::handshake(apache.port, "/ws/echo", "");
    let mut ws = ws.unwrap();
    ws.recv_text();
    ws.vanish();
    assert!(
        wait_until(Duration::from_secs(10), || {
            fs::read_to_string(&disconnects).is_ok_and(|m| m.contains("1006"))
        }),
        "{}",
        apache.error_log()
    );
}

#[test]
fn starlette_websocket_echo_in_daemon_mode() {
    use common::websocket::{self, CLOSE};
    let venv = common::venv::asgi_venv();
    let markers = marker_dir();
    let apache = server(Mode::Daemon, &venv, markers.path());
    websocket_sessions(&apache, markers.path());
    let disconnects = markers.path().join("ws_disconnect");

    // A daemon process that stops closes its WebSockets with 1001 (going
    // away) rather than cutting them; the application sees the end.
    let (_, ws) = websocket::handshake(apache.port, "/ws/echo", "");
    let mut ws = ws.unwrap();
    ws.recv_text();
    let daemon = apache.pids_named("asgi-daemon");
    assert_eq!(daemon.len(), 1, "{daemon:?}");
    assert!(signal_pid(daemon[0], "TERM"));
    assert_eq!(ws.recv_close(), (1001, "server going away".to_string()));
    ws.send_frame(CLOSE, &[0x03, 0xe9], true);
    assert!(ws.at_end());
    assert!(
        wait_until(Duration::from_secs(10), || {
            fs::read_to_string(&disconnects).is_ok_and(|m| m.contains("1001"))
        }),
        "{}",
        apache.error_log()
    );

    // Plain HTTP requests go on (to the replacement process).
    assert!(
        wait_until(Duration::from_secs(10), || apache
            .get("/api/items/1")
            .status
            == 200),
        "{}",
        apache.error_log()
    );
}

/// In embedded mode the Apache thread that took the handshake relays the
/// session to the child's event loop once the application has accepted:
/// the same sessions as in daemon mode, each relay's end logged, and plain
/// requests served meanwhile.
#[test]
fn starlette_websocket_echo_in_embedded_mode() {
    let venv = common::venv::asgi_venv();
    let markers = marker_dir();
    let apache = server(Mode::Embedded, &venv, markers.path());
    let (_, ws) = common::websocket::handshake(apache.port, "/ws/echo", "");
    let mut open = ws.unwrap_or_else(|| panic!("{}", apache.error_log()));
    assert_eq!(open.recv_text(), "hello /ws/echo /ws");
    websocket_sessions(&apache, markers.path());
    assert_eq!(apache.get("/api/items/1").status, 200);
    open.send_text("still here");
    assert_eq!(open.recv_text(), "STILL HERE");
    open.send_frame(common::websocket::CLOSE, &[0x03, 0xe8], true);
    assert_eq!(open.recv_close().0, 1000);
    assert!(
        apache.wait_for_log(
            "closed after 24 bytes from the client and 36 to it: the application closed it",
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
}

/// Embedded WebSockets under the prefork and worker MPMs too: a session
/// talks both ways and its relay ends when the application closes.
#[test]
fn embedded_websockets_under_the_prefork_and_worker_mpms() {
    use common::websocket::{self, CLOSE};
    let venv = common::venv::asgi_venv();
    for mpm in [Mpm::Prefork, Mpm::Worker] {
        let markers = marker_dir();
        let apache = server_under(mpm, Mode::Embedded, &venv, markers.path(), 4, "");
        let (head, ws) = websocket::handshake(apache.port, "/ws/echo", "");
        let mut ws = ws.unwrap_or_else(|| panic!("{mpm:?}: {head:?}\n{}", apache.error_log()));
        assert_eq!(ws.recv_text(), "hello /ws/echo /ws", "{mpm:?}");
        ws.send_text("under another mpm");
        assert_eq!(ws.recv_text(), "UNDER ANOTHER MPM", "{mpm:?}");
        ws.send_frame(CLOSE, &[0x03, 0xe8], true);
        assert_eq!(ws.recv_close().0, 1000, "{mpm:?}");
        assert!(ws.at_end(), "{mpm:?}");
        assert!(
            apache.wait_for_log("the application closed it", Duration::from_secs(5)),
            "{mpm:?}: {}",
            apache.error_log()
        );
        apache.stop();
    }
}

/// The event loop holds the requests, not the request threads: 500
/// requests that each await `asyncio.sleep(1)` on a daemon process with
/// threads=2 are all in flight at once (the application counts them), and
/// a WSGI request to the same process is answered meanwhile.
#[test]
fn many_asgi_requests_in_flight_on_two_request_threads() {
    const CLIENTS: usize = 500;
    let venv = common::venv::asgi_venv();
    let markers = marker_dir();
    // Enough Apache threads for every client at once.
    let apache = server_with(
        Mode::Daemon,
        &venv,
        markers.path(),
        2,
        "ServerLimit 8\nThreadLimit 64\nThreadsPerChild 64\nStartServers 8\n\
         MaxRequestWorkers 512\nMinSpareThreads 64\nMaxSpareThreads 512\n",
    );
    // Loaded (and lifespan run) before the crowd comes.
    assert_eq!(apache.get("/api/nap?seconds=0").status, 200);
    let started = Instant::now();
    let naps = clients(apache.port, "/api/nap?seconds=1", CLIENTS);
    // While they sleep, both request threads are free for WSGI.
    std::thread::sleep(Duration::from_millis(500));
    let wsgi = apache.get("/wsgi");
    let wsgi_took = started.elapsed();
    let (peak, failed) = nap_peak(naps);
    let took = started.elapsed();
    eprintln!(
        "{CLIENTS} requests of 1 s on threads=2: {took:?}, at most {peak} at once; WSGI answered after {wsgi_took:?}"
    );
    assert!(
        failed.is_empty(),
        "{} failed, first: {:?}\n{}",
        failed.len(),
        failed.first(),
        apache.error_log()
    );
    assert_eq!(wsgi.status, 200, "{}", apache.error_log());
    assert!(wsgi.text().starts_with("wsgi "));
    // Thread-bound, at most 2 would be in flight (and the lot would take
    // 250 s); held by the loop, most of them are.
    assert!(
        peak >= CLIENTS as u64 / 5,
        "only {peak} of {CLIENTS} requests were in flight at once"
    );
    apache.stop();
}

/// `n` clients sending GET `path` at once, each on a thread of its own.
fn clients(port: u16, path: &str, n: usize) -> Vec<std::thread::JoinHandle<(u16, String)>> {
    (0..n)
        .map(|_| {
            let path = path.to_string();
            std::thread::spawn(move || status_and_body(port, &path))
        })
        .collect()
}

/// The answers of `clients` to /api/nap: the most naps the application
/// saw at once, and the answers that were not a 200.
fn nap_peak(clients: Vec<std::thread::JoinHandle<(u16, String)>>) -> (u64, Vec<String>) {
    let mut peak = 0;
    let mut failed = Vec::new();
    for client in clients {
        let (status, body) = client.join().unwrap();
        if status != 200 {
            failed.push(format!("{status}: {body}"));
            continue;
        }
        let fields: serde_json::Value = serde_json::from_str(&body).unwrap();
        peak = peak.max(fields["peak"].as_u64().unwrap());
    }
    (peak, failed)
}

/// The `request_finished` events of requests to `uri` that /events
/// recorded (`events` is its JSON).
fn finished_for(events: &serde_json::Value, uri: &str) -> Vec<serde_json::Value> {
    events["finished"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["uri"] == uri)
        .cloned()
        .collect()
}

/// The first process of `group` on the status page: how many requests its
/// event loop holds, and for how long the oldest has run.
fn loop_held_of(apache: &Apache, group: &str) -> (u64, f64) {
    let page = json(&apache.get("/wsgi-status?json"));
    let process = page["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == group)
        .map(|g| g["processes"][0].clone())
        .unwrap_or_else(|| panic!("{page}"));
    (
        process["loop_held"]
            .as_u64()
            .unwrap_or_else(|| panic!("{page}")),
        process["loop_oldest_seconds"].as_f64().unwrap(),
    )
}

/// An accepted WebSocket in daemon mode is held by the event loop, not by
/// its request thread: a process with two request threads keeps six
/// sessions open and talking, answers a WSGI request meanwhile, and shows
/// the sessions as loop-held until they close.
#[test]
fn websockets_beyond_the_thread_count_are_held_by_the_loop() {
    use common::websocket::{self, CLOSE};
    const SESSIONS: usize = 6;
    let venv = common::venv::asgi_venv();
    let markers = marker_dir();
    let apache = server_with(
        Mode::Daemon,
        &venv,
        markers.path(),
        2,
        "<Location /wsgi-status>\nSetHandler wsgi-status\n</Location>\n",
    );
    // Subscribed to the request events first.
    assert_eq!(apache.get("/events").status, 200);
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        let (head, ws) = websocket::handshake(apache.port, "/ws/echo", "");
        let mut ws = ws.unwrap_or_else(|| {
            panic!(
                "session {i}: no 101 with {i} open: {head:?}\n{}",
                apache.error_log()
            )
        });
        assert_eq!(ws.recv_text(), "hello /ws/echo /ws");
        sessions.push(ws);
    }
    for (i, ws) in sessions.iter_mut().enumerate() {
        ws.send_text(&format!("session {i}"));
        assert_eq!(ws.recv_text(), format!("SESSION {i}"));
    }
    assert_eq!(loop_held_of(&apache, "asgi").0, SESSIONS as u64);
    let wsgi = apache.get("/wsgi");
    assert_eq!(wsgi.status, 200, "{}", apache.error_log());
    // Open sessions are active requests (and the one asking), not yet
    // finished ones.
    let during = json(&apache.get("/events"));
    assert_eq!(
        during["active"].as_array().unwrap().len(),
        SESSIONS + 1,
        "{during}"
    );
    let sessions_finished = |v: &serde_json::Value| finished_for(v, "/ws/echo");
    assert!(sessions_finished(&during).is_empty(), "{during}");
    for ws in &mut sessions {
        ws.send_frame(CLOSE, &[0x03, 0xe8], true);
        assert_eq!(ws.recv_close().0, 1000);
    }
    assert!(
        common::wait_until(Duration::from_secs(5), || loop_held_of(&apache, "asgi").0
            == 0),
        "{:?}\n{}",
        loop_held_of(&apache, "asgi"),
        apache.error_log()
    );
    // Each session's request ended when it closed, as a 101.
    let after = json(&apache.get("/events"));
    let ended = sessions_finished(&after);
    assert_eq!(ended.len(), SESSIONS, "{after}");
    assert!(ended.iter().all(|e| e["status"] == 101), "{after}");
    apache.stop();
}

/// A server with the status page and, beside the usual `asgi` group, a
/// group `capped` (processes=1 threads=2 loop-held-limit=`limit`) serving
/// `app` at /capped.
fn capped_server(markers: &Path, limit: u64, app: &str) -> Apache {
    let venv = common::venv::asgi_venv();
    let extra = format!(
        "<Location /wsgi-status>\nSetHandler wsgi-status\n</Location>\n\
         WSGIDaemonProcess capped processes=1 threads=2 loop-held-limit={limit} \
         python-home={} python-path={{dir}}/app\n\
         WSGIScriptAlias /capped {{dir}}/app/{app} process-group=capped \
         application-group=%{{GLOBAL}}\n",
        venv.display()
    );
    server_with(Mode::Daemon, &venv, markers, 2, &extra)
}

/// Past loop-held-limit an accepted WebSocket keeps its request thread:
/// with limit 1 and two threads, three sessions talk, one of them held by
/// the loop.
#[test]
fn websockets_past_the_loop_held_limit_keep_their_threads() {
    use common::websocket::{self, CLOSE};
    let markers = marker_dir();
    let apache = capped_server(markers.path(), 1, "ws_app.py");
    let mut sessions = Vec::new();
    for i in 0..3 {
        let (head, ws) = websocket::handshake(apache.port, "/capped/echo", "");
        let mut ws = ws.unwrap_or_else(|| panic!("session {i}: {head:?}\n{}", apache.error_log()));
        assert_eq!(ws.recv_text(), "hello /capped/echo /capped");
        sessions.push(ws);
    }
    for (i, ws) in sessions.iter_mut().enumerate() {
        ws.send_text(&format!("session {i}"));
        assert_eq!(ws.recv_text(), format!("SESSION {i}"));
    }
    assert_eq!(loop_held_of(&apache, "capped").0, 1);
    for ws in &mut sessions {
        ws.send_frame(CLOSE, &[0x03, 0xe8], true);
        assert_eq!(ws.recv_close().0, 1000);
    }
    apache.stop();
}

/// With loop-held-limit, a process's loop holds at most that many
/// requests; the next ones keep their request threads, and once those are
/// taken too the process takes no more until one ends.
#[test]
fn loop_held_limit_keeps_the_next_requests_on_their_threads() {
    const CLIENTS: usize = 8;
    let markers = marker_dir();
    let apache = capped_server(markers.path(), 3, "fastapi_app.py");
    assert_eq!(apache.get("/capped/nap?seconds=0").status, 200);
    let started = Instant::now();
    let naps = clients(apache.port, "/capped/nap?seconds=1.5", CLIENTS);
    std::thread::sleep(Duration::from_millis(700));
    let (held, _) = loop_held_of(&apache, "capped");
    let (peak, failed) = nap_peak(naps);
    assert!(failed.is_empty(), "{failed:?}\n{}", apache.error_log());
    let took = started.elapsed();
    eprintln!(
        "{CLIENTS} naps of 1.5 s, loop-held-limit=3 threads=2: {took:?}, {held} held at 0.7 s, at most {peak} at once"
    );
    // 3 on the loop and 2 on the threads: five at once, then the rest.
    assert_eq!(held, 3);
    assert_eq!(peak, 5);
    assert!(took >= Duration::from_secs(3), "{took:?}");
    apache.stop();
}

/// A request the event loop holds is an active request until it ends (in
/// the events and on the status page's row of its process), and its
/// `request_finished` event comes then, with its status, its time and its
/// body length (not when its request thread handed it over).
#[test]
fn a_loop_held_request_is_active_until_it_ends_and_its_event_says_how() {
    let venv = common::venv::asgi_venv();
    let markers = marker_dir();
    let apache = server_with(
        Mode::Daemon,
        &venv,
        markers.path(),
        2,
        "<Location /wsgi-status>\nSetHandler wsgi-status\n</Location>\n",
    );
    let loop_held = || loop_held_of(&apache, "asgi");
    // Subscribed, and the FastAPI app loaded, before the request.
    assert_eq!(apache.get("/events").status, 200);
    assert_eq!(apache.get("/api/nap?seconds=0").status, 200);
    // The loop counts an exchange done just after its last frame has gone
    // to the worker, so the client can have its response a moment before
    // the board (and the events) show the end.
    let settled = || common::wait_until(Duration::from_secs(3), || loop_held() == (0, 0.0));
    assert!(settled(), "{:?}", loop_held());
    let port = apache.port;
    let nap = std::thread::spawn(move || status_and_body(port, "/api/nap?seconds=1.5"));
    std::thread::sleep(Duration::from_millis(700));
    let during = json(&apache.get("/events"));
    let (held, oldest) = loop_held();
    let (status, body) = nap.join().unwrap();
    assert_eq!(status, 200, "{body}\n{}", apache.error_log());
    assert_eq!(held, 1);
    assert!((0.5..1.5).contains(&oldest), "{oldest}");
    assert!(settled(), "{:?}", loop_held());
    let naps = |v: &serde_json::Value| finished_for(v, "/api/nap?seconds=1.5");
    // Taken once the board shows the end, which comes after the event.
    let after = json(&apache.get("/events"));
    // Meanwhile: no event yet, and two active requests (the nap and the
    // one asking).
    assert!(naps(&during).is_empty(), "{during}");
    assert_eq!(during["active"].as_array().unwrap().len(), 2, "{during}");
    let ended = naps(&after);
    assert_eq!(ended.len(), 1, "{after}");
    assert_eq!(ended[0]["status"], 200, "{after}");
    assert!(
        ended[0]["application_time"].as_f64().unwrap() >= 1.4,
        "{after}"
    );
    assert_eq!(ended[0]["output_length"], body.len(), "{after}");
    assert_eq!(after["active"].as_array().unwrap().len(), 1, "{after}");
    apache.stop();
}

/// Requests the event loop holds are the process's requests like those on
/// threads: a graceful restart lets them finish (the retiring daemon
/// waits for them), and request-timeout ends one of them with a 504 and a
/// log line without restarting the process.
#[test]
fn loop_held_requests_outlive_a_graceful_restart_and_time_out_alone() {
    let venv = common::venv::asgi_venv();
    let markers = marker_dir();
    let apache = server_with(
        Mode::Daemon,
        &venv,
        markers.path(),
        2,
        "WSGIDaemonProcess timed processes=1 threads=2 request-timeout=2 \
         python-home={venv} python-path={dir}/app\n\
         WSGIScriptAlias /timed {dir}/app/fastapi_app.py process-group=timed \
         application-group=%{GLOBAL}\n"
            .replace("{venv}", &venv.display().to_string())
            .as_str(),
    );
    assert_eq!(apache.get("/api/nap?seconds=0").status, 200);
    let naps: Vec<_> = (0..4)
        .map(|_| {
            let port = apache.port;
            std::thread::spawn(move || status_and_body(port, "/api/nap?seconds=3"))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    apache.graceful_restart();
    for nap in naps {
        let (status, body) = nap.join().unwrap();
        assert_eq!(status, 200, "{body}\n{}", apache.error_log());
    }

    let first = apache.get("/timed/nap?seconds=0");
    assert_eq!(first.status, 200);
    let pid = first.text();
    let timed_out = apache.get("/timed/nap?seconds=30");
    assert_eq!(timed_out.status, 504, "{}", apache.error_log());
    let after = apache.get("/timed/nap?seconds=0");
    let pid_of = |body: &str| {
        serde_json::from_str::<serde_json::Value>(body).unwrap()["pid"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        pid_of(&after.text()),
        pid_of(&pid),
        "the process was restarted"
    );
    let log = apache.error_log();
    assert!(
        log.contains("Request interrupted by RequestTimeout"),
        "{log}"
    );
    apache.stop();
}

/// A GET from a client thread of its own: the status (0 when there was
/// no answer) and the body (or what went wrong).
fn status_and_body(port: u16, path: &str) -> (u16, String) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(120))
        .build();
    match agent.get(&format!("http://127.0.0.1:{port}{path}")).call() {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// A WebSocket open across a graceful restart goes on talking: in embedded
/// mode the old generation's child relays it until the client closes (as
/// Apache lets a retiring child finish its connections); in daemon mode the
/// retiring daemon keeps it until graceful-timeout and then closes it with
/// 1001 (going away), so the client knows to reconnect. New sessions meet
/// the new generation meanwhile.
#[test]
fn websockets_across_a_graceful_restart() {
    use common::websocket::{self, CLOSE};
    let venv = common::venv::asgi_venv();
    for mode in [Mode::Embedded, Mode::Daemon] {
        let markers = marker_dir();
        let apache = match mode {
            Mode::Embedded => server(mode, &venv, markers.path()),
            Mode::Daemon => server_with(
                mode,
                &venv,
                markers.path(),
                2,
                "WSGIDaemonProcess retiring processes=1 threads=2 graceful-timeout=3 \
                 python-home={venv} python-path={dir}/app display-name=asgi-retiring\n\
                 WSGIScriptAlias /retiring {dir}/app/ws_app.py process-group=retiring\n"
                    .replace("{venv}", &venv.display().to_string())
                    .as_str(),
            ),
        };
        let path = match mode {
            Mode::Embedded => "/ws/echo",
            Mode::Daemon => "/retiring/echo",
        };
        let (head, old) = websocket::handshake(apache.port, path, "");
        let mut old = old.unwrap_or_else(|| panic!("{mode:?}: {head}\n{}", apache.error_log()));
        old.recv_text();
        old.send_text("before");
        assert_eq!(old.recv_text(), "BEFORE", "{mode:?}");

        let restarted = Instant::now();
        apache.graceful_restart();
        old.send_text("after the restart");
        assert_eq!(old.recv_text(), "AFTER THE RESTART", "{mode:?}");
        let (head, new) = websocket::handshake(apache.port, path, "");
        let mut new = new.unwrap_or_else(|| panic!("{mode:?}: {head}\n{}", apache.error_log()));
        new.recv_text();
        new.send_text("new");
        assert_eq!(new.recv_text(), "NEW", "{mode:?}");

        match mode {
            Mode::Embedded => {
                std::thread::sleep(Duration::from_secs(4));
                old.send_text("still");
                assert_eq!(old.recv_text(), "STILL", "{mode:?}");
                old.send_frame(CLOSE, &[0x03, 0xe8], true);
                assert_eq!(old.recv_close().0, 1000, "{mode:?}");
            }
            Mode::Daemon => {
                assert_eq!(
                    old.recv_close(),
                    (1001, "server going away".to_string()),
                    "{}",
                    apache.error_log()
                );
                let waited = restarted.elapsed();
                assert!(
                    waited >= Duration::from_millis(2500) && waited < Duration::from_secs(15),
                    "closed {waited:?} after the restart"
                );
                old.send_frame(CLOSE, &[0x03, 0xe9], true);
            }
        }
        assert!(old.at_end(), "{mode:?}");
        // The new generation's session is untouched by the old one's end.
        new.send_text("later");
        assert_eq!(new.recv_text(), "LATER", "{mode:?}");
        new.send_frame(CLOSE, &[0x03, 0xe8], true);
        assert_eq!(new.recv_close().0, 1000, "{mode:?}");
        apache.stop();
    }
}

/// The client of the wss:// test: Debian's Python with its ssl module (the
/// tests have no TLS of their own) and a few lines of RFC 6455 framing.
/// Prints what came back, one item a line.
const WSS_CLIENT: &str = r#"
import base64, os, socket, ssl, struct, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20),
                    server_hostname="localhost")
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /ws/echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n" % key).encode())
f = s.makefile("rb")
print(f.readline().split(b" ")[1].decode())
while f.readline() not in (b"\r\n", b""):
    pass

def send(op, payload):
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | op, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | op, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x80 | op, 0x80 | 127]) + struct.pack("!Q", n)
    s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

def recv():
    message, first = b"", None
    while True:
        b0, b1 = f.read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", f.read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", f.read(8))[0]
        first = b0 & 0x0F if first is None else first
        message += f.read(n)
        if b0 & 0x80:
            return first, message

print(recv()[1].decode())
send(1, "héllo".encode())
print(recv()[1].decode())
big = b"w" * 300000
send(1, big)
op, data = recv()
print("big", len(data), data == big.upper())
send(8, struct.pack("!H", 1000))
op, data = recv()
print("close", op, struct.unpack("!H", data[:2])[0])
print("end" if f.read() == b"" else "more")
"#;

/// wss:// in embedded mode: the relay reads and writes the client through
/// Apache's connection filters, so mod_ssl decrypts and encrypts the
/// session as it does any response.
#[test]
fn a_websocket_through_mod_ssl_in_embedded_mode() {
    let venv = common::venv::asgi_venv();
    let markers = marker_dir();
    let certs = temp_dir_with_mode("mwsgi-wss-", 0o755);
    let (cert, key) = common::conf_examples::make_cert(certs.path());
    let tls_port = pick_port();
    let apache = server_with(
        Mode::Embedded,
        &venv,
        markers.path(),
        4,
        &format!(
            "LoadModule socache_shmcb_module {m}/mod_socache_shmcb.so\n\
             LoadModule ssl_module {m}/mod_ssl.so\n\
             Listen 127.0.0.1:{tls_port}\n\
             <VirtualHost 127.0.0.1:{tls_port}>\n\
                 SSLEngine on\n\
                 SSLCertificateFile {cert}\n\
                 SSLCertificateKeyFile {key}\n\
                 WSGIScriptAlias /ws {{dir}}/app/ws_app.py\n\
             </VirtualHost>\n",
            m = MODULES_DIR,
            cert = cert.display(),
            key = key.display(),
        ),
    );
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", WSS_CLIENT, &tls_port.to_string()])
        .arg(&cert)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "101\nhello /ws/echo /ws\nHÉLLO\nbig 300000 True\nclose 8 1000\nend\n",
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        apache.error_log()
    );
}
