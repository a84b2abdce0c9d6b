//! Byte layouts: [`encode`], and the header check and payload decoder
//! shared by [`super::read_frame`] and [`super::Decoder`].
//!
//! The encoding is canonical: [`encode`] accepts exactly the frames the
//! decoder can produce, and decoding then re-encoding a frame gives back the
//! same bytes.

use super::frame::{FailureKind, Frame, code};
use super::{Environ, HEADER_LEN, Limits, MAX_MESSAGE, PROTOCOL_VERSION, ProtocolError};

/// Every pair (environ or header) costs at least its two u32 length
/// prefixes, so a count is plausible only if `count * PAIR_MIN <= rest`.
const PAIR_MIN: usize = 8;

/// Decoded (key, value) pairs.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Limits that only enforce the protocol's fixed rules (message size,
/// fixed-size frames): what [`encode`] checks.
const NO_LIMITS: Limits = Limits {
    max_environ: usize::MAX,
    max_pairs: usize::MAX,
    max_header: usize::MAX,
    max_chunk: usize::MAX,
};

/// Checks a declared payload length for a frame type: unknown type,
/// wrong size for a fixed-size frame, or over its limit. Runs on the
/// 5-byte header, before anything is allocated.
pub(crate) fn check_length(ty: u8, len: usize, limits: &Limits) -> Result<(), ProtocolError> {
    let (what, limit) = match ty {
        code::REQUEST => ("Request frame", limits.max_environ),
        code::BODY => ("Body frame", limits.max_chunk),
        code::BODY_ERROR => ("BodyError frame", MAX_MESSAGE),
        code::RESPONSE_HEAD => ("ResponseHead frame", limits.max_header),
        code::RESPONSE_BODY => ("ResponseBody frame", limits.max_chunk),
        code::FAILURE => ("Failure frame", MAX_MESSAGE + 1),
        code::BODY_END | code::RESPONSE_END | code::TUNNEL => {
            return if len == 0 {
                Ok(())
            } else {
                Err(ProtocolError::Malformed(
                    "BodyEnd/ResponseEnd/Tunnel payload must be empty",
                ))
            };
        }
        code::READ_BODY => {
            return if len == 4 {
                Ok(())
            } else {
                Err(ProtocolError::Malformed("ReadBody payload must be 4 bytes"))
            };
        }
        code::ACCEPTED => {
            return if len == 4 {
                Ok(())
            } else {
                Err(ProtocolError::Malformed("Accepted payload must be 4 bytes"))
            };
        }
        code::RESPONSE_FILE => {
            return if len == 16 {
                Ok(())
            } else {
                Err(ProtocolError::Malformed(
                    "ResponseFile payload must be 16 bytes",
                ))
            };
        }
        other => return Err(ProtocolError::UnknownFrame(other)),
    };
    if len > limit {
        return Err(ProtocolError::TooLarge {
            what,
            size: len,
            limit,
        });
    }
    Ok(())
}

/// Splits a frame header into (type, payload length) and checks it.
pub(crate) fn parse_header(
    header: [u8; HEADER_LEN],
    limits: &Limits,
) -> Result<(u8, usize), ProtocolError> {
    let [ty, a, b, c, d] = header;
    let len = u32::from_be_bytes([a, b, c, d]);
    // u32 -> usize is lossless on every platform Apache runs on; saturate
    // elsewhere so the limit check still refuses it.
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    check_length(ty, len, limits)?;
    Ok((ty, len))
}

