//! The `mod_wsgi` Python module applications can import: where they run
//! (process group, application group, process and thread limits), the
//! version, and process metrics. Registered in sys.modules when Python
//! starts; daemon mode sets its own process facts with [`set_process_info`].
//!
//! As with C mod_wsgi, a `mod_wsgi` *package* importable in the interpreter
//! (the companion package of the PyPI `mod-wsgi` distribution, with
//! `mod_wsgi.express`, `mod_wsgi.server`, ...) lends its `__path__` to the
//! built-in module, so its subpackages import while everything else
//! (`mod_wsgi.version`, ...) stays ours.

use crate::apache::log::Level;
use parking_lot::Mutex;
use pyo3::exceptions::PyModuleNotFoundError;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyModule};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where this process serves, as `mod_wsgi.*` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// '' in embedded mode, the WSGIDaemonProcess name in a daemon process.
    pub process_group: String,
    /// Request threads of one process.
    pub threads: usize,
    /// Processes serving the same applications at most.
    pub processes: usize,
}

/// Set by daemon mode before or after Python starts; None = embedded mode,
/// whose facts come from the MPM.
static PROCESS_INFO: Mutex<Option<ProcessInfo>> = Mutex::new(None);
static MODULE: GILOnceCell<Py<PyModule>> = GILOnceCell::new();
/// When Python started in this process (seconds since the epoch).
static STARTED: Mutex<f64> = Mutex::new(0.0);

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn current_info() -> ProcessInfo {
    if let Some(info) = PROCESS_INFO.lock().clone() {
        return info;
    }
    let mpm = crate::apache::mpm_info();
    ProcessInfo {
        process_group: String::new(),
        threads: mpm.max_threads.max(1) as usize,
        processes: mpm.max_daemons.max(1) as usize,
    }
}

fn apply(module: &Bound<'_, PyModule>, info: &ProcessInfo) -> PyResult<()> {
    module.setattr("process_group", &info.process_group)?;
    module.setattr("maximum_processes", info.processes)?;
    module.setattr("threads_per_process", info.threads)?;
    Ok(())
}

/// Daemon mode: this process belongs to `process_group`, runs `threads`
/// request threads, and its group has `processes` processes. Call it in
/// the daemon process, before or after `python::initialize`.
pub fn set_process_info(process_group: &str, threads: usize, processes: usize) {
    let info = ProcessInfo {
        process_group: process_group.to_string(),
        threads,
        processes,
    };
    *PROCESS_INFO.lock() = Some(info.clone());
    if crate::python::is_initialized() {
        Python::with_gil(|py| {
            if let Some(module) = MODULE.get(py) {
                let _ = apply(module.bind(py), &info);
            }
        });
    }
}

/// Whether this process is a daemon process (else an Apache child).
pub fn in_daemon_process() -> bool {
    PROCESS_INFO.lock().is_some()
}

/// The daemon process group this process belongs to, if it is one.
pub fn daemon_group() -> Option<String> {
    PROCESS_INFO
        .lock()
        .as_ref()
        .map(|i| i.process_group.clone())
}

/// Request threads of this process at most (mod_wsgi.threads_per_process).
pub fn request_threads_maximum() -> usize {
    current_info().threads
}

/// When Python started in this process (seconds since the epoch).
pub fn process_started() -> f64 {
    *STARTED.lock()
}

/// How log lines name an interpreter.
fn interpreter_label(application_group: &str) -> String {
    if application_group.is_empty() {
        "the main interpreter".to_string()
    } else {
        format!("the sub-interpreter of application group '{application_group}'")
    }
}

/// The `__path__` of the companion `mod_wsgi` package, imported from
/// sys.path (WSGIPythonPath / python-path included) before the built-in
/// module takes its name. No such package: None, silently. A package that
/// raises while importing: None, with one line naming the cause and then
/// the traceback in the error log; the interpreter goes on without it.
fn companion_path<'py>(py: Python<'py>, application_group: &str) -> Option<Bound<'py, PyAny>> {
    match py.import("mod_wsgi") {
        // A plain module has no __path__: nothing to lend.
        Ok(package) => {
            let path = package.getattr("__path__").ok()?;
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                super::errors::log_line(
                    Level::Info,
                    &format!(
                        "mod_wsgi companion package found (__path__ {}): its subpackages import through the built-in mod_wsgi module (pid {})",
                        path.str().map(|s| s.to_string()).unwrap_or_default(),
                        std::process::id()
                    ),
                );
            });
            Some(path)
        }
        Err(e) if is_absent(py, &e) => None,
        Err(e) => {
            let traceback = super::response::format_exception(py, &e);
            let cause = traceback.lines().last().unwrap_or("").to_string();
            super::errors::log_line(
                Level::Error,
                &format!(
                    "importing the mod_wsgi companion package failed in {} (pid {}): {cause}; the built-in mod_wsgi module is used without it",
                    interpreter_label(application_group),
                    std::process::id()
                ),
            );
            for line in traceback.lines() {
                super::errors::log_line(Level::Error, line);
            }
            None
        }
    }
}

/// Whether an import error says the `mod_wsgi` package itself is not there
/// (and not that the package failed on a module it imports).
fn is_absent(py: Python<'_>, e: &PyErr) -> bool {
    e.is_instance_of::<PyModuleNotFoundError>(py)
        && e.value(py)
            .getattr("name")
            .and_then(|n| n.extract::<String>())
            .is_ok_and(|n| n == "mod_wsgi")
}

