//! The Python hook scripts, one file per Apache phase they take part in:
//!
//! - `access`: WSGIAccessScript, in the access_checker phase;
//! - `auth`: WSGIAuthUserScript (the `wsgi` authn provider) and
//!   WSGIAuthGroupScript (`Require wsgi-group`), in the authentication and
//!   authorisation phases;
//! - `dispatch`: WSGIDispatchScript, in the handler phase before the
//!   application is chosen;
//! - `handler`: WSGIHandlerScript, the application that serves a file in
//!   the handler phase (through the application path, not [`run`]).
//!
//! Access, auth and dispatch scripts always run in the Apache child, in an
//! interpreter of its Python (which `dispatch::child_init` starts whenever
//! one of them is configured), through the one path here: load the script,
//! build a cut-down environ, call a function, read its answer; any failure
//! is logged on the request with its traceback and refuses the request.

pub mod access;
pub mod auth;
pub mod dispatch;
pub mod handler;

use crate::apache::log::Level;
use crate::apache::request::{Request, RequestScope, SharedRequest};
use crate::config::{DirConfig, ScriptFile};
use crate::wsgi::{Backend, BackendError, EnvironContext, WsgiError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyModule, PyString, PyTuple};
use std::sync::Arc;

/// The directives whose scripts run in Apache children: when the server
/// configuration (not an .htaccess file, read too late) has one, Python is
/// started in the children even with WSGIRestrictEmbedded On, as mod_wsgi
/// does.
pub const RUN_IN_CHILDREN: &[&str] = &[
    "WSGIAccessScript",
    "WSGIAuthUserScript",
    "WSGIAuthGroupScript",
    "WSGIDispatchScript",
];

/// wsgi.errors and print() of a hook script go to the request's log; there
/// is no body to read or response to send in the phases they run in.
struct HookBackend(SharedRequest);

impl Backend for HookBackend {
    fn read_body(&self, _buf: &mut crate::wsgi::BodyBuf<'_>) -> Result<usize, BackendError> {
        Ok(0)
    }
    fn send_head(&self, _: u16, _: &str, _: &[(String, String)]) -> Result<(), BackendError> {
        Err(BackendError::Finished)
    }
    fn write_body(&self, _data: &[u8]) -> Result<(), BackendError> {
        Err(BackendError::Finished)
    }
    fn log(&self, level: Level, text: &str) {
        self.0.log(level, text);
    }
}

/// The CGI variables a phase can give a hook script's environ.
#[derive(Clone, Copy)]
pub(crate) enum Phase {
    /// Access and auth phases: the common variables and those of the
    /// request line; ap_add_cgi_vars' PATH_TRANSLATED subrequest is not
    /// made this early.
    BeforeHandler,
    /// Handler phase: the CGI variables an application gets.
    Handler,
}

/// One hook script as a phase runs it.
pub(crate) struct HookScript<'a> {
    /// The directive that configured it, for the log lines.
    pub directive: &'static str,
    pub script: &'a ScriptFile,
    /// The one function the phase calls (named in the refusal line and in
    /// mod_wsgi.callable_object); None for a script asked several optional
    /// functions (WSGIDispatchScript).
    pub function: Option<&'static str>,
    pub phase: Phase,
}

/// What a hook function returned, reduced to the shapes the hooks accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returned {
    None,
    Bool(bool),
    Str(String),
    /// Any other value: its Python type name.
    Other(String),
}

impl Returned {
    pub(crate) fn from_py(value: &Bound<'_, PyAny>) -> Returned {
        if value.is_none() {
            Returned::None
        } else if let Ok(b) = value.downcast::<PyBool>() {
            Returned::Bool(b.is_true())
        } else if let Ok(s) = value.downcast::<PyString>() {
            match s.to_str() {
                Ok(s) => Returned::Str(s.to_string()),
                Err(_) => Returned::Other("str (not encodable)".into()),
            }
        } else {
            Returned::Other(type_name(value))
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Returned::None => "None".into(),
            Returned::Bool(b) => if *b { "True" } else { "False" }.into(),
            Returned::Str(s) => format!("the string {s:?}"),
            Returned::Other(t) => format!("a value of type {t}"),
        }
    }
}

pub(crate) fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The loaded script of a hook, inside its interpreter.
pub(crate) struct LoadedScript<'py, 'a> {
    module: Bound<'py, PyModule>,
    vars: &'a [crate::cgi::Var<'a>],
    ctx: &'a EnvironContext<'a>,
    backend: &'a Arc<dyn Backend>,
}

impl<'py> LoadedScript<'py, '_> {
    /// Calls `function(environ, *args)` with a fresh environ (one call
    /// changing it must not steer the next); None when the script does not
    /// define the function.
    pub fn call_if_defined(
        &self,
        function: &str,
        args: &[&str],
    ) -> Result<Option<Bound<'py, PyAny>>, String> {
        let py = self.module.py();
        let Ok(f) = self.module.getattr(function) else {
            return Ok(None);
        };
        let format = |e: PyErr| crate::wsgi::response::format_exception(py, &e);
        let (environ, _) = crate::wsgi::environ::build(
            py,
            self.vars.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
            self.ctx,
        )
        .map_err(format)?;
        // wsgi.errors is the request's (tagged with its file, as mod_wsgi
        // tags it); print() in a hook goes to the server's log, as there.
        let filename = self
            .vars
            .iter()
            .find(|(k, _)| k == "SCRIPT_FILENAME")
            .map(|(_, v)| v.to_string());
        let log = crate::wsgi::errors::LogSink::for_request(self.backend.clone(), filename);
        let errors = crate::wsgi::errors::wsgi_errors(py, log.clone()).map_err(format)?;
        environ
            .set_item("wsgi.errors", errors.stream())
            .map_err(format)?;
        let mut items: Vec<Bound<'py, PyAny>> = vec![environ.into_any()];
        items.extend(args.iter().map(|a| PyString::new(py, a).into_any()));
        let result = f.call1(PyTuple::new(py, items).map_err(format)?);
        log.close();
        errors.recycle();
        result.map(Some).map_err(format)
    }

    /// As [`call_if_defined`](Self::call_if_defined), for a function the
    /// script must define.
    pub fn call(&self, function: &str, args: &[&str]) -> Result<Bound<'py, PyAny>, String> {
        self.call_if_defined(function, args)?
            .ok_or_else(|| format!("the script does not define {function}()"))
    }
}

