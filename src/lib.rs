//! mod_wsgi_rs: an Apache httpd 2.4 module hosting Python WSGI applications,
//! a drop-in replacement for mod_wsgi.
//!
//! Layout: `apache` and `python` are the only places with `unsafe`; they wrap
//! httpd/APR and the CPython C-API. `config` is pure directive parsing,
//! `wsgi` the PEP 3333 adapter, `embedded` the in-child request path, and
//! `module` ties them into Apache's module record and hooks.

pub mod apache;
pub mod config;
pub mod daemon;
pub mod embedded;
pub mod protocol;
pub mod python;
pub mod wsgi;

pub mod dispatch;
pub mod hooks_auth;

/// Version string used in the server banner and `mod_wsgi.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Python major.minor this build links against (from build.rs).
pub const PYTHON_VERSION: &str = env!("MWRS_PYTHON_VERSION");

/// mod_wsgi.version: our version as a tuple of ints.
pub fn version_tuple() -> (u32, u32, u32) {
    let mut parts = VERSION.split('.').map(|p| p.parse().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}
