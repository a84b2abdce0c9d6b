//! A minimal WebSocket client (RFC 6455) for the tests: the handshake,
//! masked frames out, frames in. Written here rather than taken from a
//! crate so that every byte on the wire is the test's own choice.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The key of RFC 6455's example and the accept value it gives (4.2.2).
pub const EXAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const EXAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

pub struct WsClient {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

/// Sends the handshake for `path` (with `extra` header lines) and reads the
/// response head; the client when the head is a 101.
pub fn handshake(port: u16, path: &str, extra: &str) -> (String, Option<WsClient>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {EXAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let client = head
        .starts_with("HTTP/1.1 101 ")
        .then_some(WsClient { stream, reader });
    (head, client)
}

impl WsClient {
    /// Sends one frame, masked as a client must.
    pub fn send_frame(&mut self, opcode: u8, payload: &[u8], fin: bool) {
        let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
        let n = payload.len();
        if n < 126 {
            frame.push(0x80 | n as u8);
        } else if n < 65536 {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).unwrap();
    }

    pub fn send_text(&mut self, text: &str) {
        self.send_frame(TEXT, text.as_bytes(), true);
    }

    /// Writes bytes as they are (for malformed frames).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next frame: (fin, opcode, payload); None at the end of the
    /// connection. Server frames must not be masked (checked).
    pub fn recv(&mut self) -> Option<(bool, u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.reader.read_exact(&mut head).ok()?;
        assert_eq!(head[1] & 0x80, 0, "a server frame was masked");
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            self.reader.read_exact(&mut b).ok()?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            self.reader.read_exact(&mut b).ok()?;
            len = u64::from_be_bytes(b);
        }
        let mut payload = vec![0u8; len as usize];
        self.reader.read_exact(&mut payload).ok()?;
        Some((head[0] & 0x80 != 0, head[0] & 0x0f, payload))
    }

    /// The next text message's text (panics on anything else).
    pub fn recv_text(&mut self) -> String {
        match self.recv() {
            Some((true, TEXT, payload)) => String::from_utf8(payload).unwrap(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// A close frame's code and reason.
    pub fn recv_close(&mut self) -> (u16, String) {
        match self.recv() {
            Some((true, CLOSE, payload)) if payload.len() >= 2 => (
                u16::from_be_bytes([payload[0], payload[1]]),
                String::from_utf8_lossy(&payload[2..]).into_owned(),
            ),
            other => panic!("expected a close frame with a code, got {other:?}"),
        }
    }

    /// Whether the server closed the connection (nothing more comes).
    pub fn at_end(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }

    /// Drops the connection without a close frame.
    pub fn vanish(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
