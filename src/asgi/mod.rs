//! ASGI 3 applications (FastAPI, Starlette, Django's ASGIHandler) mounted
//! like WSGI ones: a script's `application` (or, for ASGI only, `app`)
//! that is an ASGI callable is served through an adapter the request path
//! calls as a WSGI application, so both modes, the daemon protocol and
//! everything around the call stay the WSGI path's. The adapter and the
//! interpreter's event loop are Python (`runtime.py`, loaded once per
//! interpreter): asyncio is what they drive.
//!
//! Whether a script's callable is ASGI is decided once per loaded script
//! module and callable name, and kept in the module (a reload is a new
//! module, so a new decision).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

/// The adapter's source, run once per interpreter as module [`RUNTIME_NAME`].
const RUNTIME_SOURCE: &str = include_str!("runtime.py");
const RUNTIME_NAME: &str = "_mod_wsgi_rs_asgi";
const RUNTIME_FILE: &str = "mod_wsgi_rs/src/asgi/runtime.py";
/// Attribute of a script module: callable name -> (object found, what the
/// request path calls for it).
const DECIDED: &str = "__mod_wsgi_rs_callables__";
/// The name WSGI scripts use; an ASGI script may say `app` instead.
const DEFAULT_CALLABLE: &str = "application";
const ASGI_CALLABLE: &str = "app";

/// What the request path calls for callable `name` of a script `module`:
/// the WSGI application itself, or an adapter for an ASGI one. Ok(None)
/// when the script has no such callable.
pub fn callable<'py>(
    module: &Bound<'py, PyModule>,
    name: &str,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = module.py();
    // Looked up in the module's dict: a missing `application` (an ASGI
    // script names its app `app`) then costs no AttributeError per request.
    let globals = module.dict();
    let (found, asgi_only) = match globals.get_item(name)? {
        Some(found) => (found, false),
        None if name == DEFAULT_CALLABLE => match globals.get_item(ASGI_CALLABLE)? {
            Some(found) => (found, true),
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    let decided = match globals.get_item(DECIDED)? {
        Some(d) => d.downcast_into::<PyDict>()?,
        None => {
            let d = PyDict::new(py);
            module.setattr(DECIDED, &d)?;
            d
        }
    };
    if let Some(entry) = decided.get_item(name)? {
        let (object, to_call): (Bound<'py, PyAny>, Bound<'py, PyAny>) = entry.extract()?;
        if object.is(&found) {
            return Ok((!to_call.is_none()).then_some(to_call));
        }
    }
    // Decided here, not in runtime.py: loading that (asyncio, inspect)
    // into every process that serves only WSGI cost about 10 MiB each.
    let to_call = if is_asgi(&found)? {
        runtime(py)?.call_method1("AsgiApplication", (&found,))?
    } else if asgi_only {
        py.None().into_bound(py)
    } else {
        found.clone()
    };
    decided.set_item(name, (&found, &to_call))?;
    Ok((!to_call.is_none()).then_some(to_call))
}

/// CO_COROUTINE: the code object of an `async def`.
const CO_COROUTINE: u32 = 0x0080;

/// Whether `app` is an ASGI 3 callable: an `async def` function (or a
/// bound method or functools.partial of one), or an instance whose class
/// defines `async def __call__`. A class is never one (WSGI allows a class
/// as the application; ASGI 3 needs an instance).
fn is_asgi(app: &Bound<'_, PyAny>) -> PyResult<bool> {
    if app.is_instance_of::<pyo3::types::PyType>() {
        return Ok(false);
    }
    if let Some(coroutine) = async_code(app)? {
        return Ok(coroutine);
    }
    match app.get_type().getattr("__call__") {
        Ok(call) => Ok(async_code(&call)?.unwrap_or(false)),
        Err(_) => Ok(false),
    }
}

/// Whether the Python function behind `f` (through bound methods and
/// partials) is a coroutine function; None when there is no such function.
fn async_code(f: &Bound<'_, PyAny>) -> PyResult<Option<bool>> {
    let mut f = f.clone();
    for _ in 0..8 {
        if let Ok(code) = f.getattr("__code__") {
            let flags: u32 = code.getattr("co_flags")?.extract()?;
            return Ok(Some(flags & CO_COROUTINE != 0));
        }
        // A bound method's function, or a functools.partial's.
        let inner = match f.getattr("__func__") {
            Ok(inner) => inner,
            Err(_) if f.get_type().name()? == "partial" => f.getattr("func")?,
            Err(_) => return Ok(None),
        };
        f = inner;
    }
    Ok(None)
}

/// This interpreter's adapter module, loaded on first use. Two threads
/// loading it at once both run the source (it defines functions and
/// classes only); the first one registered is the one every request uses.
fn runtime(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let modules = py.import("sys")?.getattr("modules")?;
    if let Ok(module) = modules.get_item(RUNTIME_NAME) {
        return Ok(module.downcast_into::<PyModule>()?);
    }
    let module = PyModule::new(py, RUNTIME_NAME)?;
    // Compiled under its path in the crate, so that tracebacks through it
    // say where they are.
    let code =
        py.import("builtins")?
            .getattr("compile")?
            .call1((RUNTIME_SOURCE, RUNTIME_FILE, "exec"))?;
    module.setattr("__file__", RUNTIME_FILE)?;
    py.import("builtins")?
        .getattr("exec")?
        .call1((code, module.dict()))?;
    let registered = modules.call_method1("setdefault", (RUNTIME_NAME, &module))?;
    Ok(registered.downcast_into::<PyModule>()?)
}
