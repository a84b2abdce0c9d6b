//! The start_response callable (PEP 3333) and the write() callable it returns.

use super::{Backend, WsgiError};
use parking_lot::Mutex;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use std::borrow::Cow;
use std::sync::Arc;

/// Status and headers as the application gave them, validated.
#[derive(Default, Debug)]
pub struct ResponseHead {
    pub status: Option<(u16, String)>,
    pub headers: Vec<(String, String)>,
    pub sent: bool,
    /// The application's Content-Length, if it gave one: no more body
    /// bytes than that are sent (as with mod_wsgi).
    pub content_length: Option<u64>,
    /// Body bytes the application produced so far.
    pub produced: u64,
    /// The request is over (the application returned and its iterable
    /// was closed): start_response and write() kept past it raise, as
    /// with mod_wsgi, instead of reaching a connection that has moved on.
    pub finished: bool,
}

impl ResponseHead {
    /// How many of the next `len` bytes may still be sent.
    pub fn allowance(&mut self, len: usize) -> usize {
        let before = self.produced;
        self.produced = self.produced.saturating_add(len as u64);
        match self.content_length {
            None => len,
            Some(limit) => limit.saturating_sub(before).min(len as u64) as usize,
        }
    }
}

/// Hop-by-hop headers a WSGI application may not set (PEP 3333).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// `value` as the latin-1 text mod_wsgi sends for status and headers: a
/// `str` (else TypeError) whose every character is below 256 (else the
/// UnicodeEncodeError `str.encode('latin-1')` raises), as a String of the
/// same characters. The checks below look at its UTF-8 bytes: a character
/// from 128 to 255 is two bytes from 0x80 up there, and every rule is
/// about ASCII bytes, so the verdicts are those of the latin-1 bytes.
fn latin1(value: &Bound<'_, PyAny>) -> PyResult<String> {
    let Ok(text) = value.downcast::<PyString>() else {
        return Err(PyTypeError::new_err(format!(
            "must be str, not {}",
            value.get_type().name()?
        )));
    };
    let text = text.to_cow()?;
    if text.is_ascii() || text.chars().all(|c| (c as u32) <= 0xff) {
        return Ok(text.into_owned());
    }
    value.call_method1("encode", ("latin-1",))?;
    unreachable!("str.encode('latin-1') raises for a character above 255")
}

/// The bytes of a status or header text of [`ResponseHead`] on the wire:
/// its latin-1 encoding, as mod_wsgi sends them (one byte per character;
/// start_response let no character above 255 through). Borrowed when the
/// text is ASCII, as nearly all is.
pub fn latin1_bytes(text: &str) -> Cow<'_, [u8]> {
    if text.is_ascii() {
        Cow::Borrowed(text.as_bytes())
    } else {
        Cow::Owned(text.chars().map(|c| c as u32 as u8).collect())
    }
}

/// A ValueError whose message ends with the value as Python shows its
/// latin-1 bytes.
fn value_error(py: Python<'_>, message: &str, value: &str) -> PyErr {
    let shown = PyBytes::new(py, &latin1_bytes(value))
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_default();
    PyValueError::new_err(format!("{message}: {shown}"))
}

/// Status line rules (mod_wsgi 6): three digits, then the end or a space
/// and a reason without control characters; the codes 100 to 999 (Apache
/// has no use for a lower one).
fn check_status(py: Python<'_>, text: &str) -> PyResult<u16> {
    let status = text.as_bytes();
    let digits = status.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits != 3 {
        return Err(value_error(
            py,
            "status code must be a 3 digit integer",
            text,
        ));
    }
    match status.get(3) {
        None => {}
        Some(b' ') if status[4..].iter().any(u8::is_ascii_control) => {
            return Err(value_error(
                py,
                "control character in status reason phrase",
                text,
            ));
        }
        Some(b' ') => {}
        Some(_) => return Err(value_error(py, "no space following status code", text)),
    }
    let code = status[..3]
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if code < 100 {
        return Err(value_error(py, "status code must be from 100 to 999", text));
    }
    Ok(code)
}

