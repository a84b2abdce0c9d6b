//! The daemon-mode wire protocol: how an Apache worker child and a daemon
//! process talk over their Unix socket.
//!
//! Pure, safe Rust: no Apache, APR or Python types, no `unsafe`. The full
//! specification, with byte layouts and an example exchange, is
//! `docs/protocol.md`; this module is its reference implementation.
//!
//! # Shape
//!
//! Every frame is `type: u8`, `length: u32` (big-endian), then `length`
//! bytes of payload. The length is checked against a per-type limit
//! ([`Limits`]) *before* any payload byte is read or any buffer allocated.
//!
//! A connection carries one *exchange* (one HTTP request) at a time, and
//! may carry several one after another (keep-alive):
//!
//! ```text
//! worker                                daemon
//!   Request{version, environ}  ───────▶
//!                              ◀───────  ReadBody{max}        (0..n times)
//!   Body | BodyEnd | BodyError ───────▶                       (one answer each)
//!                              ◀───────  ResponseHead         (at most once)
//!                              ◀───────  ResponseBody | ResponseFile (0..n times)
//!                              ◀───────  ResponseEnd | Failure
//! ```
//!
//! A `ResponseHead` of status 101 is followed by `Tunnel` instead: the
//! connection then carries the upgraded protocol's bytes (a WebSocket),
//! both ways, until either side closes it.
//!
//! The request body is *pulled* by the daemon: the worker never sends body
//! bytes it was not asked for, so neither side can block writing while the
//! other is blocked writing too.
//!
//! # Entry points
//!
//! - Blocking sockets: [`write_frame`], [`write_body`],
//!   [`write_response_body`], [`read_frame`].
//! - Non-blocking sockets and fuzzing: [`Decoder`], [`encode`];
//!   [`append_response_body`] for a body held back with other frames.
//! - Order checks: [`WorkerSide`], [`DaemonSide`].

#![forbid(unsafe_code)]

mod codec;
mod decoder;
mod environ;
mod error;
mod frame;
mod state;
mod stream;

#[cfg(test)]
mod tests;

pub use codec::{append_response_body, encode, encode_request};
pub use decoder::Decoder;
pub use environ::Environ;
pub use error::ProtocolError;
pub use frame::{Direction, FailureKind, Frame};
pub use state::{DaemonSide, WorkerSide};
pub use stream::{read_frame, write_body, write_frame, write_response_body};

/// Version of this protocol, sent in every [`Frame::Request`]. A daemon
/// answers a `Request` of any other version with
/// `Failure { kind: ProtocolError, .. }` and closes the connection.
///
/// Bump it on any change to a payload layout, a frame type code, a
/// [`FailureKind`] code or a rule of the exchange. The frame header, the
/// position of the version in the `Request` payload and the `Failure`
/// layout never change, so that peers of different versions can always
/// tell each other so.
pub const PROTOCOL_VERSION: u16 = 4;

/// Bytes in a frame header: type (1) + payload length (4).
pub const HEADER_LEN: usize = 5;

/// Largest message, in bytes of UTF-8, in a [`Frame::BodyError`] or a
/// [`Frame::Failure`]. A fixed protocol constant (not part of [`Limits`]):
/// these frames carry a diagnostic line, not a traceback.
/// [`Frame::failure`] and [`Frame::body_error`] truncate to it.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Receive-side limits, checked against each frame's declared length
/// before the payload is read. Both ends of a connection are built from the
/// same daemon process group configuration, so a sender can check its own
/// frames with [`Frame::check_limits`] before sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `Request` payload in bytes: version, count, and every
    /// key/value with its length prefix. Default 1 MiB.
    pub max_environ: usize,
    /// Most environ pairs in a `Request`, and most headers in a
    /// `ResponseHead`. Default 10 000.
    pub max_pairs: usize,
    /// Largest `ResponseHead` payload in bytes: status, reason and every
    /// header with its length prefixes (`header-buffer-size=`). Default
    /// 32 768.
    pub max_header: usize,
    /// Largest `Body` or `ResponseBody` payload in bytes. Default 1 MiB.
    /// A worker answers `ReadBody { max }` with at most
    /// `min(max, max_chunk)` bytes.
    pub max_chunk: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_environ: 1024 * 1024,
            max_pairs: 10_000,
            max_header: 32_768,
            max_chunk: 1024 * 1024,
        }
    }
}
