//! Application groups: the interpreters of this process and the thread
//! states request threads use to run in them.
//!
//! The application group "" is the main interpreter; every other name is a
//! sub-interpreter, created with `Py_NewInterpreter` the first time a request
//! of that group reaches this process. Sub-interpreters get the legacy
//! configuration, as with mod_wsgi: one GIL shared by all interpreters (none
//! with WSGIFreeThreading On on a free-threaded build). Our `#[pyclass]`
//! type objects are created once, in the main interpreter before any
//! request thread runs (`initialize`), and only read afterwards, which is
//! what makes sharing them with every interpreter sound, GIL or not.
//!
//! pyo3's `Python::with_gil` goes through the GIL-state API, which only knows
//! one thread state per OS thread, in the main interpreter. So we keep the
//! thread states ourselves:
//! - main interpreter: each request thread pins its GIL-state thread state
//!   (one `PyGILState_Ensure` never released), so the same thread state
//!   serves every request of that thread and `threading.local` data survives
//!   between requests. Requests attach it by hand (`PyEval_RestoreThread`),
//!   not through the GIL-state API: from Python 3.12 on, attaching any
//!   thread state makes it the GIL-state one of its OS thread, so after a
//!   request in a sub-interpreter `PyGILState_Ensure` would resume the
//!   sub-interpreter. Attached by hand, the main one is the GIL-state one
//!   again, and `Python::with_gil` inside reuses it.
//! - sub-interpreters: one `PyThreadState_New` per (thread, interpreter),
//!   kept for the life of the process, attached with `PyEval_RestoreThread`
//!   around each request. The main thread state is always pinned first, so
//!   the GIL-state API keeps pointing at the main interpreter on every thread.
//!
//! While a sub-interpreter's thread state is attached, the request's code
//! runs inside a pyo3 callback ([`run_attached`]), so pyo3 knows the GIL is
//! held: a nested `Python::with_gil` (pyo3 itself does that, e.g. to format a
//! `PyErr`) is then a no-op instead of a deadlock on the main interpreter's
//! thread state.
//!
//! Thread states are never deleted while the process serves: Apache's and the
//! daemon's request threads live as long as the process. [`end_all`] ends
//! the sub-interpreters when Python is finalized.

use super::InitSettings;
use crate::apache::log::Level;
use parking_lot::{Condvar, Mutex};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict};
use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;

/// Pointers kept in the registry and thread locals (as addresses: they are
/// only dereferenced by CPython, under the rules documented where used).
type StatePtr = usize;

struct SubInterpreter {
    name: String,
    interp: StatePtr,
    /// Every thread state made for a request thread in this interpreter,
    /// with the thread it belongs to ([`current_thread_ident`]): kept here
    /// rather than only in the thread local, which glibc has already
    /// destroyed when the exit handler that ends the interpreter runs.
    thread_states: Vec<(u64, StatePtr)>,
    /// Threads currently inside this interpreter.
    busy: usize,
}

enum Slot {
    /// Some thread is running `Py_NewInterpreter` for this name.
    Creating,
    /// Index into `Registry::subs`.
    Ready(usize),
}

struct Registry {
    /// Application group name -> its interpreter (few: a linear search).
    slots: Vec<(String, Slot)>,
    subs: Vec<SubInterpreter>,
    /// Threads currently inside the main interpreter through us.
    main_busy: usize,
    /// Set when Python is being finalized: no thread may enter any more.
    ended: bool,
}

impl Registry {
    fn slot(&self, group: &str) -> Option<&Slot> {
        self.slots.iter().find(|(n, _)| n == group).map(|(_, s)| s)
    }

    fn set_slot(&mut self, group: &str, slot: Option<Slot>) {
        self.slots.retain(|(n, _)| n != group);
        if let Some(slot) = slot {
            self.slots.push((group.to_string(), slot));
        }
    }
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    slots: Vec::new(),
    subs: Vec::new(),
    main_busy: 0,
    ended: false,
});
/// Signalled when a `Creating` slot is resolved.
static CREATED: Condvar = Condvar::new();
/// Settings the sub-interpreters are set up with (those of the main one).
static SETTINGS: Mutex<Option<InitSettings>> = Mutex::new(None);

