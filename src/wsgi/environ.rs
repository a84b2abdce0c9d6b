//! Builds the WSGI environ: the CGI variables the request path collected
//! (from Apache directly, or received from the worker in daemon mode) plus
//! the wsgi.* and mod_wsgi.* keys.

use super::EnvironContext;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

/// The environ keys (nearly) every request has: made once per interpreter
/// as interned str objects (`Keys`), so a request neither builds nor
/// hashes them again, and an application's lookups with literals
/// (`environ['PATH_INFO']`) find the very same object.
const COMMON_KEYS: [&str; 56] = [
    "HTTP_HOST",
    "PATH_INFO",
    "HTTP_ACCEPT",
    "HTTP_COOKIE",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "REMOTE_USER",
    "REQUEST_URI",
    "SCRIPT_NAME",
    "SERVER_ADDR",
    "SERVER_NAME",
    "SERVER_PORT",
    "CONTENT_TYPE",
    "HTTP_REFERER",
    "QUERY_STRING",
    "SERVER_ADMIN",
    "wsgi.version",
    "DOCUMENT_ROOT",
    "wsgi.run_once",
    "CONTENT_LENGTH",
    "CONTEXT_PREFIX",
    "REQUEST_METHOD",
    "REQUEST_SCHEME",
    "apache.version",
    "HTTP_CONNECTION",
    "HTTP_USER_AGENT",
    "SCRIPT_FILENAME",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
    "wsgi.url_scheme",
    "mod_wsgi.version",
    "wsgi.multithread",
    "wsgi.multiprocess",
    "HTTP_CACHE_CONTROL",
    "mod_wsgi.path_info",
    "mod_wsgi.thread_id",
    "mod_wsgi.request_id",
    "mod_wsgi.server_pid",
    "HTTP_ACCEPT_ENCODING",
    "HTTP_ACCEPT_LANGUAGE",
    "HTTP_X_FORWARDED_FOR",
    "mod_wsgi.queue_start",
    "mod_wsgi.script_name",
    "CONTEXT_DOCUMENT_ROOT",
    "mod_wsgi.daemon_start",
    "wsgi.input_terminated",
    "mod_wsgi.connection_id",
    "mod_wsgi.listener_host",
    "mod_wsgi.listener_port",
    "mod_wsgi.process_group",
    "mod_wsgi.request_start",
    "mod_wsgi.handler_script",
    "mod_wsgi.callable_object",
    "mod_wsgi.request_handler",
    "mod_wsgi.application_group",
    "mod_wsgi.application_start",
];

/// FNV-1a: keys are short and ours, so a hash this cheap beats SipHash
/// (and the binary search before it, which cost about 200 instructions a
/// key, some 45 keys a request).
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type KeyIndex = std::collections::HashMap<&'static str, usize, std::hash::BuildHasherDefault<Fnv>>;

/// Where each of [`COMMON_KEYS`] is in it.
fn key_index() -> &'static KeyIndex {
    static INDEX: std::sync::OnceLock<KeyIndex> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        COMMON_KEYS
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, i))
            .collect()
    })
}

/// Key of the interpreter dict entry holding this interpreter's [`Keys`].
const KEYS_ENTRY: &str = "mod_wsgi_rs.environ_keys";

/// This interpreter's str objects for [`COMMON_KEYS`] (kept per
/// interpreter: a str object belongs to the interpreter that made it).
struct Keys<'py> {
    strings: Bound<'py, PyTuple>,
}

impl<'py> Keys<'py> {
    fn of_interpreter(py: Python<'py>) -> PyResult<Keys<'py>> {
        let strings = crate::python::interpreter_value(py, KEYS_ENTRY, || {
            Ok(PyTuple::new(py, COMMON_KEYS.iter().map(|k| PyString::intern(py, k)))?.into_any())
        })?
        .downcast_into::<PyTuple>()?;
        Ok(Keys { strings })
    }

    /// The str for `key`: the interpreter's own for a common key, else new.
    fn get(&self, key: &str) -> Bound<'py, PyAny> {
        match key_index().get(key) {
            Some(&index) => self
                .strings
                .get_item(index)
                .unwrap_or_else(|_| PyString::new(self.strings.py(), key).into_any()),
            None => PyString::new(self.strings.py(), key).into_any(),
        }
    }
}

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

/// SCRIPT_NAME and PATH_INFO as the application gets them: runs of '/'
/// collapsed, and a mount at "/" giving SCRIPT_NAME "".
pub fn script_name_and_path_info(script_name: &str, path_info: &str) -> (String, String) {
    split_script_name(&collapse_slashes(script_name), &collapse_slashes(path_info))
}

/// Now, in µs since the epoch.
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// A small id for the calling thread (1, 2, ... in the order threads first
/// serve a request): mod_wsgi.thread_id.
fn thread_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static ID: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    ID.with(|id| *id)
}

/// A time the Apache child or the daemon recorded in µs, in seconds as
/// mod_wsgi 6 gives it (0.0 when the mode has no such moment).
fn seconds(us: Option<&str>) -> f64 {
    us.and_then(|v| v.parse::<i64>().ok())
        .map_or(0.0, |us| us as f64 / 1e6)
}

/// When and where a request arrived, as its environ says (the
/// `mod_wsgi.*_start` times in seconds since the epoch, 0 when the mode has
/// no such moment; `mod_wsgi.thread_id`; the Apache child's pid, 0 when
/// not known), for the events and metrics: taken while the environ is
/// built rather than read back out of it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Arrival {
    pub request_start: f64,
    pub queue_start: f64,
    pub daemon_start: f64,
    pub thread_id: u64,
    pub server_pid: Option<i64>,
}

