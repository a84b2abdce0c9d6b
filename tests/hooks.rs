//! mod_wsgi's hooks into Apache's own request phases, against a real
//! Apache: trusted proxy headers, WSGIAccessScript, the `wsgi` auth
//! provider (WSGIAuthUserScript) and `Require wsgi-group`
//! (WSGIAuthGroupScript).

mod common;
use common::*;

/// Reports the environ keys the proxy tests look at, as `key=value` lines
/// ("-" for a missing key).
const ENV_APP: &str = r#"
import os
KEYS = ["REMOTE_ADDR", "wsgi.url_scheme", "HTTPS", "REQUEST_SCHEME", "HTTP_HOST",
        "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME", "PATH_INFO",
        "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_X_CLIENT_IP",
        "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_SSL", "HTTP_X_FORWARDED_HOST",
        "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_SERVER", "HTTP_X_SCRIPT_NAME",
        "HTTP_AUTHORIZATION", "REMOTE_USER", "AUTH_TYPE", "mod_wsgi.process_group"]
def application(environ, start_response):
    lines = ["%s=%s" % (k, environ.get(k, "-")) for k in KEYS]
    lines.append("pid=%d" % os.getpid())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode()]
"#;

/// `key` from the app's `key=value` lines.
fn field(body: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{key} missing in:\n{body}"))
        .to_string()
}

