//! wsgi.file_wrapper in daemon mode: the daemon passes the open file to the
//! Apache child (SCM_RIGHTS beside a `ResponseFile` frame), which sends it
//! as a file bucket, as Apache sends a static file.
//!
//! Checked against a real Apache and daemon processes: byte-exact bodies
//! of binary files of several sizes (0 bytes to over 5 MiB) from several
//! offsets, cut by the application's Content-Length, given a
//! Content-Length from the file when the application set none, HEAD,
//! several requests on one keep-alive connection, with WSGIEnableSendfile
//! Off and On; the streaming fallback for what is not a regular file
//! (BytesIO, a pipe, a socket, an object with only read(), a fileno() that
//! fails, a /proc file); a file that shrinks while it is being sent ends
//! in a cut connection, not a short response that looks complete; and no
//! descriptor leaks on either side after 10,000 requests.
//!
//! Evidence of the fast path: the Apache child logs (at debug) one line per
//! file it sent itself, naming the bytes, the offset and how (sendfile,
//! mmap for a file the daemon's user cannot truncate, else read); a daemon that streams the file instead logs none, and the
//! tests that count those lines fail.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const APP: &str = r#"
import io, os, socket, threading, time
HERE = os.path.dirname(__file__)
DATA = os.path.join(HERE, "data")
MARKERS = os.path.join(HERE, "markers")

