//! request_rec as a Rust type: `&mut Request` is what hooks get to work with.

use super::{body_buf::BodyBuf, cbytes, cstr, ffi, log, pool::Pool, table::Table};
use std::ffi::{c_char, c_int};

/// One HTTP request being served by Apache.
#[repr(transparent)]
pub struct Request(ffi::request_rec);

/// How [`Request::send_file`] has Apache send a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSend {
    /// WSGIEnableSendfile: the core output filter may use sendfile(2).
    pub sendfile: bool,
    /// The file may be memory-mapped (if EnableMMAP allows too). Not for a
    /// file another process may truncate: touching a mapped page past the
    /// new end kills this child with SIGBUS.
    pub mmap: bool,
    /// Wait until the bytes are written (a FLUSH follows the file), then
    /// check the file still holds them: a file that shrank while being
    /// sent gave the client fewer bytes than due. The core output filter
    /// fails on an early end of file (with Debian's APR; sendfile always),
    /// which cuts the connection but says nothing of why; the check names
    /// the cause, whatever the APR at hand does.
    pub verify: bool,
}

/// Why [`Request::send_file`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFileError {
    /// The client is gone, or a filter failed.
    Failed,
    /// (`verify`) The file ends at `size`, before `end`, the end of the
    /// range: the client got fewer bytes than were due.
    Shrunk { size: u64, end: u64 },
}

/// Why a write or flush of the response failed: the client is gone, or an
/// output filter failed (Apache tells no more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputFailed;

/// A request pointer that may cross into a closure run without the GIL.
/// Apache serves a request on one thread at a time; the pointer is only
/// dereferenced on the thread that owns the request.
#[derive(Clone, Copy)]
pub struct RequestPtr(*mut ffi::request_rec);
// SAFETY: see the type's doc: used only by the thread serving the request.
unsafe impl Send for RequestPtr {}

impl RequestPtr {
    /// # Safety
    /// The request must still be live and used only by the current thread.
    pub unsafe fn get<'a>(self) -> &'a mut Request {
        // SAFETY: caller guarantees liveness and exclusivity.
        unsafe { Request::from_raw(self.0) }
    }
}

/// Why the request body could not be read from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Nothing came for Apache's Timeout (this long).
    Timeout(std::time::Duration),
    /// The connection ended before the body did.
    Incomplete,
    /// Apache refused the body (400 for a broken chunked encoding, 413
    /// over LimitRequestBody, or another input filter's error) and has
    /// sent that error response itself.
    Refused(i32),
    /// Reading failed otherwise (the connection was reset, ...).
    Failed(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Timeout(t) => write!(
                f,
                "timed out after {}s waiting for the client to send the request body (Timeout)",
                t.as_secs_f64()
            ),
            BodyError::Incomplete => {
                f.write_str("the client closed the connection before the end of the request body")
            }
            BodyError::Refused(status) => write!(
                f,
                "Apache refused the request body and answered {status} itself (a malformed chunked body, one over LimitRequestBody, or an input filter's verdict)"
            ),
            BodyError::Failed(why) => f.write_str(why),
        }
    }
}

/// APR's description of a status.
pub(super) fn apr_error(rv: ffi::apr_status_t) -> String {
    let mut buf = [0 as c_char; 256];
    // SAFETY: apr_strerror writes a NUL-terminated string of at most
    // buf.len() bytes into buf and returns buf.
    let text = unsafe { cstr(ffi::apr_strerror(rv, buf.as_mut_ptr(), buf.len() as _)) };
    text.map_or_else(|| format!("APR status {rv}"), str::to_string)
}

impl Request {
    /// # Safety
    /// `r` must be the live request Apache passed to a hook, used only on
    /// this thread for the duration of the hook.
    pub unsafe fn from_raw<'a>(r: *mut ffi::request_rec) -> &'a mut Request {
        // SAFETY: repr(transparent) over request_rec; liveness from caller.
        unsafe { &mut *(r as *mut Request) }
    }

    pub fn as_ptr(&self) -> *mut ffi::request_rec {
        &self.0 as *const _ as *mut _
    }

    pub fn as_send(&self) -> RequestPtr {
        RequestPtr(self.as_ptr())
    }

    pub fn pool(&self) -> Pool {
        // SAFETY: the request pool lives as long as the request.
        unsafe { Pool::from_raw(self.0.pool) }
    }

    pub fn server(&self) -> *mut ffi::server_rec {
        self.0.server
    }

