//! The WSGI backend of a daemon process: the worker on the other end of a
//! Unix socket, spoken to in the protocol of `crate::protocol`.

use crate::apache::log::{self, Level};
use crate::protocol::{self, Frame, Limits, ProtocolError};
use crate::wsgi::{Backend, BackendError};
use parking_lot::Mutex;
use std::io::Write;
use std::os::unix::net::UnixStream;

pub struct SocketBackend {
    stream: Mutex<UnixStream>,
    limits: Limits,
    /// Prefix of our log lines: the group and this process.
    who: String,
}

fn gone(e: impl std::fmt::Display) -> BackendError {
    BackendError::ClientGone(e.to_string())
}

impl SocketBackend {
    pub fn new(stream: UnixStream, limits: Limits, group: &str) -> SocketBackend {
        SocketBackend {
            stream: Mutex::new(stream),
            limits,
            who: format!("daemon process '{group}' (pid {})", std::process::id()),
        }
    }

    /// Sends one frame that ends or reports on the exchange.
    pub fn send(&self, frame: &Frame) -> std::io::Result<()> {
        let mut s = self.stream.lock();
        protocol::write_frame(&mut *s, frame)?;
        s.flush()
    }
}

impl Backend for SocketBackend {
    fn read_body(&self, buf: &mut [u8]) -> Result<usize, BackendError> {
        let max = buf.len().min(self.limits.max_chunk).min(u32::MAX as usize);
        if max == 0 {
            return Ok(0);
        }
        let mut s = self.stream.lock();
        protocol::write_frame(&mut *s, &Frame::ReadBody { max: max as u32 }).map_err(gone)?;
        match protocol::read_frame(&mut *s, &self.limits) {
            Ok(Frame::Body(data)) if data.len() <= max => {
                buf[..data.len()].copy_from_slice(&data);
                Ok(data.len())
            }
            Ok(Frame::BodyEnd) => Ok(0),
            Ok(Frame::BodyError(why)) => Err(BackendError::ClientGone(why)),
            Ok(other) => Err(gone(format!(
                "worker sent {} while the body was expected",
                other.name()
            ))),
            Err(ProtocolError::Closed | ProtocolError::UnexpectedEof) => {
                Err(gone("worker closed the connection"))
            }
            Err(e) => Err(gone(e)),
        }
    }

    fn send_head(
        &self,
        status: u16,
        status_line: &str,
        headers: &[(String, String)],
    ) -> Result<(), BackendError> {
        let reason = status_line.get(4..).unwrap_or("").as_bytes().to_vec();
        let headers = headers
            .iter()
            .map(|(k, v)| (latin1(k), latin1(v)))
            .collect();
        let frame = Frame::ResponseHead {
            status,
            reason,
            headers,
        };
        let mut s = self.stream.lock();
        protocol::write_frame(&mut *s, &frame).map_err(gone)?;
        s.flush().map_err(gone)
    }

    fn write_body(&self, data: &[u8]) -> Result<(), BackendError> {
        let mut s = self.stream.lock();
        for chunk in data.chunks(self.limits.max_chunk.max(1)) {
            protocol::write_response_body(&mut *s, chunk).map_err(gone)?;
        }
        Ok(())
    }

    fn log(&self, level: Level, text: &str) {
        log::server(None, level, &format!("{}: {text}", self.who));
    }
}

/// Header text as bytes: start_response already checked it is latin-1.
fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}
