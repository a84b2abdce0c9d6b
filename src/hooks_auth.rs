//! WSGIAccessScript, WSGIAuthUserScript and WSGIAuthGroupScript: Python
//! functions that take part in Apache's access, authentication and
//! authorisation phases, as mod_wsgi documents them.
//!
//! - `allow_access(environ, host)`: True allows, False is 403, None leaves
//!   the decision to other modules.
//! - `check_password(environ, user, password)` (Basic) and
//!   `get_realm_hash(environ, user, realm)` (Digest), behind the `wsgi`
//!   authn provider: True / a hash string when the user is known and the
//!   password right, False when wrong, None when the user does not exist;
//!   check_password may return a non-empty string, which becomes the user
//!   name (REMOTE_USER).
//! - `groups_for_user(environ, user)` behind `Require wsgi-group NAME ...`:
//!   the groups the user belongs to.
//!
//! The scripts always run in the Apache child (embedded), in the
//! application group of their `application-group=` option, `%{GLOBAL}` by
//! default. Anything else than the documented answers (an exception, a
//! value of another type) is an error: logged with the traceback and
//! answered 500 by Apache, never taken as an allow.

use crate::apache::log::Level;
use crate::apache::request::{Request, RequestScope, SharedRequest};
use crate::apache::status;
use crate::config::{DirConfig, ScriptFile};
use crate::wsgi::{Backend, BackendError, EnvironContext};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyString, PyTuple};
use std::sync::Arc;

pub use crate::apache::auth::{AuthnStatus, AuthzStatus};

/// The application group hook scripts run in unless told otherwise.
const DEFAULT_GROUP: &str = "%{GLOBAL}";

/// wsgi.errors and print() of a hook script (or the dispatch script) go to
/// the request's log; there is no body to read or response to send in the
/// phases they run in.
pub(crate) struct HookBackend(pub(crate) SharedRequest);

/// Logs why a hook-like script refused the request: `headline` and the
/// first line of `message`, then the rest of it (the traceback) line by line.
pub(crate) fn log_refusal(r: &Request, headline: &str, message: &str) {
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

/// Checks a hook-like script can run here (these always run embedded) and
/// returns its modification time for the reload check.
pub(crate) fn script_ready(path: &str) -> Result<i64, String> {
    if !crate::python::is_initialized() {
        return Err("Python is not running in this Apache child (WSGIRestrictEmbedded On?); this script always runs embedded".into());
    }
    crate::wsgi::scripts::mtime_of(path)
}

impl Backend for HookBackend {
    fn read_body(&self, _buf: &mut [u8]) -> Result<usize, BackendError> {
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
    fn from_py(value: &Bound<'_, PyAny>) -> Returned {
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
            Returned::Other(
                value
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "?".into()),
            )
        }
    }

    fn describe(&self) -> String {
        match self {
            Returned::None => "None".into(),
            Returned::Bool(b) => if *b { "True" } else { "False" }.into(),
            Returned::Str(s) => format!("the string {s:?}"),
            Returned::Other(t) => format!("a value of type {t}"),
        }
    }
}

/// allow_access's answer as the access checker's status.
pub fn access_status(returned: &Returned) -> Result<i32, String> {
    match returned {
        Returned::Bool(true) => Ok(status::OK),
        Returned::Bool(false) => Ok(status::HTTP_FORBIDDEN),
        Returned::None => Ok(status::DECLINED),
        other => Err(format!(
            "returned {}; it must return True, False or None",
            other.describe()
        )),
    }
}

/// check_password's answer: the status, and the user name to use instead
/// of the one the client sent.
pub fn password_status(returned: &Returned) -> Result<(AuthnStatus, Option<String>), String> {
    match returned {
        Returned::Bool(true) => Ok((AuthnStatus::Granted, None)),
        Returned::Bool(false) => Ok((AuthnStatus::Denied, None)),
        Returned::None => Ok((AuthnStatus::UserNotFound, None)),
        Returned::Str(name) if !name.is_empty() && !name.contains(['\r', '\n', '\0']) => {
            Ok((AuthnStatus::Granted, Some(name.clone())))
        }
        other => Err(format!(
            "returned {}; it must return True, False, None or a non-empty user name",
            other.describe()
        )),
    }
}

/// get_realm_hash's answer: the hash, or Err(UserNotFound) for None.
pub fn realm_hash_status(returned: &Returned) -> Result<Result<String, AuthnStatus>, String> {
    match returned {
        Returned::None => Ok(Err(AuthnStatus::UserNotFound)),
        Returned::Str(hash) if !hash.is_empty() && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            Ok(Ok(hash.to_ascii_lowercase()))
        }
        other => Err(format!(
            "returned {}; it must return None or the hex MD5 of 'user:realm:password'",
            other.describe()
        )),
    }
}

