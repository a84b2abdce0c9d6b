//! [`Decoder`]: frames out of bytes that arrive in pieces.

use super::codec::{decode_payload, parse_header};
use super::{Frame, HEADER_LEN, Limits, ProtocolError};

/// Compact the buffer once this many consumed bytes sit at its front.
const COMPACT_AFTER: usize = 64 * 1024;

/// An incremental decoder, for non-blocking sockets and for fuzzing: feed it
/// bytes as they arrive, take frames out as they complete.
///
/// The header of a frame is checked as soon as its 5 bytes are in, so an
/// oversized frame is refused before its payload is buffered. The decoder
/// buffers only what it is fed: a caller that reads at most N bytes per
/// [`Decoder::feed`] and calls [`Decoder::next_frame`] until `Ok(None)`
/// keeps at most one frame's limit + N bytes.
///
/// Errors in a header (unknown type, too large) are sticky: the header stays
/// in the buffer and every later call returns the same error, since the
/// stream cannot be resynchronised. Errors in a payload consume that frame.
/// Either way the connection should be closed.
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    pub(super) buf: Vec<u8>,
    /// Bytes of `buf` already decoded.
    start: usize,
}

impl Decoder {
    /// An empty decoder that enforces `limits`.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// Appends bytes received from the peer.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= COMPACT_AFTER && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        let avail = &self.buf[self.start..];
        let Some((header, rest)) = avail.split_first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let (ty, len) = parse_header(*header, &self.limits)?;
        let Some(payload) = rest.get(..len) else {
            return Ok(None);
        };
        let payload = payload.to_vec();
        self.start += HEADER_LEN + len;
        decode_payload(ty, payload, &self.limits).map(Some)
    }

    /// Bytes fed but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// At end of stream: `Ok` if the stream ended between frames,
    /// [`ProtocolError::UnexpectedEof`] if a frame was cut short.
    pub fn finish(&self) -> Result<(), ProtocolError> {
        if self.buffered() == 0 {
            Ok(())
        } else {
            Err(ProtocolError::UnexpectedEof)
        }
    }
}
