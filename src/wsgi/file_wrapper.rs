//! wsgi.file_wrapper (PEP 3333's optional platform-specific file handling):
//! `environ['wsgi.file_wrapper'](filelike, blksize=8192)` is an iterable of
//! the file's bytes from its current position, and its close() closes the
//! file.
//!
//! Any object with read() works (read(blksize) until it returns nothing).
//! For a regular file with fileno() the bytes start at the file's tell()
//! and come from a private duplicate of its descriptor: when the response
//! loop sees the wrapper returned as the application's result, the backend
//! may send the file itself ([`send_direct`]: a file bucket in embedded
//! mode, so Apache uses sendfile or mmap as for a static file; in daemon
//! mode the descriptor goes to the Apache child, which does the same);
//! otherwise iterating reads it with positional reads, with the GIL
//! released and in blocks of at least 64 KiB.

use super::response::take_unsent_head;
use super::start_response::ResponseHead;
use super::{Backend, BackendError, WsgiError};
use crate::python::files::dup_file;
use parking_lot::Mutex;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Smallest block read from a real file: a few large reads beat many
/// small ones, and the response loop sends each block as it comes.
const FAST_BLOCK: usize = 64 * 1024;

enum State {
    /// Not iterated yet: the way to read is chosen at the first block.
    Fresh,
    /// A regular file read by offset without the GIL; `size` as it was
    /// when chosen (what [`send_direct`] sends up to).
    File {
        file: Arc<std::fs::File>,
        offset: u64,
        size: u64,
    },
    /// Plain read(blksize) calls on the object.
    Plain,
    Done,
}

#[pyclass(module = "mod_wsgi", frozen)]
pub struct FileWrapper {
    filelike: Py<PyAny>,
    blksize: usize,
    state: Mutex<State>,
}

impl FileWrapper {
    /// The descriptor, position and size when `filelike` is a regular file.
    fn open_fast(&self, py: Python<'_>) -> Option<(std::fs::File, u64, u64)> {
        let f = self.filelike.bind(py);
        let fd: i32 = f.call_method0("fileno").ok()?.extract().ok()?;
        let offset: u64 = f.call_method0("tell").ok()?.extract().ok()?;
        let file = dup_file(fd).ok()?;
        let meta = file.metadata().ok()?;
        meta.is_file().then_some((file, offset, meta.len()))
    }

    /// Chooses how to read at the first use: the descriptor path for a
    /// regular file, read() calls otherwise.
    fn choose(&self, py: Python<'_>) {
        if matches!(*self.state.lock(), State::Fresh) {
            let chosen = match self.open_fast(py) {
                Some((file, offset, size)) => State::File {
                    file: Arc::new(file),
                    offset,
                    size,
                },
                None => State::Plain,
            };
            *self.state.lock() = chosen;
        }
    }

