//! Loading WSGI script files as Python modules, once per interpreter
//! (application group) of the process, and again, with WSGIScriptReloading
//! On, when the file changes or the script's `reload_required()` asks, as
//! mod_wsgi 6 does (wsgi_interp.c: wsgi_load_source, wsgi_reload_required).

use super::errors::log_line;
use crate::wsgi::response::{PythonException, interpreter_context};
use crate::wsgi::{Level, WsgiError};
use pyo3::exceptions::PySystemExit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};
use std::sync::atomic::{AtomicBool, Ordering};

/// Key, in the current interpreter's own dict, of the script cache:
/// path -> module, the module's `__mtime__` saying which version of the
/// file it is. Each interpreter has its own, which ends with it.
/// It is a Python dict so that Python, not a Rust lock, guards it: the GIL,
/// or on a free-threaded build the dict's own lock (each dict operation is
/// atomic there too); executing a script can release the GIL, and a Rust
/// mutex held across that would deadlock against another request thread.
const CACHE_KEY: &str = "mod_wsgi_rs.scripts";

/// Key, in the same dict, of the lock held while a script is checked and
/// (re)loaded, so that threads arriving together load it once (mod_wsgi's
/// module lock). A Python lock: waiting for it releases the GIL.
const LOAD_LOCK_KEY: &str = "mod_wsgi_rs.script_load_lock";

fn cache(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    Ok(
        crate::python::interpreter_value(py, CACHE_KEY, || Ok(PyDict::new(py).into_any()))?
            .downcast_into::<PyDict>()?,
    )
}

/// WSGICaseSensitivity of this process (server-wide; set when the process
/// starts): Off takes script paths that differ only in case as one file.
static CASE_SENSITIVE: AtomicBool = AtomicBool::new(true);

pub fn set_case_sensitive(on: bool) {
    CASE_SENSITIVE.store(on, Ordering::Relaxed);
}

pub fn case_sensitive() -> bool {
    CASE_SENSITIVE.load(Ordering::Relaxed)
}

/// A script's identity: its path, lower-cased where the file system is
/// taken as case-insensitive (as mod_wsgi names the module).
fn script_key(path: &str) -> std::borrow::Cow<'_, str> {
    if case_sensitive() {
        path.into()
    } else {
        path.to_lowercase().into()
    }
}

/// The module name mod_wsgi gives a script: `_mod_wsgi_` and the MD5 of
/// its path (see [`script_key`]), stable per path and never clashing with
/// a real package. Computed in Rust: importing Python's hashlib would map
/// OpenSSL's libcrypto into every process (about 4 MiB of RSS).
fn module_name(path: &str) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(script_key(path).as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("_mod_wsgi_{hex}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn module_name_is_md5_of_the_path_as_mod_wsgi_does() {
        // md5("/srv/app.wsgi"), checked with Python's hashlib.
        assert_eq!(
            super::module_name("/srv/app.wsgi"),
            format!("_mod_wsgi_{}", "295f8766fc4bd953ab4cd252da58a6a3")
        );
    }
}

/// A loaded script module, and whether its `reload_required()` made it
/// load again (daemon mode then restarts the process, as mod_wsgi).
pub struct Loaded<'py> {
    pub module: Bound<'py, PyModule>,
    pub reload_requested: bool,
}

/// Why a cached module is not used as it is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stale {
    /// Its `__mtime__` is not the file's modification time.
    Modified,
    /// Its `reload_required(resource)` answered true.
    Requested,
}

/// Returns the script's module, (re)loading it when needed: for scripts
/// that are not a request's application (access, authentication, dispatch
/// scripts), whose `reload_required()` mod_wsgi does not consult.
pub fn load<'py>(
    py: Python<'py>,
    path: &str,
    mtime: i64,
    reloading: bool,
) -> Result<Bound<'py, PyModule>, WsgiError> {
    load_script(py, path, mtime, reloading, None).map(|loaded| loaded.module)
}

/// Returns the module of a request's script, (re)loading it when needed.
/// `mtime` is the file's modification time as the caller saw it (APR's
/// microseconds); `resource` the file Apache matched, passed to the
/// script's `reload_required()`.
pub fn load_for_request<'py>(
    py: Python<'py>,
    path: &str,
    mtime: i64,
    reloading: bool,
    resource: &str,
) -> Result<Loaded<'py>, WsgiError> {
    load_script(py, path, mtime, reloading, Some(resource))
}

