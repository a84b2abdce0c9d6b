//! Upgraded connections (101 Switching Protocols) in daemon mode: the
//! daemon's application answers 101 and gets the client connection as a
//! byte stream, relayed both ways by the Apache child (what WebSockets to
//! an ASGI application ride on). The application here speaks a toy line
//! protocol through the hook the ASGI adapter uses, so that the relay is
//! checked on its own.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const ECHO_APP: &str = include_str!("apps/upgrade/echo.wsgi");

fn server(daemon: bool, extra: &str) -> Apache {
    server_under(Mpm::Event, daemon, extra)
}

fn server_under(mpm: Mpm, daemon: bool, extra: &str) -> Apache {
    let group = if daemon {
        format!("WSGIDaemonProcess up processes=1 threads=2 {extra}\nWSGIProcessGroup up\n")
    } else {
        String::new()
    };
    Apache::builder()
        .mpm(mpm)
        .file("app/echo.wsgi", ECHO_APP)
        .directives(&format!(
            "{group}WSGIScriptAlias /echo {{dir}}/app/echo.wsgi\n"
        ))
        .start()
}

/// Sends the upgrade request; the connection and its reader, past the 101
/// head (returned).
fn upgrade(apache: &Apache, version: &str) -> (TcpStream, BufReader<TcpStream>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /echo HTTP/{version}\r\nHost: localhost\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    (s, reader, head)
}

fn line(reader: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    reader.read_line(&mut l).unwrap();
    l
}