/// Splits the rest of a `Require wsgi-group` line into group names, as
/// Apache splits directive arguments: by white space, with "..." or '...'
/// quoting a name that contains spaces.
pub fn parse_group_line(line: &str) -> Result<Vec<String>, String> {
    let mut groups = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            let mut closed = false;
            for c in chars.by_ref() {
                if c == first {
                    closed = true;
                    break;
                }
                word.push(c);
            }
            if !closed {
                return Err(format!("Require wsgi-group: unbalanced quote in '{line}'"));
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                word.push(c);
            }
        }
        groups.push(word);
    }
    if groups.is_empty() {
        return Err("Require wsgi-group needs one or more group names".into());
    }
    Ok(groups)
}

/// Whether a user in `member_of` passes `Require wsgi-group` for
/// `required`; `authoritative` (WSGIGroupAuthoritative) decides between
/// denied and no opinion when not.
pub fn group_decision(
    required: &[String],
    member_of: &[String],
    authoritative: bool,
) -> AuthzStatus {
    if required.iter().any(|g| member_of.contains(g)) {
        AuthzStatus::Granted
    } else if authoritative {
        AuthzStatus::Denied
    } else {
        AuthzStatus::Neutral
    }
}

/// The environ a hook script gets: a cut-down version of an application's
/// (the CGI variables Apache has at this phase, with trusted proxy headers
/// applied, wsgi.* and mod_wsgi.* keys, wsgi.errors); never the
/// Authorization header.
fn hook_vars(r: &mut Request, dir: &DirConfig) -> Vec<(String, String)> {
    r.add_common_vars();
    let mut vars: Vec<(String, String)> = r
        .subprocess_env()
        .entries()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in r.request_line_vars() {
        vars.retain(|(key, _)| key != k);
        vars.push((k.to_string(), v));
    }
    vars.retain(|(k, _)| k != "HTTP_AUTHORIZATION" && k != "HTTP_PROXY_AUTHORIZATION");
    crate::wsgi::proxy::apply(&mut vars, &crate::wsgi::proxy::ProxyTrust::from_dir(dir));
    vars
}

/// Where and how to call one hook function.
struct Hook<'a> {
    directive: &'static str,
    script: &'a ScriptFile,
    function: &'static str,
}

