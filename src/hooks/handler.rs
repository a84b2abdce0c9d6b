//! WSGIHandlerScript, in the content handler phase: a named handler for
//! `SetHandler` / `AddHandler` whose script's `handle_request(environ,
//! start_response)` serves the file Apache matched (which stays
//! SCRIPT_FILENAME). It is an application in all but name, so it is served
//! through the application path (embedded, or in the daemon group of its
//! `process-group=`), not through [`super::run`]; this file says which
//! script a request's handler names and how the request remembers it.

use crate::apache::request::Request;
use crate::config::{DirConfig, HandlerScript};

/// Note on the request naming the WSGIHandlerScript serving it (its path),
/// reported as mod_wsgi.handler_script.
const NOTE: &str = "mod_wsgi_rs.handler_script";

/// The callable of a WSGIHandlerScript: fixed, WSGICallableObject does not
/// apply (as documented for mod_wsgi).
pub const CALLABLE: &str = "handle_request";

/// The WSGIHandlerScript registered under the request's handler name in
/// this location, if any; `builtin` names are never one.
pub fn named<'a>(
    handler: Option<&str>,
    builtin: &[&str],
    dir: &'a DirConfig,
) -> Option<&'a HandlerScript> {
    handler
        .filter(|h| !builtin.contains(h))
        .and_then(|h| dir.handler_script(h))
}

/// Remembers on the request that `script` serves it.
pub fn note(r: &mut Request, script: &HandlerScript) {
    r.notes().set(r.pool(), NOTE, &script.path);
}

/// The path of the handler script serving the request, "" when none
/// (mod_wsgi.handler_script).
pub fn noted(r: &Request) -> String {
    r.notes().get(NOTE).unwrap_or("").to_string()
}
