//! Runs the application and streams what it returns to the backend: headers
//! when the first bytes (or the end) arrive, bytes with the GIL released,
//! and close() always.

use super::start_response::{ResponseHead, StartResponse};
use super::{Backend, BackendError, RequestError, WsgiError};
use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PySystemExit, PyTypeError};
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

/// A Python exception as mod_wsgi logs it: a headline naming its class
/// and where it was raised, then the traceback as Python prints it.
#[derive(Debug)]
pub struct PythonException {
    /// The exception's class name (`ValueError`).
    pub class: String,
    /// SystemExit: mod_wsgi logs it as ignored (the process goes on).
    pub system_exit: bool,
    /// What traceback.print_exception() prints for it.
    pub traceback: String,
}

impl PythonException {
    pub fn capture(py: Python<'_>, err: &PyErr) -> PythonException {
        let ty = err.get_type(py);
        PythonException {
            class: ty
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "Exception".into()),
            system_exit: err.is_instance_of::<PySystemExit>(py),
            traceback: format_exception(py, err),
        }
    }

    /// mod_wsgi 6's first line for it (wsgi_logger.c, WSGI0174 / WSGI0175):
    /// `resource` is the file Apache matched (a request's `[script ...]`
    /// tag), `script` the file named, `context` where it ran
    /// ([`interpreter_context`]).
    pub fn headline(&self, resource: Option<&str>, script: &str, context: &str) -> String {
        let tag = resource.map_or(String::new(), |r| format!("[script {r}] "));
        let class = &self.class;
        if self.system_exit {
            format!(
                "WSGI0175: {tag}{class} exception raised by WSGI script '{script}' for {context}; ignored."
            )
        } else {
            format!(
                "WSGI0174: {tag}{class} exception raised processing WSGI script '{script}' for {context}."
            )
        }
    }

    /// The traceback, one log line each; blank lines are left out, as
    /// mod_wsgi does.
    pub fn traceback_lines(&self) -> impl Iterator<Item = &str> {
        self.traceback.lines().filter(|l| !l.trim().is_empty())
    }
}

/// Where Python code runs, as mod_wsgi names it in its log lines:
/// "main interpreter in embedded mode", "sub-interpreter 'x|/app' of
/// daemon process 'g'" (wsgi_format_interp_context).
pub fn interpreter_context(application_group: &str, process_group: &str) -> String {
    let interpreter = if application_group.is_empty() {
        "main interpreter".to_string()
    } else {
        format!("sub-interpreter '{application_group}'")
    };
    if process_group.is_empty() {
        format!("{interpreter} in embedded mode")
    } else {
        format!("{interpreter} of daemon process '{process_group}'")
    }
}

/// What an exception reaching the adapter means for the request: this
/// interpreter's `mod_wsgi.RequestTimeout` (or a subclass) is a timeout,
/// anything else an application error.
pub fn request_error(py: Python<'_>, err: PyErr) -> RequestError {
    let timeout = py
        .import("mod_wsgi")
        .and_then(|m| m.getattr("RequestTimeout"))
        .is_ok_and(|class| err.is_instance(py, &class));
    if timeout {
        RequestError::RequestTimeout
    } else {
        RequestError::Exception(PythonException::capture(py, &err))
    }
}

fn lost(e: BackendError) -> WsgiError {
    match e {
        BackendError::ClientGone(_) | BackendError::Finished => WsgiError::ClientGone,
    }
}

/// Sends one piece of the body (headers first if not yet sent), with the
/// GIL released while the backend writes.
pub fn send_chunk(
    py: Python<'_>,
    backend: &dyn Backend,
    head: &Mutex<ResponseHead>,
    data: &[u8],
) -> Result<(), WsgiError> {
    send_block(py, backend, head, data, false)
}

/// The end of a response that completed in Python, sent after the request
/// thread has let go of the GIL for good: the head if it is not sent yet,
/// and the last block of a list or tuple if it is small enough to copy.
///
/// Sending it with the GIL released in the middle of the request would
/// mean taking the GIL back afterwards only to finish: under many
/// concurrent requests every taking of the GIL is a wait behind the other
/// threads, so a small response that needed two took about twice the
/// context switches and CPU of one that needs one (C mod_wsgi's threads
/// re-take it by barging in, which the GIL waiting room rules out).
pub struct Tail {
    head: Option<UnsentHead>,
    body: Vec<u8>,
}

/// Largest last block copied into a [`Tail`]; a larger one is sent as
/// the blocks before it, the GIL let go around the write. A 64 KiB block
/// copied cost more than that round (bench 64k, 16 connections: 74-78 us
/// of CPU per request copied, 65-68 not).
const TAIL_COPY_LIMIT: usize = 8 * 1024;

