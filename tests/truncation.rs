//! A response that cannot be finished once its head went out is never
//! passed off as whole: in embedded and daemon mode, for HTTP/1.0 and 1.1,
//! the client gets the head and what the application produced, then the
//! connection closes without the last chunk and without a Content-Length
//! that matches the cut body; a pipelined second request on the same
//! connection gets no answer. The error log says how many body bytes went
//! out (and, in daemon mode, names the group and the daemon's pid). A
//! response that ends well stays whole and keeps the connection alive.
//!
//! Everything is seen from a raw client socket against a real Apache.

mod common;
use common::*;
use std::time::Duration;

const APP: &str = r#"
import os, time

def application(environ, start_response):
    path = environ["PATH_INFO"]
    headers = [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))]
    if path == "/raise":
        def body():
            yield b"first chunk\n"
            raise RuntimeError("broken after the first chunk")
        start_response("200 OK", headers)
        return body()
    if path == "/short":
        # Declares 100 bytes, produces 12.
        def body():
            yield b"first chunk\n"
        start_response("200 OK", headers + [("Content-Length", "100")])
        return body()
    if path == "/long":
        # Declares 5 bytes, produces 12.
        start_response("200 OK", headers + [("Content-Length", "5")])
        return [b"first chunk\n"]
    if path == "/kill":
        def body():
            yield b"first chunk\n"
            os.kill(os.getpid(), 9)
        start_response("200 OK", headers)
        return body()
    if path == "/slow":
        def body():
            yield b"first chunk\n"
            time.sleep(8)
            yield b"too late\n"
        start_response("200 OK", headers)
        return body()
    # /whole: streamed, then a complete end.
    def body():
        yield b"first chunk\n"
        yield b"second chunk\n"
    start_response("200 OK", headers)
    return body()
"#;

