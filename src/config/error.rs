//! The one error type of the config layer.

use std::fmt;

/// A directive that could not be accepted.
///
/// The Apache edge returns `to_string()` from the directive callback, so
/// Apache prints it after "Syntax error on line N of FILE:". The message
/// therefore names the option and what is allowed, never internals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Directive name as written in the configuration, e.g. "WSGIDaemonProcess".
    pub directive: &'static str,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl ConfigError {
    pub fn new(directive: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            directive,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.directive, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_prefixes_directive() {
        let e = ConfigError::new("WSGIScriptReloading", "expects On or Off, got 'yes'");
        assert_eq!(
            e.to_string(),
            "WSGIScriptReloading: expects On or Off, got 'yes'"
        );
    }
}