/// A hook script failed: the failure is logged on the request already, and
/// the request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// Runs a hook script for this request: checks Python runs here, enters
/// the interpreter of its application-group= (else `otherwise_group`,
/// already expanded), loads the script (reloading it when it changed and
/// WSGIScriptReloading is On) and hands it to `body`. Every failure is
/// logged on the request (a line naming the script, then the traceback)
/// and comes back as Err(Refused); the caller refuses the request.
pub(crate) fn run<T>(
    r: &mut Request,
    dir: &DirConfig,
    hook: &HookScript<'_>,
    otherwise_group: &str,
    body: impl for<'py> FnOnce(&LoadedScript<'py, '_>) -> Result<T, String>,
) -> Result<T, Refused> {
    let path = hook.script.path.as_str();
    let headline = match hook.function {
        Some(function) => format!(
            "{} '{path}': {function}() failed, request refused",
            hook.directive
        ),
        None => format!("{} '{path}' failed, request refused", hook.directive),
    };
    let fail = |r: &Request, message: &str| log_refusal(r, &headline, message);
    if !crate::python::is_initialized() {
        fail(
            r,
            "Python is not running in this Apache child: it failed to start (see the log of the child's start), \
             or only .htaccess files name hook scripts and WSGIRestrictEmbedded is On",
        );
        return Err(Refused);
    }
    let mtime = match crate::wsgi::scripts::mtime_of(path) {
        Ok(m) => m,
        Err(message) => {
            fail(r, &message);
            return Err(Refused);
        }
    };
    let group = match hook.script.options.application_group.as_deref() {
        Some(configured) => crate::dispatch::resolve_application_group(r, configured),
        None => otherwise_group.to_string(),
    };
    let vars = environ_vars(r, dir, hook.phase);
    let reloading = dir.script_reloading();
    let scope = RequestScope::new(r);
    let backend: Arc<dyn Backend> = Arc::new(HookBackend(scope.handle()));
    let mpm = crate::apache::mpm_info();
    let ctx = EnvironContext {
        process_group: "",
        application_group: &group,
        callable_object: hook.function.unwrap_or(""),
        script_reloading: reloading,
        multithread: mpm.multithread(),
        multiprocess: mpm.multiprocess(),
        apache_request: None,
    };
    let outcome = crate::python::with_interpreter(&group, |py| -> Result<T, String> {
        let module =
            crate::wsgi::scripts::load(py, path, mtime, reloading).map_err(|e| match e {
                WsgiError::Script(m) | WsgiError::Application(m) => m,
                WsgiError::ClientGone => "client gone".into(),
            })?;
        body(&LoadedScript {
            module,
            vars: &vars,
            ctx: &ctx,
            backend: &backend,
        })
    });
    drop(scope);
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => {
            fail(r, &message);
            Err(Refused)
        }
        Err(why) => {
            fail(
                r,
                &format!("cannot enter application group '{group}': {why}"),
            );
            Err(Refused)
        }
    }
}

/// For the hooks that call one function and read one answer.
pub(crate) fn call_one<T>(
    r: &mut Request,
    dir: &DirConfig,
    hook: &HookScript<'_>,
    otherwise_group: &str,
    args: &[&str],
    read: impl for<'py> FnOnce(&Bound<'py, PyAny>) -> Result<T, String>,
) -> Result<T, Refused> {
    let function = hook.function.unwrap_or_default();
    run(r, dir, hook, otherwise_group, |script| {
        read(&script.call(function, args)?)
    })
}

/// Logs why a hook script refused the request: `headline` and the first
/// line of `message`, then the rest of it (the traceback) line by line.
fn log_refusal(r: &Request, headline: &str, message: &str) {
    let mut lines = message.lines();
    r.log(
        Level::Error,
        &format!(
            "{headline} (pid {}): {}",
            std::process::id(),
            lines.next().unwrap_or("")
        ),
    );
    for line in lines {
        r.log(Level::Error, line);
    }
}

/// The environ variables of a hook script: a cut-down version of an
/// application's (what Apache has at this phase, with trusted proxy
/// headers applied); never the Authorization header.
fn environ_vars<'r>(r: &mut Request, dir: &DirConfig, phase: Phase) -> Vec<crate::cgi::Var<'r>> {
    let proxy = crate::wsgi::proxy::ProxyTrust::from_dir(dir);
    let mut vars = match phase {
        Phase::Handler => crate::cgi::vars(r, false, &proxy),
        Phase::BeforeHandler => {
            r.add_common_vars();
            let mut vars: Vec<crate::cgi::Var<'r>> = r
                .subprocess_env()
                .entries()
                .map(|(k, v)| (k.into(), v.into()))
                .collect();
            for (k, v) in r.request_line_vars() {
                vars.retain(|(key, _)| key != k);
                vars.push((k.into(), v.into()));
            }
            crate::wsgi::proxy::apply(&mut vars, &proxy);
            vars
        }
    };
    vars.retain(|(k, _)| k != "HTTP_AUTHORIZATION" && k != "HTTP_PROXY_AUTHORIZATION");
    vars
}