/// The same script at `/e` (embedded), `/d` (daemon group `g`), `/h`
/// (daemon group `held`, whose worker holds body bytes a minute before it
/// flushes them: the cut comes while Apache still has the whole body
/// unsent, when its content-length filter could give the cut body a
/// Content-Length) and `/s` (daemon group `slow`, socket-timeout=2).
fn server() -> Apache {
    Apache::builder()
        .file("app/a.wsgi", APP)
        .directives(
            "WSGIDaemonProcess g processes=1 threads=4\n\
             WSGIDaemonProcess held processes=1 threads=4 response-flush-delay=60000\n\
             WSGIDaemonProcess slow processes=1 threads=2 socket-timeout=2\n\
             WSGIScriptAlias /e {dir}/app/a.wsgi\n\
             WSGIScriptAlias /d {dir}/app/a.wsgi process-group=g\n\
             WSGIScriptAlias /h {dir}/app/a.wsgi process-group=held\n\
             WSGIScriptAlias /s {dir}/app/a.wsgi process-group=slow\n",
        )
        .start()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Version {
    Http10,
    Http11,
}

const VERSIONS: [Version; 2] = [Version::Http10, Version::Http11];
/// Where the script is mounted, and its daemon process group ("" for
/// embedded mode).
const MOUNTS: [(&str, &str); 3] = [("/e", ""), ("/d", "g"), ("/h", "held")];

/// What the client got for the first of two pipelined requests.
struct Exchange {
    /// The first response's head, as text.
    head: String,
    /// Its body bytes as sent (chunk framing included).
    body: Vec<u8>,
    /// Whether the second request was answered on the same connection.
    second_answered: bool,
    /// Everything received, for messages.
    raw: String,
}

impl Exchange {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Sends GET `path` and then, on the same connection, a second GET of a
/// response that ends well (with `Connection: close`), and reads until
/// the server closes. HTTP/1.0 asks for keep-alive, so that Apache keeps
/// the connection open whenever it can (a Content-Length is known).
fn exchange(apache: &Apache, path: &str, version: Version) -> Exchange {
    let (proto, keep) = match version {
        Version::Http10 => ("HTTP/1.0", "Connection: keep-alive\r\n"),
        Version::Http11 => ("HTTP/1.1", ""),
    };
    let request = format!(
        "GET {path} {proto}\r\nHost: x\r\n{keep}\r\n\
         GET /e/whole {proto}\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let data = apache.raw(request.as_bytes());
    let raw = String::from_utf8_lossy(&data).into_owned();
    let head_end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{path} {version:?}: no response head: {raw}"));
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let rest = &data[head_end + 4..];
    // The second response starts with its status line.
    let second = rest.windows(9).position(|w| w == b"HTTP/1.1 ");
    let body = rest[..second.unwrap_or(rest.len())].to_vec();
    Exchange {
        head,
        body,
        second_answered: second.is_some(),
        raw,
    }
}

/// The data of a chunked body, and whether its last chunk (`0`) came.
fn dechunk(mut body: &[u8]) -> (Vec<u8>, bool) {
    let mut data = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return (data, false);
        };
        let size = std::str::from_utf8(&body[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok());
        let Some(size) = size else {
            return (data, false);
        };
        body = &body[eol + 2..];
        if size == 0 {
            return (data, true);
        }
        let end = size.min(body.len());
        data.extend_from_slice(&body[..end]);
        if body.len() < size + 2 {
            return (data, false);
        }
        body = &body[size + 2..];
    }
}

/// Waits until the error log, past `from` bytes, has a line with all of
/// `needles`, and returns it.
fn log_line(apache: &Apache, from: usize, needles: &[&str]) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = apache.error_log();
        let found = log
            .get(from..)
            .unwrap_or("")
            .lines()
            .find(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_string);
        if let Some(line) = found {
            return line;
        }
        if std::time::Instant::now() >= deadline {
            panic!(
                "no log line with {needles:?} in:\n{}",
                log.get(from..).unwrap_or("")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The one line that reports the cut, with the byte count; in daemon mode
/// the Apache child's line, naming the group and the daemon's pid.
fn check_cut_logged(apache: &Apache, from: usize, group: &str, pid: &str) {
    let sent = "response cut short after 12 body bytes";
    let line = match group {
        "" => log_line(apache, from, &[sent, &format!("(pid {pid}, ")]),
        _ => log_line(
            apache,
            from,
            &[sent, &format!("daemon process group '{group}' (pid {pid})")],
        ),
    };
    assert!(line.contains("[wsgi:error]"), "{line}");
}

/// The client saw the head and the first chunk, then the connection
/// closed: no last chunk, no Content-Length matching what came, nothing
/// more served on that connection.
fn check_cut(ex: &Exchange, what: &str, version: Version) {
    let raw = &ex.raw;
    assert!(ex.head.starts_with("HTTP/1.1 200 "), "{what}: {raw}");
    assert!(!ex.second_answered, "{what}: connection kept alive: {raw}");
    let chunked = ex
        .header("Transfer-Encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
    let data = if chunked {
        let (data, last) = dechunk(&ex.body);
        assert!(!last, "{what}: the last chunk was sent: {raw}");
        data
    } else {
        ex.body.clone()
    };
    assert_eq!(data, b"first chunk\n", "{what}: {raw}");
    if let Some(length) = ex.header("Content-Length") {
        assert_ne!(
            length.parse::<usize>().ok(),
            Some(data.len()),
            "{what}: a Content-Length that matches the cut body: {raw}"
        );
    }
    if version == Version::Http11 && ex.header("Content-Length").is_none() {
        assert!(chunked, "{what}: {raw}");
    }
}

#[test]
fn exception_after_the_first_chunk_aborts_the_connection() {
    let apache = server();
    for (mount, group) in MOUNTS {
        for version in VERSIONS {
            let what = format!("{mount}/raise {version:?}");
            let from = apache.error_log().len();
            let ex = exchange(&apache, &format!("{mount}/raise"), version);
            check_cut(&ex, &what, version);
            let pid = ex.header("X-Pid").unwrap_or_default();
            check_cut_logged(&apache, from, group, &pid);
        }
    }
}

#[test]
fn content_length_beyond_the_body_aborts_the_connection() {
    let apache = server();
    for (mount, group) in MOUNTS {
        for version in VERSIONS {
            let what = format!("{mount}/short {version:?}");
            let from = apache.error_log().len();
            let ex = exchange(&apache, &format!("{mount}/short"), version);
            check_cut(&ex, &what, version);
            assert_eq!(
                ex.header("Content-Length").as_deref(),
                Some("100"),
                "{what}"
            );
            let pid = ex.header("X-Pid").unwrap_or_default();
            check_cut_logged(&apache, from, group, &pid);
            log_line(
                &apache,
                from,
                &["response body ended after 12 of the 100 bytes its Content-Length declared"],
            );
        }
    }
}

#[test]
fn body_past_the_content_length_stops_at_it_and_the_response_stays_whole() {
    let apache = server();
    for (mount, _) in MOUNTS {
        for version in VERSIONS {
            let what = format!("{mount}/long {version:?}");
            let from = apache.error_log().len();
            let ex = exchange(&apache, &format!("{mount}/long"), version);
            assert!(ex.head.starts_with("HTTP/1.1 200 "), "{what}: {}", ex.raw);
            assert_eq!(ex.header("Content-Length").as_deref(), Some("5"), "{what}");
            assert_eq!(ex.body, b"first", "{what}: {}", ex.raw);
            assert!(ex.second_answered, "{what}: {}", ex.raw);
            let pid = ex.header("X-Pid").unwrap_or_default();
            log_line(
                &apache,
                from,
                &[
                    "response body of 12 bytes is longer than its Content-Length of 5",
                    &format!("pid {pid})"),
                ],
            );
            assert!(
                !apache.error_log()[from..].contains("cut short"),
                "{what}: {}",
                apache.error_log()
            );
        }
    }
}

#[test]
fn a_response_that_ends_well_is_whole_and_keeps_the_connection() {
    let apache = server();
    for (mount, _) in MOUNTS {
        let what = format!("{mount}/whole");
        let ex = exchange(&apache, &format!("{mount}/whole"), Version::Http11);
        assert!(ex.head.starts_with("HTTP/1.1 200 "), "{what}: {}", ex.raw);
        // Chunked, or (daemon mode, where a body whose end follows at once
        // goes to Apache with it) with the Content-Length Apache worked out.
        let whole = b"first chunk\nsecond chunk\n";
        match ex.header("Content-Length") {
            Some(length) => {
                assert_eq!(length, whole.len().to_string(), "{what}: {}", ex.raw);
                assert_eq!(ex.body, whole, "{what}: {}", ex.raw);
            }
            None => {
                let (data, last) = dechunk(&ex.body);
                assert_eq!(data, whole, "{what}: {}", ex.raw);
                assert!(last, "{what}: no last chunk: {}", ex.raw);
            }
        }
        assert!(ex.second_answered, "{what}: {}", ex.raw);
        // HTTP/1.0: a Content-Length is known (the application's), so the
        // connection is kept alive.
        let what = format!("{mount}/long HTTP/1.0");
        let ex = exchange(&apache, &format!("{mount}/long"), Version::Http10);
        assert!(ex.second_answered, "{what}: {}", ex.raw);
    }
    assert!(
        !apache.error_log().contains("cut short"),
        "{}",
        apache.error_log()
    );
}

#[test]
fn daemon_killed_mid_response_aborts_the_connection() {
    let apache = server();
    for (mount, group) in &MOUNTS[1..] {
        for version in VERSIONS {
            let what = format!("{mount}/kill {version:?}");
            let from = apache.error_log().len();
            let ex = exchange(&apache, &format!("{mount}/kill"), version);
            check_cut(&ex, &what, version);
            let pid = ex.header("X-Pid").unwrap_or_default();
            check_cut_logged(&apache, from, group, &pid);
            log_line(
                &apache,
                from,
                &["closed the connection after the response started: the daemon process died"],
            );
        }
    }
}

#[test]
fn socket_timeout_mid_response_aborts_the_connection() {
    let apache = server();
    let from = apache.error_log().len();
    let ex = exchange(&apache, "/s/slow", Version::Http11);
    check_cut(&ex, "/s/slow", Version::Http11);
    let pid = ex.header("X-Pid").unwrap_or_default();
    check_cut_logged(&apache, from, "slow", &pid);
    log_line(
        &apache,
        from,
        &["timed out after 2s waiting for daemon process group 'slow'"],
    );
}