    fn text(&self, p: *const c_char) -> Option<&str> {
        // SAFETY: request strings are pool-allocated for the request's life.
        unsafe { cstr(p) }
    }

    pub fn uri(&self) -> &str {
        self.text(self.0.uri).unwrap_or("")
    }
    /// The bytes of the (decoded) URL path, whatever they are: a client
    /// may send any byte but NUL, UTF-8 or not (`/caf%E9`).
    pub fn uri_bytes(&self) -> &[u8] {
        // SAFETY: request strings are pool-allocated for the request's life.
        unsafe { cbytes(self.0.uri) }.unwrap_or(b"")
    }
    pub fn path_info_bytes(&self) -> &[u8] {
        // SAFETY: as above.
        unsafe { cbytes(self.0.path_info) }.unwrap_or(b"")
    }
    pub fn filename_bytes(&self) -> Option<&[u8]> {
        // SAFETY: as above.
        unsafe { cbytes(self.0.filename) }
    }
    pub fn set_filename_bytes(&mut self, value: &[u8]) {
        self.0.filename = self.pool().strdup_bytes(value) as *mut c_char;
    }
    pub fn filename(&self) -> Option<&str> {
        self.text(self.0.filename)
    }
    pub fn handler(&self) -> Option<&str> {
        self.text(self.0.handler)
    }
    pub fn method(&self) -> &str {
        self.text(self.0.method).unwrap_or("")
    }
    pub fn path_info(&self) -> &str {
        self.text(self.0.path_info).unwrap_or("")
    }
    pub fn is_head(&self) -> bool {
        self.0.header_only != 0
    }
    /// Whether the output filter chain starts with a filter working below
    /// the protocol level (a content or resource filter, such as
    /// mod_deflate's DEFLATE), which may need the whole body to set the
    /// headers even for HEAD: what mod_wsgi's WSGIMapHEADToGET Auto looks at.
    pub fn has_content_output_filter(&self) -> bool {
        // SAFETY: output_filters is NULL or the live top of the request's
        // output chain; its frec is its registered filter record.
        unsafe {
            self.0
                .output_filters
                .as_ref()
                .and_then(|f| f.frec.as_ref())
                .is_some_and(|rec| rec.ftype < ffi::ap_filter_type_AP_FTYPE_PROTOCOL)
        }
    }
    pub fn is_main(&self) -> bool {
        self.0.main.is_null()
    }

    /// True when the directory walk found a regular file at `filename`.
    pub fn is_regular_file(&self) -> bool {
        self.0.finfo.filetype as i32 == ffi::MWRS_APR_REG
    }

    /// True when the directory walk found a directory at `filename`.
    pub fn is_directory(&self) -> bool {
        self.0.finfo.filetype as i32 == ffi::MWRS_APR_DIR
    }

    /// Whether `Options ExecCGI` is on where the request landed.
    pub fn allows_exec_cgi(&self) -> bool {
        // SAFETY: a live request; ap_allow_options only reads its
        // per-directory core configuration.
        let options = unsafe { ffi::ap_allow_options(self.as_ptr()) };
        options & ffi::MWRS_OPT_EXECCGI != 0
    }

    pub fn set_filename(&mut self, value: &str) {
        self.0.filename = self.pool().strdup(value) as *mut c_char;
    }
    pub fn set_handler(&mut self, value: &str) {
        self.0.handler = self.pool().strdup(value);
    }

    pub fn notes(&self) -> Table {
        // SAFETY: the request's tables live as long as the request.
        unsafe { Table::from_raw(self.0.notes) }
    }
    pub fn headers_in(&self) -> Table {
        // SAFETY: as for notes.
        unsafe { Table::from_raw(self.0.headers_in) }
    }
    pub fn headers_out(&self) -> Table {
        // SAFETY: as for notes.
        unsafe { Table::from_raw(self.0.headers_out) }
    }
    pub fn err_headers_out(&self) -> Table {
        // SAFETY: as for notes.
        unsafe { Table::from_raw(self.0.err_headers_out) }
    }
    pub fn subprocess_env(&self) -> Table {
        // SAFETY: as for notes.
        unsafe { Table::from_raw(self.0.subprocess_env) }
    }

    /// The status line the application chose, e.g. "200 OK".
    /// The status and its line, as the bytes Apache sends (a reason phrase
    /// of a WSGI application is latin-1).
    pub fn set_status(&mut self, code: i32, line: &[u8]) {
        self.0.status = code;
        self.0.status_line = self.pool().strdup_bytes(line);
    }

