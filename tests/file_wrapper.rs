//! wsgi.file_wrapper and wsgi.input byte for byte, against a real Apache.
//!
//! file_wrapper around a real file: embedded mode hands the file to Apache
//! (a file bucket: sendfile with WSGIEnableSendfile On, else mmap or block
//! reads), daemon mode streams it; either way the client gets exactly the
//! file's bytes from its current position, no more than the application's
//! Content-Length, and the file is closed through the wrapper's close().
//! A file-like object without a descriptor is read with read(blksize).
//!
//! wsgi.input: bodies of several sizes read with read(n) of several n,
//! read(), readline() and a mix of them come back byte-exact.

mod common;
use common::*;
use std::time::{Duration, Instant};

const APP: &str = r#"
import io, os
HERE = os.path.dirname(__file__)
DATA = os.path.join(HERE, "data.bin")
EMPTY = os.path.join(HERE, "empty.bin")
MARKERS = os.path.join(HERE, "markers")

def note(name, text):
    tmp = os.path.join(MARKERS, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(MARKERS, name))

class Tracked(io.FileIO):
    """A real file that leaves a marker when closed."""
    token = None
    def close(self):
        if self.token and not self.closed:
            note("closed-" + self.token, "closed")
        super().close()

class FileLike:
    """Not a real file: read() and close() only."""
    def __init__(self, data, token):
        self.data = io.BytesIO(data)
        self.token = token
    def read(self, n=-1):
        return self.data.read(n)
    def close(self):
        note("closed-" + self.token, "closed")

def query(environ):
    out = {}
    for part in environ.get("QUERY_STRING", "").split("&"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out

def file_route(environ, start_response, q):
    headers = [("Content-Type", "application/octet-stream"),
               ("X-Enable-Sendfile", environ.get("mod_wsgi.enable_sendfile", "?"))]
    if "cl" in q:
        headers.append(("Content-Length", q["cl"]))
    kind = q.get("kind", "raw")
    if kind == "filelike":
        with open(DATA, "rb") as f:
            data = f.read()
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](FileLike(data, q["token"]), 10000)
    f = Tracked(EMPTY if kind == "empty" else DATA, "r")
    f.token = q.get("token")
    if kind == "buffered":
        # The position is the buffered object's tell(), not the descriptor's.
        f = io.BufferedReader(f)
        f.read(int(q.get("start", "0")))
    else:
        f.seek(int(q.get("start", "0")))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, int(q.get("blk", "8192")))

def body_route(environ, start_response, how):
    stream = environ["wsgi.input"]
    parts = []
    if how.startswith("read-"):
        n = int(how[5:])
        while True:
            chunk = stream.read(n)
            if not chunk:
                break
            assert len(chunk) <= n, (len(chunk), n)
            parts.append(chunk)
    elif how == "readall":
        parts.append(stream.read())
        assert stream.read() == b""
        assert stream.read(10) == b""
    elif how == "readline":
        while True:
            line = stream.readline()
            if not line:
                break
            assert line.endswith(b"\n") or not stream.read(1), "short line mid-body"
            parts.append(line)
    elif how == "mixed":
        # Lookahead from readline() must be used up by read(n) and read().
        parts.append(stream.readline())
        parts.append(stream.read(5))
        parts.append(stream.readline(100))
        parts.append(stream.read(70000))
        parts.append(stream.readline())
        parts.append(stream.read())
    else:
        raise ValueError(how)
    body = b"".join(parts)
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]

def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/file":
        return file_route(environ, start_response, query(environ))
    if path.startswith("/body/"):
        return body_route(environ, start_response, path[len("/body/"):])
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
    return [b"hello\n"]
"#;

/// 5 MiB and a bit: above APR's 4 MiB mmap limit, so a file bucket of the
/// whole file is read in blocks, and smaller ranges are memory-mapped.
fn data() -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..(5 << 20) + 17)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

fn server(mpm: Mpm, sendfile: bool, data: &[u8]) -> Apache {
    let apache = Apache::builder()
        .mpm(mpm)
        .file("app/fw.wsgi", APP)
        .file_bytes("app/data.bin", data)
        .file_bytes("app/empty.bin", b"")
        .file("app/markers/.keep", "")
        .directives(&format!(
            "WSGIDaemonProcess fw threads=2\n\
             WSGIScriptAlias /e {{dir}}/app/fw.wsgi\n\
             WSGIScriptAlias /d {{dir}}/app/fw.wsgi process-group=fw\n\
             WSGIEnableSendfile {}\n",
            if sendfile { "On" } else { "Off" }
        ))
        .start();
    // The application (www-data when Apache starts as root) writes markers.
    apache.open_markers();
    apache
}

fn closed(apache: &Apache, token: &str) -> bool {
    let path = apache.markers().join(format!("closed-{token}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::fs::read_to_string(&path).is_ok_and(|s| s == "closed") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// A response read off a raw connection: status, headers, body bytes by
/// Content-Length, and what follows.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    rest: Vec<u8>,
}

fn parse_raw(data: &[u8], head_only: bool) -> Raw {
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(data)));
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len = if head_only {
        0
    } else {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse::<usize>().unwrap())
            .expect("Content-Length")
    };
    let body_start = end + 4;
    Raw {
        status,
        headers,
        body: data[body_start..body_start + len].to_vec(),
        rest: data[body_start + len..].to_vec(),
    }
}

