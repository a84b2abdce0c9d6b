//! WSGIDispatchScript: a Python script asked, for each request, in the
//! handler phase, where the request goes. Its module-level functions
//! `process_group(environ)`, `application_group(environ)` and
//! `callable_object(environ)` are each optional; each returns a string (in
//! the form the matching directive takes: `%{GLOBAL}`, `%{ENV:var}`, a
//! name...) or None to keep the configured value.
//!
//! The script runs in the Apache child, in the interpreter of its
//! `application-group=` option, else in the request's own application
//! group. An exception or an answer of another type is an error: logged
//! with the traceback, and the request is answered 500.

use super::{HookScript, Phase, Returned};
use crate::apache::request::Request;
use crate::config::{DirConfig, ScriptFile};

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
fn answer(function: &str, returned: Returned) -> Result<Option<String>, String> {
    match returned {
        Returned::None => Ok(None),
        Returned::Str(s) => Ok(Some(s)),
        other => Err(format!(
            "{function}() returned {}; it must return a string or None",
            other.describe()
        )),
    }
}

/// Runs the dispatch script for this request. `request_group` is the
/// request's application group, already expanded: the script runs there
/// unless its application-group= option says otherwise. Every failure is
/// logged on the request and comes back as Err(Refused).
pub fn run(
    r: &mut Request,
    dir: &DirConfig,
    script: &ScriptFile,
    request_group: &str,
) -> Result<Choice, super::Refused> {
    let hook = HookScript {
        directive: "WSGIDispatchScript",
        script,
        function: None,
        phase: Phase::Handler,
    };
    super::run(r, dir, &hook, request_group, |script| {
        let mut choice = Choice::default();
        for function in FUNCTIONS {
            let Some(value) = script.call_if_defined(function, &[])? else {
                continue;
            };
            let value = answer(function, Returned::from_py(&value))?;
            match function {
                "process_group" => choice.process_group = value,
                "application_group" => choice.application_group = value,
                _ => choice.callable_object = value,
            }
        }
        Ok(choice)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_answers() {
        assert_eq!(answer("f", Returned::None), Ok(None));
        assert_eq!(
            answer("f", Returned::Str("%{GLOBAL}".into())),
            Ok(Some("%{GLOBAL}".into()))
        );
        assert_eq!(
            answer("application_group", Returned::Other("int".into())),
            Err(
                "application_group() returned a value of type int; it must return a string or None"
                    .into()
            )
        );
        assert!(answer("f", Returned::Bool(true)).is_err());
    }
}
