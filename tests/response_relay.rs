//! Daemon mode: how the worker relays the response to the client
//! (`response-flush-delay`, `response-buffer-size` of WSGIDaemonProcess),
//! observed from a raw client socket against a real Apache.
//!
//! The applications wait for a marker file that the test creates once the
//! client has received what it should have by then, and say whether they saw
//! it: `seen=True` means the client got those bytes while the application
//! was still waiting; `seen=False` that it did not get them before the
//! application gave up waiting.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const APP: &str = r#"
import os, time

MARKERS = os.path.join(os.path.dirname(__file__), "markers")

def wait_for(name, bound):
    path = os.path.join(MARKERS, name)
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.01)
    return False

def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/declared":
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", "6")])
        name, bound = environ["QUERY_STRING"].split(",")
        return declared(environ["wsgi.errors"], name, float(bound))
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/short":
        return [b"hello"]
    if path == "/echo":
        return echo(environ)
    if path == "/many":
        # 2000 small blocks (10 KiB), numbered, to a client that waits
        # before it reads: the daemon's writes fill the socket and wait.
        return (b"%07d" % i + bytes([97 + i % 26]) * 10233 for i in range(2000))
    name, bound = environ["QUERY_STRING"].split(",")
    return stream(path, name, float(bound))

def echo(environ):
    yield b"first\n"
    yield b"got " + environ["wsgi.input"].read()

def declared(errors, name, bound):
    # The whole body its Content-Length declares, then a wait before the
    # end, said in the error log.
    yield b"first\n"
    errors.write("declared %s seen=%s\n" % (name, wait_for(name, bound)))

def stream(path, name, bound):
    if path == "/bulk":
        # 96 KiB back to back, in blocks of 8 KiB.
        for i in range(12):
            yield bytes([97 + i]) * 8192
    else:
        yield b"first\n"
    yield b"\nseen=%s\n" % str(wait_for(name, bound)).encode()
"#;

/// One Apache with a daemon group per behaviour, each at its own path:
/// `/default` (no options), `/zero` (response-flush-delay=0), `/held`
/// (a flush delay of a minute), `/guard` and `/unguarded` (that long delay,
/// behind mod_buffer, which holds what it is given until it is flushed or
/// 1 MiB is reached; `/guard` has response-buffer-size=65536).
fn server() -> Apache {
    Apache::builder()
        .file("app/a.wsgi", APP)
        .file("app/markers/.keep", "")
        .directives(
            "LoadModule buffer_module {MODULES_DIR}/mod_buffer.so\n\
             WSGIDaemonProcess default threads=2\n\
             WSGIDaemonProcess zero threads=2 response-flush-delay=0\n\
             WSGIDaemonProcess held threads=2 response-flush-delay=60000\n\
             WSGIDaemonProcess guard threads=2 response-flush-delay=60000 response-buffer-size=65536\n\
             WSGIDaemonProcess unguarded threads=2 response-flush-delay=60000\n\
             WSGIScriptAlias /default {dir}/app/a.wsgi process-group=default\n\
             WSGIScriptAlias /zero {dir}/app/a.wsgi process-group=zero\n\
             WSGIScriptAlias /held {dir}/app/a.wsgi process-group=held\n\
             WSGIScriptAlias /guard {dir}/app/a.wsgi process-group=guard\n\
             WSGIScriptAlias /unguarded {dir}/app/a.wsgi process-group=unguarded\n\
             <Location /guard>\n  SetOutputFilter BUFFER\n  BufferSize 1048576\n</Location>\n\
             <Location /unguarded>\n  SetOutputFilter BUFFER\n  BufferSize 1048576\n</Location>\n"
                .replace("{MODULES_DIR}", MODULES_DIR)
                .as_str(),
        )
        .start()
}

/// What the client saw of one streamed response.
struct Seen {
    /// Body bytes the client had when it created the marker.
    before_marker: usize,
    /// The whole body.
    body: Vec<u8>,
}

