//! The daemon socket as an attacker sees it: who may connect (file mode,
//! then the daemon's own SO_PEERCRED check), and what the daemon does with
//! bytes that are not a request of its protocol. Clients connect straight to
//! the group's socket (found under a WSGISocketPrefix the test chooses);
//! another local user is played by a Python client run through `setpriv`.

mod common;
use common::*;
use mod_wsgi_rs::protocol::{self, Decoder, FailureKind, Frame, Limits, PROTOCOL_VERSION};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const PID_APP: &str = r#"
import os
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"#;

/// A client of the daemon socket, run as another user: connects, sends the
/// bytes given in hex, then reads until the daemon closes or `wait` seconds
/// pass. Prints `refused ERRNO`, or `closed|open SECONDS HEX-OF-REPLY`.
const CLIENT: &str = r#"
import socket, sys, time
path, data, wait = sys.argv[1], bytes.fromhex(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(path)
except OSError as e:
    print("refused", e.errno)
    sys.exit()
start = time.monotonic()
got = b""
how = "closed"
try:
    s.sendall(data)
    s.settimeout(wait)
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
except socket.timeout:
    how = "open"
except (ConnectionResetError, BrokenPipeError):
    pass
print(how, "%.2f" % (time.monotonic() - start), got.hex())
"#;

/// Apache with one daemon group `g` (`options` added) serving PID_APP at /,
/// its socket under `sockdir`.
fn server(sockdir: &Path, options: &str) -> Apache {
    Apache::builder()
        .file("app/pid.wsgi", PID_APP)
        .file("client.py", CLIENT)
        .directives(&format!(
            "WSGISocketPrefix {sock}/wsgi\n\
             WSGIDaemonProcess g threads=1 {options}\n\
             WSGIScriptAlias / {{dir}}/app/pid.wsgi process-group=g\n",
            sock = sockdir.display()
        ))
        .start()
}

/// The group's listening socket.
fn socket_in(sockdir: &Path) -> PathBuf {
    std::fs::read_dir(sockdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sock"))
        .expect("the group's socket under WSGISocketPrefix")
}

/// The pid of the daemon that served a normal request through Apache.
fn served_pid(apache: &Apache) -> u32 {
    let r = apache.get("/");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), apache.error_log());
    r.text().parse().unwrap()
}

/// A request for PID_APP as an Apache child would send it, or of another
/// protocol `version`.
fn forged_request(apache: &Apache, version: u16) -> Vec<u8> {
    let script = apache.dir.join("app/pid.wsgi").display().to_string();
    let port = apache.port.to_string();
    let environ = [
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_FILENAME", script.as_str()),
        ("SCRIPT_NAME", ""),
        ("PATH_INFO", "/"),
        ("QUERY_STRING", ""),
        ("SERVER_NAME", "127.0.0.1"),
        ("SERVER_PORT", port.as_str()),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", "40000"),
        ("REMOTE_USER", "admin"),
    ]
    .iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();
    let mut out = Vec::new();
    protocol::encode(&Frame::Request { version, environ }, &mut out).unwrap();
    out
}

/// Frames of a daemon's reply.
fn frames_of(reply: &[u8]) -> Vec<Frame> {
    let mut d = Decoder::new(Limits::default());
    d.feed(reply);
    let mut frames = Vec::new();
    while let Some(f) = d.next_frame().expect("a well-formed reply") {
        frames.push(f);
    }
    assert_eq!(d.buffered(), 0, "a reply cut short");
    frames
}

/// The status and body a reply carries.
fn answer(frames: &[Frame]) -> (u16, String) {
    let mut status = 0;
    let mut body = Vec::new();
    for f in frames {
        match f {
            Frame::ResponseHead { status: s, .. } => status = *s,
            Frame::ResponseBody(b) => body.extend_from_slice(b),
            _ => {}
        }
    }
    assert!(
        matches!(frames.last(), Some(Frame::ResponseEnd)),
        "{frames:?}"
    );
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// What the CLIENT script reported.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// connect() failed with this errno.
    Refused(i32),
    /// The daemon closed the connection after this long, having sent these bytes.
    Closed(Duration, Vec<u8>),
    /// Still open when the client gave up.
    Open(Vec<u8>),
}