const PROXY_HEADERS: &[(&str, &str)] = &[
    ("X-Forwarded-For", "198.51.100.77, 203.0.113.9"),
    ("X-Real-IP", "192.0.2.1"),
    ("X-Client-IP", "192.0.2.2"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-SSL", "on"),
    ("X-Forwarded-Host", "www.example.com"),
    ("X-Forwarded-Port", "443"),
    ("X-Forwarded-Server", "front.example.com"),
    ("X-Script-Name", "/shop"),
];

/// Directives for a location: which proxies to trust (the harness client
/// is 127.0.0.1) and every purpose's header named.
fn proxy_directives(location: &str, proxies: &str, extra: &str) -> String {
    format!(
        "WSGIScriptAlias {location} {{dir}}/app/env.wsgi\n\
         <Location {location}>\n\
         WSGITrustedProxies {proxies}\n\
         WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto X-Forwarded-Host\n\
         WSGITrustedProxyHeaders X-Forwarded-Port X-Forwarded-Server X-Script-Name\n\
         {extra}\
         </Location>\n"
    )
}

fn proxy_server() -> Apache {
    let mut directives = String::from("WSGIDaemonProcess proxied threads=2\n");
    directives += &proxy_directives("/trusted", "10.0.0.0/8 127.0.0.1", "");
    directives += &proxy_directives("/untrusted", "10.0.0.1 192.168.0.0/16", "");
    directives += &proxy_directives(
        "/daemon-trusted",
        "127.0.0.0/8",
        "WSGIProcessGroup proxied\n",
    );
    directives += &proxy_directives("/daemon-untrusted", "::1", "WSGIProcessGroup proxied\n");
    // Nothing configured: the headers pass through untouched.
    directives += "WSGIScriptAlias /plain {dir}/app/env.wsgi\n";
    Apache::builder()
        .file("app/env.wsgi", ENV_APP)
        .directives(&directives)
        .start()
}

fn check_trusted(apache: &Apache, path: &str, group: &str) {
    let r = apache.request("GET", path, PROXY_HEADERS, b"");
    assert_eq!(r.status, 200, "{path}: {}", apache.error_log());
    let body = r.text();
    assert_eq!(field(&body, "mod_wsgi.process_group"), group, "{body}");
    // The rightmost hop not a trusted proxy is the client.
    assert_eq!(field(&body, "REMOTE_ADDR"), "203.0.113.9", "{path}: {body}");
    assert_eq!(field(&body, "wsgi.url_scheme"), "https", "{path}: {body}");
    assert_eq!(field(&body, "HTTPS"), "-", "{path}: HTTPS is never passed");
    assert_eq!(field(&body, "HTTP_HOST"), "www.example.com", "{path}");
    assert_eq!(field(&body, "SERVER_PORT"), "443", "{path}");
    assert_eq!(field(&body, "SERVER_NAME"), "front.example.com", "{path}");
    assert_eq!(field(&body, "SCRIPT_NAME"), "/shop", "{path}");
    assert_eq!(field(&body, "PATH_INFO"), "/x", "{path}");
    // The named headers are passed on, as an indication only...
    assert_eq!(
        field(&body, "HTTP_X_FORWARDED_FOR"),
        "198.51.100.77, 203.0.113.9"
    );
    assert_eq!(field(&body, "HTTP_X_FORWARDED_PROTO"), "https");
    // ...the others of their sets are dropped.
    for key in ["HTTP_X_REAL_IP", "HTTP_X_CLIENT_IP", "HTTP_X_FORWARDED_SSL"] {
        assert_eq!(field(&body, key), "-", "{path}: {key} must be dropped");
    }
}

fn check_untrusted(apache: &Apache, path: &str, group: &str) {
    let r = apache.request("GET", path, PROXY_HEADERS, b"");
    assert_eq!(r.status, 200, "{path}: {}", apache.error_log());
    let body = r.text();
    assert_eq!(field(&body, "mod_wsgi.process_group"), group, "{body}");
    assert_eq!(field(&body, "REMOTE_ADDR"), "127.0.0.1", "{path}: {body}");
    assert_eq!(field(&body, "wsgi.url_scheme"), "http", "{path}");
    assert_eq!(
        field(&body, "HTTP_HOST"),
        format!("127.0.0.1:{}", apache.port)
    );
    assert_eq!(field(&body, "SERVER_PORT"), apache.port.to_string());
    assert_eq!(field(&body, "SERVER_NAME"), "127.0.0.1");
    let mount = path.trim_end_matches("/x");
    assert_eq!(field(&body, "SCRIPT_NAME"), mount);
    for key in [
        "HTTP_X_FORWARDED_FOR",
        "HTTP_X_REAL_IP",
        "HTTP_X_CLIENT_IP",
        "HTTP_X_FORWARDED_PROTO",
        "HTTP_X_FORWARDED_SSL",
        "HTTP_X_FORWARDED_HOST",
        "HTTP_X_FORWARDED_PORT",
        "HTTP_X_FORWARDED_SERVER",
        "HTTP_X_SCRIPT_NAME",
    ] {
        assert_eq!(
            field(&body, key),
            "-",
            "{path}: untrusted {key} must not reach the app"
        );
    }
}

#[test]
fn trusted_proxy_headers_embedded() {
    let apache = proxy_server();
    check_trusted(&apache, "/trusted/x", "");
    check_untrusted(&apache, "/untrusted/x", "");
    // Not configured: passed as any other header, nothing rewritten.
    let body = apache.request("GET", "/plain", PROXY_HEADERS, b"").text();
    assert_eq!(field(&body, "REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(field(&body, "HTTP_X_REAL_IP"), "192.0.2.1");
    assert_eq!(field(&body, "wsgi.url_scheme"), "http");
}

#[test]
fn trusted_proxy_headers_daemon() {
    let apache = proxy_server();
    check_trusted(&apache, "/daemon-trusted/x", "proxied");
    check_untrusted(&apache, "/daemon-untrusted/x", "proxied");
}

#[test]
fn trusted_proxy_directives_are_implemented() {
    let apache = proxy_server();
    apache.get("/plain");
    let log = apache.error_log();
    assert!(
        !log.contains("WSGITrustedProxies is accepted but not implemented"),
        "{log}"
    );
    assert!(
        !log.contains("WSGITrustedProxyHeaders is accepted but not implemented"),
        "{log}"
    );
}
