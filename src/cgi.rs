//! The CGI variables of a request in the Apache child: what the child
//! hands to Python whichever mode serves the request (embedded, or a daemon
//! process through `daemon::worker`), and to the dispatch script.
//!
//! The set is C mod_wsgi 6's (wsgi_environ.c): what Apache's
//! ap_add_common_vars and ap_add_cgi_vars give a CGI script, without
//! PATH_TRANSLATED (a subrequest: a second walk of the URL for a value
//! WSGI applications do not use), REMOTE_HOST and REMOTE_IDENT (a DNS or
//! ident lookup), GATEWAY_INTERFACE (not CGI), SERVER_SIGNATURE (HTML) and
//! the process's PATH and library-path variables (nothing is exec'd).
//! docs/environ-differences.md compares the result with C mod_wsgi.

use crate::apache::log::Level;
use crate::apache::request::Request;
use crate::config::MapHeadToGet;
use std::borrow::Cow;

/// One variable, name and value: borrowed where Apache holds the text in
/// the request's pool (`'r`: valid while the request is, as the pool's
/// tables are), made here otherwise. Most are borrowed: no allocation of
/// ours per variable.
pub type Var<'r> = (Cow<'r, str>, Cow<'r, str>);

/// Keys of the environ that carry a fact from the Apache child to the
/// process running the application, and that the application does not
/// see (`wsgi::environ` drops them, as C mod_wsgi drops its
/// `mod_wsgi.x-*` keys).
pub const INTERNAL_PREFIX: &str = "mod_wsgi.x-";
/// When Apache read the request (µs since the epoch); the environ has it
/// as `mod_wsgi.request_start`, in seconds.
pub const REQUEST_START_US: &str = "mod_wsgi.x-request_start_us";
/// When the Apache child handed the request to a daemon process group
/// (µs); `mod_wsgi.queue_start` in the environ.
pub const QUEUE_START_US: &str = "mod_wsgi.x-queue_start_us";
/// When the daemon process took the request (µs); `mod_wsgi.daemon_start`.
pub const DAEMON_START_US: &str = "mod_wsgi.x-daemon_start_us";
/// WSGIScriptReloading of the request ("1"/"0"), for the daemon process.
pub const SCRIPT_RELOADING: &str = "mod_wsgi.x-script_reloading";
/// WSGIIgnoreActivity of the request ("1"/"0"): the daemon process does
/// not count the request as activity for inactivity-timeout.
pub const IGNORE_ACTIVITY: &str = "mod_wsgi.x-ignore_activity";
/// How many times the Apache child tried to connect to the daemon group
/// for the request (mod_wsgi's daemon_connects).
pub const DAEMON_CONNECTS: &str = "mod_wsgi.x-daemon_connects";
/// The request's ticket on the group's request board
/// (`daemon::board`), in decimal.
pub const TICKET: &str = "mod_wsgi.x-ticket";
/// "1" when the Apache child will send later requests on the connection
/// that carries this one: the daemon then keeps it open after a clean
/// exchange instead of closing it (docs/protocol.md, "Connections").
pub const KEEP_CONNECTION: &str = "mod_wsgi.x-keep_connection";

