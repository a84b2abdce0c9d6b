//! One WSGI request from start to end, the same in embedded and daemon mode:
//! load the script, build the environ, call the application, stream the
//! response, and classify what went wrong.

use super::errors::ErrorLog;
use super::input::Input;
use super::start_response::StartResponse;
use super::{Backend, EnvironContext, Level, WsgiError, environ, response, scripts};
use crate::python::capsule::LentPointer;
use pyo3::prelude::*;
use std::sync::Arc;

/// Which application to run.
pub struct AppTarget<'a> {
    pub script: &'a str,
    pub callable_object: &'a str,
    /// Modification time of the script as the caller saw it (for reloading).
    pub mtime: i64,
    pub reloading: bool,
}

/// A request that did not complete normally.
#[derive(Debug)]
pub struct Failure {
    /// Whether the response had started (status and headers sent).
    pub started: bool,
    pub error: WsgiError,
}

/// Serves one request on `backend`.
pub fn serve<'v>(
    backend: Arc<dyn Backend>,
    target: &AppTarget<'_>,
    vars: impl IntoIterator<Item = (&'v str, &'v str)>,
    ctx: &EnvironContext<'_>,
) -> Result<(), Failure> {
    // Body bytes in and out are counted for the request's events and metrics.
    let metered = Arc::new(super::metrics::Metered::new(backend));
    let backend: Arc<dyn Backend> = metered.clone();
    let vars: Vec<(&str, &str)> = vars.into_iter().collect();
    let request_id = vars
        .iter()
        .find(|(k, _)| *k == "mod_wsgi.request_id")
        .map(|(_, id)| *id);
    // The application group's interpreter: "" is the main one, any other
    // name a sub-interpreter of this process, created on first use.
    let entered = crate::python::with_interpreter(ctx.application_group, |py| {
        let _output = crate::python::stdio::route_to_request(backend.clone());
        // From before the script loads until it is dropped, at the end:
        // request_data(), active_requests, the events and process metrics.
        let mut scope = super::events::RequestScope::begin(py, request_id);
        let early = |error| Failure {
            started: false,
            error,
        };
        let py_err = |e: PyErr| early(WsgiError::Application(response::format_exception(py, &e)));
        let module =
            scripts::load(py, target.script, target.mtime, target.reloading).map_err(early)?;
        let application = module.getattr(target.callable_object).map_err(|_| {
            early(WsgiError::Script(format!(
                "Target WSGI script '{}' does not contain WSGI application '{}'",
                target.script, target.callable_object
            )))
        })?;
        let environ = environ::build(py, vars, ctx).map_err(py_err)?;
        let application = scope.application_starting(&environ, application, target.callable_object);
        // WSGIPassApacheRequest: the request_rec for C code, lent until the
        // application is done with the request (close() included); the
        // capsule is refused from then on.
        let lent_request = match ctx
            .apache_request
            .and_then(|r| std::ptr::NonNull::new(r.as_raw().cast::<std::ffi::c_void>()))
        {
            Some(pointer) => {
                let lent = LentPointer::new(py, pointer).map_err(py_err)?;
                environ
                    .set_item("apache.request_rec", lent.object())
                    .map_err(py_err)?;
                Some(lent)
            }
            None => None,
        };
        let errors = Bound::new(py, ErrorLog::new(backend.clone())).map_err(py_err)?;
        let input = Bound::new(py, Input::new(backend.clone())).map_err(py_err)?;
        environ.set_item("wsgi.input", input).map_err(py_err)?;
        environ.set_item("wsgi.errors", &errors).map_err(py_err)?;
        let wrapper = py.get_type::<super::file_wrapper::FileWrapper>();
        environ
            .set_item("wsgi.file_wrapper", wrapper)
            .map_err(py_err)?;
        let start = Bound::new(py, StartResponse::new(backend.clone())).map_err(py_err)?;
        let head = start.borrow().head.clone();
        let result = response::run(py, &application, environ, &*backend, start);
        let status = head.lock().status.as_ref().map_or(0, |(code, _)| *code);
        scope.application_finished(status, &metered.io());
        let _ = errors.call_method0("flush");
        drop(lent_request);
        result.map_err(|error| Failure {
            started: head.lock().sent,
            error,
        })
    });
    entered.unwrap_or_else(|why| {
        Err(Failure {
            started: false,
            error: WsgiError::Script(format!(
                "cannot run '{}' in application group '{}': {why}",
                target.script, ctx.application_group
            )),
        })
    })
}

/// Logs a failed request as one headline plus the traceback lines, naming
/// the script, where it ran and the pid.
pub fn report(backend: &dyn Backend, failure: &Failure, script: &str, mode: &str) {
    let pid = std::process::id();
    match &failure.error {
        WsgiError::ClientGone => backend.log(
            Level::Info,
            &format!(
                "client closed the connection while '{script}' was responding ({mode}, pid {pid})"
            ),
        ),
        WsgiError::Script(msg) | WsgiError::Application(msg) => {
            let mut lines = msg.lines();
            let first = lines.next().unwrap_or("");
            let when = if failure.started {
                "after the response started; the response is cut short"
            } else {
                "returning 500"
            };
            backend.log(
                Level::Error,
                &format!("Exception occurred processing WSGI script '{script}' ({mode}, pid {pid}), {when}: {first}"),
            );
            for line in lines {
                backend.log(Level::Error, line);
            }
        }
    }
}