    fn next_plain(&self, py: Python<'_>) -> PyResult<Option<Py<PyBytes>>> {
        let data = self
            .filelike
            .bind(py)
            .call_method1("read", (self.blksize,))?;
        let bytes = data.downcast_into::<PyBytes>().map_err(|e| {
            PyTypeError::new_err(format!(
                "wsgi.file_wrapper: read() must return bytes, got {}",
                e.into_inner().get_type()
            ))
        })?;
        if bytes.as_bytes().is_empty() {
            *self.state.lock() = State::Done;
            return Ok(None);
        }
        Ok(Some(bytes.unbind()))
    }
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize = 8192))]
    fn new(filelike: Bound<'_, PyAny>, blksize: i64) -> PyResult<FileWrapper> {
        if blksize <= 0 {
            return Err(PyValueError::new_err(format!(
                "wsgi.file_wrapper: blksize must be > 0, got {blksize}"
            )));
        }
        if !filelike.hasattr("read")? {
            return Err(PyTypeError::new_err(format!(
                "wsgi.file_wrapper needs an object with read(), got {}",
                filelike.get_type()
            )));
        }
        Ok(FileWrapper {
            filelike: filelike.unbind(),
            blksize: blksize as usize,
            state: Mutex::new(State::Fresh),
        })
    }

    #[getter]
    fn filelike(&self, py: Python<'_>) -> Py<PyAny> {
        self.filelike.clone_ref(py)
    }

    #[getter]
    fn blksize(&self) -> usize {
        self.blksize
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyBytes>>> {
        self.choose(py);
        let (file, offset) = match &*self.state.lock() {
            State::Fresh | State::Plain => (None, 0),
            State::File { file, offset, .. } => (Some(file.clone()), *offset),
            State::Done => return Ok(None),
        };
        let Some(file) = file else {
            return self.next_plain(py);
        };
        let size = self.blksize.max(FAST_BLOCK);
        // No Rust lock is held while the GIL is released.
        let read = crate::python::interp::allow_threads(py, move || {
            let mut buf = vec![0u8; size];
            loop {
                match file.read_at(&mut buf, offset) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                    Ok(n) => {
                        buf.truncate(n);
                        return Ok(buf);
                    }
                }
            }
        })?;
        let mut state = self.state.lock();
        if read.is_empty() {
            *state = State::Done;
            drop(state);
            // Leave the file object where a plain read would have.
            let _ = self.filelike.bind(py).call_method1("seek", (offset,));
            return Ok(None);
        }
        if let State::File { offset: o, .. } = &mut *state {
            *o = offset + read.len() as u64;
        }
        drop(state);
        Ok(Some(PyBytes::new(py, &read).unbind()))
    }

    /// Closes the file object (PEP 3333: the server calls this).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        *self.state.lock() = State::Done;
        let f = self.filelike.bind(py);
        if f.hasattr("close")? {
            f.call_method0("close")?;
        }
        Ok(())
    }
}

/// Sends what is left of the regular file behind `wrapper` (the
/// application's return value) through the backend's own file path:
/// from the file's position when the wrapper was made, to its end, or as
/// much as the application's Content-Length still allows (without one,
/// the head gets the length sent as its Content-Length). Ok(true): the
/// body was sent (the wrapper is exhausted, its close() is still the
/// caller's to call); Ok(false): nothing was sent but perhaps the head,
/// iterate the wrapper as usual.
pub fn send_direct(
    py: Python<'_>,
    wrapper: &Bound<'_, FileWrapper>,
    backend: &dyn Backend,
    head: &Mutex<ResponseHead>,
) -> Result<bool, WsgiError> {
    // Without start_response() the usual loop reports the error.
    if head.lock().status.is_none() {
        return Ok(false);
    }
    let this = wrapper.get();
    this.choose(py);
    let (file, offset, size) = match &*this.state.lock() {
        State::File { file, offset, size } => (file.clone(), *offset, *size),
        _ => return Ok(false),
    };
    // Empty, or a size that says nothing (/proc files show 0): reading
    // it tells.
    if size == 0 {
        return Ok(false);
    }
    let mut len = size.saturating_sub(offset);
    {
        let mut h = head.lock();
        match h.content_length {
            Some(limit) => len = len.min(limit.saturating_sub(h.produced)),
            // As mod_wsgi does: the length of the rest of the file, while
            // the head is still to be sent (nothing produced yet).
            None if !h.sent => {
                h.headers.push(("Content-Length".into(), len.to_string()));
                h.content_length = Some(len);
            }
            None => {}
        }
    }
    // The head goes first, as it would with the first block, in the same
    // GIL release as the file. Ok(None): the backend has no direct path; the
    // usual loop streams the file after the head.
    let unsent = take_unsent_head(head)?;
    let sent = crate::python::interp::allow_threads(py, || {
        if let Some((code, line, headers)) = &unsent {
            backend.send_head(*code, line, headers)?;
        }
        if len == 0 {
            return Ok(Some(()));
        }
        backend.send_file(&file, offset, len).transpose()
    });
    match sent {
        Ok(None) => return Ok(false),
        Err(BackendError::ClientGone(_) | BackendError::Finished) => {
            return Err(WsgiError::ClientGone);
        }
        Ok(Some(())) => head.lock().produced += len,
    }
    *this.state.lock() = State::Done;
    // Leave the file object where reading it would have.
    let _ = this.filelike.bind(py).call_method1("seek", (offset + len,));
    Ok(true)
}
