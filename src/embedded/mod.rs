//! Embedded mode: the application runs inside this Apache child, in the
//! interpreter started by `child_init`.

use crate::apache::log::Level;
use crate::apache::request::{FileSend, Request, RequestScope, SharedRequest};
use crate::apache::status;
use crate::wsgi::serve::{self, AppTarget};
use crate::wsgi::start_response::latin1_bytes;
use crate::wsgi::{Backend, BackendError, EnvironContext, RequestError, TunnelStart};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

/// Per-request choices made from the configuration.
pub struct RequestOptions {
    pub script: String,
    pub callable_object: String,
    /// Already expanded (%{RESOURCE} etc.) by the dispatcher.
    pub application_group: String,
    pub process_group: String,
    pub pass_authorization: bool,
    pub script_reloading: bool,
    pub chunked_request: bool,
    /// wsgi.multithread and wsgi.multiprocess, from the MPM (`MpmInfo`).
    pub multithread: bool,
    pub multiprocess: bool,
    /// WSGIEnableSendfile: a wsgi.file_wrapper of a regular file may go
    /// out with sendfile.
    pub enable_sendfile: bool,
    /// WSGITrustedProxies / WSGITrustedProxyHeaders of the location.
    pub proxy: crate::wsgi::proxy::ProxyTrust,
    /// WSGIErrorOverride (daemon mode): an error status from the
    /// application goes to Apache, whose ErrorDocument makes the body.
    pub error_override: bool,
    /// WSGIPassApacheRequest: embedded mode lends the request_rec to the
    /// application (`apache.request_rec`); daemon mode cannot.
    pub pass_apache_request: bool,
    /// WSGIMapHEADToGET: when a HEAD reaches the application as a GET.
    pub map_head_to_get: crate::config::MapHeadToGet,
    /// WSGIIgnoreActivity (daemon mode): the request does not keep the
    /// daemon process from counting as idle for inactivity-timeout.
    pub ignore_activity: bool,
}

/// The WSGI backend of embedded mode: Apache's own request.
struct ApacheBackend {
    request: SharedRequest,
    /// WSGIEnableSendfile of the request.
    sendfile: bool,
    /// A status 200 with a local `Location` (as CGI has it): the URL Apache
    /// serves once the application is done, instead of this response,
    /// whose headers and body are dropped.
    local_redirect: parking_lot::Mutex<Option<String>>,
    /// The 101 the application answered (`switch_protocols` after its
    /// return), sent once it has returned; then this thread relays.
    tunnel: parking_lot::Mutex<Option<PendingTunnel>>,
}

/// An upgrade the application accepted, for the request's thread to carry
/// out: the head, and this side of the socket pair whose other end the
/// application talks on.
struct PendingTunnel {
    protocol: String,
    headers: Vec<(String, String)>,
    relayed: UnixStream,
}

impl ApacheBackend {
    fn redirecting(&self) -> bool {
        self.local_redirect.lock().is_some()
    }

    /// Whether what the application answers goes nowhere: Apache has
    /// answered the request itself (a request body it refused, 400 or
    /// 413, is answered while the application reads it).
    fn answered_by_apache(&self) -> bool {
        self.request.with(|r| r.response_ended()).unwrap_or(false)
    }
}

impl Backend for ApacheBackend {
    fn read_body(&self, buf: &mut crate::wsgi::BodyBuf<'_>) -> Result<usize, BackendError> {
        match self.request.with(|r| r.read_body(buf)) {
            None => Err(BackendError::Finished),
            Some(Err(e)) => Err(BackendError::ClientGone(e.to_string())),
            Some(Ok(n)) => Ok(n),
        }
    }

    fn send_head(
        &self,
        status: u16,
        status_line: &str,
        headers: &[(String, String)],
    ) -> Result<(), BackendError> {
        if self.answered_by_apache() {
            return Ok(());
        }
        let local = crate::wsgi::response::local_redirect(
            status,
            headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
        );
        if let Some(location) = local {
            // Headers are latin-1 text already (start_response checked).
            *self.local_redirect.lock() = Some(String::from_utf8_lossy(location).into_owned());
            return self.request.with(|_| ()).ok_or(BackendError::Finished);
        }
        self.request
            .with(|r| {
                r.set_status(status as i32, &latin1_bytes(status_line));
                let out = r.headers_out();
                for (k, v) in headers {
                    if k.eq_ignore_ascii_case("content-type") {
                        r.set_content_type(&latin1_bytes(v));
                    } else {
                        out.add_bytes(r.pool(), &latin1_bytes(k), &latin1_bytes(v));
                    }
                }
            })
            .ok_or(BackendError::Finished)
    }

