//! The WSGI backend of a daemon process: the worker on the other end of a
//! Unix socket, spoken to in the protocol of `crate::protocol`.

use super::loop_exchange::{LoopExchange, LoopSetup};
use crate::apache::log::{self, Level};
use crate::protocol::{self, Frame, Limits, ProtocolError};
use crate::wsgi::RequestError;
use crate::wsgi::events::LoopRecord;
use crate::wsgi::metrics::RequestIo;
use crate::wsgi::start_response::latin1_bytes;
use crate::wsgi::{Backend, BackendError};
use parking_lot::Mutex;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

pub struct SocketBackend {
    stream: Mutex<Conn>,
    limits: Limits,
    /// The group this process serves (named in our log lines).
    group: &'static str,
    /// `[remote ADDR:PORT]` of the request being served: what C mod_wsgi's
    /// daemon puts in front of the application's log lines.
    client: std::sync::OnceLock<String>,
    pid: u32,
    /// Set when the request is over: a `wsgi.input` the application kept
    /// says so rather than touch the closed connection.
    finished: std::sync::atomic::AtomicBool,
    /// Set once the connection became a tunnel (`switch_protocols`): no
    /// frame may be written or read on it any more.
    tunneled: std::sync::atomic::AtomicBool,
    /// Set once the exchange went to the event loop (`detach_to_loop`):
    /// from then on only the loop's `LoopExchange` speaks on it.
    detached: std::sync::atomic::AtomicBool,
    /// What a detached exchange needs from the process (set before the
    /// application runs; taken when it detaches).
    loop_setup: Mutex<Option<LoopSetup>>,
    /// This backend's own Arc, for the `LoopExchange` it hands out.
    me: std::sync::Weak<SocketBackend>,
    /// The end of a detached exchange's request, once both halves are in.
    loop_end: Mutex<LoopEnd>,
}

/// A loop-held request ends when the loop has ended its exchange and its
/// request thread has handed over its record, in either order.
enum LoopEnd {
    Open,
    HandedOver(LoopRecord),
    Ended { status: u16, io: RequestIo },
}

/// A connection from a worker and the frames not yet written: the
/// response head waits here for the first body block or the end, so that a
/// small response costs one write, not one per frame. Reads go through a
/// small buffer, so a request frame costs one read, not one for its header
/// and one for its payload (the worker sends nothing unasked after the
/// request, so the buffer never holds bytes past the frame being read).
/// A kept connection keeps both buffers for its next request: allocating
/// 8 KiB per request made glibc consolidate its free lists each time.
pub struct Conn {
    reader: BufReader<UnixStream>,
    pending: Vec<u8>,
}

/// Largest `pending` buffer a kept connection holds on to (a response
/// head and a small body); a larger one, grown by a large first body
/// block, is let go rather than kept by every idle connection.
const KEPT_PENDING: usize = 16 * 1024;

impl Conn {
    pub fn new(stream: UnixStream) -> Conn {
        Conn {
            reader: BufReader::with_capacity(8 * 1024, stream),
            pending: Vec::new(),
        }
    }

    /// The socket, for its options and its descriptor.
    pub fn socket(&self) -> &UnixStream {
        self.reader.get_ref()
    }

    fn stream(&mut self) -> &mut UnixStream {
        self.reader.get_mut()
    }

    /// Writes as much of the pending bytes as the socket takes at once;
    /// true when none is left.
    fn send_pending_without_waiting(&mut self) -> std::io::Result<bool> {
        use nix::sys::socket::{MsgFlags, send};
        use std::os::fd::AsRawFd;
        let fd = self.stream().as_raw_fd();
        let mut sent = 0;
        while sent < self.pending.len() {
            match send(
                fd,
                &self.pending[sent..],
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => sent += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(e) => return Err(e.into()),
            }
        }
        self.pending.drain(..sent);
        Ok(self.pending.is_empty())
    }

