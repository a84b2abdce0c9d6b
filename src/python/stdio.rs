//! What Python's process-wide I/O and signals become inside Apache:
//! sys.stdout and sys.stderr write lines to Apache's error log at error
//! level (that of the request the thread is serving, else the main
//! server's; `wsgi::errors`), or refuse with WSGIRestrictStdout; sys.stdin
//! refuses with WSGIRestrictStdin; signal.signal() is ignored with a
//! warning under WSGIRestrictSignal.

use super::InitSettings;
use crate::apache::log::Level;
use crate::wsgi::errors::{log_line, process_stream};
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyCFunction;

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
    } else if !settings.keep_process_stdout {
        sys.setattr("stdout", process_stream(py, "<stdout>")?)?;
    }
    sys.setattr("stderr", process_stream(py, "<stderr>")?)?;
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