    fn write_body(&self, data: &[u8]) -> Result<(), BackendError> {
        if self.redirecting() {
            return Ok(());
        }
        // Each block the application yields goes out at once (as with
        // mod_wsgi): a streamed response reaches the client as it is made.
        // Nothing goes after a response Apache has ended itself (checked
        // under the same lock as the write).
        match self.request.with(|r| {
            if r.response_ended() {
                return Ok(());
            }
            r.write(data).and_then(|()| r.flush())
        }) {
            None => Err(BackendError::Finished),
            Some(Err(_)) => Err(BackendError::ClientGone("write to client failed".into())),
            Some(Ok(())) => Ok(()),
        }
    }

    /// A file bucket: Apache sends the file as it sends static files
    /// (sendfile with WSGIEnableSendfile On, else mmap or block reads),
    /// without a copy through Python or a flush, so the event MPM can
    /// finish writing it after the handler returns.
    fn send_file(
        &self,
        file: &std::fs::File,
        offset: u64,
        len: u64,
    ) -> Option<Result<(), BackendError>> {
        if self.redirecting() {
            return Some(Ok(()));
        }
        // Apache's own descriptor: the application may close its file
        // before Apache has sent the bytes.
        let own = file.try_clone().ok()?;
        Some(
            match self.request.with(|r| {
                if r.response_ended() {
                    return Ok(());
                }
                // Mapped as Apache maps a static file: the application
                // runs in this child, no other user's process picks it.
                let how = FileSend {
                    sendfile: self.sendfile,
                    mmap: true,
                    verify: false,
                };
                r.send_file(own, offset, len, how)
            }) {
                None => Err(BackendError::Finished),
                Some(Err(_)) => Err(BackendError::ClientGone("write to client failed".into())),
                Some(Ok(())) => Ok(()),
            },
        )
    }

    /// Only after the application's return: the request's thread, which
    /// runs the application, is the one to relay. The application gets
    /// one end of a socket pair now; what it writes waits there.
    fn switch_protocols(
        &self,
        protocol: &str,
        headers: &[(String, String)],
        start: TunnelStart,
    ) -> Option<Result<std::os::fd::OwnedFd, BackendError>> {
        if start != TunnelStart::AfterReturn {
            return None;
        }
        // Once only: start_response refuses a second switch.
        let mut pending = self.tunnel.lock();
        Some(match UnixStream::pair() {
            Ok((relayed, application)) => {
                *pending = Some(PendingTunnel {
                    protocol: protocol.to_string(),
                    headers: headers.to_vec(),
                    relayed,
                });
                Ok(application.into())
            }
            // Descriptors ran out: the upgrade is lost to the client.
            Err(e) => Err(BackendError::ClientGone(format!(
                "no socket pair for the upgraded connection: {e}"
            ))),
        })
    }

    fn log(&self, level: Level, text: &str) {
        self.request.log(level, text);
    }
}

/// Sends the 101 of `tunnel` and relays the client connection to the
/// application's end until either side ends it; the hook status.
fn relay_tunnel(r: &mut Request, tunnel: PendingTunnel, script: &str) -> i32 {
    r.set_status(101, b"101 Switching Protocols");
    let pool = r.pool();
    let out = r.headers_out();
    out.add_bytes(pool, b"Upgrade", &latin1_bytes(&tunnel.protocol));
    out.add_bytes(pool, b"Connection", b"Upgrade");
    for (k, v) in &tunnel.headers {
        out.add_bytes(pool, &latin1_bytes(k), &latin1_bytes(v));
    }
    let timeout = r.server_timeout();
    let _relay = crate::relays::begin(&tunnel.relayed);
    crate::tunnel::carry(
        r,
        &tunnel.relayed,
        &[],
        timeout,
        &format!("'{script}'"),
        status::HTTP_BAD_REQUEST,
    )
}

