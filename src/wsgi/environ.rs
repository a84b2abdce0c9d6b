//! Builds the WSGI environ: the CGI variables the request path collected
//! (from Apache directly, or received from the worker in daemon mode) plus
//! the wsgi.* and mod_wsgi.* keys.

use super::EnvironContext;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Moves trailing slashes of SCRIPT_NAME to the front of PATH_INFO, so an
/// application mounted at "/" sees SCRIPT_NAME "" as PEP 3333 expects.
pub fn split_script_name(script_name: &str, path_info: &str) -> (String, String) {
    let trimmed = script_name.trim_end_matches('/');
    if trimmed.len() == script_name.len() {
        return (script_name.to_string(), path_info.to_string());
    }
    let path = match path_info {
        "" => "/".to_string(),
        p if p.starts_with('/') => p.to_string(),
        p => format!("/{p}"),
    };
    (trimmed.to_string(), path)
}

/// `vars` are the CGI variables (SCRIPT_NAME and PATH_INFO as Apache
/// computed them); the result is the complete environ, minus wsgi.input and
/// wsgi.errors which the caller adds.
pub fn build<'py, 'v>(
    py: Python<'py>,
    vars: impl IntoIterator<Item = (&'v str, &'v str)>,
    ctx: &EnvironContext<'_>,
) -> PyResult<Bound<'py, PyDict>> {
    let environ = PyDict::new(py);
    let mut script_name = "";
    let mut path_info = "";
    let mut https = false;
    for (k, v) in vars {
        match k {
            "SCRIPT_NAME" => script_name = v,
            "PATH_INFO" => path_info = v,
            _ => {
                if k == "HTTPS" {
                    https = v.eq_ignore_ascii_case("on") || v == "1";
                }
                environ.set_item(k, v)?
            }
        }
    }
    let (script_name, path_info) = split_script_name(script_name, path_info);
    environ.set_item("SCRIPT_NAME", script_name)?;
    environ.set_item("PATH_INFO", path_info)?;
    environ.set_item("wsgi.version", (1, 0))?;
    environ.set_item("wsgi.url_scheme", if https { "https" } else { "http" })?;
    environ.set_item("wsgi.multithread", ctx.multithread)?;
    environ.set_item("wsgi.multiprocess", ctx.multiprocess)?;
    environ.set_item("wsgi.run_once", false)?;
    environ.set_item("wsgi.input_terminated", true)?;
    environ.set_item("mod_wsgi.process_group", ctx.process_group)?;
    environ.set_item("mod_wsgi.application_group", ctx.application_group)?;
    environ.set_item("mod_wsgi.callable_object", ctx.callable_object)?;
    environ.set_item(
        "mod_wsgi.script_reloading",
        if ctx.script_reloading { "1" } else { "0" },
    )?;
    environ.set_item("mod_wsgi.version", crate::version_tuple())?;
    Ok(environ)
}

#[cfg(test)]
mod tests {
    use super::split_script_name;

    #[test]
    fn root_mount_gives_empty_script_name() {
        assert_eq!(split_script_name("/", ""), ("".into(), "/".into()));
        assert_eq!(split_script_name("/", "/x"), ("".into(), "/x".into()));
        assert_eq!(
            split_script_name("/app", "/x"),
            ("/app".into(), "/x".into())
        );
        assert_eq!(split_script_name("/app/", ""), ("/app".into(), "/".into()));
    }
}
