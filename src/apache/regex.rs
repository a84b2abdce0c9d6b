//! Apache's own regular expressions (`ap_regcomp`, PCRE underneath) for
//! WSGIScriptAliasMatch, so a pattern means exactly what it means to
//! mod_wsgi and mod_alias: look-around, back-references, PCRE classes.

use super::ffi;
use crate::config::{Captures, RegexEngine, UrlRegex};
use std::ffi::{CString, c_char};
use std::sync::Arc;

/// Compiles with the flags mod_wsgi passes (AP_REG_EXTENDED).
pub struct ApacheRegexEngine;

impl RegexEngine for ApacheRegexEngine {
    fn compile(&self, pattern: &str) -> Result<Arc<dyn UrlRegex>, String> {
        let source = CString::new(pattern).map_err(|_| "contains a NUL byte".to_string())?;
        // SAFETY: ap_regex_t is plain data that ap_regcomp fills in; an
        // all-zero value is what C callers start from.
        let mut compiled = Box::new(unsafe { std::mem::zeroed::<ffi::ap_regex_t>() });
        // SAFETY: `compiled` is a live ap_regex_t and `source` a C string
        // that outlives the call.
        let rc =
            unsafe { ffi::ap_regcomp(&mut *compiled, source.as_ptr(), ffi::MWRS_AP_REG_EXTENDED) };
        if rc != 0 {
            let mut message = [0 as c_char; 256];
            // SAFETY: ap_regerror writes at most `message.len()` bytes,
            // NUL-terminated, describing `rc` for `compiled`.
            unsafe { ffi::ap_regerror(rc, &*compiled, message.as_mut_ptr(), message.len()) };
            // SAFETY: NUL-terminated by ap_regerror (the buffer is zeroed).
            let text = unsafe { super::cstr(message.as_ptr()) }.unwrap_or("invalid pattern");
            // ap_regcomp leaves nothing allocated when it fails.
            return Err(text.to_string());
        }
        Ok(Arc::new(ApacheRegex { compiled }))
    }
}

/// One compiled expression; freed with ap_regfree.
struct ApacheRegex {
    compiled: Box<ffi::ap_regex_t>,
}

// SAFETY: after compilation the pattern is only read; ap_regexec_len keeps
// its match state per call, so concurrent matches from request threads are
// fine (mod_wsgi and mod_alias share compiled patterns the same way).
unsafe impl Send for ApacheRegex {}
// SAFETY: as above.
unsafe impl Sync for ApacheRegex {}

impl std::fmt::Debug for ApacheRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApacheRegex")
    }
}

impl UrlRegex for ApacheRegex {
    fn captures(&self, text: &[u8]) -> Option<Captures> {
        let none = ffi::ap_regmatch_t {
            rm_so: -1,
            rm_eo: -1,
        };
        let mut found = [none; 10];
        // SAFETY: `compiled` was filled in by ap_regcomp; `text` is read for
        // `text.len()` bytes; `found` holds `found.len()` slots.
        let rc = unsafe {
            ffi::ap_regexec_len(
                &*self.compiled,
                text.as_ptr().cast(),
                text.len(),
                found.len(),
                found.as_mut_ptr(),
                0,
            )
        };
        if rc != 0 {
            return None;
        }
        let mut out: Captures = [None; 10];
        for (slot, m) in out.iter_mut().zip(found) {
            if let (Ok(start), Ok(end)) = (usize::try_from(m.rm_so), usize::try_from(m.rm_eo))
                && start <= end
                && end <= text.len()
            {
                *slot = Some((start, end));
            }
        }
        Some(out)
    }
}

impl Drop for ApacheRegex {
    fn drop(&mut self) {
        // SAFETY: compiled by ap_regcomp and freed exactly once, here.
        unsafe { ffi::ap_regfree(&mut *self.compiled) };
    }
}
