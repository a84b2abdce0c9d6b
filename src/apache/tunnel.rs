//! A request's client connection turned into a byte tunnel after a 101
//! (Switching Protocols) answer, for a WebSocket the daemon serves: the
//! set-up mod_proxy_http makes before its tunnel (interim response,
//! connection-level filters only, no request timeouts, no keep-alive),
//! and non-blocking reads and flushed writes through the connection's
//! filters, so that mod_ssl still encrypts what goes through.

use super::ffi;
use super::request::{Request, brigade_append, brigade_sentinel};
use std::io;
use std::marker::PhantomData;
use std::os::fd::{BorrowedFd, RawFd};

/// The client side of a tunnel; lives as long as the request.
pub struct ClientTunnel<'r> {
    c: *mut ffi::conn_rec,
    /// Reused for every read and write (cleaned after each).
    bb: *mut ffi::apr_bucket_brigade,
    fd: RawFd,
    _request: PhantomData<&'r Request>,
}

impl Request {
    /// Sends the response head set on this request (status 101 and its
    /// headers) as an interim response, and hands back the client
    /// connection as a tunnel. None when the client speaks HTTP/1.0 (or
    /// the connection has no socket, as under HTTP/2), which has no
    /// upgrade; nothing was sent then.
    pub fn switch_protocols(&mut self) -> Option<ClientTunnel<'_>> {
        let r = self.as_ptr();
        // SAFETY: a live request on the thread serving it, its connection
        // live with it. The interim response goes through the
        // connection's output filters (ap_send_interim_response writes
        // r->status_line and headers_out there, then flushes); the filters
        // removed by handle are the connection's own; from then on the
        // request's filter chains are the connection's, so that Apache's
        // end of the request adds no HTTP framing to the tunnel (what
        // mod_proxy's ap_proxy_tunnel_create does). The brigade comes from
        // the request's pool and the connection's bucket allocator.
        unsafe {
            let c = (*r).connection;
            if (*r).proto_num < ffi::MWRS_HTTP_VERSION_1_1 || c.is_null() {
                return None;
            }
            let socket = ffi::ap_get_conn_socket(c);
            if socket.is_null() {
                return None;
            }
            let mut fd: ffi::apr_os_sock_t = -1;
            if ffi::apr_os_sock_get(&mut fd, socket) != 0 || fd < 0 {
                return None;
            }
            ffi::ap_send_interim_response(r, 1);
            ffi::ap_remove_input_filter_byhandle((*c).input_filters, c"reqtimeout".as_ptr());
            ffi::ap_remove_output_filter_byhandle(
                (*c).output_filters,
                c"SSL/TLS Coalescing Filter".as_ptr(),
            );
            (*r).input_filters = (*c).input_filters;
            (*r).proto_input_filters = (*c).input_filters;
            (*r).output_filters = (*c).output_filters;
            (*r).proto_output_filters = (*c).output_filters;
            (*c).keepalive = ffi::MWRS_AP_CONN_CLOSE as _;
            let bb = ffi::apr_brigade_create((*r).pool, (*c).bucket_alloc);
            if bb.is_null() {
                return None;
            }
            Some(ClientTunnel {
                c,
                bb,
                fd,
                _request: PhantomData,
            })
        }
    }
}

impl ClientTunnel<'_> {
    /// The client socket's descriptor, to poll for readability (bytes
    /// mod_ssl holds decrypted do not show there: read until WouldBlock).
    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the client socket stays open for the request's life,
        // which this borrow cannot outlive ('r, and &self).
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }

    /// Reads what the client sent, without waiting: Ok(0) at its end of
    /// the stream, WouldBlock when nothing is there yet.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // SAFETY: the connection and brigade are live for the request's
        // life ('r); the input filters fill the brigade, apr_brigade_flatten
        // copies at most buf.len() bytes into `buf`, and the brigade is
        // emptied before returning.
        let (rv, len) = unsafe {
            let mut rv = ffi::ap_get_brigade(
                (*self.c).input_filters,
                self.bb,
                ffi::MWRS_AP_MODE_READBYTES as _,
                ffi::MWRS_APR_NONBLOCK_READ as _,
                buf.len() as ffi::apr_off_t,
            );
            let mut len = buf.len() as ffi::apr_size_t;
            let mut ended = false;
            if rv == 0 {
                rv = ffi::apr_brigade_flatten(self.bb, buf.as_mut_ptr().cast(), &mut len);
                ended = has_eos(self.bb);
            }
            ffi::apr_brigade_cleanup(self.bb.cast());
            (
                rv,
                if ended || len > 0 {
                    Some(len as usize)
                } else {
                    None
                },
            )
        };
        match rv {
            // A non-blocking read with nothing there is an empty brigade
            // (core's input filter turns EAGAIN into that); the end of the
            // client's stream is an EOS bucket.
            0 => len.ok_or_else(|| io::ErrorKind::WouldBlock.into()),
            rv if rv == libc::EAGAIN => Err(io::ErrorKind::WouldBlock.into()),
            rv if rv == ffi::MWRS_APR_EOF => Ok(0),
            rv => Err(io::Error::other(super::request::apr_error(rv))),
        }
    }

    /// Sends `data` to the client and flushes it (waiting up to Apache's
    /// Timeout for a slow client).
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        // SAFETY: as in read; the transient bucket points into `data`,
        // which outlives the call, and a flush bucket after it makes the
        // filters send (or copy) the bytes before ap_pass_brigade returns.
        let rv = unsafe {
            let alloc = (*self.c).bucket_alloc;
            brigade_append(
                self.bb,
                ffi::apr_bucket_transient_create(data.as_ptr().cast(), data.len(), alloc),
            );
            brigade_append(self.bb, ffi::apr_bucket_flush_create(alloc));
            let rv = ffi::ap_pass_brigade((*self.c).output_filters, self.bb);
            ffi::apr_brigade_cleanup(self.bb.cast());
            rv
        };
        if rv == 0 {
            Ok(())
        } else {
            Err(io::Error::other(super::request::apr_error(rv)))
        }
    }
}

/// APR_BUCKET_IS_EOS over the brigade (macros in C): whether an EOS bucket
/// is in it.
///
/// # Safety
/// `bb` must be a live brigade.
unsafe fn has_eos(bb: *mut ffi::apr_bucket_brigade) -> bool {
    // SAFETY: the caller's guarantee; the ring is walked from the list
    // head's first link to the sentinel, each bucket live while it is in
    // the brigade.
    unsafe {
        let sentinel = brigade_sentinel(bb);
        let mut e = (*bb).list.next;
        while e != sentinel {
            if std::ptr::eq((*e).type_, &raw const ffi::apr_bucket_type_eos) {
                return true;
            }
            e = (*e).link.next;
        }
    }
    false
}
