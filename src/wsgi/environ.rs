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

/// Collapses runs of '/' into one, as mod_wsgi does for SCRIPT_NAME and
/// PATH_INFO.
pub fn collapse_slashes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    out
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Requests served so far by this process and by the calling thread, and a
/// small id for the thread (1, 2, ... in the order threads first serve a
/// request): mod_wsgi.total_requests, mod_wsgi.thread_requests and
/// mod_wsgi.thread_id. Counts are of the requests before this one.
struct RequestCounters {
    total_requests: u64,
    thread_id: u64,
    thread_requests: u64,
}

impl RequestCounters {
    fn next() -> RequestCounters {
        use std::cell::Cell;
        use std::sync::atomic::{AtomicU64, Ordering};
        static TOTAL: AtomicU64 = AtomicU64::new(0);
        static NEXT_THREAD_ID: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            static THREAD: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
        }
        let (thread_id, thread_requests) = THREAD.with(|t| {
            let (id, served) = t
                .get()
                .unwrap_or_else(|| (NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed), 0));
            t.set(Some((id, served + 1)));
            (id, served)
        });
        RequestCounters {
            total_requests: TOTAL.fetch_add(1, Ordering::Relaxed),
            thread_id,
            thread_requests,
        }
    }
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
            // Apache's own search path, not a fact of the request: mod_wsgi
            // leaves it out.
            "PATH" => {}
            // Reported as wsgi.url_scheme and, as mod_wsgi does, not passed on.
            "HTTPS" => https = v.eq_ignore_ascii_case("on") || v == "1",
            _ => environ.set_item(k, v)?,
        }
    }
    let (script_name, path_info) =
        split_script_name(&collapse_slashes(script_name), &collapse_slashes(path_info));
    environ.set_item("mod_wsgi.script_name", &script_name)?;
    environ.set_item("mod_wsgi.path_info", &path_info)?;
    environ.set_item("SCRIPT_NAME", script_name)?;
    environ.set_item("PATH_INFO", path_info)?;
    let counters = RequestCounters::next();
    environ.set_item("mod_wsgi.script_start", now_us().to_string())?;
    environ.set_item("mod_wsgi.total_requests", counters.total_requests)?;
    environ.set_item("mod_wsgi.thread_id", counters.thread_id)?;
    environ.set_item("mod_wsgi.thread_requests", counters.thread_requests)?;
    if let Some(version) = crate::apache::request_facts::server_version() {
        environ.set_item("apache.version", version)?;
    }
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

    #[test]
    fn slashes_collapse() {
        assert_eq!(super::collapse_slashes("//a///b/"), "/a/b/");
        assert_eq!(super::collapse_slashes(""), "");
    }
}
