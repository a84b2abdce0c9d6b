//! Unit tests of the wire protocol.

use std::io::{self, Cursor, IoSlice, Read, Write};

use super::*;

fn pairs(items: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    items
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

/// One frame of every type, with awkward contents where allowed.
fn sample_frames() -> Vec<Frame> {
    vec![
        Frame::request(pairs(&[
            ("REQUEST_METHOD", "POST"),
            ("PATH_INFO", "/caf\u{e9}"),
            ("QUERY_STRING", ""),
        ])),
        Frame::Request {
            version: PROTOCOL_VERSION,
            environ: vec![(b"HTTP_X_LATIN1".to_vec(), vec![0xe9, 0x00, 0xff, b'\n'])].into(),
        },
        Frame::request(Vec::new()),
        Frame::Body(b"hello".to_vec()),
        Frame::Body(vec![0u8; 70_000]),
        Frame::BodyEnd,
        Frame::BodyError("client closed connection".into()),
        Frame::BodyError(String::new()),
        Frame::ReadBody { max: 1 },
        Frame::ReadBody { max: u32::MAX },
        Frame::ResponseHead {
            status: 200,
            reason: b"OK".to_vec(),
            headers: pairs(&[("Content-Type", "text/plain"), ("X-Empty", "")]),
        },
        Frame::ResponseHead {
            status: 999,
            reason: Vec::new(),
            headers: Vec::new(),
        },
        Frame::ResponseBody(b"body bytes \x00\xff".to_vec()),
        Frame::ResponseBody(Vec::new()),
        Frame::ResponseFile {
            offset: 0,
            length: 1,
        },
        Frame::ResponseFile {
            offset: (1 << 40) + 7,
            length: i64::MAX as u64 - (1 << 40) - 7,
        },
        Frame::ResponseEnd,
        Frame::Tunnel,
        Frame::failure(FailureKind::ApplicationError, "ValueError: \u{1f4a5}"),
        Frame::failure(FailureKind::ProtocolError, ""),
    ]
}

fn encoded(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode(frame, &mut out).expect("encodable");
    out
}

fn decode_all(bytes: &[u8], limits: Limits) -> Result<Vec<Frame>, ProtocolError> {
    let mut d = Decoder::new(limits);
    d.feed(bytes);
    let mut frames = Vec::new();
    while let Some(f) = d.next_frame()? {
        frames.push(f);
    }
    d.finish()?;
    Ok(frames)
}

fn decode_one(bytes: &[u8]) -> Result<Frame, ProtocolError> {
    read_frame(&mut Cursor::new(bytes), &Limits::default())
}

/// A raw frame with an arbitrary header.
fn raw(ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

// ---------------------------------------------------------------- encoding

#[test]
fn every_frame_round_trips_through_read_frame_and_decoder() {
    for frame in sample_frames() {
        let bytes = encoded(&frame);
        assert_eq!(decode_one(&bytes).unwrap(), frame);
        assert_eq!(decode_all(&bytes, Limits::default()).unwrap(), vec![frame]);
    }
}

#[test]
fn encoding_is_canonical() {
    for frame in sample_frames() {
        let bytes = encoded(&frame);
        let again = encoded(&decode_one(&bytes).unwrap());
        assert_eq!(bytes, again, "{frame:?}");
        assert_eq!(
            bytes.len(),
            HEADER_LEN + super::codec::payload_len(&frame),
            "{frame:?}"
        );
    }
}

#[test]
fn golden_bytes_match_the_documentation() {
    assert_eq!(
        encoded(&Frame::ReadBody { max: 65536 }),
        [0x81, 0, 0, 0, 4, 0, 1, 0, 0]
    );
    assert_eq!(encoded(&Frame::BodyEnd), [0x03, 0, 0, 0, 0]);
    assert_eq!(encoded(&Frame::ResponseEnd), [0x84, 0, 0, 0, 0]);
    assert_eq!(encoded(&Frame::Tunnel), [0x88, 0, 0, 0, 0]);
    assert_eq!(
        encoded(&Frame::Accepted { pid: 258 }),
        [0x86, 0, 0, 0, 4, 0, 0, 1, 2]
    );
    assert_eq!(
        encoded(&Frame::Body(b"hi".to_vec())),
        [0x02, 0, 0, 0, 2, b'h', b'i']
    );
    assert_eq!(
        encoded(&Frame::request(pairs(&[("A", "bc")]))),
        [
            0x01, 0, 0, 0, 17, // header
            0, 4, // version
            0, 0, 0, 1, // one pair
            0, 0, 0, 1, b'A', // key
            0, 0, 0, 2, b'b', b'c', // value
        ]
    );
    assert_eq!(
        encoded(&Frame::ResponseHead {
            status: 404,
            reason: b"NF".to_vec(),
            headers: pairs(&[("A", "b")]),
        }),
        [
            0x82, 0, 0, 0, 22, // header
            0x01, 0x94, // 404
            0, 0, 0, 2, b'N', b'F', // reason
            0, 0, 0, 1, // one header
            0, 0, 0, 1, b'A', 0, 0, 0, 1, b'b',
        ]
    );
    assert_eq!(
        encoded(&Frame::failure(FailureKind::QueueTimeout, "t")),
        [0x85, 0, 0, 0, 2, 4, b't']
    );
    assert_eq!(encoded(&Frame::body_error("x")), [0x04, 0, 0, 0, 1, b'x']);
    assert_eq!(
        encoded(&Frame::ResponseBody(b"z".to_vec())),
        [0x83, 0, 0, 0, 1, b'z']
    );
    assert_eq!(
        encoded(&Frame::ResponseFile {
            offset: 0x0102,
            length: 0x0100_0000,
        }),
        [
            0x87, 0, 0, 0, 16, // header
            0, 0, 0, 0, 0, 0, 1, 2, // offset
            0, 0, 0, 0, 1, 0, 0, 0, // length
        ]
    );
}

#[test]
fn encode_refuses_what_the_decoder_would_refuse() {
    let bad = [
        Frame::Body(Vec::new()),
        Frame::ReadBody { max: 0 },
        Frame::request(vec![(Vec::new(), b"v".to_vec())]),
        Frame::ResponseHead {
            status: 99,
            reason: Vec::new(),
            headers: Vec::new(),
        },
        Frame::ResponseHead {
            status: 1000,
            reason: Vec::new(),
            headers: Vec::new(),
        },
        Frame::ResponseHead {
            status: 200,
            reason: b"O\r\nK".to_vec(),
            headers: Vec::new(),
        },
        Frame::ResponseHead {
            status: 200,
            reason: Vec::new(),
            headers: pairs(&[("X-A", "1\r\nSet-Cookie: evil")]),
        },
        Frame::ResponseHead {
            status: 200,
            reason: Vec::new(),
            headers: pairs(&[("X A", "1")]),
        },
        Frame::ResponseHead {
            status: 200,
            reason: Vec::new(),
            headers: pairs(&[("", "1")]),
        },
        Frame::ResponseHead {
            status: 200,
            reason: Vec::new(),
            headers: pairs(&[("X:A", "1")]),
        },
        Frame::ResponseFile {
            offset: 5,
            length: 0,
        },
        Frame::ResponseFile {
            offset: 1,
            length: i64::MAX as u64,
        },
        Frame::ResponseFile {
            offset: u64::MAX,
            length: 2,
        },
        Frame::BodyError("x".repeat(MAX_MESSAGE + 1)),
        Frame::Failure {
            kind: FailureKind::BadRequest,
            message: "x".repeat(MAX_MESSAGE + 1),
        },
    ];
    for frame in bad {
        let mut out = b"keep".to_vec();
        let err = encode(&frame, &mut out).unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::Malformed(_) | ProtocolError::TooLarge { .. }
            ),
            "{frame:?}: {err}"
        );
        assert_eq!(out, b"keep", "out must be unchanged");
        // write_frame refuses it too, and writes nothing.
        let mut sink = Vec::new();
        let e = write_frame(&mut sink, &frame).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(sink.is_empty());
    }
}

