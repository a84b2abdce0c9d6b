//! Hostile clients and hostile applications (issue 11, point 2), against a
//! real Apache over loopback, in embedded mode and in a daemon process
//! group of one thread (so that a thread left stuck shows as a next request
//! that is not served). Every drill is bounded in time: a hang fails it.
//!
//! Clients: a body trickled a byte a second, a client that leaves in the
//! middle of its upload or of the download, 100 MB nobody reads (with a
//! Content-Length and chunked), broken and cut chunked bodies, a
//! Content-Length the body never reaches, headers with '_' that would pose
//! as others, header blocks over Apache's limits.
//! Applications: every kind of bad start_response() argument, write()
//! after the request, start_response() again after the head went out.
//!
//! `HOSTILE_REFERENCE_MODULE=/path/mod_wsgi.so` runs the drills against
//! another mod_wsgi (C mod_wsgi, for the comparison in the report) instead
//! of the module under test.

mod common;
use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

const APP: &str = include_str!("apps/hostile/hostile.wsgi");
const GROUP: &str = "hostile";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Embedded,
    Daemon,
}

const MODES: [Mode; 2] = [Mode::Embedded, Mode::Daemon];

/// Apache with the hostile app at /h: Apache's `Timeout` of `timeout`
/// seconds, and in daemon mode a group of one process and one thread
/// with `daemon_options` added.
fn server_with(mode: Mode, timeout: u32, daemon_options: &str, extra: &str) -> Apache {
    let group = match mode {
        Mode::Embedded => String::new(),
        Mode::Daemon => format!(
            "WSGIDaemonProcess {GROUP} processes=1 threads=1 {daemon_options}\n\
             WSGIProcessGroup {GROUP}\nWSGIApplicationGroup %{{GLOBAL}}\n"
        ),
    };
    let mut builder = Apache::builder();
    if let Some(reference) = std::env::var_os("HOSTILE_REFERENCE_MODULE") {
        builder = builder.with_module(false).directives(&format!(
            "LoadModule wsgi_module {}\nWSGISocketPrefix {{dir}}/run/wsgi",
            reference.to_string_lossy()
        ));
    }
    let apache = builder
        .file("app/hostile.wsgi", APP)
        .file("app/markers/.keep", "")
        .directives(&format!(
            "Timeout {timeout}\nLogLevel info\nWSGIChunkedRequest On\n{group}\
             WSGIScriptAlias /h {{dir}}/app/hostile.wsgi\n{extra}"
        ))
        .start();
    // The application (www-data when Apache starts as root) writes markers.
    apache.open_markers();
    apache
}

/// Whether the module under test runs (not a reference mod_wsgi): the
/// wording of errors and log lines is only checked for ours.
fn ours() -> bool {
    std::env::var_os("HOSTILE_REFERENCE_MODULE").is_none()
}

fn server(mode: Mode, timeout: u32) -> Apache {
    server_with(mode, timeout, "", "")
}

fn marker_or_panic(apache: &Apache, name: &str, timeout: Duration, label: &str) -> String {
    apache.wait_marker(name, timeout).unwrap_or_else(|| {
        panic!(
            "{label}: no marker {name} within {timeout:?} (close() not run?)\n{}",
            apache.error_log()
        )
    })
}

fn connect(apache: &Apache) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", apache.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

/// Everything the server sends until it closes the connection or
/// `timeout` passes; whether it closed.
fn read_until_close(s: &mut TcpStream, timeout: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + timeout;
    let mut data = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        if Instant::now() >= deadline {
            return (data, false);
        }
        match s.read(&mut buf) {
            Ok(0) => return (data, true),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return (data, true),
        }
    }
}