    pub fn set_content_type(&mut self, value: &[u8]) {
        let v = self.pool().strdup_bytes(value);
        // SAFETY: the value is a pool string that outlives the request.
        unsafe { ffi::ap_set_content_type(self.as_ptr(), v) };
    }

    /// Writes body bytes through the output filters. Err means the client is
    /// gone (or a filter failed).
    pub fn write(&mut self, data: &[u8]) -> Result<(), OutputFailed> {
        for chunk in data.chunks(c_int::MAX as usize) {
            // SAFETY: the buffer is valid for chunk.len() bytes during the call.
            let n = unsafe {
                ffi::ap_rwrite(chunk.as_ptr().cast(), chunk.len() as c_int, self.as_ptr())
            };
            if n < 0 {
                return Err(OutputFailed);
            }
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), OutputFailed> {
        // SAFETY: live request.
        if unsafe { ffi::ap_rflush(self.as_ptr()) } < 0 {
            Err(OutputFailed)
        } else {
            Ok(())
        }
    }

    /// Sends `len` bytes of `file` from `offset` as body bytes: a file
    /// bucket through the output filters, so that the core output filter
    /// sends it as it does a static file: with sendfile when `how.sendfile`
    /// (WSGIEnableSendfile), else from a memory map when `how.mmap` and
    /// EnableMMAP allow, else in blocks read into memory. The request's pool
    /// takes `file` and closes it when the request ends, which is after
    /// Apache has sent the bytes (without `how.verify`, possibly after the
    /// handler returned: the event MPM's write completion). The bytes must
    /// exist (`offset + len` <= the file's size) when the call is made.
    pub fn send_file(
        &mut self,
        file: std::fs::File,
        offset: u64,
        len: u64,
        how: FileSend,
    ) -> Result<(), SendFileError> {
        use std::os::fd::AsRawFd;
        /// Largest bucket inserted at once (apr_brigade_insert_file splits
        /// at 1 GiB itself; pieces let mmap be turned off on each bucket).
        const PIECE: u64 = 1 << 30;
        /// Block size of the reads when neither sendfile nor a map sends
        /// the file (APR's default is 8000 bytes).
        const READ_BLOCK: usize = 128 * 1024;
        if len == 0 {
            return Ok(());
        }
        let pool = self.pool();
        let mmap = how.mmap && self.mmap_enabled();
        let mut fd = file.as_raw_fd();
        // From here the pool owns the descriptor: closed at its cleanup.
        pool.adopt(file);
        let mut flags = ffi::MWRS_APR_FOPEN_READ;
        if how.sendfile {
            flags |= ffi::MWRS_APR_FOPEN_SENDFILE_ENABLED;
        }
        let mut apr_file: *mut ffi::apr_file_t = std::ptr::null_mut();
        // SAFETY: `fd` stays open until the pool's cleanup (adopted above);
        // the apr_file_t is allocated from that same pool and registers no
        // cleanup of its own (apr_os_file_put sets APR_FOPEN_NOCLEANUP).
        let rv = unsafe { ffi::apr_os_file_put(&mut apr_file, &mut fd, flags as _, pool.as_ptr()) };
        if rv != 0 || apr_file.is_null() {
            return Err(SendFileError::Failed);
        }
        // SAFETY: live request and connection; the brigade and its buckets
        // come from the request's pool and the connection's bucket
        // allocator, and ap_pass_brigade hands them to the output filters,
        // which consume (or set aside) them before the request ends.
        let rv = unsafe {
            let alloc = (*self.0.connection).bucket_alloc;
            let bb = ffi::apr_brigade_create(pool.as_ptr(), alloc);
            let end = offset + len;
            let mut start = offset;
            while start < end {
                let piece = (end - start).min(PIECE);
                let b = ffi::apr_brigade_insert_file(
                    bb,
                    apr_file,
                    start as ffi::apr_off_t,
                    piece as ffi::apr_off_t,
                    pool.as_ptr(),
                );
                if !mmap && !b.is_null() {
                    ffi::apr_bucket_file_enable_mmap(b, 0);
                    ffi::apr_bucket_file_set_buf_size(b, READ_BLOCK);
                }
                start += piece;
            }
            if how.verify {
                brigade_append(bb, ffi::apr_bucket_flush_create(alloc));
            }
            ffi::ap_pass_brigade(self.0.output_filters, bb)
        };
        if how.verify {
            // Before the write's own verdict: sendfile fails outright at an
            // early end of file, which is the file's doing, not the client's.
            // (`fd` is still open: the pool closes it when the request ends.)
            let size = nix::sys::stat::fstat(fd).map_or(0, |st| st.st_size.max(0) as u64);
            let end = offset + len;
            if size < end {
                return Err(SendFileError::Shrunk { size, end });
            }
        }
        if rv != 0 {
            return Err(SendFileError::Failed);
        }
        Ok(())
    }

    /// Closes the client's connection without a response, as Apache does
    /// to the requests of a child it stops at once: nothing is written
    /// (core's output filter drops what reaches an aborted connection) and
    /// the connection is not kept. The handler then returns DONE.
    pub fn drop_connection(&mut self) {
        // SAFETY: the live request's connection, on the thread serving it.
        unsafe {
            let c = self.0.connection;
            (*c).aborted = 1;
            (*c).keepalive = ffi::MWRS_AP_CONN_CLOSE as _;
        }
    }

    /// Ends a response that cannot be finished after its head went to
    /// Apache, so that the client sees it was cut short: what is buffered
    /// goes out (head included), then the error bucket mod_proxy sends
    /// when its backend breaks mid-response (ap_proxy_backend_broke): the
    /// chunk filter then writes no last chunk and Apache closes the
    /// connection instead of keeping it alive. The flush comes first so
    /// that the content-length filter has passed the body on before it
    /// sees the end: it cannot make up a Content-Length for the cut body.
    /// Caches are told not to keep the response. The end of the response
    /// (EOS) is sent here; the handler must send nothing more.
    pub fn abort_response(&mut self) {
        self.0.no_cache = 1;
        // SAFETY: `main` is NULL or the live main request of this one.
        if let Some(main) = unsafe { self.0.main.as_mut() } {
            main.no_cache = 1;
        }
        // SAFETY: a live request on the thread serving it: its connection,
        // pools and bucket allocator are live. The brigade comes from the
        // request's pool, the buckets from the connection's allocator (the
        // error bucket's status text, none here, from the connection's
        // pool, as ap_proxy_backend_broke does); ap_pass_brigade hands them
        // to the output filters, which consume or set them aside.
        unsafe {
            let c = self.0.connection;
            let alloc = (*c).bucket_alloc;
            let bb = ffi::apr_brigade_create(self.0.pool, alloc);
            brigade_append(bb, ffi::apr_bucket_flush_create(alloc));
            brigade_append(
                bb,
                ffi::ap_bucket_error_create(
                    ffi::MWRS_HTTP_BAD_GATEWAY,
                    std::ptr::null(),
                    (*c).pool,
                    alloc,
                ),
            );
            brigade_append(bb, ffi::apr_bucket_eos_create(alloc));
            // A failure means the client is gone: nothing more to do.
            let _ = ffi::ap_pass_brigade(self.0.output_filters, bb);
        }
    }

    /// Whether core's EnableMMAP allows memory-mapping files here (it is
    /// On unless set Off).
    fn mmap_enabled(&self) -> bool {
        // SAFETY: per_dir_config is the live request's configuration
        // vector; core's entry in it is its core_dir_config.
        let conf = unsafe {
            ffi::ap_get_core_module_config(self.0.per_dir_config) as *const ffi::core_dir_config
        };
        // SAFETY: non-null pointers point at the live core_dir_config.
        conf.is_null() || unsafe { (*conf).enable_mmap() } != ffi::MWRS_ENABLE_MMAP_OFF as u32
    }

    /// Prepares to read the request body. Returns Apache's status on error
    /// (e.g. 411 for a chunked body when not allowed, 413 over LimitRequestBody).
    pub fn setup_body(&mut self, allow_chunked: bool) -> Result<(), i32> {
        let policy = if allow_chunked {
            ffi::MWRS_REQUEST_CHUNKED_DECHUNK
        } else {
            ffi::MWRS_REQUEST_CHUNKED_ERROR
        };
        // SAFETY: live request; sets up body reading state.
        let rc = unsafe { ffi::ap_setup_client_block(self.as_ptr(), policy) };
        if rc != ffi::MWRS_OK {
            return Err(rc);
        }
        // SAFETY: live request; may send "100 Continue".
        unsafe { ffi::ap_should_client_block(self.as_ptr()) };
        Ok(())
    }

    /// Reads body bytes into the room left in `buf`: how many (Ok(0) at
    /// the end of the body).
    ///
    /// ap_get_client_block's work, keeping the status it drops: what
    /// went wrong decides what the application is told, and whether a
    /// response may still follow (not when Apache has sent its own).
    pub fn read_body(&mut self, buf: &mut BodyBuf<'_>) -> Result<usize, BodyError> {
        // No body, or its end already seen (as ap_get_client_block).
        if buf.is_full()
            || self.0.remaining < 0
            || (self.0.read_chunked == 0 && self.0.remaining == 0)
        {
            return Ok(0);
        }
        let pool = self.pool();
        // SAFETY: live request and connection; the brigade comes from the
        // request's pool and the connection's bucket allocator, is filled
        // by the input filters, copied out of by apr_brigade_flatten (at
        // most `len` bytes, the room left in `buf`, written at its unfilled
        // part and recorded as filled only when flattened) and destroyed
        // before returning.
        let (rv, len) = unsafe {
            let bb = ffi::apr_brigade_create(pool.as_ptr(), (*self.0.connection).bucket_alloc);
            if bb.is_null() {
                return Err(BodyError::Failed("cannot allocate a brigade".into()));
            }
            let mut rv = ffi::ap_get_brigade(
                self.0.input_filters,
                bb,
                ffi::MWRS_AP_MODE_READBYTES as _,
                ffi::MWRS_APR_BLOCK_READ as _,
                buf.remaining() as ffi::apr_off_t,
            );
            let mut len = buf.remaining() as ffi::apr_size_t;
            if rv == 0 {
                rv = ffi::apr_brigade_flatten(bb, buf.unfilled_ptr().cast(), &mut len);
                if rv == 0 {
                    buf.assume_filled(len as usize);
                }
            }
            ffi::apr_brigade_destroy(bb);
            (rv, len as usize)
        };
        if rv == 0 {
            self.0.read_length += len as ffi::apr_off_t;
            return Ok(len);
        }
        if rv == ffi::MWRS_AP_FILTER_ERROR {
            // The filter has sent Apache's error response (ap_die set the
            // status) and closes the connection after it.
            return Err(BodyError::Refused(self.0.status));
        }
        // What is left of the body cannot be told from the next request.
        // SAFETY: the live request's connection.
        unsafe { (*self.0.connection).keepalive = ffi::MWRS_AP_CONN_CLOSE as _ };
        Err(if rv == ffi::MWRS_APR_TIMEUP || rv == libc::ETIMEDOUT {
            BodyError::Timeout(self.server_timeout())
        } else if rv == ffi::MWRS_APR_INCOMPLETE || rv == ffi::MWRS_APR_EOF {
            BodyError::Incomplete
        } else {
            BodyError::Failed(apr_error(rv))
        })
    }

    /// Whether Apache has ended this request's response already: it sent
    /// an error response of its own (a request body it refused), so
    /// nothing the handler produces may follow.
    pub fn response_ended(&self) -> bool {
        self.0.eos_sent != 0
    }

    pub fn log(&self, level: log::Level, text: &str) {
        // SAFETY: a Request wraps a live request_rec.
        unsafe { log::request(self.as_ptr(), level, text) };
    }
}

/// APR_BRIGADE_INSERT_TAIL (a macro in C): links `e` in as the last bucket
/// of `bb`. The brigade's list head is the ring's sentinel bucket link.
///
/// # Safety
/// `bb` must be a live brigade and `e` a live bucket in no brigade.
pub(super) unsafe fn brigade_append(bb: *mut ffi::apr_bucket_brigade, e: *mut ffi::apr_bucket) {
    // SAFETY: the caller's guarantees; the sentinel is only compared and
    // stored, never read through: an empty ring's last element is it, and
    // its links are the list head's, reached directly.
    unsafe {
        let head = &raw mut (*bb).list;
        let sentinel = brigade_sentinel(bb);
        let last = (*head).prev;
        (*e).link.next = sentinel;
        (*e).link.prev = last;
        if last == sentinel {
            (*head).next = e;
        } else {
            (*last).link.next = e;
        }
        (*head).prev = e;
    }
}

/// APR_BRIGADE_SENTINEL (a macro in C): the address the bucket ring of
/// `bb` starts and ends at. Computed, never dereferenced.
pub(super) fn brigade_sentinel(bb: *mut ffi::apr_bucket_brigade) -> *mut ffi::apr_bucket {
    bb.wrapping_byte_add(std::mem::offset_of!(ffi::apr_bucket_brigade, list))
        .wrapping_byte_sub(std::mem::offset_of!(ffi::apr_bucket, link))
        .cast::<ffi::apr_bucket>()
}

impl RequestPtr {
    pub fn as_raw(self) -> *mut ffi::request_rec {
        self.0
    }
}

/// A handle to the request being served that Python objects (wsgi.input,
/// wsgi.errors, start_response) may keep. It goes dead when the handler
/// returns, so an object the application keeps cannot reach a freed request;
/// the mutex keeps a Python thread and the request thread from using the
/// request_rec at the same time.
#[derive(Clone)]
pub struct SharedRequest(std::sync::Arc<parking_lot::Mutex<Option<RequestPtr>>>);

impl SharedRequest {
    /// Runs `f` on the request, or returns None when the request is over.
    pub fn with<R>(&self, f: impl FnOnce(&mut Request) -> R) -> Option<R> {
        let guard = self.0.lock();
        // SAFETY: the pointer is present only while the handler that created
        // the scope is running (RequestScope clears it on drop), and the lock
        // gives exclusive use.
        guard.map(|p| f(unsafe { p.get() }))
    }