/// Runs the CLIENT script as `user`:`group` with no supplementary groups.
fn client_as(apache: &Apache, user: &str, group: &str, socket: &Path, data: &[u8]) -> Outcome {
    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            user,
            "--regid",
            group,
            "--clear-groups",
            "/usr/bin/python3",
        ])
        .arg(apache.dir.join("client.py"))
        .arg(socket)
        .arg(hex)
        .arg("20")
        .output()
        .expect("setpriv");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "client as {user}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words: Vec<&str> = text.split_whitespace().collect();
    let bytes = |hex: Option<&&str>| -> Vec<u8> {
        let hex = hex.copied().unwrap_or("");
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    };
    match words.first().copied() {
        Some("refused") => Outcome::Refused(words[1].parse().unwrap()),
        Some("closed") => Outcome::Closed(
            Duration::from_secs_f64(words[1].parse().unwrap()),
            bytes(words.get(2)),
        ),
        Some("open") => Outcome::Open(bytes(words.get(2))),
        _ => panic!("client as {user} printed {text:?}"),
    }
}

fn uid_of_user(name: &str) -> u32 {
    nix::unistd::User::from_name(name)
        .unwrap()
        .unwrap()
        .uid
        .as_raw()
}

/// Lines of the error log containing `needle`.
fn log_lines(apache: &Apache, needle: &str) -> Vec<String> {
    apache
        .error_log()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

#[test]
fn another_user_cannot_connect_to_the_socket() {
    let sockdir = temp_dir_with_mode("mwrs-sock-", 0o755);
    let apache = server(sockdir.path(), "");
    let socket = socket_in(sockdir.path());
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o700);
    assert_eq!(meta.uid(), uid_of_user("www-data"));
    // The directory lets anyone reach the socket; its mode stops them.
    let out = client_as(&apache, "nobody", "nogroup", &socket, b"");
    assert_eq!(out, Outcome::Refused(libc::EACCES));
    assert_eq!(served_pid(&apache), served_pid(&apache));
    assert!(log_lines(&apache, "refused a connection").is_empty());
}

#[test]
fn a_stranger_past_the_file_mode_is_dropped_unread() {
    let sockdir = temp_dir_with_mode("mwrs-sock-", 0o755);
    let apache = server(sockdir.path(), "");
    let socket = socket_in(sockdir.path());
    let daemon = served_pid(&apache);
    let request = forged_request(&apache, PROTOCOL_VERSION);

    // The forged request is one the daemon serves to a peer it trusts (root).
    let mut root = UnixStream::connect(&socket).unwrap();
    root.write_all(&request).unwrap();
    let mut reply = Vec::new();
    root.read_to_end(&mut reply).unwrap();
    assert_eq!(
        answer(&frames_of(&reply)),
        (200, daemon.to_string()),
        "{}",
        apache.error_log()
    );

    // The socket's mode opened by mistake: the kernel lets `nobody` in,
    // the daemon closes at once (its only thread is not held) and answers
    // nothing.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = client_as(&apache, "nobody", "nogroup", &socket, &request);
    match out {
        Outcome::Closed(after, reply) => {
            assert!(reply.is_empty(), "{:?}", frames_of(&reply));
            assert!(after < Duration::from_secs(10), "closed after {after:?}");
        }
        other => panic!("{other:?}\n{}", apache.error_log()),
    }
    let nobody = uid_of_user("nobody");
    assert!(
        apache.wait_for_log("refused a connection", Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
    let lines = log_lines(&apache, "refused a connection");
    assert_eq!(lines.len(), 1, "{lines:?}");
    for needle in [
        format!("uid {nobody}"),
        "daemon process 'g'".to_string(),
        format!("(pid {daemon})"),
    ] {
        assert!(lines[0].contains(&needle), "{needle:?} not in {}", lines[0]);
    }
    // The daemon goes on serving, the same process.
    assert_eq!(served_pid(&apache), daemon);
}

#[test]
fn socket_user_may_connect() {
    // socket-user= is for Apache children that run as another user (e.g.
    // mpm-itk): that user passes the file mode and the daemon's check.
    let sockdir = temp_dir_with_mode("mwrs-sock-", 0o755);
    let apache = server(sockdir.path(), "socket-user=daemon");
    let socket = socket_in(sockdir.path());
    assert_eq!(
        std::fs::metadata(&socket).unwrap().uid(),
        uid_of_user("daemon")
    );
    let request = forged_request(&apache, PROTOCOL_VERSION);
    match client_as(&apache, "daemon", "daemon", &socket, &request) {
        Outcome::Closed(_, reply) => {
            let (status, body) = answer(&frames_of(&reply));
            assert_eq!(status, 200, "{}", apache.error_log());
            assert!(body.parse::<u32>().is_ok(), "{body}");
        }
        other => panic!("{other:?}\n{}", apache.error_log()),
    }
    assert!(log_lines(&apache, "refused a connection").is_empty());
}

/// Peak virtual size of a process, in KiB.
fn vm_peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmPeak:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmPeak")
}

/// Sends `bytes` as root, then (unless `hold`) ends its side; returns how
/// long the daemon took to close and what it sent.
fn send_raw(socket: &Path, bytes: &[u8], hold: bool) -> (Duration, Vec<u8>) {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let start = Instant::now();
    // The daemon may close before reading everything: a failed write is
    // part of the outcome, not an error of the test.
    let _ = s.write_all(bytes);
    if !hold {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("daemon kept the connection open: {e}"),
        }
    }
    (start.elapsed(), reply)
}

