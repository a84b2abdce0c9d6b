//! apr_table_t: Apache's string multimap (headers, notes, subprocess_env).

use super::{cstr, ffi, pool::Pool};
use std::ffi::CString;

/// A borrowed table. Valid while its owning request/pool is.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Table(*mut ffi::apr_table_t);

impl Table {
    /// # Safety
    /// `raw` must be a live table for as long as this value is used.
    pub unsafe fn from_raw(raw: *mut ffi::apr_table_t) -> Table {
        Table(raw)
    }

    /// Iterates the entries in order. A table *is* an array header of
    /// entries (apr_table_elts is a cast in APR's own headers).
    pub fn entries<'a>(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        // SAFETY: APR documents apr_table_t as starting with its
        // apr_array_header_t of apr_table_entry_t; the table is live.
        let arr = unsafe { &*(self.0 as *const ffi::apr_array_header_t) };
        let elts = arr.elts as *const ffi::apr_table_entry_t;
        let n = arr.nelts.max(0) as usize;
        (0..n).filter_map(move |i| {
            // SAFETY: i < nelts, so the entry is in bounds; keys and values
            // are pool strings that outlive the iteration.
            let e = unsafe { &*elts.add(i) };
            let k = unsafe { cstr(e.key) }?;
            let v = unsafe { cstr(e.val) }.unwrap_or("");
            Some((k, v))
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        let k = CString::new(key).ok()?;
        // SAFETY: live table; the value is a pool string that outlives this
        // borrow of the table.
        unsafe { cstr(ffi::apr_table_get(self.0, k.as_ptr())) }
    }

    /// Sets `key` (replacing) with copies made in `pool`.
    pub fn set(self, pool: Pool, key: &str, value: &str) {
        // SAFETY: both strings are copied into the pool before apr_table_setn
        // keeps pointers to them.
        unsafe { ffi::apr_table_setn(self.0, pool.strdup(key), pool.strdup(value)) };
    }

    /// Adds `key` (keeping earlier values), copies made in `pool`.
    pub fn add(self, pool: Pool, key: &str, value: &str) {
        // SAFETY: apr_table_add copies both strings into the table's pool.
        let (k, v) = (pool.strdup(key), pool.strdup(value));
        unsafe { ffi::apr_table_add(self.0, k, v) };
    }

    pub fn unset(self, key: &str) {
        if let Ok(k) = CString::new(key) {
            // SAFETY: live table; the key is only read during the call.
            unsafe { ffi::apr_table_unset(self.0, k.as_ptr()) };
        }
    }
}
