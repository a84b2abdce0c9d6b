//! Embedded mode: the application runs inside this Apache child, in the
//! interpreter started by `child_init`.

pub mod scripts;

use crate::apache::log::Level;
use crate::apache::request::{Request, RequestScope};
use crate::apache::status;
use crate::wsgi::WsgiError;
use crate::wsgi::environ::{self, EnvironContext};
use crate::wsgi::errors::ErrorLog;
use crate::wsgi::input::Input;
use crate::wsgi::response;
use crate::wsgi::start_response::StartResponse;
use pyo3::prelude::*;

/// Per-request choices made from the configuration.
pub struct RequestOptions {
    pub script: String,
    pub callable_object: String,
    pub application_group: String,
    pub process_group: String,
    pub pass_authorization: bool,
    pub script_reloading: bool,
    pub chunked_request: bool,
    pub multithread: bool,
}

/// Serves one request with the WSGI application of `opts.script`; returns
/// the hook status for Apache.
pub fn handle(r: &mut Request, opts: &RequestOptions) -> i32 {
    let pid = std::process::id();
    if !crate::python::is_initialized() {
        r.log(
            Level::Error,
            &format!(
                "Python is not running in this Apache child (pid {pid}); embedded mode is off (WSGIRestrictEmbedded On?), cannot serve '{}'",
                opts.script
            ),
        );
        return status::HTTP_SERVICE_UNAVAILABLE;
    }
    if let Err(code) = r.setup_body(opts.chunked_request) {
        return code;
    }
    let mtime = r.mtime();
    let scope = RequestScope::new(r);
    let request = scope.handle();
    let outcome = Python::with_gil(|py| -> Result<(), (bool, WsgiError)> {
        let before_headers = |e| (false, e);
        let module = scripts::load(py, &opts.script, mtime, opts.script_reloading)
            .map_err(before_headers)?;
        let application = module.getattr(opts.callable_object.as_str()).map_err(|_| {
            (
                false,
                WsgiError::Script(format!(
                    "Target WSGI script '{}' does not contain WSGI application '{}'",
                    opts.script, opts.callable_object
                )),
            )
        })?;
        let ctx = EnvironContext {
            process_group: &opts.process_group,
            application_group: &opts.application_group,
            callable_object: &opts.callable_object,
            script_reloading: opts.script_reloading,
            pass_authorization: opts.pass_authorization,
            multithread: opts.multithread,
            multiprocess: true,
        };
        let environ = request
            .with(|r| environ::build(py, r, &ctx))
            .ok_or((false, WsgiError::ClientGone))?
            .map_err(|e| {
                (
                    false,
                    WsgiError::Application(response::format_exception(py, &e)),
                )
            })?;
        let py_err = |e: PyErr| {
            (
                false,
                WsgiError::Application(response::format_exception(py, &e)),
            )
        };
        let errors = Bound::new(py, ErrorLog::new(request.clone())).map_err(py_err)?;
        environ
            .set_item(
                "wsgi.input",
                Bound::new(py, Input::new(request.clone())).map_err(py_err)?,
            )
            .map_err(py_err)?;
        environ.set_item("wsgi.errors", &errors).map_err(py_err)?;
        let start = Bound::new(py, StartResponse::new(request.clone())).map_err(py_err)?;
        let head = start.borrow().head.clone();
        let result = response::run(py, &application, environ, &request, start);
        let _ = errors.call_method0("flush");
        result.map_err(|e| (head.lock().sent, e))
    });
    drop(scope);
    match outcome {
        Ok(()) => status::OK,
        Err((_, WsgiError::ClientGone)) => {
            r.log(
                Level::Info,
                &format!(
                    "client closed the connection while '{}' was responding (pid {pid})",
                    opts.script
                ),
            );
            status::OK
        }
        Err((sent, WsgiError::Script(msg) | WsgiError::Application(msg))) => {
            let mut lines = msg.lines();
            let first = lines.next().unwrap_or("");
            let when = if sent {
                "after the response started; the response is cut short"
            } else {
                "returning 500"
            };
            r.log(
                Level::Error,
                &format!("Exception occurred processing WSGI script '{}' (embedded, pid {pid}), {when}: {first}", opts.script),
            );
            for line in lines {
                r.log(Level::Error, line);
            }
            if sent {
                status::DONE
            } else {
                status::HTTP_INTERNAL_SERVER_ERROR
            }
        }
    }
}
