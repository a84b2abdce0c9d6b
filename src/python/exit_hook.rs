//! `os._exit` in a daemon process notes the status for the Apache parent
//! before the process ends (see `apache::exit_note`): the parent is told
//! only a number, and `os._exit(9)` would otherwise read as SIGKILL. The
//! status is passed on as `exit_note::status_for` says, so that
//! `os._exit(15)` does not stop Apache, in a daemon process or in an
//! Apache child (embedded mode).
//!
//! Every interpreter has its own `posix` module, so each one gets the
//! wrapper when it is set up, before application code can take a
//! reference to the original.

use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};

/// Wraps `posix._exit` (which `os._exit` is) in the interpreter the GIL is
/// held for; nothing where no exit is watched.
pub(super) fn install(py: Python<'_>) -> PyResult<()> {
    if !crate::apache::exit_note::watching_app_exits() {
        return Ok(());
    }
    let posix = py.import("posix")?;
    let original: Py<PyAny> = posix.getattr("_exit")?.unbind();
    let wrapper = PyCFunction::new_closure(
        py,
        Some(c"_exit"),
        Some(c"Exit to the system with specified status, without normal exit processing."),
        move |args: &Bound<'_, PyTuple>,
              kwargs: Option<&Bound<'_, PyDict>>|
              -> PyResult<Py<PyAny>> {
            // The status as _exit will take it; anything it refuses is left
            // to it to refuse (and the process goes on).
            let status = match (args.len(), kwargs.map_or(0, |k| k.len())) {
                (1, 0) => args.get_item(0).ok(),
                (0, 1) => kwargs.and_then(|k| k.get_item("status").ok().flatten()),
                _ => None,
            };
            let original = original.bind(args.py());
            if let Some(code) = status.and_then(|s| s.extract::<i32>().ok()) {
                let status = crate::apache::exit_note::app_exit_status(code);
                return Ok(original.call1((status,))?.unbind());
            }
            Ok(original.call(args, kwargs)?.unbind())
        },
    )?;
    posix.setattr("_exit", &wrapper)?;
    py.import("os")?.setattr("_exit", &wrapper)?;
    Ok(())
}
