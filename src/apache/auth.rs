//! The FFI side of mod_wsgi's hooks into Apache's access, authentication
//! and authorisation phases: the request fields they need, the access
//! checker trampoline, and the `wsgi` authn provider (AuthBasicProvider /
//! AuthDigestProvider wsgi) and `wsgi-group` authz provider
//! (`Require wsgi-group ...`) as static tables of function pointers that
//! mod_auth_basic, mod_auth_digest and mod_authz_core call. What the
//! scripts decide lives in `crate::hooks::access` and `crate::hooks::auth`.

use super::request::Request;
use super::{cstr, ffi};
// c_int, c_void and the `raw` conversions serve the trampolines, which
// unit-test builds leave out (they link against Apache).
#[cfg_attr(test, allow(unused_imports))]
use std::ffi::{c_char, c_int, c_void};

impl Request {
    /// The authenticated user (r->user), if any.
    pub fn user(&self) -> Option<&str> {
        // SAFETY: r->user is NULL or a NUL-terminated string of the request
        // (or connection) pool, alive as long as the request.
        unsafe { cstr((*self.as_ptr()).user) }
    }

    /// Replaces the authenticated user name (r->user) with a request-pool
    /// copy of `name`.
    pub fn set_user(&mut self, name: &str) {
        let copy = self.pool().strdup(name) as *mut c_char;
        // SAFETY: a live request; the copy lives in its pool.
        unsafe { (*self.as_ptr()).user = copy };
    }

    /// The client's host as `Require host` sees it: its DNS name when
    /// HostnameLookups found one, else its address (ap_get_useragent_host
    /// with REMOTE_NAME).
    pub fn useragent_host(&self) -> String {
        // SAFETY: a live request; the result is NULL or a string of the
        // request or connection pool.
        let host = unsafe {
            ffi::ap_get_useragent_host(self.as_ptr(), ffi::MWRS_REMOTE_NAME, std::ptr::null_mut())
        };
        // SAFETY: as above.
        unsafe { cstr(host) }.unwrap_or("").to_string()
    }

    /// The CGI variables of the request line, as ap_add_cgi_vars gives
    /// them, without its PATH_TRANSLATED subrequest and without
    /// GATEWAY_INTERFACE (mod_wsgi 6 gives hook scripts neither);
    /// SCRIPT_NAME is the URI before PATH_INFO.
    pub fn request_line_vars(&self) -> Vec<(&'static str, String)> {
        // SAFETY: a live request; these fields are NULL or request-pool
        // strings.
        let (protocol, args, unparsed) = unsafe {
            let r = self.as_ptr();
            (
                cstr((*r).protocol),
                cstr((*r).args),
                cstr((*r).unparsed_uri),
            )
        };
        let uri = self.uri();
        let path_info = self.path_info();
        let script_name = uri.strip_suffix(path_info).unwrap_or(uri);
        vec![
            ("SERVER_PROTOCOL", protocol.unwrap_or("").to_string()),
            ("REQUEST_METHOD", self.method().to_string()),
            ("QUERY_STRING", args.unwrap_or("").to_string()),
            ("REQUEST_URI", unparsed.unwrap_or("").to_string()),
            ("SCRIPT_NAME", script_name.to_string()),
            ("PATH_INFO", path_info.to_string()),
        ]
    }

    /// Fills subprocess_env with the common CGI variables only (headers,
    /// server and client facts): unlike ap_add_cgi_vars this makes no
    /// subrequest, so it is safe in the access and auth phases.
    pub fn add_common_vars(&mut self) {
        // SAFETY: reads and extends the live request's tables.
        unsafe { ffi::ap_add_common_vars(self.as_ptr()) };
    }
}

/// What an authentication provider answers, as mod_auth.h spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthnStatus {
    Denied,
    Granted,
    UserFound,
    UserNotFound,
    GeneralError,
}

