//! Order checks for each end of a connection: [`WorkerSide`] and
//! [`DaemonSide`].
//!
//! Both ends track the same conversation; they differ only in which frames
//! they send and which they receive. Call `on_send` just before writing a
//! frame and `on_receive` just after reading one; an error means this side
//! (on_send) or the peer (on_receive) broke the protocol, and the
//! connection should be closed.
//!
//! The rules (docs/protocol.md, "Exchange"):
//! - an exchange starts with `Request` (of [`PROTOCOL_VERSION`]);
//! - `Body`, `BodyEnd`, `BodyError` only answer a `ReadBody`, one answer
//!   per `ReadBody`, a `Body` of at most `max` bytes;
//! - while a `ReadBody` is unanswered the daemon sends nothing else;
//! - no `ReadBody` after `BodyEnd` or `BodyError`;
//! - `ResponseHead` at most once, before any `ResponseBody` or
//!   `ResponseFile` and before `ResponseEnd`;
//! - the exchange ends with `ResponseEnd` or `Failure`, after which the
//!   connection is idle and may carry the next `Request`;
//! - a `ResponseHead` of status 101 is followed by `Tunnel` (or `Failure`)
//!   and nothing else; after `Tunnel` the connection carries no frames.

use super::{Direction, Frame, PROTOCOL_VERSION, ProtocolError};

/// Where a connection is, as seen from either end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// No exchange in progress: only a `Request` may come.
    #[default]
    Idle,
    /// Between `Request` and `ResponseEnd` / `Failure`.
    Exchange {
        /// `max` of the unanswered `ReadBody`, if any.
        pending_read: Option<u32>,
        /// `BodyEnd` or `BodyError` was sent.
        body_done: bool,
        /// `ResponseHead` was sent.
        head_sent: bool,
        /// That head had status 101: only `Tunnel` or `Failure` may follow.
        switching: bool,
    },
    /// After `Tunnel`: the connection is a byte tunnel, no frame may come.
    Tunnel,
}

#[derive(Debug, Clone, Default)]
struct Conversation {
    state: State,
}

fn unexpected(frame: &Frame, reason: &'static str) -> ProtocolError {
    ProtocolError::UnexpectedFrame {
        frame: frame.name(),
        reason,
    }
}

impl Conversation {
    /// Applies `frame`, travelling in direction `dir`.
    fn step(&mut self, frame: &Frame, dir: Direction) -> Result<(), ProtocolError> {
        if frame.direction() != dir {
            return Err(unexpected(
                frame,
                match dir {
                    Direction::WorkerToDaemon => "only the daemon sends it",
                    Direction::DaemonToWorker => "only the worker sends it",
                },
            ));
        }
        if self.state == State::Tunnel {
            return Err(unexpected(
                frame,
                "the connection is a tunnel (after Tunnel)",
            ));
        }
        let State::Exchange {
            pending_read,
            body_done,
            head_sent,
            switching,
        } = self.state
        else {
            if let Frame::Request { version, .. } = frame {
                if *version != PROTOCOL_VERSION {
                    return Err(ProtocolError::VersionMismatch {
                        ours: PROTOCOL_VERSION,
                        theirs: *version,
                    });
                }
                self.state = State::Exchange {
                    pending_read: None,
                    body_done: false,
                    head_sent: false,
                    switching: false,
                };
                return Ok(());
            }
            return Err(unexpected(frame, "no exchange in progress (Request first)"));
        };
        // The daemon waits for the answer to its ReadBody before sending
        // anything else; the worker sends nothing but that answer.
        if let (Some(_), Direction::DaemonToWorker) = (pending_read, dir) {
            return Err(unexpected(frame, "a ReadBody is still unanswered"));
        }
        if switching && !matches!(frame, Frame::Tunnel | Frame::Failure { .. }) {
            return Err(unexpected(
                frame,
                "a 101 ResponseHead is followed by Tunnel",
            ));
        }
        let next = |pending_read, body_done, head_sent| State::Exchange {
            pending_read,
            body_done,
            head_sent,
            switching: false,
        };
        self.state = match frame {
            Frame::Request { .. } => {
                return Err(unexpected(frame, "an exchange is already in progress"));
            }
            Frame::Body(data) => {
                let Some(max) = pending_read else {
                    return Err(unexpected(frame, "no ReadBody to answer"));
                };
                if data.len() > max as usize {
                    return Err(ProtocolError::TooLarge {
                        what: "Body answering ReadBody",
                        size: data.len(),
                        limit: max as usize,
                    });
                }
                if data.is_empty() {
                    return Err(ProtocolError::Malformed("empty Body frame"));
                }
                next(None, body_done, head_sent)
            }
            Frame::BodyEnd | Frame::BodyError(_) => {
                if pending_read.is_none() {
                    return Err(unexpected(frame, "no ReadBody to answer"));
                }
                next(None, true, head_sent)
            }
            Frame::ReadBody { max } => {
                if body_done {
                    return Err(unexpected(frame, "the request body is already finished"));
                }
                if *max == 0 {
                    return Err(ProtocolError::Malformed("ReadBody with max 0"));
                }
                next(Some(*max), body_done, head_sent)
            }
            Frame::ResponseHead { status, .. } => {
                if head_sent {
                    return Err(unexpected(frame, "ResponseHead was already sent"));
                }
                State::Exchange {
                    pending_read: None,
                    body_done,
                    head_sent: true,
                    switching: *status == 101,
                }
            }
            Frame::Tunnel => {
                if !switching {
                    return Err(unexpected(frame, "only right after a 101 ResponseHead"));
                }
                State::Tunnel
            }
            Frame::ResponseBody(_) | Frame::ResponseFile { .. } => {
                if !head_sent {
                    return Err(unexpected(frame, "ResponseHead must come first"));
                }
                next(None, body_done, true)
            }
            Frame::ResponseEnd => {
                if !head_sent {
                    return Err(unexpected(frame, "ResponseHead must come first"));
                }
                State::Idle
            }
            Frame::Failure { .. } => State::Idle,
            Frame::Accepted { .. } => {
                if head_sent {
                    return Err(unexpected(frame, "Accepted comes before ResponseHead"));
                }
                next(None, body_done, head_sent)
            }
        };
        Ok(())
    }
}