def query(environ):
    out = {}
    for part in environ.get("QUERY_STRING", "").split("&"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out

def content(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()

class ReadOnly:
    """read() and nothing else."""
    def __init__(self, data):
        self.data = io.BytesIO(data)
    def read(self, n=-1):
        return self.data.read(n)

class BadFileno(io.BytesIO):
    """A file-like object whose fileno() fails."""
    def fileno(self):
        raise OSError("no descriptor here")

def feed(data, write):
    def run():
        try:
            write(data)
        finally:
            pass
    threading.Thread(target=run, daemon=True).start()

def pipe_of(data):
    r, w = os.pipe()
    def run():
        with os.fdopen(w, "wb") as out:
            out.write(data)
    threading.Thread(target=run, daemon=True).start()
    return os.fdopen(r, "rb")

def socket_of(data):
    a, b = socket.socketpair()
    def run():
        with b:
            b.sendall(data)
    threading.Thread(target=run, daemon=True).start()
    f = a.makefile("rb")
    a.close()
    return f

def shrinking(token):
    """A 64 MiB file that is cut to 1 MiB once the test says the response
    is on its way (trigger-TOKEN), then says so (truncated-TOKEN)."""
    path = os.path.join(MARKERS, "big-" + token)
    with open(path, "wb") as f:
        f.truncate(64 << 20)
    def cut():
        trigger = os.path.join(MARKERS, "trigger-" + token)
        deadline = time.time() + 60
        while not os.path.exists(trigger) and time.time() < deadline:
            time.sleep(0.01)
        os.truncate(path, 1 << 20)
        with open(os.path.join(MARKERS, "truncated-" + token), "w") as f:
            f.write("done")
    threading.Thread(target=cut, daemon=True).start()
    return open(path, "rb")

def application(environ, start_response):
    path = environ["PATH_INFO"]
    q = query(environ)
    headers = [("Content-Type", "application/octet-stream")]
    if "cl" in q:
        headers.append(("Content-Length", q["cl"]))
    wrap = environ["wsgi.file_wrapper"]
    if path == "/hello":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        return [b"hello\n"]
    if path == "/file":
        f = open(os.path.join(DATA, q["name"]), "rb")
        f.seek(int(q.get("start", "0")))
        start_response("200 OK", headers)
        return wrap(f, int(q.get("blk", "8192")))
    if path == "/buffered":
        f = io.BufferedReader(io.FileIO(os.path.join(DATA, q["name"]), "r"))
        f.read(int(q.get("start", "0")))
        start_response("200 OK", headers)
        return wrap(f)
    if path == "/own":
        # A copy the application writes itself: the daemon's user owns it.
        copy = os.path.join(MARKERS, "own-" + q["name"])
        with open(copy, "wb") as out:
            out.write(content(q["name"]))
        # Not group- or world-writable: only the ownership keeps it unmapped.
        os.chmod(copy, 0o644)
        start_response("200 OK", headers)
        return wrap(open(copy, "rb"))
    if path == "/shrink":
        f = shrinking(q["token"])
        start_response("200 OK", headers)
        return wrap(f)
    data = content(q["name"])
    if path == "/bytesio":
        obj = io.BytesIO(data)
    elif path == "/readonly":
        obj = ReadOnly(data)
    elif path == "/badfileno":
        obj = BadFileno(data)
    elif path == "/pipe":
        obj = pipe_of(data)
    elif path == "/socket":
        obj = socket_of(data)
    elif path == "/proc":
        obj = open("/proc/self/status", "rb")
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such route\n"]
    start_response("200 OK", headers)
    return wrap(obj, int(q.get("blk", "8192")))
"#;

/// Deterministic binary bytes (every value 0..=255 occurs).
fn bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

/// The data files: (name, size).
const FILES: [(&str, usize); 6] = [
    ("empty", 0),
    ("one", 1),
    ("page", 4095),
    ("mid", 65_539),
    ("mib", (1 << 20) + 5),
    ("big", (5 << 20) + 17),
];

fn data_of(name: &str) -> Vec<u8> {
    let (i, (_, size)) = FILES
        .iter()
        .enumerate()
        .find(|(_, (n, _))| *n == name)
        .unwrap_or_else(|| panic!("no data file {name}"));
    bytes(*size, 7 + i as u32)
}

/// Apache with the daemon group `fw` (display-name fw-daemon) at /d
/// (WSGIEnableSendfile Off) and /s (On); the worker's wsgi lines at debug.
fn server(mpm: Mpm) -> Apache {
    let mut builder = Apache::builder()
        .mpm(mpm)
        .file("app/fw.wsgi", APP)
        .file("app/markers/.keep", "");
    for (name, _) in FILES {
        builder = builder.file_bytes(&format!("app/data/{name}"), &data_of(name));
    }
    let apache = builder
        .directives(
            "LogLevel info wsgi:debug\n\
             WSGIDaemonProcess fw processes=2 threads=4 display-name=fw-daemon\n\
             WSGIScriptAlias /d {dir}/app/fw.wsgi process-group=fw application-group=%{GLOBAL}\n\
             WSGIScriptAlias /s {dir}/app/fw.wsgi process-group=fw application-group=%{GLOBAL}\n\
             <Location /s>\n    WSGIEnableSendfile On\n</Location>\n",
        )
        .start();
    // The application (www-data when Apache starts as root) writes markers.
    apache.open_markers();
    apache
}

/// Lines of the error log saying a file was sent by the Apache child:
/// all of them, and those of exactly `len` bytes from `offset` sent `how`.
fn fast_lines(apache: &Apache) -> usize {
    apache.error_log().matches("as a file bucket").count()
}

fn fast_lines_for(apache: &Apache, len: usize, offset: usize, how: &str) -> usize {
    let head = format!("sent {len} bytes from offset {offset} of the file ");
    let tail = format!("as a file bucket ({how})");
    apache
        .error_log()
        .lines()
        .filter(|l| l.contains(&head) && l.contains(&tail))
        .count()
}

// ------------------------------------------------------------- HTTP client

/// One response read off a keep-alive connection.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A client connection that sends one request at a time and reads its
/// response by Content-Length or chunked encoding.
struct Conn {
    reader: BufReader<TcpStream>,
    /// The last request sent, for messages.
    last: String,
}

impl Conn {
    fn open(apache: &Apache) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", apache.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
        Conn {
            reader: BufReader::with_capacity(256 * 1024, s),
            last: String::new(),
        }
    }

    fn send(&mut self, method: &str, path: &str, close: bool) {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}\r\n",
            if close { "Connection: close\r\n" } else { "" }
        );
        self.reader.get_mut().write_all(req.as_bytes()).unwrap();
        self.last = format!("{method} {path}");
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read line");
        line.trim_end_matches(['\r', '\n']).to_string()
    }

    fn read_reply(&mut self, head_only: bool) -> Reply {
        let status_line = self.line();
        assert!(
            status_line.starts_with("HTTP/1.1 "),
            "bad status line {status_line:?} answering {}",
            self.last
        );
        let status = status_line[9..12].parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let l = self.line();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').expect("header line");
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only {
            return reply;
        }
        if let Some(len) = reply.header("Content-Length") {
            let mut body = vec![0u8; len.parse().unwrap()];
            self.reader.read_exact(&mut body).expect("body");
            reply.body = body;
        } else if reply
            .header("Transfer-Encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let size = usize::from_str_radix(self.line().split(';').next().unwrap(), 16)
                    .expect("chunk size");
                if size == 0 {
                    assert_eq!(self.line(), "", "trailers");
                    break;
                }
                let start = reply.body.len();
                reply.body.resize(start + size, 0);
                self.reader.read_exact(&mut reply.body[start..]).unwrap();
                assert_eq!(self.line(), "", "chunk end");
            }
        } else {
            self.reader.read_to_end(&mut reply.body).unwrap();
        }
        reply
    }

    fn request(&mut self, method: &str, path: &str) -> Reply {
        self.send(method, path, false);
        self.read_reply(method == "HEAD")
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    assert!(wait_until(timeout, &mut f), "timed out waiting for {what}");
}

