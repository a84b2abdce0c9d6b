//! Facts about a request that the WSGI environ reports as mod_wsgi.* keys,
//! as C mod_wsgi does: when the request arrived, Apache's id for it, the
//! listener it came in on and the name of the server handling it.

use super::{cbytes, cstr, ffi, request::Request};
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
    // Read once per process: the description is fixed once the server runs
    // (each request's environ carries it).
    static VERSION: std::sync::OnceLock<Option<(u32, u32, u32)>> = std::sync::OnceLock::new();
    *VERSION.get_or_init(read_server_version)
}

fn read_server_version() -> Option<(u32, u32, u32)> {
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

/// Apache's banner as `ServerTokens` makes it (SERVER_SOFTWARE).
pub fn server_banner() -> &'static str {
    // SAFETY: a static string of the server, valid for the process.
    unsafe { cstr(ffi::ap_get_server_banner()) }.unwrap_or("")
}

/// What the CGI variables of a request are made of: the facts
/// ap_add_common_vars and ap_add_cgi_vars read, for `cgi::vars`, which
/// picks among them as C mod_wsgi 6 does.
impl Request {
    fn connection(&self) -> Option<&ffi::conn_rec> {
        // SAFETY: r->connection is NULL or the live connection of the
        // request, which outlives it.
        unsafe { (*self.as_ptr()).connection.as_ref() }
    }

    /// The server name for self-referential URLs (UseCanonicalName decides).
    pub fn server_name_for_url(&self) -> &str {
        // SAFETY: a live request; the result is a string of the request or
        // server (IPv6 literals in brackets, in the request pool).
        unsafe { cstr(ffi::ap_get_server_name_for_url(self.as_ptr())) }.unwrap_or("")
    }

    /// The address of this end of the connection.
    pub fn local_ip(&self) -> &str {
        // SAFETY: local_ip is NULL or a connection-pool string.
        self.connection()
            .and_then(|c| unsafe { cstr(c.local_ip) })
            .unwrap_or("")
    }

    /// The client's address as Apache (or mod_remoteip) sees it.
    pub fn useragent_ip(&self) -> &str {
        // SAFETY: NULL or a request/connection-pool string.
        unsafe { cstr((*self.as_ptr()).useragent_ip) }.unwrap_or("")
    }

    /// The port of the client's end of the connection.
    pub fn client_port(&self) -> u16 {
        // SAFETY: client_addr is NULL or the connection's live sockaddr.
        self.connection()
            .and_then(|c| unsafe { c.client_addr.as_ref() })
            .map_or(0, |a| a.port)
    }

    /// DocumentRoot of the request's server.
    pub fn document_root(&self) -> &str {
        // SAFETY: a live request; the result is a configuration string.
        unsafe { cstr(ffi::ap_document_root(self.as_ptr())) }.unwrap_or("")
    }

    /// "http" or "https" (mod_ssl answers the http_scheme hook).
    pub fn http_scheme(&self) -> &str {
        // SAFETY: a live request; the hook answers a static or pool string.
        unsafe { cstr(ffi::ap_run_http_scheme(self.as_ptr())) }.unwrap_or("http")
    }

    /// The URL prefix of the matched Alias (CONTEXT_PREFIX).
    pub fn context_prefix(&self) -> &str {
        // SAFETY: a live request; the result is a pool or static string.
        unsafe { cstr(ffi::ap_context_prefix(self.as_ptr())) }.unwrap_or("")
    }

    /// The directory the matched Alias maps to (CONTEXT_DOCUMENT_ROOT).
    pub fn context_document_root(&self) -> &str {
        // SAFETY: as for context_prefix.
        unsafe { cstr(ffi::ap_context_document_root(self.as_ptr())) }.unwrap_or("")
    }

    /// ServerAdmin of the request's server.
    pub fn server_admin(&self) -> Option<&str> {
        // SAFETY: r->server is the live server_rec; server_admin is NULL or
        // a configuration string.
        unsafe {
            (*self.as_ptr())
                .server
                .as_ref()
                .and_then(|s| cstr(s.server_admin))
        }
    }

    /// How the user (`user()`) was authenticated (AUTH_TYPE).
    pub fn auth_type(&self) -> Option<&str> {
        // SAFETY: NULL or a request/configuration string.
        unsafe { cstr((*self.as_ptr()).ap_auth_type) }
    }

    /// The request line as the client sent it ("GET /x?y HTTP/1.1").
    pub fn the_request(&self) -> Option<&str> {
        // SAFETY: NULL or a request-pool string.
        unsafe { cstr((*self.as_ptr()).the_request) }
    }
    /// "HTTP/1.1", or "INCLUDED" for a mod_include subrequest.
    pub fn protocol(&self) -> &str {
        // SAFETY: NULL or a request-pool string.
        unsafe { cstr((*self.as_ptr()).protocol) }.unwrap_or("")
    }
    /// The query string, without the '?'.
    pub fn args(&self) -> Option<&str> {
        // SAFETY: NULL or a request-pool string.
        unsafe { cstr((*self.as_ptr()).args) }
    }
    /// The query string's bytes (a client may send any byte but NUL).
    pub fn args_bytes(&self) -> Option<&[u8]> {
        // SAFETY: NULL or a request-pool string.
        unsafe { cbytes((*self.as_ptr()).args) }
    }
    /// The request line's bytes.
    pub fn the_request_bytes(&self) -> Option<&[u8]> {
        // SAFETY: NULL or a request-pool string.
        unsafe { cbytes((*self.as_ptr()).the_request) }
    }

