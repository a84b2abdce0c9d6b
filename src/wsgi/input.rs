//! wsgi.input: the request body, pulled from the backend on demand with the
//! GIL released; never held whole in memory (unless the application asks
//! for all of it).
//!
//! read(n) reads straight into the bytes object it returns, releasing the
//! GIL once for as many backend reads as it takes; read() grows one buffer
//! the same way. readline() and iteration keep a lookahead buffer, which
//! the other methods use up first.

use super::{Backend, BackendError, BodyBuf};
use parking_lot::Mutex;
use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::sync::Arc;

/// Bytes asked of the backend per read for the lookahead buffer, and the
/// growth step of read() with no size.
const CHUNK: usize = 64 * 1024;
/// read(n) up to this size gets a bytes object of n at once; beyond it the
/// result grows as the body arrives, so read(huge) on a small body does not
/// allocate huge.
const DIRECT_MAX: usize = 4 << 20;

#[pyclass(module = "mod_wsgi")]
pub struct Input {
    backend: Arc<dyn Backend>,
    state: Mutex<InputState>,
}

#[derive(Default)]
struct InputState {
    /// Bytes read but not yet handed out (readline lookahead): `buffer[pos..]`.
    buffer: Vec<u8>,
    pos: usize,
    eof: bool,
    /// Why a read failed: every later read raises it again without asking
    /// the backend (as mod_wsgi does), whose exchange may be mid-frame.
    failed: Option<BackendError>,
}

impl InputState {
    fn available(&self) -> &[u8] {
        &self.buffer[self.pos..]
    }

    /// Hands out the next `n` buffered bytes.
    fn consume(&mut self, n: usize) -> Vec<u8> {
        let out = self.buffer[self.pos..self.pos + n].to_vec();
        self.pos += n;
        if self.pos == self.buffer.len() {
            self.buffer.clear();
            self.pos = 0;
        }
        out
    }

    /// Hands out up to `n` buffered bytes (all of them with None).
    fn consume_up_to(&mut self, n: Option<usize>) -> Vec<u8> {
        let avail = self.available().len();
        self.consume(n.map_or(avail, |n| n.min(avail)))
    }
}

/// What a line reader wants from the buffer.
struct Line(Option<usize>);

fn to_py_err(e: &BackendError) -> PyErr {
    match e {
        // As mod_wsgi 6: the object outlived its request.
        BackendError::Finished => {
            PyRuntimeError::new_err("read() called on wsgi.input after request completed")
        }
        BackendError::ClientGone(why) => {
            PyOSError::new_err(format!("error reading request body: {why}"))
        }
    }
}

