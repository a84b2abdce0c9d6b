//! wsgi.input: the request body, pulled from the backend on demand with the
//! GIL released; never held whole in memory.

use super::{Backend, BackendError};
use parking_lot::Mutex;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::Arc;

const CHUNK: usize = 64 * 1024;

#[pyclass(module = "mod_wsgi")]
pub struct Input {
    backend: Arc<dyn Backend>,
    state: Mutex<InputState>,
}

#[derive(Default)]
struct InputState {
    /// Bytes read but not yet handed out (readline lookahead).
    buffer: Vec<u8>,
    eof: bool,
}

/// What a reader wants from the buffer.
enum Want {
    /// Everything up to the end of the body.
    All,
    /// At most this many bytes.
    Bytes(usize),
    /// Up to and including the next newline, at most `limit` bytes.
    Line(Option<usize>),
}

impl Input {
    pub fn new(backend: Arc<dyn Backend>) -> Input {
        Input {
            backend,
            state: Mutex::new(InputState::default()),
        }
    }

    /// Reads one chunk from the backend. The state lock is not held here:
    /// holding a Rust lock while the GIL is released could deadlock against
    /// another Python thread reading the same input.
    fn pull(&self, py: Python<'_>) -> PyResult<Option<Vec<u8>>> {
        let backend = &self.backend;
        let mut chunk = vec![0u8; CHUNK];
        match py.allow_threads(|| backend.read_body(&mut chunk)) {
            Err(BackendError::Finished) => Err(PyOSError::new_err(
                "request has finished; wsgi.input is closed",
            )),
            Err(BackendError::ClientGone(why)) => Err(PyOSError::new_err(format!(
                "error reading request body: {why}"
            ))),
            Ok(0) => Ok(None),
            Ok(n) => {
                chunk.truncate(n);
                Ok(Some(chunk))
            }
        }
    }

    /// Takes what `want` asks for from the buffer, pulling more as needed.
    fn take(&self, py: Python<'_>, want: Want) -> PyResult<Vec<u8>> {
        let mut scanned = 0;
        loop {
            {
                let mut state = self.state.lock();
                let ready = match want {
                    Want::All => None,
                    Want::Bytes(n) => (state.buffer.len() >= n).then_some(n),
                    Want::Line(limit) => {
                        let newline = state.buffer[scanned.min(state.buffer.len())..]
                            .iter()
                            .position(|&b| b == b'\n')
                            .map(|p| scanned + p + 1);
                        scanned = state.buffer.len();
                        match (newline, limit) {
                            (Some(end), Some(l)) => Some(end.min(l)),
                            (Some(end), None) => Some(end),
                            (None, Some(l)) if state.buffer.len() >= l => Some(l),
                            _ => None,
                        }
                    }
                };
                if let Some(n) = ready {
                    return Ok(state.buffer.drain(..n).collect());
                }
                if state.eof {
                    return Ok(std::mem::take(&mut state.buffer));
                }
            }
            let more = self.pull(py)?;
            let mut state = self.state.lock();
            match more {
                Some(bytes) => state.buffer.extend_from_slice(&bytes),
                None => state.eof = true,
            }
        }
    }
}

fn non_negative(v: Option<isize>) -> Option<usize> {
    v.filter(|&s| s >= 0).map(|s| s as usize)
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size = -1))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let want = non_negative(size).map_or(Want::All, Want::Bytes);
        Ok(PyBytes::new(py, &self.take(py, want)?))
    }

    #[pyo3(signature = (size = -1))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(
            py,
            &self.take(py, Want::Line(non_negative(size)))?,
        ))
    }

    #[pyo3(signature = (hint = -1))]
    fn readlines<'py>(
        &self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let hint = non_negative(hint).filter(|&h| h > 0);
        let mut lines = Vec::new();
        let mut total = 0;
        loop {
            let line = self.take(py, Want::Line(None))?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            lines.push(PyBytes::new(py, &line));
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.take(py, Want::Line(None))?;
        Ok((!line.is_empty()).then(|| PyBytes::new(py, &line)))
    }
}