/// The worker's (Apache child's) order check: it sends `Request` and body
/// answers, receives everything else.
#[derive(Debug, Clone, Default)]
pub struct WorkerSide {
    conv: Conversation,
}

impl WorkerSide {
    /// A connection with no exchange in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks a frame this worker is about to send.
    pub fn on_send(&mut self, frame: &Frame) -> Result<(), ProtocolError> {
        self.conv.step(frame, Direction::WorkerToDaemon)
    }

    /// Checks a frame this worker has received.
    pub fn on_receive(&mut self, frame: &Frame) -> Result<(), ProtocolError> {
        self.conv.step(frame, Direction::DaemonToWorker)
    }

    /// True between exchanges: the connection may carry a new `Request`
    /// (or be put back in a pool).
    pub fn is_idle(&self) -> bool {
        self.conv.state == State::Idle
    }

    /// True once the daemon sent `ResponseHead` in the current exchange: a
    /// `Failure` now can no longer become an error page, the worker must
    /// abort the client connection.
    pub fn head_received(&self) -> bool {
        matches!(
            self.conv.state,
            State::Exchange {
                head_sent: true,
                ..
            }
        )
    }

    /// `max` of the `ReadBody` the worker must answer now, if any.
    pub fn pending_read(&self) -> Option<u32> {
        match self.conv.state {
            State::Exchange { pending_read, .. } => pending_read,
            State::Idle | State::Tunnel => None,
        }
    }
}

/// The daemon's order check: it receives `Request` and body answers, sends
/// everything else.
#[derive(Debug, Clone, Default)]
pub struct DaemonSide {
    conv: Conversation,
}

impl DaemonSide {
    /// A connection with no exchange in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks a frame this daemon is about to send.
    pub fn on_send(&mut self, frame: &Frame) -> Result<(), ProtocolError> {
        self.conv.step(frame, Direction::DaemonToWorker)
    }

    /// Checks a frame this daemon has received.
    pub fn on_receive(&mut self, frame: &Frame) -> Result<(), ProtocolError> {
        self.conv.step(frame, Direction::WorkerToDaemon)
    }

    /// True between exchanges: the next frame must be a `Request`.
    pub fn is_idle(&self) -> bool {
        self.conv.state == State::Idle
    }

    /// True once this daemon sent `ResponseHead` in the current exchange
    /// (after that, an application error can only be a `Failure` that
    /// truncates the response).
    pub fn head_sent(&self) -> bool {
        matches!(
            self.conv.state,
            State::Exchange {
                head_sent: true,
                ..
            }
        )
    }

    /// True once the worker answered `BodyEnd` or `BodyError`: further
    /// `wsgi.input` reads return b"" (or raise again) without asking.
    pub fn body_done(&self) -> bool {
        matches!(
            self.conv.state,
            State::Exchange {
                body_done: true,
                ..
            }
        )
    }
}
