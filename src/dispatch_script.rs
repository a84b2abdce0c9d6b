//! WSGIDispatchScript: a Python script asked, for each request, where the
//! request goes. Its module-level functions `process_group(environ)`,
//! `application_group(environ)` and `callable_object(environ)` are each
//! optional; each returns a string (in the form the matching directive
//! takes: `%{GLOBAL}`, `%{ENV:var}`, a name...) or None to keep the
//! configured value.
//!
//! The script runs in the Apache child (embedded), in the interpreter of
//! its `application-group=` option, else in the request's own application
//! group. An exception or an answer of another type is an error: logged
//! with the traceback, and the request is answered 500.

use crate::apache::request::{Request, RequestScope};
use crate::config::{DirConfig, ScriptFile};
use crate::wsgi::{Backend, EnvironContext};
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::sync::Arc;

/// The functions asked, in order.
const FUNCTIONS: [&str; 3] = ["process_group", "application_group", "callable_object"];

/// What the script decided; None keeps the configured value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Choice {
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
}

/// One function's answer: a string, or None to keep the configured value.
fn answer(function: &str, value: &Bound<'_, PyAny>) -> Result<Option<String>, String> {
    if value.is_none() {
        return Ok(None);
    }
    match value.downcast::<PyString>() {
        Ok(s) => s
            .to_str()
            .map(|s| Some(s.to_string()))
            .map_err(|_| format!("{function}() returned a string that is not valid UTF-8")),
        Err(_) => Err(format!(
            "{function}() returned a value of type {}; it must return a string or None",
            value
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into())
        )),
    }
}

/// Runs the dispatch script for this request. `request_group` is the
/// request's application group, already expanded: the script runs there
/// unless its application-group= option says otherwise. Every failure is
/// logged on the request and comes back as Err(()).
pub fn run(
    r: &mut Request,
    dir: &DirConfig,
    script: &ScriptFile,
    request_group: &str,
) -> Result<Choice, ()> {
    let path = script.path.as_str();
    let headline = format!("WSGIDispatchScript '{path}' failed, request refused");
    let fail = |r: &Request, message: &str| crate::hooks_auth::log_refusal(r, &headline, message);
    let mtime = match crate::hooks_auth::script_ready(path) {
        Ok(m) => m,
        Err(message) => {
            fail(r, &message);
            return Err(());
        }
    };
    let group = match script.options.application_group.as_deref() {
        Some(configured) => crate::dispatch::resolve_application_group(r, configured),
        None => request_group.to_string(),
    };
    let mut vars =
        crate::embedded::cgi_vars(r, false, &crate::wsgi::proxy::ProxyTrust::from_dir(dir));
    vars.retain(|(k, _)| k != "HTTP_AUTHORIZATION" && k != "HTTP_PROXY_AUTHORIZATION");
    let reloading = dir.script_reloading();
    let scope = RequestScope::new(r);
    let backend: Arc<dyn Backend> = Arc::new(crate::hooks_auth::HookBackend(scope.handle()));
    let outcome = crate::python::with_interpreter(&group, |py| -> Result<Choice, String> {
        let _output = crate::python::stdio::route_to_request(backend.clone());
        let format = |e: PyErr| crate::wsgi::response::format_exception(py, &e);
        let module =
            crate::wsgi::scripts::load(py, path, mtime, reloading).map_err(|e| match e {
                crate::wsgi::WsgiError::Script(m) | crate::wsgi::WsgiError::Application(m) => m,
                crate::wsgi::WsgiError::ClientGone => "client gone".into(),
            })?;
        let ctx = EnvironContext {
            process_group: "",
            application_group: &group,
            callable_object: "",
            script_reloading: reloading,
            multithread: crate::apache::mpm_info().threaded,
            multiprocess: true,
            apache_request: None,
        };
        let mut choice = Choice::default();
        for function in FUNCTIONS {
            let Ok(f) = module.getattr(function) else {
                continue;
            };
            // A fresh environ for each call: one function changing it must
            // not steer the next.
            let environ = crate::wsgi::environ::build(
                py,
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                &ctx,
            )
            .map_err(format)?;
            let errors = Bound::new(py, crate::wsgi::errors::ErrorLog::new(backend.clone()))
                .map_err(format)?;
            environ.set_item("wsgi.errors", &errors).map_err(format)?;
            let result = f.call1((environ,));
            let _ = errors.call_method0("flush");
            let value = answer(function, &result.map_err(format)?)?;
            match function {
                "process_group" => choice.process_group = value,
                "application_group" => choice.application_group = value,
                _ => choice.callable_object = value,
            }
        }
        Ok(choice)
    });
    drop(scope);
    match outcome {
        Ok(Ok(choice)) => Ok(choice),
        Ok(Err(message)) => {
            fail(r, &message);
            Err(())
        }
        Err(why) => {
            fail(
                r,
                &format!("cannot enter application group '{group}': {why}"),
            );
            Err(())
        }
    }
}