impl AuthnStatus {
    #[cfg_attr(test, allow(dead_code))]
    fn raw(self) -> ffi::authn_status {
        match self {
            AuthnStatus::Denied => ffi::authn_status_AUTH_DENIED,
            AuthnStatus::Granted => ffi::authn_status_AUTH_GRANTED,
            AuthnStatus::UserFound => ffi::authn_status_AUTH_USER_FOUND,
            AuthnStatus::UserNotFound => ffi::authn_status_AUTH_USER_NOT_FOUND,
            AuthnStatus::GeneralError => ffi::authn_status_AUTH_GENERAL_ERROR,
        }
    }
}

/// What an authorisation provider answers, as mod_auth.h spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthzStatus {
    Denied,
    Granted,
    Neutral,
    GeneralError,
    DeniedNoUser,
}

impl AuthzStatus {
    #[cfg_attr(test, allow(dead_code))]
    fn raw(self) -> ffi::authz_status {
        match self {
            AuthzStatus::Denied => ffi::authz_status_AUTHZ_DENIED,
            AuthzStatus::Granted => ffi::authz_status_AUTHZ_GRANTED,
            AuthzStatus::Neutral => ffi::authz_status_AUTHZ_NEUTRAL,
            AuthzStatus::GeneralError => ffi::authz_status_AUTHZ_GENERAL_ERROR,
            AuthzStatus::DeniedNoUser => ffi::authz_status_AUTHZ_DENIED_NO_USER,
        }
    }
}

/// A provider table Apache keeps a pointer to: immutable, static.
#[repr(transparent)]
#[cfg_attr(test, allow(dead_code))]
struct Provider<T>(T);
// SAFETY: only function pointers, never written after compile time.
unsafe impl<T> Sync for Provider<T> {}

#[cfg(not(test))]
pub use trampolines::register;

/// The `extern "C"` functions Apache calls; they need the module record
/// (for the request's DirConfig), which test builds do not have.
#[cfg(not(test))]
mod trampolines {
    use super::*;
    use crate::apache::hooks::{self, Order};
    use crate::apache::module::wsgi_module;
    use crate::apache::pool::Pool;
    use crate::apache::{guard, status};
    use crate::config::DirConfig;
    use crate::hooks::{access, auth};

    /// Our merged DirConfig of the request (or of the AuthnProviderAlias
    /// section mod_authn_core swapped in).
    fn dir_config<'a>(r: *mut ffi::request_rec) -> Option<&'a DirConfig> {
        // SAFETY: per_dir_config of a live request holds our DirConfig
        // (made by create/merge_dir_config) at our module index.
        unsafe { wsgi_module.config::<DirConfig>(hooks::request_dir_config(r)) }.map(|d| &*d)
    }

    static AUTHN: Provider<ffi::authn_provider> = Provider(ffi::authn_provider {
        check_password: Some(check_password),
        get_realm_hash: Some(get_realm_hash),
    });
    static AUTHZ_GROUP: Provider<ffi::authz_provider> = Provider(ffi::authz_provider {
        check_authorization: Some(check_group),
        parse_require_line: Some(parse_group_line),
    });

    /// Called from register_hooks: the access checker and both providers.
    ///
    /// # Safety
    /// `p` must be the live pool Apache passes to register_hooks.
    pub unsafe fn register(p: *mut ffi::apr_pool_t) {
        hooks::access_checker(access_checker, Order::Middle);
        // SAFETY: static provider tables and static C strings; Apache keeps
        // the pointers for the life of the process generation.
        unsafe {
            ffi::ap_register_auth_provider(
                p,
                ffi::AUTHN_PROVIDER_GROUP.as_ptr().cast(),
                c"wsgi".as_ptr(),
                ffi::AUTHN_PROVIDER_VERSION.as_ptr().cast(),
                (&raw const AUTHN.0).cast::<c_void>(),
                ffi::MWRS_AP_AUTH_INTERNAL_PER_CONF,
            );
            ffi::ap_register_auth_provider(
                p,
                ffi::AUTHZ_PROVIDER_GROUP.as_ptr().cast(),
                c"wsgi-group".as_ptr(),
                ffi::AUTHZ_PROVIDER_VERSION.as_ptr().cast(),
                (&raw const AUTHZ_GROUP.0).cast::<c_void>(),
                ffi::MWRS_AP_AUTH_INTERNAL_PER_CONF,
            );
        }
    }