#[derive(Default)]
struct ThreadStates {
    /// This thread's pinned main-interpreter thread state (0 until pinned).
    main: StatePtr,
    /// (interpreter, thread state) of this thread in each sub-interpreter.
    subs: Vec<(StatePtr, StatePtr)>,
}

/// What `run_attached` hands to its pyo3 callback, behind a raw pointer.
type AttachedBody = dyn for<'py> FnMut(Python<'py>) + 'static;

thread_local! {
    static THREAD: RefCell<ThreadStates> = RefCell::new(ThreadStates::default());
    /// How deep this thread is inside `with_interpreter` (or creating an
    /// interpreter) right now. Apart from THREAD, and without a destructor:
    /// exit(3) destroys the thread locals that have one before it runs the
    /// exit handlers, and `finalize` must still see that the thread calling
    /// exit() from a request is inside Python.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// The body `run_attached` hands to its pyo3 callback.
    static BODY: Cell<Option<*mut AttachedBody>> = const { Cell::new(None) };
}

/// Remembers the settings sub-interpreters are set up with; called once
/// Python runs.
pub(super) fn remember_settings(settings: &InitSettings) {
    *SETTINGS.lock() = Some(settings.clone());
}

/// Whether any sub-interpreter was ever created in this process.
pub(super) fn any_created() -> bool {
    let reg = REGISTRY.lock();
    !reg.subs.is_empty() || !reg.slots.is_empty()
}

/// Whether this thread is running Python code through [`with_interpreter`].
pub(super) fn thread_inside() -> bool {
    DEPTH.with(|d| d.get() > 0)
}

