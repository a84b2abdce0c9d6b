//! mod_wsgi_rs: an Apache httpd 2.4 module hosting Python WSGI applications,
//! a drop-in replacement for mod_wsgi.
//!
//! Layout:
//! - `apache` and `python` are the only places with `unsafe`: they wrap
//!   httpd/APR (module record, hooks, pools, requests, processes) and the
//!   CPython C-API (start-up, interpreters and thread states, stdio).
//! - `config`: directive parsing into typed configuration, pure.
//! - `wsgi`: the PEP 3333 adapter, shared by both modes through `Backend`.
//! - `asgi`: ASGI applications, served through the `wsgi` path by an
//!   adapter and an event loop per interpreter.
//! - `embedded`: the request path inside Apache's children.
//! - `daemon`: the supervisor in the Apache parent, the daemon process and
//!   its thread layout, and the worker side that proxies to it.
//! - `cgi`: the request's CGI variables, as the Apache child hands them to
//!   either mode.
//! - `protocol`: the worker-daemon wire format, pure and fuzzed.
//! - `tunnel` and `relays`: the Apache child's relaying in either mode (an
//!   upgraded connection's bytes both ways; the connections a stopping
//!   child ends at once).
//! - `dispatch`: what happens at each Apache phase (the `apache::module`
//!   and `apache::auth` trampolines call it and `hooks`).
//! - `hooks`: the Python hook scripts, a file per phase (access, auth,
//!   dispatch, handler) sharing one "run a hook script" path.

pub mod apache;
pub mod asgi;
pub mod cgi;
pub mod config;
pub mod daemon;
pub mod embedded;
pub mod protocol;
pub mod python;
pub mod relays;
pub mod telemetry;
pub mod tunnel;
pub mod wsgi;

pub mod dispatch;
pub mod hooks;

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
