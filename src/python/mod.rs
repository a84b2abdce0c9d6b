//! The one edge to the CPython C-API: starting the interpreter in an Apache
//! child (or a daemon process), the start-up settings of the WSGIPython*
//! directives, the GIL policy, application groups (sub-interpreters, see
//! [`interp`]), `os._exit` noting its status in a daemon process
//! (`exit_hook`), and finalizing Python when the process exits.
//! Python never starts in the Apache parent.

pub mod capsule;
mod exit_hook;
pub mod files;
pub mod interp;
pub mod stdio;

pub use interp::{interpreter_value, with_interpreter};

use crate::apache::body_buf::BodyBuf;
use nix::libc;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, Ordering};
use std::time::Duration;

/// What a process needs to bring Python up: the WSGIPython* directives,
/// with a daemon group's python-* options taking precedence.
#[derive(Debug, Default, Clone)]
pub struct InitSettings {
    /// WSGIPythonHome: a prefix, or the root of a virtualenv.
    pub home: Option<String>,
    /// WSGIPythonPath entries, added with site.addsitedir.
    pub path: Vec<String>,
    /// A daemon group's home=: first on sys.path in every interpreter of
    /// its processes, as mod_wsgi puts it (the way a script's directory is
    /// when Python runs it from the command line).
    pub daemon_home: Option<String>,
    /// WSGIPythonOptimize: 0, 1 (-O) or 2 (-OO).
    pub optimize: u8,
    /// WSGIPythonHashSeed: None = random (or PYTHONHASHSEED from the
    /// environment), Some(n) = fixed seed, 0 disabling randomization.
    pub hash_seed: Option<u32>,
    /// WSGIPythonWarnings, one -W filter each.
    pub warnings: Vec<String>,
    /// WSGIPythonEggs / python-eggs=: exported as PYTHON_EGG_CACHE.
    pub eggs: Option<String>,
    /// WSGIDontWriteBytecode On.
    pub dont_write_bytecode: bool,
    /// WSGISwitchInterval / switch-interval=; None keeps Python's 0.005 s.
    pub switch_interval: Option<Duration>,
    /// WSGIDestroyInterpreter: finalize Python (running atexit handlers)
    /// when the process exits.
    pub destroy_interpreter: bool,
    /// WSGIRestrictStdin: sys.stdin raises on any use.
    pub restrict_stdin: bool,
    /// WSGIRestrictStdout: sys.stdout raises on any use; otherwise it writes
    /// to Apache's error log at info level.
    pub restrict_stdout: bool,
    /// Apache runs as one process in the foreground (`httpd -X`): sys.stdout
    /// stays the process's own (the terminal, usually), as mod_wsgi leaves
    /// it there, so that pdb (mod_wsgi-express --enable-debugger) talks to
    /// the user.
    pub keep_process_stdout: bool,
    /// WSGIRestrictSignal: signal.signal() from applications is ignored
    /// (with a warning) instead of replacing Apache's handlers.
    pub restrict_signal: bool,
    /// The daemon process group this process serves ("" in Apache
    /// children), which `<WSGIInterpreterOptions process-group=>` matches.
    pub process_group: String,
    /// The `<WSGIInterpreterOptions>` sections of the configuration.
    pub sections: crate::config::PythonSettings,
    /// WSGIFreeThreading for this process: on a free-threaded build, Python
    /// runs without the GIL (else with it, as PYTHON_GIL=1 would).
    pub free_threading: bool,
}

impl InitSettings {
    /// Settings for an Apache child (embedded mode).
    pub fn from_config(global: &crate::config::PythonSettings) -> InitSettings {
        InitSettings {
            home: global.home.clone(),
            path: global.path.clone(),
            daemon_home: None,
            optimize: global.optimize(),
            hash_seed: match global.hash_seed() {
                crate::config::HashSeed::Random => None,
                crate::config::HashSeed::Value(n) => Some(n),
            },
            warnings: global.warnings.clone(),
            eggs: global.eggs.clone(),
            dont_write_bytecode: global.dont_write_bytecode(),
            switch_interval: global.switch_interval,
            destroy_interpreter: global.destroy_interpreter(),
            restrict_stdin: global.restrict_stdin(),
            restrict_stdout: global.restrict_stdout(),
            keep_process_stdout: crate::apache::one_process(),
            restrict_signal: global.restrict_signal(),
            process_group: String::new(),
            sections: crate::config::PythonSettings {
                interpreter_options: global.interpreter_options.clone(),
                ..Default::default()
            },
            free_threading: global.free_threading_for(""),
        }
    }

