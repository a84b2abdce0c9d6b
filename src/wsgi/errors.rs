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
use pyo3::types::{PyBool, PyBytes, PyList, PyString, PyTuple};
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
#[pyclass(module = "mod_wsgi", frozen)]
pub struct LogBuffer {
    /// A request's buffer gets the sink of each request it serves (see
    /// [`RequestErrors`]).
    sink: Mutex<Arc<LogSink>>,
    /// A process stream: during a request it writes into the request's
    /// sink instead of its own.
    follows_request: bool,
    name: &'static str,
}

impl LogBuffer {
    fn sink_of<'a>(buffer: &'a Bound<'_, LogBuffer>) -> &'a Mutex<Arc<LogSink>> {
        &buffer.get().sink
    }

    /// The sink writes go to now.
    fn sink(&self) -> Arc<LogSink> {
        if self.follows_request
            && let Some(sink) = REQUEST.try_with(|r| r.borrow().clone()).ok().flatten()
        {
            return sink;
        }
        self.sink.lock().clone()
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
            self.sink.lock().close();
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
fn text_stream<'py>(
    py: Python<'py>,
    buffer: Bound<'py, LogBuffer>,
    utf8: &Bound<'py, PyAny>,
    replace: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    crate::python::loaded_module(py, "io")?
        .getattr("TextIOWrapper")?
        .call1((buffer, utf8, replace, py.None(), true, true))
}

/// Key of the interpreter dict entry holding the interpreter's [`Idle`]
/// `wsgi.errors` streams.
const IDLE_ENTRY: &str = "mod_wsgi_rs.idle_wsgi_errors";

/// A request's `wsgi.errors`: an idle one of this interpreter when there
/// is one, else new. Making the `io.TextIOWrapper` (codec lookup, an
/// incremental encoder, the buffer's capabilities asked) was about 6% of
/// the instructions of a small request; a stream nobody kept is as good
/// as new once its buffer writes into the next request's sink.
pub struct RequestErrors<'py> {
    stream: Bound<'py, PyAny>,
    buffer: Bound<'py, LogBuffer>,
    idle: Idle<'py>,
}

/// This interpreter's idle streams, as (stream, buffer) pairs, and the str
/// objects they are made and checked with (made once: a str belongs to
/// its interpreter).
struct Idle<'py> {
    streams: Bound<'py, PyList>,
    names: Bound<'py, PyTuple>,
}

/// [`Idle::names`], by their places in it.
const IDLE_NAMES: [&str; 8] = [
    "utf-8",
    "replace",
    "encoding",
    "errors",
    "line_buffering",
    "write_through",
    "__dict__",
    "pop",
];
const UTF_8: usize = 0;
const REPLACE: usize = 1;
const ENCODING: usize = 2;
const ERRORS: usize = 3;
const LINE_BUFFERING: usize = 4;
const WRITE_THROUGH: usize = 5;
const DICT: usize = 6;
const POP: usize = 7;

impl<'py> Idle<'py> {
    fn of_interpreter(py: Python<'py>) -> PyResult<Idle<'py>> {
        let entry = crate::python::interpreter_value(py, IDLE_ENTRY, || {
            let names = PyTuple::new(py, IDLE_NAMES.iter().map(|n| PyString::intern(py, n)))?;
            Ok((PyList::empty(py), names).into_pyobject(py)?.into_any())
        })?;
        let (streams, names) = entry.extract()?;
        Ok(Idle { streams, names })
    }

    fn name(&self, index: usize) -> PyResult<Bound<'py, PyString>> {
        Ok(self.names.get_item(index)?.downcast_into::<PyString>()?)
    }