impl Tail {
    /// Body bytes it carries.
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// Sends it (without the GIL: it holds no Python object).
    pub fn send(self, backend: &dyn Backend) -> Result<(), WsgiError> {
        if let Some((code, line, headers)) = &self.head {
            backend.send_head(*code, line, headers).map_err(lost)?;
        }
        if !self.body.is_empty() {
            backend.write_last_body(&self.body).map_err(lost)?;
        }
        Ok(())
    }
}

/// The head not sent yet and the last block, cut to the Content-Length
/// allowance, as a [`Tail`] to send once the GIL is let go.
fn tail(head: &Mutex<ResponseHead>, data: &[u8]) -> Result<Tail, WsgiError> {
    let (unsent_head, data) = outgoing(head, data)?;
    Ok(Tail {
        head: unsent_head,
        body: data.to_vec(),
    })
}

/// What goes out with the block `data`: the head if it is not sent yet,
/// and the bytes of `data` within the application's Content-Length (those
/// beyond are dropped).
fn outgoing<'a>(
    head: &Mutex<ResponseHead>,
    data: &'a [u8],
) -> Result<(Option<UnsentHead>, &'a [u8]), WsgiError> {
    let unsent_head = take_unsent_head(head)?;
    let allowed = head.lock().allowance(data.len());
    Ok((unsent_head, &data[..allowed]))
}

/// As send_chunk; `last` says the response ends right after these bytes.
///
/// The head and the bytes go to the backend with the GIL released once
/// (each release and re-acquisition is a wait behind the other threads).
fn send_block(
    py: Python<'_>,
    backend: &dyn Backend,
    head: &Mutex<ResponseHead>,
    data: &[u8],
    last: bool,
) -> Result<(), WsgiError> {
    let (unsent_head, data) = outgoing(head, data)?;
    if unsent_head.is_none() && data.is_empty() {
        return Ok(());
    }
    // A write that needs no wait is made with the GIL held: letting go of
    // it would mean taking it back behind the threads that took it
    // meanwhile (in a daemon process, the other request threads' work).
    let head_now = unsent_head
        .as_ref()
        .map(|(code, line, headers)| (*code, line.as_str(), headers.as_slice()));
    if let Some(sent) = backend.send_now(head_now, data, last) {
        if sent.map_err(lost)? {
            return Ok(());
        }
        return crate::python::interp::allow_threads(py, || backend.flush_queued()).map_err(lost);
    }
    crate::python::interp::allow_threads(py, || {
        if let Some((code, line, headers)) = &unsent_head {
            backend.send_head(*code, line, headers)?;
        }
        match (data.is_empty(), last) {
            (true, _) => Ok(()),
            (false, true) => backend.write_last_body(data),
            (false, false) => backend.write_body(data),
        }
    })
    .map_err(lost)
}

/// A response head start_response() made that is not sent yet: status,
/// status line and headers, marked sent from now on. The caller sends it
/// together with the first bytes, in the same GIL release.
pub(super) type UnsentHead = (u16, String, Vec<(String, String)>);

pub(super) fn take_unsent_head(
    head: &Mutex<ResponseHead>,
) -> Result<Option<UnsentHead>, WsgiError> {
    let mut h = head.lock();
    if h.sent {
        return Ok(None);
    }
    let Some((code, line)) = h.status.clone() else {
        return Err(WsgiError::Application(
            "start_response() must be called before response content is produced".into(),
        ));
    };
    h.sent = true;
    Ok(Some((code, line, std::mem::take(&mut h.headers))))
}

/// What [`run`] did: the tail for the caller to send once it has let go of
/// the GIL (also when close() failed after a whole response), and what
/// went wrong; `head.sent` tells whether a response started (or is in the
/// tail).
pub struct Ran {
    pub tail: Option<Tail>,
    pub result: Result<(), RequestError>,
}

