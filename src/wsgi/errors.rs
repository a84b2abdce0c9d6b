//! wsgi.errors: a file-like object writing lines to the request's error log.

use super::{Backend, Level};
use parking_lot::Mutex;
use pyo3::prelude::*;
use std::sync::Arc;

#[pyclass(module = "mod_wsgi")]
pub struct ErrorLog {
    backend: Arc<dyn Backend>,
    pending: Mutex<String>,
}

impl ErrorLog {
    pub fn new(backend: Arc<dyn Backend>) -> ErrorLog {
        ErrorLog {
            backend,
            pending: Mutex::new(String::new()),
        }
    }
}

#[pymethods]
impl ErrorLog {
    fn write(&self, text: &str) -> usize {
        let mut pending = self.pending.lock();
        pending.push_str(text);
        while let Some(pos) = pending.find('\n') {
            let line: String = pending.drain(..=pos).collect();
            self.backend.log(Level::Error, line.trim_end_matches('\n'));
        }
        text.chars().count()
    }

    fn writelines(&self, lines: Vec<String>) {
        for l in lines {
            self.write(&l);
        }
    }

    fn flush(&self) {
        let rest = std::mem::take(&mut *self.pending.lock());
        if !rest.is_empty() {
            self.backend.log(Level::Error, &rest);
        }
    }
}
