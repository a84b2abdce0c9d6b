//! A PyCapsule lending a C pointer to Python for a limited time
//! (`WSGIPassApacheRequest`: `environ['apache.request_rec']`).

use pyo3::ffi;
use pyo3::prelude::*;
use std::ffi::{CStr, c_void};
use std::ptr::NonNull;

/// The name a capsule takes when its loan ends. C code asks for the
/// pointer of an unnamed capsule (`PyCapsule_GetPointer(capsule, NULL)`,
/// as mod_wsgi documents it); under this name both that call and
/// `PyCapsule_IsValid(capsule, NULL)` refuse the capsule.
const EXPIRED: &CStr = c"mod_wsgi_rs.expired";

/// An unnamed capsule holding a pointer it does not own (no destructor),
/// as mod_wsgi makes `apache.request_rec`. Dropping the value ends the
/// loan: the capsule object may live on in the application, but the
/// pointer can no longer be had from it.
pub struct LentPointer<'py>(Bound<'py, PyAny>);

impl<'py> LentPointer<'py> {
    pub fn new(py: Python<'py>, pointer: NonNull<c_void>) -> PyResult<LentPointer<'py>> {
        // SAFETY: the GIL is held (`py`); PyCapsule_New only stores the
        // pointer; no name and no destructor, so nothing else to outlive.
        let raw = unsafe { ffi::PyCapsule_New(pointer.as_ptr(), std::ptr::null(), None) };
        // SAFETY: PyCapsule_New returns a new reference, or NULL with an
        // exception set.
        let capsule = unsafe { Bound::from_owned_ptr_or_err(py, raw) }?;
        Ok(LentPointer(capsule))
    }

    pub fn object(&self) -> &Bound<'py, PyAny> {
        &self.0
    }
}

impl Drop for LentPointer<'_> {
    fn drop(&mut self) {
        // SAFETY: the GIL is held (the Bound's lifetime); the object is the
        // capsule made in `new`; the name is a static string, so it outlives
        // the capsule as PyCapsule_SetName requires.
        let rc = unsafe { ffi::PyCapsule_SetName(self.0.as_ptr(), EXPIRED.as_ptr()) };
        if rc != 0 {
            // Cannot happen for a capsule; leave no exception pending.
            let _ = PyErr::take(self.0.py());
        }
    }
}
