//! APR pools: Rust values whose lifetime is tied to an Apache pool.

use super::ffi;
use std::ffi::{c_char, c_void};

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

    /// Moves `value` into the pool and lends it for the rest of the pool's
    /// life. Used for the configuration pool (one restart generation): the
    /// reference must only be kept by things that live no longer than that
    /// pool, i.e. other values of the same pool and processes forked while
    /// it lives.
    pub fn adopt_for_generation<T>(self, value: T) -> &'static T {
        // SAFETY: the box stays allocated until the pool's cleanup runs; by
        // the rule above no user of the reference outlives that.
        unsafe { &*self.adopt(value) }
    }

    /// Copies `s` into the pool as a C string (interior NULs are cut there).
    pub fn strdup(self, s: &str) -> *const c_char {
        self.strdup_bytes(s.as_bytes())
    }

    /// Copies bytes (any but NUL: the string is cut at one) into the pool
    /// as a C string.
    pub fn strdup_bytes(self, b: &[u8]) -> *const c_char {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        // SAFETY: apr_pstrmemdup copies `end` bytes from the live slice into
        // the live pool and adds the NUL (no temporary C string: this runs
        // for every CGI variable of every request).
        unsafe { ffi::apr_pstrmemdup(self.0, b.as_ptr().cast(), end) }
    }
}

/// Runs a closure when dropped; `Pool::on_cleanup` adopts one.
struct Cleanup(Option<Box<dyn FnOnce()>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            super::guard("pool cleanup", (), f);
        }
    }
}

impl Pool {
    /// Runs `f` when the pool is cleared or destroyed (e.g. the end of a
    /// configuration generation).
    pub fn on_cleanup(self, f: impl FnOnce() + 'static) {
        self.adopt(Cleanup(Some(Box::new(f))));
    }

    /// Pool userdata: a typed pointer stored under `key`.
    pub fn set_userdata<T>(self, key: &'static std::ffi::CStr, value: *mut T) {
        // SAFETY: APR keeps the pointer; the key is static; the pointer is
        // owned by this same pool (adopted), so it lives as long as the entry.
        unsafe { ffi::apr_pool_userdata_set(value as *const c_void, key.as_ptr(), None, self.0) };
    }

    /// The value stored with `set_userdata` (from `adopt_for_generation`).
    pub fn generation_userdata<T>(self, key: &'static std::ffi::CStr) -> Option<&'static T> {
        let mut data: *mut c_void = std::ptr::null_mut();
        // SAFETY: lookup in a live pool with a static key; the value was
        // stored by set_userdata from adopt_for_generation::<T> under this key.
        unsafe { ffi::apr_pool_userdata_get(&mut data, key.as_ptr(), self.0) };
        // SAFETY: see above; same lifetime rule as adopt_for_generation.
        (!data.is_null()).then(|| unsafe { &*(data as *const T) })
    }
}

impl Pool {
    /// The pool this one was made from (pconf's is the process pool, which
    /// lives across restart generations).
    pub fn parent(self) -> Option<Pool> {
        // SAFETY: reads the parent link of a live pool.
        let raw = unsafe { ffi::apr_pool_parent_get(self.0) };
        (!raw.is_null()).then_some(Pool(raw))
    }

    /// Stores `text` under `key` as a C string allocated in this pool,
    /// with no cleanup. For state that crosses restart generations in the
    /// process pool: plain bytes, so a module reloaded at the next
    /// generation (perhaps a newer build) reads it without sharing any
    /// type or code with the one that wrote it. Each call allocates anew:
    /// keep it small and rare (once per restart).
    pub fn set_text_userdata(self, key: &'static std::ffi::CStr, text: &str) {
        let copy = self.strdup(text);
        // SAFETY: the string lives in this pool as long as the entry; the
        // key is static; no cleanup is registered.
        unsafe { ffi::apr_pool_userdata_set(copy as *const c_void, key.as_ptr(), None, self.0) };
    }

    /// The text stored with `set_text_userdata`.
    pub fn text_userdata(self, key: &'static std::ffi::CStr) -> Option<String> {
        let mut data: *mut c_void = std::ptr::null_mut();
        // SAFETY: lookup in a live pool with a static key.
        unsafe { ffi::apr_pool_userdata_get(&mut data, key.as_ptr(), self.0) };
        // SAFETY: only set_text_userdata stores under text keys: a
        // NUL-terminated string in this pool.
        unsafe { super::cstr(data as *const c_char) }.map(str::to_string)
    }
}
