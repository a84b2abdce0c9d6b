//! The one FFI edge to httpd and APR. Everything outside this module (and
//! `python`) is safe Rust; the wrappers here keep the raw pointers and say why
//! each dereference is sound.

pub mod auth;
pub mod body_buf;
pub mod exit_note;
pub mod ffi;
pub mod hooks;
pub mod log;
#[cfg(not(test))]
pub mod module;
pub mod pool;
pub mod process;
pub mod regex;
pub mod request;
pub mod request_facts;
pub mod scoreboard;
pub mod server_facts;
pub mod shared_words;
pub mod stop_sweep;
pub mod table;
pub mod tunnel;

use std::ffi::{CStr, c_char};

/// Borrows a C string that Apache owns for at least as long as `'a`.
///
/// # Safety
/// `p` must be null or point to a NUL-terminated string alive for `'a`.
pub(crate) unsafe fn cstr<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

/// The bytes of a C string that Apache owns for at least as long as `'a`.
///
/// # Safety
/// `p` must be null or point to a NUL-terminated string alive for `'a`.
pub(crate) unsafe fn cbytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    Some(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// Apache hook return codes and HTTP statuses, from the server's own headers.
pub mod status {
    use super::ffi;
    pub const OK: i32 = ffi::MWRS_OK;
    pub const DECLINED: i32 = ffi::MWRS_DECLINED;
    pub const DONE: i32 = ffi::MWRS_DONE;
    pub const HTTP_OK: i32 = ffi::MWRS_HTTP_OK;
    pub const HTTP_BAD_REQUEST: i32 = ffi::MWRS_HTTP_BAD_REQUEST;
    pub const HTTP_FORBIDDEN: i32 = ffi::MWRS_HTTP_FORBIDDEN;
    pub const HTTP_NOT_FOUND: i32 = ffi::MWRS_HTTP_NOT_FOUND;
    pub const HTTP_LENGTH_REQUIRED: i32 = ffi::MWRS_HTTP_LENGTH_REQUIRED;
    pub const HTTP_REQUEST_ENTITY_TOO_LARGE: i32 = ffi::MWRS_HTTP_REQUEST_ENTITY_TOO_LARGE;
    pub const HTTP_INTERNAL_SERVER_ERROR: i32 = ffi::MWRS_HTTP_INTERNAL_SERVER_ERROR;
    pub const HTTP_BAD_GATEWAY: i32 = ffi::MWRS_HTTP_BAD_GATEWAY;
    pub const HTTP_SERVICE_UNAVAILABLE: i32 = ffi::MWRS_HTTP_SERVICE_UNAVAILABLE;
    pub const HTTP_GATEWAY_TIME_OUT: i32 = ffi::MWRS_HTTP_GATEWAY_TIME_OUT;
}

/// Runs `f`, turning a Rust panic into `fallback` so that no panic ever
/// unwinds into Apache (which would abort the child).
pub fn guard<T>(what: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            log::server(
                None,
                log::Level::Crit,
                &format!(
                    "mod_wsgi_rs: internal error in {what}: {msg} (pid {})",
                    std::process::id()
                ),
            );
            fallback
        }
    }
}

/// What the MPM of this Apache reports.
pub struct MpmInfo {
    pub threaded: bool,
    pub forked: bool,
    /// Most child processes the MPM will run at once (AP_MPMQ_MAX_DAEMONS).
    pub max_daemons: i32,
    /// Most request threads in one child (AP_MPMQ_MAX_THREADS; 1 for prefork).
    pub max_threads: i32,
}

/// Whether Apache runs as one process in the foreground (`httpd -X`,
/// which mod_wsgi-express's --debug-mode uses): the ONE_PROCESS define.
pub fn one_process() -> bool {
    // SAFETY: a NUL-terminated literal; ap_exists_config_define only reads
    // it and Apache's list of -D names.
    unsafe { ffi::ap_exists_config_define(c"ONE_PROCESS".as_ptr()) != 0 }
}

impl MpmInfo {
    /// wsgi.multithread in embedded mode, as mod_wsgi decides it: a
    /// threaded MPM running more than one thread a child (`ThreadsPerChild
    /// 1`, as `mod_wsgi-express --debug-mode` sets it, is not).
    pub fn multithread(&self) -> bool {
        self.threaded && self.max_threads != 1
    }

    /// wsgi.multiprocess in embedded mode, as mod_wsgi decides it: a
    /// forking MPM that may run more than one child (not `ServerLimit 1`,
    /// nor `httpd -X`'s one process).
    pub fn multiprocess(&self) -> bool {
        self.forked && self.max_daemons != 1
    }
}

pub fn mpm_info() -> MpmInfo {
    let query = |code: i32| {
        let mut v: i32 = 0;
        // SAFETY: ap_mpm_query writes one int through the pointer we own.
        unsafe { ffi::ap_mpm_query(code, &mut v) };
        v
    };
    MpmInfo {
        threaded: query(ffi::MWRS_AP_MPMQ_IS_THREADED) != ffi::MWRS_AP_MPMQ_NOT_SUPPORTED,
        forked: query(ffi::MWRS_AP_MPMQ_IS_FORKED) != ffi::MWRS_AP_MPMQ_NOT_SUPPORTED,
        max_daemons: query(ffi::MWRS_AP_MPMQ_MAX_DAEMONS),
        max_threads: query(ffi::MWRS_AP_MPMQ_MAX_THREADS).max(1),
    }
}
