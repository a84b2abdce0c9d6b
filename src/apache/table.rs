//! apr_table_t: Apache's string multimap (headers, notes, subprocess_env).

use super::{cbytes, cstr, ffi, pool::Pool};
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

    /// Iterates the entries in order (the ones with UTF-8 keys; a value
    /// that is not UTF-8 reads as ""). A table *is* an array header of
    /// entries (apr_table_elts is a cast in APR's own headers).
    pub fn entries<'a>(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.byte_entries().filter_map(|(k, v)| {
            let k = std::str::from_utf8(k).ok()?;
            Some((k, std::str::from_utf8(v).unwrap_or("")))
        })
    }

    /// Iterates the entries in order as the bytes they hold (request
    /// headers may carry any byte but NUL).
    pub fn byte_entries<'a>(self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        // SAFETY: APR documents apr_table_t as starting with its
        // apr_array_header_t of apr_table_entry_t; the table is live.
        let arr = unsafe { &*(self.0 as *const ffi::apr_array_header_t) };
        let elts = arr.elts as *const ffi::apr_table_entry_t;
        let n = arr.nelts.max(0) as usize;
        (0..n).filter_map(move |i| {
            // SAFETY: i < nelts, so the entry is in bounds; keys and values
            // are pool strings that outlive the iteration.
            let e = unsafe { &*elts.add(i) };
            let k = unsafe { cbytes(e.key) }?;
            let v = unsafe { cbytes(e.val) }.unwrap_or(b"");
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

    /// Sets `key` (replacing) to bytes, copies made in `pool`.
    pub fn set_bytes(self, pool: Pool, key: &str, value: &[u8]) {
        // SAFETY: both strings are copied into the pool before apr_table_setn
        // keeps pointers to them.
        unsafe { ffi::apr_table_setn(self.0, pool.strdup(key), pool.strdup_bytes(value)) };
    }

    /// Adds `key` (keeping earlier values), copies made in `pool`.
    pub fn add(self, pool: Pool, key: &str, value: &str) {
        self.add_bytes(pool, key.as_bytes(), value.as_bytes());
    }

    /// Adds `key` (keeping earlier values) with bytes as Apache sends them
    /// (a response header of a WSGI application is latin-1), copies made
    /// in `pool`.
    pub fn add_bytes(self, pool: Pool, key: &[u8], value: &[u8]) {
        let (k, v) = (pool.strdup_bytes(key), pool.strdup_bytes(value));
        // SAFETY: live table; apr_table_addn keeps the two pool copies,
        // which live as long as the table's pool.
        unsafe { ffi::apr_table_addn(self.0, k, v) };
    }

    pub fn unset(self, key: &str) {
        if let Ok(k) = CString::new(key) {
            // SAFETY: live table; the key is only read during the call.
            unsafe { ffi::apr_table_unset(self.0, k.as_ptr()) };
        }
    }
}
