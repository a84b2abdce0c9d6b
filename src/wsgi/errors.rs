//! Python's output into Apache's error log: `wsgi.errors`, `sys.stdout`
//! and `sys.stderr`, as mod_wsgi 6 gives them.
//!
//! Each is an `io.TextIOWrapper` (utf-8, errors 'replace', line buffered,
//! write-through) over a binary [`LogBuffer`], whose `write()` takes bytes
//! (and, with a DeprecationWarning once per process, str) and logs one
//! error-log line per `\n`; a partial line waits for the rest, a flush, or
//! the end of the request. During a request, `sys.stdout` / `sys.stderr`
//! write into that request's buffer, so their lines carry the request's
//! client and script like `wsgi.errors` lines; elsewhere they go to the
//! main server's log. All three log at error level, as mod_wsgi does.

use super::{Backend, Level};
use parking_lot::Mutex;
use pyo3::exceptions::{PyDeprecationWarning, PyOSError, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where the lines of a buffer go.
enum Target {
    /// A request: its error log (virtual host, client), each line tagged
    /// with the request's script as mod_wsgi tags them.
    Request {
        backend: Arc<dyn Backend>,
        script: Option<String>,
    },
    /// No request: the main server's error log.
    Process,
}

/// Buffered lines on their way to the log: shared by a request's
/// `wsgi.errors` and the process streams while the request runs.
pub struct LogSink {
    target: Target,
    level: Level,
    pending: Mutex<Vec<u8>>,
    /// Set when the request ended: `wsgi.errors` kept beyond it refuses.
    expired: AtomicBool,
}

impl LogSink {
    fn new(target: Target, level: Level) -> Arc<LogSink> {
        Arc::new(LogSink {
            target,
            level,
            pending: Mutex::new(Vec::new()),
            expired: AtomicBool::new(false),
        })
    }

    /// The sink of one request's `wsgi.errors` (`script`: the file Apache
    /// mapped the request to, SCRIPT_FILENAME).
    pub fn for_request(backend: Arc<dyn Backend>, script: Option<String>) -> Arc<LogSink> {
        LogSink::new(Target::Request { backend, script }, Level::Error)
    }

    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        match &self.target {
            Target::Request {
                backend,
                script: Some(script),
            } => backend.log(self.level, &format!("[script {script}] {text}")),
            Target::Request {
                backend,
                script: None,
            } => backend.log(self.level, &text),
            Target::Process => crate::apache::log::server(None, self.level, &text),
        }
    }

    /// Queues `data`, logging every line it completes.
    fn write(&self, data: &[u8]) {
        let mut pending = self.pending.lock();
        pending.extend_from_slice(data);
        let Some(last) = pending.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = pending.drain(..=last).collect();
        drop(pending);
        for line in complete[..complete.len() - 1].split(|&b| b == b'\n') {
            self.emit(line);
        }
    }

    /// Logs a partial line, if any.
    fn flush(&self) {
        let rest = std::mem::take(&mut *self.pending.lock());
        if !rest.is_empty() {
            self.emit(&rest);
        }
    }

    /// The request is over: log what is left and refuse further writes.
    pub fn close(&self) {
        if !self.expired.swap(true, Ordering::AcqRel) {
            self.flush();
        }
    }
}

thread_local! {
    /// The sink of the request this thread is serving, if any: the
    /// process streams write there while it runs.
    static REQUEST: RefCell<Option<Arc<LogSink>>> = const { RefCell::new(None) };
}

/// Sends this thread's `sys.stdout` / `sys.stderr` output into `sink` until
/// the guard is dropped.
pub fn route_to_request(sink: Arc<LogSink>) -> RequestRoute {
    RequestRoute(REQUEST.with(|r| r.replace(Some(sink))))
}

/// Restores the previous routing when dropped.
pub struct RequestRoute(Option<Arc<LogSink>>);

impl Drop for RequestRoute {
    fn drop(&mut self) {
        let previous = self.0.take();
        let _ = REQUEST.try_with(|r| r.replace(previous));
    }
}

/// Logs one line where this thread's output goes: the request's log while
/// it runs, else the main server's.
pub fn log_line(level: Level, text: &str) {
    match REQUEST.try_with(|r| r.borrow().clone()).ok().flatten() {
        Some(sink) => match &sink.target {
            Target::Request { backend, .. } => backend.log(level, text),
            Target::Process => crate::apache::log::server(None, level, text),
        },
        None => crate::apache::log::server(None, level, text),
    }
}

/// Set once a str has been written to a buffer: warned once per process.
static WARNED_STR_WRITE: AtomicBool = AtomicBool::new(false);