// ------------------------------------------------------------- the tests

/// One file request through the fast path: body, Content-Length and the
/// worker's line for it.
#[allow(clippy::too_many_arguments)]
fn check_fast(
    apache: &Apache,
    conn: &mut Conn,
    mount: &str,
    name: &str,
    start: usize,
    cl: Option<usize>,
    method: &str,
    expected_lines: &mut usize,
) {
    let data = data_of(name);
    // The data files are root's, 0644: the daemon (www-data) cannot
    // truncate them, so without sendfile Apache may map them.
    let how = if mount == "s" { "sendfile" } else { "mmap" };
    let mut path = format!("/{mount}/file?name={name}&start={start}");
    if let Some(cl) = cl {
        path.push_str(&format!("&cl={cl}"));
    }
    let rest = data.len().saturating_sub(start);
    let len = cl.map_or(rest, |cl| cl.min(rest));
    let label = format!("{method} {path}");
    let before = fast_lines_for(apache, len, start, how);
    let r = conn.request(method, &path);
    assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
    // The Content-Length is the application's, or the rest of the file.
    assert_eq!(
        r.header("Content-Length"),
        Some(cl.unwrap_or(rest).to_string().as_str()),
        "{label}: {:?}",
        r.headers
    );
    if method == "HEAD" {
        assert!(r.body.is_empty(), "{label}");
    } else {
        assert_eq!(r.body.len(), len, "{label}: length");
        assert!(r.body == data[start..start + len], "{label}: bytes differ");
    }
    if len > 0 {
        *expected_lines += 1;
        wait_for(
            &format!("the worker's line for {label}"),
            Duration::from_secs(10),
            || fast_lines_for(apache, len, start, how) > before,
        );
    }
}

#[test]
fn daemon_file_wrapper_sends_the_file_from_the_apache_child() {
    for mpm in [Mpm::Event, Mpm::Prefork] {
        let apache = server(mpm);
        let mut expected = 0usize;
        for mount in ["d", "s"] {
            let mut conn = Conn::open(&apache);
            for (name, size) in FILES {
                let mut starts = vec![0, size / 2, size];
                if size > 0 {
                    starts.extend([1, size - 1]);
                }
                starts.dedup();
                for start in starts {
                    check_fast(
                        &apache,
                        &mut conn,
                        mount,
                        name,
                        start,
                        None,
                        "GET",
                        &mut expected,
                    );
                }
                if size == 0 {
                    continue;
                }
                // Content-Length cuts: shorter than the rest, zero, and
                // one the file cannot fill is not tried here (a failure).
                let start = size / 3;
                for cl in [0, 1, (size - start) / 2, size - start] {
                    check_fast(
                        &apache,
                        &mut conn,
                        mount,
                        name,
                        start,
                        Some(cl),
                        "GET",
                        &mut expected,
                    );
                }
                check_fast(
                    &apache,
                    &mut conn,
                    mount,
                    name,
                    start,
                    None,
                    "HEAD",
                    &mut expected,
                );
            }
            // A buffered file object: its tell() counts, not the descriptor's
            // position after the read-ahead.
            let data = data_of("mib");
            let before = fast_lines(&apache);
            let r = conn.request("GET", &format!("/{mount}/buffered?name=mib&start=1000"));
            assert_eq!(r.status, 200);
            assert!(r.body == data[1000..], "/{mount} buffered");
            expected += 1;
            wait_for("the buffered file's line", Duration::from_secs(10), || {
                fast_lines(&apache) > before
            });
        }
        // Nothing was streamed: every file request above logged its line,
        // and no other request did.
        assert_eq!(
            fast_lines(&apache),
            expected,
            "{mpm}: {}",
            apache.error_log()
        );
        assert!(
            !apache.error_log().contains("cut short"),
            "{mpm}: {}",
            apache.error_log()
        );
    }
}