    /// Writes the pending bytes and `tail`, in one system call when possible.
    fn write_with(&mut self, tail: &[u8]) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return self.stream().write_all(tail);
        }
        if tail.len() <= COALESCE {
            self.pending.extend_from_slice(tail);
            let out = std::mem::take(&mut self.pending);
            let r = self.stream().write_all(&out);
            self.pending = out;
            self.pending.clear();
            return r;
        }
        let out = std::mem::take(&mut self.pending);
        let r = self
            .stream()
            .write_all(&out)
            .and_then(|_| self.stream().write_all(tail));
        self.pending = out;
        self.pending.clear();
        r
    }
}

/// Largest body block copied behind a pending head rather than written apart.
const COALESCE: usize = 64 * 1024;
/// Largest body block `send_now` takes (it copies the block): a page, a
/// JSON document; larger ones go the usual way, without the GIL.
const NOW_LIMIT: usize = 16 * 1024;

/// Appends the `ResponseHead` frame to `pending`, where it waits for the
/// first block of the body, or the end.
fn hold_head(
    pending: &mut Vec<u8>,
    status: u16,
    status_line: &str,
    headers: &[(String, String)],
) -> Result<(), BackendError> {
    let reason = latin1_bytes(status_line.get(4..).unwrap_or("")).into_owned();
    let headers = headers
        .iter()
        .map(|(k, v)| (latin1_bytes(k).into_owned(), latin1_bytes(v).into_owned()))
        .collect();
    let frame = Frame::ResponseHead {
        status,
        reason,
        headers,
    };
    protocol::encode(&frame, pending).map_err(gone)
}

fn gone(e: impl std::fmt::Display) -> BackendError {
    BackendError::ClientGone(e.to_string())
}