/// Header name and value rules: mod_wsgi's (not empty, no control or space
/// character in a name, no CR/LF in a value), plus what keeps a response
/// whole behind Apache: no ':' in a name, no NUL in a value, no hop-by-hop
/// header, a Content-Length of digits.
fn check_header(py: Python<'_>, name_text: &str, value_text: &str) -> PyResult<()> {
    let (name, value) = (name_text.as_bytes(), value_text.as_bytes());
    if name.is_empty() {
        return Err(PyValueError::new_err("header name is empty"));
    }
    if name.iter().any(u8::is_ascii_control) {
        return Err(value_error(
            py,
            "control character in header name",
            name_text,
        ));
    }
    if name.contains(&b' ') {
        return Err(value_error(py, "space character in header name", name_text));
    }
    if name.contains(&b':') {
        return Err(value_error(py, "colon in header name", name_text));
    }
    if value.iter().any(|&b| b == b'\r' || b == b'\n') {
        return Err(value_error(
            py,
            "carriage return/line feed character in header value",
            value_text,
        ));
    }
    if value.contains(&0) {
        return Err(value_error(py, "NUL character in header value", value_text));
    }
    let lower = name.to_ascii_lowercase();
    if HOP_BY_HOP.iter().any(|h| h.as_bytes() == lower.as_slice()) {
        return Err(value_error(py, "hop-by-hop header not allowed", name_text));
    }
    Ok(())
}

#[pyclass(module = "mod_wsgi")]
pub struct StartResponse {
    pub head: Arc<Mutex<ResponseHead>>,
    backend: Arc<dyn Backend>,
}

impl StartResponse {
    pub fn new(backend: Arc<dyn Backend>) -> StartResponse {
        StartResponse {
            head: Arc::new(Mutex::new(ResponseHead::default())),
            backend,
        }
    }
}