    /// The raw pointer for logging, while the request lives.
    pub fn log(&self, level: log::Level, text: &str) {
        match *self.0.lock() {
            // SAFETY: the pointer is present only while the request lives
            // (see `with`), and the lock is held for the call.
            Some(p) => unsafe { log::request(p.as_raw(), level, text) },
            None => log::server(None, level, text),
        }
    }
}

/// Owns the lifetime of every SharedRequest made from it.
pub struct RequestScope(SharedRequest);

impl RequestScope {
    pub fn new(r: &mut Request) -> RequestScope {
        RequestScope(SharedRequest(std::sync::Arc::new(parking_lot::Mutex::new(
            Some(r.as_send()),
        ))))
    }
    pub fn handle(&self) -> SharedRequest {
        self.0.clone()
    }
}

impl Drop for RequestScope {
    fn drop(&mut self) {
        *self.0.0.lock() = None;
    }
}

impl Request {
    /// Modification time of the file the directory walk found (APR usec).
    pub fn mtime(&self) -> i64 {
        self.0.finfo.mtime
    }

    /// Owner uid and gid of the file the directory walk found.
    pub fn file_owner(&self) -> (u32, u32) {
        (self.0.finfo.user, self.0.finfo.group)
    }
}

impl Request {
    /// The server's Timeout directive.
    pub fn server_timeout(&self) -> std::time::Duration {
        // SAFETY: r->server is the live server of this request.
        let usec = unsafe { (*self.0.server).timeout };
        std::time::Duration::from_micros(usec.max(0) as u64)
    }