/// `vars` are the CGI variables (SCRIPT_NAME and PATH_INFO as Apache
/// computed them) and the `mod_wsgi.*` facts of the Apache child (and of
/// the daemon); the result is the complete environ, minus wsgi.input and
/// wsgi.errors which the caller adds. The `mod_wsgi.x-*` keys carry facts
/// between processes and stay out of it, as with mod_wsgi.
pub fn build<'py, 'v>(
    py: Python<'py>,
    vars: impl IntoIterator<Item = (&'v str, &'v str)>,
    ctx: &EnvironContext<'_>,
) -> PyResult<(Bound<'py, PyDict>, Arrival)> {
    use crate::cgi::{DAEMON_START_US, INTERNAL_PREFIX, QUEUE_START_US, REQUEST_START_US};
    // mod_wsgi.application_start: when the application is called, i.e. now.
    let application_start = now_us();
    let environ = PyDict::new(py);
    let keys = Keys::of_interpreter(py)?;
    let mut script_name = "";
    let mut path_info = "";
    let mut https = false;
    let (mut request_start, mut queue_start, mut daemon_start) = (None, None, None);
    let mut server_pid = None;
    for (k, v) in vars {
        match k {
            "SCRIPT_NAME" => script_name = v,
            "PATH_INFO" => path_info = v,
            // Apache's own search path, not a fact of the request: mod_wsgi
            // leaves it out.
            "PATH" => {}
            // Reported as wsgi.url_scheme and, as mod_wsgi does, not passed on.
            "HTTPS" => https = v.eq_ignore_ascii_case("on") || v == "1",
            REQUEST_START_US => request_start = Some(v),
            QUEUE_START_US => queue_start = Some(v),
            DAEMON_START_US => daemon_start = Some(v),
            _ if k.starts_with(INTERNAL_PREFIX) => {}
            "mod_wsgi.server_pid" => {
                server_pid = v.parse().ok();
                environ.set_item(keys.get(k), v)?
            }
            _ => environ.set_item(keys.get(k), v)?,
        }
    }
    let (script_name, path_info) = script_name_and_path_info(script_name, path_info);
    // Apache's values, as mod_wsgi keeps them: a trusted proxy's
    // X-Script-Name only changes SCRIPT_NAME below.
    environ.set_item(keys.get("mod_wsgi.script_name"), &script_name)?;
    environ.set_item(keys.get("mod_wsgi.path_info"), &path_info)?;
    // A trusted proxy's X-Script-Name is the mount point, used as it is
    // (as mod_wsgi 6 does); otherwise Apache's, cleaned up.
    match environ.get_item("mod_wsgi.mount_point")? {
        Some(mount) => environ.set_item(keys.get("SCRIPT_NAME"), mount)?,
        None => environ.set_item(keys.get("SCRIPT_NAME"), script_name)?,
    }
    environ.set_item(keys.get("PATH_INFO"), path_info)?;
    let arrival = Arrival {
        request_start: seconds(request_start),
        queue_start: seconds(queue_start),
        daemon_start: seconds(daemon_start),
        thread_id: thread_id(),
        server_pid,
    };
    environ.set_item(keys.get("mod_wsgi.request_start"), arrival.request_start)?;
    environ.set_item(keys.get("mod_wsgi.queue_start"), arrival.queue_start)?;
    environ.set_item(keys.get("mod_wsgi.daemon_start"), arrival.daemon_start)?;
    environ.set_item(
        keys.get("mod_wsgi.application_start"),
        application_start as f64 / 1e6,
    )?;
    environ.set_item(keys.get("mod_wsgi.thread_id"), arrival.thread_id)?;
    if let Some(version) = crate::apache::request_facts::server_version() {
        environ.set_item(keys.get("apache.version"), version)?;
    }
    environ.set_item(keys.get("wsgi.version"), (1, 0))?;
    environ.set_item(
        keys.get("wsgi.url_scheme"),
        if https { "https" } else { "http" },
    )?;
    environ.set_item(keys.get("wsgi.multithread"), ctx.multithread)?;
    environ.set_item(keys.get("wsgi.multiprocess"), ctx.multiprocess)?;
    environ.set_item(keys.get("wsgi.run_once"), false)?;
    environ.set_item(keys.get("wsgi.input_terminated"), true)?;
    environ.set_item(keys.get("mod_wsgi.process_group"), ctx.process_group)?;
    environ.set_item(
        keys.get("mod_wsgi.application_group"),
        ctx.application_group,
    )?;
    environ.set_item(keys.get("mod_wsgi.callable_object"), ctx.callable_object)?;
    environ.set_item(keys.get("mod_wsgi.version"), crate::version_tuple())?;
    Ok((environ, arrival))
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
    fn every_common_key_is_found_at_its_place() {
        for (i, key) in super::COMMON_KEYS.iter().enumerate() {
            assert_eq!(super::key_index().get(key), Some(&i), "{key}");
        }
        assert_eq!(super::key_index().len(), super::COMMON_KEYS.len());
        assert_eq!(super::key_index().get("HTTP_X_UNCOMMON"), None);
    }

    #[test]
    fn slashes_collapse() {
        assert_eq!(super::collapse_slashes("//a///b/"), "/a/b/");
        assert_eq!(super::collapse_slashes(""), "");
    }
}