#[test]
fn message_constructors_truncate_at_a_char_boundary() {
    let long = "\u{e9}".repeat(MAX_MESSAGE); // 2 bytes each
    let Frame::Failure { message, .. } =
        Frame::failure(FailureKind::ApplicationError, long.clone())
    else {
        unreachable!()
    };
    assert_eq!(message.len(), MAX_MESSAGE);
    let odd = format!("a{long}");
    let Frame::BodyError(message) = Frame::body_error(odd) else {
        unreachable!()
    };
    assert_eq!(message.len(), MAX_MESSAGE - 1);
    assert!(message.starts_with("a\u{e9}"));
    // Both are encodable at the limit.
    encoded(&Frame::failure(
        FailureKind::BadRequest,
        "y".repeat(MAX_MESSAGE),
    ));
    encoded(&Frame::body_error("y".repeat(MAX_MESSAGE)));
}

#[test]
fn frame_metadata() {
    for frame in sample_frames() {
        let expected = match frame {
            Frame::Request { .. } | Frame::Body(_) | Frame::BodyEnd | Frame::BodyError(_) => {
                Direction::WorkerToDaemon
            }
            _ => Direction::DaemonToWorker,
        };
        assert_eq!(frame.direction(), expected, "{frame:?}");
        assert_ne!(frame.name(), "?");
        assert_eq!(
            frame.ends_exchange(),
            matches!(frame, Frame::ResponseEnd | Frame::Failure { .. })
        );
    }
}

#[test]
fn failure_kinds_map_to_statuses_and_codes() {
    let statuses: Vec<u16> = FailureKind::ALL.iter().map(|k| k.http_status()).collect();
    assert_eq!(statuses, [500, 400, 503, 504, 504, 500, 404, 502]);
    for kind in FailureKind::ALL {
        assert_eq!(FailureKind::from_code(kind.code()), Some(kind));
        assert_eq!(kind.to_string(), kind.name());
        let f = Frame::failure(kind, "m");
        assert_eq!(decode_one(&encoded(&f)).unwrap(), f);
    }
    assert_eq!(
        FailureKind::ProtocolError.code(),
        6,
        "fixed across versions"
    );
    assert_eq!(FailureKind::from_code(0), None);
    assert_eq!(FailureKind::from_code(9), None);
}

// ---------------------------------------------------------------- writing

/// Writes at most `step` bytes per call and fails with Interrupted every
/// other call: exercises the partial-write loops.
struct Trickle {
    out: Vec<u8>,
    step: usize,
    calls: usize,
}

impl Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(2) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(self.step);
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(2) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let mut left = self.step;
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(left);
            self.out.extend_from_slice(&b[..take]);
            left -= take;
            n += take;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn body_writers_match_encode_under_partial_writes() {
    for step in [1, 2, 3, 4, 5, 6, 7, 100, 100_000] {
        for data in [&b"x"[..], b"hello world", &[7u8; 3000][..]] {
            let mut w = Trickle {
                out: Vec::new(),
                step,
                calls: 0,
            };
            write_body(&mut w, data).unwrap();
            write_response_body(&mut w, data).unwrap();
            write_frame(&mut w, &Frame::ResponseEnd).unwrap();
            let mut expected = encoded(&Frame::Body(data.to_vec()));
            expected.extend(encoded(&Frame::ResponseBody(data.to_vec())));
            expected.extend(encoded(&Frame::ResponseEnd));
            assert_eq!(w.out, expected, "step {step}");
        }
    }
    let mut w = Vec::new();
    write_response_body(&mut w, b"").unwrap();
    assert_eq!(w, encoded(&Frame::ResponseBody(Vec::new())));
}