/// Payload length of `frame` once encoded (saturating: a result of
/// `usize::MAX` means "too large for any limit").
pub(crate) fn payload_len(frame: &Frame) -> usize {
    fn pairs_len<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> usize {
        pairs.fold(0usize, |acc, (k, v)| {
            acc.saturating_add(PAIR_MIN)
                .saturating_add(k.len())
                .saturating_add(v.len())
        })
    }
    match frame {
        Frame::Request { environ, .. } => pairs_len(environ.iter()).saturating_add(2 + 4),
        Frame::Body(data) | Frame::ResponseBody(data) => data.len(),
        Frame::BodyEnd | Frame::ResponseEnd | Frame::Tunnel => 0,
        Frame::BodyError(message) => message.len(),
        Frame::ReadBody { .. } | Frame::Accepted { .. } => 4,
        Frame::ResponseFile { .. } => 16,
        Frame::ResponseHead {
            reason, headers, ..
        } => pairs_len(headers.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
            .saturating_add(reason.len())
            .saturating_add(2 + 4 + 4),
        Frame::Failure { message, .. } => message.len().saturating_add(1),
    }
}

/// A header name: non-empty, no CR, LF, NUL, colon, space or tab.
fn valid_header_name(name: &[u8]) -> bool {
    !name.is_empty()
        && !name
            .iter()
            .any(|b| matches!(b, b'\r' | b'\n' | 0 | b':' | b' ' | b'\t'))
}

/// A header value or reason phrase: no CR, LF or NUL.
fn valid_header_text(text: &[u8]) -> bool {
    !text.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

fn valid_status(status: u16) -> bool {
    (100..=999).contains(&status)
}

/// A file range: not empty, and its end a valid (signed) file offset.
fn check_file_range(offset: u64, length: u64) -> Result<(), ProtocolError> {
    if length == 0 {
        return Err(ProtocolError::Malformed("ResponseFile with length 0"));
    }
    match offset.checked_add(length) {
        Some(end) if end <= i64::MAX as u64 => Ok(()),
        _ => Err(ProtocolError::Malformed(
            "ResponseFile range ends past the largest file offset",
        )),
    }
}

/// The content rules of the decoder, for frames about to be encoded.
fn check_content(frame: &Frame) -> Result<(), ProtocolError> {
    match frame {
        Frame::Body(data) if data.is_empty() => {
            return Err(ProtocolError::Malformed("empty Body frame"));
        }
        Frame::ReadBody { max: 0 } => {
            return Err(ProtocolError::Malformed("ReadBody with max 0"));
        }
        Frame::ResponseFile { offset, length } => check_file_range(*offset, *length)?,
        Frame::ResponseHead {
            status,
            reason,
            headers,
        } => {
            if !valid_status(*status) {
                return Err(ProtocolError::Malformed("status outside 100..=999"));
            }
            if !valid_header_text(reason) {
                return Err(ProtocolError::Malformed("CR, LF or NUL in reason phrase"));
            }
            for (name, value) in headers {
                if !valid_header_name(name) {
                    return Err(ProtocolError::Malformed("invalid header name"));
                }
                if !valid_header_text(value) {
                    return Err(ProtocolError::Malformed("CR, LF or NUL in header value"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Appends a `ResponseBody` frame carrying `data` to `out`: the bytes
/// [`encode`] gives for `Frame::ResponseBody(data.to_vec())`, without that
/// copy of the body into a frame first.
pub fn append_response_body(data: &[u8], out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    out.extend_from_slice(&header_bytes(code::RESPONSE_BODY, data.len())?);
    out.extend_from_slice(data);
    Ok(())
}

/// Header bytes of a frame with this type and payload length, or TooLarge
/// if the length does not fit the u32 length field.
pub(crate) fn header_bytes(ty: u8, len: usize) -> Result<[u8; HEADER_LEN], ProtocolError> {
    let len32 = u32::try_from(len).map_err(|_| ProtocolError::TooLarge {
        what: "frame payload",
        size: len,
        limit: u32::MAX as usize,
    })?;
    let [a, b, c, d] = len32.to_be_bytes();
    Ok([ty, a, b, c, d])
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Lengths were checked against u32::MAX through the total payload.
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_pairs(out: &mut Vec<u8>, pairs: &[(Vec<u8>, Vec<u8>)]) {
    out.extend_from_slice(&(pairs.len() as u32).to_be_bytes());
    for (k, v) in pairs {
        put_bytes(out, k);
        put_bytes(out, v);
    }
}

/// Appends a `Request` frame of `version` with the environ `pairs` to
/// `out`: what [`encode`] writes for `Frame::Request`, from pairs the
/// caller need not own (the worker's are mostly borrowed from Apache's
/// request pool). Refuses an empty key, and a payload over 4 GiB.
pub fn encode_request<'a, I>(version: u16, pairs: I, out: &mut Vec<u8>) -> Result<(), ProtocolError>
where
    I: Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    let (mut count, mut len) = (0usize, 2usize + 4);
    for (k, v) in pairs.clone() {
        if k.is_empty() {
            return Err(ProtocolError::Malformed("empty environ key"));
        }
        count += 1;
        len = len
            .saturating_add(PAIR_MIN)
            .saturating_add(k.len())
            .saturating_add(v.len());
    }
    check_length(code::REQUEST, len, &NO_LIMITS)?;
    let header = header_bytes(code::REQUEST, len)?;
    out.reserve(HEADER_LEN + len);
    out.extend_from_slice(&header);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(count as u32).to_be_bytes());
    for (k, v) in pairs {
        put_bytes(out, k);
        put_bytes(out, v);
    }
    Ok(())
}

/// Appends `frame`, header and payload, to `out`.
///
/// Refuses (leaving `out` unchanged) a frame the decoder would refuse
/// whatever the [`Limits`]: an empty `Body`, `ReadBody { max: 0 }`, a status
/// outside 100..=999, CR/LF/NUL in a header, an empty environ key or header
/// name, a message over [`MAX_MESSAGE`], a payload over 4 GiB. Receive
/// limits are the sender's to check with [`Frame::check_limits`].
///
/// Any `version` is encoded as given (a peer's decoder refuses a version
/// other than its own).
pub fn encode(frame: &Frame, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    if let Frame::Request { version, environ } = frame {
        let pairs = environ.iter();
        return encode_request(*version, pairs, out);
    }
    check_content(frame)?;
    let len = payload_len(frame);
    check_length(frame.type_code(), len, &NO_LIMITS)?;
    let header = header_bytes(frame.type_code(), len)?;
    out.reserve(HEADER_LEN + len);
    out.extend_from_slice(&header);
    match frame {
        // Written by encode_request above.
        Frame::Request { .. } => {}
        Frame::Body(data) | Frame::ResponseBody(data) => out.extend_from_slice(data),
        Frame::BodyEnd | Frame::ResponseEnd | Frame::Tunnel => {}
        Frame::BodyError(message) => out.extend_from_slice(message.as_bytes()),
        Frame::ReadBody { max } => out.extend_from_slice(&max.to_be_bytes()),
        Frame::Accepted { pid } => out.extend_from_slice(&pid.to_be_bytes()),
        Frame::ResponseFile { offset, length } => {
            out.extend_from_slice(&offset.to_be_bytes());
            out.extend_from_slice(&length.to_be_bytes());
        }
        Frame::ResponseHead {
            status,
            reason,
            headers,
        } => {
            out.extend_from_slice(&status.to_be_bytes());
            put_bytes(out, reason);
            put_pairs(out, headers);
        }
        Frame::Failure { kind, message } => {
            out.push(kind.code());
            out.extend_from_slice(message.as_bytes());
        }
    }
    Ok(())
}

/// Reads the fields of one payload; every shortfall is `Malformed(truncated)`.
struct Fields<'a> {
    rest: &'a [u8],
    truncated: &'static str,
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.rest.len() < n {
            return Err(ProtocolError::Malformed(self.truncated));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, ProtocolError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, ProtocolError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    /// A u32 length then that many bytes.
    fn bytes(&mut self) -> Result<&'a [u8], ProtocolError> {
        let n = self.u32()?;
        self.take(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// A pair count, checked against `max_pairs` and against what the
    /// rest of the payload can hold.
    fn count(&mut self, what: &'static str, max_pairs: usize) -> Result<usize, ProtocolError> {
        let count = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        if count > max_pairs {
            return Err(ProtocolError::TooLarge {
                what,
                size: count,
                limit: max_pairs,
            });
        }
        if count > self.rest.len() / PAIR_MIN {
            return Err(ProtocolError::Malformed(self.truncated));
        }
        Ok(count)
    }

    /// A u32 count then that many (bytes, bytes) pairs, copied out of
    /// `base` (the payload `self` reads), checked as [`Fields::spans`].
    fn pairs(
        &mut self,
        base: &[u8],
        what: &'static str,
        max_pairs: usize,
        check: impl FnMut(&[u8], &[u8]) -> Result<(), ProtocolError>,
    ) -> Result<Pairs, ProtocolError> {
        let spans = self.spans(base, what, max_pairs, check)?;
        Ok(spans
            .into_iter()
            .map(|[ks, ke, vs, ve]| (base[ks..ke].to_vec(), base[vs..ve].to_vec()))
            .collect())
    }

    /// A u32 count then that many (bytes, bytes) pairs, as where each is in
    /// `base` (the payload `self` reads: key start and end, value start and
    /// end). The count is checked against `max_pairs` and against what the
    /// payload can hold before the vector is allocated; `check` sees each
    /// pair.
    fn spans(
        &mut self,
        base: &[u8],
        what: &'static str,
        max_pairs: usize,
        mut check: impl FnMut(&[u8], &[u8]) -> Result<(), ProtocolError>,
    ) -> Result<Vec<[usize; 4]>, ProtocolError> {
        let count = self.count(what, max_pairs)?;
        // Each field is a slice of `base`.
        let base = base.as_ptr() as usize;
        let at = |s: &[u8]| s.as_ptr() as usize - base;
        let mut spans = Vec::with_capacity(count);
        for _ in 0..count {
            let k = self.bytes()?;
            let v = self.bytes()?;
            check(k, v)?;
            spans.push([at(k), at(k) + k.len(), at(v), at(v) + v.len()]);
        }
        Ok(spans)
    }

    fn finish(&self) -> Result<(), ProtocolError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::Malformed("trailing bytes after payload"))
        }
    }
}

/// Decodes the payload of a frame whose header passed [`check_length`].
pub(crate) fn decode_payload(
    ty: u8,
    payload: Vec<u8>,
    limits: &Limits,
) -> Result<Frame, ProtocolError> {
    match ty {
        code::REQUEST => {
            let mut f = Fields {
                rest: &payload,
                truncated: "Request payload truncated",
            };
            let version = f.u16()?;
            if version != PROTOCOL_VERSION {
                return Err(ProtocolError::VersionMismatch {
                    ours: PROTOCOL_VERSION,
                    theirs: version,
                });
            }
            let spans = f.spans(&payload, "environ pair count", limits.max_pairs, |k, _| {
                if k.is_empty() {
                    Err(ProtocolError::Malformed("empty environ key"))
                } else {
                    Ok(())
                }
            })?;
            f.finish()?;
            let environ = Environ::from_parts(payload, spans);
            Ok(Frame::Request { version, environ })
        }
        code::BODY => {
            if payload.is_empty() {
                return Err(ProtocolError::Malformed("empty Body frame"));
            }
            Ok(Frame::Body(payload))
        }
        code::BODY_END => Ok(Frame::BodyEnd),
        code::BODY_ERROR => String::from_utf8(payload)
            .map(Frame::BodyError)
            .map_err(|_| ProtocolError::Malformed("BodyError message is not UTF-8")),
        code::READ_BODY => {
            let mut f = Fields {
                rest: &payload,
                truncated: "ReadBody payload truncated",
            };
            let max = f.u32()?;
            f.finish()?;
            if max == 0 {
                return Err(ProtocolError::Malformed("ReadBody with max 0"));
            }
            Ok(Frame::ReadBody { max })
        }
        code::RESPONSE_HEAD => {
            let mut f = Fields {
                rest: &payload,
                truncated: "ResponseHead payload truncated",
            };
            let status = f.u16()?;
            if !valid_status(status) {
                return Err(ProtocolError::Malformed("status outside 100..=999"));
            }
            let reason = f.bytes()?;
            if !valid_header_text(reason) {
                return Err(ProtocolError::Malformed("CR, LF or NUL in reason phrase"));
            }
            let reason = reason.to_vec();
            let headers = f.pairs(&payload, "header count", limits.max_pairs, |name, value| {
                if !valid_header_name(name) {
                    Err(ProtocolError::Malformed("invalid header name"))
                } else if !valid_header_text(value) {
                    Err(ProtocolError::Malformed("CR, LF or NUL in header value"))
                } else {
                    Ok(())
                }
            })?;
            f.finish()?;
            Ok(Frame::ResponseHead {
                status,
                reason,
                headers,
            })
        }
        code::RESPONSE_BODY => Ok(Frame::ResponseBody(payload)),
        code::RESPONSE_END => Ok(Frame::ResponseEnd),
        code::TUNNEL => Ok(Frame::Tunnel),
        code::ACCEPTED => {
            let bytes: [u8; 4] = payload
                .as_slice()
                .try_into()
                .map_err(|_| ProtocolError::Malformed("Accepted payload must be 4 bytes"))?;
            Ok(Frame::Accepted {
                pid: u32::from_be_bytes(bytes),
            })
        }
        code::RESPONSE_FILE => {
            let mut f = Fields {
                rest: &payload,
                truncated: "ResponseFile payload truncated",
            };
            let offset = f.u64()?;
            let length = f.u64()?;
            f.finish()?;
            check_file_range(offset, length)?;
            Ok(Frame::ResponseFile { offset, length })
        }
        code::FAILURE => {
            let Some((&kind, message)) = payload.split_first() else {
                return Err(ProtocolError::Malformed("Failure payload truncated"));
            };
            let kind = FailureKind::from_code(kind)
                .ok_or(ProtocolError::Malformed("unknown failure kind"))?;
            let message = std::str::from_utf8(message)
                .map_err(|_| ProtocolError::Malformed("Failure message is not UTF-8"))?;
            Ok(Frame::Failure {
                kind,
                message: message.to_owned(),
            })
        }
        other => Err(ProtocolError::UnknownFrame(other)),
    }
}
