//! PEP 3333 conformance against a real Apache: an application wrapped in
//! `wsgiref.validate.validator` (warnings made errors) sees every kind of
//! request body and sends every kind of response, in embedded mode and in
//! daemon mode, under each MPM, without one AssertionError or WSGIWarning.
//! Also: close() on the iterable (even when the client goes away), exc_info,
//! HEAD, and an application's Content-Length.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const APP: &str = include_str!("apps/pep3333_app.wsgi");

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Embedded,
    Daemon,
}

fn server(mpm: Mpm, mode: Mode) -> Apache {
    let group = match mode {
        Mode::Embedded => "",
        Mode::Daemon => "WSGIDaemonProcess pep threads=4\nWSGIProcessGroup pep\n",
    };
    let apache = Apache::builder()
        .mpm(mpm)
        .file("app/pep3333.wsgi", APP)
        .file("app/markers/.keep", "")
        .directives(&format!(
            "{group}WSGIChunkedRequest On\nLogLevel info\nWSGIScriptAlias /app {{dir}}/app/pep3333.wsgi\n"
        ))
        .start();
    // The application (www-data when Apache starts as root) writes markers.
    apache.open_markers();
    apache
}

// ------------------------------------------------------------ body checks

/// zlib.adler32, as the application computes it.
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

fn summary(data: &[u8], extra: &str) -> String {
    format!("len={} adler={:08x}{extra}", data.len(), adler32(data))
}

fn count_lines(data: &[u8]) -> usize {
    data.iter().filter(|&&b| b == b'\n').count()
}

/// About `size` bytes of lines of many lengths, one of them longer than the
/// 64 KiB blocks the server reads in, and a last line without a newline.
fn make_body(size: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(size + 200_000);
    let mut i = 0u64;
    while body.len() < size {
        if i == 7 {
            body.extend(std::iter::repeat_n(b'L', 150_000));
            body.push(b'\n');
        }
        let len = (i * 7919 % 1500) as usize;
        body.extend_from_slice(format!("{i:08}:").as_bytes());
        body.extend((0..len).map(|k| b'a' + ((i as usize + k) % 26) as u8));
        body.push(b'\n');
        i += 1;
    }
    body.extend_from_slice(b"no newline at the end");
    body
}

// ------------------------------------------------------------ raw HTTP

struct Parsed {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Bytes after this response (a pipelined next response).
    rest: Vec<u8>,
}

impl Parsed {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses one HTTP/1.1 response; `head_only` for the answer to HEAD.
fn parse(data: &[u8], head_only: bool) -> Parsed {
    let end = find(data, b"\r\n\r\n").unwrap_or_else(|| {
        panic!(
            "no end of headers in {:?}",
            String::from_utf8_lossy(&data[..data.len().min(500)])
        )
    });
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut p = Parsed {
        status,
        headers,
        body: Vec::new(),
        rest: Vec::new(),
    };
    let rest = &data[end + 4..];
    if head_only {
        p.rest = rest.to_vec();
        return p;
    }
    if p.header("Transfer-Encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        let mut at = 0;
        loop {
            let line_end = at + find(&rest[at..], b"\r\n").expect("chunk size line");
            let size_text = String::from_utf8_lossy(&rest[at..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
            at = line_end + 2;
            if size == 0 {
                // No trailers expected: the final CRLF.
                at += 2;
                break;
            }
            p.body.extend_from_slice(&rest[at..at + size]);
            at += size + 2;
        }
        p.rest = rest[at.min(rest.len())..].to_vec();
    } else if let Some(len) = p.header("Content-Length") {
        let len: usize = len.parse().unwrap();
        assert!(
            rest.len() >= len,
            "body shorter than Content-Length: {} < {len}",
            rest.len()
        );
        p.body = rest[..len].to_vec();
        p.rest = rest[len..].to_vec();
    } else {
        p.body = rest.to_vec();
    }
    p
}

/// Sends a request with a chunked body (pieces of `piece` bytes) and
/// `Connection: close`; returns the parsed response.
fn post_chunked(apache: &Apache, path: &str, body: &[u8], piece: usize) -> Parsed {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for part in body.chunks(piece) {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    parse(&apache.raw(&req), false)
}

fn get_raw(apache: &Apache, method: &str, path: &str) -> Parsed {
    let req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    parse(&apache.raw(req.as_bytes()), method == "HEAD")
}

// ------------------------------------------------------------ the checks

fn expected_stream(count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        out.extend_from_slice(format!("chunk {i:05} ").as_bytes());
        out.extend(std::iter::repeat_n(b'x', i % 97));
        out.push(b'\n');
    }
    out
}

fn expected_write(count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        out.extend_from_slice(format!("write {i:05} ").as_bytes());
        out.extend(std::iter::repeat_n(b'y', i % 89));
        out.push(b'\n');
    }
    out.extend_from_slice(b"tail\n");
    out
}

/// The first line must reach the client while the application still waits
/// for the client to confirm it: proof that each block is flushed.
fn check_handshake(apache: &Apache, token: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET /app/handshake?{token} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while find(&data, b"first line\n").is_none() {
        let n = s.read(&mut buf).expect("reading the first line");
        assert!(
            n > 0,
            "connection closed before the first line: {}",
            String::from_utf8_lossy(&data)
        );
        data.extend_from_slice(&buf[..n]);
    }
    std::fs::write(apache.markers().join(format!("go-{token}")), "go").unwrap();
    s.read_to_end(&mut data).unwrap();
    let r = parse(&data, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "first line\nstreamed\n");
}

/// Log lines that mean the validator (or the server) found a PEP 3333 slip.
fn protocol_complaints(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            [
                "AssertionError",
                "WSGIWarning",
                "Traceback",
                "exception raised",
                "garbage collected without being closed",
            ]
            .iter()
            .any(|n| l.contains(n))
        })
        .map(str::to_string)
        .collect()
}

