//! The pure configuration layer: mod_wsgi's directives parsed into typed
//! Rust values, with no Apache types, no FFI and no unsafe code.
//!
//! The Apache edge turns each directive into one [`apply`] call (index into
//! [`directives::DIRECTIVES`]), prints any [`ConfigError`] as the syntax
//! error, runs [`check`] once the whole configuration has been read, and
//! warns about [`not_yet_used`] features. See docs/config-api.md.

#![forbid(unsafe_code)]

mod apply;
pub mod args;
mod check;
pub mod daemon;
pub mod dir;
pub mod directives;
mod error;
pub mod server;
pub mod values;

use std::fmt;

pub use apply::apply;
pub use args::ArgShape;
pub use check::{check, not_yet_used};
pub use daemon::{DaemonGroup, DaemonOptions, GroupSpec, UserSpec};
pub use dir::{DirConfig, HandlerScript, MapHeadToGet, ScriptFile, TrustedProxy};
pub use directives::{Context, DIRECTIVES, DirectiveSpec, Status};
pub use error::ConfigError;
pub use server::{
    AliasMatcher, Captures, GroupRef, HashSeed, ImportScript, InterpreterOptions,
    InterpreterOptionsSection, PythonSettings, RegexEngine, ScriptAlias, ScriptOptions,
    ServerConfig, TelemetryService, UrlRegex,
};

/// Where in the configuration a directive was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Top level of the main server config.
    Server,
    /// Directly inside `<VirtualHost>`.
    VirtualHost,
    /// Inside `<Directory>`, `<Location>`, `<Files>` (and their Match forms).
    Directory,
    /// An .htaccess file (read per request; must not touch ServerConfig).
    Htaccess,
    /// Inside the `<WSGIInterpreterOptions>` section read last: the
    /// directive sets that section's option, not the server's.
    InterpreterOptions,
}

/// File and line of a directive, for messages that point back at it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    pub file: String,
    pub line: u32,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}
