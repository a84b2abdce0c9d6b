//! The PEP 3333 adapter shared by embedded and daemon mode: environ,
//! start_response, wsgi.input, wsgi.errors, script loading and the response
//! loop. It talks to "the other side" (Apache in embedded mode, the worker's
//! socket in daemon mode) only through the [`Backend`] trait.

pub mod environ;
pub mod errors;
pub mod events;
pub mod file_wrapper;
pub mod input;
pub mod metrics;
pub mod module;
pub mod proxy;
pub mod response;
pub mod scripts;
pub mod serve;
pub mod start_response;

pub use crate::apache::body_buf::BodyBuf;
pub use crate::apache::log::Level;

/// Why a WSGI request failed; turned into a status and one log line at the
/// boundary of each mode.
#[derive(Debug)]
pub enum WsgiError {
    /// The script could not be read or compiled, or lacks the callable.
    Script(String),
    /// The application raised, or broke the WSGI protocol.
    Application(String),
    /// The client (or the worker relaying it) went away.
    ClientGone,
}

/// Why serving one request stopped early. Each mode's boundary turns it
/// into a status and its log lines (`serve::report`).
#[derive(Debug)]
pub enum RequestError {
    /// A failure the adapter describes itself (a script that would not
    /// load, or lacks its callable): the lines to log, the headline first.
    Message(String),
    /// The script has no callable of the configured name: 404, as mod_wsgi
    /// answers it (the line to log).
    MissingCallable(String),
    /// The application raised, or broke the WSGI protocol (raised as the
    /// Python exception mod_wsgi raises for it).
    Exception(response::PythonException),
    /// `mod_wsgi.RequestTimeout` reached the adapter, raised by the
    /// application or injected by the daemon's request-timeout: as with
    /// mod_wsgi 6, a 504 before the headers, a cut response after, and an
    /// info line instead of a traceback.
    RequestTimeout,
    /// The client (or the worker relaying it) went away.
    ClientGone,
}

impl From<WsgiError> for RequestError {
    fn from(e: WsgiError) -> RequestError {
        match e {
            WsgiError::Script(m) | WsgiError::Application(m) => RequestError::Message(m),
            WsgiError::ClientGone => RequestError::ClientGone,
        }
    }
}

/// A response head to send: status code, status line ("200 OK"), headers.
pub type HeadRef<'a> = (u16, &'a str, &'a [(String, String)]);

/// Failures of the other side, as the adapter needs to tell them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// The client went away, or its body could not be read.
    ClientGone(String),
    /// The request is over; the object outlived it.
    Finished,
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::ClientGone(why) => write!(f, "client connection lost: {why}"),
            BackendError::Finished => f.write_str("the request has finished"),
        }
    }
}

/// When the bytes of an upgraded connection may begin to flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelStart {
    /// At once: the caller talks on the descriptor from the request's own
    /// thread (daemon mode only).
    Now,
    /// Once the application has returned: the caller talks on the
    /// descriptor from another thread (the ASGI adapter's event loop). In
    /// embedded mode the request's thread, Apache's, then relays it.
    AfterReturn,
}

/// Where the request comes from and the response goes to. Implementations
/// are called with the GIL released for the I/O methods.
pub trait Backend: Send + Sync {
    /// Reads body bytes into the room left in `buf` (at least one, unless
    /// `buf` is full); how many were read: Ok(0) at the end of the body.
    fn read_body(&self, buf: &mut BodyBuf<'_>) -> Result<usize, BackendError>;
    /// Sends the status line ("200 OK") and headers, once.
    fn send_head(
        &self,
        status: u16,
        status_line: &str,
        headers: &[(String, String)],
    ) -> Result<(), BackendError>;
    /// Sends body bytes (after send_head).
    fn write_body(&self, data: &[u8]) -> Result<(), BackendError>;
    /// Sends the last body bytes of a response whose end follows at once
    /// (the last item of a list or tuple): a backend may send them together
    /// with the end of the response.
    fn write_last_body(&self, data: &[u8]) -> Result<(), BackendError> {
        self.write_body(data)
    }
    /// Sends the head (when given) and `data` now if that needs no wait
    /// (the bytes fit where they go at once), so that the caller can keep
    /// the GIL rather than let go of it for a short write and queue to take
    /// it back. `last`: the end of the response follows at once, and the
    /// bytes may wait to go with it. Some(Ok(true)): sent (or kept for the
    /// end); Some(Ok(false)): what did not fit is queued, to go with
    /// [`Backend::flush_queued`] (called without the GIL); None: this
    /// backend has no such path, or not for this block, and did nothing.
    fn send_now(
        &self,
        _head: Option<HeadRef<'_>>,
        _data: &[u8],
        _last: bool,
    ) -> Option<Result<bool, BackendError>> {
        None
    }
    /// Writes what [`Backend::send_now`] queued, waiting as needed.
    fn flush_queued(&self) -> Result<(), BackendError> {
        Ok(())
    }
    /// Sends `len` bytes of the regular file `file` from `offset` as body
    /// bytes (after send_head; the bytes exist), letting the server send
    /// them itself (sendfile, mmap) instead of through Python. None: this
    /// backend has no such path and did nothing; the caller streams the
    /// file as ordinary body bytes.
    fn send_file(
        &self,
        _file: &std::fs::File,
        _offset: u64,
        _len: u64,
    ) -> Option<Result<(), BackendError>> {
        None
    }
    /// Answers 101 (Switching Protocols) to `protocol` (the request's
    /// `Upgrade`), with `headers` besides `Upgrade` and `Connection`, and
    /// hands back the connection to the client as a byte stream for the
    /// upgraded protocol (a WebSocket). None: this backend cannot, or not
    /// with this `start`.
    fn switch_protocols(
        &self,
        _protocol: &str,
        _headers: &[(String, String)],
        _start: TunnelStart,
    ) -> Option<Result<std::os::fd::OwnedFd, BackendError>> {
        None
    }
    /// Hands the rest of the exchange to the interpreter's event loop (an
    /// ASGI request in daemon mode): the object the runtime drives it
    /// through, after which this backend refuses the request path's I/O.
    /// None: this backend cannot (embedded mode), or not for this request.
    fn detach_to_loop(&self, _py: pyo3::Python<'_>) -> Option<pyo3::PyResult<pyo3::PyObject>> {
        None
    }
    /// Whether [`Backend::detach_to_loop`] handed the exchange over.
    fn is_detached(&self) -> bool {
        false
    }
    /// The request thread is done with a detached exchange: `record` ends
    /// the request once the loop has ended the exchange (or at once if it
    /// has).
    fn hand_over_record(&self, py: pyo3::Python<'_>, record: events::LoopRecord) {
        record.finish(py, 0, &metrics::RequestIo::default());
    }
    /// One line for the error log, tagged with the request when possible.
    fn log(&self, level: Level, text: &str);
}

/// Per-request facts the environ reports about where the application runs.
pub struct EnvironContext<'a> {
    pub process_group: &'a str,
    pub application_group: &'a str,
    pub callable_object: &'a str,
    pub script_reloading: bool,
    pub multithread: bool,
    pub multiprocess: bool,
    /// WSGIPassApacheRequest in embedded mode: the request lent to the
    /// application as `environ['apache.request_rec']` until it ends.
    pub apache_request: Option<crate::apache::request::RequestPtr>,
}