fn check_files(apache: &Apache, data: &[u8], label: &str, mount: &str, sendfile: bool) {
    let get = |q: &str| apache.get(&format!("/{mount}/file?{q}"));
    let token = |name: &str| format!("{mount}-{}-{name}", sendfile as u8);

    // The whole file, no Content-Length from the application.
    let t = token("whole");
    let r = get(&format!("token={t}"));
    assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
    assert_eq!(r.body.len(), data.len(), "{label}: whole file length");
    assert!(r.body == data, "{label}: whole file differs");
    assert!(
        closed(apache, &t),
        "{label}: close() not called (whole file)"
    );
    // As with mod_wsgi 6, WSGIEnableSendfile is not in the environ (4.x
    // had mod_wsgi.enable_sendfile).
    assert_eq!(r.header("X-Enable-Sendfile"), Some("?"), "{label}");

    // From the file's current position, with a matching Content-Length.
    let t = token("seek");
    let start = 777_777;
    let rest = data.len() - start;
    let r = get(&format!("token={t}&start={start}&cl={rest}"));
    assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
    assert_eq!(r.header("Content-Length"), Some(rest.to_string().as_str()));
    assert!(r.body == data[start..], "{label}: body from offset differs");
    assert!(closed(apache, &t), "{label}: close() not called (seek)");

    // The application's Content-Length cuts the file short.
    let t = token("short");
    let r = get(&format!("token={t}&start=1000&cl=300001"));
    assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
    assert_eq!(r.header("Content-Length"), Some("300001"), "{label}");
    assert!(
        r.body == data[1000..301_001],
        "{label}: Content-Length cut differs"
    );
    assert!(closed(apache, &t), "{label}: close() not called (short)");

    // Content-Length 0: nothing of the file is sent.
    let r = get(&format!("token={}&cl=0", token("zero")));
    assert_eq!(r.status, 200, "{label}");
    assert!(r.body.is_empty(), "{label}: Content-Length 0 sent bytes");
    assert!(closed(apache, &token("zero")), "{label}: close() (zero)");

    // A buffered file object: its tell() (1000) counts, not the
    // descriptor's position after its read-ahead.
    let t = token("buffered");
    let r = get(&format!("token={t}&kind=buffered&start=1000"));
    assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
    assert!(r.body == data[1000..], "{label}: buffered file differs");
    assert!(closed(apache, &t), "{label}: close() not called (buffered)");

    // An empty file: an empty body.
    let r = get(&format!("token={}&kind=empty", token("empty")));
    assert_eq!(r.status, 200, "{label}");
    assert!(r.body.is_empty(), "{label}: empty file sent bytes");

    // Not a real file: read(blksize), and close().
    let t = token("filelike");
    let r = get(&format!("token={t}&kind=filelike&cl=123457"));
    assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
    assert!(r.body == data[..123_457], "{label}: file-like differs");
    assert!(
        closed(apache, &t),
        "{label}: close() not called (file-like)"
    );

    // Keep-alive: a cut file response, a HEAD of a file and a normal
    // response on one connection stay in step.
    let req = format!(
        "GET /{mount}/file?start=5&cl=70000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\
         HEAD /{mount}/file?cl={len} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\
         GET /{mount}/hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        len = data.len()
    );
    let all = apache.raw(req.as_bytes());
    let first = parse_raw(&all, false);
    assert_eq!(first.status, 200, "{label}");
    assert!(
        first.body == data[5..70_005],
        "{label}: pipelined file differs"
    );
    let second = parse_raw(&first.rest, true);
    assert_eq!(second.status, 200, "{label}: HEAD");
    assert!(
        second
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("content-length") && *v == data.len().to_string()),
        "{label}: HEAD headers {:?}",
        second.headers
    );
    let third = parse_raw(&second.rest, false);
    assert_eq!(third.status, 200, "{label}: after HEAD");
    assert_eq!(third.body, b"hello\n", "{label}: after HEAD");
    assert!(
        third.rest.is_empty(),
        "{label}: bytes after the last response"
    );
}

#[test]
fn file_wrapper_sends_exact_bytes_with_and_without_sendfile() {
    let data = data();
    for (mpm, sendfile) in [
        (Mpm::Event, false),
        (Mpm::Event, true),
        (Mpm::Prefork, true),
    ] {
        let apache = server(mpm, sendfile, &data);
        for mount in ["e", "d"] {
            let label = format!("{mpm} sendfile={sendfile} /{mount}");
            check_files(&apache, &data, &label, mount, sendfile);
        }
    }
}

/// Lines of varied length, some long, ending without a newline.
fn body(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    let mut x: u32 = 7;
    let mut line = 0usize;
    while out.len() < size {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let b = (x >> 16) as u8;
        line += 1;
        // Mostly short lines, now and then one of ~100 KB.
        let limit = if (x >> 8).is_multiple_of(997) {
            100_000
        } else {
            90
        };
        if b == b'\n' || line >= limit {
            out.push(b'\n');
            line = 0;
        } else {
            out.push(b);
        }
    }
    if out.last() == Some(&b'\n') {
        out.pop();
        out.push(b'x');
    }
    out
}

#[test]
fn input_bodies_of_several_sizes_are_read_byte_exact() {
    let data = data();
    let apache = server(Mpm::Event, false, &data[..100]);
    let sizes = [0usize, 1, 8191, 65_536, 65_537, 1 << 20, (5 << 20) + 3];
    for mount in ["e", "d"] {
        for &size in &sizes {
            let sent = body(size);
            let mut ways = vec!["read-65536", "read-1000000", "readall", "readline", "mixed"];
            if size <= 65_537 {
                ways.push("read-7");
            }
            if size >= 1 << 20 {
                ways.push("read-8000000");
            }
            for how in ways {
                let r = apache.request("POST", &format!("/{mount}/body/{how}"), &[], &sent);
                let label = format!("/{mount} {how} of {size} bytes");
                assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
                assert_eq!(r.body.len(), sent.len(), "{label}: length");
                assert!(r.body == sent, "{label}: bytes differ");
            }
        }
    }
}