/// The CGI variables of the request, with what a trusted proxy says
/// applied (`wsgi::proxy`), the Authorization header when it is passed on
/// purpose, and the `mod_wsgi.*` facts known in the Apache child.
pub fn vars<'r>(
    r: &mut Request,
    pass_authorization: bool,
    proxy: &crate::wsgi::proxy::ProxyTrust,
) -> Vec<Var<'r>> {
    // Into subprocess_env, replacing what was there, as mod_cgi (and
    // mod_wsgi) do: a request Apache redirects from here carries them on
    // as REDIRECT_*. Header values go in as the bytes the client sent.
    let (env, pool) = (r.subprocess_env(), r.pool());
    let mut set_var = |k: &str, v: &[u8]| env.set_bytes(pool, k, v);
    header_vars(r, &mut set_var);
    request_vars(r, &mut set_var);
    // Values as PEP 3333 has them, whatever bytes they hold (UTF-8 or
    // not: header values, a URL path sent as `/caf%E9`): one character per
    // byte (latin-1), as mod_wsgi gives them and as frameworks decode them
    // (`.encode('latin-1')`). An ASCII value (nearly all) reads the same.
    let mut vars: Vec<Var<'r>> = env
        .byte_entries()
        .filter_map(|(k, v)| Some((Cow::Borrowed(std::str::from_utf8(k).ok()?), latin1(v))))
        .collect();
    if pass_authorization && let Some(auth) = r.headers_in().get("Authorization") {
        set(&mut vars, "HTTP_AUTHORIZATION", auth.to_string());
    }
    let outcome = crate::wsgi::proxy::apply(&mut vars, proxy);
    if !outcome.unusable.is_empty() {
        r.log(
            Level::Debug,
            &format!(
                "trusted proxy header(s) {} ignored: value not usable",
                outcome.unusable.join(", ")
            ),
        );
    }
    let (listener_host, listener_port) = r.listener();
    let facts = [
        (
            "mod_wsgi.request_handler",
            r.handler().unwrap_or("").to_string(),
        ),
        ("mod_wsgi.handler_script", crate::hooks::handler::noted(r)),
        ("mod_wsgi.listener_host", listener_host),
        ("mod_wsgi.listener_port", listener_port.to_string()),
        // The Apache child serving the request, in either mode.
        ("mod_wsgi.server_pid", std::process::id().to_string()),
        (REQUEST_START_US, r.request_time_us().to_string()),
    ];
    vars.extend(
        facts
            .into_iter()
            .map(|(k, v)| (Cow::Borrowed(k), Cow::Owned(v))),
    );
    if let Some(id) = r.log_id() {
        vars.push(("mod_wsgi.request_id".into(), id.into()));
    }
    if let Some(id) = r.connection_log_id() {
        vars.push(("mod_wsgi.connection_id".into(), id.to_string().into()));
    }
    vars
}

/// WSGIMapHEADToGET: a HEAD request is presented to the application as a
/// GET, so that it produces the body an output filter may need to get
/// the headers right (Content-Length after mod_deflate, for one). `On`
/// always, `Auto` when the output chain starts with a content filter, as
/// mod_wsgi decides; Apache still sends no body for the HEAD.
pub fn map_head_to_get(r: &Request, vars: &mut Vec<Var<'_>>, setting: MapHeadToGet) {
    let map = match setting {
        MapHeadToGet::Off => false,
        MapHeadToGet::On => r.method_is_get(),
        MapHeadToGet::Auto => r.method_is_get() && r.is_head() && r.has_content_output_filter(),
    };
    if map {
        set(vars, "REQUEST_METHOD", "GET".to_string());
    }
}

/// The variables ap_add_common_vars makes of the request headers, with
/// the bytes of their values, in the order they are set (a later one of
/// the same name wins), handed to `set` (straight into the request pool:
/// no copy of ours per variable).
fn header_vars(r: &Request, set: &mut impl FnMut(&str, &[u8])) {
    let pass_auth = r.cgi_pass_auth();
    let mut http_name = String::with_capacity(64);
    for (name, value) in r.headers_in().byte_entries() {
        // Names are tokens (Apache refuses others): ASCII.
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        let key = if name.eq_ignore_ascii_case("Content-Type") {
            "CONTENT_TYPE"
        } else if name.eq_ignore_ascii_case("Content-Length") {
            "CONTENT_LENGTH"
        } else if name.eq_ignore_ascii_case("Proxy") {
            // Never HTTP_PROXY: a client must not pick a proxy (httpoxy).
            continue;
        } else if (name.eq_ignore_ascii_case("Authorization")
            || name.eq_ignore_ascii_case("Proxy-Authorization"))
            && !pass_auth
        {
            // Only with CGIPassAuth On (or WSGIPassAuthorization, later).
            continue;
        } else if http_env_name(name, &mut http_name) {
            http_name.as_str()
        } else {
            // The name has '_' or another character that is neither a
            // letter, a digit nor '-', and could pose as another header.
            continue;
        };
        set(key, value);
    }
}

