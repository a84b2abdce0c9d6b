//! WSGIAuthUserScript and WSGIAuthGroupScript, in Apache's authentication
//! and authorisation phases, as mod_wsgi documents them:
//!
//! - `check_password(environ, user, password)` (Basic) and
//!   `get_realm_hash(environ, user, realm)` (Digest), behind the `wsgi`
//!   authn provider: True / a hash string when the user is known and the
//!   password right, False when wrong, None when the user does not exist;
//!   check_password may return a non-empty string, which becomes the user
//!   name (REMOTE_USER).
//! - `groups_for_user(environ, user)` behind `Require wsgi-group NAME ...`:
//!   the groups the user belongs to.
//!
//! They run in the interpreter of their `application-group=`, `%{GLOBAL}`
//! by default. Anything else than the documented answers (an exception, a
//! value of another type) is an error: logged with the traceback and
//! answered 500 by Apache, never taken as an allow.

use super::{HookScript, Phase, Returned};
use crate::apache::log::Level;
use crate::apache::request::Request;
use crate::config::{DirConfig, ScriptFile};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

pub use crate::apache::auth::{AuthnStatus, AuthzStatus};

/// The application group they run in without application-group=: ""
/// (%{GLOBAL}, the main interpreter).
const DEFAULT_GROUP: &str = "";

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
    let hook = HookScript {
        directive: "WSGIAuthUserScript",
        script,
        function: Some("check_password"),
        phase: Phase::BeforeHandler,
    };
    let answer = super::call_one(r, dir, &hook, DEFAULT_GROUP, &[user, password], |value| {
        password_status(&Returned::from_py(value))
    });
    match answer {
        Ok((status, rename)) => {
            if let Some(name) = rename {
                r.set_user(&name);
            }
            status
        }
        Err(super::Refused) => AuthnStatus::GeneralError,
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
    let hook = HookScript {
        directive: "WSGIAuthUserScript",
        script,
        function: Some("get_realm_hash"),
        phase: Phase::BeforeHandler,
    };
    let answer = super::call_one(r, dir, &hook, DEFAULT_GROUP, &[user, realm], |value| {
        realm_hash_status(&Returned::from_py(value))
    });
    match answer {
        Ok(answer) => answer,
        Err(super::Refused) => Err(AuthnStatus::GeneralError),
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
    let hook = HookScript {
        directive: "WSGIAuthGroupScript",
        script,
        function: Some("groups_for_user"),
        phase: Phase::BeforeHandler,
    };
    let groups = match super::call_one(r, dir, &hook, DEFAULT_GROUP, &[&user], group_names) {
        Ok(groups) => groups,
        Err(super::Refused) => return AuthzStatus::GeneralError,
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

/// groups_for_user's answer: any iterable of str or bytes (a single
/// string is refused: iterating it would give its letters).
fn group_names(value: &Bound<'_, PyAny>) -> Result<Vec<String>, String> {
    if value.is_instance_of::<PyString>() || value.is_instance_of::<PyBytes>() {
        return Err(format!(
            "returned a single {}; it must return a list of group names",
            super::type_name(value)
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
        // Bytes are names too, read as latin-1 (as mod_wsgi takes them).
        if let Ok(bytes) = item.downcast::<PyBytes>() {
            groups.push(bytes.as_bytes().iter().map(|&b| char::from(b)).collect());
            continue;
        }
        match Returned::from_py(&item) {
            Returned::Str(s) => groups.push(s),
            other => {
                return Err(format!(
                    "returned a list holding {}; group names must be str or bytes",
                    other.describe()
                ));
            }
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

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