    /// The settings of the interpreter `application_group` in this process:
    /// these, with what the `<WSGIInterpreterOptions>` sections matching it
    /// say (their python-path entries added after WSGIPythonPath's).
    pub fn for_interpreter(&self, application_group: &str) -> InitSettings {
        let chosen = self
            .sections
            .interpreter_options_for(&self.process_group, application_group);
        let mut s = self.clone();
        if let Some(more) = chosen.python_path {
            s.path.extend(more);
        }
        if chosen.switch_interval.is_some() {
            s.switch_interval = chosen.switch_interval;
        }
        s.restrict_stdin = chosen.restrict_stdin.unwrap_or(s.restrict_stdin);
        s.restrict_stdout = chosen.restrict_stdout.unwrap_or(s.restrict_stdout);
        s.restrict_signal = chosen.restrict_signal.unwrap_or(s.restrict_signal);
        s
    }

    /// Settings for a daemon process of a group: its options override the
    /// server-wide directives where given.
    pub fn for_daemon(
        global: &crate::config::PythonSettings,
        name: &str,
        group: &crate::config::DaemonOptions,
    ) -> InitSettings {
        let mut s = InitSettings::from_config(global);
        s.process_group = name.to_string();
        s.keep_process_stdout = false;
        s.free_threading = global.free_threading_for(name);
        if let Some(home) = &group.python_home {
            s.home = Some(home.clone());
        }
        if !group.python_path.is_empty() {
            s.path = group.python_path.clone();
        }
        s.daemon_home = group.home.clone();
        if let Some(eggs) = &group.python_eggs {
            s.eggs = Some(eggs.clone());
        }
        if let Some(interval) = group.switch_interval {
            s.switch_interval = Some(interval);
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

/// A NUL-terminated wide string (wchar_t is UTF-32 on the platforms Apache
/// and this module run on).
fn wide(s: &str) -> Vec<libc::wchar_t> {
    s.chars()
        .map(|c| c as libc::wchar_t)
        .chain(std::iter::once(0))
        .collect()
}

/// Whether the module is built against a free-threaded CPython (PEP 703,
/// configured with `--disable-gil`), where WSGIFreeThreading acts.
pub const FREE_THREADED_BUILD: bool = cfg!(Py_GIL_DISABLED);

/// Whether the GIL is enabled in this process: always on a GIL build; on a
/// free-threaded one, as WSGIFreeThreading chose when Python started
/// (fixed for the process: Python is told to neither enable nor disable
/// it later, whatever an extension module declares).
static GIL_ENABLED: AtomicBool = AtomicBool::new(true);

/// Whether request threads take a GIL to run Python in this process.
pub fn gil_enabled() -> bool {
    GIL_ENABLED.load(Ordering::Relaxed)
}

/// The thread state of the thread that initialized Python, parked by
/// PyEval_SaveThread; finalization restores it.
static MAIN_TSTATE: AtomicPtr<ffi::PyThreadState> = AtomicPtr::new(std::ptr::null_mut());
/// Kernel thread id of that thread.
static INIT_TID: AtomicI32 = AtomicI32::new(0);
/// Pid that initialized Python: a process forked by the application must
/// not finalize an interpreter it merely inherited.
static INIT_PID: AtomicI32 = AtomicI32::new(0);
static FINALIZED: AtomicBool = AtomicBool::new(false);

/// Fills the PyConfig from the settings; runs before Python exists.
///
/// # Safety
/// `config` must have been initialised by PyConfig_InitPythonConfig.
unsafe fn apply_config(
    config: *mut ffi::PyConfig,
    settings: &InitSettings,
) -> Result<(), InitError> {
    // SAFETY: `config` is a live, initialised PyConfig (caller contract);
    // every field written here is a plain int or goes through CPython's own
    // setters, which copy the strings we pass.
    unsafe {
        // Apache owns the process: no signal handlers of Python's own, and
        // no command line or environment-derived argv. sys.argv is
        // ['mod_wsgi'], as mod_wsgi sets it, for modules that read argv[0];
        // sub-interpreters copy it from this configuration.
        (*config).install_signal_handlers = 0;
        (*config).parse_argv = 0;
        let argv0 = wide("mod_wsgi");
        status(
            "setting sys.argv",
            ffi::PyWideStringList_Append(&raw mut (*config).argv, argv0.as_ptr()),
        )?;
        (*config).optimization_level = settings.optimize as i32;
        // PyConfig.enable_gil: 0 disables the GIL for good, 1 enables it
        // for good (-1, Python's default, would enable it again as soon as
        // an extension module that does not declare itself free-threading
        // safe is imported, which a process serving requests in parallel
        // must not see happen under it).
        #[cfg(Py_GIL_DISABLED)]
        {
            (*config).enable_gil = if settings.free_threading { 0 } else { 1 };
        }
        if let Some(seed) = settings.hash_seed {
            (*config).use_hash_seed = 1;
            (*config).hash_seed = seed as _;
        }
        if settings.dont_write_bytecode {
            (*config).write_bytecode = 0;
        }
        for filter in &settings.warnings {
            let w = wide(filter);
            status(
                "WSGIPythonWarnings",
                ffi::PyWideStringList_Append(&raw mut (*config).warnoptions, w.as_ptr()),
            )?;
        }
        if let Some(home) = &settings.home {
            let home_path = Path::new(home);
            // A virtualenv has no stdlib of its own: point Python at the
            // venv's interpreter so site.py finds pyvenv.cfg, as mod_wsgi does.
            let (field, value) = if home_path.join("pyvenv.cfg").exists() {
                (
                    &raw mut (*config).executable,
                    home_path.join("bin/python").to_string_lossy().into_owned(),
                )
            } else {
                (&raw mut (*config).home, home.clone())
            };
            let c =
                CString::new(value).map_err(|_| InitError("WSGIPythonHome contains NUL".into()))?;
            status(
                "setting python home",
                ffi::PyConfig_SetBytesString(config, field, c.as_ptr()),
            )?;
        }
    }
    Ok(())
}

/// Starts the main interpreter in this process, applies the start-up
/// settings, and releases the GIL so request threads can take it.
/// Idempotent. With `destroy_interpreter`, Python is finalized when the
/// process exits (see [`finalize`]).
pub fn initialize(settings: &InitSettings) -> Result<(), InitError> {
    if is_initialized() {
        return Ok(());
    }
    // SAFETY: PyConfig is a plain C struct that PyConfig_InitPythonConfig fully
    // initialises before use; we clear it on every path after that.
    unsafe {
        let mut config: ffi::PyConfig = std::mem::zeroed();
        ffi::PyConfig_InitPythonConfig(&mut config);
        let result = apply_config(&mut config, settings)
            .and_then(|()| status("initializing Python", ffi::Py_InitializeFromConfig(&config)));
        ffi::PyConfig_Clear(&mut config);
        result?;
    }
    // Still holding the GIL on the initializing thread: set up the process
    // before any request can run. Importing threading here makes this thread
    // threading's main thread, which finalization expects.
    // The main interpreter is application group '' (%{GLOBAL}).
    let settings = &settings.for_interpreter("");
    let setup = Python::with_gil(|py| -> PyResult<()> {
        py.import("threading")?;
        let sys = py.import("sys")?;
        let gil = !FREE_THREADED_BUILD || sys.call_method0("_is_gil_enabled")?.is_truthy()?;
        GIL_ENABLED.store(gil, Ordering::Relaxed);
        log_gil(settings, gil);
        if let Some(interval) = settings.switch_interval
            && gil
        {
            sys.call_method1("setswitchinterval", (interval.as_secs_f64(),))?;
        }
        if let Some(eggs) = &settings.eggs {
            // os.environ also calls putenv, so C code sees it too.
            py.import("os")?
                .getattr("environ")?
                .set_item("PYTHON_EGG_CACHE", eggs)?;
        }
        stdio::install(py, settings)?;
        exit_hook::install(py)?;
        add_python_path(py, settings)?;
        // The main interpreter is application group '' (%{GLOBAL}); after
        // WSGIPythonPath, where the companion mod_wsgi package may be.
        crate::wsgi::module::install(py, "")?;
        // pyo3 creates a #[pyclass]'s type object once per process, in the
        // interpreter that first uses it, and every interpreter then shares
        // it. Create them here, so they belong to the main interpreter,
        // which outlives all others, and exist before any request thread
        // runs (which, without a GIL, then only reads them).
        py.get_type::<crate::wsgi::input::Input>();
        py.get_type::<crate::wsgi::errors::LogBuffer>();
        py.get_type::<crate::wsgi::start_response::StartResponse>();
        py.get_type::<crate::wsgi::file_wrapper::FileWrapper>();
        py.get_type::<pyo3::panic::PanicException>();
        Ok(())
    });
    interp::remember_settings(settings);
    // SAFETY: this thread holds the GIL since Py_InitializeFromConfig; the
    // main thread state is parked and every request thread attaches its own
    // (see interp).
    let tstate = unsafe { ffi::PyEval_SaveThread() };
    MAIN_TSTATE.store(tstate, Ordering::SeqCst);
    INIT_TID.store(nix::unistd::gettid().as_raw(), Ordering::SeqCst);
    INIT_PID.store(std::process::id() as i32, Ordering::SeqCst);
    if settings.destroy_interpreter {
        // SAFETY: registering a plain extern "C" fn; glibc runs it at exit()
        // (or when this library is unloaded, which never happens in a process
        // where Python was started).
        unsafe { libc::atexit(finalize_at_exit) };
    }
    setup.map_err(|e| InitError(format!("setting up Python: {e}")))
}

/// Says at info level how a free-threaded build runs in this process, and
/// warns of a switch interval that has no GIL to apply to.
fn log_gil(settings: &InitSettings, gil: bool) {
    use crate::apache::log::{Level, server};
    if !FREE_THREADED_BUILD {
        return;
    }
    let pid = std::process::id();
    let line = if gil {
        format!(
            "Python {} is a free-threaded build, but WSGIFreeThreading is Off: the GIL is enabled in pid {pid} (as with PYTHON_GIL=1)",
            crate::PYTHON_VERSION
        )
    } else {
        format!(
            "WSGIFreeThreading On: Python {} runs without the GIL in pid {pid}; request threads run Python in parallel",
            crate::PYTHON_VERSION
        )
    };
    server(None, Level::Info, &line);
    if let (false, Some(interval)) = (gil, settings.switch_interval) {
        server(
            None,
            Level::Warning,
            &format!(
                "WSGISwitchInterval {}s ignored in pid {pid}: free-threading is on, there is no GIL to switch",
                interval.as_secs_f64()
            ),
        );
    }
}

/// sys.path of the interpreter the GIL is held for, as mod_wsgi makes it:
/// WSGIPythonPath / python-path entries through site.addsitedir (so their
/// .pth files are read), then everything that added moved to the front,
/// in order, so those directories win over site-packages; then a daemon
/// group's home= first of all.
pub(crate) fn add_python_path(py: Python<'_>, settings: &InitSettings) -> PyResult<()> {
    use pyo3::types::PyList;
    let sys_path = py
        .import("sys")?
        .getattr("path")?
        .downcast_into::<PyList>()?;
    if !settings.path.is_empty() {
        let before = PyList::new(py, sys_path.iter())?;
        let site = py.import("site")?;
        for dir in &settings.path {
            site.call_method1("addsitedir", (dir,))?;
        }
        let mut added = Vec::new();
        for entry in sys_path.iter().collect::<Vec<_>>() {
            if !before.contains(&entry)? {
                let at = sys_path.index(&entry)?;
                sys_path.del_item(at)?;
                added.push(entry);
            }
        }
        for (at, entry) in added.into_iter().enumerate() {
            sys_path.insert(at, entry)?;
        }
    }
    if let Some(home) = &settings.daemon_home {
        sys_path.insert(0, home)?;
    }
    Ok(())
}

extern "C" fn finalize_at_exit() {
    // Never unwind into libc.
    let _ = std::panic::catch_unwind(finalize);
}

/// Module `name` of the current interpreter: from sys.modules when it is
/// there (a dictionary lookup), else imported. `py.import` runs the whole
/// import protocol even for a loaded module (about 10,000 instructions:
/// `__import__`, the module's `__spec__` checks), which the request path
/// paid twice per request for `io` and `mod_wsgi`.
pub fn loaded_module<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held (`py`); PyImport_GetModuleDict returns the
    // current interpreter's sys.modules as a borrowed reference (never NULL
    // once the interpreter runs), made owned here.
    let modules = unsafe { Bound::from_borrowed_ptr(py, ffi::PyImport_GetModuleDict()) };
    match modules.downcast::<pyo3::types::PyDict>()?.get_item(name)? {
        Some(module) => Ok(module),
        None => Ok(py.import(name)?.into_any()),
    }
}

/// A bytes object of `len` bytes that `fill` writes from the front,
/// through a [`BodyBuf`] over its memory, which is not zeroed first (a
/// 64 KiB `wsgi.input.read` would otherwise clear 64 KiB it is about to
/// overwrite); cut to what `fill` wrote. The object is not reachable from
/// Python while `fill` runs, so `fill` may release the GIL.
pub fn bytes_filled_by<'py>(
    py: Python<'py>,
    len: usize,
    fill: impl FnOnce(&mut BodyBuf<'_>) -> PyResult<()>,
) -> PyResult<Bound<'py, PyBytes>> {
    let size = ffi::Py_ssize_t::try_from(len)
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("read size too large"))?;
    // SAFETY: the GIL is held; a NULL source asks for `len` bytes that are
    // not initialised, in a new object we own.
    let bytes = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyBytes_FromStringAndSize(std::ptr::null(), size))?
            .downcast_into_unchecked::<PyBytes>()
    };
    // SAFETY: a bytes object's buffer is `len` bytes (plus a NUL) that live
    // as long as `bytes`, which outlives `mem`; nothing else refers to the
    // object yet, so this is the only access to its bytes.
    let mem = unsafe {
        std::slice::from_raw_parts_mut(
            ffi::PyBytes_AsString(bytes.as_ptr()).cast::<std::mem::MaybeUninit<u8>>(),
            len,
        )
    };
    let mut buf = BodyBuf::uninit(mem);
    fill(&mut buf)?;
    if buf.is_full() {
        Ok(bytes)
    } else {
        Ok(PyBytes::new(py, buf.filled()))
    }
}

