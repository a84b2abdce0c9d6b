//! Builds the WSGI environ from Apache's CGI variables plus the wsgi.* and
//! mod_wsgi.* keys.

use crate::apache::request::Request;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// What the request path knows about where the application runs.
pub struct EnvironContext<'a> {
    pub process_group: &'a str,
    pub application_group: &'a str,
    pub callable_object: &'a str,
    pub script_reloading: bool,
    pub pass_authorization: bool,
    pub multithread: bool,
    pub multiprocess: bool,
}

/// Moves trailing slashes of SCRIPT_NAME to the front of PATH_INFO, so an
/// application mounted at "/" sees SCRIPT_NAME "" as PEP 3333 expects.
pub fn split_script_name(script_name: &str, path_info: &str) -> (String, String) {
    let trimmed = script_name.trim_end_matches('/');
    let moved = &script_name[trimmed.len()..];
    if moved.is_empty() {
        return (script_name.to_string(), path_info.to_string());
    }
    let path = if path_info.starts_with('/') {
        path_info.to_string()
    } else {
        format!("/{path_info}")
    };
    (
        trimmed.to_string(),
        if path_info.is_empty() {
            "/".to_string()
        } else {
            path
        },
    )
}

pub fn build<'py>(
    py: Python<'py>,
    r: &mut Request,
    ctx: &EnvironContext<'_>,
) -> PyResult<Bound<'py, PyDict>> {
    r.add_cgi_vars();
    let environ = PyDict::new(py);
    let mut script_name = String::new();
    let mut path_info = String::new();
    for (k, v) in r.subprocess_env().entries() {
        match k {
            "SCRIPT_NAME" => script_name = v.to_string(),
            "PATH_INFO" => path_info = v.to_string(),
            _ => environ.set_item(k, v)?,
        }
    }
    let (script_name, path_info) = split_script_name(&script_name, &path_info);
    environ.set_item("SCRIPT_NAME", script_name)?;
    environ.set_item("PATH_INFO", path_info)?;
    if ctx.pass_authorization {
        if let Some(auth) = r.headers_in().get("Authorization") {
            environ.set_item("HTTP_AUTHORIZATION", auth)?;
        }
    }
    let https = environ
        .get_item("HTTPS")?
        .and_then(|v| v.extract::<String>().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("on") || v == "1");
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
