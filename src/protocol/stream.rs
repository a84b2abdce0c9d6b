//! Blocking reads and writes of whole frames on a `Read` / `Write`.

use std::io::{self, IoSlice, Read, Write};

use super::codec::{self, decode_payload, parse_header};
use super::frame::{Frame, code};
use super::{HEADER_LEN, Limits, ProtocolError};

/// Initial buffer for a payload: the buffer grows with the bytes that
/// actually arrive, so a peer that declares 1 MiB and sends 10 bytes costs
/// 64 KiB, not 1 MiB.
const FIRST_READ: usize = 64 * 1024;

/// Reads one frame.
///
/// The header is checked against `limits` before any payload byte is read.
/// End of stream before the first header byte is [`ProtocolError::Closed`];
/// anywhere later it is [`ProtocolError::UnexpectedEof`]. `Interrupted` is
/// retried; any other I/O error (including a timeout on the socket) is
/// [`ProtocolError::Io`].
pub fn read_frame<R: Read>(r: &mut R, limits: &Limits) -> Result<Frame, ProtocolError> {
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match r.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Err(ProtocolError::Closed),
            Ok(0) => return Err(ProtocolError::UnexpectedEof),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let (ty, len) = parse_header(header, limits)?;
    let mut payload = Vec::with_capacity(len.min(FIRST_READ));
    let got = r.by_ref().take(len as u64).read_to_end(&mut payload)?;
    if got < len {
        return Err(ProtocolError::UnexpectedEof);
    }
    decode_payload(ty, payload, limits)
}

/// Writes one frame (encoded into one buffer, then `write_all`). A frame
/// [`super::encode`] refuses is an `InvalidInput` error and nothing is
/// written. `Body` and `ResponseBody` go through [`write_body`] /
/// [`write_response_body`] and are not copied.
pub fn write_frame<W: Write>(w: &mut W, frame: &Frame) -> io::Result<()> {
    match frame {
        Frame::Body(data) => write_body(w, data),
        Frame::ResponseBody(data) => write_response_body(w, data),
        _ => {
            let mut buf = Vec::new();
            codec::encode(frame, &mut buf).map_err(invalid_input)?;
            w.write_all(&buf)
        }
    }
}

/// Writes a `Body` frame carrying `data` without copying it: header and
/// payload go out through `write_vectored`. `data` must not be empty (an
/// empty `Body` is malformed: the end of the body is `BodyEnd`).
pub fn write_body<W: Write>(w: &mut W, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Err(invalid_input(ProtocolError::Malformed("empty Body frame")));
    }
    write_with_header(w, code::BODY, data)
}

/// Writes a `ResponseBody` frame carrying `data` without copying it.
/// Callers split large bodies into pieces of at most
/// [`Limits::max_chunk`] bytes.
pub fn write_response_body<W: Write>(w: &mut W, data: &[u8]) -> io::Result<()> {
    write_with_header(w, code::RESPONSE_BODY, data)
}

fn invalid_input(e: ProtocolError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

/// `write_all` of header + data, vectored while the header is not out.
fn write_with_header<W: Write>(w: &mut W, ty: u8, data: &[u8]) -> io::Result<()> {
    let header = codec::header_bytes(ty, data.len()).map_err(invalid_input)?;
    let mut head: &[u8] = &header;
    let mut rest = data;
    while !head.is_empty() {
        match w.write_vectored(&[IoSlice::new(head), IoSlice::new(rest)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) if n < head.len() => head = &head[n..],
            Ok(n) => {
                rest = rest.get(n - head.len()..).ok_or_else(|| {
                    io::Error::other("writer reported more bytes than it was given")
                })?;
                head = &[];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    w.write_all(rest)
}
