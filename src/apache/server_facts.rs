//! Facts about the running httpd that the Python `apache` module reports,
//! as mod_wsgi's does.

use super::{cstr, ffi};

/// What `apache.description` / `mpm_name` / `build_date` report: the
/// server's description ("Apache/2.4.62 (Debian)"), its MPM's name
/// ("event") and when it was built.
pub fn server_description() -> String {
    // SAFETY: a static string of the server, valid for the process.
    unsafe { cstr(ffi::ap_get_server_description()) }
        .unwrap_or("")
        .to_string()
}

pub fn mpm_name() -> String {
    // SAFETY: the MPM's static name string.
    unsafe { cstr(ffi::ap_show_mpm()) }
        .unwrap_or("")
        .to_string()
}

pub fn build_date() -> String {
    // SAFETY: a static string compiled into httpd.
    unsafe { cstr(ffi::ap_get_server_built()) }
        .unwrap_or("")
        .to_string()
}

/// The Apache version of the headers this module was built against, as
/// mod_wsgi's `apache.version` gives it.
pub fn server_version_built() -> (i32, i32, i32) {
    (
        ffi::MWRS_AP_SERVER_MAJORVERSION_NUMBER,
        ffi::MWRS_AP_SERVER_MINORVERSION_NUMBER,
        ffi::MWRS_AP_SERVER_PATCHLEVEL_NUMBER,
    )
}
