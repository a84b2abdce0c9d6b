//! The start_response callable (PEP 3333) and the write() callable it returns.

use super::Backend;
use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
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

fn check_text(what: &str, value: &str) -> PyResult<()> {
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err(PyValueError::new_err(format!(
            "{what} contains a control character: {value:?}"
        )));
    }
    if value.chars().any(|c| c as u32 > 0xff) {
        return Err(PyValueError::new_err(format!(
            "{what} is not latin-1: {value:?}"
        )));
    }
    Ok(())
}

/// Parses "200 OK" into (200, "200 OK").
pub fn parse_status(status: &str) -> Result<(u16, String), String> {
    let code = status.get(..3).and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(c)
            if (100..=999).contains(&c) && (status.len() == 3 || status.as_bytes()[3] == b' ') =>
        {
            Ok((c, status.to_string()))
        }
        _ => Err(format!("status must be 'NNN reason', got {status:?}")),
    }
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
    #[pyo3(signature = (status, response_headers, exc_info = None))]
    fn __call__(
        &self,
        _py: Python<'_>,
        status: &Bound<'_, PyAny>,
        response_headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Writer> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        {
            let head = self.head.lock();
            if let Some(exc) = exc_info {
                if head.sent {
                    // Too late to change the response: re-raise the original error.
                    let tuple = exc.downcast::<PyTuple>()?;
                    return Err(PyErr::from_value(tuple.get_item(1)?));
                }
            } else if head.status.is_some() {
                return Err(PyRuntimeError::new_err(
                    "start_response() called again without exc_info",
                ));
            }
        }
        let status: String = status.extract().map_err(|_| {
            PyTypeError::new_err(format!("status must be a str, got {}", status.get_type()))
        })?;
        check_text("status", &status)?;
        let parsed = parse_status(&status).map_err(PyValueError::new_err)?;
        if !response_headers.is_instance_of::<pyo3::types::PyList>() {
            return Err(PyTypeError::new_err(format!(
                "response headers must be a list, got {}",
                response_headers.get_type()
            )));
        }
        let mut headers = Vec::new();
        let mut content_length = None;
        for item in response_headers.try_iter()? {
            let item = item?;
            let pair: (String, String) = item.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "each header must be a (str, str) tuple, got {item}"
                ))
            })?;
            check_text("header name", &pair.0)?;
            check_text("header value", &pair.1)?;
            if pair.0.is_empty() || pair.0.contains([' ', ':', '\t']) {
                return Err(PyValueError::new_err(format!(
                    "invalid header name {:?}",
                    pair.0
                )));
            }
            if HOP_BY_HOP.contains(&pair.0.to_ascii_lowercase().as_str()) {
                return Err(PyValueError::new_err(format!(
                    "hop-by-hop header not allowed: {}",
                    pair.0
                )));
            }
            if pair.0.eq_ignore_ascii_case("content-length") {
                let value = pair.1.trim();
                match value.parse::<u64>() {
                    Ok(n) if value.bytes().all(|b| b.is_ascii_digit()) => content_length = Some(n),
                    _ => {
                        return Err(PyValueError::new_err(format!(
                            "invalid Content-Length {:?}",
                            pair.1
                        )));
                    }
                }
            }
            headers.push(pair);
        }
        let mut head = self.head.lock();
        head.status = Some(parsed);
        head.headers = headers;
        head.content_length = content_length;
        Ok(Writer {
            head: self.head.clone(),
            backend: self.backend.clone(),
        })
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
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyBytes>) -> PyResult<()> {
        super::response::send_chunk(py, &*self.backend, &self.head, data.as_bytes())
            .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("{e:?}")))
    }
}