/// The binary layer under `wsgi.errors`, `sys.stdout` and `sys.stderr`
/// (their `.buffer`).
#[pyclass(module = "mod_wsgi")]
pub struct LogBuffer {
    sink: Arc<LogSink>,
    /// A process stream: during a request it writes into the request's
    /// sink instead of its own.
    follows_request: bool,
    name: &'static str,
}

impl LogBuffer {
    /// The sink writes go to now.
    fn sink(&self) -> Arc<LogSink> {
        if self.follows_request
            && let Some(sink) = REQUEST.try_with(|r| r.borrow().clone()).ok().flatten()
        {
            return sink;
        }
        self.sink.clone()
    }

    fn refuse_if_expired(sink: &LogSink, what: &str) -> PyResult<()> {
        if sink.expired.load(Ordering::Acquire) {
            return Err(PyRuntimeError::new_err(format!(
                "{what}() called on wsgi.errors after request completed"
            )));
        }
        Ok(())
    }
}

#[pymethods]
impl LogBuffer {
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let sink = self.sink();
        Self::refuse_if_expired(&sink, "write")?;
        if let Ok(text) = data.downcast::<PyString>() {
            if !WARNED_STR_WRITE.swap(true, Ordering::AcqRel) {
                PyErr::warn(
                    py,
                    &py.get_type::<PyDeprecationWarning>(),
                    c"Writing str to wsgi.errors.buffer / sys.stderr.buffer is deprecated; write a bytes-like object instead.",
                    1,
                )?;
            }
            sink.write(text.to_cow()?.as_bytes());
            return Ok(());
        }
        if let Ok(bytes) = data.downcast::<PyBytes>() {
            sink.write(bytes.as_bytes());
            return Ok(());
        }
        // Any other bytes-like object (bytearray, memoryview, ...).
        let bytes = PyBytes::new(py, &[])
            .get_type()
            .call1((data,))
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "a bytes-like object is required, not '{}'",
                    data.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
        sink.write(bytes.downcast::<PyBytes>()?.as_bytes());
        Ok(())
    }

    fn writelines(&self, py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        let sink = self.sink();
        Self::refuse_if_expired(&sink, "writelines")?;
        let iter = lines.try_iter().map_err(|_| {
            PyTypeError::new_err("writelines() argument must be an iterable of bytes-like objects")
        })?;
        for line in iter {
            self.write(py, &line?)?;
        }
        Ok(())
    }

    fn flush(&self) -> PyResult<()> {
        let sink = self.sink();
        if sink.expired.load(Ordering::Acquire) && !sink.pending.lock().is_empty() {
            return Err(PyRuntimeError::new_err(
                "flush() called on wsgi.errors after request completed",
            ));
        }
        sink.flush();
        Ok(())
    }

    fn close(&self) {
        // Only a request's own buffer ends; the process streams live on.
        if !self.follows_request {
            self.sink.close();
        }
    }

    fn isatty(&self) -> bool {
        false
    }
    fn readable(&self) -> bool {
        false
    }
    fn seekable(&self) -> bool {
        false
    }
    fn writable(&self) -> bool {
        true
    }
    fn fileno(&self) -> PyResult<i32> {
        Err(PyOSError::new_err(
            "wsgi.errors log object has no file descriptor",
        ))
    }
    #[getter]
    fn name(&self) -> &'static str {
        self.name
    }
    #[getter]
    fn closed(&self) -> bool {
        false
    }
    #[getter]
    fn encoding(&self) -> &'static str {
        "utf-8"
    }
    #[getter]
    fn errors(&self) -> &'static str {
        "replace"
    }
}

/// `io.TextIOWrapper(buffer, 'utf-8', 'replace', None, True, True)`: the
/// text stream mod_wsgi hands out over a log buffer.
fn text_stream<'py>(py: Python<'py>, buffer: LogBuffer) -> PyResult<Bound<'py, PyAny>> {
    let buffer = Bound::new(py, buffer)?;
    crate::python::loaded_module(py, "io")?
        .getattr("TextIOWrapper")?
        .call1((buffer, "utf-8", "replace", py.None(), true, true))
}

/// A request's `wsgi.errors`, writing into `sink`.
pub fn wsgi_errors<'py>(py: Python<'py>, sink: Arc<LogSink>) -> PyResult<Bound<'py, PyAny>> {
    text_stream(
        py,
        LogBuffer {
            sink,
            follows_request: false,
            name: "<wsgi.errors>",
        },
    )
}

/// `sys.stdout` or `sys.stderr` (`name` "<stdout>" / "<stderr>").
pub fn process_stream<'py>(py: Python<'py>, name: &'static str) -> PyResult<Bound<'py, PyAny>> {
    text_stream(
        py,
        LogBuffer {
            sink: LogSink::new(Target::Process, Level::Error),
            follows_request: true,
            name,
        },
    )
}