#[test]
fn an_appended_response_body_is_its_encoding() {
    for data in [&b""[..], b"x", b"hello world", &[7u8; 70_000][..]] {
        let mut out = b"held".to_vec();
        append_response_body(data, &mut out).unwrap();
        let mut expected = b"held".to_vec();
        expected.extend(encoded(&Frame::ResponseBody(data.to_vec())));
        assert_eq!(out, expected, "{} bytes", data.len());
    }
}

#[test]
fn empty_body_is_refused_by_the_writer() {
    let mut w = Vec::new();
    assert_eq!(
        write_body(&mut w, b"").unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert!(w.is_empty());
}

#[test]
fn a_writer_that_writes_nothing_is_an_error_not_a_hang() {
    struct Zero;
    impl Write for Zero {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Ok(0)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    assert_eq!(
        write_body(&mut Zero, b"abc").unwrap_err().kind(),
        io::ErrorKind::WriteZero
    );
    assert_eq!(
        write_frame(&mut Zero, &Frame::BodyEnd).unwrap_err().kind(),
        io::ErrorKind::WriteZero
    );
}

// ---------------------------------------------------------------- truncation

fn all_samples_bytes() -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    for f in sample_frames() {
        // Keep the stream short so every prefix can be tried.
        if matches!(&f, Frame::Body(d) if d.len() > 100) {
            continue;
        }
        bytes.extend(encoded(&f));
        ends.push(bytes.len());
    }
    (bytes, ends)
}

#[test]
fn truncation_at_every_offset_is_none_or_eof_never_a_panic() {
    let (bytes, ends) = all_samples_bytes();
    for cut in 0..=bytes.len() {
        let prefix = &bytes[..cut];
        let complete = ends.iter().filter(|&&e| e <= cut).count();

        // Decoder: the complete frames, then Ok(None).
        let mut d = Decoder::new(Limits::default());
        d.feed(prefix);
        for _ in 0..complete {
            assert!(d.next_frame().unwrap().is_some());
        }
        assert!(d.next_frame().unwrap().is_none(), "cut {cut}");
        let at_boundary = cut == 0 || ends.contains(&cut);
        assert_eq!(d.finish().is_ok(), at_boundary, "cut {cut}");

        // read_frame: the complete frames, then Closed at a boundary or
        // UnexpectedEof inside a frame.
        let mut r = Cursor::new(prefix);
        for _ in 0..complete {
            read_frame(&mut r, &Limits::default()).unwrap();
        }
        let err = read_frame(&mut r, &Limits::default()).unwrap_err();
        if at_boundary {
            assert!(matches!(err, ProtocolError::Closed), "cut {cut}: {err}");
        } else {
            assert!(
                matches!(err, ProtocolError::UnexpectedEof),
                "cut {cut}: {err}"
            );
        }
    }
}

#[test]
fn decoder_gives_the_same_frames_whatever_the_pieces() {
    let (bytes, _) = all_samples_bytes();
    let expected = decode_all(&bytes, Limits::default()).unwrap();
    for piece in [1, 2, 3, 5, 7, 64, 4096] {
        let mut d = Decoder::new(Limits::default());
        let mut got = Vec::new();
        for chunk in bytes.chunks(piece) {
            d.feed(chunk);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, expected, "piece {piece}");
        assert_eq!(d.buffered(), 0);
        d.finish().unwrap();
    }
}

#[test]
fn decoder_compacts_its_buffer() {
    let frame = encoded(&Frame::Body(vec![1u8; 1000]));
    let mut d = Decoder::new(Limits::default());
    for _ in 0..1000 {
        // Feed one and a half frames at a time so the buffer never empties.
        d.feed(&frame);
        d.feed(&frame[..500]);
        assert!(d.next_frame().unwrap().is_some());
        d.feed(&frame[500..]);
        assert!(d.next_frame().unwrap().is_some());
        assert!(d.buf.len() < 200_000, "buffer grew to {}", d.buf.len());
    }
}

// ---------------------------------------------------------------- limits

/// A reader that yields `prefix` then panics: proves that nothing past the
/// header is read (so nothing is allocated for it).
struct HeaderOnly {
    prefix: Vec<u8>,
    pos: usize,
}

impl Read for HeaderOnly {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        assert!(self.pos < self.prefix.len(), "read past the header");
        let n = buf.len().min(self.prefix.len() - self.pos);
        buf[..n].copy_from_slice(&self.prefix[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn a_4_gib_length_is_refused_from_the_header_alone() {
    for ty in [0x01, 0x02, 0x04, 0x82, 0x83, 0x85] {
        let header = vec![ty, 0xff, 0xff, 0xff, 0xff];
        let mut r = HeaderOnly {
            prefix: header.clone(),
            pos: 0,
        };
        let err = read_frame(&mut r, &Limits::default()).unwrap_err();
        let ProtocolError::TooLarge { size, .. } = err else {
            panic!("type {ty:#x}: {err}");
        };
        assert_eq!(size, u32::MAX as usize);

        let mut d = Decoder::new(Limits::default());
        d.feed(&header);
        assert!(matches!(
            d.next_frame(),
            Err(ProtocolError::TooLarge { .. })
        ));
        // Sticky: the stream cannot be resynchronised.
        d.feed(&[0; 100]);
        assert!(matches!(
            d.next_frame(),
            Err(ProtocolError::TooLarge { .. })
        ));
    }
    // Fixed-size frames with a huge length are malformed, not allocated.
    for ty in [0x03, 0x81, 0x84] {
        let mut r = HeaderOnly {
            prefix: vec![ty, 0xff, 0xff, 0xff, 0xff],
            pos: 0,
        };
        assert!(matches!(
            read_frame(&mut r, &Limits::default()),
            Err(ProtocolError::Malformed(_))
        ));
    }
}

#[test]
fn limits_are_exact() {
    let limits = Limits {
        max_environ: 100,
        max_pairs: 3,
        max_header: 50,
        max_chunk: 10,
    };
    let ok_and_over = |ok: Frame, over: Frame| {
        ok.check_limits(&limits).unwrap();
        assert_eq!(decode_all(&encoded(&ok), limits).unwrap(), vec![ok]);
        let err = over.check_limits(&limits).unwrap_err();
        assert!(matches!(err, ProtocolError::TooLarge { .. }), "{err}");
        let err = decode_all(&encoded(&over), limits).unwrap_err();
        assert!(matches!(err, ProtocolError::TooLarge { .. }), "{err}");
        let err = read_frame(&mut Cursor::new(encoded(&over)), &limits).unwrap_err();
        assert!(matches!(err, ProtocolError::TooLarge { .. }), "{err}");
    };
    ok_and_over(Frame::Body(vec![1; 10]), Frame::Body(vec![1; 11]));
    ok_and_over(
        Frame::ResponseBody(vec![1; 10]),
        Frame::ResponseBody(vec![1; 11]),
    );
    // Request payload: 2 + 4 + (8 + 1 + v).
    ok_and_over(
        Frame::request(vec![(b"K".to_vec(), vec![b'v'; 85])]),
        Frame::request(vec![(b"K".to_vec(), vec![b'v'; 86])]),
    );
    // ResponseHead payload: 2 + 4 + reason + 4 + (8 + 1 + v).
    ok_and_over(
        Frame::ResponseHead {
            status: 200,
            reason: b"OK".to_vec(),
            headers: vec![(b"K".to_vec(), vec![b'v'; 29])],
        },
        Frame::ResponseHead {
            status: 200,
            reason: b"OK".to_vec(),
            headers: vec![(b"K".to_vec(), vec![b'v'; 30])],
        },
    );
    // Pair counts.
    let env =
        |n: usize| Frame::request((0..n).map(|i| ([b'A' + i as u8], [])).collect::<Environ>());
    ok_and_over(env(3), env(4));
    let head = |n: usize| Frame::ResponseHead {
        status: 200,
        reason: Vec::new(),
        headers: (0..n).map(|i| (vec![b'A' + i as u8], vec![])).collect(),
    };
    ok_and_over(head(3), head(4));
    // Defaults.
    let d = Limits::default();
    assert_eq!(
        (d.max_environ, d.max_pairs, d.max_header, d.max_chunk),
        (1 << 20, 10_000, 32_768, 1 << 20)
    );
}

#[test]
fn a_huge_pair_count_in_a_small_payload_is_malformed_without_allocating() {
    let limits = Limits {
        max_pairs: usize::MAX,
        ..Limits::default()
    };
    // Request: version, count u32::MAX, nothing else.
    let mut payload = PROTOCOL_VERSION.to_be_bytes().to_vec();
    payload.extend(u32::MAX.to_be_bytes());
    let err = decode_all(&raw(0x01, &payload), limits).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err}");
    // With the default max_pairs it is TooLarge.
    let err = decode_all(&raw(0x01, &payload), Limits::default()).unwrap_err();
    assert!(matches!(err, ProtocolError::TooLarge { .. }), "{err}");
    // ResponseHead: status, empty reason, count u32::MAX.
    let mut payload = 200u16.to_be_bytes().to_vec();
    payload.extend([0, 0, 0, 0]);
    payload.extend(u32::MAX.to_be_bytes());
    let err = decode_all(&raw(0x82, &payload), limits).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err}");
    // A key length past the end of the payload.
    let mut payload = PROTOCOL_VERSION.to_be_bytes().to_vec();
    payload.extend(1u32.to_be_bytes());
    payload.extend(u32::MAX.to_be_bytes());
    payload.extend([0, 0, 0, 0]);
    let err = decode_all(&raw(0x01, &payload), limits).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err}");
}

#[test]
fn a_short_payload_does_not_allocate_its_declared_size() {
    // Declares 1 MiB, sends 3 bytes, then EOF.
    let mut bytes = vec![0x02, 0x00, 0x10, 0x00, 0x00];
    bytes.extend(b"abc");
    let mut r = Cursor::new(bytes);
    assert!(matches!(
        read_frame(&mut r, &Limits::default()),
        Err(ProtocolError::UnexpectedEof)
    ));
}

// ---------------------------------------------------------------- malformed

#[test]
fn malformed_payloads_are_refused() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (raw(0x85, &[1, 0xff, 0xfe]), "Failure message is not UTF-8"),
        (raw(0x85, &[1, b'a', 0xc3]), "Failure message is not UTF-8"),
        (raw(0x04, &[0xc0, 0x80]), "BodyError message is not UTF-8"),
        (raw(0x85, &[]), "Failure payload truncated"),
        (raw(0x85, &[0, b'x']), "unknown failure kind"),
        (raw(0x85, &[9, b'x']), "unknown failure kind"),
        (raw(0x02, &[]), "empty Body frame"),
        (raw(0x81, &[0, 0, 0, 0]), "ReadBody with max 0"),
        (raw(0x81, &[0, 0, 1]), "ReadBody payload must be 4 bytes"),
        (
            raw(0x81, &[0, 0, 0, 1, 0]),
            "ReadBody payload must be 4 bytes",
        ),
        (
            raw(0x03, &[0]),
            "BodyEnd/ResponseEnd/Tunnel payload must be empty",
        ),
        (
            raw(0x88, &[0]),
            "BodyEnd/ResponseEnd/Tunnel payload must be empty",
        ),
        (
            raw(0x84, &[0]),
            "BodyEnd/ResponseEnd/Tunnel payload must be empty",
        ),
        (raw(0x01, &[0]), "Request payload truncated"),
        (raw(0x01, &[0, 4, 0, 0, 0]), "Request payload truncated"),
        (
            raw(0x01, &[0, 4, 0, 0, 0, 0, 9]),
            "trailing bytes after payload",
        ),
        (
            raw(0x01, &[0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
            "empty environ key",
        ),
        (
            raw(0x82, &[0, 99, 0, 0, 0, 0, 0, 0, 0, 0]),
            "status outside 100..=999",
        ),
        (
            raw(0x82, &[0x03, 0xe8, 0, 0, 0, 0, 0, 0, 0, 0]),
            "status outside 100..=999",
        ),
        (
            raw(0x82, &[0, 200, 0, 0, 0, 1, b'\n', 0, 0, 0, 0]),
            "CR, LF or NUL in reason phrase",
        ),
        (
            raw(
                0x82,
                &[0, 200, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, b':', 0, 0, 0, 0],
            ),
            "invalid header name",
        ),
        (
            raw(
                0x82,
                &[
                    0, 200, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, b'A', 0, 0, 0, 1, 0,
                ],
            ),
            "CR, LF or NUL in header value",
        ),
        (
            raw(0x82, &[0, 200, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            "trailing bytes after payload",
        ),
        (raw(0x87, &[0; 15]), "ResponseFile payload must be 16 bytes"),
        (raw(0x87, &[0; 17]), "ResponseFile payload must be 16 bytes"),
        (raw(0x87, &[0; 16]), "ResponseFile with length 0"),
        (
            raw(
                0x87,
                &[
                    0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                ],
            ),
            "ResponseFile range ends past the largest file offset",
        ),
        (
            raw(0x87, &[0xff; 16]),
            "ResponseFile range ends past the largest file offset",
        ),
    ];
    for (bytes, why) in cases {
        match decode_one(&bytes) {
            Err(ProtocolError::Malformed(m)) => assert_eq!(m, why, "{bytes:?}"),
            other => panic!("{bytes:?}: expected Malformed({why}), got {other:?}"),
        }
    }
}

#[test]
fn unknown_frame_types_are_refused() {
    for ty in (0u8..=255).filter(|t| super::frame::name_of(*t).is_none()) {
        let bytes = raw(ty, b"");
        assert!(matches!(decode_one(&bytes), Err(ProtocolError::UnknownFrame(t)) if t == ty));
        let mut d = Decoder::new(Limits::default());
        d.feed(&bytes);
        assert!(matches!(d.next_frame(), Err(ProtocolError::UnknownFrame(t)) if t == ty));
    }
}

#[test]
fn a_request_of_another_version_is_refused_and_the_stream_stays_in_sync() {
    let other = Frame::Request {
        version: PROTOCOL_VERSION + 1,
        environ: pairs(&[("A", "b")]).into(),
    };
    let mut bytes = encoded(&other);
    bytes.extend(encoded(&Frame::BodyEnd));
    let mut d = Decoder::new(Limits::default());
    d.feed(&bytes);
    match d.next_frame() {
        Err(ProtocolError::VersionMismatch { ours, theirs }) => {
            assert_eq!((ours, theirs), (PROTOCOL_VERSION, PROTOCOL_VERSION + 1));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(d.next_frame().unwrap(), Some(Frame::BodyEnd));
    // Even a future layout that is garbage to us is a version mismatch,
    // as long as the version comes first.
    let future = raw(0x01, &[0x12, 0x34, 0xde, 0xad]);
    assert!(matches!(
        decode_one(&future),
        Err(ProtocolError::VersionMismatch { theirs: 0x1234, .. })
    ));
}

#[test]
fn errors_display_and_convert() {
    let e = ProtocolError::TooLarge {
        what: "Body frame",
        size: 5,
        limit: 4,
    };
    assert_eq!(e.to_string(), "Body frame too large: 5 bytes, limit 4");
    assert_eq!(
        ProtocolError::UnknownFrame(0x7f).to_string(),
        "unknown frame type 0x7f"
    );
    let io_err: io::Error = e.into();
    assert_eq!(io_err.kind(), io::ErrorKind::InvalidData);
    let p: ProtocolError = io::Error::from(io::ErrorKind::UnexpectedEof).into();
    assert!(matches!(p, ProtocolError::UnexpectedEof));
    let p: ProtocolError = io::Error::from(io::ErrorKind::BrokenPipe).into();
    assert!(matches!(p, ProtocolError::Io(_)));
    assert!(std::error::Error::source(&p).is_some());
    let back: io::Error = p.into();
    assert_eq!(back.kind(), io::ErrorKind::BrokenPipe);
}

#[test]
fn read_errors_are_reported_and_interrupts_retried() {
    struct Flaky {
        bytes: Vec<u8>,
        pos: usize,
        calls: usize,
    }
    impl Read for Flaky {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls % 2 == 1 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            if self.pos == self.bytes.len() {
                return Err(io::ErrorKind::ConnectionReset.into());
            }
            buf[0] = self.bytes[self.pos];
            self.pos += 1;
            Ok(1)
        }
    }
    let frame = Frame::request(pairs(&[("K", "v")]));
    let mut r = Flaky {
        bytes: encoded(&frame),
        pos: 0,
        calls: 0,
    };
    assert_eq!(read_frame(&mut r, &Limits::default()).unwrap(), frame);
    match read_frame(&mut r, &Limits::default()) {
        Err(ProtocolError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- random

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_mutations_never_panic_and_decoders_agree() {
    let (clean, _) = all_samples_bytes();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let mut bytes = clean.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[i] = rng.next() as u8,
                1 => {
                    bytes.truncate(i);
                }
                _ => {
                    let junk = rng.bytes(8);
                    bytes.splice(i..i, junk);
                }
            }
            if bytes.is_empty() {
                break;
            }
        }
        // Decoder and read_frame see the same frames and fail alike.
        let mut d = Decoder::new(Limits::default());
        d.feed(&bytes);
        let mut r = Cursor::new(&bytes[..]);
        loop {
            let a = d.next_frame();
            let b = read_frame(&mut r, &Limits::default());
            match (a, b) {
                (Ok(Some(fa)), Ok(fb)) => {
                    assert_eq!(fa, fb);
                    // Decoded frames re-encode to the same bytes.
                    let again = encoded(&fa);
                    assert_eq!(decode_one(&again).unwrap(), fa);
                }
                (Ok(None), Err(ProtocolError::Closed | ProtocolError::UnexpectedEof)) => break,
                (Err(ea), Err(eb)) => {
                    assert_eq!(
                        std::mem::discriminant(&ea),
                        std::mem::discriminant(&eb),
                        "{ea} vs {eb}"
                    );
                    break;
                }
                (a, b) => panic!("decoder {a:?} vs read_frame {b:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------- state

/// Drives both ends through `frames`, checking each frame on the sending
/// side then on the receiving side.
fn run(worker: &mut WorkerSide, daemon: &mut DaemonSide, frames: &[Frame]) {
    for f in frames {
        match f.direction() {
            Direction::WorkerToDaemon => {
                worker
                    .on_send(f)
                    .unwrap_or_else(|e| panic!("worker send {f:?}: {e}"));
                daemon
                    .on_receive(f)
                    .unwrap_or_else(|e| panic!("daemon recv {f:?}: {e}"));
            }
            Direction::DaemonToWorker => {
                daemon
                    .on_send(f)
                    .unwrap_or_else(|e| panic!("daemon send {f:?}: {e}"));
                worker
                    .on_receive(f)
                    .unwrap_or_else(|e| panic!("worker recv {f:?}: {e}"));
            }
        }
    }
}

fn head() -> Frame {
    Frame::ResponseHead {
        status: 200,
        reason: b"OK".to_vec(),
        headers: Vec::new(),
    }
}

fn normal_exchange() -> Vec<Frame> {
    vec![
        Frame::request(pairs(&[("REQUEST_METHOD", "POST")])),
        Frame::ReadBody { max: 4 },
        Frame::Body(b"abcd".to_vec()),
        Frame::ReadBody { max: 4 },
        Frame::Body(b"e".to_vec()),
        Frame::ReadBody { max: 4 },
        Frame::BodyEnd,
        head(),
        Frame::ResponseBody(b"hello".to_vec()),
        Frame::ResponseFile {
            offset: 10,
            length: 20,
        },
        Frame::ResponseBody(b" world".to_vec()),
        Frame::ResponseEnd,
    ]
}

#[test]
fn state_machines_accept_a_normal_exchange_and_keep_alive() {
    let mut w = WorkerSide::new();
    let mut d = DaemonSide::new();
    assert!(w.is_idle() && d.is_idle());
    run(&mut w, &mut d, &normal_exchange());
    assert!(w.is_idle() && d.is_idle());
    // Second exchange on the same connection: no body read, failure
    // before the head.
    run(
        &mut w,
        &mut d,
        &[
            Frame::request(Vec::new()),
            Frame::failure(FailureKind::Overloaded, "busy"),
        ],
    );
    assert!(w.is_idle() && d.is_idle());
    // Third: head first, then a body read, then a failure mid-response.
    run(
        &mut w,
        &mut d,
        &[
            Frame::request(Vec::new()),
            head(),
            Frame::ResponseBody(Vec::new()),
            Frame::ReadBody { max: 100 },
            Frame::body_error("client gone"),
            Frame::failure(FailureKind::ApplicationError, "OSError"),
        ],
    );
    assert!(w.is_idle() && d.is_idle());
    // And the normal one again.
    run(&mut w, &mut d, &normal_exchange());
}

#[test]
fn state_accessors_follow_the_exchange() {
    let mut w = WorkerSide::new();
    let mut d = DaemonSide::new();
    run(&mut w, &mut d, &[Frame::request(Vec::new())]);
    assert!(!w.is_idle() && !d.is_idle());
    assert_eq!(w.pending_read(), None);
    run(&mut w, &mut d, &[Frame::ReadBody { max: 9 }]);
    assert_eq!(w.pending_read(), Some(9));
    run(&mut w, &mut d, &[Frame::BodyEnd]);
    assert_eq!(w.pending_read(), None);
    assert!(d.body_done());
    assert!(!d.head_sent() && !w.head_received());
    run(&mut w, &mut d, &[head()]);
    assert!(d.head_sent() && w.head_received());
    run(&mut w, &mut d, &[Frame::ResponseEnd]);
    assert!(!d.head_sent() && !w.head_received() && !d.body_done());
}

fn switching_head() -> Frame {
    Frame::ResponseHead {
        status: 101,
        reason: b"Switching Protocols".to_vec(),
        headers: pairs(&[("Upgrade", "websocket"), ("Connection", "Upgrade")]),
    }
}

#[test]
fn a_101_head_and_tunnel_end_the_framing_for_good() {
    let mut w = WorkerSide::new();
    let mut d = DaemonSide::new();
    run(
        &mut w,
        &mut d,
        &[
            Frame::request(pairs(&[("HTTP_UPGRADE", "websocket")])),
            Frame::Accepted { pid: 7 },
            switching_head(),
            Frame::Tunnel,
        ],
    );
    // Never idle again: the connection is not reused.
    assert!(!w.is_idle() && !d.is_idle());
    assert_eq!(w.pending_read(), None);
    // A failure can still come instead of the Tunnel.
    run(
        &mut WorkerSide::new(),
        &mut DaemonSide::new(),
        &[
            Frame::request(Vec::new()),
            switching_head(),
            Frame::failure(FailureKind::ApplicationError, "boom"),
        ],
    );
}

#[test]
fn tunnel_comes_only_right_after_a_101_head_and_nothing_after_it() {
    let req = Frame::request(Vec::new());
    refused(std::slice::from_ref(&req), Frame::Tunnel);
    refused(&[req.clone(), head()], Frame::Tunnel);
    refused(
        &[req.clone(), head(), Frame::ResponseBody(b"x".to_vec())],
        Frame::Tunnel,
    );
    // After a 101 head: nothing but Tunnel (or Failure).
    for bad in [
        Frame::ResponseBody(b"x".to_vec()),
        Frame::ResponseEnd,
        Frame::ReadBody { max: 4 },
        switching_head(),
    ] {
        refused(&[req.clone(), switching_head()], bad);
    }
    // After the Tunnel: no frame at all, either way.
    let tunnel = [req.clone(), switching_head(), Frame::Tunnel];
    for bad in [
        Frame::request(Vec::new()),
        Frame::BodyEnd,
        Frame::ResponseEnd,
        Frame::failure(FailureKind::ApplicationError, "late"),
        Frame::Tunnel,
    ] {
        refused(&tunnel, bad);
    }
}

/// Plays `prefix` (valid), then checks that `bad` is refused by its sender
/// and by its receiver.
fn refused(prefix: &[Frame], bad: Frame) {
    let mut w = WorkerSide::new();
    let mut d = DaemonSide::new();
    run(&mut w, &mut d, prefix);
    let (send, recv) = match bad.direction() {
        Direction::WorkerToDaemon => (w.on_send(&bad), d.on_receive(&bad)),
        Direction::DaemonToWorker => (d.on_send(&bad), w.on_receive(&bad)),
    };
    assert!(send.is_err(), "sender accepted {bad:?} after {prefix:?}");
    assert!(recv.is_err(), "receiver accepted {bad:?} after {prefix:?}");
}

#[test]
fn state_machines_reject_out_of_order_frames() {
    let req = Frame::request(Vec::new());
    let rb = Frame::ReadBody { max: 4 };
    // Nothing before a Request.
    for f in sample_frames() {
        if !matches!(f, Frame::Request { .. }) {
            refused(&[], f);
        }
    }
    // Body answers without a ReadBody.
    refused(std::slice::from_ref(&req), Frame::Body(b"x".to_vec()));
    refused(std::slice::from_ref(&req), Frame::BodyEnd);
    refused(std::slice::from_ref(&req), Frame::body_error("x"));
    // Two answers to one ReadBody.
    refused(
        &[req.clone(), rb.clone(), Frame::Body(b"x".to_vec())],
        Frame::Body(b"y".to_vec()),
    );
    // A Body larger than asked.
    refused(&[req.clone(), rb.clone()], Frame::Body(b"12345".to_vec()));
    // The daemon sends nothing while its ReadBody is unanswered.
    refused(&[req.clone(), rb.clone()], rb.clone());
    refused(&[req.clone(), rb.clone()], head());
    refused(&[req.clone(), rb.clone()], Frame::ResponseEnd);
    refused(
        &[req.clone(), rb.clone()],
        Frame::failure(FailureKind::RequestTimeout, "t"),
    );
    // No ReadBody after the body ended.
    refused(&[req.clone(), rb.clone(), Frame::BodyEnd], rb.clone());
    refused(
        &[req.clone(), rb.clone(), Frame::body_error("e")],
        rb.clone(),
    );
    // ResponseHead at most once, and first.
    refused(
        std::slice::from_ref(&req),
        Frame::ResponseBody(b"x".to_vec()),
    );
    let file = Frame::ResponseFile {
        offset: 0,
        length: 1,
    };
    refused(std::slice::from_ref(&req), file.clone());
    refused(&[req.clone(), rb.clone()], file.clone());
    refused(&[req.clone(), head(), Frame::ResponseEnd], file.clone());
    refused(std::slice::from_ref(&req), Frame::ResponseEnd);
    refused(&[req.clone(), head()], head());
    // One exchange at a time.
    refused(std::slice::from_ref(&req), req.clone());
    refused(&[req.clone(), head()], req.clone());
    // After the end, only a new Request.
    refused(
        &[req.clone(), head(), Frame::ResponseEnd],
        Frame::ResponseEnd,
    );
    refused(
        &[req.clone(), Frame::failure(FailureKind::BadRequest, "")],
        head(),
    );
    // A Request of another version.
    refused(
        &[],
        Frame::Request {
            version: PROTOCOL_VERSION + 1,
            environ: Environ::new(),
        },
    );
}

#[test]
fn state_machines_reject_frames_going_the_wrong_way() {
    let mut w = WorkerSide::new();
    assert!(matches!(
        w.on_send(&Frame::ResponseEnd),
        Err(ProtocolError::UnexpectedFrame {
            frame: "ResponseEnd",
            ..
        })
    ));
    assert!(w.on_receive(&Frame::request(Vec::new())).is_err());
    let mut d = DaemonSide::new();
    assert!(d.on_send(&Frame::request(Vec::new())).is_err());
    d.on_receive(&Frame::request(Vec::new())).unwrap();
    assert!(d.on_receive(&Frame::ReadBody { max: 1 }).is_err());
    assert!(d.on_send(&Frame::BodyEnd).is_err());
    // A refused frame leaves the state as it was.
    d.on_send(&Frame::ReadBody { max: 1 }).unwrap();
    assert!(d.on_receive(&Frame::Body(b"xy".to_vec())).is_err());
    d.on_receive(&Frame::Body(b"x".to_vec())).unwrap();
}

// ---------------------------------------------------------------- docs

/// The hex bytes of the example in docs/protocol.md: on each line of the
/// first code block after "### Example", the leading hex tokens (after the
/// "worker → daemon" / "daemon → worker" label).
fn documented_example() -> Vec<u8> {
    let doc = include_str!("../../docs/protocol.md");
    let section = &doc[doc.find("### Example").expect("example section")..];
    let block = section.split("```").nth(1).expect("example block");
    let mut bytes = Vec::new();
    for line in block.lines() {
        let line = line
            .trim_start_matches("worker → daemon")
            .trim_start_matches("daemon → worker");
        for token in line.split_whitespace() {
            if token.len() % 2 != 0 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
                break;
            }
            for pair in token.as_bytes().chunks(2) {
                let hex = std::str::from_utf8(pair).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
            }
        }
    }
    bytes
}

#[test]
fn the_documented_example_is_what_the_code_sends_and_accepts() {
    let exchange = vec![
        Frame::request(pairs(&[("REQUEST_METHOD", "POST")])),
        Frame::Accepted { pid: 4242 },
        Frame::ReadBody { max: 4 },
        Frame::Body(b"abcd".to_vec()),
        Frame::ReadBody { max: 4 },
        Frame::Body(b"e".to_vec()),
        Frame::ReadBody { max: 4 },
        Frame::BodyEnd,
        Frame::ResponseHead {
            status: 200,
            reason: b"OK".to_vec(),
            headers: pairs(&[("Content-Type", "text/plain")]),
        },
        Frame::ResponseBody(b"hi".to_vec()),
        Frame::ResponseEnd,
        Frame::request(Vec::new()),
        Frame::failure(FailureKind::Overloaded, "busy"),
    ];
    let mut expected = Vec::new();
    for f in &exchange {
        expected.extend(encoded(f));
    }
    assert_eq!(documented_example(), expected);
    assert_eq!(decode_all(&expected, Limits::default()).unwrap(), exchange);
    let mut w = WorkerSide::new();
    let mut d = DaemonSide::new();
    run(&mut w, &mut d, &exchange);
    assert!(w.is_idle() && d.is_idle());
}

// ---------------------------------------------------------------- fuzz seeds

/// Where `make fuzz` keeps the corpus of `fuzz/fuzz_targets/decode.rs`.
const FUZZ_CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/decode");

/// Largest seed: what `make fuzz` lets libFuzzer try (FUZZ_MAX_LEN).
const FUZZ_MAX_LEN: usize = 4096;

/// The seeds of the fuzz corpus, by file name: a valid frame of every kind
/// and a whole exchange. The target reads the first byte as its selector:
/// high bit for tiny limits, the rest for the piece size minus one.
fn fuzz_seeds() -> Vec<(String, Vec<u8>)> {
    let mut frames = sample_frames();
    frames.push(Frame::Accepted { pid: 4242 });
    frames.extend(
        FailureKind::ALL
            .iter()
            .map(|k| Frame::failure(*k, format!("{k} happened"))),
    );
    // A peer of another version: refused, the stream left in sync.
    frames.push(Frame::Request {
        version: PROTOCOL_VERSION + 1,
        environ: pairs(&[("REQUEST_METHOD", "GET")]).into(),
    });
    let mut seeds: Vec<(String, Vec<u8>)> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut bytes = vec![0x00];
            bytes.extend(encoded(f));
            (format!("seed-{i:02}-{}", f.name()), bytes)
        })
        .filter(|(_, bytes)| bytes.len() <= FUZZ_MAX_LEN)
        .collect();
    for (name, selector) in [("seed-exchange", 0x03), ("seed-exchange-tiny-limits", 0x87)] {
        let mut bytes = vec![selector];
        bytes.extend(documented_example());
        seeds.push((name.to_string(), bytes));
    }
    seeds
}

/// The seeds in fuzz/corpus/decode/ are what `fuzz_seeds` makes: after a
/// change to the protocol, `MOD_WSGI_RS_WRITE_FUZZ_SEEDS=1 cargo test
/// --release --lib fuzz_corpus_seeds` (or `make fuzz`) rewrites them.
#[test]
fn fuzz_corpus_seeds_are_current() {
    let dir = std::path::Path::new(FUZZ_CORPUS);
    let seeds = fuzz_seeds();
    let write = std::env::var_os("MOD_WSGI_RS_WRITE_FUZZ_SEEDS").is_some();
    if write {
        std::fs::create_dir_all(dir).unwrap();
    }
    let on_disk: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("seed-"))
                .collect()
        })
        .unwrap_or_default();
    let how = "run MOD_WSGI_RS_WRITE_FUZZ_SEEDS=1 cargo test --release --lib fuzz_corpus_seeds";
    for stale in on_disk
        .iter()
        .filter(|n| !seeds.iter().any(|(s, _)| s == *n))
    {
        if write {
            std::fs::remove_file(dir.join(stale)).unwrap();
        } else {
            panic!("fuzz seed {stale} is no longer generated: {how}");
        }
    }
    for (name, bytes) in &seeds {
        let path = dir.join(name);
        if write {
            std::fs::write(&path, bytes).unwrap();
        } else {
            assert_eq!(
                std::fs::read(&path).ok().as_ref(),
                Some(bytes),
                "fuzz seed {name} is missing or stale: {how}"
            );
        }
    }
}