    unsafe extern "C" fn access_checker(r: *mut ffi::request_rec) -> c_int {
        guard("access_checker", status::HTTP_INTERNAL_SERVER_ERROR, || {
            let Some(dir) = dir_config(r) else {
                return status::DECLINED;
            };
            if dir.access_script.is_none() {
                return status::DECLINED;
            }
            // SAFETY: Apache passes the live request to this hook.
            let request = unsafe { Request::from_raw(r) };
            access::access_checker(request, dir)
        })
    }

    unsafe extern "C" fn check_password(
        r: *mut ffi::request_rec,
        user: *const c_char,
        password: *const c_char,
    ) -> ffi::authn_status {
        guard("check_password", AuthnStatus::GeneralError, || {
            let dir = dir_config(r);
            // SAFETY: Apache passes the live request and NUL-terminated
            // user and password strings of the request pool.
            let (request, user, password) =
                unsafe { (Request::from_raw(r), cstr(user), cstr(password)) };
            match (dir, user, password) {
                (Some(dir), Some(user), Some(password)) => {
                    auth::check_password(request, dir, user, password)
                }
                (_, None, _) | (_, _, None) => {
                    request.log(
                        crate::apache::log::Level::Info,
                        "user name or password is not valid UTF-8: refused",
                    );
                    AuthnStatus::Denied
                }
                (None, _, _) => AuthnStatus::GeneralError,
            }
        })
        .raw()
    }

    unsafe extern "C" fn get_realm_hash(
        r: *mut ffi::request_rec,
        user: *const c_char,
        realm: *const c_char,
        rethash: *mut *mut c_char,
    ) -> ffi::authn_status {
        guard("get_realm_hash", AuthnStatus::GeneralError, || {
            let Some(dir) = dir_config(r) else {
                return AuthnStatus::GeneralError;
            };
            // SAFETY: Apache passes the live request and NUL-terminated
            // user and realm strings.
            let (request, user, realm) = unsafe { (Request::from_raw(r), cstr(user), cstr(realm)) };
            let (Some(user), Some(realm)) = (user, realm) else {
                return AuthnStatus::UserNotFound;
            };
            match auth::get_realm_hash(request, dir, user, realm) {
                Ok(hash) => {
                    let copy = request.pool().strdup(&hash) as *mut c_char;
                    // SAFETY: Apache gives a place for one string pointer;
                    // the copy lives in the request pool.
                    unsafe { *rethash = copy };
                    AuthnStatus::UserFound
                }
                Err(status) => status,
            }
        })
        .raw()
    }

    unsafe extern "C" fn check_group(
        r: *mut ffi::request_rec,
        require_line: *const c_char,
        _parsed: *const c_void,
    ) -> ffi::authz_status {
        guard("check_authorization", AuthzStatus::GeneralError, || {
            let Some(dir) = dir_config(r) else {
                return AuthzStatus::GeneralError;
            };
            // SAFETY: Apache passes the live request and the rest of the
            // Require line (a configuration-pool string).
            let (request, line) = unsafe { (Request::from_raw(r), cstr(require_line)) };
            auth::check_group(request, dir, line.unwrap_or(""))
        })
        .raw()
    }

    unsafe extern "C" fn parse_group_line(
        cmd: *mut ffi::cmd_parms,
        require_line: *const c_char,
        _parsed: *mut *const c_void,
    ) -> *const c_char {
        // SAFETY: Apache passes the live cmd_parms and the rest of the line.
        let line = unsafe { cstr(require_line) }.unwrap_or("");
        match auth::parse_group_line(line) {
            Ok(_) => std::ptr::null(),
            Err(message) => {
                // SAFETY: the configuration pool of the directive.
                let pool = unsafe { Pool::from_raw((*cmd).pool) };
                pool.strdup(&message)
            }
        }
    }
}