fn load_script<'py>(
    py: Python<'py>,
    path: &str,
    mtime: i64,
    reloading: bool,
    resource: Option<&str>,
) -> Result<Loaded<'py>, WsgiError> {
    let internal = |e: PyErr| {
        WsgiError::Script(format!(
            "cannot load WSGI script '{path}': {}",
            crate::wsgi::response::format_exception(py, &e)
        ))
    };
    let cache = cache(py).map_err(internal)?;
    let key = script_key(path);
    let cached = cached_module(&cache, &key);
    let stale = match &cached {
        Some(module) if !reloading => return Ok(fresh(module)),
        Some(module) => match staleness(py, module, path, mtime, resource) {
            None => return Ok(fresh(module)),
            stale => stale,
        },
        None => None,
    };
    let lock = LoadLock::acquire(py).map_err(internal)?;
    // Another thread may have (re)loaded it while this one waited.
    if let Some(now) = cached_module(&cache, &key)
        && cached.as_ref().is_none_or(|before| !before.is(&now))
        && (!reloading || module_mtime(&now) == Some(mtime))
    {
        return Ok(fresh(&now));
    }
    let context = this_interpreter(py);
    let verb = if cached.is_some() {
        "Reloading"
    } else {
        "Loading"
    };
    log_line(
        Level::Info,
        &format!("{verb} WSGI script '{path}' into {context}."),
    );
    let module = exec_script(py, path, mtime, &context)?;
    let _ = cache.set_item(&*key, &module);
    drop(lock);
    Ok(Loaded {
        module,
        reload_requested: stale == Some(Stale::Requested),
    })
}

fn fresh<'py>(module: &Bound<'py, PyModule>) -> Loaded<'py> {
    Loaded {
        module: module.clone(),
        reload_requested: false,
    }
}

fn cached_module<'py>(cache: &Bound<'py, PyDict>, path: &str) -> Option<Bound<'py, PyModule>> {
    cache
        .get_item(path)
        .ok()
        .flatten()
        .and_then(|m| m.downcast_into::<PyModule>().ok())
}

/// The module's `__mtime__`, None when it has none usable.
fn module_mtime(module: &Bound<'_, PyModule>) -> Option<i64> {
    module.getattr("__mtime__").ok()?.extract().ok()
}

/// Whether a loaded script must load again, as wsgi_reload_required
/// decides: its `__mtime__` (missing, or not the file's) first, then, for
/// a request, its own `reload_required(resource)`. That function raising
/// is logged and keeps the module (a restart per request otherwise).
fn staleness(
    py: Python<'_>,
    module: &Bound<'_, PyModule>,
    path: &str,
    mtime: i64,
    resource: Option<&str>,
) -> Option<Stale> {
    if module_mtime(module) != Some(mtime) {
        return Some(Stale::Modified);
    }
    let resource = resource?;
    let ask = module.dict().get_item("reload_required").ok().flatten()?;
    match ask.call1((resource,)).and_then(|answer| answer.is_truthy()) {
        Ok(true) => Some(Stale::Requested),
        Ok(false) => None,
        Err(e) => {
            let exception = PythonException::capture(py, &e);
            log_line(
                Level::Error,
                &exception.headline(Some(resource), path, &this_interpreter(py)),
            );
            for line in exception.traceback_lines() {
                log_line(Level::Error, line);
            }
            None
        }
    }
}

/// The interpreter the caller runs in, in mod_wsgi's words, from what
/// this interpreter's `mod_wsgi` module says about it.
fn this_interpreter(py: Python<'_>) -> String {
    let fact = |name: &str| -> String {
        py.import("mod_wsgi")
            .and_then(|m| m.getattr(name))
            .and_then(|v| v.extract())
            .unwrap_or_default()
    };
    interpreter_context(&fact("application_group"), &fact("process_group"))
}

/// Held while a script is checked and (re)loaded; released when dropped.
struct LoadLock<'py>(Bound<'py, PyAny>);

impl<'py> LoadLock<'py> {
    fn acquire(py: Python<'py>) -> PyResult<LoadLock<'py>> {
        let lock = crate::python::interpreter_value(py, LOAD_LOCK_KEY, || {
            py.import("_thread")?.call_method0("allocate_lock")
        })?;
        lock.call_method0("acquire")?;
        Ok(LoadLock(lock))
    }
}

impl Drop for LoadLock<'_> {
    fn drop(&mut self) {
        let _ = self.0.call_method0("release");
    }
}