/// The other variables ap_add_common_vars and ap_add_cgi_vars would add,
/// less the ones C mod_wsgi 6 leaves out (see the module's doc), in the
/// order they are set (a later one of the same name wins), handed to `add`.
fn request_vars(r: &Request, add: &mut impl FnMut(&str, &[u8])) {
    add(
        "SERVER_SOFTWARE",
        crate::apache::request_facts::server_banner().as_bytes(),
    );
    add(
        "SERVER_NAME",
        escape_html(r.server_name_for_url()).as_bytes(),
    );
    add("SERVER_ADDR", r.local_ip().as_bytes());
    add("SERVER_PORT", r.server_port().to_string().as_bytes());
    add("REMOTE_ADDR", r.useragent_ip().as_bytes());
    add("DOCUMENT_ROOT", r.document_root().as_bytes());
    add("REQUEST_SCHEME", r.http_scheme().as_bytes());
    add("CONTEXT_PREFIX", r.context_prefix().as_bytes());
    add(
        "CONTEXT_DOCUMENT_ROOT",
        r.context_document_root().as_bytes(),
    );
    if let Some(admin) = r.server_admin() {
        add("SERVER_ADMIN", admin.as_bytes());
    }
    let filename = r.filename_bytes().unwrap_or(b"");
    if r.notes().get("proxy-noquery").is_some() {
        add(
            "SCRIPT_FILENAME",
            filename.split(|&b| b == b'?').next().unwrap_or(b""),
        );
    } else {
        add("SCRIPT_FILENAME", filename);
    }
    add("REMOTE_PORT", r.client_port().to_string().as_bytes());
    let redirected = r.redirected_from();
    match (r.user(), redirected.as_ref().and_then(|p| p.user)) {
        (Some(user), _) => add("REMOTE_USER", user.as_bytes()),
        (None, Some(user)) => add("REDIRECT_REMOTE_USER", user.as_bytes()),
        (None, None) => {}
    }
    if let Some(auth_type) = r.auth_type() {
        add("AUTH_TYPE", auth_type.as_bytes());
    }
    if let Some(from) = &redirected {
        if let Some(url) = &from.url {
            add("REDIRECT_URL", url.as_bytes());
        }
        if let Some(query) = from.query {
            add("REDIRECT_QUERY_STRING", query.as_bytes());
        }
    }
    add("SERVER_PROTOCOL", r.protocol().as_bytes());
    add("REQUEST_METHOD", r.method().as_bytes());
    add("QUERY_STRING", r.args_bytes().unwrap_or(b""));
    let uri = r.uri_bytes();
    if r.cgi_request_uri_is_current() {
        add("REQUEST_URI", uri);
    } else {
        add(
            "REQUEST_URI",
            original_uri(r.the_request_bytes().unwrap_or(b"")),
        );
    }
    let path_info = r.path_info_bytes();
    if r.protocol() == "INCLUDED" || path_info.is_empty() {
        add("SCRIPT_NAME", uri);
        if !path_info.is_empty() {
            add("PATH_INFO", path_info);
        }
    } else {
        add("SCRIPT_NAME", uri.get(..r.path_info_start()).unwrap_or(uri));
        add("PATH_INFO", path_info);
    }
}

/// The CGI name of a request header ("X-Foo" -> "HTTP_X_FOO") into
/// `out`; false when the name has a character other than a letter, a
/// digit or '-' (as Apache 2.4 and mod_wsgi drop such headers).
fn http_env_name(header: &str, out: &mut String) -> bool {
    out.clear();
    out.push_str("HTTP_");
    for c in header.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => out.push(c.to_ascii_uppercase()),
            '-' => out.push('_'),
            _ => return false,
        }
    }
    true
}

/// The URL as the request line has it (ap_add_cgi_vars' REQUEST_URI): the
/// word after the method, before internal redirects changed anything.
fn original_uri(request_line: &[u8]) -> &[u8] {
    request_line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .nth(1)
        .unwrap_or(b"")
}

/// ap_escape_html: SERVER_NAME is made safe to put in a page (and so is
/// what the status page shows).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Bytes as the str PEP 3333 makes of them: one character per byte.
fn latin1(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        // ASCII (nearly every value) reads the same either way: borrowed.
        Ok(ascii) if bytes.is_ascii() => Cow::Borrowed(ascii),
        _ => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// Replaces the value of `key` (a name of ours), or adds it.
fn set(vars: &mut Vec<Var<'_>>, key: &'static str, value: String) {
    match vars.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = Cow::Owned(value),
        None => vars.push((Cow::Borrowed(key), Cow::Owned(value))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names() {
        let name = |h: &str| {
            let mut out = String::new();
            http_env_name(h, &mut out).then_some(out)
        };
        assert_eq!(name("X-Foo-1").as_deref(), Some("HTTP_X_FOO_1"));
        assert_eq!(name("X_Under"), None);
        assert_eq!(name("X.Dot"), None);
    }

    #[test]
    fn request_line_uri() {
        assert_eq!(original_uri(b"GET /a%20b?x=1 HTTP/1.1"), b"/a%20b?x=1");
        assert_eq!(original_uri(b"GET  /two-spaces HTTP/1.0"), b"/two-spaces");
        assert_eq!(original_uri(b""), b"");
    }

    #[test]
    fn html_escaping() {
        assert_eq!(escape_html("a<b>&\"c"), "a&lt;b&gt;&amp;&quot;c");
    }
}
