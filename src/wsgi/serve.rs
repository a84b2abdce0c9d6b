//! One WSGI request from start to end, the same in embedded and daemon mode:
//! load the script, build the environ, call the application, stream the
//! response, and classify what went wrong.

use super::errors::{self, LogSink};
use super::input::Input;
use super::response::interpreter_context;
use super::start_response::{ResponseHead, StartResponse};
use super::{Backend, EnvironContext, Level, RequestError, environ, response, scripts};
use crate::python::capsule::LentPointer;
use pyo3::prelude::*;
use std::sync::Arc;

/// Which application to run.
pub struct AppTarget<'a> {
    pub script: &'a str,
    /// The file Apache matched (`r->filename`, SCRIPT_FILENAME): the
    /// script itself, or the file a WSGIHandlerScript serves. mod_wsgi's
    /// log lines name it, and the script's `reload_required()` gets it.
    pub resource: &'a str,
    pub callable_object: &'a str,
    /// Modification time of the script as the caller saw it (for reloading).
    pub mtime: i64,
    pub reloading: bool,
}

/// A request that did not complete normally.
#[derive(Debug)]
pub struct Failure {
    /// Whether the response had started (status and headers sent): the
    /// client cannot get an error status any more, only a cut response.
    pub started: bool,
    /// Body bytes handed to the backend before the failure.
    pub body_bytes: u64,
    pub error: RequestError,
}

/// What a failure's log lines name: the resource and where it ran (an
/// owned copy of `AppTarget` and `EnvironContext`'s parts, for an exchange
/// that outlives the call: see `daemon::loop_exchange`).
pub struct ReportTarget {
    pub resource: String,
    /// "main interpreter of daemon process 'G'" and the like.
    pub context: String,
}

impl ReportTarget {
    pub fn new(target: &AppTarget<'_>, ctx: &EnvironContext<'_>) -> ReportTarget {
        ReportTarget {
            resource: target.resource.to_string(),
            context: interpreter_context(ctx.application_group, ctx.process_group),
        }
    }
}

/// How serving a request went.
pub struct Served {
    pub outcome: Result<(), Failure>,
    /// The script's `reload_required()` made it load again: daemon mode
    /// restarts the process for that, as mod_wsgi does.
    pub reload_requested: bool,
}

/// Serves one request on `backend`.
pub fn serve<'v>(
    backend: Arc<dyn Backend>,
    target: &AppTarget<'_>,
    vars: impl IntoIterator<Item = (&'v str, &'v str)>,
    ctx: &EnvironContext<'_>,
) -> Served {
    let mut reload_requested = false;
    // Body bytes in and out are counted for the request's events and metrics.
    let metered = Arc::new(super::metrics::Metered::new(backend));
    let backend: Arc<dyn Backend> = metered.clone();
    let vars: Vec<(&str, &str)> = vars.into_iter().collect();
    // A HEAD the application sees as one may answer a Content-Length
    // without the body.
    let head_request = vars
        .iter()
        .any(|(k, v)| *k == "REQUEST_METHOD" && *v == "HEAD");
    let request_id = vars
        .iter()
        .find(|(k, _)| *k == "mod_wsgi.request_id")
        .map(|(_, id)| *id);
    // The application group's interpreter: "" is the main one, any other
    // name a sub-interpreter of this process, created on first use.
    let entered = crate::python::with_interpreter(ctx.application_group, |py| {
        // An interrupt the daemon aimed at this thread's previous request
        // must not land in this one.
        if super::module::in_daemon_process() {
            crate::python::interp::clear_pending_interrupt(py, ctx.application_group);
        }
        // From before the script loads until it is dropped, at the end:
        // request_data(), active_requests, the events and process metrics.
        let mut scope = super::events::RequestScope::begin(py, request_id);
        let early = |error| Failure {
            started: false,
            body_bytes: 0,
            error,
        };
        let py_err = |e: PyErr| early(response::request_error(py, e));
        let loaded = scripts::load_for_request(
            py,
            target.script,
            target.mtime,
            target.reloading,
            target.resource,
        )
        .map_err(|e| early(e.into()))?;
        reload_requested = loaded.reload_requested;
        // The callable itself, or the adapter of an ASGI application.
        let application = crate::asgi::callable(&loaded.module, target.callable_object)
            .map_err(py_err)?
            .ok_or_else(|| {
                early(RequestError::MissingCallable(format!(
                    "WSGI0089: Target WSGI script '{}' does not contain WSGI application '{}'.",
                    target.script, target.callable_object
                )))
            })?;
        // The environ's SCRIPT_FILENAME, as the application gets it.
        let script_filename = vars
            .iter()
            .find(|(k, _)| *k == "SCRIPT_FILENAME")
            .map(|(_, v)| v.to_string());
        let (environ, arrival) = environ::build(py, vars, ctx).map_err(py_err)?;
        // From here the request's output carries its client and script;
        // what the script printed while being imported went to the
        // server's log, as with mod_wsgi.
        let log = LogSink::for_request(backend.clone(), script_filename);
        let _output = errors::route_to_request(log.clone());
        let application =
            scope.application_starting(&environ, arrival, application, target.callable_object);
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
        let input = Bound::new(py, Input::new(backend.clone())).map_err(py_err)?;
        environ.set_item("wsgi.input", input).map_err(py_err)?;
        let wsgi_errors = errors::wsgi_errors(py, log.clone()).map_err(py_err)?;
        environ
            .set_item("wsgi.errors", wsgi_errors.stream())
            .map_err(py_err)?;
        let wrapper = py.get_type::<super::file_wrapper::FileWrapper>();
        environ
            .set_item("wsgi.file_wrapper", wrapper)
            .map_err(py_err)?;
        let start = Bound::new(py, StartResponse::new(backend.clone())).map_err(py_err)?;
        let head = start.borrow().head.clone();
        let ran = response::run(py, &application, environ, &*backend, start);
        // An exchange the event loop took over answers there (and checks
        // its own length): nothing of it is this call's to send.
        let detached = backend.is_detached();
        let result = ran.result.and_then(|()| {
            if detached {
                return Ok(());
            }
            check_length(&*backend, &head.lock(), head_request, target, ctx)
        });
        // From here start_response and write() kept by the application raise.
        head.lock().finished = true;
        if detached {
            // The request goes on in the loop, which ends it.
            if let Some(record) = scope.hand_over() {
                backend.hand_over_record(py, record);
            }
        } else {
            let status = head.lock().status.as_ref().map_or(0, |(code, _)| *code);
            // The tail is counted as written: it goes out right after.
            let mut io = metered.io();
            if let Some(tail) = ran.tail.as_ref().filter(|t| t.body_len() > 0) {
                io.output_bytes += tail.body_len() as u64;
                io.output_writes += 1;
            }
            scope.application_finished(status, &io);
        }
        log.close();
        wsgi_errors.recycle();
        drop(lent_request);
        let started = head.lock().sent;
        Ok((ran.tail, result, started))
    });
    // The tail goes out with the GIL let go (response::Tail says why),
    // also before a failure found after the whole response was made.
    let outcome = match entered {
        Ok(Ok((tail, result, started))) => {
            let sent = tail.map_or(Ok(()), |t| t.send(&*backend));
            // The application's failure, if any, is the one to report.
            result
                .and(sent.map_err(RequestError::from))
                .map_err(|error| Failure {
                    started,
                    body_bytes: metered.io().output_bytes,
                    error,
                })
        }
        Ok(Err(failure)) => Err(failure),
        Err(why) => Err(Failure {
            started: false,
            body_bytes: 0,
            error: RequestError::Message(format!(
                "cannot run '{}' in application group '{}': {why}",
                target.script, ctx.application_group
            )),
        }),
    };
    Served {
        outcome,
        reload_requested,
    }
}