/// Memory-mapping a passed file is for files the daemon's user cannot
/// truncate (a map that shrinks kills the Apache child with SIGBUS): one
/// it owns, or one its group or anyone may write, is read instead.
#[test]
fn only_files_the_daemon_cannot_truncate_are_mapped() {
    let apache = server(Mpm::Event);
    let mut conn = Conn::open(&apache);
    let data = data_of("mid");
    let served = |conn: &mut Conn, path: &str, how: &str| {
        let before = fast_lines_for(&apache, data.len(), 0, how);
        let r = conn.request("GET", path);
        assert_eq!(r.status, 200, "{path}: {}", apache.error_log());
        assert!(r.body == data, "{path}: bytes differ");
        wait_for(
            &format!("the worker's line for {path} ({how})"),
            Duration::from_secs(10),
            || fast_lines_for(&apache, data.len(), 0, how) > before,
        );
    };
    // Root's, 0644.
    served(&mut conn, "/d/file?name=mid", "mmap");
    // The daemon's own copy.
    served(&mut conn, "/d/own?name=mid", "read");
    // Root's, but group-writable, then world-writable.
    let path = apache.dir.join("app/data/mid");
    for mode in [0o664, 0o646] {
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .unwrap();
        served(&mut conn, "/d/file?name=mid", "read");
    }
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    served(&mut conn, "/d/file?name=mid", "mmap");
}

#[test]
fn what_is_not_a_regular_file_is_streamed() {
    let apache = server(Mpm::Event);
    let mut conn = Conn::open(&apache);
    let before = fast_lines(&apache);
    let data = data_of("big");
    for route in ["bytesio", "readonly", "badfileno", "pipe", "socket"] {
        for (cl, blk) in [(None, 8192), (Some(300_001), 65_536), (None, 1)] {
            if blk == 1 && !matches!(route, "bytesio" | "pipe") {
                continue;
            }
            let name = if blk == 1 { "mid" } else { "big" };
            let data = if blk == 1 {
                data_of("mid")
            } else {
                data.clone()
            };
            let mut path = format!("/d/{route}?name={name}&blk={blk}");
            if let Some(cl) = cl {
                path.push_str(&format!("&cl={cl}"));
            }
            let r = conn.request("GET", &path);
            assert_eq!(r.status, 200, "{path}: {}", apache.error_log());
            let len = cl.unwrap_or(data.len());
            assert_eq!(r.body.len(), len, "{path}");
            assert!(r.body == data[..len], "{path}: bytes differ");
        }
    }
    // A /proc file says its size is 0: read, not sent as 0 bytes.
    let r = conn.request("GET", "/d/proc?name=one");
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        text.starts_with("Name:") && text.contains("\nPid:"),
        "{text}"
    );
    // An empty file: nothing to pass.
    let r = conn.request("GET", "/d/file?name=empty");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    // A request that does pass its file, so that a line any of the above
    // wrote would be in the log by now.
    let r = conn.request("GET", "/d/file?name=page");
    assert!(r.body == data_of("page"));
    wait_for("the last file's line", Duration::from_secs(10), || {
        fast_lines(&apache) > before
    });
    assert_eq!(
        fast_lines(&apache),
        before + 1,
        "something other than a regular file went as a file: {}",
        apache.error_log()
    );
}

