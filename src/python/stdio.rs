//! What Python's process-wide I/O and signals become inside Apache:
//! sys.stdout (info) / sys.stderr (error) write lines to Apache's error log
//! (that of the request the thread is serving, else the main server's), or
//! refuse with WSGIRestrictStdout; sys.stdin refuses with WSGIRestrictStdin;
//! signal.signal() is ignored with a warning under WSGIRestrictSignal.

use super::InitSettings;
use crate::apache::ffi;
use crate::apache::log::{self, Level};
use crate::wsgi::Backend;
use parking_lot::Mutex;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyCFunction;
use std::cell::RefCell;
use std::sync::Arc;

unsafe extern "C" {
    /// httpd's main server record (AP_DECLARE_DATA in http_main.h).
    static ap_server_conf: *mut ffi::server_rec;
}

/// The main server, whose error log process-wide Python output goes to.
/// Null before Apache has read its configuration (never the case once
/// Python runs: Python only starts in children and daemon processes).
fn main_server() -> Option<*const ffi::server_rec> {
    // SAFETY: a plain read of a pointer httpd sets while reading its
    // configuration in the parent, before forking the processes Python runs
    // in; it is not written again in those processes.
    let s = unsafe { ap_server_conf };
    (!s.is_null()).then_some(s as *const _)
}

thread_local! {
    /// The request this thread is serving, if any: process-wide output
    /// written while it runs goes to its error log (its virtual host's,
    /// tagged with the client), like wsgi.errors.
    static REQUEST: RefCell<Option<Arc<dyn Backend>>> = const { RefCell::new(None) };
}

/// Routes this thread's sys.stdout / sys.stderr lines to `backend` until
/// the guard is dropped.
pub fn route_to_request(backend: Arc<dyn Backend>) -> RequestRoute {
    RequestRoute(REQUEST.with(|r| r.replace(Some(backend))))
}

/// Restores the previous routing when dropped.
pub struct RequestRoute(Option<Arc<dyn Backend>>);

impl Drop for RequestRoute {
    fn drop(&mut self) {
        let previous = self.0.take();
        let _ = REQUEST.try_with(|r| r.replace(previous));
    }
}

/// Logs one line where this thread's Python output goes (the request's
/// error log, else the main server's).
pub(crate) fn log_line(level: Level, text: &str) {
    let request = REQUEST.try_with(|r| r.borrow().clone()).ok().flatten();
    match request {
        Some(backend) => backend.log(level, text),
        // A NULL server only passes warnings and worse; use the main server
        // so LogLevel (and wsgi:info) applies as configured.
        None => log::server(main_server(), level, text),
    }
}

/// sys.stdout / sys.stderr: text written is logged one line at a time.
#[pyclass(module = "mod_wsgi")]
pub struct LogStream {
    level: Level,
    name: &'static str,
    pending: Mutex<String>,
}

#[pymethods]
impl LogStream {
    fn write(&self, text: &str) -> usize {
        let mut pending = self.pending.lock();
        pending.push_str(text);
        while let Some(pos) = pending.find('\n') {
            let line: String = pending.drain(..=pos).collect();
            log_line(self.level, line.trim_end_matches(['\n', '\r']));
        }
        text.chars().count()
    }

    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(&line?.extract::<String>()?);
        }
        Ok(())
    }

    fn flush(&self) {
        let rest = std::mem::take(&mut *self.pending.lock());
        if !rest.is_empty() {
            log_line(self.level, &rest);
        }
    }

    fn isatty(&self) -> bool {
        false
    }
    fn readable(&self) -> bool {
        false
    }
    fn writable(&self) -> bool {
        true
    }
    fn seekable(&self) -> bool {
        false
    }
    fn close(&self) {
        self.flush()
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
        "backslashreplace"
    }
    #[getter]
    fn name(&self) -> String {
        format!("<{} (Apache error log)>", self.name)
    }
    #[getter]
    fn line_buffering(&self) -> bool {
        true
    }
}

/// sys.stdin / sys.stdout under WSGIRestrictStdin / WSGIRestrictStdout:
/// every use raises, naming the stream, as mod_wsgi does.
#[pyclass(module = "mod_wsgi")]
pub struct Restricted {
    name: &'static str,
}

#[pymethods]
impl Restricted {
    fn __getattr__(&self, _attr: &str) -> PyResult<PyObject> {
        Err(PyOSError::new_err(format!(
            "{} access restricted by mod_wsgi",
            self.name
        )))
    }
}

/// signal.signal() under WSGIRestrictSignal: Apache owns this process's
/// signals, so the handler is not installed; one warning names the signal.
fn ignored_signal(args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<PyObject> {
    let py = args.py();
    let signum = args.get_item(0).ok();
    let name = signum
        .as_ref()
        .and_then(|n| {
            py.import("signal")
                .and_then(|m| m.getattr("Signals")?.call1((n,))?.getattr("name"))
                .and_then(|n| n.extract::<String>())
                .ok()
        })
        .unwrap_or_else(|| "unknown signal".into());
    let number = signum.map(|n| n.to_string()).unwrap_or_default();
    log_line(
        Level::Warning,
        &format!(
            "signal.signal({name}) from the application ignored in pid {}: Apache owns signal handling in this process; handler for signal {number} not installed (WSGIRestrictSignal Off allows it)",
            std::process::id()
        ),
    );
    Ok(py.None())
}

/// Puts the replacements in place; called once, right after Python starts.
pub fn install(py: Python<'_>, settings: &InitSettings) -> PyResult<()> {
    let sys = py.import("sys")?;
    if settings.restrict_stdin {
        sys.setattr("stdin", Restricted { name: "sys.stdin" })?;
    }
    if settings.restrict_stdout {
        sys.setattr("stdout", Restricted { name: "sys.stdout" })?;
    } else {
        sys.setattr(
            "stdout",
            LogStream {
                level: Level::Info,
                name: "stdout",
                pending: Mutex::new(String::new()),
            },
        )?;
    }
    sys.setattr(
        "stderr",
        LogStream {
            level: Level::Error,
            name: "stderr",
            pending: Mutex::new(String::new()),
        },
    )?;
    if settings.restrict_signal {
        let intercept = PyCFunction::new_closure(
            py,
            Some(c"signal"),
            Some(c"signal(signalnum, handler): ignored in Apache (WSGIRestrictSignal On)"),
            |args, _kwargs| ignored_signal(args),
        )?;
        py.import("signal")?.setattr("signal", intercept)?;
    }
    Ok(())
}
