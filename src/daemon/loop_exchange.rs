//! An exchange the interpreter's event loop drives, instead of a request
//! thread (ASGI `http` requests in daemon mode): the request thread reads
//! the `Request`, loads the script and hands the connection over
//! (`start_response.detach()`), then goes back to take the next
//! connection. The loop then speaks the protocol on the socket without
//! ever blocking: frames go into the connection's outgoing queue and out
//! as the socket takes them (the loop waits for it to be writable), and
//! `Body` frames are decoded from whatever the socket has (the loop waits
//! for it to be readable). So a process holds as many requests awaiting
//! I/O as its loop can, not as many as it has request threads.
//!
//! The process keeps count of the exchanges its loop holds
//! ([`LoopOwner`]): a graceful drain and a forced exit see them as they
//! see requests on threads, and the connection goes back to the worker's
//! pool of kept connections when the exchange ended cleanly.

use super::socket_backend::{Conn, SocketBackend};
use crate::protocol::{Decoder, Frame};
use crate::wsgi::Level;
use crate::wsgi::metrics::RequestIo;
use crate::wsgi::serve::{Failure, ReportTarget};
use parking_lot::Mutex;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};

/// What the daemon process does when one of its exchanges moves to the
/// loop, and when it ends there.
pub trait LoopOwner: Send + Sync {
    /// Whether the loop may take one more exchange (loop-held-limit); a
    /// place taken is given back when the exchange ends.
    fn take_place(&self) -> bool;
    /// The exchange is the loop's from now on (called on the request
    /// thread, before the loop can see it).
    fn detached(&self, backend: &Arc<SocketBackend>);
    /// The exchange is over; `idle` is the connection for the worker's
    /// next request when it ended cleanly and nothing is left on it.
    fn ended(&self, idle: Option<Conn>);
}

/// What a detached exchange needs from the request that made it, set by
/// the process before the application is called.
pub struct LoopSetup {
    pub owner: Box<dyn LoopOwner>,
    /// The group's request-timeout in seconds (0: none): the runtime
    /// cancels the application when it runs out.
    pub request_timeout: f64,
    /// Where its failures are reported from (the script and groups).
    pub report: ReportTarget,
}

/// The exchange as the runtime (`src/asgi/runtime.py`) holds it.
#[pyclass(frozen, module = "mod_wsgi")]
pub struct LoopExchange {
    backend: Arc<SocketBackend>,
    decoder: Mutex<Decoder>,
    owner: Mutex<Option<Box<dyn LoopOwner>>>,
    request_timeout: f64,
    report: ReportTarget,
    head_sent: AtomicBool,
    /// The response's status (0 until the head is queued).
    status: AtomicU16,
    body_bytes: AtomicU64,
    body_writes: AtomicU64,
    input_bytes: AtomicU64,
    input_reads: AtomicU64,
    /// A frame that ends the exchange is queued: nothing may follow it.
    /// Set from the start for a tunnel (a WebSocket), whose session the
    /// loop runs on its own descriptor: no frame goes on it.
    ended: AtomicBool,
}

impl LoopExchange {
    pub(super) fn new(backend: Arc<SocketBackend>, setup: LoopSetup) -> LoopExchange {
        let decoder = Decoder::new(backend.limits());
        // A tunnel's head (the 101) went out before; its frames are over.
        let tunnel = backend.is_tunnel();
        LoopExchange {
            backend,
            decoder: Mutex::new(decoder),
            owner: Mutex::new(Some(setup.owner)),
            request_timeout: setup.request_timeout,
            report: setup.report,
            head_sent: AtomicBool::new(tunnel),
            status: AtomicU16::new(if tunnel { 101 } else { 0 }),
            body_bytes: AtomicU64::new(0),
            body_writes: AtomicU64::new(0),
            input_bytes: AtomicU64::new(0),
            input_reads: AtomicU64::new(0),
            ended: AtomicBool::new(tunnel),
        }
    }

    /// Ends the request's record (events, metrics) with what went through.
    fn record_end(&self, py: Python<'_>) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let io = RequestIo {
            input_bytes: get(&self.input_bytes),
            input_reads: get(&self.input_reads),
            output_bytes: get(&self.body_bytes),
            output_writes: get(&self.body_writes),
            ..RequestIo::default()
        };
        self.backend
            .loop_ended(py, self.status.load(Ordering::Relaxed), io);
    }

    fn queue(&self, frame: &Frame) -> PyResult<()> {
        if self.ended.load(Ordering::Acquire) {
            return Err(PyRuntimeError::new_err("the exchange has ended"));
        }
        self.backend
            .loop_queue(frame)
            .map_err(|e| PyOSError::new_err(e.to_string()))
    }

    fn end_with(&self, frame: &Frame) -> PyResult<()> {
        self.queue(frame)?;
        self.ended.store(true, Ordering::Release);
        Ok(())
    }
}

#[pymethods]
impl LoopExchange {
    /// The socket to the worker, for the loop's readiness callbacks.
    fn fileno(&self) -> i32 {
        self.backend.raw_fd()
    }

    #[getter]
    fn request_timeout(&self) -> f64 {
        self.request_timeout
    }

    /// Writes what the socket takes now; True when nothing is left. The
    /// GIL is kept: the send never waits, and letting the GIL go here
    /// made the loop queue behind the request threads to take it back
    /// (a quarter of the loop's time under load).
    fn flush(&self) -> PyResult<bool> {
        self.backend
            .loop_flush()
            .map_err(|e| PyOSError::new_err(format!("worker connection lost: {e}")))
    }

