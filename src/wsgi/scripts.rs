//! Loading WSGI script files as Python modules, once per interpreter
//! (application group) of the process, again when the file changes and
//! WSGIScriptReloading is On.

use crate::wsgi::WsgiError;
use crate::wsgi::response::format_exception;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

/// Key, in the current interpreter's own dict, of the script cache:
/// path -> (mtime, module). Each interpreter has its own, which ends with it.
/// It is a Python dict so that the GIL, not a Rust lock, guards it:
/// executing a script can release the GIL, and a Rust mutex held across that
/// would deadlock against another request thread.
const CACHE_KEY: &str = "mod_wsgi_rs.scripts";

fn cache(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let interp = crate::python::interpreter_dict(py)?;
    if let Some(cache) = interp.get_item(CACHE_KEY)? {
        return Ok(cache.downcast_into::<PyDict>()?);
    }
    let cache = PyDict::new(py);
    interp.set_item(CACHE_KEY, &cache)?;
    Ok(cache)
}

/// The module name mod_wsgi gives a script: `_mod_wsgi_` and the MD5 of
/// its path, stable per path and never clashing with a real package.
/// Computed in Rust: importing Python's hashlib would map OpenSSL's
/// libcrypto into every process (about 4 MiB of RSS).
fn module_name(path: &str) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(path.as_bytes());
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

fn exec_script<'py>(py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyModule>> {
    let source = std::fs::read(path)?;
    let name = module_name(path);
    let module = PyModule::new(py, &name)?;
    module.setattr("__file__", path)?;
    let builtins = py.import("builtins")?;
    let code = builtins.getattr("compile")?.call1((source, path, "exec"))?;
    py.import("sys")?
        .getattr("modules")?
        .set_item(&name, &module)?;
    if let Err(e) = builtins.getattr("exec")?.call1((code, module.dict())) {
        let _ = py.import("sys")?.getattr("modules")?.del_item(&name);
        return Err(e);
    }
    Ok(module)
}

/// Returns the script's module, (re)loading it when needed.
pub fn load<'py>(
    py: Python<'py>,
    path: &str,
    mtime: i64,
    reloading: bool,
) -> Result<Bound<'py, PyModule>, WsgiError> {
    let cache = cache(py).map_err(|e| {
        WsgiError::Script(format!(
            "Failed to exec Python script file '{path}': {}",
            format_exception(py, &e)
        ))
    })?;
    if let Ok(Some(entry)) = cache.get_item(path)
        && let Ok((loaded_mtime, module)) = entry.extract::<(i64, Bound<'py, PyModule>)>()
        && (!reloading || loaded_mtime == mtime)
    {
        return Ok(module);
    }
    let module = exec_script(py, path).map_err(|e| {
        WsgiError::Script(format!(
            "Failed to exec Python script file '{path}': {}",
            format_exception(py, &e)
        ))
    })?;
    let _ = cache.set_item(path, (mtime, &module));
    Ok(module)
}

/// WSGIImportScript: loads `path` into the interpreter of `application_group`
/// ("%{GLOBAL}" or "" for the main one) when a process starts, so the first
/// request finds it loaded.
pub fn preload(path: &str, application_group: &str) -> Result<(), String> {
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
                WsgiError::Script(m) | WsgiError::Application(m) => m,
                WsgiError::ClientGone => "interrupted".to_string(),
            })
    })?
}

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