/// Runs `f` in the interpreter of application group `group` ("" = the main
/// interpreter), creating it on first use, on this thread's own thread state
/// for it. Must not be called while this thread holds the GIL.
pub fn with_interpreter<R>(group: &str, f: impl FnOnce(Python<'_>) -> R) -> Result<R, String> {
    if !super::is_initialized() || super::finalizing() {
        return Err("Python is not running in this process".into());
    }
    if thread_inside() {
        return Err(format!(
            "application group '{group}' entered from inside Python on the same thread"
        ));
    }
    let main = pin_main_thread_state();
    let _depth = DepthGuard::enter();
    if group.is_empty() {
        let _busy = Busy::enter(None)?;
        let _held = MainGil::acquire(main);
        return Ok(Python::with_gil(f));
    }
    let index = sub_interpreter(group)?;
    let busy = Busy::enter(Some(index))?;
    let tstate = thread_state(index);
    // SAFETY: `tstate` belongs to this thread (made by PyThreadState_New for
    // it and never handed to another thread) and is not attached: this
    // thread holds no GIL (contract above, `thread_inside` checked), so
    // PyEval_RestoreThread takes the GIL and attaches it. The interpreter
    // it belongs to cannot end meanwhile: `busy` is counted, which makes
    // `end_all` leave every interpreter alone.
    waiting_room(|| unsafe { ffi::PyEval_RestoreThread(tstate as *mut ffi::PyThreadState) });
    let result = run_attached(f);
    // SAFETY: our thread state is the attached one again (run_attached
    // returns with the state it was called with); detach it, release the GIL.
    unsafe { ffi::PyEval_SaveThread() };
    drop(busy);
    match result {
        Ok(r) => Ok(r),
        Err(Panicked(payload)) => std::panic::resume_unwind(payload),
    }
}

/// At most this many request threads wait for the GIL at once; the others
/// wait in front of it, on a Rust condition variable.
///
/// CPython's GIL is not a queue: every waiting thread wakes every switch
/// interval (5 ms), asks the holder to drop the GIL, and the threads race for
/// it. With a hundred or more Apache threads per child waiting (256
/// keep-alive connections), most of a request's time went to those wake-ups
/// and forced switches. Threads queued here sleep until it is their turn.
/// Only the wait is gated: a thread holding the GIL runs, and releases the
/// GIL inside the application, as it always would.
///
/// One waiter at a time measured best (256 connections, hello: 5.9 context
/// switches per request against 9-12 ungated; 2 waiters 6.4, 4 waiters 7.5).
const GIL_WAITERS: usize = 1;

static WAITING: Mutex<usize> = Mutex::new(0);
static TURN: Condvar = Condvar::new();

/// Runs `take_gil` (a call that acquires the GIL) with a place in the
/// waiting room. Without a GIL (free-threading) attaching a thread state
/// does not wait for other threads, and the room steps aside.
fn waiting_room<T>(take_gil: impl FnOnce() -> T) -> T {
    let _turn = super::gil_enabled().then(GilTurn::enter);
    take_gil()
}

/// A place in the waiting room, held while the GIL is taken.
struct GilTurn(());

impl GilTurn {
    fn enter() -> GilTurn {
        let mut waiting = WAITING.lock();
        while *waiting >= GIL_WAITERS {
            TURN.wait(&mut waiting);
        }
        *waiting += 1;
        GilTurn(())
    }
}

impl Drop for GilTurn {
    fn drop(&mut self) {
        *WAITING.lock() -= 1;
        TURN.notify_one();
    }
}

thread_local! {
    /// This thread's waits to take the GIL back after releasing it: how
    /// many, and seconds in all (mod_wsgi's gil_wait_count / _time).
    static GIL_WAITS: std::cell::Cell<(u64, f64)> = const { std::cell::Cell::new((0, 0.0)) };
}

/// This thread's GIL waits so far: (count, seconds). A request takes the
/// difference between its start and its end.
pub fn gil_waits() -> (u64, f64) {
    GIL_WAITS.try_with(|w| w.get()).unwrap_or((0, 0.0))
}

/// `py.allow_threads(f)`, the wait to take the GIL back counted in
/// [`gil_waits`]. Without a GIL the thread state is still detached around
/// `f` (so a stop-the-world pause of the free-threaded build's garbage
/// collector need not wait for `f`).
///
/// Taking the GIL back does not queue in the waiting room: a request in
/// the middle of its work (a body read, a streamed block) comes back to a
/// GIL that is usually free, as C mod_wsgi's threads do. Queued behind the
/// new arrivals, each such step cost two sleeps; with a 1 MiB POST read
/// in 64 KiB blocks (16 connections) that was 4.8 voluntary context
/// switches per request and 345 us of CPU, against 3.1 and 320 without
/// (C 4.9.4: 2.6-2.8 and 273-344).
pub fn allow_threads<T: Send>(py: Python<'_>, f: impl Send + FnOnce() -> T) -> T {
    if !super::gil_enabled() {
        return py.allow_threads(f);
    }
    let (result, waiting_since) = py.allow_threads(|| (f(), std::time::Instant::now()));
    let waited = waiting_since.elapsed().as_secs_f64();
    let _ = GIL_WAITS.try_with(|w| {
        let (count, total) = w.get();
        w.set((count + 1, total + waited));
    });
    result
}

/// The GIL of the main interpreter, taken through the waiting room on this
/// thread's pinned main thread state, which is then also its GIL-state one
/// (pyo3's `with_gil` inside then only nests).
struct MainGil(());

impl MainGil {
    fn acquire(main: StatePtr) -> MainGil {
        // SAFETY: `main` is this thread's pinned main-interpreter thread
        // state (pin_main_thread_state), detached: this thread holds no GIL
        // (with_interpreter's contract). PyEval_RestoreThread takes the GIL
        // and attaches it.
        waiting_room(|| unsafe { ffi::PyEval_RestoreThread(main as *mut ffi::PyThreadState) });
        MainGil(())
    }
}

impl Drop for MainGil {
    fn drop(&mut self) {
        // SAFETY: the main thread state attached by `acquire` is the
        // current one again (with_gil inside returned); detach it.
        unsafe { ffi::PyEval_SaveThread() };
    }
}

struct DepthGuard;

impl DepthGuard {
    fn enter() -> DepthGuard {
        DEPTH.with(|d| d.set(d.get() + 1));
        DepthGuard
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Counts this thread as inside an interpreter (None = main) until dropped.
struct Busy(Option<usize>);

impl Busy {
    fn enter(index: Option<usize>) -> Result<Busy, String> {
        let mut reg = REGISTRY.lock();
        if reg.ended {
            return Err("Python is being finalized in this process".into());
        }
        match index {
            None => reg.main_busy += 1,
            Some(i) => reg.subs[i].busy += 1,
        }
        Ok(Busy(index))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut reg = REGISTRY.lock();
        match self.0 {
            None => reg.main_busy -= 1,
            Some(i) => reg.subs[i].busy -= 1,
        }
    }
}

/// Makes this thread's GIL-state thread state permanent: the same thread
/// state (and so the same `threading.local` data) serves every request of
/// the thread in the main interpreter, and the GIL-state API refers to the
/// main interpreter on this thread before any sub-interpreter thread state
/// exists for it. Returns it.
fn pin_main_thread_state() -> StatePtr {
    THREAD.with(|t| {
        let mut t = t.borrow_mut();
        if t.main != 0 {
            return t.main;
        }
        // SAFETY: Python is initialized and this thread holds no GIL (the
        // contract of with_interpreter). PyGILState_Ensure creates this
        // thread's main-interpreter thread state if it has none (or reuses
        // it) and attaches it; we never call the matching PyGILState_Release,
        // so its count never drops to zero and CPython keeps it. The
        // PyEval_SaveThread right after detaches it and releases the GIL.
        t.main = unsafe {
            ffi::PyGILState_Ensure();
            ffi::PyEval_SaveThread() as StatePtr
        };
        t.main
    })
}

/// This thread's thread state in sub-interpreter `index`, made on first use.
fn thread_state(index: usize) -> StatePtr {
    let interp = REGISTRY.lock().subs[index].interp;
    let known = THREAD.with(|t| {
        let t = t.borrow();
        t.subs.iter().find(|(i, _)| *i == interp).map(|&(_, ts)| ts)
    });
    if let Some(ts) = known {
        return ts;
    }
    // SAFETY: `interp` is a live interpreter (it cannot end while this
    // thread is counted busy in it). PyThreadState_New needs no GIL; the
    // new thread state is bound to this OS thread when it is first
    // attached. This thread's GIL-state thread state is already the main
    // one (pin_main_thread_state ran), so CPython does not adopt this one
    // for the GIL-state API here (3.12+ does when it is attached: MainGil).
    let ts = unsafe { ffi::PyThreadState_New(interp as *mut ffi::PyInterpreterState) } as StatePtr;
    REGISTRY.lock().subs[index]
        .thread_states
        .push((current_thread_ident(), ts));
    THREAD.with(|t| t.borrow_mut().subs.push((interp, ts)));
    ts
}

/// The sub-interpreter of `group`, created (with this thread's thread state
/// in it) when it does not exist yet.
fn sub_interpreter(group: &str) -> Result<usize, String> {
    let mut reg = REGISTRY.lock();
    loop {
        if reg.ended {
            return Err("Python is being finalized in this process".into());
        }
        match reg.slot(group) {
            Some(Slot::Ready(i)) => return Ok(*i),
            Some(Slot::Creating) => CREATED.wait(&mut reg),
            None => {
                reg.slots.push((group.to_string(), Slot::Creating));
                break;
            }
        }
    }
    drop(reg);
    // No lock is held while Python runs: creating the interpreter runs
    // Python code, which lets other threads take the GIL, and they may then
    // need the registry.
    let created = create(group);
    let mut reg = REGISTRY.lock();
    let result = match created {
        Ok((interp, ts)) => {
            let index = reg.subs.len();
            reg.subs.push(SubInterpreter {
                name: group.to_string(),
                interp,
                thread_states: vec![(current_thread_ident(), ts)],
                busy: 0,
            });
            reg.set_slot(group, Some(Slot::Ready(index)));
            THREAD.with(|t| t.borrow_mut().subs.push((interp, ts)));
            Ok(index)
        }
        Err(e) => {
            reg.set_slot(group, None);
            Err(e)
        }
    };
    CREATED.notify_all();
    result
}

/// Creates and sets up the sub-interpreter of `group`; returns it and the
/// thread state `Py_NewInterpreter` made for this thread (detached).
fn create(group: &str) -> Result<(StatePtr, StatePtr), String> {
    let settings = SETTINGS.lock().clone().unwrap_or_default();
    let main = pin_main_thread_state() as *mut ffi::PyThreadState;
    // SAFETY: this thread holds no GIL and `main` is its pinned main
    // thread state, detached. We attach it,
    // Py_NewInterpreter then creates the interpreter with a thread state of
    // this thread and makes it the current one (GIL still held: the GIL is
    // shared). Set-up runs through run_attached on that state. On success
    // we swap back to the main thread state and release the GIL with it,
    // leaving the new thread state detached for later PyEval_RestoreThread;
    // on a set-up failure Py_EndInterpreter ends the new interpreter first
    // (its thread state is current and the only one).
    unsafe {
        ffi::PyEval_RestoreThread(main);
        let ts = ffi::Py_NewInterpreter();
        if ts.is_null() {
            // Py_NewInterpreter restored `main` as the current thread state.
            ffi::PyEval_SaveThread();
            return Err(format!(
                "Python could not create the sub-interpreter for application group '{group}'"
            ));
        }
        // `ts` is current: the interpreter in force is the new one.
        let interp = ffi::PyInterpreterState_Get() as StatePtr;
        let setup = run_attached(|py| {
            set_up(py, group, &settings)
                .map_err(|e| crate::wsgi::response::format_exception(py, &e))
        });
        let result = match setup {
            Ok(Ok(())) => Ok((interp, ts as StatePtr)),
            Ok(Err(text)) => {
                ffi::Py_EndInterpreter(ts);
                Err(format!(
                    "setting up the sub-interpreter of application group '{group}' failed: {text}"
                ))
            }
            Err(Panicked(_)) => {
                ffi::Py_EndInterpreter(ts);
                Err(format!(
                    "setting up the sub-interpreter of application group '{group}' panicked"
                ))
            }
        };
        ffi::PyThreadState_Swap(main);
        ffi::PyEval_SaveThread();
        if result.is_ok() {
            crate::apache::log::server(
                None,
                Level::Info,
                &format!(
                    "created sub-interpreter for application group '{group}' (pid {})",
                    std::process::id()
                ),
            );
        }
        result
    }
}

/// What every interpreter gets when it starts, with what the
/// `<WSGIInterpreterOptions>` sections matching it say: our
/// sys.stdout/sys.stderr and signal policy, the hint for extension modules
/// that refuse it, WSGIPythonPath, then the `mod_wsgi` module naming its
/// application group (after the path, where the companion mod_wsgi package
/// may be).
fn set_up(py: Python<'_>, group: &str, settings: &InitSettings) -> PyResult<()> {
    let process_wide = settings;
    let settings = &settings.for_interpreter(group);
    super::stdio::install(py, settings)?;
    super::exit_hook::install(py)?;
    install_refusal_hint(py, group)?;
    super::add_python_path(py, settings)?;
    // A <WSGIInterpreterOptions> switch interval: CPython has one for all
    // interpreters sharing the GIL, so it holds from here on for all.
    if settings.switch_interval != process_wide.switch_interval
        && super::gil_enabled()
        && let Some(interval) = settings.switch_interval
    {
        py.import("sys")?
            .call_method1("setswitchinterval", (interval.as_secs_f64(),))?;
    }
    crate::wsgi::module::install(py, group)
}

/// Python side of the extension-module hint: wraps the loader of C
/// extension modules of this interpreter (module creation, and execution,
/// where a multi-phase-init module such as a current pyo3 one refuses) so
/// an ImportError that says the
/// module cannot live in a sub-interpreter (pyo3's "PyO3 modules do not yet
/// support subinterpreters" / "may only be initialized once per interpreter
/// process", numpy's "Interpreter change detected", CPython's "does not
/// support loading in subinterpreters") is reported once per module, with
/// the way out.
const REFUSAL_HOOK: &std::ffi::CStr = cr#"
def install(report):
    import _frozen_importlib_external as external
    loader = external.ExtensionFileLoader
    reported = set()

    def refused(name, e):
        text = str(e)
        if "interpreter" in text.lower():
            if name not in reported:
                reported.add(name)
                report(name, text)
            hint = (
                "mod_wsgi_rs: extension module %r only works in the main "
                "interpreter: use WSGIApplicationGroup %%{GLOBAL}" % name
            )
            try:
                e.add_note(hint)
            except AttributeError:
                # Python 3.10 has no notes: the message carries the hint.
                e.msg = "%s\n%s" % (text, hint)

    original_create = loader.create_module
    original_exec = loader.exec_module

    def create_module(self, spec):
        try:
            return original_create(self, spec)
        except ImportError as e:
            refused(spec.name, e)
            raise

    def exec_module(self, module):
        try:
            return original_exec(self, module)
        except ImportError as e:
            refused(module.__name__, e)
            raise

    create_module.__wrapped__ = original_create
    exec_module.__wrapped__ = original_exec
    loader.create_module = create_module
    loader.exec_module = exec_module
"#;

fn install_refusal_hint(py: Python<'_>, group: &str) -> PyResult<()> {
    let group_name = group.to_string();
    let report = PyCFunction::new_closure(
        py,
        Some(c"report_refused_extension"),
        None,
        move |args, _kwargs| -> PyResult<()> {
            let (module, text): (String, String) = args.extract()?;
            crate::wsgi::errors::log_line(
                Level::Error,
                &format!(
                    "Python extension module '{module}' refuses to load in the sub-interpreter of application group '{group_name}' (pid {}): {text}; it only works in the main interpreter: use 'WSGIApplicationGroup %{{GLOBAL}}' for this application",
                    std::process::id()
                ),
            );
            Ok(())
        },
    )?;
    let namespace = PyDict::new(py);
    py.run(REFUSAL_HOOK, Some(&namespace), None)?;
    namespace
        .get_item("install")?
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("hook not defined"))?
        .call1((report,))?;
    Ok(())
}

/// A panic caught inside [`run_attached`], resumed by its caller once the
/// thread state is detached again.
pub(super) struct Panicked(Box<dyn std::any::Any + Send>);

/// Runs `f` with the thread state that is attached on this thread (the GIL
/// held) inside a pyo3 callback, so pyo3 counts the GIL as held for the
/// duration. A panic in `f` is caught and returned.
pub(super) fn run_attached<R>(f: impl FnOnce(Python<'_>) -> R) -> Result<R, Panicked> {
    let mut f = Some(f);
    let mut out: Option<std::thread::Result<R>> = None;
    {
        let mut body = |py: Python<'_>| {
            if let Some(f) = f.take() {
                out = Some(std::panic::catch_unwind(AssertUnwindSafe(|| f(py))));
            }
        };
        let body: &mut dyn for<'py> FnMut(Python<'py>) = &mut body;
        // SAFETY: only the lifetime bound is erased. The pointer is read by
        // the callback below, which runs (if at all) during `call0` on this
        // thread, while `body` is alive; it is cleared right after.
        let raw: *mut (dyn for<'py> FnMut(Python<'py>) + 'static) =
            unsafe { std::mem::transmute(body) };
        let previous = BODY.replace(Some(raw));
        // SAFETY: the caller attached a thread state on this thread, so this
        // thread holds the GIL; the token does not outlive this block.
        let py = unsafe { Python::assume_gil_acquired() };
        let called = PyCFunction::new_closure(py, None, None, |args, _kwargs| -> PyResult<()> {
            if let Some(body) = BODY.take() {
                // SAFETY: see `raw` above: set by run_attached for exactly
                // this call, on this thread, with `body` alive.
                unsafe { (*body)(args.py()) };
            }
            Ok(())
        })
        .and_then(|function| function.call0().map(|_| ()));
        BODY.set(previous);
        if let Err(e) = called {
            // Out of memory creating the function object or similar; the
            // body did not run. Leave no exception set.
            drop(e);
        }
    }
    match out {
        Some(Ok(r)) => Ok(r),
        Some(Err(payload)) => Err(Panicked(payload)),
        None => Err(Panicked(Box::new(
            "could not call into Python to run the request",
        ))),
    }
}

/// Ends every sub-interpreter as Python is finalized: each one's
/// non-daemon threads are joined (`threading._shutdown`), its atexit
/// handlers run and it is destroyed, as mod_wsgi does. Called with the GIL
/// held through the main interpreter's thread state of this thread, which
/// is current again on return.
///
/// Returns whether `Py_FinalizeEx` may follow, which CPython only allows
/// once no sub-interpreter is left. It may not when a sub-interpreter is
/// still serving a request on another thread, or still runs threads of the
/// application's own (daemon threads) after its threading shutdown: deleting
/// their thread states would crash them when they wake up before the
/// process is gone. Such an interpreter is left alone (its atexit handlers
/// still run) and so is the main one.
///
/// # Safety
/// The GIL must be held, with this thread's main-interpreter thread state
/// current, and no Python frame of this thread may be running.
pub(super) unsafe fn end_all() -> bool {
    let subs = {
        let mut reg = REGISTRY.lock();
        reg.ended = true;
        let creating = reg.slots.iter().any(|(_, s)| matches!(s, Slot::Creating));
        if let Some(busy) = reg.subs.iter().find(|s| s.busy > 0) {
            log_not_finalized(&format!(
                "application group '{}' is still serving a request",
                busy.name
            ));
            return false;
        }
        if creating {
            log_not_finalized("a sub-interpreter is being created");
            return false;
        }
        std::mem::take(&mut reg.subs)
    };
    let mut clean = true;
    for sub in subs.iter().rev() {
        // SAFETY: forwarded from our caller; the interpreter is idle and no
        // thread may enter it any more (`ended`).
        clean &= unsafe { end_one(sub) };
    }
    clean
}

fn log_not_finalized(why: &str) {
    crate::apache::log::server(
        None,
        Level::Info,
        &format!(
            "Python not finalized in pid {}: {why}; atexit handlers were run",
            std::process::id()
        ),
    );
}

/// # Safety
/// As for [`end_all`]; `sub` is idle and will not be entered again.
unsafe fn end_one(sub: &SubInterpreter) -> bool {
    // SAFETY: the caller holds the GIL with its main thread state current.
    // We swap to a thread state of this thread in the sub-interpreter (the
    // GIL is shared, so it stays held): the one it served requests with
    // when it has one, else a new one. The other request threads' states
    // are detached (the interpreter is idle) and will never be attached
    // again: we clear and delete them first, which also releases the lock
    // threading's shutdown waits on for the thread that imported threading
    // there. This thread's own state must survive until then: when this
    // thread imported threading in the interpreter (a prefork child serves
    // and exits on one thread), threading._shutdown takes it for the main
    // thread and asserts that its lock is still held. Then the
    // interpreter's threading shutdown runs through run_attached, and we
    // look at the thread states left besides ours: those of threads the
    // application started and that still run. Only without them do we call
    // Py_EndInterpreter, which needs our state current and alone; it
    // leaves no current thread state, so we swap back to the caller's.
    unsafe {
        let interp = sub.interp as *mut ffi::PyInterpreterState;
        let me = current_thread_ident();
        let ts = match sub.thread_states.iter().find(|(owner, _)| *owner == me) {
            Some(&(_, own)) => own as *mut ffi::PyThreadState,
            None => ffi::PyThreadState_New(interp),
        };
        let main = ffi::PyThreadState_Swap(ts);
        for &(_, other) in &sub.thread_states {
            let other = other as *mut ffi::PyThreadState;
            if other != ts {
                ffi::PyThreadState_Clear(other);
                ffi::PyThreadState_Delete(other);
            }
        }
        let _ = run_attached(shutdown_threads);
        let mut foreign = 0;
        let mut t = ffi::PyInterpreterState_ThreadHead(interp);
        while !t.is_null() {
            if t != ts {
                foreign += 1;
            }
            t = ffi::PyThreadState_Next(t);
        }
        if foreign > 0 {
            let _ = run_attached(run_atexit);
            ffi::PyThreadState_Swap(main);
            ffi::PyThreadState_Clear(ts);
            ffi::PyThreadState_Delete(ts);
            log_not_finalized(&format!(
                "application group '{}' still runs {foreign} thread{} of its own",
                sub.name,
                if foreign == 1 { "" } else { "s" }
            ));
            return false;
        }
        ffi::Py_EndInterpreter(ts);
        ffi::PyThreadState_Swap(main);
        true
    }
}

/// threading._shutdown(): joins the non-daemon threads of the current
/// interpreter, as interpreter finalization does first.
pub(super) fn shutdown_threads(py: Python<'_>) {
    let result = (|| -> PyResult<()> {
        let modules = py.import("sys")?.getattr("modules")?;
        if let Some(threading) = modules
            .call_method1("get", ("threading",))?
            .extract::<Option<Bound<'_, PyAny>>>()?
        {
            threading.call_method0("_shutdown")?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        e.write_unraisable(py, None);
    }
}

/// Runs (and clears) the current interpreter's atexit handlers and flushes
/// its sys.stdout / sys.stderr.
pub(super) fn run_atexit(py: Python<'_>) {
    let result = (|| -> PyResult<()> {
        py.import("atexit")?.call_method0("_run_exitfuncs")?;
        let sys = py.import("sys")?;
        for stream in ["stdout", "stderr"] {
            let _ = sys.getattr(stream)?.call_method0("flush");
        }
        Ok(())
    })();
    if let Err(e) = result {
        e.write_unraisable(py, None);
    }
}

/// The dictionary CPython keeps for each interpreter: per-interpreter state
/// of ours (the script module cache) lives there, so it ends with the
/// interpreter.
pub fn interpreter_dict(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    // SAFETY: the token proves the GIL is held, so an interpreter is
    // current; PyInterpreterState_GetDict returns a borrowed reference to a
    // dict that lives as long as the interpreter (NULL with an exception on
    // failure, turned into an error by from_borrowed_ptr_or_err).
    unsafe {
        let dict = ffi::PyInterpreterState_GetDict(ffi::PyInterpreterState_Get());
        Ok(Bound::from_borrowed_ptr_or_err(py, dict)?.downcast_into::<PyDict>()?)
    }
}

/// The value under `key` in the current interpreter's dict, `make`'s
/// value put there first when there is none. `setdefault` is one atomic
/// step, so threads arriving together (at once without the GIL of a
/// free-threaded build) all get the one value that was put there.
pub fn interpreter_value<'py>(
    py: Python<'py>,
    key: &str,
    make: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let interp = interpreter_dict(py)?;
    if let Some(value) = interp.get_item(key)? {
        return Ok(value);
    }
    interp.call_method1("setdefault", (key, make()?))
}

/// Raises `mod_wsgi.RequestTimeout` asynchronously in the thread `ident`
/// (a pthread id, as threading.get_ident() gives) running in application
/// group `group`. It takes effect when that thread next runs Python
/// bytecode. Returns whether a thread state was found.
pub fn interrupt_thread(group: &str, ident: u64) -> Result<bool, String> {
    with_interpreter(group, |py| -> Result<bool, String> {
        let exc = py
            .import("mod_wsgi")
            .and_then(|m| m.getattr("RequestTimeout"))
            .map_err(|e| e.to_string())?;
        // SAFETY: the GIL is held in the interpreter the target thread runs
        // in (PyThreadState_SetAsyncExc searches the current interpreter);
        // `exc` is a live exception type; the call takes its own reference.
        let found =
            unsafe { ffi::PyThreadState_SetAsyncExc(ident as std::os::raw::c_long, exc.as_ptr()) };
        if found > 0 {
            INTERRUPTED.lock().push((group.to_string(), ident));
        }
        Ok(found > 0)
    })?
}

/// Threads (application group, ident) a `RequestTimeout` was raised in
/// that may not have taken it yet.
static INTERRUPTED: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());

/// Takes a `mod_wsgi.RequestTimeout` still pending for the calling thread
/// in application group `group` (`py` is its interpreter), one that landed
/// after its request had ended, so that it cannot hit the next request.
///
/// Only a thread that was interrupted is touched, and the exception is
/// taken by running a line of Python, not dropped with
/// `PyThreadState_SetAsyncExc(id, NULL)`: that signals the interpreter's
/// eval breaker, which only the taking of a real exception resets, so
/// every thread of the process then ran the eval loop's slow path for
/// good, and one with a profile function set (sys.setprofile, cProfile)
/// spun at 100% CPU on its next function entry (CPython 3.11).
pub fn clear_pending_interrupt(py: Python<'_>, group: &str) {
    let ident = current_thread_ident();
    {
        let mut interrupted = INTERRUPTED.lock();
        let Some(at) = interrupted
            .iter()
            .position(|(g, id)| *id == ident && g == group)
        else {
            return;
        };
        interrupted.swap_remove(at);
    }
    // The pending exception, if any, is raised at the code's first
    // instruction and dropped with the result.
    let _ = py.run(c"pass", None, None);
}

/// The id Python gives the calling thread (threading.get_ident()).
pub fn current_thread_ident() -> u64 {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() as u64 }
}