/// Calls `hook.function(environ, *args)` from the hook's script, in the
/// hook's application group, and converts its result. Every failure is
/// logged on the request (with the traceback) and comes back as Err(()).
fn run_hook<T>(
    r: &mut Request,
    dir: &DirConfig,
    hook: &Hook<'_>,
    args: &[&str],
    read: impl for<'py> FnOnce(&Bound<'py, PyAny>) -> Result<T, String>,
) -> Result<T, ()> {
    let path = hook.script.path.as_str();
    let headline = format!(
        "{} '{path}': {}() failed, request refused",
        hook.directive, hook.function
    );
    let fail = |r: &Request, message: &str| log_refusal(r, &headline, message);
    let mtime = match script_ready(path) {
        Ok(m) => m,
        Err(message) => {
            fail(r, &message);
            return Err(());
        }
    };
    let configured = hook
        .script
        .options
        .application_group
        .as_deref()
        .unwrap_or(DEFAULT_GROUP);
    let group = crate::dispatch::resolve_application_group(r, configured);
    let vars = hook_vars(r, dir);
    let reloading = dir.script_reloading();
    let scope = RequestScope::new(r);
    let backend: Arc<dyn Backend> = Arc::new(HookBackend(scope.handle()));
    let outcome = crate::python::with_interpreter(&group, |py| -> Result<T, String> {
        let _output = crate::python::stdio::route_to_request(backend.clone());
        let format = |e: PyErr| crate::wsgi::response::format_exception(py, &e);
        let module =
            crate::wsgi::scripts::load(py, path, mtime, reloading).map_err(|e| match e {
                crate::wsgi::WsgiError::Script(m) | crate::wsgi::WsgiError::Application(m) => m,
                crate::wsgi::WsgiError::ClientGone => "client gone".into(),
            })?;
        let function = module
            .getattr(hook.function)
            .map_err(|_| format!("the script does not define {}()", hook.function))?;
        let ctx = EnvironContext {
            process_group: "",
            application_group: &group,
            callable_object: hook.function,
            script_reloading: reloading,
            multithread: crate::apache::mpm_info().threaded,
            multiprocess: true,
            apache_request: None,
        };
        let environ = crate::wsgi::environ::build(
            py,
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &ctx,
        )
        .map_err(format)?;
        let errors =
            Bound::new(py, crate::wsgi::errors::ErrorLog::new(backend.clone())).map_err(format)?;
        environ.set_item("wsgi.errors", &errors).map_err(format)?;
        let mut items: Vec<Bound<'_, PyAny>> = vec![environ.into_any()];
        items.extend(args.iter().map(|a| PyString::new(py, a).into_any()));
        let args = PyTuple::new(py, items).map_err(format)?;
        let result = function.call1(args);
        let _ = errors.call_method0("flush");
        let result = result.map_err(format)?;
        read(&result)
    });
    drop(scope);
    match outcome {
        Ok(Ok(value)) => Ok(value),
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

/// A reader for the hooks whose answer is a single value.
fn single<T>(
    convert: impl FnOnce(&Returned) -> Result<T, String>,
) -> impl for<'py> FnOnce(&Bound<'py, PyAny>) -> Result<T, String> {
    move |value| convert(&Returned::from_py(value))
}

/// WSGIAccessScript, in the access_checker phase.
pub fn access_checker(r: &mut Request, dir: &DirConfig) -> i32 {
    let Some(script) = dir.access_script.as_ref() else {
        return status::DECLINED;
    };
    let hook = Hook {
        directive: "WSGIAccessScript",
        script,
        function: "allow_access",
    };
    let host = r.useragent_host();
    match run_hook(r, dir, &hook, &[&host], single(access_status)) {
        Ok(code) => {
            if code == status::HTTP_FORBIDDEN {
                r.log(
                    Level::Error,
                    &format!(
                        "client denied by WSGIAccessScript '{}': allow_access() returned False",
                        script.path
                    ),
                );
            }
            code
        }
        Err(()) => status::HTTP_INTERNAL_SERVER_ERROR,
    }
}

fn auth_user_script<'a>(
    r: &Request,
    dir: &'a DirConfig,
    provider_use: &str,
) -> Option<&'a ScriptFile> {
    let script = dir.auth_user_script.as_ref();
    if script.is_none() {
        r.log(
            Level::Error,
            &format!("{provider_use} wsgi is used here but no WSGIAuthUserScript is configured for this location"),
        );
    }
    script
}

/// The `wsgi` authn provider for Basic authentication.
pub fn check_password(r: &mut Request, dir: &DirConfig, user: &str, password: &str) -> AuthnStatus {
    let Some(script) = auth_user_script(r, dir, "AuthBasicProvider") else {
        return AuthnStatus::GeneralError;
    };
    let hook = Hook {
        directive: "WSGIAuthUserScript",
        script,
        function: "check_password",
    };
    match run_hook(r, dir, &hook, &[user, password], single(password_status)) {
        Ok((status, rename)) => {
            if let Some(name) = rename {
                r.set_user(&name);
            }
            status
        }
        Err(()) => AuthnStatus::GeneralError,
    }
}

/// The `wsgi` authn provider for Digest authentication: the hex MD5 of
/// "user:realm:password", Err with the status otherwise.
pub fn get_realm_hash(
    r: &mut Request,
    dir: &DirConfig,
    user: &str,
    realm: &str,
) -> Result<String, AuthnStatus> {
    let Some(script) = auth_user_script(r, dir, "AuthDigestProvider") else {
        return Err(AuthnStatus::GeneralError);
    };
    let hook = Hook {
        directive: "WSGIAuthUserScript",
        script,
        function: "get_realm_hash",
    };
    match run_hook(r, dir, &hook, &[user, realm], single(realm_hash_status)) {
        Ok(answer) => answer,
        Err(()) => Err(AuthnStatus::GeneralError),
    }
}