    /// Where PATH_INFO starts in the URI (ap_find_path_info: the URI's
    /// slashes may be doubled where PATH_INFO's are not).
    pub fn path_info_start(&self) -> usize {
        let r = self.as_ptr();
        // SAFETY: uri and path_info are NUL-terminated request strings.
        let at = unsafe {
            if (*r).uri.is_null() || (*r).path_info.is_null() {
                return self.uri_bytes().len();
            }
            ffi::ap_find_path_info((*r).uri, (*r).path_info)
        };
        (at.max(0) as usize).min(self.uri_bytes().len())
    }

    /// For a request Apache redirected internally (ErrorDocument,
    /// mod_rewrite's [PT], a local redirect): the user authenticated on
    /// the way here (the nearest one up the chain) and, of the request
    /// just before, its URL (absolute when QualifyRedirectURL is On) and
    /// query string: REDIRECT_REMOTE_USER, REDIRECT_URL and
    /// REDIRECT_QUERY_STRING.
    pub fn redirected_from(&self) -> Option<RedirectedFrom<'_>> {
        // SAFETY: r->prev is NULL or a live earlier request of this one
        // (each its own prev chain), kept until this request ends.
        let prev = unsafe { (*self.as_ptr()).prev.as_ref() }?;
        let mut user = None;
        let mut back: *const ffi::request_rec = prev;
        // SAFETY: as above, for each request up the chain.
        while let Some(b) = unsafe { back.as_ref() } {
            // SAFETY: NULL or a string of that request's pool.
            if let Some(u) = unsafe { cstr(b.user) } {
                user = Some(u);
                break;
            }
            back = b.prev;
        }
        // SAFETY: prev's uri and args are NULL or its pool strings.
        let (uri, args) = unsafe { (cstr(prev.uri), cstr(prev.args)) };
        let url = if self.qualify_redirect_url() {
            // SAFETY: prev is live; see qualified_url.
            unsafe { self.qualified_url(prev) }
        } else {
            uri.map(str::to_string)
        };
        Some(RedirectedFrom {
            user,
            url,
            query: args,
        })
    }

    /// QualifyRedirectURL On for this request.
    fn qualify_redirect_url(&self) -> bool {
        // SAFETY: as in core_dir_config.
        self.core_dir_config()
            .is_some_and(|c| c.qualify_redirect_url() == ffi::MWRS_AP_CORE_CONFIG_ON as u32)
    }

    /// The full URL of `prev` (scheme, host and port filled in from its
    /// server, as ap_add_common_vars does for QualifyRedirectURL).
    ///
    /// # Safety
    /// `prev` must be a live request of this one's chain.
    unsafe fn qualified_url(&self, prev: &ffi::request_rec) -> Option<String> {
        let prev_ptr = prev as *const _ as *mut ffi::request_rec;
        let mut uri = prev.parsed_uri;
        // SAFETY: the functions only read the live `prev`; the strings they
        // return live in its pool or configuration, which outlive this call;
        // apr_uri_unparse copies into this request's pool.
        unsafe {
            if uri.scheme.is_null() {
                uri.scheme = ffi::ap_run_http_scheme(prev_ptr) as *mut c_char;
            }
            if uri.port == 0 {
                uri.port = ffi::ap_get_server_port(prev_ptr);
                uri.port_str = self.pool().strdup(&uri.port.to_string()) as *mut c_char;
            }
            if uri.hostname.is_null() {
                uri.hostname = ffi::ap_get_server_name_for_url(prev_ptr) as *mut c_char;
            }
            let raw = ffi::apr_uri_unparse(self.pool().as_ptr(), &uri, 0);
            cstr(raw).map(str::to_string)
        }
    }

    /// CGIPassAuth On: Authorization and Proxy-Authorization become CGI
    /// variables like other headers.
    pub fn cgi_pass_auth(&self) -> bool {
        self.core_dir_config()
            .is_some_and(|c| c.cgi_pass_auth() == ffi::MWRS_AP_CGI_PASS_AUTH_ON as u32)
    }

    /// `CGIVar REQUEST_URI current-uri`: REQUEST_URI is the URI after
    /// internal redirects rather than the one in the request line.
    pub fn cgi_request_uri_is_current(&self) -> bool {
        let Some(rules) = self.core_dir_config().map(|c| c.cgi_var_rules) else {
            return false;
        };
        if rules.is_null() {
            return false;
        }
        // SAFETY: a live configuration hash of strings; the key is read
        // for MWRS_APR_HASH_KEY_STRING (NUL-terminated) during the call.
        let rule = unsafe {
            cstr(ffi::apr_hash_get(
                rules,
                c"REQUEST_URI".as_ptr().cast(),
                ffi::MWRS_APR_HASH_KEY_STRING as _,
            ) as *const c_char)
        };
        rule == Some("current-uri")
    }

    fn core_dir_config(&self) -> Option<&ffi::core_dir_config> {
        // SAFETY: per_dir_config is the live request's configuration
        // vector; core's entry in it is its core_dir_config (or NULL).
        unsafe {
            (ffi::ap_get_core_module_config((*self.as_ptr()).per_dir_config)
                as *const ffi::core_dir_config)
                .as_ref()
        }
    }

    /// Apache's id of the connection, when something (a `%{c}L` log
    /// format) asked for one.
    pub fn connection_log_id(&self) -> Option<&str> {
        // SAFETY: NULL or a connection-pool string.
        self.connection().and_then(|c| unsafe { cstr(c.log_id) })
    }

    /// Whether the method is GET as Apache numbers it (HEAD is too, with
    /// header_only set).
    pub fn method_is_get(&self) -> bool {
        // SAFETY: a field of the live request.
        unsafe { (*self.as_ptr()).method_number == ffi::MWRS_M_GET }
    }
}

/// See [`Request::redirected_from`].
pub struct RedirectedFrom<'r> {
    pub user: Option<&'r str>,
    pub url: Option<String>,
    pub query: Option<&'r str>,
}