/// What the daemon may answer bytes it refuses: nothing, or one
/// `Failure { ProtocolError }` (docs/protocol.md: a Request of another
/// version gets it).
fn refusal(reply: &[u8]) -> bool {
    reply.is_empty()
        || matches!(
            frames_of(reply)[..],
            [Frame::Failure {
                kind: FailureKind::ProtocolError,
                ..
            }]
        )
}

#[test]
fn bad_frames_are_dropped_without_harming_other_requests() {
    let sockdir = temp_dir_with_mode("mwrs-sock-", 0o755);
    let apache = server(sockdir.path(), "socket-timeout=3");
    let socket = socket_in(sockdir.path());
    let daemon = served_pid(&apache);
    let request = forged_request(&apache, PROTOCOL_VERSION);
    let four_gib = |ty: u8| {
        let mut v = vec![ty, 0xff, 0xff, 0xff, 0xff];
        v.extend_from_slice(&[0x41; 1000]);
        v
    };
    let mut noise = vec![0xeeu8];
    let mut x: u32 = 12345;
    noise.extend((0..65536).map(|_| {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (x >> 16) as u8
    }));
    let mut huge_count = vec![0x01, 0, 0, 0, 10];
    huge_count.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    // 5000 pairs (within max_pairs) announced, room for none.
    huge_count.extend_from_slice(&[0, 0, 0x13, 0x88, 0, 0, 0, 0]);
    let mut response_end = Vec::new();
    protocol::encode(&Frame::ResponseEnd, &mut response_end).unwrap();
    // (what, bytes, what the daemon's log line says)
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        (
            "HTTP on the daemon socket",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Some("unknown frame type 0x47".into()),
        ),
        (
            "64 KiB of noise",
            noise,
            Some("unknown frame type 0xee".into()),
        ),
        (
            "a Request claiming 4 GiB",
            four_gib(0x01),
            Some("Request frame too large: 4294967295 bytes, limit 1048576".into()),
        ),
        (
            "a Body claiming 4 GiB",
            four_gib(0x02),
            Some("Body frame too large: 4294967295 bytes".into()),
        ),
        (
            "a huge pair count in a small Request",
            huge_count,
            Some("Request payload truncated".into()),
        ),
        ("a frame header cut short", request[..3].to_vec(), None),
        (
            "a Request cut short",
            request[..request.len() / 2].to_vec(),
            None,
        ),
        (
            "a Request of protocol version 3",
            forged_request(&apache, PROTOCOL_VERSION + 1),
            Some(format!(
                "protocol version mismatch: this side speaks {PROTOCOL_VERSION}, the peer {}",
                PROTOCOL_VERSION + 1
            )),
        ),
        (
            "a Request of protocol version 1",
            forged_request(&apache, PROTOCOL_VERSION - 1),
            Some(format!(
                "protocol version mismatch: this side speaks {PROTOCOL_VERSION}, the peer {}",
                PROTOCOL_VERSION - 1
            )),
        ),
        (
            "a daemon's frame sent to the daemon",
            response_end,
            Some("worker sent ResponseEnd instead of a request".into()),
        ),
    ];

    let peak_before = vm_peak_kib(daemon);
    let mut missing = Vec::new();
    // Normal requests through Apache go on all the while, to the same
    // single-threaded daemon.
    let results = std::thread::scope(|scope| {
        let load: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    (0..15)
                        .map(|_| {
                            let r = apache.get("/");
                            (r.status, r.text())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for (what, bytes, line) in cases.iter().cycle().take(3 * cases.len()) {
            let (took, reply) = send_raw(&socket, bytes, false);
            assert!(refusal(&reply), "{what}: the daemon answered {reply:?}");
            if what.contains("protocol version") {
                assert!(!reply.is_empty(), "{what}: no Failure answer");
            }
            assert!(
                took < Duration::from_secs(10),
                "{what}: closed after {took:?}"
            );
            if let Some(line) = line
                && !apache.wait_for_log(line, Duration::from_secs(5))
            {
                missing.push(format!("{what}: no log line with {line:?}"));
            }
        }
        load.into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(results.len(), 45);
    for (status, text) in &results {
        assert_eq!(*status, 200, "{text}\n{}", apache.error_log());
        assert_eq!(text, &daemon.to_string(), "served by another process");
    }
    // The only thread is free again, in the same process.
    assert_eq!(served_pid(&apache), daemon);

    // A sender that stops mid-frame and waits holds the thread until
    // socket-timeout=3 (requests queued behind it wait as long, which is
    // why it is not sent under load: their own socket-timeout is as long).
    let (took, reply) = send_raw(&socket, &request[..request.len() / 2], true);
    assert!(reply.is_empty(), "the daemon answered {reply:?}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "closed after {took:?}"
    );
    assert!(
        apache.wait_for_log("daemon socket I/O error", Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
    assert_eq!(served_pid(&apache), daemon);
    // Claimed sizes were never allocated (4 GiB would show in the peak).
    let grew_mib = vm_peak_kib(daemon).saturating_sub(peak_before) / 1024;
    assert!(grew_mib < 512, "VmPeak grew by {grew_mib} MiB");
    assert!(missing.is_empty(), "{missing:#?}\n{}", apache.error_log());
    // Each refusal is one line naming the group and the process: three
    // rounds of the logged cases, and the sender that waited.
    let lines: Vec<String> = log_lines(&apache, "instead of a request")
        .into_iter()
        .chain(log_lines(&apache, "bad request from worker"))
        .chain(log_lines(&apache, "restart Apache fully"))
        .collect();
    let logged = cases.iter().filter(|(_, _, line)| line.is_some()).count();
    assert_eq!(lines.len(), 3 * logged + 1, "{lines:#?}");
    for line in &lines {
        assert!(
            line.contains(&format!("daemon process 'g' (pid {daemon})")),
            "{line}"
        );
    }
}

/// Without socket-timeout a daemon reads with Apache's Timeout (as
/// mod_wsgi): a sender that stops mid-frame and waits loses the thread
/// after it, and the next request is served.
#[test]
fn a_half_sent_frame_is_dropped_after_apaches_timeout() {
    let sockdir = temp_dir_with_mode("mwrs-sock-", 0o755);
    let apache = server(sockdir.path(), "\nTimeout 3");
    let daemon = served_pid(&apache);
    let socket = socket_in(sockdir.path());
    let request = forged_request(&apache, PROTOCOL_VERSION);
    let (took, reply) = send_raw(&socket, &request[..request.len() / 2], true);
    assert!(reply.is_empty(), "the daemon answered {reply:?}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "closed after {took:?}"
    );
    assert_eq!(served_pid(&apache), daemon);
}
