//! WSGIAccessScript, in the access_checker phase: `allow_access(environ,
//! host)` answers True (allowed), False (403) or None (the decision is left
//! to the other modules), as mod_wsgi documents it. It runs in the
//! interpreter of its `application-group=`, `%{GLOBAL}` by default, also
//! in front of daemon-mode applications and static files.

use super::{HookScript, Phase, Returned};
use crate::apache::log::Level;
use crate::apache::request::Request;
use crate::apache::status;
use crate::config::DirConfig;

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

/// WSGIAccessScript, in the access_checker phase.
pub fn access_checker(r: &mut Request, dir: &DirConfig) -> i32 {
    let Some(script) = dir.access_script.as_ref() else {
        return status::DECLINED;
    };
    let hook = HookScript {
        directive: "WSGIAccessScript",
        script,
        function: Some("allow_access"),
        phase: Phase::BeforeHandler,
    };
    let host = r.useragent_host();
    // "" is %{GLOBAL}, the main interpreter.
    let answer = super::call_one(r, dir, &hook, "", &[&host], |value| {
        access_status(&Returned::from_py(value))
    });
    match answer {
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
        Err(super::Refused) => status::HTTP_INTERNAL_SERVER_ERROR,
    }
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
}