/// Calls the application and sends its response but for the [`Tail`].
pub fn run(
    py: Python<'_>,
    application: &Bound<'_, PyAny>,
    environ: Bound<'_, PyDict>,
    backend: &dyn Backend,
    start: Bound<'_, StartResponse>,
) -> Ran {
    let head = start.borrow().head.clone();
    let app_error = |e: PyErr| {
        super::events::request_exception(py, &e);
        request_error(py, e)
    };
    // The one slip of the application the send path finds, output before
    // start_response(), is a RuntimeError as with mod_wsgi.
    let send_error = |e: WsgiError| match e {
        WsgiError::Application(message) => request_error(py, PyRuntimeError::new_err(message)),
        other => other.into(),
    };
    let result = match application.call1((environ, start)) {
        Ok(result) => result,
        Err(e) => {
            return Ran {
                tail: None,
                result: Err(app_error(e)),
            };
        }
    };
    let outcome = (|| -> Result<Option<Tail>, RequestError> {
        // The exchange went to the event loop (an ASGI application in
        // daemon mode), which answers it: nothing here is this call's to
        // send (asking for the head would build an error, traceback
        // included, on every request).
        if backend.is_detached() {
            return Ok(None);
        }
        // A wsgi.file_wrapper of a regular file: the backend may send the
        // file itself (embedded mode: sendfile / mmap, as static files).
        if let Ok(wrapper) = result.downcast::<super::file_wrapper::FileWrapper>()
            && super::file_wrapper::send_direct(py, wrapper, backend, &head).map_err(send_error)?
        {
            return Ok(None);
        }
        // A list or tuple says how many blocks come: the last one can go
        // out together with the end of the response.
        let known_len = if result.is_instance_of::<pyo3::types::PyList>()
            || result.is_instance_of::<pyo3::types::PyTuple>()
        {
            result.len().ok()
        } else {
            None
        };
        for (index, item) in result.try_iter().map_err(app_error)?.enumerate() {
            let item = item.map_err(app_error)?;
            let bytes = item.downcast::<PyBytes>().map_err(|_| {
                let name = item
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                app_error(PyTypeError::new_err(format!(
                    "response iterable must yield bytes, not {name}"
                )))
            })?;
            let last = known_len == Some(index + 1);
            if last && bytes.as_bytes().len() <= TAIL_COPY_LIMIT {
                return tail(&head, bytes.as_bytes()).map(Some).map_err(send_error);
            }
            send_block(py, backend, &head, bytes.as_bytes(), last).map_err(send_error)?;
        }
        // No body, or its last block went already: the head, if unsent.
        tail(&head, b"").map(Some).map_err(send_error)
    })();
    // PEP 3333: close() is called whatever happened.
    // A list or tuple has no close(); asking would raise and format an
    // AttributeError under the GIL on every request.
    let plain_sequence = result.is_exact_instance_of::<pyo3::types::PyList>()
        || result.is_exact_instance_of::<pyo3::types::PyTuple>();
    let closed = if !plain_sequence && result.hasattr("close").unwrap_or(false) {
        result.call_method0("close").map(|_| ()).map_err(app_error)
    } else {
        Ok(())
    };
    let (tail, outcome) = match outcome {
        Ok(tail) => (tail, Ok(())),
        Err(e) => (None, Err(e)),
    };
    let result = match (outcome, closed) {
        (Err(e), _) => Err(e),
        // A RequestTimeout from close() once the response is complete
        // changes nothing for the client; mod_wsgi drops it silently.
        (Ok(()), Err(RequestError::RequestTimeout)) => Ok(()),
        (Ok(()), closed) => closed,
    };
    Ran { tail, result }
}

/// The local URL a response asks Apache to serve in its place, by the CGI
/// rule mod_cgi (and mod_wsgi's daemon mode) follow: status 200 with a
/// `Location` header (the first one) holding a path on this server. A
/// protocol-relative `//host/...` is meant for the client and is not one.
pub fn local_redirect<'a>(
    status: u16,
    headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Option<&'a [u8]> {
    if status != 200 {
        return None;
    }
    let (_, location) = headers
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(b"location"))?;
    (location.starts_with(b"/") && !location.starts_with(b"//")).then_some(location)
}

#[cfg(test)]
mod tests {
    use super::local_redirect;

    fn check(status: u16, headers: &[(&str, &str)]) -> Option<String> {
        local_redirect(
            status,
            headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
        )
        .map(|l| String::from_utf8_lossy(l).into_owned())
    }

    #[test]
    fn only_status_200_with_a_local_path_redirects() {
        assert_eq!(
            check(200, &[("Location", "/x?a=1")]).as_deref(),
            Some("/x?a=1")
        );
        assert_eq!(
            check(200, &[("content-type", "t"), ("LOCATION", "/y")]).as_deref(),
            Some("/y")
        );
        assert_eq!(check(302, &[("Location", "/x")]), None);
        assert_eq!(check(201, &[("Location", "/x")]), None);
        assert_eq!(check(200, &[("Location", "http://h/x")]), None);
        assert_eq!(check(200, &[("Location", "//h/x")]), None);
        assert_eq!(check(200, &[("Location", "x")]), None);
        assert_eq!(check(200, &[("Location", "")]), None);
        assert_eq!(check(200, &[]), None);
        // The first Location decides, as apr_table_get finds it.
        assert_eq!(
            check(200, &[("Location", "http://h/"), ("Location", "/x")]),
            None
        );
    }
}
