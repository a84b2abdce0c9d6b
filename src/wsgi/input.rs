//! wsgi.input: the request body, read from Apache's input filters on demand
//! with the GIL released.

use crate::apache::request::SharedRequest;
use parking_lot::Mutex;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

const CHUNK: usize = 64 * 1024;

#[pyclass(module = "mod_wsgi")]
pub struct Input {
    request: SharedRequest,
    state: Mutex<InputState>,
}

#[derive(Default)]
struct InputState {
    /// Bytes read from Apache but not yet handed out (readline lookahead).
    buffer: Vec<u8>,
    eof: bool,
}

impl Input {
    pub fn new(request: SharedRequest) -> Input {
        Input {
            request,
            state: Mutex::new(InputState::default()),
        }
    }

    /// Pulls up to one chunk from Apache into the buffer. Returns false at EOF.
    fn fill(&self, py: Python<'_>, state: &mut InputState) -> PyResult<bool> {
        if state.eof {
            return Ok(false);
        }
        let request = self.request.clone();
        let mut chunk = vec![0u8; CHUNK];
        let read = py.allow_threads(|| request.with(|r| r.read_body(&mut chunk)));
        match read {
            None => Err(PyOSError::new_err(
                "request has finished; wsgi.input is closed",
            )),
            Some(Err(())) => Err(PyOSError::new_err(
                "error reading request body: client disconnected or sent a bad body",
            )),
            Some(Ok(0)) => {
                state.eof = true;
                Ok(false)
            }
            Some(Ok(n)) => {
                state.buffer.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
        }
    }

    fn read_line(&self, py: Python<'_>, limit: Option<usize>) -> PyResult<Vec<u8>> {
        let mut state = self.state.lock();
        let mut scanned = 0;
        loop {
            if let Some(pos) = state.buffer[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + pos + 1;
                let end = limit.map_or(end, |l| end.min(l));
                return Ok(state.buffer.drain(..end).collect());
            }
            scanned = state.buffer.len();
            if let Some(l) = limit {
                if state.buffer.len() >= l {
                    return Ok(state.buffer.drain(..l).collect());
                }
            }
            if !self.fill(py, &mut state)? {
                return Ok(std::mem::take(&mut state.buffer));
            }
        }
    }
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size = -1))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let mut state = self.state.lock();
        let want = size.filter(|&s| s >= 0).map(|s| s as usize);
        loop {
            if let Some(w) = want {
                if state.buffer.len() >= w {
                    let out: Vec<u8> = state.buffer.drain(..w).collect();
                    return Ok(PyBytes::new(py, &out));
                }
            }
            if !self.fill(py, &mut state)? {
                let out = std::mem::take(&mut state.buffer);
                return Ok(PyBytes::new(py, &out));
            }
        }
    }

    #[pyo3(signature = (size = -1))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let limit = size.filter(|&s| s >= 0).map(|s| s as usize);
        let line = self.read_line(py, limit)?;
        Ok(PyBytes::new(py, &line))
    }

    #[pyo3(signature = (hint = -1))]
    fn readlines<'py>(
        &self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let hint = hint.filter(|&h| h > 0).map(|h| h as usize);
        let mut lines = Vec::new();
        let mut total = 0;
        loop {
            let line = self.read_line(py, None)?;
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
        let line = self.read_line(py, None)?;
        Ok(if line.is_empty() {
            None
        } else {
            Some(PyBytes::new(py, &line))
        })
    }
}