impl SocketBackend {
    pub fn new(conn: Conn, limits: Limits, group: &'static str, pid: u32) -> Arc<SocketBackend> {
        Arc::new_cyclic(|me| SocketBackend {
            stream: Mutex::new(conn),
            limits,
            group,
            client: std::sync::OnceLock::new(),
            pid,
            finished: std::sync::atomic::AtomicBool::new(false),
            tunneled: std::sync::atomic::AtomicBool::new(false),
            detached: std::sync::atomic::AtomicBool::new(false),
            loop_setup: Mutex::new(None),
            me: me.clone(),
            loop_end: Mutex::new(LoopEnd::Open),
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Prefix of our log lines: the group and this process. Made when a
    /// line is written, not per request.
    fn who(&self) -> String {
        format!("daemon process '{}' (pid {})", self.group, self.pid)
    }

    /// Where this process logs a failed request's details, as the
    /// message to the worker says it.
    pub fn where_logged(&self) -> String {
        format!(
            "in the log of daemon process '{}' pid {}",
            self.group, self.pid
        )
    }

    /// Lets the application hand this exchange to the event loop (see
    /// `loop_exchange`).
    pub fn prepare_loop(&self, setup: LoopSetup) {
        *self.loop_setup.lock() = Some(setup);
    }

    /// Whether the exchange went to the event loop.
    pub fn is_detached(&self) -> bool {
        self.detached.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Takes the client's address from the request's environ, for the
    /// application's log lines.
    pub fn note_client(&self, environ: &protocol::Environ) {
        let get = |key: &[u8]| environ.get(key).map(String::from_utf8_lossy);
        if let (Some(addr), Some(port)) = (get(b"REMOTE_ADDR"), get(b"REMOTE_PORT")) {
            let _ = self.client.set(format!("[remote {addr}:{port}]"));
        }
    }

    /// Puts `Accepted` in front of whatever is written next, instead of
    /// writing it now.
    pub fn hold_accepted(&self) {
        let mut c = self.stream.lock();
        if c.pending.is_empty() {
            let _ = protocol::encode(&Frame::Accepted { pid: self.pid }, &mut c.pending);
        }
    }

    /// Writes what is held back (`Accepted`, perhaps a response head), unless
    /// the request thread is writing right now (it then writes it anyway).
    /// Used by the monitor thread for requests that run longer than a tick.
    pub fn send_held_accepted(&self) {
        let Some(mut c) = self.stream.try_lock() else {
            return;
        };
        // Without waiting: the monitor must never block on a worker that
        // does not read (the queue may hold body bytes `send_now` could
        // not send); what the socket does not take stays queued.
        if !c.pending.is_empty() {
            let _ = c.send_pending_without_waiting();
        }
    }

    /// Sends `frame` without blocking on the socket (the process is about
    /// to exit), unless the connection stays held until `until`: briefly by
    /// the monitor (`send_held_accepted`), or by a request thread blocked in
    /// a write to a worker that does not read.
    pub fn send_last_word(&self, frame: &Frame, until: std::time::Instant) {
        let Some(mut c) = self.stream.try_lock_until(until) else {
            return;
        };
        // Checked under the lock, which switch_protocols holds until the
        // flag is set.
        if self.is_tunnel() {
            return;
        }
        let mut bytes = Vec::new();
        if protocol::encode(frame, &mut bytes).is_ok() {
            let _ = c.stream().set_nonblocking(true);
            let _ = c.write_with(&bytes);
        }
    }

    /// The connection, for the worker's next request: only when nothing of
    /// the exchange is left unread or unwritten.
    pub fn into_idle_conn(self) -> Option<Conn> {
        let mut conn = self.stream.into_inner();
        if !conn.reader.buffer().is_empty() || !conn.pending.is_empty() {
            return None;
        }
        if conn.pending.capacity() > KEPT_PENDING {
            conn.pending = Vec::new();
        }
        Some(conn)
    }

    /// Ends the connection for both sides, whoever still holds this.
    pub fn shut_down(&self) {
        let _ = self
            .stream
            .lock()
            .stream()
            .shutdown(std::net::Shutdown::Both);
    }

    /// The request is over.
    pub fn finish(&self) {
        self.finished
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Reads the next frame the worker sent (a request, between requests).
    pub fn read_frame(&self) -> Result<Frame, ProtocolError> {
        protocol::read_frame(&mut self.stream.lock().reader, &self.limits)
    }

    /// Whether the connection became a tunnel (`switch_protocols`).
    pub fn is_tunnel(&self) -> bool {
        self.tunneled.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Err(Finished) once the connection is a tunnel: what the application
    /// still does through WSGI must not reach the bytes of the upgraded
    /// protocol.
    fn framed(&self) -> Result<(), BackendError> {
        if self.is_tunnel() || self.is_detached() {
            Err(BackendError::Finished)
        } else {
            Ok(())
        }
    }

    /// Sends one frame that ends or reports on the exchange (not after a
    /// tunnel: the exchange then has no end frame).
    pub fn send(&self, frame: &Frame) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        protocol::encode(frame, &mut bytes).map_err(std::io::Error::other)?;
        let mut c = self.stream.lock();
        self.framed()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        c.write_with(&bytes)
    }
}

/// The event loop's side of a detached exchange (`loop_exchange`): queues
/// and sends without ever waiting on the socket.
impl SocketBackend {
    pub(super) fn raw_fd(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(self.stream.lock().socket())
    }

    pub(super) fn loop_queue(&self, frame: &Frame) -> Result<(), BackendError> {
        protocol::encode(frame, &mut self.stream.lock().pending).map_err(gone)
    }

    pub(super) fn loop_queue_head(
        &self,
        status: u16,
        reason: &str,
        headers: &[(String, String)],
    ) -> Result<(), BackendError> {
        let line = format!("{status} {reason}");
        hold_head(&mut self.stream.lock().pending, status, &line, headers)
    }

    pub(super) fn loop_queue_body(&self, data: &[u8]) -> Result<(), BackendError> {
        protocol::append_response_body(data, &mut self.stream.lock().pending).map_err(gone)
    }

    /// The loop ended the exchange: its request ends now if the request
    /// thread handed its record over, else when it does.
    pub(super) fn loop_ended(&self, py: pyo3::Python<'_>, status: u16, io: RequestIo) {
        self.loop_end_half(py, LoopEnd::Ended { status, io });
    }

    /// One half of a loop-held request's end is in: the request ends once
    /// the other is (its record finished, outside the lock: the events
    /// run Python).
    fn loop_end_half(&self, py: pyo3::Python<'_>, half: LoopEnd) {
        let mut slot = self.loop_end.lock();
        match (std::mem::replace(&mut *slot, LoopEnd::Open), half) {
            (LoopEnd::HandedOver(record), LoopEnd::Ended { status, io })
            | (LoopEnd::Ended { status, io }, LoopEnd::HandedOver(record)) => {
                drop(slot);
                record.finish(py, status, &io);
            }
            (_, half) => *slot = half,
        }
    }

    pub(super) fn loop_flush(&self) -> std::io::Result<bool> {
        self.stream.lock().send_pending_without_waiting()
    }

    /// Feeds `decoder` what the socket has now: Ok(false) when it has
    /// nothing yet; an error when the worker closed the connection.
    pub(super) fn loop_recv(&self, decoder: &mut protocol::Decoder) -> std::io::Result<bool> {
        use nix::sys::socket::{MsgFlags, recv};
        let mut c = self.stream.lock();
        // Bytes the request thread's reader took past the request (none
        // from a worker, which sends nothing unasked) come first.
        let buffered = c.reader.buffer().len();
        if buffered > 0 {
            decoder.feed(c.reader.buffer());
            c.reader.consume(buffered);
            return Ok(true);
        }
        let fd = std::os::fd::AsRawFd::as_raw_fd(c.socket());
        let mut buf = [0u8; 16 * 1024];
        loop {
            return match recv(fd, &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the worker closed the connection",
                )),
                Ok(n) => {
                    decoder.feed(&buf[..n]);
                    Ok(true)
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => Ok(false),
                Err(e) => Err(e.into()),
            };
        }
    }

    /// The connection on a descriptor of its own, for the worker's next
    /// request, when nothing of the exchange is left on it. (This backend
    /// may still be held by Python objects of the request; they no longer
    /// touch the socket, and dropping them closes only their descriptor.)
    pub(super) fn idle_copy(&self) -> Option<Conn> {
        let c = self.stream.lock();
        if !c.reader.buffer().is_empty() || !c.pending.is_empty() {
            return None;
        }
        c.socket().try_clone().ok().map(Conn::new)
    }
}

/// The frame that tells the worker why a request failed in this process,
/// None when there is nobody to tell (the client is gone).
pub fn failure_frame(error: &RequestError, where_logged: &str) -> Option<Frame> {
    use crate::protocol::FailureKind;
    let first_line = |message: &str| message.lines().next().unwrap_or("").to_string();
    let (kind, message) = match error {
        RequestError::ClientGone => return None,
        RequestError::RequestTimeout => (
            FailureKind::RequestTimeout,
            format!(
                "the application was interrupted by mod_wsgi.RequestTimeout (details {where_logged})"
            ),
        ),
        RequestError::Exception(exception) => (
            FailureKind::ApplicationError,
            format!(
                "{} exception raised (traceback {where_logged})",
                exception.class
            ),
        ),
        RequestError::MissingCallable(message) => (
            FailureKind::NotFound,
            format!("{} (details {where_logged})", first_line(message)),
        ),
        RequestError::Message(message) => (
            FailureKind::ApplicationError,
            format!("{} (details {where_logged})", first_line(message)),
        ),
    };
    Some(Frame::failure(kind, message))
}

impl Backend for SocketBackend {
    fn read_body(&self, buf: &mut crate::wsgi::BodyBuf<'_>) -> Result<usize, BackendError> {
        self.framed()?;
        if self.finished.load(std::sync::atomic::Ordering::Acquire) {
            return Err(BackendError::Finished);
        }
        let max = buf
            .remaining()
            .min(self.limits.max_chunk)
            .min(u32::MAX as usize);
        if max == 0 {
            return Ok(0);
        }
        let mut ask = Vec::new();
        protocol::encode(&Frame::ReadBody { max: max as u32 }, &mut ask).map_err(gone)?;
        let mut c = self.stream.lock();
        c.write_with(&ask).map_err(gone)?;
        match protocol::read_frame(&mut c.reader, &self.limits) {
            Ok(Frame::Body(data)) if data.len() <= max => Ok(buf.append(&data)),
            Ok(Frame::BodyEnd) => Ok(0),
            Ok(Frame::BodyError(why)) => Err(BackendError::ClientGone(why)),
            Ok(other) => Err(gone(format!(
                "worker sent {} while the body was expected",
                other.name()
            ))),
            Err(ProtocolError::Closed | ProtocolError::UnexpectedEof) => {
                Err(gone("worker closed the connection"))
            }
            Err(ProtocolError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                let waited = c.stream().read_timeout().ok().flatten().unwrap_or_default();
                Err(gone(format!(
                    "timed out after {}s waiting for the request body from the Apache child (socket-timeout of {})",
                    waited.as_secs_f64(),
                    self.who()
                )))
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
        self.framed()?;
        // Held back until the first block of the body, or the end.
        let mut c = self.stream.lock();
        hold_head(&mut c.pending, status, status_line, headers)
    }

    fn send_now(
        &self,
        head: Option<crate::wsgi::HeadRef<'_>>,
        data: &[u8],
        last: bool,
    ) -> Option<Result<bool, BackendError>> {
        if data.len() > NOW_LIMIT.min(self.limits.max_chunk) || self.framed().is_err() {
            return None;
        }
        // Held a moment by the monitor (send_held_accepted): the usual way.
        let mut c = self.stream.try_lock()?;
        let queued = (|| {
            if let Some((status, line, headers)) = head {
                hold_head(&mut c.pending, status, line, headers)?;
            }
            if !data.is_empty() {
                protocol::append_response_body(data, &mut c.pending).map_err(gone)?;
            }
            Ok(())
        })();
        Some(queued.and_then(|()| {
            // The end frame follows at once and takes everything along;
            // a head without body bytes waits for them, as in send_head.
            if last || data.is_empty() {
                return Ok(true);
            }
            c.send_pending_without_waiting().map_err(gone)
        }))
    }

    fn flush_queued(&self) -> Result<(), BackendError> {
        self.stream.lock().write_with(&[]).map_err(gone)
    }

    fn write_body(&self, data: &[u8]) -> Result<(), BackendError> {
        self.framed()?;
        let mut c = self.stream.lock();
        for chunk in data.chunks(self.limits.max_chunk.max(1)) {
            if c.pending.is_empty() || chunk.len() > COALESCE {
                let pending = std::mem::take(&mut c.pending);
                if !pending.is_empty() {
                    c.stream().write_all(&pending).map_err(gone)?;
                }
                protocol::write_response_body(c.stream(), chunk).map_err(gone)?;
            } else {
                // Behind the held-back frames, copied once, one write.
                protocol::append_response_body(chunk, &mut c.pending).map_err(gone)?;
                c.write_with(&[]).map_err(gone)?;
            }
        }
        Ok(())
    }

    fn write_last_body(&self, data: &[u8]) -> Result<(), BackendError> {
        self.framed()?;
        if data.len() > COALESCE {
            return self.write_body(data);
        }
        // Kept with the head: the end frame follows at once and takes both
        // along in the same write.
        let mut c = self.stream.lock();
        protocol::append_response_body(data, &mut c.pending).map_err(gone)
    }

    /// The file goes to the worker as an open descriptor beside a
    /// `ResponseFile` frame (SCM_RIGHTS), in the same write as what is held
    /// back (`Accepted`, the head): the worker sends it as Apache sends a
    /// static file, and this thread is free at once instead of copying the
    /// bytes through the socket.
    fn send_file(
        &self,
        file: &std::fs::File,
        offset: u64,
        len: u64,
    ) -> Option<Result<(), BackendError>> {
        // The worker's own file position (see `reopened`); without one,
        // the file is streamed as before.
        if let Err(e) = self.framed() {
            return Some(Err(e));
        }
        let own = super::fd_passing::reopened(file).ok()?;
        let mut c = self.stream.lock();
        let mut out = std::mem::take(&mut c.pending);
        let framed = protocol::encode(
            &Frame::ResponseFile {
                offset,
                length: len,
            },
            &mut out,
        );
        let sent = framed.map_err(gone).and_then(|()| {
            super::fd_passing::send_with_fd(c.stream(), &out, std::os::fd::AsFd::as_fd(&own))
                .map_err(gone)
        });
        out.clear();
        c.pending = out;
        Some(sent)
    }

    /// The tunnel starts at once, for either `TunnelStart` (the worker
    /// relays it from the Tunnel frame on).
    fn switch_protocols(
        &self,
        protocol: &str,
        headers: &[(String, String)],
        _start: crate::wsgi::TunnelStart,
    ) -> Option<Result<std::os::fd::OwnedFd, BackendError>> {
        Some((|| {
            self.framed()?;
            let mut c = self.stream.lock();
            let mut all = vec![
                ("Upgrade".to_string(), protocol.to_string()),
                ("Connection".to_string(), "Upgrade".to_string()),
            ];
            all.extend_from_slice(headers);
            hold_head(&mut c.pending, 101, "101 Switching Protocols", &all)?;
            protocol::encode(&Frame::Tunnel, &mut c.pending).map_err(gone)?;
            // The worker sends nothing unasked, so nothing of the tunnel
            // is in the read buffer: the descriptor starts at its first byte.
            let socket = c.socket().try_clone().map_err(gone)?;
            // Set before the lock goes: no frame follows the Tunnel.
            self.tunneled
                .store(true, std::sync::atomic::Ordering::Release);
            c.write_with(&[]).map_err(gone)?;
            let _ = socket.set_read_timeout(None);
            let _ = socket.set_write_timeout(None);
            Ok(std::os::fd::OwnedFd::from(socket))
        })())
    }

    fn detach_to_loop(&self, py: pyo3::Python<'_>) -> Option<pyo3::PyResult<pyo3::PyObject>> {
        let setup = self.loop_setup.lock().take()?;
        // A full loop: the request stays on its thread.
        if !setup.owner.take_place() {
            return None;
        }
        let me = self.me.upgrade()?;
        {
            // Under the connection's lock, as the tunnel flag: a request
            // thread's write in progress ends before the loop's begin.
            let _c = self.stream.lock();
            self.detached
                .store(true, std::sync::atomic::Ordering::Release);
        }
        setup.owner.detached(&me);
        let exchange = LoopExchange::new(me, setup);
        Some(pyo3::Py::new(py, exchange).map(|e| e.into_any()))
    }

    fn is_detached(&self) -> bool {
        SocketBackend::is_detached(self)
    }

    fn hand_over_record(&self, py: pyo3::Python<'_>, record: LoopRecord) {
        self.loop_end_half(py, LoopEnd::HandedOver(record));
    }

    /// Lines of the application during a request read as C mod_wsgi's
    /// daemon writes them (`[remote ADDR:PORT] ...`; Apache adds the pid);
    /// without a request, the group and pid lead.
    fn log(&self, level: Level, text: &str) {
        match self.client.get() {
            Some(client) => log::server(None, level, &format!("{client} {text}")),
            None => log::server(None, level, &format!("{}: {text}", self.who())),
        }
    }
}