#[test]
fn keep_alive_connections_stay_in_step() {
    let apache = server(Mpm::Event);
    let big = data_of("big");
    let mid = data_of("mid");
    for mount in ["d", "s"] {
        let mut conn = Conn::open(&apache);
        for round in 0..3 {
            let label = format!("/{mount} round {round}");
            let r = conn.request("GET", &format!("/{mount}/file?name=big&start=5&cl=70000"));
            assert!(r.body == big[5..70_005], "{label}: cut file");
            let r = conn.request("HEAD", &format!("/{mount}/file?name=big"));
            assert_eq!(
                r.header("Content-Length"),
                Some(big.len().to_string().as_str())
            );
            let r = conn.request("GET", &format!("/{mount}/file?name=mid&start=3"));
            assert!(r.body == mid[3..], "{label}: mid");
            let r = conn.request("GET", &format!("/{mount}/bytesio?name=mid"));
            assert!(r.body == mid, "{label}: bytesio");
            let r = conn.request("GET", &format!("/{mount}/pipe?name=mid"));
            assert!(r.body == mid, "{label}: pipe");
            let r = conn.request("GET", &format!("/{mount}/file?name=empty"));
            assert!(r.body.is_empty(), "{label}: empty");
            let r = conn.request("GET", &format!("/{mount}/file?name=big"));
            assert!(r.body == big, "{label}: big");
            let r = conn.request("GET", &format!("/{mount}/hello"));
            assert_eq!(r.body, b"hello\n", "{label}: hello");
        }
        // Pipelined: all requests written at once, the answers in order.
        let path = format!("/{mount}/file?name=mid&start=100&cl=1000");
        for i in 0..5 {
            conn.send("GET", &path, i == 4);
        }
        for i in 0..5 {
            let r = conn.read_reply(false);
            assert!(r.body == mid[100..1100], "/{mount} pipelined {i}");
        }
        let mut rest = Vec::new();
        conn.reader.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "/{mount}: bytes after the last response");
    }
}

#[test]
fn a_file_that_shrinks_while_it_is_sent_cuts_the_connection() {
    let apache = server(Mpm::Event);
    for mount in ["d", "s"] {
        let token = format!("shrink-{mount}");
        let mut s = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        // Two requests: a response that came out short but looked whole
        // would be followed by the second one's answer.
        let req = format!(
            "GET /{mount}/shrink?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\
             GET /{mount}/hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).unwrap();
        // The head and the first bytes of the 64 MiB body...
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < 256 * 1024 {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed early: {}", apache.error_log());
            got.extend_from_slice(&buf[..n]);
        }
        // ...then the file is cut to 1 MiB while Apache is still at it
        // (it cannot have written 64 MiB into the socket buffers).
        let m = apache.markers();
        std::fs::write(m.join(format!("trigger-{token}")), "go").unwrap();
        wait_for("the truncation", Duration::from_secs(30), || {
            m.join(format!("truncated-{token}")).exists()
        });
        let mut rest = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => rest.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
            assert!(Instant::now() < deadline, "the connection stayed open");
        }
        got.extend(rest);
        let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&got[..end]);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Content-Length: 67108864"), "{head}");
        let body = &got[end..];
        assert!(
            body.len() < 64 << 20,
            "/{mount}: the whole 64 MiB arrived from a 1 MiB file"
        );
        // Nothing of the second response: the connection was cut.
        assert!(
            !body.windows(9).any(|w| w == b"HTTP/1.1 "),
            "/{mount}: a second response followed the short one"
        );
        let log = apache.error_log();
        assert!(
            log.contains("passed shrank to 1048576 bytes while being sent"),
            "/{mount}: {log}"
        );
        assert!(log.contains("connection aborted"), "/{mount}: {log}");
        // The child is fine: the next request on a new connection is served.
        let mut conn = Conn::open(&apache);
        assert_eq!(
            conn.request("GET", &format!("/{mount}/hello")).body,
            b"hello\n"
        );
    }
}

/// Open descriptors of each process.
fn fd_counts(pids: &[u32]) -> Vec<(u32, usize)> {
    pids.iter()
        .map(|&p| {
            let n = std::fs::read_dir(format!("/proc/{p}/fd"))
                .map(|d| d.count())
                .unwrap_or_else(|e| panic!("/proc/{p}/fd: {e}"));
            (p, n)
        })
        .collect()
}