/// Fills `buf` from the backend until it is full or the body ends;
/// returns whether the body ended. Called without the GIL.
fn fill(backend: &dyn Backend, buf: &mut BodyBuf<'_>) -> Result<bool, BackendError> {
    while !buf.is_full() {
        if backend.read_body(buf)? == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Appends to `data` until it holds `limit` bytes (None: no limit) or the
/// body ends; growing it as needed. Returns whether the body ended.
/// Called without the GIL.
fn fill_growing(
    backend: &dyn Backend,
    data: &mut Vec<u8>,
    limit: Option<usize>,
) -> Result<bool, BackendError> {
    loop {
        let want = limit.map_or(usize::MAX, |l| l - data.len());
        if want == 0 {
            return Ok(false);
        }
        let start = data.len();
        // Grow by at least CHUNK and by doubling, up to what is wanted.
        let step = CHUNK.max(data.len()).min(want);
        data.resize(start + step, 0);
        let mut buf = BodyBuf::new(&mut data[start..]);
        let result = fill(backend, &mut buf);
        let got = buf.filled().len();
        let eof = match result {
            Ok(eof) => eof,
            Err(e) => {
                data.truncate(start);
                return Err(e);
            }
        };
        data.truncate(start + got);
        if eof {
            return Ok(true);
        }
    }
}

impl Input {
    pub fn new(backend: Arc<dyn Backend>) -> Input {
        Input {
            backend,
            state: Mutex::new(InputState::default()),
        }
    }

    /// The error of an earlier failed read, raised again.
    fn check_failed(&self) -> PyResult<()> {
        match &self.state.lock().failed {
            Some(e) => Err(to_py_err(e)),
            None => Ok(()),
        }
    }

    /// Remembers a failed read and turns it into the exception raised.
    fn fail(&self, e: BackendError) -> PyErr {
        let err = to_py_err(&e);
        self.state.lock().failed = Some(e);
        err
    }

    /// read(n) / read(): the buffered bytes first, then straight from the
    /// backend with the GIL released once.
    fn read_some<'py>(
        &self,
        py: Python<'py>,
        size: Option<usize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        // The state lock is never held while the GIL is released (another
        // Python thread reading the same input could deadlock against it),
        // nor while Python objects are made (a finalizer run by the
        // allocator could read wsgi.input).
        self.check_failed()?;
        let (prefix, eof) = {
            let mut state = self.state.lock();
            let ready = match size {
                Some(n) => state.available().len() >= n,
                None => false,
            };
            if ready || state.eof {
                (state.consume_up_to(size), true)
            } else {
                (state.consume_up_to(None), false)
            }
        };
        if eof {
            return Ok(PyBytes::new(py, &prefix));
        }
        let backend = &*self.backend;
        match size {
            Some(n) if n <= DIRECT_MAX => {
                let mut ended = false;
                let bytes = crate::python::bytes_filled_by(py, n, |buf| {
                    buf.append(&prefix);
                    ended = crate::python::interp::allow_threads(py, || fill(backend, buf))
                        .map_err(|e| self.fail(e))?;
                    Ok(())
                })?;
                if ended {
                    self.state.lock().eof = true;
                }
                Ok(bytes)
            }
            limit => {
                let mut data = prefix;
                let ended = crate::python::interp::allow_threads(py, || {
                    fill_growing(backend, &mut data, limit)
                })
                .map_err(|e| self.fail(e))?;
                if ended {
                    self.state.lock().eof = true;
                }
                Ok(PyBytes::new(py, &data))
            }
        }
    }

    /// Reads once from the backend into the lookahead buffer.
    fn pull(&self, py: Python<'_>) -> PyResult<()> {
        self.check_failed()?;
        let backend = &*self.backend;
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut buf = BodyBuf::uninit(chunk.spare_capacity_mut());
        let n = crate::python::interp::allow_threads(py, || backend.read_body(&mut buf))
            .map_err(|e| self.fail(e))?;
        let mut state = self.state.lock();
        if n == 0 {
            state.eof = true;
        } else {
            if state.pos > 0 {
                let pos = state.pos;
                state.buffer.drain(..pos);
                state.pos = 0;
            }
            state.buffer.extend_from_slice(buf.filled());
        }
        Ok(())
    }

    /// The next line (up to and including its newline), at most `limit`
    /// bytes; empty at the end of the body.
    fn line(&self, py: Python<'_>, Line(limit): Line) -> PyResult<Vec<u8>> {
        let mut scanned = 0;
        loop {
            {
                let mut state = self.state.lock();
                let avail = state.available();
                let newline = avail[scanned.min(avail.len())..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map(|p| scanned + p + 1);
                scanned = avail.len();
                let ready = match (newline, limit) {
                    (Some(end), Some(l)) => Some(end.min(l)),
                    (Some(end), None) => Some(end),
                    (None, Some(l)) if avail.len() >= l => Some(l),
                    _ => None,
                };
                if let Some(n) = ready {
                    return Ok(state.consume(n));
                }
                if state.eof {
                    return Ok(state.consume_up_to(None));
                }
            }
            self.pull(py)?;
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
        match non_negative(size) {
            Some(0) => Ok(PyBytes::new(py, b"")),
            size => self.read_some(py, size),
        }
    }

    #[pyo3(signature = (size = -1))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.line(py, Line(non_negative(size)))?))
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
            let line = self.line(py, Line(None))?;
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
        let line = self.line(py, Line(None))?;
        Ok((!line.is_empty()).then(|| PyBytes::new(py, &line)))
    }
}
