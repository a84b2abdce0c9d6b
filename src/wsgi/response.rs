//! Runs the application and streams what it returns to Apache: headers when
//! the first bytes (or the end) arrive, bytes with the GIL released, and
//! close() always.

use super::WsgiError;
use super::start_response::{ResponseHead, StartResponse};
use crate::apache::request::SharedRequest;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

/// Renders a Python exception with its traceback, as the error log shows it.
pub fn format_exception(py: Python<'_>, err: &PyErr) -> String {
    let formatted = (|| -> PyResult<String> {
        let tb = py.import("traceback")?;
        let lines = tb.call_method1("format_exception", (err.clone_ref(py).into_value(py),))?;
        let parts: Vec<String> = lines.extract()?;
        Ok(parts.concat())
    })();
    formatted
        .unwrap_or_else(|_| err.to_string())
        .trim_end()
        .to_string()
}

/// Copies the application's status and headers into the request.
fn send_head(request: &SharedRequest, head: &mut ResponseHead) -> Result<(), WsgiError> {
    let Some((code, line)) = head.status.clone() else {
        return Err(WsgiError::Application(
            "application returned data before calling start_response()".into(),
        ));
    };
    let headers = std::mem::take(&mut head.headers);
    request
        .with(|r| {
            r.set_status(code as i32, &line);
            let out = r.headers_out();
            for (k, v) in &headers {
                if k.eq_ignore_ascii_case("content-type") {
                    r.set_content_type(v);
                } else {
                    out.add(r.pool(), k, v);
                }
            }
        })
        .ok_or(WsgiError::ClientGone)?;
    head.sent = true;
    Ok(())
}

/// Sends one piece of the body (headers first if not yet sent), with the
/// GIL released while Apache writes to the client.
pub fn send_chunk(
    py: Python<'_>,
    request: &SharedRequest,
    head: &Mutex<ResponseHead>,
    data: &[u8],
) -> Result<(), WsgiError> {
    {
        let mut h = head.lock();
        if !h.sent {
            send_head(request, &mut h)?;
        }
    }
    if data.is_empty() {
        return Ok(());
    }
    let written = py.allow_threads(|| request.with(|r| r.write(data)));
    match written {
        Some(Ok(())) => Ok(()),
        _ => Err(WsgiError::ClientGone),
    }
}

/// Calls the application and sends its response. On error before the headers
/// went out, nothing has been sent and the caller answers 500.
pub fn run(
    py: Python<'_>,
    application: &Bound<'_, PyAny>,
    environ: Bound<'_, PyDict>,
    request: &SharedRequest,
    start: Bound<'_, StartResponse>,
) -> Result<(), WsgiError> {
    let head = start.borrow().head.clone();
    let app_error = |e: PyErr| WsgiError::Application(format_exception(py, &e));
    let result = application.call1((environ, start)).map_err(app_error)?;
    let outcome = (|| -> Result<(), WsgiError> {
        for item in result.try_iter().map_err(app_error)? {
            let item = item.map_err(app_error)?;
            let bytes = item.downcast::<PyBytes>().map_err(|_| {
                WsgiError::Application(format!(
                    "application must return bytes, got {}",
                    item.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            send_chunk(py, request, &head, bytes.as_bytes())?;
        }
        send_chunk(py, request, &head, b"")
    })();
    // PEP 3333: close() is called whatever happened.
    let closed = if result.hasattr("close").unwrap_or(false) {
        result.call_method0("close").map(|_| ()).map_err(app_error)
    } else {
        Ok(())
    };
    outcome.and(closed)
}
