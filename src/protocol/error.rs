//! [`ProtocolError`]: everything that can go wrong reading, writing or
//! ordering frames.

use std::fmt;
use std::io;

/// An error of the protocol layer. After any of these except
/// [`ProtocolError::VersionMismatch`] (which the daemon answers with a
/// `Failure`), the connection should be closed: it may be out of sync.
#[derive(Debug)]
pub enum ProtocolError {
    /// The socket failed.
    Io(io::Error),
    /// The peer closed the connection in the middle of a frame.
    UnexpectedEof,
    /// The peer closed the connection cleanly, between two frames. For a
    /// daemon waiting for the next `Request` of a keep-alive connection
    /// this is the normal end; anywhere else it is an error like
    /// [`ProtocolError::UnexpectedEof`].
    Closed,
    /// The frame type byte is not one this version knows.
    UnknownFrame(u8),
    /// A declared length or count is over its limit. Reported before any
    /// buffer of that size is allocated.
    TooLarge {
        /// What was too large, e.g. "Body frame".
        what: &'static str,
        /// Its declared size.
        size: usize,
        /// The limit it went over.
        limit: usize,
    },
    /// A payload does not follow its layout (truncated field, trailing
    /// bytes, bad UTF-8, CR/LF in a header, ...).
    Malformed(&'static str),
    /// A `Request` of another protocol version.
    VersionMismatch {
        /// [`super::PROTOCOL_VERSION`].
        ours: u16,
        /// The version the peer sent.
        theirs: u16,
    },
    /// A well-formed frame sent or received at the wrong point of an
    /// exchange (found by [`super::WorkerSide`] / [`super::DaemonSide`]).
    UnexpectedFrame {
        /// The frame's name, e.g. "Body".
        frame: &'static str,
        /// Why it is not allowed here.
        reason: &'static str,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Io(e) => write!(f, "daemon socket I/O error: {e}"),
            ProtocolError::UnexpectedEof => {
                f.write_str("daemon connection closed in the middle of a frame")
            }
            ProtocolError::Closed => f.write_str("daemon connection closed"),
            ProtocolError::UnknownFrame(t) => write!(f, "unknown frame type 0x{t:02x}"),
            ProtocolError::TooLarge { what, size, limit } => {
                write!(f, "{what} too large: {size} bytes, limit {limit}")
            }
            ProtocolError::Malformed(why) => write!(f, "malformed frame: {why}"),
            ProtocolError::VersionMismatch { ours, theirs } => write!(
                f,
                "protocol version mismatch: this side speaks {ours}, the peer {theirs}"
            ),
            ProtocolError::UnexpectedFrame { frame, reason } => {
                write!(f, "unexpected {frame} frame: {reason}")
            }
        }
    }
}

impl std::error::Error for ProtocolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProtocolError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ProtocolError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ProtocolError::UnexpectedEof
        } else {
            ProtocolError::Io(e)
        }
    }
}

impl From<ProtocolError> for io::Error {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::Io(e) => e,
            ProtocolError::UnexpectedEof | ProtocolError::Closed => {
                io::Error::new(io::ErrorKind::UnexpectedEof, e)
            }
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
