//! [`Frame`], [`FailureKind`] and the frame type codes.

use std::fmt;

use super::codec;
use super::{Environ, Limits, MAX_MESSAGE, PROTOCOL_VERSION, ProtocolError};

/// Frame type codes. Worker -> daemon frames have the high bit clear,
/// daemon -> worker frames have it set. 0x00 is never a frame.
pub(crate) mod code {
    pub const REQUEST: u8 = 0x01;
    pub const BODY: u8 = 0x02;
    pub const BODY_END: u8 = 0x03;
    pub const BODY_ERROR: u8 = 0x04;
    pub const READ_BODY: u8 = 0x81;
    pub const RESPONSE_HEAD: u8 = 0x82;
    pub const RESPONSE_BODY: u8 = 0x83;
    pub const RESPONSE_END: u8 = 0x84;
    pub const FAILURE: u8 = 0x85;
    pub const ACCEPTED: u8 = 0x86;
    pub const RESPONSE_FILE: u8 = 0x87;
    pub const TUNNEL: u8 = 0x88;
}

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the Apache worker child to the daemon process.
    WorkerToDaemon,
    /// From the daemon process to the Apache worker child.
    DaemonToWorker,
}

/// One frame of the protocol. See `docs/protocol.md` for the byte layouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Worker -> daemon, first frame of every exchange: the WSGI environ's
    /// CGI variables as Apache gives them (bytes; keys are never empty).
    Request {
        /// [`PROTOCOL_VERSION`] of the sender.
        version: u16,
        /// `(key, value)` pairs, in order.
        environ: Environ,
    },
    /// Worker -> daemon, answer to `ReadBody`: 1 to `max` bytes of the
    /// request body. Never empty (the end is [`Frame::BodyEnd`]).
    Body(Vec<u8>),
    /// Worker -> daemon, answer to `ReadBody`: the request body is finished.
    BodyEnd,
    /// Worker -> daemon, answer to `ReadBody`: the client went away or sent
    /// a bad body; the application's `wsgi.input` read raises `OSError`.
    BodyError(String),
    /// Daemon -> worker: "send me up to `max` bytes of the request body"
    /// (`max` >= 1).
    ReadBody {
        /// Most bytes the daemon accepts in the answering `Body`.
        max: u32,
    },
    /// Daemon -> worker: status line and headers, at most once per exchange.
    ResponseHead {
        /// HTTP status, 100..=999.
        status: u16,
        /// Reason phrase (may be empty; no CR, LF or NUL).
        reason: Vec<u8>,
        /// `(name, value)` pairs. Names are non-empty and have no CR, LF,
        /// NUL, `:`, space or tab; values have no CR, LF or NUL.
        headers: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// Daemon -> worker: a piece of the response body (may be empty).
    ResponseBody(Vec<u8>),
    /// Daemon -> worker: `length` bytes of a regular file from `offset`, as
    /// response body, sent by the worker the way Apache sends a static
    /// file. The file itself travels beside the frame, as an open
    /// descriptor in the socket's SCM_RIGHTS ancillary data (the protocol
    /// module only deals with the bytes; see docs/protocol.md). `length`
    /// is at least 1 and `offset + length` at most `i64::MAX` (Apache's
    /// file offsets are signed). (Version 3.)
    ResponseFile {
        /// Where the bytes start in the file.
        offset: u64,
        /// How many bytes to send.
        length: u64,
    },
    /// Daemon -> worker: the exchange is over; the connection may be reused.
    ResponseEnd,
    /// Daemon -> worker, right after the daemon read a `Request`: which
    /// process took it, so the worker's log line can name the daemon pid
    /// even when that process dies before answering. (Version 2.)
    Accepted {
        /// Process id of the daemon process serving the exchange.
        pid: u32,
    },
    /// Daemon -> worker, right after a `ResponseHead` of status 101
    /// (Switching Protocols): from the next byte on, the connection is a
    /// byte tunnel between the client and the application, both ways,
    /// until either side closes it; no frame follows and the connection is
    /// never reused. Empty payload. (Version 4.)
    Tunnel,
    /// Daemon -> worker: the request failed in the daemon. Ends the exchange.
    /// Before `ResponseHead` the worker answers [`FailureKind::http_status`];
    /// after it, the worker aborts the client connection.
    Failure {
        /// What failed.
        kind: FailureKind,
        /// One line for the worker's error log (at most [`MAX_MESSAGE`]
        /// bytes).
        message: String,
    },
}

impl Frame {
    /// A `Request` of this [`PROTOCOL_VERSION`].
    pub fn request(environ: impl Into<Environ>) -> Frame {
        Frame::Request {
            version: PROTOCOL_VERSION,
            environ: environ.into(),
        }
    }

    /// A `Failure`, its message cut to [`MAX_MESSAGE`] bytes at a character
    /// boundary.
    pub fn failure(kind: FailureKind, message: impl Into<String>) -> Frame {
        Frame::Failure {
            kind,
            message: truncate_message(message.into()),
        }
    }

    /// A `BodyError`, its message cut to [`MAX_MESSAGE`] bytes at a
    /// character boundary.
    pub fn body_error(message: impl Into<String>) -> Frame {
        Frame::BodyError(truncate_message(message.into()))
    }