/// Reads, compiles and executes the script as a fresh module; on failure
/// the lines mod_wsgi logs for it (wsgi_load_source).
fn exec_script<'py>(
    py: Python<'py>,
    path: &str,
    mtime: i64,
    context: &str,
) -> Result<Bound<'py, PyModule>, WsgiError> {
    let with_exception = |headline: String, e: &PyErr| {
        let exception = PythonException::capture(py, e);
        let mut lines = vec![headline, exception.headline(None, path, context)];
        lines.extend(exception.traceback_lines().map(str::to_string));
        WsgiError::Script(lines.join("\n"))
    };
    let name = module_name(path);
    let builtins = py
        .import("builtins")
        .map_err(|e| with_exception(format!("cannot load WSGI script '{path}'"), &e))?;
    let code = std::fs::read(path)
        .map_err(PyErr::from)
        .and_then(|source| builtins.getattr("compile")?.call1((source, path, "exec")))
        .map_err(|e| {
            with_exception(
                format!("WSGI0105: Could not read or compile WSGI script '{path}' for {context}."),
                &e,
            )
        })?;
    let executed = (|| -> PyResult<Bound<'py, PyModule>> {
        let module = PyModule::new(py, &name)?;
        module.setattr("__file__", path)?;
        let modules = py.import("sys")?.getattr("modules")?;
        modules.set_item(&name, &module)?;
        if let Err(e) = builtins.getattr("exec")?.call1((code, module.dict())) {
            let _ = modules.del_item(&name);
            return Err(e);
        }
        Ok(module)
    })();
    let module = executed.map_err(|e| {
        if e.is_instance_of::<PySystemExit>(py) {
            WsgiError::Script(format!(
                "{SYSTEM_EXIT}: SystemExit exception raised when doing exec of Python script file '{path}'."
            ))
        } else {
            with_exception(
                format!("WSGI0109: Unable to execute Python script file '{path}'."),
                &e,
            )
        }
    })?;
    // Which version of the file this is, as mod_wsgi records it (APR's
    // microseconds), for the reload check and for the application.
    let _ = module.setattr("__mtime__", mtime);
    Ok(module)
}

/// mod_wsgi's code for a script that raised SystemExit while it was
/// executed: how a service script ends.
const SYSTEM_EXIT: &str = "WSGI0107";

/// Why a WSGIImportScript did not load.
#[derive(Debug)]
pub enum PreloadError {
    /// It raised SystemExit (a service script told to stop); mod_wsgi's
    /// message.
    SystemExit(String),
    /// Anything else: the message for the error log.
    Failed(String),
}

impl std::fmt::Display for PreloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PreloadError::SystemExit(m) | PreloadError::Failed(m) => f.write_str(m),
        }
    }
}

/// WSGIImportScript: loads `path` into the interpreter of `application_group`
/// ("%{GLOBAL}" or "" for the main one) when a process starts, so the first
/// request finds it loaded. A service script (a daemon group with
/// threads=0) runs here until it ends.
pub fn preload(path: &str, application_group: &str) -> Result<(), PreloadError> {
    let group = if application_group == "%{GLOBAL}" {
        ""
    } else {
        application_group
    };
    let mtime = mtime_of(path).unwrap_or(0);
    crate::python::with_interpreter(group, |py| {
        load(py, path, mtime, true)
            .map(|_| ())
            .map_err(|e| match e {
                WsgiError::Script(m) if m.starts_with(SYSTEM_EXIT) => PreloadError::SystemExit(m),
                WsgiError::Script(m) | WsgiError::Application(m) => PreloadError::Failed(m),
                WsgiError::ClientGone => PreloadError::Failed("interrupted".to_string()),
            })
    })
    .map_err(PreloadError::Failed)?
}

/// In a daemon process that runs service scripts: SIGINT raises
/// SystemExit in the main interpreter's main thread, as in mod_wsgi, so
/// that a service script running there ends (its `finally` and `except
/// SystemExit` run) when the process is told to stop. Call it on the
/// thread that started Python, before the scripts run; the original
/// `_signal.signal` is used, so WSGIRestrictSignal does not stand in the way.
pub fn arm_service_stop() -> Result<(), String> {
    crate::python::with_interpreter("", |py| {
        py.run(SERVICE_STOP, None, None)
            .map_err(|e| crate::wsgi::response::format_exception(py, &e))
    })?
}

/// The handler [`arm_service_stop`] installs.
const SERVICE_STOP: &std::ffi::CStr = cr#"
import _signal

def _mod_wsgi_service_stop(signum, frame):
    raise SystemExit(0)

_signal.signal(_signal.SIGINT, _mod_wsgi_service_stop)
"#;

/// Modification time of a script in microseconds (APR's unit, as the
/// request's finfo gives it), for the reload check.
pub fn mtime_of(path: &str) -> Result<i64, String> {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("cannot stat the script: {e}"))?;
    Ok(modified
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64))
}