/// Whether Python is being (or has been) finalized in this process.
pub(crate) fn finalizing() -> bool {
    FINALIZED.load(Ordering::SeqCst)
}

/// Finalizes Python in this process: threading's shutdown, the
/// application's atexit handlers, flushing sys.stdout/sys.stderr, in every
/// sub-interpreter (each is ended, as mod_wsgi does) and then in the main
/// one. Called at process exit when WSGIDestroyInterpreter is On (the
/// default); it may be called earlier (e.g. from a child pool cleanup),
/// after which the exit handler does nothing and no request can enter
/// Python any more. Skipped, safely, when this thread is inside Python (the
/// process is exiting from within a request) or in a process that only
/// inherited the interpreter through fork.
///
/// CPython aborts `Py_FinalizeEx` while a sub-interpreter exists, and a
/// sub-interpreter can only be ended when no thread uses it. When one cannot
/// be ended (a request still runs in it, or threads the application started
/// there are still alive), the atexit handlers still run but the main
/// interpreter is not finalized: the process is about to exit anyway, and
/// that is safer than freeing state a live thread will touch.
pub fn finalize() {
    if !is_initialized() || std::process::id() as i32 != INIT_PID.load(Ordering::SeqCst) {
        return;
    }
    if FINALIZED.swap(true, Ordering::SeqCst) {
        return;
    }
    // Inside Python on this thread: never finalize under a running frame.
    // PyGILState_Check can only tell while no sub-interpreter exists (it
    // answers 1 for ever once one was created); requests always run through
    // with_interpreter, which records it.
    // SAFETY: PyGILState_Check only reads the GIL-state of this thread.
    if interp::thread_inside()
        || (!interp::any_created() && unsafe { ffi::PyGILState_Check() } != 0)
    {
        return;
    }
    // SAFETY: Python is initialized in this process and this thread holds
    // no GIL. We take it with the parked main thread state on the thread that
    // created it, or this thread's GIL-state thread state elsewhere, so a
    // main-interpreter thread state of this thread is current, as end_all
    // and Py_FinalizeEx require; both then run with the GIL held. When
    // Python is not finalized, the GIL is released again so the threads
    // still using it can finish.
    unsafe {
        let main = MAIN_TSTATE.swap(std::ptr::null_mut(), Ordering::SeqCst);
        if !main.is_null() && nix::unistd::gettid().as_raw() == INIT_TID.load(Ordering::SeqCst) {
            ffi::PyEval_RestoreThread(main);
        } else {
            ffi::PyGILState_Ensure();
        }
        if interp::end_all() {
            ffi::Py_FinalizeEx();
        } else {
            let _ = interp::run_attached(|py| {
                interp::shutdown_threads(py);
                interp::run_atexit(py);
            });
            ffi::PyEval_SaveThread();
        }
    }
}
