//! Facts about a request that the WSGI environ reports as mod_wsgi.* keys,
//! as C mod_wsgi does: when the request arrived, Apache's id for it, the
//! listener it came in on and the name of the server handling it.

use super::{cstr, ffi, request::Request};
use std::ffi::c_char;

impl Request {
    /// When Apache read the request line (APR time: microseconds since the epoch).
    pub fn request_time_us(&self) -> i64 {
        // SAFETY: as_ptr() is the live request this &Request stands for.
        unsafe { (*self.as_ptr()).request_time }
    }

    /// Apache's id of this request (what `%L` logs), generated through the
    /// generate_log_id hook when no module asked for it yet.
    pub fn log_id(&mut self) -> Option<String> {
        let r = self.as_ptr();
        // SAFETY: r and r->connection are live for the request; the hook
        // stores a pool string of the request (or leaves NULL) in r->log_id,
        // which is the field Apache's own logging reads and fills the same way.
        unsafe {
            if (*r).log_id.is_null() {
                let mut id: *const c_char = std::ptr::null();
                ffi::ap_run_generate_log_id((*r).connection, r, &mut id);
                (*r).log_id = id;
            }
            cstr((*r).log_id).map(str::to_string)
        }
    }

    /// Host and port of the socket the request came in on; the host is ""
    /// when the Listen directive named no address.
    pub fn listener(&self) -> (String, u16) {
        // SAFETY: r->connection and its local_addr live as long as the
        // connection, which outlives the request; hostname is NULL or a
        // NUL-terminated string of the connection pool.
        unsafe {
            let c = (*self.as_ptr()).connection;
            let addr = if c.is_null() {
                std::ptr::null_mut()
            } else {
                (*c).local_addr
            };
            if addr.is_null() {
                return (String::new(), 0);
            }
            let host = cstr((*addr).hostname).unwrap_or("").to_string();
            (host, (*addr).port)
        }
    }

    /// ServerName of the (virtual) server handling the request.
    pub fn server_hostname(&self) -> String {
        // SAFETY: r->server is the live server_rec of the request; its
        // server_hostname is NULL or a configuration-pool string.
        unsafe {
            let s = (*self.as_ptr()).server;
            if s.is_null() {
                return String::new();
            }
            cstr((*s).server_hostname).unwrap_or("").to_string()
        }
    }

    /// The host the client asked for (Host header or absolute URI), if any.
    pub fn hostname(&self) -> Option<&str> {
        // SAFETY: r->hostname is NULL or a request-pool string.
        unsafe { cstr((*self.as_ptr()).hostname) }
    }
}

/// The running server's version, e.g. (2, 4, 62), read from its description
/// ("Apache/2.4.62 (Debian) ..."); None if it does not have that shape.
pub fn server_version() -> Option<(u32, u32, u32)> {
    // SAFETY: returns a static string of the server (valid for the process).
    let desc = unsafe { cstr(ffi::ap_get_server_description()) }?;
    let version = desc.split_whitespace().next()?.split_once('/')?.1;
    let mut parts = version.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .ok()
    });
    Some((parts.next()??, parts.next()??, parts.next()??))
}