    /// Whether `stream` is as [`text_stream`] made it: utf-8, the errors
    /// object it was given, line buffered, write-through, and no
    /// attributes of its own.
    fn as_made(&self, stream: &Bound<'py, PyAny>) -> PyResult<bool> {
        let py = stream.py();
        let attribute = |index| stream.getattr(self.name(index)?);
        let is_true = |index| -> PyResult<bool> { Ok(attribute(index)?.is(PyBool::new(py, true))) };
        // (The wrapper keeps its own copy of the encoding's name.)
        Ok(attribute(ENCODING)?.eq(self.name(UTF_8)?)?
            && attribute(ERRORS)?.is(&self.name(REPLACE)?)
            && is_true(LINE_BUFFERING)?
            && is_true(WRITE_THROUGH)?
            && attribute(DICT)?.len()? == 0)
    }
}

/// A request's `wsgi.errors`, writing into `sink`.
pub fn wsgi_errors<'py>(py: Python<'py>, sink: Arc<LogSink>) -> PyResult<RequestErrors<'py>> {
    let idle = Idle::of_interpreter(py)?;
    // pop(), one step even where no GIL makes two (a free-threaded build);
    // asked only when the list has something to give.
    let taken = (!idle.streams.is_empty())
        .then(|| idle.streams.call_method0(idle.name(POP).ok()?).ok())
        .flatten();
    if let Some(pair) = taken {
        let (stream, buffer): (Bound<'py, PyAny>, Bound<'py, LogBuffer>) = pair.extract()?;
        *LogBuffer::sink_of(&buffer).lock() = sink;
        return Ok(RequestErrors {
            stream,
            buffer,
            idle,
        });
    }
    let buffer = Bound::new(
        py,
        LogBuffer {
            sink: Mutex::new(sink),
            follows_request: false,
            name: "<wsgi.errors>",
        },
    )?;
    let stream = text_stream(
        py,
        buffer.clone(),
        idle.name(UTF_8)?.as_any(),
        idle.name(REPLACE)?.as_any(),
    )?;
    Ok(RequestErrors {
        stream,
        buffer,
        idle,
    })
}

impl<'py> RequestErrors<'py> {
    /// The `io.TextIOWrapper` the environ gets.
    pub fn stream(&self) -> &Bound<'py, PyAny> {
        &self.stream
    }

    /// The request is over (its sink closed): the stream goes back to the
    /// interpreter's idle ones if nothing but this holds it or its buffer
    /// and it is still as made (an application may reconfigure() its
    /// wsgi.errors or set attributes on it; such a stream is left to the
    /// garbage collector, bound to its expired sink, rather than carry
    /// that into another request). Only the line translation of
    /// `reconfigure(newline=...)` cannot be seen from outside; it would
    /// only change how a later request's lines end.
    pub fn recycle(self) {
        // One reference here, none in an environ or anywhere else; the
        // buffer's two are the stream's and this one.
        if self.stream.get_refcnt() != 1 || self.buffer.get_refcnt() != 2 {
            return;
        }
        if !self.idle.as_made(&self.stream).unwrap_or(false) {
            return;
        }
        // Until the next request, the buffer holds no request's sink (nor,
        // through it, the request's backend).
        *LogBuffer::sink_of(&self.buffer).lock() = expired_sink();
        let _ = self.idle.streams.append((self.stream, self.buffer));
    }
}

/// The sink of an idle request buffer: expired, so that anything written
/// to it is refused as after a request.
fn expired_sink() -> Arc<LogSink> {
    static EXPIRED: std::sync::OnceLock<Arc<LogSink>> = std::sync::OnceLock::new();
    EXPIRED
        .get_or_init(|| {
            let sink = LogSink::new(Target::Process, Level::Error);
            sink.expired.store(true, Ordering::Release);
            sink
        })
        .clone()
}

/// `sys.stdout` or `sys.stderr` (`name` "<stdout>" / "<stderr>").
pub fn process_stream<'py>(py: Python<'py>, name: &'static str) -> PyResult<Bound<'py, PyAny>> {
    let buffer = LogBuffer {
        sink: Mutex::new(LogSink::new(Target::Process, Level::Error)),
        follows_request: true,
        name,
    };
    let utf8 = PyString::new(py, "utf-8").into_any();
    let replace = PyString::new(py, "replace").into_any();
    text_stream(py, Bound::new(py, buffer)?, &utf8, &replace)
}