    /// A variable of the request's environment (SetEnv, mod_rewrite, ...).
    pub fn env_var(&self, name: &str) -> Option<String> {
        self.subprocess_env().get(name).map(str::to_string)
    }
}

impl Request {
    /// The port of the request as Apache reports it (`ap_get_server_port`:
    /// what the SERVER_PORT CGI variable holds; UseCanonicalName decides).
    pub fn server_port(&self) -> u16 {
        // SAFETY: as_ptr() is the live request this &Request stands for;
        // ap_get_server_port only reads it and its server and connection.
        unsafe { ffi::ap_get_server_port(self.as_ptr()) }
    }
}

impl Request {
    /// A "local redirect", as mod_cgi makes one for a script's status 200
    /// with `Location: /path`: what is left of the request body is read
    /// and dropped, the request becomes a GET without a body, and Apache
    /// serves `location` (a local path, maybe with a query string) as an
    /// internal request whose response is the one the client gets
    /// (LimitInternalRecursion stops a loop with a 500). Nothing of this
    /// request's own response may have been sent.
    pub fn internal_redirect(&mut self, location: &str) {
        // SAFETY: live request; reads the rest of its body through its
        // input filters, which the redirected request shares, so nothing
        // of it is left on the connection. A body that cannot be read
        // (client gone) makes Apache close the connection afterwards.
        let _ = unsafe { ffi::ap_discard_request_body(self.as_ptr()) };
        self.0.method = self.pool().strdup("GET");
        self.0.method_number = ffi::MWRS_M_GET;
        // The body was consumed: the redirected request has none.
        let headers = self.headers_in();
        headers.unset("Content-Length");
        headers.unset("Transfer-Encoding");
        let uri = self.pool().strdup(location);
        // SAFETY: live request, on the thread serving it; `uri` is a pool
        // string that outlives the call. Apache runs the new request to
        // its end (including ap_die for an error) before returning.
        unsafe { ffi::ap_internal_redirect_handler(uri, self.as_ptr()) };
    }
}