    /// The frame's name, as in the documentation ("Request", "Body", ...).
    pub fn name(&self) -> &'static str {
        name_of(self.type_code()).unwrap_or("?")
    }

    /// Which way this frame travels.
    pub fn direction(&self) -> Direction {
        if self.type_code() & 0x80 == 0 {
            Direction::WorkerToDaemon
        } else {
            Direction::DaemonToWorker
        }
    }

    /// True for the frames that end an exchange: `ResponseEnd`, `Failure`.
    pub fn ends_exchange(&self) -> bool {
        matches!(self, Frame::ResponseEnd | Frame::Failure { .. })
    }

    /// The type byte on the wire.
    pub(crate) fn type_code(&self) -> u8 {
        match self {
            Frame::Request { .. } => code::REQUEST,
            Frame::Body(_) => code::BODY,
            Frame::BodyEnd => code::BODY_END,
            Frame::BodyError(_) => code::BODY_ERROR,
            Frame::ReadBody { .. } => code::READ_BODY,
            Frame::ResponseHead { .. } => code::RESPONSE_HEAD,
            Frame::ResponseBody(_) => code::RESPONSE_BODY,
            Frame::ResponseFile { .. } => code::RESPONSE_FILE,
            Frame::ResponseEnd => code::RESPONSE_END,
            Frame::Failure { .. } => code::FAILURE,
            Frame::Accepted { .. } => code::ACCEPTED,
            Frame::Tunnel => code::TUNNEL,
        }
    }

    /// Would the receiver accept this frame under `limits`? The sender's
    /// check: a daemon whose application returned 40 KiB of headers turns
    /// this error into a 500 of its own instead of sending a frame the
    /// worker would refuse. (Content rules are checked by [`super::encode`].)
    pub fn check_limits(&self, limits: &Limits) -> Result<(), ProtocolError> {
        let len = codec::payload_len(self);
        codec::check_length(self.type_code(), len, limits)?;
        let pairs = match self {
            Frame::Request { environ, .. } => environ.len(),
            Frame::ResponseHead { headers, .. } => headers.len(),
            _ => 0,
        };
        if pairs > limits.max_pairs {
            return Err(ProtocolError::TooLarge {
                what: if matches!(self, Frame::Request { .. }) {
                    "environ pair count"
                } else {
                    "header count"
                },
                size: pairs,
                limit: limits.max_pairs,
            });
        }
        Ok(())
    }
}

/// Name of a frame type code, or None for an unknown code.
pub(crate) fn name_of(type_code: u8) -> Option<&'static str> {
    Some(match type_code {
        code::REQUEST => "Request",
        code::BODY => "Body",
        code::BODY_END => "BodyEnd",
        code::BODY_ERROR => "BodyError",
        code::READ_BODY => "ReadBody",
        code::RESPONSE_HEAD => "ResponseHead",
        code::RESPONSE_BODY => "ResponseBody",
        code::RESPONSE_END => "ResponseEnd",
        code::FAILURE => "Failure",
        code::ACCEPTED => "Accepted",
        code::RESPONSE_FILE => "ResponseFile",
        code::TUNNEL => "Tunnel",
        _ => return None,
    })
}

fn truncate_message(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

/// Why the daemon failed a request; carried by [`Frame::Failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The application raised before sending headers (or its headers were
    /// invalid). 500.
    ApplicationError,
    /// The request could not be handed to the application (e.g. an environ
    /// the daemon refuses). 400.
    BadRequest,
    /// The daemon has no thread free and its backlog is full. 503.
    Overloaded,
    /// The request waited longer than `queue-timeout`. 504, as mod_wsgi.
    QueueTimeout,
    /// The application ran longer than `request-timeout`. 504.
    RequestTimeout,
    /// The daemon could not make sense of what the worker sent (version
    /// mismatch, bad frame). 500.
    ProtocolError,
    /// The script lacks the configured callable. 404, as mod_wsgi.
    NotFound,
    /// The daemon process is ending (forced out after shutdown-timeout) with
    /// the request still running. 502.
    Abandoned,
}

impl FailureKind {
    /// Every kind, in code order.
    pub const ALL: [FailureKind; 8] = [
        FailureKind::ApplicationError,
        FailureKind::BadRequest,
        FailureKind::Overloaded,
        FailureKind::QueueTimeout,
        FailureKind::RequestTimeout,
        FailureKind::ProtocolError,
        FailureKind::NotFound,
        FailureKind::Abandoned,
    ];

    /// The HTTP status the worker answers with when this failure arrives
    /// before any `ResponseHead`.
    pub fn http_status(&self) -> u16 {
        match self {
            FailureKind::ApplicationError => 500,
            FailureKind::BadRequest => 400,
            FailureKind::Overloaded => 503,
            FailureKind::QueueTimeout => 504,
            FailureKind::RequestTimeout => 504,
            FailureKind::ProtocolError => 500,
            FailureKind::NotFound => 404,
            FailureKind::Abandoned => 502,
        }
    }

    /// The byte on the wire. `ProtocolError` is 6 in every version.
    pub fn code(&self) -> u8 {
        match self {
            FailureKind::ApplicationError => 1,
            FailureKind::BadRequest => 2,
            FailureKind::Overloaded => 3,
            FailureKind::QueueTimeout => 4,
            FailureKind::RequestTimeout => 5,
            FailureKind::ProtocolError => 6,
            FailureKind::NotFound => 7,
            FailureKind::Abandoned => 8,
        }
    }

    /// The kind with this wire byte, if any.
    pub fn from_code(code: u8) -> Option<FailureKind> {
        FailureKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The kind's name as in the documentation, e.g. "QueueTimeout".
    pub fn name(&self) -> &'static str {
        match self {
            FailureKind::ApplicationError => "ApplicationError",
            FailureKind::BadRequest => "BadRequest",
            FailureKind::Overloaded => "Overloaded",
            FailureKind::QueueTimeout => "QueueTimeout",
            FailureKind::RequestTimeout => "RequestTimeout",
            FailureKind::ProtocolError => "ProtocolError",
            FailureKind::NotFound => "NotFound",
            FailureKind::Abandoned => "Abandoned",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