#[test]
fn a_daemon_application_switches_protocols_and_talks_both_ways() {
    let apache = server(true, "");
    let (mut s, mut reader, head) = upgrade(&apache, "1.1");
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}\n{}",
        apache.error_log()
    );
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("\r\nupgrade: echo\r\n"), "{head}");
    assert!(lower.contains("\r\nconnection: upgrade\r\n"), "{head}");
    assert!(lower.contains("\r\nx-echo: 1\r\n"), "{head}");
    // No HTTP framing inside the tunnel: lines come back as they are.
    assert!(!lower.contains("transfer-encoding"), "{head}");
    for word in ["hello", "wörld", "third"] {
        writeln!(s, "{word}").unwrap();
        assert_eq!(
            line(&mut reader),
            format!("{}\n", word.to_ascii_uppercase())
        );
    }
    // The application speaks first too: several lines unasked.
    writeln!(s, "shout").unwrap();
    assert_eq!(line(&mut reader), "ONE\n");
    assert_eq!(line(&mut reader), "TWO\n");
    assert_eq!(line(&mut reader), "THREE\n");
    // A large message crosses whole.
    let big = "x".repeat(300_000);
    writeln!(s, "{big}").unwrap();
    assert_eq!(line(&mut reader), format!("{}\n", big.to_uppercase()));
    writeln!(s, "bye").unwrap();
    assert_eq!(line(&mut reader), "BYE\n");
    // The application closed: so does Apache, with nothing after.
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    assert!(
        apache.wait_for_log("closed after", Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
    let log = apache.error_log();
    let closed = log.lines().find(|l| l.contains("closed after")).unwrap();
    assert!(
        closed.contains("daemon process group 'up' (pid ")
            && closed.contains("the application closed it"),
        "{closed}"
    );
    // The access log has the 101.
    assert!(
        apache.access_log().contains("\"GET /echo HTTP/1.1\" 101"),
        "{}",
        apache.access_log()
    );
    // And the daemon serves plain requests as before.
    assert!(apache.get("/echo").text().starts_with("pid="));
}

#[test]
fn tunnels_under_the_prefork_and_worker_mpms() {
    for mpm in [Mpm::Prefork, Mpm::Worker] {
        let apache = server_under(mpm, true, "");
        let (mut s, mut reader, head) = upgrade(&apache, "1.1");
        assert!(head.starts_with("HTTP/1.1 101 "), "{mpm:?}: {head}");
        writeln!(s, "shout").unwrap();
        assert_eq!(line(&mut reader), "ONE\n", "{mpm:?}");
        assert_eq!(line(&mut reader), "TWO\n", "{mpm:?}");
        assert_eq!(line(&mut reader), "THREE\n", "{mpm:?}");
        writeln!(s, "bye").unwrap();
        assert_eq!(line(&mut reader), "BYE\n", "{mpm:?}");
    }
}

#[test]
fn a_client_closing_the_tunnel_ends_the_application_session() {
    let apache = server(true, "");
    let (mut s, mut reader, head) = upgrade(&apache, "1.1");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    writeln!(s, "ping").unwrap();
    assert_eq!(line(&mut reader), "PING\n");
    drop(reader);
    drop(s);
    assert!(
        apache.wait_for_log("the client closed it", Duration::from_secs(10)),
        "{}",
        apache.error_log()
    );
    // The request thread is free again: both threads serve.
    for _ in 0..4 {
        assert!(apache.get("/echo").text().starts_with("pid="));
    }
}

#[test]
fn embedded_mode_refuses_to_switch_protocols() {
    let apache = server(false, "");
    let (_s, mut reader, head) = upgrade(&apache, "1.1");
    assert!(head.starts_with("HTTP/1.1 501 "), "{head}");
    let mut body = String::new();
    let _ = reader.read_to_string(&mut body);
    assert!(body.contains("needs daemon mode"), "{body}");
}

#[test]
fn a_tunnel_outlives_request_timeout() {
    // A WebSocket is a session, not a slow request: request-timeout does
    // not end it (nor restart the process under it).
    let apache = server(true, "request-timeout=1");
    let (mut s, mut reader, head) = upgrade(&apache, "1.1");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    for round in 0..4 {
        writeln!(s, "round{round}").unwrap();
        assert_eq!(
            line(&mut reader),
            format!("ROUND{round}\n"),
            "{}",
            apache.error_log()
        );
        std::thread::sleep(Duration::from_millis(900));
    }
    writeln!(s, "bye").unwrap();
    assert_eq!(line(&mut reader), "BYE\n");
    assert!(
        !apache.error_log().contains("request-timeout"),
        "{}",
        apache.error_log()
    );
}

#[test]
fn an_http_1_0_client_gets_no_tunnel() {
    // HTTP/1.0 has no Upgrade: Apache cannot send the 101, and the worker
    // says so rather than relay into a connection that cannot carry it.
    let apache = server(true, "");
    let (_s, _reader, head) = upgrade(&apache, "1.0");
    assert!(head.starts_with("HTTP/1.1 502 "), "{head}");
    assert!(
        apache.wait_for_log(
            "which this client connection cannot",
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
}

/// The client of the TLS test: Debian's Python with its ssl module (the
/// tests have no TLS of their own). Prints what came back, one item a line.
const TLS_CLIENT: &str = r#"
import socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20),
                    server_hostname="localhost")
s.sendall(b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
f = s.makefile("rb")
head = b""
while not head.endswith(b"\r\n\r\n"):
    head += f.readline()
print(head.split(b"\r\n")[0].decode())
big = b"y" * 300000
# Several lines in one write: they arrive together, decrypted at once.
s.sendall(b"one\ntwo\n" + big + b"\nshout\n")
for _ in range(6):
    line = f.readline().rstrip(b"\n")
    print(line.decode() if len(line) < 100 else "big %d %s" % (len(line), line == big.upper()))
s.sendall(b"bye\n")
print(f.readline().rstrip(b"\n").decode())
print("end" if f.read() == b"" else "more")
"#;

#[test]
fn a_tunnel_through_mod_ssl() {
    let dir = temp_dir_with_mode("mwsgi-tls-", 0o755);
    let (cert, key) = common::conf_examples::make_cert(dir.path());
    let tls_port = pick_port();
    let apache = Apache::builder()
        .file("app/echo.wsgi", ECHO_APP)
        .directives(&format!(
            "LoadModule socache_shmcb_module {m}/mod_socache_shmcb.so\n\
             LoadModule ssl_module {m}/mod_ssl.so\n\
             Listen 127.0.0.1:{tls_port}\n\
             WSGIDaemonProcess up processes=1 threads=2\nWSGIProcessGroup up\n\
             WSGIScriptAlias /echo {{dir}}/app/echo.wsgi\n\
             <VirtualHost 127.0.0.1:{tls_port}>\n\
                 SSLEngine on\n\
                 SSLCertificateFile {cert}\n\
                 SSLCertificateKeyFile {key}\n\
                 WSGIScriptAlias /echo {{dir}}/app/echo.wsgi process-group=up\n\
             </VirtualHost>\n",
            m = MODULES_DIR,
            cert = cert.display(),
            key = key.display(),
        ))
        .start();
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", TLS_CLIENT, &tls_port.to_string()])
        .arg(&cert)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "HTTP/1.1 101 Switching Protocols\nONE\nTWO\nbig 300000 True\nONE\nTWO\nTHREE\nBYE\nend\n",
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        apache.error_log()
    );
}