/// `Require wsgi-group NAME ...`, with WSGIAuthGroupScript.
pub fn check_group(r: &mut Request, dir: &DirConfig, line: &str) -> AuthzStatus {
    let Some(user) = r.user().map(str::to_string) else {
        // Not authenticated yet: Apache authenticates, then asks again.
        return AuthzStatus::DeniedNoUser;
    };
    let required = match parse_group_line(line) {
        Ok(g) => g,
        Err(message) => {
            r.log(Level::Error, &message);
            return AuthzStatus::GeneralError;
        }
    };
    let Some(script) = dir.auth_group_script.as_ref() else {
        r.log(
            Level::Error,
            "Require wsgi-group is used here but no WSGIAuthGroupScript is configured for this location",
        );
        return AuthzStatus::GeneralError;
    };
    let hook = Hook {
        directive: "WSGIAuthGroupScript",
        script,
        function: "groups_for_user",
    };
    let groups = match run_groups(r, dir, &hook, &user) {
        Ok(groups) => groups,
        Err(()) => return AuthzStatus::GeneralError,
    };
    let decision = group_decision(&required, &groups, dir.group_authoritative());
    if decision != AuthzStatus::Granted {
        r.log(
            Level::Info,
            &format!(
                "user '{user}' is in none of the groups {} (groups_for_user() gave {})",
                required.join(", "),
                if groups.is_empty() {
                    "none".to_string()
                } else {
                    groups.join(", ")
                }
            ),
        );
    }
    decision
}

/// Calls groups_for_user and reads its answer: any iterable of str (a
/// single string is refused: iterating it would give its letters).
fn run_groups(
    r: &mut Request,
    dir: &DirConfig,
    hook: &Hook<'_>,
    user: &str,
) -> Result<Vec<String>, ()> {
    run_hook(r, dir, hook, &[user], |value| {
        if value.is_instance_of::<PyString>() || value.is_instance_of::<PyBytes>() {
            return Err(format!(
                "returned a single {}; it must return a list of group names",
                value
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ));
        }
        let iter = value.try_iter().map_err(|_| {
            format!(
                "returned {}; it must return a list of group names",
                Returned::from_py(value).describe()
            )
        })?;
        let mut groups = Vec::new();
        for item in iter {
            let item = item.map_err(|e| crate::wsgi::response::format_exception(value.py(), &e))?;
            match Returned::from_py(&item) {
                Returned::Str(s) => groups.push(s),
                other => {
                    return Err(format!(
                        "returned a list holding {}; group names must be str",
                        other.describe()
                    ));
                }
            }
        }
        Ok(groups)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_answers() {
        assert_eq!(access_status(&Returned::Bool(true)), Ok(status::OK));
        assert_eq!(
            access_status(&Returned::Bool(false)),
            Ok(status::HTTP_FORBIDDEN)
        );
        assert_eq!(access_status(&Returned::None), Ok(status::DECLINED));
        // Truthy values that are not True never allow.
        assert!(access_status(&Returned::Str("yes".into())).is_err());
        assert!(access_status(&Returned::Other("int".into())).is_err());
    }

    #[test]
    fn password_answers() {
        assert_eq!(
            password_status(&Returned::Bool(true)),
            Ok((AuthnStatus::Granted, None))
        );
        assert_eq!(
            password_status(&Returned::Bool(false)),
            Ok((AuthnStatus::Denied, None))
        );
        assert_eq!(
            password_status(&Returned::None),
            Ok((AuthnStatus::UserNotFound, None))
        );
        assert_eq!(
            password_status(&Returned::Str("alice".into())),
            Ok((AuthnStatus::Granted, Some("alice".into())))
        );
        assert!(password_status(&Returned::Str(String::new())).is_err());
        assert!(password_status(&Returned::Str("a\nb".into())).is_err());
        assert!(password_status(&Returned::Other("int".into())).is_err());
    }

    #[test]
    fn realm_hash_answers() {
        assert_eq!(
            realm_hash_status(&Returned::Str("ABCdef0123".into())),
            Ok(Ok("abcdef0123".into()))
        );
        assert_eq!(
            realm_hash_status(&Returned::None),
            Ok(Err(AuthnStatus::UserNotFound))
        );
        assert!(realm_hash_status(&Returned::Bool(true)).is_err());
        assert!(realm_hash_status(&Returned::Str("not hex".into())).is_err());
    }

    #[test]
    fn require_line_words() {
        assert_eq!(parse_group_line("a b").unwrap(), ["a", "b"]);
        assert_eq!(
            parse_group_line("  staff \"secret agents\" 'x y'").unwrap(),
            ["staff", "secret agents", "x y"]
        );
        assert!(parse_group_line("").is_err());
        assert!(parse_group_line("   ").is_err());
        assert!(parse_group_line("\"open").is_err());
    }

    #[test]
    fn group_decisions() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            group_decision(&s(&["a", "b"]), &s(&["b"]), true),
            AuthzStatus::Granted
        );
        assert_eq!(
            group_decision(&s(&["a"]), &s(&["b"]), true),
            AuthzStatus::Denied
        );
        assert_eq!(
            group_decision(&s(&["a"]), &s(&[]), false),
            AuthzStatus::Neutral
        );
    }
}