/// Creates the module and registers it in sys.modules of the current
/// interpreter; called once in each interpreter when it starts (after
/// WSGIPythonPath is on sys.path, where the companion package may be): the
/// main one (application group '') and each sub-interpreter, named after
/// its application group.
pub fn install(py: Python<'_>, application_group: &str) -> PyResult<()> {
    {
        let mut started = STARTED.lock();
        if *started == 0.0 {
            *started = now();
        }
    }
    let module = PyModule::new(py, "mod_wsgi")?;
    // Safe without the GIL (its state is Rust's, behind locks): it must
    // never be a reason for a free-threaded build to enable the GIL.
    module.gil_used(false)?;
    module.setattr("version", crate::version_tuple())?;
    module.setattr("application_group", application_group)?;
    apply(&module, &current_info())?;
    super::metrics::install(&module)?;
    super::events::install(&module, application_group)?;
    module.add_class::<super::file_wrapper::FileWrapper>()?;
    // LogHandler subclasses logging.Handler: made on first use, so that
    // an interpreter whose application never asks for it does not import
    // logging (and threading) while it starts.
    module.add_function(wrap_pyfunction!(module_getattr, &module)?)?;
    // Raised inside a request that runs past request-timeout when
    // interrupt-timeout is set (daemon mode), as mod_wsgi 6 does. A
    // BaseException, as mod_wsgi's: `except Exception:` in the application
    // does not swallow it.
    let base = py.get_type::<pyo3::exceptions::PyBaseException>();
    let namespace = pyo3::types::PyDict::new(py);
    namespace.set_item("__module__", "mod_wsgi")?;
    namespace.set_item(
        "__doc__",
        "Raised when a daemon request exceeds request-timeout with interrupt-timeout set; \
         re-raise it so the request ends with 504.",
    )?;
    let request_timeout =
        py.import("builtins")?
            .getattr("type")?
            .call1(("RequestTimeout", (base,), namespace))?;
    module.setattr("RequestTimeout", request_timeout)?;
    if let Some(path) = companion_path(py, application_group) {
        module.setattr("__path__", path)?;
    }
    py.import("sys")?
        .getattr("modules")?
        .set_item("mod_wsgi", &module)?;
    install_apache_module(py)?;
    // The main interpreter's module (the first installed), which
    // set_process_info updates; sub-interpreters start from current_info().
    let _ = MODULE.set(py, module.unbind());
    Ok(())
}

/// mod_wsgi.LogHandler: a logging.Handler writing each record to Apache's
/// error log (the request's when the thread serves one), one line per line
/// of the formatted record, at the level matching the record's:
/// CRITICAL crit, ERROR error, WARNING warning, INFO info, anything lower
/// debug (levels in between round down). LogLevel decides what is kept.
fn log_handler(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let namespace = PyDict::new(py);
    namespace.set_item("_log_record", wrap_pyfunction!(log_record, py)?)?;
    py.run(
        cr#"
import logging

class LogHandler(logging.Handler):
    """Writes log records to the Apache error log."""

    def emit(self, record):
        try:
            message = self.format(record)
        except Exception:
            self.handleError(record)
            return
        _log_record(record.levelno, message)

LogHandler.__module__ = "mod_wsgi"
"#,
        Some(&namespace),
        None,
    )?;
    namespace
        .get_item("LogHandler")?
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("LogHandler was not defined"))
}

/// The module's `__getattr__` (PEP 562), for the names made on first use.
#[pyfunction]
#[pyo3(name = "__getattr__")]
fn module_getattr<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    if name == "LogHandler" {
        let handler = log_handler(py)?;
        py.import("sys")?
            .getattr("modules")?
            .get_item("mod_wsgi")?
            .setattr("LogHandler", &handler)?;
        return Ok(handler);
    }
    Err(pyo3::exceptions::PyAttributeError::new_err(format!(
        "module 'mod_wsgi' has no attribute '{name}'"
    )))
}

/// Logs a formatted record at the Apache level of its Python level.
#[pyfunction]
fn log_record(levelno: i64, message: &str) {
    let level = match levelno {
        50.. => Level::Crit,
        40..=49 => Level::Error,
        30..=39 => Level::Warning,
        20..=29 => Level::Info,
        _ => Level::Debug,
    };
    for line in message.split('\n') {
        super::errors::log_line(level, line);
    }
}

/// The `apache` module of mod_wsgi: Apache's version (of the headers this
/// module was built with), the MPM's process and thread limits, the
/// server's description, MPM name and build date. In an Apache child an
/// importable `apache` module is used and these names added to it, as
/// mod_wsgi does; a daemon process always gets a module of its own.
fn install_apache_module(py: Python<'_>) -> PyResult<()> {
    use crate::apache::server_facts;
    let existing = if in_daemon_process() {
        None
    } else {
        match py.import("apache") {
            Ok(m) => Some(m.into_any()),
            Err(e) if e.is_instance_of::<PyModuleNotFoundError>(py) => None,
            Err(e) => {
                let traceback = super::response::format_exception(py, &e);
                for line in traceback.lines() {
                    super::errors::log_line(Level::Error, line);
                }
                None
            }
        }
    };
    let module = match existing {
        Some(m) => m,
        None => {
            let m = PyModule::new(py, "apache")?;
            m.gil_used(false)?;
            py.import("sys")?
                .getattr("modules")?
                .set_item("apache", &m)?;
            m.into_any()
        }
    };
    let mpm = crate::apache::mpm_info();
    module.setattr("version", server_facts::server_version_built())?;
    module.setattr("maximum_processes", mpm.max_daemons.max(1))?;
    module.setattr("threads_per_process", mpm.max_threads.max(1))?;
    module.setattr("description", server_facts::server_description())?;
    module.setattr("mpm_name", server_facts::mpm_name())?;
    module.setattr("build_date", server_facts::build_date())?;
    Ok(())
}