/// Serves one request with the WSGI application of `opts.script`; returns
/// the hook status for Apache.
pub fn handle(r: &mut Request, opts: &RequestOptions) -> i32 {
    if !crate::python::is_initialized() {
        r.log(
            Level::Error,
            &format!(
                "Python is not running in this Apache child (pid {}): it failed to start (see the log of this child's start), cannot serve '{}'",
                std::process::id(),
                opts.script
            ),
        );
        return status::HTTP_SERVICE_UNAVAILABLE;
    }
    if let Err(code) = r.setup_body(opts.chunked_request) {
        return code;
    }
    let mut vars = crate::cgi::vars(r, opts.pass_authorization, &opts.proxy);
    crate::cgi::map_head_to_get(r, &mut vars, opts.map_head_to_get);
    let resource = r.filename().unwrap_or(&opts.script).to_string();
    let target = AppTarget {
        script: &opts.script,
        resource: &resource,
        callable_object: &opts.callable_object,
        // A WSGIHandlerScript is not the file Apache matched: its own mtime.
        mtime: if r.filename() == Some(opts.script.as_str()) {
            r.mtime()
        } else {
            crate::dispatch::file_mtime(&opts.script)
        },
        reloading: opts.script_reloading,
    };
    let ctx = EnvironContext {
        process_group: "",
        application_group: &opts.application_group,
        callable_object: &opts.callable_object,
        script_reloading: opts.script_reloading,
        multithread: opts.multithread,
        multiprocess: opts.multiprocess,
        apache_request: opts.pass_apache_request.then(|| r.as_send()),
    };
    let scope = RequestScope::new(r);
    let apache = Arc::new(ApacheBackend {
        request: scope.handle(),
        sendfile: opts.enable_sendfile,
        local_redirect: parking_lot::Mutex::new(None),
        tunnel: parking_lot::Mutex::new(None),
    });
    let backend: Arc<dyn Backend> = apache.clone();
    // reload_requested needs nothing more here: the module was loaded
    // again, which is all embedded mode does for it.
    let outcome = serve::serve(
        backend.clone(),
        &target,
        vars.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
        &ctx,
    )
    .outcome;
    let redirect = apache.local_redirect.lock().take();
    let mut outcome = outcome;
    if let (Some(_), Err(failure)) = (&redirect, &mut outcome) {
        // Nothing reached the client: the failure is an ordinary 500.
        failure.started = false;
    }
    let code = match &outcome {
        Ok(()) => status::OK,
        Err(failure) => {
            serve::report(&*backend, failure, &target, &ctx);
            match (&failure.error, failure.started) {
                (RequestError::ClientGone, _) => status::OK,
                (_, true) => status::DONE,
                (RequestError::RequestTimeout, false) => status::HTTP_GATEWAY_TIME_OUT,
                (RequestError::MissingCallable(_), false) => status::HTTP_NOT_FOUND,
                (_, false) => status::HTTP_INTERNAL_SERVER_ERROR,
            }
        }
    };
    drop(scope);
    // An application that failed after accepting has its end of the pair
    // closed with the rest; nothing was sent, the failure is answered.
    let tunnel = apache.tunnel.lock().take();
    if let Some(tunnel) = tunnel.filter(|_| outcome.is_ok()) {
        return relay_tunnel(r, tunnel, &opts.script);
    }
    if r.response_ended() {
        // Apache answered while the application read the body (a body it
        // refused): no status or redirect of ours may add a second response.
        return status::DONE;
    }
    // The head is out but the response cannot be finished: the client
    // must see it cut, not get a complete-looking one. After the scope:
    // no thread of the application can reach the request any more.
    if code == status::DONE {
        r.abort_response();
    }
    match (redirect, outcome) {
        (Some(location), Ok(())) => {
            r.log(
                Level::Debug,
                &format!(
                    "'{}' answered 200 with Location '{location}': internal redirect",
                    opts.script
                ),
            );
            r.internal_redirect(&location);
            status::OK
        }
        _ => code,
    }
}