fn exercise(apache: &Apache, label: &str) {
    // GET with the application's own Content-Length.
    let r = apache.get("/app/hello");
    assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
    assert_eq!(r.text(), "Hello, PEP 3333\n", "{label}");
    assert_eq!(r.header("Content-Length"), Some("16"), "{label}");
    assert_eq!(r.header("X-Method"), Some("GET"), "{label}");

    // HEAD: the headers of GET, no body bytes on the wire.
    for path in ["/app/hello", "/app/stream?50"] {
        let r = get_raw(apache, "HEAD", path);
        assert_eq!(r.status, 200, "{label} HEAD {path}");
        assert!(
            r.rest.is_empty(),
            "{label}: HEAD {path} sent a body: {:?}",
            String::from_utf8_lossy(&r.rest)
        );
    }
    assert_eq!(
        get_raw(apache, "HEAD", "/app/hello").header("Content-Length"),
        Some("16"),
        "{label}"
    );

    // Small POST with Content-Length, read in pieces of 3 bytes.
    let r = apache.request(
        "POST",
        "/app/body/read?3",
        &[("Content-Type", "text/plain")],
        b"payload!",
    );
    assert_eq!(r.text(), summary(b"payload!", " reads>1"), "{label}");

    // Empty POST: read() gives b'' at once.
    let r = apache.request("POST", "/app/body/read?10", &[], b"");
    assert_eq!(r.text(), summary(b"", ""), "{label}");

    // 5 MiB with Content-Length: read(n), readline() / readline(n).
    let big = make_body(5 << 20);
    let lines = count_lines(&big);
    let r = apache.request("POST", "/app/body/read?100000", &[], &big);
    assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
    assert_eq!(r.text(), summary(&big, " reads>1"), "{label} read(n)");
    let r = apache.request("POST", "/app/body/readline?0", &[], &big);
    assert_eq!(
        r.text(),
        summary(&big, &format!(" lines={lines}")),
        "{label} readline()"
    );
    let r = apache.request("POST", "/app/body/readline?1000", &[], &big);
    assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
    assert_eq!(
        r.text(),
        summary(&big, &format!(" lines={lines}")),
        "{label} readline(n)"
    );

    // Chunked request bodies (WSGIChunkedRequest On), small and 5 MiB.
    let r = post_chunked(apache, "/app/body/read?4", b"chunked body\nline two\n", 5);
    assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
    assert_eq!(r.text(), summary(b"chunked body\nline two\n", " reads>1"));
    let r = post_chunked(apache, "/app/body/iter", &big, 65_000);
    assert_eq!(
        r.text(),
        summary(&big, &format!(" lines={}", lines + 1)),
        "{label} chunked iteration"
    );
    let r = post_chunked(apache, "/app/body/read?7777", &big, 300_001);
    assert_eq!(
        r.text(),
        summary(&big, " reads>1"),
        "{label} chunked read(n)"
    );
    let mid = &big[..1 << 20];
    let r = apache.request("POST", "/app/body/readlines", &[], mid);
    assert_eq!(
        r.text(),
        summary(mid, &format!(" lines={}", count_lines(mid) + 1)),
        "{label} readlines()"
    );

    // Streaming: a generator of many blocks, and the write() callable.
    let r = apache.get("/app/stream?700");
    assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
    assert_eq!(r.body, expected_stream(700), "{label} stream");
    let r = apache.get("/app/write?300");
    assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
    assert_eq!(r.body, expected_write(300), "{label} write()");
    check_handshake(apache, &format!("{}-{label}", std::process::id()));

    // close() after a normal response.
    let token = format!("normal-{label}");
    let r = apache.get(&format!("/app/close?token={token}&count=3&size=10"));
    assert_eq!(r.body, vec![b'z'; 30], "{label}");
    assert_eq!(
        apache
            .wait_marker(&format!("close-{token}"), Duration::from_secs(10))
            .as_deref(),
        Some("closed after 3 blocks"),
        "{label}: close() not called"
    );

    // wsgi.errors reaches the error log.
    let r = apache.get(&format!("/app/errors?{label}"));
    assert_eq!(r.text(), "logged", "{label}");
    assert!(
        apache.wait_for_log(
            &format!("pep3333 errors.writelines {label}"),
            Duration::from_secs(10)
        ),
        "{label}: wsgi.errors output missing\n{}",
        apache.error_log()
    );
    assert!(
        apache
            .error_log()
            .contains(&format!("pep3333 errors.write {label}"))
    );

    let complaints = protocol_complaints(&apache.error_log());
    assert!(
        complaints.is_empty(),
        "{label}: PEP 3333 complaints in the error log:\n{}",
        complaints.join("\n")
    );
}