    /// Asks the worker for up to `max` bytes of the request body.
    fn want_body(&self, max: u32) -> PyResult<()> {
        self.queue(&Frame::ReadBody { max: max.max(1) })
    }

    /// The answer to `want_body`: the bytes (b"" at the end of the body),
    /// or None while it has not arrived. OSError when the client is gone.
    fn read_body<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let mut decoder = self.decoder.lock();
        loop {
            let frame = decoder
                .next_frame()
                .map_err(|e| PyOSError::new_err(format!("bad frame from the worker: {e}")))?;
            match frame {
                Some(Frame::Body(data)) => {
                    self.input_bytes
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                    self.input_reads.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(PyBytes::new(py, &data)));
                }
                Some(Frame::BodyEnd) => return Ok(Some(PyBytes::new(py, b""))),
                Some(Frame::BodyError(why)) => {
                    return Err(PyOSError::new_err(format!("client connection lost: {why}")));
                }
                Some(other) => {
                    return Err(PyOSError::new_err(format!(
                        "worker sent {} while the body was expected",
                        other.name()
                    )));
                }
                None => {}
            }
            match self.backend.loop_recv(&mut decoder) {
                Ok(true) => continue,
                Ok(false) => return Ok(None),
                Err(e) => {
                    return Err(PyOSError::new_err(format!("worker connection lost: {e}")));
                }
            }
        }
    }

    /// Queues the response head (latin-1 text, as start_response takes it).
    fn start(&self, status: u16, reason: &str, headers: Vec<(String, String)>) -> PyResult<()> {
        if self.ended.load(Ordering::Acquire) {
            return Err(PyRuntimeError::new_err("the exchange has ended"));
        }
        if self.head_sent.swap(true, Ordering::AcqRel) {
            return Err(PyRuntimeError::new_err("the response has started already"));
        }
        // What the protocol refuses (a CR or LF in a header, ...) is the
        // application's mistake, not a lost connection.
        self.backend
            .loop_queue_head(status, reason, &headers)
            .map_err(|e| PyValueError::new_err(format!("bad response head: {e}")))?;
        self.status.store(status, Ordering::Relaxed);
        Ok(())
    }

    /// Queues body bytes.
    fn body(&self, data: &[u8]) -> PyResult<()> {
        if data.is_empty() {
            return Ok(());
        }
        if self.ended.load(Ordering::Acquire) {
            return Err(PyRuntimeError::new_err("the exchange has ended"));
        }
        for chunk in data.chunks(self.backend.limits().max_chunk.max(1)) {
            self.backend
                .loop_queue_body(chunk)
                .map_err(|e| PyOSError::new_err(e.to_string()))?;
        }
        self.body_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.body_writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Queues the end of a complete response.
    fn end(&self) -> PyResult<()> {
        self.end_with(&Frame::ResponseEnd)
    }

    /// The request failed: `error` is the exception (a
    /// `mod_wsgi.RequestTimeout` for a timeout) or a message. Logged as a
    /// failed WSGI request is, and the worker told (before the head: an
    /// error status; after it: the client connection is cut).
    fn fail(&self, py: Python<'_>, error: &Bound<'_, PyAny>) -> PyResult<()> {
        let error = match error.extract::<String>() {
            Ok(message) => crate::wsgi::RequestError::Message(message),
            Err(_) => crate::wsgi::response::request_error(py, PyErr::from_value(error.clone())),
        };
        let failure = Failure {
            started: self.head_sent.load(Ordering::Acquire),
            body_bytes: self.body_bytes.load(Ordering::Relaxed),
            error,
        };
        crate::wsgi::serve::report_at(&*self.backend, &failure, &self.report);
        if self.ended.load(Ordering::Acquire) {
            // After a complete response: only logged, as on the WSGI path.
            return Ok(());
        }
        match super::socket_backend::failure_frame(&failure.error, &self.backend.where_logged()) {
            Some(frame) => self.end_with(&frame),
            None => {
                self.ended.store(true, Ordering::Release);
                Ok(())
            }
        }
    }

    /// One line for the error log ("error", "warning" or "info"), tagged
    /// with the request.
    fn log(&self, level: &str, text: &str) {
        let level = match level {
            "warning" => Level::Warning,
            "info" => Level::Info,
            _ => Level::Error,
        };
        crate::wsgi::Backend::log(&*self.backend, level, text);
    }

    /// The exchange is over (its last frame flushed, or the connection
    /// lost): the process counts it done, and keeps the connection for the
    /// worker when `clean`.
    fn close(&self, py: Python<'_>, clean: bool) {
        let Some(owner) = self.owner.lock().take() else {
            return;
        };
        self.record_end(py);
        // A tunnel's connection is never kept for another request.
        let idle = if clean && !self.backend.is_tunnel() && self.ended.load(Ordering::Acquire) {
            self.backend.idle_copy()
        } else {
            self.backend.shut_down();
            None
        };
        owner.ended(idle);
    }
}

impl Drop for LoopExchange {
    /// A runtime that lost the exchange without closing it (its loop
    /// stopped): still counted done, the connection not kept.
    fn drop(&mut self) {
        if let Some(owner) = self.owner.get_mut().take() {
            // Dropped by Python (the GIL is held): with_gil only nests.
            Python::with_gil(|py| self.record_end(py));
            self.backend.shut_down();
            owner.ended(None);
        }
    }
}
