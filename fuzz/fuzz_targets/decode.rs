//! Fuzzes the daemon-mode wire protocol (`mod_wsgi_rs::protocol`).
//!
//! The first input byte picks the limits (high bit: tiny limits, so the
//! limit paths are hit) and the piece size for the incremental decoder; the
//! rest is the byte stream. Checked, besides "never panics":
//! - every decoded frame re-encodes to exactly the bytes it came from;
//! - the decoder gives the same frames and the same error whatever the
//!   pieces it is fed in, and `read_frame` agrees with it;
//! - the worker and daemon order checks agree on every frame;
//! - frames built from the raw bytes either fail to encode or decode back
//!   to themselves.

#![no_main]

use std::io::Cursor;
use std::mem::discriminant;

use libfuzzer_sys::fuzz_target;
use mod_wsgi_rs::protocol::{
    DaemonSide, Decoder, Direction, FailureKind, Frame, Limits, ProtocolError, WorkerSide, encode,
    read_frame,
};

const TINY: Limits = Limits {
    max_environ: 256,
    max_pairs: 8,
    max_header: 128,
    max_chunk: 64,
};

const HUGE: Limits = Limits {
    max_environ: usize::MAX,
    max_pairs: usize::MAX,
    max_header: usize::MAX,
    max_chunk: usize::MAX,
};

/// Frames until the decoder wants more bytes or fails.
fn drain(d: &mut Decoder, frames: &mut Vec<Frame>) -> Option<ProtocolError> {
    loop {
        match d.next_frame() {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

fn same_kind(a: &ProtocolError, b: &ProtocolError) -> bool {
    discriminant(a) == discriminant(b)
}

/// Splits `bytes` into (key, value) pairs at `sep` bytes.
fn pairs_from(bytes: &[u8], sep: u8) -> Vec<(Vec<u8>, Vec<u8>)> {
    let parts: Vec<&[u8]> = bytes.split(|b| *b == sep).collect();
    parts
        .chunks(2)
        .map(|kv| {
            (
                kv[0].to_vec(),
                kv.get(1).map_or_else(Vec::new, |v| v.to_vec()),
            )
        })
        .collect()
}

fn check_decoding(limits: Limits, piece: usize, bytes: &[u8]) {
    // One shot.
    let mut whole = Decoder::new(limits);
    whole.feed(bytes);
    let mut frames = Vec::new();
    let error = drain(&mut whole, &mut frames);

    // Canonical: decoded frames re-encode to the bytes they came from.
    let mut again = Vec::new();
    for f in &frames {
        encode(f, &mut again).expect("a decoded frame must encode");
        f.check_limits(&limits)
            .expect("a decoded frame is within limits");
    }
    assert_eq!(&bytes[..again.len()], &again[..]);
    if error.is_none() {
        assert_eq!(whole.finish().is_ok(), again.len() == bytes.len());
    }

    // In pieces.
    let mut pieced = Decoder::new(limits);
    let mut pieced_frames = Vec::new();
    let mut pieced_error = None;
    for chunk in bytes.chunks(piece) {
        pieced.feed(chunk);
        pieced_error = drain(&mut pieced, &mut pieced_frames);
        if pieced_error.is_some() {
            break;
        }
    }
    assert_eq!(frames, pieced_frames);
    match (&error, &pieced_error) {
        (None, None) => {}
        (Some(a), Some(b)) => assert!(same_kind(a, b), "{a} vs {b}"),
        (a, b) => panic!("one shot {a:?} vs pieces {b:?}"),
    }

    // Blocking reader.
    let mut r = Cursor::new(bytes);
    for f in &frames {
        assert_eq!(&read_frame(&mut r, &limits).expect("same frames"), f);
    }
    let end = read_frame(&mut r, &limits).expect_err("no more frames");
    match &error {
        Some(e) => assert!(same_kind(e, &end), "{e} vs {end}"),
        None if again.len() == bytes.len() => assert!(matches!(end, ProtocolError::Closed)),
        None => assert!(matches!(end, ProtocolError::UnexpectedEof), "{end}"),
    }

    // Order checks: the two ends agree on every frame.
    let mut worker = WorkerSide::new();
    let mut daemon = DaemonSide::new();
    for f in &frames {
        let (a, b) = match f.direction() {
            Direction::WorkerToDaemon => (worker.on_send(f), daemon.on_receive(f)),
            Direction::DaemonToWorker => (daemon.on_send(f), worker.on_receive(f)),
        };
        assert_eq!(a.is_ok(), b.is_ok(), "{f:?}");
        assert_eq!(worker.is_idle(), daemon.is_idle());
    }
}

/// Frames made from raw bytes: encode refuses them or they round-trip.
fn check_encoding(sel: u8, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let status = bytes
        .get(..2)
        .map_or(200, |b| u16::from_be_bytes([b[0], b[1]]));
    let kind = FailureKind::ALL[usize::from(sel) % FailureKind::ALL.len()];
    let word = |at: usize| {
        let mut w = [0u8; 8];
        for (i, b) in bytes.iter().skip(at).take(8).enumerate() {
            w[i] = *b;
        }
        u64::from_be_bytes(w)
    };
    let candidates = [
        Frame::request(pairs_from(bytes, b'=')),
        Frame::Body(bytes.to_vec()),
        Frame::body_error(text.clone()),
        Frame::ReadBody {
            max: u32::from(status),
        },
        Frame::ResponseHead {
            status,
            reason: bytes.iter().copied().take_while(|b| *b != b'|').collect(),
            headers: pairs_from(bytes, b':'),
        },
        Frame::ResponseBody(bytes.to_vec()),
        Frame::ResponseFile {
            offset: word(0),
            length: word(8),
        },
        Frame::Accepted {
            pid: u32::from(status) << 8 | u32::from(sel),
        },
        Frame::failure(kind, text),
    ];
    for frame in candidates {
        let mut out = Vec::new();
        if encode(&frame, &mut out).is_ok() {
            let mut d = Decoder::new(HUGE);
            d.feed(&out);
            assert_eq!(d.next_frame().expect("encoded frame decodes"), Some(frame));
            assert_eq!(d.buffered(), 0);
        } else {
            assert!(out.is_empty());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let limits = if sel & 0x80 != 0 {
        TINY
    } else {
        Limits::default()
    };
    let piece = usize::from(sel & 0x7f) + 1;
    check_decoding(limits, piece, bytes);
    check_encoding(sel, bytes);
});
