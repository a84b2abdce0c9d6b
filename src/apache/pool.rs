//! APR pools: Rust values whose lifetime is tied to an Apache pool.

use super::ffi;
use std::ffi::{CString, c_char, c_void};

/// A borrowed APR pool.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Pool(*mut ffi::apr_pool_t);

unsafe extern "C" fn drop_boxed<T>(data: *mut c_void) -> ffi::apr_status_t {
    // SAFETY: `data` came from Box::into_raw in `Pool::adopt::<T>` and the
    // pool runs this cleanup exactly once.
    drop(unsafe { Box::from_raw(data as *mut T) });
    0
}

impl Pool {
    /// # Safety
    /// `raw` must be a live pool for as long as this value and anything it
    /// allocates are used.
    pub unsafe fn from_raw(raw: *mut ffi::apr_pool_t) -> Pool {
        Pool(raw)
    }

    pub fn as_ptr(self) -> *mut ffi::apr_pool_t {
        self.0
    }

    /// Moves `value` to the heap and drops it when the pool is cleared, so
    /// configuration built by Rust lives exactly as long as Apache's pool.
    pub fn adopt<T>(self, value: T) -> *mut T {
        let raw = Box::into_raw(Box::new(value));
        // SAFETY: the pool is live (from_raw contract); the cleanup frees the
        // box once, with the type it was created with.
        unsafe {
            ffi::apr_pool_cleanup_register(
                self.0,
                raw as *const c_void,
                Some(drop_boxed::<T>),
                Some(ffi::apr_pool_cleanup_null),
            )
        };
        raw
    }

    /// Copies `s` into the pool as a C string (interior NULs are cut there).
    pub fn strdup(self, s: &str) -> *const c_char {
        let c = CString::new(s.split('\0').next().unwrap_or("")).expect("no NUL left");
        // SAFETY: apr_pstrdup copies the NUL-terminated string into the live pool.
        unsafe { ffi::apr_pstrdup(self.0, c.as_ptr()) }
    }
}