/// The body the application produced against the Content-Length it set.
/// Longer: the bytes past it were not sent (as with mod_wsgi), the
/// response is whole; a line says so. Shorter: the client would wait for
/// bytes that never come, and a cache keep a cut page, so the response
/// fails (and is cut short visibly). A HEAD, 1xx, 204 or 304 response has
/// no body whatever its Content-Length says.
fn check_length(
    backend: &dyn Backend,
    head: &ResponseHead,
    head_request: bool,
    target: &AppTarget<'_>,
    ctx: &EnvironContext<'_>,
) -> Result<(), RequestError> {
    let Some(declared) = head.content_length else {
        return Ok(());
    };
    let produced = head.produced;
    let status = head.status.as_ref().map_or(0, |(code, _)| *code);
    let bodiless = head_request || status < 200 || status == 204 || status == 304;
    if produced > declared {
        backend.log(
            Level::Warning,
            &format!(
                "[script {}] response body of {produced} bytes is longer than its Content-Length of {declared}: only {declared} were sent ({}, pid {})",
                target.resource,
                interpreter_context(ctx.application_group, ctx.process_group),
                std::process::id()
            ),
        );
    } else if produced < declared && !bodiless {
        return Err(RequestError::Message(format!(
            "response body ended after {produced} of the {declared} bytes its Content-Length declared"
        )));
    }
    Ok(())
}

/// Logs a failed request as mod_wsgi 6 does (a headline, then the
/// traceback lines; an info line for RequestTimeout), each headline
/// followed by this process's pid and what became of the response.
pub fn report(
    backend: &dyn Backend,
    failure: &Failure,
    target: &AppTarget<'_>,
    ctx: &EnvironContext<'_>,
) {
    report_at(backend, failure, &ReportTarget::new(target, ctx));
}

/// [`report`], for what `at` names.
pub fn report_at(backend: &dyn Backend, failure: &Failure, at: &ReportTarget) {
    let pid = std::process::id();
    let resource = at.resource.as_str();
    let context = &at.context;
    let cut = if failure.started {
        format!(
            ", after the response started: response cut short after {} body bytes",
            failure.body_bytes
        )
    } else {
        String::new()
    };
    match &failure.error {
        RequestError::ClientGone => backend.log(
            Level::Info,
            &format!(
                "[script {resource}] client closed the connection while the response was sent ({context}, pid {pid})"
            ),
        ),
        RequestError::RequestTimeout if failure.started => backend.log(
            Level::Info,
            &format!(
                "[script {resource}] Request interrupted by RequestTimeout after headers sent; response truncated. ({context}, pid {pid}, after {} body bytes)",
                failure.body_bytes
            ),
        ),
        RequestError::RequestTimeout => backend.log(
            Level::Info,
            &format!(
                "[script {resource}] Request interrupted by RequestTimeout; thread recovered. ({context}, pid {pid}: 504 Gateway Timeout)"
            ),
        ),
        RequestError::Exception(exception) => {
            let headline = exception.headline(Some(resource), resource, context);
            backend.log(Level::Error, &format!("{headline} (pid {pid}{cut})"));
            for line in exception.traceback_lines() {
                backend.log(Level::Error, line);
            }
        }
        RequestError::Message(message) | RequestError::MissingCallable(message) => {
            let mut lines = message.lines();
            let first = lines.next().unwrap_or("");
            backend.log(
                Level::Error,
                &format!("[script {resource}] {first} (pid {pid}{cut})"),
            );
            for line in lines {
                backend.log(Level::Error, line);
            }
        }
    }
}