/// GET `path` (HTTP/1.0: the body is not chunked) and read until the body
/// has `until` bytes, or until the server closes; then create the marker
/// `name` and read the rest.
fn fetch(apache: &Apache, path: &str, name: &str, until: usize) -> Seen {
    let mut s = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 65536];
    let body_len = |data: &[u8]| {
        data.windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |p| data.len() - p - 4)
    };
    while body_len(&data) < until {
        let n = s.read(&mut buf).expect("reading the response");
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let before_marker = body_len(&data);
    std::fs::write(apache.dir.join("app/markers").join(name), "go").unwrap();
    s.read_to_end(&mut data).unwrap();
    let head_end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {}", String::from_utf8_lossy(&data)));
    assert!(
        data.starts_with(b"HTTP/1.1 200 "),
        "{}",
        String::from_utf8_lossy(&data[..head_end])
    );
    Seen {
        before_marker,
        body: data[head_end + 4..].to_vec(),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_streamed_first_chunk_reaches_the_client_while_the_application_waits() {
    let apache = server();
    // The application waits up to 30 s for the client to confirm the first
    // chunk: with the default 5 ms delay, and with none, it gets it.
    for (path, name) in [("/default/stream", "default"), ("/zero/stream", "zero")] {
        let seen = fetch(&apache, &format!("{path}?{name},30"), name, 6);
        assert_eq!(
            text(&seen.body),
            "first\n\nseen=True\n",
            "{path}: {}",
            apache.error_log()
        );
    }
}

#[test]
fn a_long_flush_delay_holds_the_first_chunk_until_more_comes() {
    let apache = server();
    // response-flush-delay=60000: "first\n" waits in Apache for more; the
    // application gives up waiting after 3 s, and its next chunk releases
    // both.
    let started = Instant::now();
    let seen = fetch(&apache, "/held/stream?held,3", "held", 6);
    assert_eq!(
        text(&seen.body),
        "first\n\nseen=False\n",
        "{}",
        apache.error_log()
    );
    // Not a minute: the data that came ended the wait.
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn response_buffer_size_flushes_after_that_many_bytes_back_to_back() {
    let apache = server();
    let expected_bulk: Vec<u8> = (0..12u8)
        .flat_map(|i| std::iter::repeat_n(b'a' + i, 8192))
        .collect();
    // response-buffer-size=65536: the first 64 KiB are flushed through
    // mod_buffer while the application, having sent 96 KiB back to back,
    // still waits; the other 32 KiB wait for more (the flush delay is a
    // minute).
    let seen = fetch(&apache, "/guard/bulk?guard,30", "guard", 65536);
    assert!(
        (65536..expected_bulk.len()).contains(&seen.before_marker),
        "got {} bytes; {}",
        seen.before_marker,
        apache.error_log()
    );
    assert!(seen.body.starts_with(&expected_bulk));
    assert_eq!(text(&seen.body[expected_bulk.len()..]), "\nseen=True\n");
    // Without it (the default 8 MiB) mod_buffer holds it all until the
    // application gives up waiting and ends the response.
    let seen = fetch(&apache, "/unguarded/bulk?unguarded,3", "unguarded", 65536);
    assert!(seen.body.starts_with(&expected_bulk));
    assert_eq!(text(&seen.body[expected_bulk.len()..]), "\nseen=False\n");
}

#[test]
fn a_body_complete_by_its_content_length_goes_out_before_the_end() {
    // The application declares a Content-Length, sends all of it and then
    // waits (up to 30 s) for the client to confirm it got the body: even
    // with a minute's flush delay the worker does not hold a complete body
    // back for the end.
    let apache = server();
    let seen = fetch(&apache, "/held/declared?declared,30", "declared", 6);
    assert_eq!(text(&seen.body), "first\n", "{}", apache.error_log());
    apache.wait_for_log("declared declared seen=", Duration::from_secs(10));
    let log = apache.error_log();
    assert!(log.contains("declared declared seen=True"), "{log}");
}

#[test]
fn a_body_and_its_end_together_get_a_content_length() {
    // The daemon writes the end apart from the body: it comes within the
    // flush delay, and the two go to Apache together. (With
    // response-flush-delay=0 only an end already read with the body does.)
    let apache = server();
    for path in ["/default/short", "/held/short"] {
        let r = apache.get(path);
        assert_eq!(r.status, 200, "{path}: {}", apache.error_log());
        assert_eq!(r.text(), "hello", "{path}");
        assert_eq!(r.header("Content-Length"), Some("5"), "{path}");
    }
}

#[test]
fn the_options_no_longer_warn_at_startup() {
    let apache = server();
    assert_eq!(apache.get("/guard/short").status, 200);
    let log = apache.error_log();
    assert!(log.contains(" configured: "), "{log}");
    for option in ["response-flush-delay", "response-buffer-size"] {
        assert!(
            !log.contains(&format!("option {option} is accepted but not acted on")),
            "{log}"
        );
    }
}

#[test]
fn what_was_answered_goes_out_before_the_worker_waits_for_the_request_body() {
    // The client sends its body only once it has the first chunk; the
    // application reads its input right after yielding that chunk, so the
    // worker is asked for the body before any flush delay runs out.
    let apache = server();
    for path in ["/default/echo", "/held/echo"] {
        let mut s = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n\r\n"
        )
        .unwrap();
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        // Up to 10 s, then the body goes anyway, so that a failure is an
        // assertion rather than a hang.
        let first_came = loop {
            if data.ends_with(b"first\n") {
                break true;
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break false,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
        };
        s.write_all(b"body").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.read_to_end(&mut data).unwrap();
        assert!(first_came, "{path}: {}", text(&data));
        assert!(
            data.ends_with(b"\r\n\r\nfirst\ngot body"),
            "{path}: {}",
            text(&data)
        );
    }
}

/// A daemon sends small blocks with the GIL held when the socket takes
/// them at once, and queues what it does not take for a write without the
/// GIL: with a client that waits a second before reading 20 MB of 10 KiB
/// blocks (every socket on the way full), every byte arrives once, in order.
#[test]
fn small_blocks_to_a_client_that_reads_late_arrive_whole_and_in_order() {
    let apache = server();
    let mut s = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET /default/many HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let mut data = Vec::new();
    s.read_to_end(&mut data).unwrap();
    let start = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let body = &data[start..];
    let mut expected = Vec::with_capacity(2000 * 10240);
    for i in 0..2000u32 {
        expected.extend_from_slice(format!("{i:07}").as_bytes());
        expected.extend(std::iter::repeat_n(97 + (i % 26) as u8, 10233));
    }
    assert_eq!(body.len(), expected.len(), "{}", apache.error_log());
    let first_difference = body.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "{}", apache.error_log());
}