#[pymethods]
impl StartResponse {
    /// mod_wsgi 6's rules: a second call replaces the first until the
    /// response head is sent; after that only a call with exc_info is
    /// allowed, and it re-raises that exception. Bad arguments raise in
    /// the application the exceptions mod_wsgi raises.
    #[pyo3(signature = (status, response_headers, exc_info = None))]
    fn __call__(
        &self,
        py: Python<'_>,
        status: &Bound<'_, PyAny>,
        response_headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Writer> {
        if !response_headers.is_instance_of::<PyList>() {
            return Err(PyTypeError::new_err(format!(
                "start_response() argument 2 must be list, not {}",
                response_headers.get_type().name()?
            )));
        }
        if self.head.lock().finished {
            return Err(PyRuntimeError::new_err(
                "start_response() called after request completed",
            ));
        }
        let exc_info = exc_info.filter(|e| !e.is_none());
        if let Some(exc) = exc_info
            && !exc.is_instance_of::<PyTuple>()
        {
            return Err(PyRuntimeError::new_err(
                "start_response() argument 'exc_info' must be a 3-tuple or None",
            ));
        }
        if self.head.lock().sent {
            let Some(exc) = exc_info else {
                return Err(PyRuntimeError::new_err(
                    "start_response() called more than once without exc_info",
                ));
            };
            // Too late to change the response: re-raise the application's error.
            let (_, value, _): (Bound<'_, PyAny>, Bound<'_, PyAny>, Bound<'_, PyAny>) =
                exc.extract()?;
            return Err(PyErr::from_value(value));
        }
        super::events::response_started(py, status, response_headers, exc_info);
        let status = latin1(status)?;
        let code = check_status(py, &status)?;
        let mut headers = Vec::new();
        let mut content_length = None;
        for item in response_headers.try_iter()? {
            let item = item?;
            let Ok(pair) = item.downcast::<PyTuple>() else {
                return Err(PyTypeError::new_err(format!(
                    "each header must be a 2-tuple, not {}",
                    item.get_type().name()?
                )));
            };
            if pair.len() != 2 {
                return Err(PyValueError::new_err(format!(
                    "each header must be a 2-tuple, got length {}",
                    pair.len()
                )));
            }
            let name = latin1(&pair.get_item(0)?)?;
            let value = latin1(&pair.get_item(1)?)?;
            check_header(py, &name, &value)?;
            if name.eq_ignore_ascii_case("content-length") {
                let digits = value.trim();
                match digits.parse::<u64>() {
                    Ok(n) if digits.bytes().all(|b| b.is_ascii_digit()) => content_length = Some(n),
                    _ => {
                        return Err(PyValueError::new_err(format!(
                            "invalid Content-Length {value:?}"
                        )));
                    }
                }
            }
            headers.push((name, value));
        }
        let mut head = self.head.lock();
        head.status = Some((code, status));
        head.headers = headers;
        head.content_length = content_length;
        Ok(Writer {
            head: self.head.clone(),
            backend: self.backend.clone(),
        })
    }

    /// Not WSGI: the ASGI adapter's way to accept a WebSocket. Answers 101
    /// to `protocol` with `headers` (besides `Upgrade` and `Connection`)
    /// and returns the descriptor of the connection to the client, which
    /// then carries the upgraded protocol's bytes both ways; the caller
    /// owns it. Only before any response was started (RuntimeError
    /// otherwise). With `after_return` the bytes may flow only once the
    /// application has returned, which a caller talking on the descriptor
    /// from another thread (the ASGI adapter's loop) accepts; only then
    /// does embedded mode switch (Apache's thread relays once the
    /// application is done). Without it, daemon mode only.
    #[pyo3(signature = (protocol, headers, *, after_return = false))]
    fn switch_protocols(
        &self,
        py: Python<'_>,
        protocol: &str,
        headers: Vec<(String, String)>,
        after_return: bool,
    ) -> PyResult<i32> {
        let started = {
            let head = self.head.lock();
            head.sent || head.finished
        };
        if started {
            return Err(PyRuntimeError::new_err(
                "switch_protocols() after the response was started",
            ));
        }
        if protocol.is_empty() || protocol.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(PyValueError::new_err(format!(
                "switch_protocols(): bad protocol {protocol:?}"
            )));
        }
        for (name, value) in &headers {
            check_header(py, name, value)?;
        }
        let backend = self.backend.clone();
        let start = if after_return {
            super::TunnelStart::AfterReturn
        } else {
            super::TunnelStart::Now
        };
        let switched = py.allow_threads(|| backend.switch_protocols(protocol, &headers, start));
        let fd = match switched {
            None => {
                return Err(PyRuntimeError::new_err(
                    "switching protocols needs daemon mode",
                ));
            }
            Some(Err(e)) => return Err(PyOSError::new_err(e.to_string())),
            Some(Ok(fd)) => fd,
        };
        let mut head = self.head.lock();
        head.status = Some((101, "101 Switching Protocols".to_string()));
        head.sent = true;
        Ok(std::os::fd::IntoRawFd::into_raw_fd(fd))
    }

    /// Hands the rest of the exchange to the event loop (ASGI in daemon
    /// mode): the object it drives the exchange through, or None where
    /// the request stays on its thread (embedded mode). Only before any
    /// response was started, or once the connection became a tunnel
    /// (`switch_protocols`: the session then runs on without the thread);
    /// the application then returns an empty iterable and calls
    /// start_response no more.
    fn detach(&self, py: Python<'_>) -> PyResult<Option<PyObject>> {
        let started = {
            let head = self.head.lock();
            let tunnel = head.sent && matches!(head.status, Some((101, _)));
            head.finished || (!tunnel && (head.sent || head.status.is_some()))
        };
        if started {
            return Err(PyRuntimeError::new_err(
                "detach() after the response was started",
            ));
        }
        self.backend.detach_to_loop(py).transpose()
    }
}

/// The legacy write() callable returned by start_response.
#[pyclass(module = "mod_wsgi")]
pub struct Writer {
    head: Arc<Mutex<ResponseHead>>,
    backend: Arc<dyn Backend>,
}

#[pymethods]
impl Writer {
    /// mod_wsgi's write(): bytes only; after the request, RuntimeError;
    /// a client gone, OSError (the application may stop producing).
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let Ok(data) = data.downcast::<PyBytes>() else {
            return Err(PyTypeError::new_err(format!(
                "write() argument must be bytes, not {}",
                data.get_type().name()?
            )));
        };
        if self.head.lock().finished {
            return Err(PyRuntimeError::new_err(
                "write() called after request completed",
            ));
        }
        super::response::send_chunk(py, &*self.backend, &self.head, data.as_bytes()).map_err(|e| {
            match e {
                WsgiError::ClientGone => PyOSError::new_err("client connection closed"),
                WsgiError::Application(m) | WsgiError::Script(m) => PyRuntimeError::new_err(m),
            }
        })
    }
}
