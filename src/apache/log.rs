//! Error-log lines through Apache's own logger, tagged with our module so
//! `LogLevel wsgi:debug` selects them.

use super::ffi;
use std::ffi::CString;
use std::sync::atomic::{AtomicI32, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Emerg,
    Alert,
    Crit,
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

impl Level {
    fn raw(self) -> i32 {
        match self {
            Level::Emerg => ffi::MWRS_APLOG_EMERG,
            Level::Alert => ffi::MWRS_APLOG_ALERT,
            Level::Crit => ffi::MWRS_APLOG_CRIT,
            Level::Error => ffi::MWRS_APLOG_ERR,
            Level::Warning => ffi::MWRS_APLOG_WARNING,
            Level::Notice => ffi::MWRS_APLOG_NOTICE,
            Level::Info => ffi::MWRS_APLOG_INFO,
            Level::Debug => ffi::MWRS_APLOG_DEBUG,
        }
    }
}

/// Our module's index in Apache's module table (set once the module record
/// is registered), so our lines obey per-module LogLevel.
static MODULE_INDEX: AtomicI32 = AtomicI32::new(-1);

pub fn set_module_index(index: i32) {
    MODULE_INDEX.store(index, Ordering::Relaxed);
}

/// The main server of the current generation: lines logged without a
/// server go to its error log at its LogLevel (Apache drops anything below
/// warning when no server is given).
static MAIN_SERVER: std::sync::atomic::AtomicPtr<ffi::server_rec> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

pub fn set_main_server(s: *mut ffi::server_rec) {
    MAIN_SERVER.store(s, Ordering::Relaxed);
}

fn message(text: &str) -> CString {
    CString::new(text.replace('\0', "\\0")).expect("NULs were replaced")
}

const FILE: &std::ffi::CStr = c"mod_wsgi_rs";

/// Logs against a server (its virtual host's error log), or to the main log /
/// stderr during startup when `server` is None.
pub fn server(server: Option<*const ffi::server_rec>, level: Level, text: &str) {
    let msg = message(text);
    // SAFETY: the format is a literal "%s" taking exactly one C string, which
    // lives until the call returns; a null server is allowed by ap_log_error.
    unsafe {
        ffi::ap_log_error_(
            FILE.as_ptr(),
            0,
            MODULE_INDEX.load(Ordering::Relaxed),
            level.raw(),
            0,
            server.unwrap_or_else(|| MAIN_SERVER.load(Ordering::Relaxed)),
            c"%s".as_ptr(),
            msg.as_ptr(),
        )
    };
}

/// Startup messages that must reach the terminal of `apache2 -t` without the
/// usual timestamp prefix.
pub fn startup(level: Level, text: &str) {
    let msg = message(text);
    // SAFETY: as in `server`.
    unsafe {
        ffi::ap_log_error_(
            FILE.as_ptr(),
            0,
            MODULE_INDEX.load(Ordering::Relaxed),
            level.raw() | ffi::MWRS_APLOG_STARTUP,
            0,
            std::ptr::null(),
            c"%s".as_ptr(),
            msg.as_ptr(),
        )
    };
}

/// Logs against a request: the line carries the request's log id and goes
/// to the error log of its virtual host.
/// # Safety
/// `r` must be a live request_rec from Apache.
pub unsafe fn request(r: *const ffi::request_rec, level: Level, text: &str) {
    let msg = message(text);
    // SAFETY: `r` is the live request passed to a hook; format as above.
    unsafe {
        ffi::ap_log_rerror_(
            FILE.as_ptr(),
            0,
            MODULE_INDEX.load(Ordering::Relaxed),
            level.raw(),
            0,
            r,
            c"%s".as_ptr(),
            msg.as_ptr(),
        )
    };
}