/// The Apache children and the daemon processes.
fn served_by(apache: &Apache) -> (Vec<u32>, Vec<u32>) {
    let daemons = apache.pids_named("fw-daemon");
    let parent = apache.parent_pid();
    let children = apache
        .pids()
        .into_iter()
        .filter(|p| *p != parent && !daemons.contains(p))
        .collect();
    (children, daemons)
}

/// `requests` requests over `clients` keep-alive connections (each opened
/// anew every 50 requests), mixing files sent by the Apache child (whole,
/// from an offset, cut, HEAD, sendfile) with streamed ones.
fn load(apache: &Apache, clients: usize, requests: usize) {
    let page = data_of("page");
    let mid = data_of("mid");
    std::thread::scope(|scope| {
        for client in 0..clients {
            let (page, mid) = (&page, &mid);
            scope.spawn(move || {
                let mut conn = Conn::open(apache);
                for i in 0..requests / clients {
                    if i % 50 == 49 {
                        conn = Conn::open(apache);
                    }
                    let k = (i * clients + client) % 10;
                    let mount = if k.is_multiple_of(2) { "d" } else { "s" };
                    match k {
                        0..=4 => {
                            let start = (i * 7) % page.len();
                            let r = conn
                                .request("GET", &format!("/{mount}/file?name=page&start={start}"));
                            assert!(r.body == page[start..], "request {i}: page from {start}");
                        }
                        5 => {
                            let r = conn.request(
                                "GET",
                                &format!("/{mount}/file?name=mid&start=10&cl=5000"),
                            );
                            assert!(r.body == mid[10..5010], "request {i}: cut");
                        }
                        6 => {
                            let r = conn.request("HEAD", &format!("/{mount}/file?name=mid"));
                            assert_eq!(r.status, 200, "request {i}: HEAD");
                        }
                        7 => {
                            let r = conn.request("GET", &format!("/{mount}/bytesio?name=page"));
                            assert!(r.body == *page, "request {i}: bytesio");
                        }
                        8 => {
                            let r = conn.request("GET", &format!("/{mount}/file?name=mid"));
                            assert!(r.body == *mid, "request {i}: mid");
                        }
                        _ => {
                            let r = conn.request("GET", &format!("/{mount}/pipe?name=page"));
                            assert!(r.body == *page, "request {i}: pipe");
                        }
                    }
                }
            });
        }
    });
}

#[test]
fn no_descriptor_leaks_after_ten_thousand_requests() {
    let apache = server(Mpm::Event);
    // Warm-up: every process has served, loaded the script, opened what
    // it keeps open.
    load(&apache, 4, 400);
    std::thread::sleep(Duration::from_millis(500));
    let (children, daemons) = served_by(&apache);
    assert!(
        !children.is_empty() && daemons.len() == 2,
        "{children:?} {daemons:?}"
    );
    let before_children = fd_counts(&children);
    let before_daemons = fd_counts(&daemons);
    let lines_before = fast_lines(&apache);

    load(&apache, 4, 10_000);

    // The same processes served it all (none restarted).
    let (children_after, daemons_after) = served_by(&apache);
    assert_eq!(children_after, children, "Apache children changed");
    assert_eq!(daemons_after, daemons, "daemon processes changed");
    // Descriptors: back to the warm-up counts (a few of slack for what
    // Apache and Python open lazily, and the connections kept between the
    // Apache children and the daemons: at most one per daemon thread, 2 x 4,
    // in each child), once the last requests are done.
    let settled = |before: &[(u32, usize)], pids: &[u32]| {
        wait_until(Duration::from_secs(10), || {
            fd_counts(pids)
                .iter()
                .zip(before)
                .all(|((_, now), (_, then))| *now <= then + 3 + 8)
        })
    };
    assert!(
        settled(&before_children, &children),
        "Apache children leak descriptors: before {before_children:?}, after {:?}",
        fd_counts(&children)
    );
    assert!(
        settled(&before_daemons, &daemons),
        "daemon processes leak descriptors: before {before_daemons:?}, after {:?}",
        fd_counts(&daemons)
    );
    // 8 of every 10 requests went through the Apache child's file path.
    let sent = fast_lines(&apache) - lines_before;
    assert_eq!(sent, 8_000, "files the Apache children sent themselves");
    let log = apache.error_log();
    assert!(!log.contains("cut short"), "{log}");
}