#[test]
fn validator_is_happy_in_embedded_mode_under_every_mpm() {
    for mpm in Mpm::ALL {
        let apache = server(mpm, Mode::Embedded);
        exercise(&apache, &format!("embedded-{mpm}"));
    }
}

#[test]
fn validator_is_happy_in_daemon_mode_under_every_mpm() {
    for mpm in Mpm::ALL {
        let apache = server(mpm, Mode::Daemon);
        exercise(&apache, &format!("daemon-{mpm}"));
    }
}

/// The client reads a little of an endless response and hangs up: the
/// server must notice, stop iterating and still call close().
fn check_close_on_disconnect(apache: &Apache, label: &str) {
    let token = format!("gone-{label}");
    let count = 100_000;
    let mut s = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /app/close?token={token}&count={count}&size=65536 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .unwrap();
    let mut got = 0;
    let mut buf = vec![0u8; 65536];
    while got < 256 * 1024 {
        let n = s.read(&mut buf).expect("reading the start of the response");
        assert!(n > 0, "{label}: server closed early");
        got += n;
    }
    drop(s);
    let marker = apache
        .wait_marker(&format!("close-{token}"), Duration::from_secs(60))
        .unwrap_or_else(|| {
            panic!(
                "{label}: close() was not called after the client left\n{}",
                apache.error_log()
            )
        });
    let blocks: usize = marker
        .strip_prefix("closed after ")
        .and_then(|s| s.strip_suffix(" blocks"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{label}: marker {marker:?}"));
    assert!(
        blocks < count,
        "{label}: the server went on iterating after the client left ({blocks} blocks)"
    );
    // The server goes on serving.
    assert_eq!(apache.get("/app/hello").status, 200, "{label}");
    let complaints = protocol_complaints(&apache.error_log());
    assert!(complaints.is_empty(), "{label}: {}", complaints.join("\n"));
}

#[test]
fn close_is_called_when_the_client_disconnects() {
    for (mpm, mode) in [
        (Mpm::Event, Mode::Embedded),
        (Mpm::Prefork, Mode::Embedded),
        (Mpm::Event, Mode::Daemon),
    ] {
        let apache = server(mpm, mode);
        check_close_on_disconnect(&apache, &format!("{mode:?}-{mpm}"));
    }
}

#[test]
fn exc_info_replaces_headers_before_and_reraises_after_they_are_sent() {
    for mode in [Mode::Embedded, Mode::Daemon] {
        let apache = server(Mpm::Event, mode);
        let r = apache.get("/app/exc-before");
        assert_eq!(r.status, 503, "{mode:?}: {}", apache.error_log());
        assert_eq!(r.header("X-Replaced"), Some("yes"), "{mode:?}");
        assert_eq!(r.text(), "replaced after error", "{mode:?}");

        let r = apache.get("/app/exc-after");
        assert_eq!(r.status, 200, "{mode:?}");
        assert_eq!(
            r.text(),
            "part one|re-raised same ValueError: late failure",
            "{mode:?}"
        );
        let complaints = protocol_complaints(&apache.error_log());
        assert!(complaints.is_empty(), "{mode:?}: {}", complaints.join("\n"));
    }
}

#[test]
fn content_length_from_the_application_is_honoured() {
    for mode in [Mode::Embedded, Mode::Daemon] {
        let apache = server(Mpm::Event, mode);
        // The application says 5 bytes and yields 10: the client gets 5, and
        // the next response on the same connection is intact.
        let req = "GET /app/short-length HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\
                   GET /app/hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        let data = apache.raw(req.as_bytes());
        let first = parse(&data, false);
        assert_eq!(first.status, 200, "{mode:?}");
        assert_eq!(first.header("Content-Length"), Some("5"), "{mode:?}");
        assert_eq!(first.text(), "01234", "{mode:?}");
        let second = parse(&first.rest, false);
        assert_eq!(
            second.status,
            200,
            "{mode:?}: {:?}",
            String::from_utf8_lossy(&first.rest)
        );
        assert_eq!(second.text(), "Hello, PEP 3333\n", "{mode:?}");
        // A response without Content-Length is not cut. (It goes out chunked,
        // or, when every block had already arrived by the time Apache sent
        // the head, with the exact length Apache counted.)
        let r = get_raw(&apache, "GET", "/app/stream?20");
        assert_eq!(r.body, expected_stream(20), "{mode:?}");
        if let Some(length) = r.header("Content-Length") {
            assert_eq!(length, r.body.len().to_string(), "{mode:?}");
        }
    }
}

/// start_response raises in the application what mod_wsgi 6 raises, and a
/// second call replaces the first until the response has started.
#[test]
fn start_response_raises_what_mod_wsgi_raises() {
    let expected = "\
int status: TypeError: must be str, not int
tuple headers: TypeError: start_response() argument 2 must be list, not tuple
two digits: ValueError: status code must be a 3 digit integer: b'20 OK'
no space: ValueError: no space following status code: b'200OK'
control in reason: ValueError: control character in status reason phrase: b'200 O\\x01K'
non-latin-1 status: UnicodeEncodeError: 'latin-1' codec can't encode character '\\u20ac' in position 4: ordinal not in range(256)
short header: ValueError: each header must be a 2-tuple, got length 1
list header: TypeError: each header must be a 2-tuple, not list
bytes name: TypeError: must be str, not bytes
empty name: ValueError: header name is empty
space in name: ValueError: space character in header name: b'X A'
CRLF in value: ValueError: carriage return/line feed character in header value: b'a\\r\\nb'
non-latin-1 value: UnicodeEncodeError: 'latin-1' codec can't encode character '\\u20ac' in position 0: ordinal not in range(256)
exc_info not a tuple: RuntimeError: start_response() argument 'exc_info' must be a 3-tuple or None
";
    for mode in ["", "WSGIDaemonProcess sr threads=2\nWSGIProcessGroup sr\n"] {
        let apache = Apache::builder()
            .file(
                "app/sr.wsgi",
                include_str!("apps/start_response_errors.wsgi"),
            )
            .directives(&format!("{mode}WSGIScriptAlias /sr {{dir}}/app/sr.wsgi\n"))
            .start();
        let r = apache.get("/sr");
        assert_eq!(r.status, 201, "{mode}: {}", apache.error_log());
        assert_eq!(r.header("X-Second"), Some("1"));
        assert_eq!(r.header("X-First"), None);
        assert_eq!(r.text(), expected, "{mode}");
        let r = apache.get("/sr/after-output");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.text(),
            "one|RuntimeError: start_response() called more than once without exc_info"
        );
    }
}
