//! The one edge to the CPython C-API: starting the interpreter in an Apache
//! child and the GIL policy. Python never starts in the Apache parent.

use pyo3::ffi;
use pyo3::prelude::*;
use std::ffi::CString;
use std::path::Path;

/// What a process needs to bring Python up: the WSGIPython* directives,
/// with a daemon group's python-home / python-path taking precedence.
#[derive(Debug, Default, Clone)]
pub struct InitSettings {
    /// WSGIPythonHome: a prefix, or the root of a virtualenv.
    pub home: Option<String>,
    /// WSGIPythonPath entries, added with site.addsitedir.
    pub path: Vec<String>,
}

impl InitSettings {
    /// Settings for an Apache child (embedded mode).
    pub fn from_config(global: &crate::config::PythonSettings) -> InitSettings {
        InitSettings { home: global.home.clone(), path: global.path.clone() }
    }

    /// Settings for a daemon process of a group: its options override the
    /// server-wide directives where given.
    pub fn for_daemon(global: &crate::config::PythonSettings, group: &crate::config::DaemonOptions) -> InitSettings {
        let mut s = InitSettings::from_config(global);
        if let Some(home) = &group.python_home {
            s.home = Some(home.clone());
        }
        if !group.python_path.is_empty() {
            s.path = group.python_path.clone();
        }
        s
    }
}

#[derive(Debug)]
pub struct InitError(pub String);

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Returns the Python status as an error when it is one.
fn status(what: &str, st: ffi::PyStatus) -> Result<(), InitError> {
    // SAFETY: PyStatus_Exception only inspects the struct.
    if unsafe { ffi::PyStatus_Exception(st) } != 0 {
        let msg = if st.err_msg.is_null() {
            "unknown error".to_string()
        } else {
            // SAFETY: err_msg is a static C string set by CPython.
            unsafe { std::ffi::CStr::from_ptr(st.err_msg) }
                .to_string_lossy()
                .into_owned()
        };
        return Err(InitError(format!("{what}: {msg}")));
    }
    Ok(())
}

pub fn is_initialized() -> bool {
    // SAFETY: may be called at any time.
    unsafe { ffi::Py_IsInitialized() != 0 }
}

/// Starts the main interpreter in this process and releases the GIL so
/// request threads can take it. Idempotent.
pub fn initialize(settings: &InitSettings) -> Result<(), InitError> {
    if is_initialized() {
        return Ok(());
    }
    // SAFETY: PyConfig is a plain C struct that PyConfig_InitPythonConfig fully
    // initialises before use; we clear it on every path after that.
    unsafe {
        let mut config: ffi::PyConfig = std::mem::zeroed();
        ffi::PyConfig_InitPythonConfig(&mut config);
        // Apache owns the process: no signal handlers of Python's own, and
        // no command line or environment-derived argv.
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        let result = (|| {
            if let Some(home) = &settings.home {
                let home_path = Path::new(home);
                // A virtualenv has no stdlib of its own: point Python at the
                // venv's interpreter so site.py finds pyvenv.cfg, as mod_wsgi does.
                let cfg: *mut ffi::PyConfig = &mut config;
                let (field, value) = if home_path.join("pyvenv.cfg").exists() {
                    (
                        &raw mut (*cfg).executable,
                        home_path.join("bin/python").to_string_lossy().into_owned(),
                    )
                } else {
                    (&raw mut (*cfg).home, home.clone())
                };
                let c = CString::new(value)
                    .map_err(|_| InitError("WSGIPythonHome contains NUL".into()))?;
                status(
                    "setting python home",
                    ffi::PyConfig_SetBytesString(cfg, field, c.as_ptr()),
                )?;
            }
            status("initializing Python", ffi::Py_InitializeFromConfig(&config))
        })();
        ffi::PyConfig_Clear(&mut config);
        result?;
        // The main thread's state is parked; every request thread attaches
        // its own through the GIL-state API.
        ffi::PyEval_SaveThread();
    }
    if !settings.path.is_empty() {
        pyo3::Python::with_gil(|py| -> pyo3::PyResult<()> {
            let site = py.import("site")?;
            for dir in &settings.path {
                site.call_method1("addsitedir", (dir,))?;
            }
            Ok(())
        })
        .map_err(|e| InitError(format!("WSGIPythonPath: {e}")))?;
    }
    Ok(())
}
