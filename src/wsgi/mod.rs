//! The PEP 3333 adapter shared by every request path: environ, the
//! start_response callable, wsgi.input, wsgi.errors and the response loop.

pub mod environ;
pub mod errors;
pub mod input;
pub mod response;
pub mod start_response;

/// Why a WSGI request failed; turned into a status and one log line at the
/// boundary (`embedded::handle`).
#[derive(Debug)]
pub enum WsgiError {
    /// The script could not be read or compiled, or lacks the callable.
    Script(String),
    /// The application raised, or broke the WSGI protocol, before the
    /// response started.
    Application(String),
    /// The client went away; nothing more can be sent.
    ClientGone,
}