/// One response parsed leniently: what arrived, and whether its body was
/// complete by its own framing (Content-Length, or chunked with its last
/// chunk).
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
    complete: bool,
    /// Bytes after this response (a next response on the connection).
    rest: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse(data: &[u8]) -> Option<Answer> {
    let end = find(data, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut a = Answer {
        status,
        head,
        body: Vec::new(),
        complete: false,
        rest: Vec::new(),
    };
    let rest = &data[end + 4..];
    let chunked = a
        .header("Transfer-Encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
    if chunked {
        let mut at = 0;
        loop {
            let Some(line) = find(&rest[at..], b"\r\n") else {
                return Some(a);
            };
            let size_text = String::from_utf8_lossy(&rest[at..at + line]).into_owned();
            let Ok(size) = usize::from_str_radix(size_text.split(';').next()?.trim(), 16) else {
                return Some(a);
            };
            at += line + 2;
            if size == 0 {
                if rest.len() >= at + 2 {
                    a.complete = true;
                    a.rest = rest[at + 2..].to_vec();
                }
                return Some(a);
            }
            if rest.len() < at + size {
                a.body.extend_from_slice(&rest[at..]);
                return Some(a);
            }
            a.body.extend_from_slice(&rest[at..at + size]);
            at += size + 2;
        }
    } else if let Some(len) = a.header("Content-Length").and_then(|l| l.parse().ok()) {
        let len: usize = len;
        a.body = rest[..len.min(rest.len())].to_vec();
        a.complete = rest.len() >= len;
        a.rest = rest[len.min(rest.len())..].to_vec();
    } else {
        a.body = rest.to_vec();
        a.complete = true;
    }
    Some(a)
}

/// GET /h/pid, answered within `within`: the pids of the process that ran
/// the application and of the Apache child that took the request.
fn served_within(apache: &Apache, within: Duration, label: &str) -> (u32, u32) {
    let started = Instant::now();
    let r = apache
        .try_request("GET", "/h/pid", &[], b"")
        .unwrap_or_else(|e| panic!("{label}: next request failed: {e}\n{}", apache.error_log()));
    assert_eq!(
        r.status,
        200,
        "{label}: {}\n{}",
        r.text(),
        apache.error_log()
    );
    let took = started.elapsed();
    assert!(
        took <= within,
        "{label}: the next request took {took:?} (bound {within:?}): was the thread still busy?"
    );
    let body = r.text();
    (
        field(&body, "pid").parse().unwrap(),
        field(&body, "server_pid").parse().unwrap(),
    )
}

/// (VmRSS, VmHWM) of a process in kB: its resident memory now, and the
/// most it ever had (so a body held for a moment and freed still shows).
fn memory_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((kb("VmRSS:")?, kb("VmHWM:")?))
}

fn request_head(method: &str, path: &str, extra: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n")
}

// ------------------------------------------------------------ clients

/// A body trickled one byte a second with pauses shorter than Timeout gets
/// to the application whole; one that stops before its Content-Length ends
/// the application's read with an error once Timeout passes, and the one
/// daemon thread serves the next request.
#[test]
fn a_trickled_body_arrives_whole_or_fails_at_the_timeout() {
    for mode in MODES {
        let apache = server(mode, 3);
        let label = format!("{mode:?}");
        // Whole: 6 bytes, one a second.
        let mut s = connect(&apache);
        let started = Instant::now();
        s.write_all(
            request_head(
                "POST",
                "/h/read?token=whole",
                "Content-Length: 6\r\nConnection: close\r\n",
            )
            .as_bytes(),
        )
        .unwrap();
        for b in b"abcdef" {
            std::thread::sleep(Duration::from_secs(1));
            s.write_all(&[*b]).unwrap();
        }
        let (data, closed) = read_until_close(&mut s, Duration::from_secs(20));
        let answer = parse(&data).unwrap_or_else(|| panic!("{label}: no answer: {data:?}"));
        assert_eq!(answer.status, 200, "{label}: {}", apache.error_log());
        assert!(
            answer.text().starts_with("read=6 "),
            "{label}: {}",
            answer.text()
        );
        assert!(closed, "{label}");
        eprintln!("{label}: trickled 6 bytes in {:?}", started.elapsed());

        // Stalled: 2 bytes of 10, then nothing.
        let mut s = connect(&apache);
        let started = Instant::now();
        s.write_all(
            request_head("POST", "/h/read?token=stalled", "Content-Length: 10\r\n").as_bytes(),
        )
        .unwrap();
        for b in b"ab" {
            std::thread::sleep(Duration::from_secs(1));
            s.write_all(&[*b]).unwrap();
        }
        let marker = marker_or_panic(&apache, "read-stalled", Duration::from_secs(20), &label);
        let failed_after = started.elapsed();
        assert!(marker.starts_with("error="), "{label}: {marker}");
        assert!(
            marker.contains("timed out") || !ours(),
            "{label}: the error should say it was a timeout: {marker}"
        );
        // The server gives up on the connection; it does not wait for more.
        let (_, closed) = read_until_close(&mut s, Duration::from_secs(15));
        assert!(closed, "{label}: connection left open after the timeout");
        let (pid, _) = served_within(&apache, Duration::from_secs(10), &label);
        eprintln!(
            "{label}: stalled body failed after {failed_after:?} ({marker}); next request served by {pid}"
        );
    }
}

/// socket-timeout of the group shorter than Apache's Timeout: the daemon
/// stops waiting for a stalled body then, the application's read fails
/// saying so, and the one thread serves the next request long before
/// Apache's Timeout.
#[test]
fn a_stalled_body_fails_at_the_socket_timeout_of_the_group() {
    let apache = server_with(Mode::Daemon, 30, "socket-timeout=2", "");
    let mut s = connect(&apache);
    let started = Instant::now();
    s.write_all(request_head("POST", "/h/read?token=sockto", "Content-Length: 100\r\n").as_bytes())
        .unwrap();
    s.write_all(b"0123456789").unwrap();
    let marker = marker_or_panic(&apache, "read-sockto", Duration::from_secs(20), "daemon");
    let failed_after = started.elapsed();
    assert!(marker.starts_with("error="), "{marker}");
    assert!(
        marker.contains("socket-timeout") || !ours(),
        "the error should name socket-timeout: {marker}"
    );
    assert!(
        marker.contains("again=OSError in 0.0s") || !ours(),
        "a second read should fail at once: {marker}"
    );
    assert!(
        failed_after < Duration::from_secs(15),
        "failed after {failed_after:?}"
    );
    served_within(&apache, Duration::from_secs(10), "daemon socket-timeout");
    eprintln!("socket-timeout=2: the read failed after {failed_after:?} ({marker})");
    drop(s);
}

/// Content-Length larger than what is sent, and the client waits: the
/// application's read ends with an error when Timeout passes, the
/// connection is closed, and the daemon thread is free.
#[test]
fn a_content_length_the_body_never_reaches_ends_in_a_timeout_error() {
    for mode in MODES {
        let apache = server(mode, 2);
        let label = format!("{mode:?}");
        let mut s = connect(&apache);
        let started = Instant::now();
        s.write_all(
            request_head("POST", "/h/read?token=short", "Content-Length: 1000\r\n").as_bytes(),
        )
        .unwrap();
        s.write_all(&[b'x'; 100]).unwrap();
        let marker = marker_or_panic(&apache, "read-short", Duration::from_secs(20), &label);
        assert!(marker.starts_with("error="), "{label}: {marker}");
        assert!(marker.contains("timed out") || !ours(), "{label}: {marker}");
        let (data, closed) = read_until_close(&mut s, Duration::from_secs(15));
        assert!(closed, "{label}: connection not closed after the timeout");
        let took = started.elapsed();
        served_within(&apache, Duration::from_secs(10), &label);
        eprintln!(
            "{label}: short body: {marker}; closed after {took:?}; the client got {:?}",
            String::from_utf8_lossy(&data[..data.len().min(60)])
        );
    }
}

/// The client leaves in the middle of its upload: the application's read
/// fails, its close() runs, and the one thread is free again.
#[test]
fn a_client_leaving_mid_upload_frees_the_thread_and_close_runs() {
    for mode in MODES {
        let apache = server(mode, 30);
        let label = format!("{mode:?}");
        let mut s = connect(&apache);
        let started = Instant::now();
        s.write_all(
            request_head(
                "POST",
                "/h/read?token=upload",
                "Content-Length: 1048576\r\n",
            )
            .as_bytes(),
        )
        .unwrap();
        s.write_all(&vec![b'u'; 100 * 1024]).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        drop(s);
        let marker = marker_or_panic(&apache, "read-upload", Duration::from_secs(20), &label);
        assert!(marker.starts_with("error="), "{label}: {marker}");
        let took = started.elapsed();
        served_within(&apache, Duration::from_secs(10), &label);
        eprintln!("{label}: left mid-upload: {marker} after {took:?}");
    }
}

/// The client reads a little of a long streamed response and closes: the
/// application stops being iterated, close() runs, and the one thread
/// serves the next request well within the socket-timeout.
#[test]
fn a_client_leaving_mid_download_frees_the_thread_and_close_runs() {
    for mode in MODES {
        let apache = server_with(mode, 30, "socket-timeout=10", "");
        let label = format!("{mode:?}");
        let count = 100_000;
        let mut s = connect(&apache);
        s.write_all(
            request_head(
                "GET",
                &format!("/h/stream?token=down&count={count}&size=65536"),
                "",
            )
            .as_bytes(),
        )
        .unwrap();
        let mut got = 0;
        let mut buf = vec![0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(30);
        while got < 512 * 1024 && Instant::now() < deadline {
            match s.read(&mut buf) {
                Ok(0) => panic!("{label}: closed early"),
                Ok(n) => got += n,
                Err(_) => {}
            }
        }
        let left = Instant::now();
        drop(s);
        let marker = marker_or_panic(&apache, "stream-down", Duration::from_secs(20), &label);
        let freed = left.elapsed();
        let blocks: usize = marker
            .strip_prefix("closed after ")
            .and_then(|m| m.strip_suffix(" blocks"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{label}: {marker}"));
        assert!(blocks < count, "{label}: iterated on after the client left");
        served_within(&apache, Duration::from_secs(10), &label);
        eprintln!("{label}: left mid-download: {marker}, close() ran {freed:?} after");
    }
}

/// Sends `body_len` bytes (`chunked` or with a Content-Length) to the app
/// that reads nothing, then a second request on the same connection;
/// returns what came back and whether the server closed.
fn upload_unread(apache: &Apache, body_len: usize, chunked: bool) -> (Vec<u8>, bool) {
    let mut s = connect(apache);
    let framing = if chunked {
        "Transfer-Encoding: chunked\r\n".to_string()
    } else {
        format!("Content-Length: {body_len}\r\n")
    };
    let head = request_head("POST", "/h/ignore", &framing);
    let mut writer = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        writer.write_all(head.as_bytes())?;
        let block = vec![b'b'; 1 << 20];
        let mut left = body_len;
        while left > 0 {
            let n = left.min(block.len());
            if chunked {
                writer.write_all(format!("{n:x}\r\n").as_bytes())?;
                writer.write_all(&block[..n])?;
                writer.write_all(b"\r\n")?;
            } else {
                writer.write_all(&block[..n])?;
            }
            left -= n;
        }
        if chunked {
            writer.write_all(b"0\r\n\r\n")?;
        }
        writer.write_all(request_head("GET", "/h/pid", "Connection: close\r\n").as_bytes())?;
        Ok(())
    });
    let (data, closed) = read_until_close(&mut s, Duration::from_secs(120));
    // The server may stop reading (and close) before all was sent.
    let _ = sender.join();
    let _ = s.shutdown(Shutdown::Both);
    (data, closed)
}

/// 100 MB to an application that reads none of it, with a Content-Length
/// and chunked: answered, no memory growth in proportion in the Apache
/// child or the daemon, and the unread body is never taken for the next
/// request on the connection.
#[test]
fn a_hundred_megabytes_nobody_reads_cost_no_memory() {
    const BODY: usize = 100 << 20;
    const BOUND_KB: u64 = 20 * 1024;
    for mode in MODES {
        let apache = server(mode, 30);
        for _ in 0..8 {
            served_within(&apache, Duration::from_secs(30), "warm-up");
        }
        for chunked in [false, true] {
            let label = format!("{mode:?} chunked={chunked}");
            let before: Vec<(u32, (u64, u64))> = apache
                .pids()
                .into_iter()
                .filter_map(|p| Some((p, memory_kb(p)?)))
                .collect();
            let started = Instant::now();
            let (data, closed) = upload_unread(&apache, BODY, chunked);
            let took = started.elapsed();
            let first = parse(&data).unwrap_or_else(|| {
                panic!(
                    "{label}: no answer: {:?}\n{}",
                    String::from_utf8_lossy(&data),
                    apache.error_log()
                )
            });
            assert_eq!(first.status, 200, "{label}: {}", first.text());
            assert!(first.complete, "{label}");
            let text = first.text();
            assert!(text.starts_with("ignored "), "{label}: {text}");
            // The next request on the connection is either answered as
            // itself or not at all (the connection closed): never taken
            // from the unread body.
            let second = parse(&first.rest);
            if let Some(second) = &second {
                assert_eq!(second.status, 200, "{label}: {}", second.text());
                assert!(second.text().starts_with("pid="), "{label}");
            } else {
                assert!(first.rest.is_empty(), "{label}: {:?}", first.rest);
                assert!(closed, "{label}: connection neither closed nor answered");
            }
            let pid: u32 = field(&text.replace(' ', "\n"), "pid").parse().unwrap();
            let server_pid: u32 = field(&text.replace(' ', "\n"), "server_pid")
                .parse()
                .unwrap();
            let mut grown = Vec::new();
            let mut served_by = vec![pid, server_pid];
            served_by.dedup();
            for p in served_by {
                let Some(&(_, (rss, peak))) = before.iter().find(|(q, _)| *q == p) else {
                    continue;
                };
                let (rss_now, peak_now) = memory_kb(p).unwrap_or((0, 0));
                grown.push(format!(
                    "pid {p}: RSS {rss} -> {rss_now} kB, peak {peak} -> {peak_now} kB"
                ));
                assert!(
                    rss_now <= rss + BOUND_KB && peak_now <= peak + BOUND_KB,
                    "{label}: pid {p} grew: RSS {rss} -> {rss_now} kB, peak {peak} -> {peak_now} kB"
                );
            }
            eprintln!(
                "{label}: 100 MB unread in {took:?}; next request {}; {}",
                if second.is_some() {
                    "answered on the connection"
                } else {
                    "not read (connection closed)"
                },
                grown.join(", ")
            );
        }
    }
}

/// Chunked bodies that break the rules (a size that is not hex, a chunk
/// without its CRLF, an end that never comes): Apache's 400 or a closed
/// connection, an error from the application's read, nothing of the
/// application's answer after Apache's, and no hang past Timeout.
#[test]
fn invalid_and_truncated_chunked_bodies_fail_the_read_cleanly() {
    // (name, body, half-close after it, the application catches the
    // read's error and answers)
    let cases: [(&str, &[u8], bool, bool); 7] = [
        ("bad-hex", b"zz\r\nhello\r\n0\r\n\r\n", false, true),
        (
            "bad-hex-uncaught",
            b"zz\r\nhello\r\n0\r\n\r\n",
            false,
            false,
        ),
        (
            "missing-crlf",
            b"5\r\nhelloXX6\r\n world\r\n0\r\n\r\n",
            false,
            true,
        ),
        (
            "huge-size",
            b"ffffffffffffffffffff\r\nx\r\n0\r\n\r\n",
            false,
            true,
        ),
        // Cut short: the client half-closes after part of a chunk...
        ("truncated-eof", b"a\r\nhello", true, true),
        ("truncated-eof-uncaught", b"a\r\nhello", true, false),
        // ...or just stops sending (Timeout ends it).
        ("truncated-wait", b"a\r\nhello", false, true),
    ];
    for mode in MODES {
        let apache = server(mode, 2);
        for (name, body, half_close, catch) in cases {
            let label = format!("{mode:?} {name}");
            let token = format!("chunk-{name}");
            let mut s = connect(&apache);
            let started = Instant::now();
            s.write_all(
                request_head(
                    "POST",
                    &format!("/h/read?token={token}&catch={}", u8::from(catch)),
                    "Transfer-Encoding: chunked\r\n",
                )
                .as_bytes(),
            )
            .unwrap();
            s.write_all(body).unwrap();
            if half_close {
                s.shutdown(Shutdown::Write).unwrap();
            }
            let (data, closed) = read_until_close(&mut s, Duration::from_secs(15));
            let took = started.elapsed();
            assert!(closed, "{label}: not closed within 15 s");
            let answer = parse(&data);
            let seen = String::from_utf8_lossy(&data).into_owned();
            if let Some(a) = &answer {
                if a.status == 200 {
                    // The application caught the error and answered.
                    assert!(a.text().starts_with("error="), "{label}: {seen}");
                } else {
                    assert!(matches!(a.status, 400 | 413 | 500), "{label}: {seen}");
                    // Apache's error page alone: not followed by what the
                    // application answered, nor by a second error page.
                    assert!(!seen.contains("error="), "{label}: {seen}");
                    assert_eq!(seen.matches("HTTP/1.1").count(), 1, "{label}: {seen}");
                }
                // One response only: nothing of the application's answer
                // after Apache's error page.
                assert!(
                    a.rest.is_empty(),
                    "{label}: bytes after the response: {seen}"
                );
            }
            let marker = marker_or_panic(
                &apache,
                &format!("read-{token}"),
                Duration::from_secs(10),
                &label,
            );
            assert!(marker.starts_with("error="), "{label}: {marker}");
            served_within(&apache, Duration::from_secs(10), &label);
            eprintln!(
                "{label}: {} in {took:?}; app saw {marker}",
                answer.map_or("closed without an answer".to_string(), |a| format!(
                    "status {}",
                    a.status
                ))
            );
        }
    }
}

/// Header names with '_' never become HTTP_ keys (as Apache 2.4 drops them
/// from CGI variables): `X_Forwarded_For` cannot pose as X-Forwarded-For,
/// and no header can forge any other environ key.
#[test]
fn headers_with_underscores_cannot_forge_environ_keys() {
    let hostile = [
        "X_Forwarded_For: 6.6.6.6",
        "X-Forwarded_For: 6.6.6.7",
        "Remote_Addr: 6.6.6.8",
        // A dash-form name: HTTP_REMOTE_ADDR, never REMOTE_ADDR.
        "REMOTE-ADDR: dash-form",
        "Content_Length: 999",
        "Content_Type: evil/evil",
        "Script_Name: /evil",
        "Path_Info: /evil",
        "Server_Name: evil",
        "HTTP_HOST: evil",
        "Http_X_Forwarded_For: 6.6.6.10",
        "wsgi.url_scheme: evil",
        "mod_wsgi.process_group: evil",
        "mod_wsgi.x-ignore_activity: 1",
        "Proxy: http://evil:1/",
        "X.Forwarded.For: 6.6.6.11",
    ];
    for mode in MODES {
        let apache = server(mode, 10);
        let label = format!("{mode:?}");
        let ask = |headers: &[&str]| {
            let extra: String = headers
                .iter()
                .map(|h| format!("{h}\r\n"))
                .chain(["Connection: close\r\n".to_string()])
                .collect();
            let data = apache.raw(request_head("GET", "/h/environ", &extra).as_bytes());
            let a = parse(&data).unwrap_or_else(|| panic!("{label}: no answer"));
            assert_eq!(a.status, 200, "{label}: {}", a.text());
            fields(&a.text())
        };
        let baseline = ask(&[]);
        let with_dash_and_underscore = ask(&[
            "X_Forwarded_For: 1.1.1.1",
            "X-Forwarded-For: 1.2.3.4",
            "x_forwarded_for: 2.2.2.2",
        ]);
        assert_eq!(
            with_dash_and_underscore
                .get("HTTP_X_FORWARDED_FOR")
                .map(String::as_str),
            Some("1.2.3.4"),
            "{label}"
        );
        let underscore_only = ask(&["X_Forwarded_For: 1.1.1.1"]);
        assert_eq!(underscore_only.get("HTTP_X_FORWARDED_FOR"), None, "{label}");
        let forged = ask(&hostile);
        // Values that change from request to request.
        let volatile = |k: &str| k.starts_with("mod_wsgi.") || k == "REMOTE_PORT";
        for (k, v) in &forged {
            match baseline.get(k) {
                None if k == "HTTP_REMOTE_ADDR" && v == "dash-form" => {}
                None => panic!("{label}: a header made the environ key {k}={v}"),
                Some(was) if was != v && !volatile(k) => {
                    panic!("{label}: a header changed {k} from {was} to {v}")
                }
                _ => {}
            }
            assert!(
                !v.contains("6.6.6") && !v.contains("evil"),
                "{label}: {k}={v}"
            );
        }
        // Header names with whitespace before the colon are refused by
        // Apache itself (HttpProtocolOptions Strict).
        let data = apache.raw(
            request_head(
                "GET",
                "/h/environ",
                "X-Forwarded-For : 6.6.6.6\r\nConnection: close\r\n",
            )
            .as_bytes(),
        );
        let a = parse(&data).unwrap();
        assert_eq!(a.status, 400, "{label}: {}", a.text());
    }
}

/// Header values with any bytes a client may send (UTF-8, latin-1, bytes
/// that are neither; RFC 9110's obs-text) reach the application as PEP
/// 3333 has them, one character per byte, the same in both modes: nothing
/// is lost, and a framework's `.encode('latin-1')` gives back what was
/// sent (a non-latin-1 str there would make Django or Werkzeug raise on
/// every request carrying such a cookie). Other modules see the bytes
/// unchanged in the request's environment variables.
#[test]
fn header_values_reach_the_application_byte_for_byte() {
    let raw: &[u8] = b"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac latin \xe9 odd \xff\x80\tend";
    let cookie: &[u8] = b"name=\xe6\x97\xa5\xe6\x9c\xac; other=caf\xe9";
    let agent: &[u8] = b"Agent/1.0 (\xc3\xa9)";
    for mode in MODES {
        let apache = server_with(
            mode,
            10,
            "",
            "LogFormat \"%{HTTP_X_RAW}e\" rawenv\nCustomLog \"{dir}/env.log\" rawenv\n",
        );
        let label = format!("{mode:?}");
        let mut request = b"GET /h/header-bytes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Raw: ".to_vec();
        request.extend_from_slice(raw);
        request.extend_from_slice(b"\r\nCookie: ");
        request.extend_from_slice(cookie);
        request.extend_from_slice(b"\r\nUser-Agent: ");
        request.extend_from_slice(agent);
        request.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        let data = apache.raw(&request);
        let a = parse(&data).unwrap_or_else(|| panic!("{label}: no answer"));
        assert_eq!(
            a.status,
            200,
            "{label}: {}\n{}",
            a.text(),
            apache.error_log()
        );
        let hex = |b: &[u8]| b.iter().map(|c| format!("{c:02x}")).collect::<String>();
        let body = a.text();
        assert_eq!(field(&body, "HTTP_X_RAW"), hex(raw), "{label}");
        assert_eq!(field(&body, "HTTP_COOKIE"), hex(cookie), "{label}");
        assert_eq!(field(&body, "HTTP_USER_AGENT"), hex(agent), "{label}");
        // Apache's log escapes bytes above 0x7f as \xhh: the raw bytes,
        // not a re-encoding of them.
        let logged = std::fs::read_to_string(apache.dir.join("env.log")).unwrap_or_default();
        assert!(
            logged.contains(r"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac latin \xe9 odd \xff\x80"),
            "{label}: {logged}"
        );
    }
}

/// Header blocks over LimitRequestFieldSize / LimitRequestFields: Apache
/// answers 4xx before any module sees the request; nothing crashes and the
/// server serves on.
#[test]
fn oversized_header_blocks_are_refused_by_apache() {
    for mode in MODES {
        let apache = server_with(
            mode,
            10,
            "",
            "LimitRequestFieldSize 1024\nLimitRequestFields 20\nLimitRequestLine 2048\n",
        );
        let label = format!("{mode:?}");
        let pids = apache.pids();
        let long_field = format!("X-Long: {}\r\n", "a".repeat(4000));
        let many: String = (0..40).map(|i| format!("X-Many-{i}: {i}\r\n")).collect();
        let long_name = format!("X-{}: 1\r\n", "n".repeat(4000));
        let long_line = format!("/h/read?token=line&pad={}", "p".repeat(5000));
        for (name, path, extra, expected) in [
            (
                "long field",
                "/h/read?token=field",
                long_field.as_str(),
                400,
            ),
            ("long name", "/h/read?token=name", long_name.as_str(), 400),
            ("many fields", "/h/read?token=many", many.as_str(), 400),
            ("long request line", long_line.as_str(), "", 414),
        ] {
            let data = apache.raw(
                request_head(
                    "POST",
                    path,
                    &format!("{extra}Content-Length: 0\r\nConnection: close\r\n"),
                )
                .as_bytes(),
            );
            let a = parse(&data).unwrap_or_else(|| panic!("{label} {name}: no answer"));
            assert_eq!(a.status, expected, "{label} {name}");
        }
        let (_, _) = served_within(&apache, Duration::from_secs(10), &label);
        assert!(
            std::fs::read_dir(apache.markers())
                .unwrap()
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().starts_with("read-")),
            "{label}: the application saw a refused request"
        );
        let log = apache.error_log();
        assert!(
            !log.contains("exit signal") && !log.contains("Segmentation"),
            "{label}: {log}"
        );
        assert!(
            pids.iter().all(|p| pid_alive(*p)),
            "{label}: a process went away"
        );
    }
}

// ------------------------------------------------------- applications

/// What the error log gained since `from` (bytes).
fn log_since(apache: &Apache, from: usize) -> String {
    let log = apache.error_log();
    log.get(from..).unwrap_or("").to_string()
}

/// The text of an error-log line after Apache's `[date] [module:level]
/// [pid ...]` and `[client ...]`/`[remote ...]` tags.
fn message(line: &str) -> &str {
    let mut rest = line;
    for tag in 0..4 {
        let Some(inner) = rest.strip_prefix('[') else {
            break;
        };
        let Some(end) = inner.find("] ") else {
            break;
        };
        let name = &inner[..end];
        if tag == 3 && !(name.starts_with("client ") || name.starts_with("remote ")) {
            break;
        }
        rest = &inner[end + 2..];
    }
    rest
}

/// The error-level lines of `log` that are not part of a Python traceback:
/// what a failed request adds besides its traceback.
fn headlines(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_traceback = false;
    for line in log.lines().filter(|l| l.contains(":error]")) {
        let text = message(line);
        if text.starts_with("Traceback (most recent call last):") {
            in_traceback = true;
        } else if in_traceback && text.starts_with(' ') {
            // A frame, its source line or its markers.
        } else if in_traceback {
            // The exception line ends the traceback.
            in_traceback = false;
        } else {
            out.push(line.to_string());
        }
    }
    out
}

/// Every bad start_response() argument: a 500 (the head was not sent), the
/// bad bytes nowhere on the wire, and one error line naming the cause,
/// the group and the pid.
#[test]
fn bad_start_response_arguments_are_a_500_with_one_line() {
    let cases = [
        (
            "value-cr",
            "ValueError: carriage return/line feed character in header value",
        ),
        (
            "value-lf",
            "ValueError: carriage return/line feed character in header value",
        ),
        (
            "value-crlf",
            "ValueError: carriage return/line feed character in header value",
        ),
        ("value-nul", "ValueError: NUL character in header value"),
        ("name-cr", "ValueError: control character in header name"),
        ("name-lf", "ValueError: control character in header name"),
        ("name-nul", "ValueError: control character in header name"),
        ("name-colon", "ValueError: colon in header name"),
        ("name-space", "ValueError: space character in header name"),
        ("name-tab", "ValueError: control character in header name"),
        ("name-empty", "ValueError: header name is empty"),
        (
            "value-non-latin1",
            "UnicodeEncodeError: 'latin-1' codec can't encode",
        ),
        (
            "name-non-latin1",
            "UnicodeEncodeError: 'latin-1' codec can't encode",
        ),
        ("name-bytes", "TypeError: must be str, not bytes"),
        ("value-bytes", "TypeError: must be str, not bytes"),
        ("value-int", "TypeError: must be str, not int"),
        ("value-none", "TypeError: must be str, not NoneType"),
        ("name-none", "TypeError: must be str, not NoneType"),
        (
            "header-not-tuple",
            "TypeError: each header must be a 2-tuple, not str",
        ),
        (
            "header-triple",
            "ValueError: each header must be a 2-tuple, got length 3",
        ),
        (
            "headers-tuple",
            "TypeError: start_response() argument 2 must be list, not tuple",
        ),
        ("hop-by-hop", "ValueError: hop-by-hop header not allowed"),
        ("content-length-text", "ValueError: invalid Content-Length"),
        (
            "content-length-negative",
            "ValueError: invalid Content-Length",
        ),
        (
            "status-abc",
            "ValueError: status code must be a 3 digit integer: b'abc'",
        ),
        (
            "status-two-digits",
            "ValueError: status code must be a 3 digit integer: b'20 OK'",
        ),
        (
            "status-four-digits",
            "ValueError: status code must be a 3 digit integer: b'2000 OK'",
        ),
        (
            "status-empty",
            "ValueError: status code must be a 3 digit integer: b''",
        ),
        (
            "status-crlf",
            "ValueError: control character in status reason phrase",
        ),
        (
            "status-low",
            "ValueError: status code must be from 100 to 999",
        ),
        ("status-int", "TypeError: must be str, not int"),
        ("status-bytes", "TypeError: must be str, not bytes"),
        ("status-none", "TypeError: must be str, not NoneType"),
    ];
    // Every case is tried; the ones that went wrong are listed together.
    let mut wrong = Vec::new();
    for mode in MODES {
        let apache = server(mode, 10);
        let script = apache.dir.join("app/hostile.wsgi").display().to_string();
        for (case, cause) in cases {
            let label = format!("{mode:?} {case}");
            let from = apache.error_log().len();
            let data = apache.raw(
                request_head(
                    "GET",
                    &format!("/h/bad?case={case}"),
                    "Connection: close\r\n",
                )
                .as_bytes(),
            );
            let seen = String::from_utf8_lossy(&data).into_owned();
            let status = parse(&data).map(|a| a.status);
            if status != Some(500) {
                wrong.push(format!("{label}: status {status:?}:\n{seen}"));
            }
            if find(&data, b"EVIL").is_some() {
                wrong.push(format!(
                    "{label}: the bad bytes reached the client:\n{seen}"
                ));
            }
            if !ours() {
                continue;
            }
            apache.wait_for_log(cause, Duration::from_secs(5));
            let log = log_since(&apache, from);
            if !log.contains(cause) {
                wrong.push(format!("{label}: cause {cause:?} not logged:\n{log}"));
            }
            let heads = headlines(&log);
            let named = |head: &String| {
                head.contains(&script)
                    && head.contains("(pid ")
                    && (mode == Mode::Embedded
                        || head.contains(&format!("daemon process '{GROUP}'")))
            };
            if heads.len() != 1 || !heads.iter().all(named) {
                wrong.push(format!(
                    "{label}: not one error line naming the script, group and pid: {heads:#?}"
                ));
            }
        }
        eprintln!("{mode:?}: {} bad start_response() cases sent", cases.len());
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// write() kept past its request: called in a later request (same
/// connection, same process) or from a thread once the request is over, it
/// raises RuntimeError as in mod_wsgi and nothing reaches any client.
/// write() from close() is still part of the request and goes out.
#[test]
fn write_after_the_request_raises_and_corrupts_nothing() {
    for mode in MODES {
        let apache = server(mode, 10);
        let label = format!("{mode:?}");
        // Two requests on one connection: one Apache child, one process.
        let data = apache.raw(
            format!(
                "{}{}",
                request_head("GET", "/h/write-after?step=keep", ""),
                request_head("GET", "/h/write-after?step=late", "Connection: close\r\n")
            )
            .as_bytes(),
        );
        let seen = String::from_utf8_lossy(&data).into_owned();
        assert!(!seen.contains("EVIL"), "{label}: {seen}");
        let first = parse(&data).unwrap();
        assert_eq!(
            (first.status, first.text().as_str()),
            (200, "first\n"),
            "{label}"
        );
        let second = parse(&first.rest).unwrap_or_else(|| panic!("{label}: {seen}"));
        assert!(
            second.text().starts_with("late write: RuntimeError: "),
            "{label}: {seen}"
        );
        if ours() {
            assert_eq!(
                second.text(),
                "late write: RuntimeError: write() called after request completed\n\
                 late read: RuntimeError: read() called on wsgi.input after request completed\n",
                "{label}"
            );
        }

        // From a thread, a second after its request: the connection is
        // kept alive and already serving the next request.
        let mut s = connect(&apache);
        s.write_all(request_head("GET", "/h/write-thread?token=t&delay=1", "").as_bytes())
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        s.write_all(request_head("GET", "/h/stream?token=next&count=30&size=1000", "").as_bytes())
            .unwrap();
        let outcome = marker_or_panic(&apache, "thread-t", Duration::from_secs(10), &label);
        s.write_all(request_head("GET", "/h/pid", "Connection: close\r\n").as_bytes())
            .unwrap();
        let (data, closed) = read_until_close(&mut s, Duration::from_secs(15));
        assert!(closed, "{label}");
        let seen = String::from_utf8_lossy(&data).into_owned();
        assert!(!seen.contains("EVIL"), "{label}: {seen}");
        assert!(outcome.starts_with("RuntimeError: "), "{label}: {outcome}");
        if ours() {
            assert_eq!(
                outcome, "RuntimeError: write() called after request completed",
                "{label}"
            );
        }
        let a = parse(&data).unwrap();
        assert_eq!(a.text(), "first\n", "{label}");
        let b = parse(&a.rest).unwrap();
        assert_eq!(b.body, vec![b's'; 30_000], "{label}");
        let c = parse(&b.rest).unwrap();
        assert!(c.text().starts_with("pid="), "{label}: {seen}");

        // From close(): still the request's.
        let r = apache.get("/h/write-in-close");
        assert_eq!(r.text(), "body\nfrom close\n", "{label}");
        assert_eq!(
            marker_or_panic(&apache, "write-in-close", Duration::from_secs(5), &label),
            "no error",
            "{label}"
        );
    }
}

/// start_response() again once the head went out: without exc_info a
/// RuntimeError, with it the application's exception re-raised. Either
/// way the response is cut short, nothing of the second call or
/// after it reaches the client, and one traceback headline names the cause.
#[test]
fn start_response_after_the_head_cuts_the_response() {
    for mode in MODES {
        let apache = server(mode, 10);
        for (path, cause) in [
            (
                "/h/start-twice",
                "RuntimeError: start_response() called more than once without exc_info",
            ),
            ("/h/exc-info-after", "ValueError: hostile late failure"),
        ] {
            let label = format!("{mode:?} {path}");
            let from = apache.error_log().len();
            let data = apache.raw(request_head("GET", path, "").as_bytes());
            let seen = String::from_utf8_lossy(&data).into_owned();
            assert!(!seen.contains("EVIL"), "{label}: {seen}");
            let a = parse(&data).unwrap();
            assert_eq!(a.status, 200, "{label}");
            assert_eq!(a.text(), "part one\n", "{label}");
            // How the cut shows in the framing is the "trunc" drills' part.
            if !ours() {
                continue;
            }
            assert!(
                apache.wait_for_log(cause, Duration::from_secs(5)),
                "{label}"
            );
            let log = log_since(&apache, from);
            // One traceback headline; the cut itself is also logged by the
            // Apache child in daemon mode (the "trunc" part).
            let heads: Vec<String> = headlines(&log)
                .into_iter()
                .filter(|l| l.contains("WSGI0174"))
                .collect();
            assert_eq!(heads.len(), 1, "{label}: {heads:#?}\n{log}");
            assert!(
                heads[0].contains("response cut short") && heads[0].contains("(pid "),
                "{label}: {}",
                heads[0]
            );
        }
    }
}
