//! mod_wsgi's hooks into Apache's own request phases, against a real
//! Apache: trusted proxy headers, WSGIAccessScript, the `wsgi` auth
//! provider (WSGIAuthUserScript) and `Require wsgi-group`
//! (WSGIAuthGroupScript); WSGIPassApacheRequest (the request_rec lent to
//! the application) and CGI's local redirect (status 200 with a
//! `Location: /path` makes Apache serve that path instead); Python started
//! in the Apache children for hook scripts under WSGIRestrictEmbedded On,
//! and only then.

mod common;
use common::*;
use std::time::Duration;

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
    // The named headers are passed on, X-Forwarded-For from the client
    // on, as mod_wsgi rewrites it...
    assert_eq!(field(&body, "HTTP_X_FORWARDED_FOR"), "203.0.113.9");
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

// ------------------------------------------------------------ access script

const ACCESS_SCRIPT: &str = r#"
def allow_access(environ, host):
    q = environ.get("QUERY_STRING", "")
    environ["wsgi.errors"].write("access check host=%s group=[%s] auth=%s q=%s\n" % (
        host, environ["mod_wsgi.application_group"], environ.get("HTTP_AUTHORIZATION", "-"), q))
    if q == "allow":
        return host == "127.0.0.1"
    if q == "deny":
        return False
    if q == "none":
        return None
    if q == "raise":
        raise RuntimeError("access database unavailable")
    if q == "int":
        return 1
    if q == "str":
        return "yes"
    return False
"#;

fn access_server() -> Apache {
    Apache::builder()
        .file("app/env.wsgi", ENV_APP)
        .file("hooks/access.wsgi", ACCESS_SCRIPT)
        .file("htdocs/static/file.txt", "static content")
        .directives(
            "WSGIScriptAlias /acc {dir}/app/env.wsgi\n\
             WSGIScriptAlias /grouped {dir}/app/env.wsgi\n\
             <Location /acc>\n\
             WSGIAccessScript {dir}/hooks/access.wsgi\n\
             </Location>\n\
             <Location /grouped>\n\
             WSGIAccessScript {dir}/hooks/access.wsgi application-group=gatekeeper\n\
             </Location>\n\
             <Location /static>\n\
             WSGIAccessScript {dir}/hooks/access.wsgi\n\
             </Location>\n",
        )
        .start()
}

#[test]
fn access_script_allows_denies_and_declines() {
    let apache = access_server();
    let r = apache.get("/acc?allow");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    assert!(r.text().contains("REMOTE_ADDR=127.0.0.1"));
    assert_eq!(apache.get("/acc?deny").status, 403);
    // None: no opinion, the other modules decide (Require all granted here).
    assert_eq!(apache.get("/acc?none").status, 200);
    // Static files in the location are guarded too.
    assert_eq!(apache.get("/static/file.txt?deny").status, 403);
    let r = apache.get("/static/file.txt?allow");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "static content");
    let log = apache.error_log();
    // %{GLOBAL} by default; the host is the client's address.
    assert!(
        log.contains("access check host=127.0.0.1 group=[] auth=- q=allow"),
        "{log}"
    );
    assert!(log.contains("allow_access() returned False"), "{log}");
}

#[test]
fn access_script_application_group_option() {
    let apache = access_server();
    assert_eq!(apache.get("/grouped?allow").status, 200);
    assert!(
        apache
            .error_log()
            .contains("group=[gatekeeper] auth=- q=allow"),
        "{}",
        apache.error_log()
    );
}

#[test]
fn access_script_errors_never_allow() {
    let apache = access_server();
    let r = apache.get("/acc?raise");
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("REMOTE_ADDR"), "the app must not run");
    let log = apache.error_log();
    assert!(log.contains("WSGIAccessScript"), "{log}");
    assert!(
        log.contains("RuntimeError: access database unavailable"),
        "{log}"
    );
    assert!(log.contains("Traceback"), "{log}");
    for q in ["int", "str"] {
        let r = apache.get(&format!("/acc?{q}"));
        assert_eq!(r.status, 500, "{q}: a truthy non-bool must not allow");
    }
    let log = apache.error_log();
    assert!(log.contains("returned a value of type int"), "{log}");
    assert!(log.contains("returned the string \"yes\""), "{log}");
}

// ------------------------------------------------------- auth user / group

const AUTH_SCRIPT: &str = r#"
import hashlib

def check_password(environ, user, password):
    environ["wsgi.errors"].write("check_password user=%s group=[%s] auth=%s\n" % (
        user, environ["mod_wsgi.application_group"], environ.get("HTTP_AUTHORIZATION", "-")))
    if user == "spy":
        return password == "secret"
    if user == "agent":
        return password == "007"
    if user == "latin":
        return password == "b"
    if user == "alias":
        return "canonical" if password == "pw" else False
    if user == "boom":
        raise RuntimeError("password database down")
    if user == "weird":
        return 1
    return None

def get_realm_hash(environ, user, realm):
    if user == "spy":
        return hashlib.md5(("%s:%s:%s" % (user, realm, "secret")).encode()).hexdigest()
    if user == "boom":
        raise RuntimeError("digest database down")
    return None

def groups_for_user(environ, user):
    environ["wsgi.errors"].write("groups_for_user user=%s\n" % user)
    if user == "spy":
        return ["secret-agents", "staff"]
    if user == "canonical":
        return ("staff",)
    if user == "latin":
        return [b"other group"]
    if user == "agent":
        return "secret-agents"
    return []
"#;

fn auth_modules() -> String {
    let mut s = String::new();
    for m in ["auth_basic", "auth_digest", "authn_core", "authz_user"] {
        s += &format!("LoadModule {m}_module {MODULES_DIR}/mod_{m}.so\n");
    }
    s
}

fn basic(user: &str, password: &str) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let data = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

fn auth_server() -> Apache {
    let mut d = auth_modules();
    d += "WSGIScriptAlias /basic {dir}/app/env.wsgi\n\
          WSGIScriptAlias /passed {dir}/app/env.wsgi\n\
          WSGIScriptAlias /group {dir}/app/env.wsgi\n\
          WSGIScriptAlias /lenient {dir}/app/env.wsgi\n\
          WSGIScriptAlias /strict {dir}/app/env.wsgi\n\
          WSGIScriptAlias /digest {dir}/app/env.wsgi\n\
          WSGIDaemonProcess guarded threads=2\n\
          WSGIScriptAlias /daemon {dir}/app/env.wsgi process-group=guarded\n";
    let basic_block = "AuthType Basic\nAuthName \"Top Secret\"\nAuthBasicProvider wsgi\n\
                       WSGIAuthUserScript {dir}/hooks/auth.wsgi\n";
    for (loc, extra) in [
        ("/basic", "Require valid-user\n"),
        ("/daemon", "Require valid-user\n"),
        ("/passed", "Require valid-user\nWSGIPassAuthorization On\n"),
        (
            "/group",
            "WSGIAuthGroupScript {dir}/hooks/auth.wsgi\nRequire wsgi-group secret-agents \"other group\"\n",
        ),
        (
            "/strict",
            "WSGIAuthGroupScript {dir}/hooks/auth.wsgi\n<RequireAll>\nRequire valid-user\nRequire wsgi-group nobody-has-this\n</RequireAll>\n",
        ),
        (
            "/lenient",
            "WSGIAuthGroupScript {dir}/hooks/auth.wsgi\nWSGIGroupAuthoritative Off\n<RequireAll>\nRequire valid-user\nRequire wsgi-group nobody-has-this\n</RequireAll>\n",
        ),
    ] {
        d += &format!("<Location {loc}>\n{basic_block}{extra}</Location>\n");
    }
    d += "<Location /digest>\nAuthType Digest\nAuthName \"Top Secret\"\nAuthDigestProvider wsgi\n\
          WSGIAuthUserScript {dir}/hooks/auth.wsgi\nRequire valid-user\n</Location>\n";
    Apache::builder()
        .file("app/env.wsgi", ENV_APP)
        .file("hooks/auth.wsgi", AUTH_SCRIPT)
        .directives(&d)
        .start()
}

fn get_as(apache: &Apache, path: &str, user: &str, password: &str) -> Response {
    let auth = basic(user, password);
    apache.request("GET", path, &[("Authorization", &auth)], b"")
}

#[test]
fn basic_auth_provider() {
    let apache = auth_server();
    let r = apache.get("/basic");
    assert_eq!(r.status, 401, "{}", apache.error_log());
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Basic realm=\"Top Secret\"")
    );

    let r = get_as(&apache, "/basic", "spy", "secret");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    let body = r.text();
    assert_eq!(field(&body, "REMOTE_USER"), "spy");
    assert_eq!(field(&body, "AUTH_TYPE"), "Basic");
    // Hidden from the application unless WSGIPassAuthorization On.
    assert_eq!(field(&body, "HTTP_AUTHORIZATION"), "-");

    assert_eq!(get_as(&apache, "/basic", "spy", "wrong").status, 401);
    assert_eq!(get_as(&apache, "/basic", "nobody", "secret").status, 401);

    // A string answer is the user name from now on.
    let r = get_as(&apache, "/basic", "alias", "pw");
    assert_eq!(r.status, 200);
    assert_eq!(field(&r.text(), "REMOTE_USER"), "canonical");

    let log = apache.error_log();
    // %{GLOBAL} by default, and the script never sees the password header.
    assert!(
        log.contains("check_password user=spy group=[] auth=-"),
        "{log}"
    );

    let r = get_as(&apache, "/passed", "spy", "secret");
    assert_eq!(r.status, 200);
    assert_eq!(
        field(&r.text(), "HTTP_AUTHORIZATION"),
        basic("spy", "secret")
    );
}

#[test]
fn basic_auth_provider_errors_are_500() {
    let apache = auth_server();
    let r = get_as(&apache, "/basic", "boom", "x");
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("REMOTE_USER"));
    let log = apache.error_log();
    assert!(log.contains("WSGIAuthUserScript"), "{log}");
    assert!(
        log.contains("RuntimeError: password database down"),
        "{log}"
    );
    let r = get_as(&apache, "/basic", "weird", "x");
    assert_eq!(r.status, 500, "a truthy non-bool must not authenticate");
    assert!(apache.error_log().contains("returned a value of type int"));
}

#[test]
fn basic_auth_provider_guards_daemon_mode() {
    let apache = auth_server();
    assert_eq!(apache.get("/daemon").status, 401);
    let r = get_as(&apache, "/daemon", "spy", "secret");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    let body = r.text();
    assert_eq!(field(&body, "mod_wsgi.process_group"), "guarded");
    assert_eq!(field(&body, "REMOTE_USER"), "spy");
    assert_eq!(field(&body, "HTTP_AUTHORIZATION"), "-");
    assert_eq!(get_as(&apache, "/daemon", "spy", "wrong").status, 401);
}

#[test]
fn wsgi_group_authorization() {
    let apache = auth_server();
    let r = get_as(&apache, "/group", "spy", "secret");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    assert_eq!(field(&r.text(), "REMOTE_USER"), "spy");
    // Authenticated, but in none of the groups.
    assert_eq!(get_as(&apache, "/group", "alias", "pw").status, 401);
    // Authentication still comes first.
    assert_eq!(get_as(&apache, "/group", "spy", "wrong").status, 401);
    // Names as bytes count too, as with mod_wsgi.
    let r = get_as(&apache, "/group", "latin", "b");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    assert!(
        apache
            .error_log()
            .contains("groups_for_user user=canonical")
    );
    // A bare string is not a list of groups (its letters are not groups).
    assert_eq!(get_as(&apache, "/group", "agent", "007").status, 500);
    assert!(
        apache.error_log().contains("returned a single str"),
        "{}",
        apache.error_log()
    );
}

#[test]
fn wsgi_group_authoritative() {
    let apache = auth_server();
    // Authoritative (the default): not in the group is denied outright.
    assert_eq!(get_as(&apache, "/strict", "spy", "secret").status, 401);
    // Off: no opinion, so the rest of <RequireAll> decides.
    let r = get_as(&apache, "/lenient", "spy", "secret");
    assert_eq!(r.status, 200, "{}", apache.error_log());
}

#[test]
fn wsgi_group_needs_a_name() {
    let t = Apache::builder()
        .directives(&format!(
            "{}<Location /x>\nAuthType Basic\nAuthName x\nRequire wsgi-group\n</Location>\n",
            auth_modules()
        ))
        .config_test();
    assert!(!t.ok, "{}", t.output);
    assert!(t.output.contains("wsgi-group"), "{}", t.output);
}

#[test]
fn digest_auth_provider() {
    let apache = auth_server();
    let curl = |user: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--digest",
                "-u",
                user,
            ])
            .arg(apache.url("/digest"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(curl("spy:secret"), "200", "{}", apache.error_log());
    assert_eq!(curl("spy:wrong"), "401");
    assert_eq!(curl("nobody:x"), "401");
    assert_eq!(curl("boom:x"), "500");
    assert!(
        apache
            .error_log()
            .contains("RuntimeError: digest database down")
    );
}

#[test]
fn auth_directives_are_implemented() {
    let apache = auth_server();
    apache.get("/basic");
    let log = apache.error_log();
    for d in [
        "WSGIAuthUserScript",
        "WSGIAuthGroupScript",
        "WSGIGroupAuthoritative",
    ] {
        assert!(
            !log.contains(&format!("{d} is accepted but not implemented")),
            "{log}"
        );
    }
}

// ------------------------------------------------- WSGIPassApacheRequest

/// Reports what `environ['apache.request_rec']` is, read the way C code
/// would (the unnamed capsule's pointer, then `request_rec.the_request`,
/// the seventh pointer of the struct), and checks from a thread, once the
/// request is over, that the capsule it kept is refused.
const REQUEST_REC_APP: &str = r#"
import ctypes, sys, threading, time
api = ctypes.pythonapi
api.PyCapsule_IsValid.restype = ctypes.c_int
api.PyCapsule_IsValid.argtypes = [ctypes.py_object, ctypes.c_char_p]
api.PyCapsule_GetPointer.restype = ctypes.c_void_p
api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
api.PyCapsule_GetName.restype = ctypes.c_char_p
api.PyCapsule_GetName.argtypes = [ctypes.py_object]

def later(capsule, tag):
    time.sleep(0.5)
    try:
        api.PyCapsule_GetPointer(capsule, None)
        refused = "no"
    except ValueError:
        refused = "yes"
    sys.stderr.write("kept capsule %s: valid=%d refused=%s\n" % (
        tag, api.PyCapsule_IsValid(capsule, None), refused))
    sys.stderr.flush()

def application(environ, start_response):
    capsule = environ.get("apache.request_rec")
    lines = ["present=%s" % ("yes" if capsule is not None else "no")]
    if capsule is not None:
        lines.append("type=%s" % type(capsule).__name__)
        lines.append("valid=%d" % api.PyCapsule_IsValid(capsule, None))
        name = api.PyCapsule_GetName(capsule)
        lines.append("name=%s" % (name.decode() if name else "NULL"))
        pointer = api.PyCapsule_GetPointer(capsule, None)
        the_request = ctypes.cast(pointer, ctypes.POINTER(ctypes.c_char_p))[6]
        lines.append("the_request=%s" % the_request.decode())
        threading.Thread(target=later, args=(capsule, environ["QUERY_STRING"])).start()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode()]
"#;

fn request_rec_server() -> Apache {
    Apache::builder()
        .file("app/req.wsgi", REQUEST_REC_APP)
        .directives(
            "WSGIDaemonProcess reqd threads=2\n\
             WSGIScriptAlias /req {dir}/app/req.wsgi\n\
             <Location /req/on>\n    WSGIPassApacheRequest On\n</Location>\n\
             <Location /req/daemon>\n    WSGIPassApacheRequest On\n    WSGIProcessGroup reqd\n</Location>\n",
        )
        .start()
}

#[test]
fn pass_apache_request_lends_the_request_rec_in_embedded_mode() {
    let apache = request_rec_server();
    let r = apache.get("/req/on/x?tag1");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    let body = r.text();
    assert_eq!(field(&body, "present"), "yes", "{body}");
    assert_eq!(field(&body, "type"), "PyCapsule", "{body}");
    // Unnamed, as mod_wsgi makes it: PyCapsule_GetPointer(capsule, NULL).
    assert_eq!(field(&body, "valid"), "1", "{body}");
    assert_eq!(field(&body, "name"), "NULL", "{body}");
    // Read through the pointer: the request line of this very request.
    assert_eq!(
        field(&body, "the_request"),
        "GET /req/on/x?tag1 HTTP/1.1",
        "{body}"
    );
    // Kept past the request, the capsule no longer gives the pointer.
    assert!(
        apache.wait_for_log(
            "kept capsule tag1: valid=0 refused=yes",
            std::time::Duration::from_secs(10)
        ),
        "{}",
        apache.error_log()
    );
    assert!(
        !apache
            .error_log()
            .contains("WSGIPassApacheRequest is accepted but not implemented"),
        "{}",
        apache.error_log()
    );
}

#[test]
fn pass_apache_request_off_and_in_daemon_mode_leaves_the_key_out() {
    let apache = request_rec_server();
    let body = apache.get("/req/off").text();
    assert_eq!(field(&body, "present"), "no", "{body}");
    for _ in 0..3 {
        let r = apache.get("/req/daemon");
        assert_eq!(r.status, 200, "{}", apache.error_log());
        assert_eq!(field(&r.text(), "present"), "no", "{}", r.text());
    }
    let log = apache.error_log();
    let warning =
        "WSGIPassApacheRequest On has no effect in daemon mode (daemon process group 'reqd')";
    assert!(log.contains(warning), "{log}");
    // Once per Apache child, not per request.
    let children = log.matches(warning).count();
    assert!(
        (1..=apache.pids().len()).contains(&children),
        "{children} warnings:\n{log}"
    );
}

// ---------------------------------------------------------- local redirect

/// Answers by PATH_INFO: a status 200 with a local Location (the CGI
/// internal redirect), with an absolute one, a 302, and a Location to a
/// static file. Each body carries a marker the client must never see when
/// the redirect happens.
const REDIRECT_APP: &str = r#"
def application(environ, start_response):
    path = environ["PATH_INFO"]
    mount = environ["SCRIPT_NAME"]
    target = "/daemon-target" if mount.startswith("/d") else "/target"
    if path == "/local":
        start_response("200 OK", [("Content-Type", "text/x-secret"), ("X-From-A", "1"),
                                  ("Location", target + "/here?q=1")])
        return [b"SECRET-BODY-OF-A ", b"more of A"]
    if path == "/stream":
        # A generator that yields before and after a read of wsgi.input.
        def body():
            yield b"SECRET-BODY-OF-A"
            environ["wsgi.input"].read(10)
            yield b"SECRET-BODY-OF-A again"
        start_response("200 OK", [("Location", target + "/streamed")])
        return body()
    if path == "/static":
        start_response("200 OK", [("Location", "/static.txt")])
        return [b"SECRET-BODY-OF-A"]
    if path == "/absolute":
        start_response("200 OK", [("Location", "http://example.invalid/elsewhere"),
                                  ("Content-Type", "text/plain")])
        return [b"body of A (absolute)"]
    if path == "/protocol-relative":
        start_response("200 OK", [("Location", "//example.invalid/elsewhere"),
                                  ("Content-Type", "text/plain")])
        return [b"body of A (protocol-relative)"]
    if path == "/found":
        start_response("302 Found", [("Location", target + "/here"),
                                     ("Content-Type", "text/plain")])
        return [b"body of A (302)"]
    if path == "/raises":
        def failing():
            yield b"SECRET-BODY-OF-A"
            raise RuntimeError("broken after the head")
        start_response("200 OK", [("Location", target + "/here")])
        return failing()
    if path == "/loop":
        start_response("200 OK", [("Location", mount + "/loop")])
        return [b"SECRET-BODY-OF-A"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such test"]
"#;

/// The page served after the redirect: what its request looks like.
const TARGET_APP: &str = r#"
def application(environ, start_response):
    keys = ["REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_LENGTH",
            "HTTP_TRANSFER_ENCODING", "REDIRECT_URL", "REDIRECT_STATUS", "mod_wsgi.process_group"]
    lines = ["target page"] + ["%s=%s" % (k, environ.get(k, "-")) for k in keys]
    lines.append("body=%d" % len(environ["wsgi.input"].read()))
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Target", "yes")])
    return ["\n".join(lines).encode()]
"#;

fn redirect_server() -> Apache {
    Apache::builder()
        .file("app/redirect.wsgi", REDIRECT_APP)
        .file("app/target.wsgi", TARGET_APP)
        .file("htdocs/static.txt", "static file content\n")
        .directives(
            "WSGIDaemonProcess redir threads=2\n\
             WSGIScriptAlias /target {dir}/app/target.wsgi\n\
             WSGIScriptAlias /daemon-target {dir}/app/target.wsgi process-group=redir\n\
             WSGIScriptAlias /embedded {dir}/app/redirect.wsgi\n\
             WSGIScriptAlias /daemon {dir}/app/redirect.wsgi process-group=redir\n",
        )
        .start()
}

fn check_local_redirects(apache: &Apache, mount: &str, group: &str) {
    let target = if group.is_empty() {
        "/target"
    } else {
        "/daemon-target"
    };
    // 200 + Location: /path -> the client gets the other page, and
    // nothing of A: not its body, not its headers.
    let r = apache.get(&format!("{mount}/local"));
    let body = r.text();
    assert_eq!(r.status, 200, "{mount}: {body}\n{}", apache.error_log());
    assert!(body.starts_with("target page"), "{mount}: {body}");
    assert!(!body.contains("SECRET"), "{mount}: {body}");
    assert_eq!(field(&body, "REQUEST_METHOD"), "GET");
    assert_eq!(field(&body, "PATH_INFO"), "/here");
    assert_eq!(field(&body, "QUERY_STRING"), "q=1");
    assert_eq!(field(&body, "REDIRECT_URL"), format!("{mount}/local"));
    assert_eq!(field(&body, "mod_wsgi.process_group"), group);
    assert_eq!(r.header("X-Target"), Some("yes"));
    assert_eq!(r.header("X-From-A"), None, "{:?}", r.headers);
    assert_eq!(r.header("Location"), None, "{:?}", r.headers);
    assert_eq!(r.header("Content-Type"), Some("text/plain"));

    // A POST becomes a GET without a body; the unread body of the first
    // request does not spill into the next request on the connection.
    let upload = vec![b'x'; 200 * 1024];
    let r = apache.request("POST", &format!("{mount}/stream"), &[], &upload);
    let body = r.text();
    assert_eq!(r.status, 200, "{mount}: {body}\n{}", apache.error_log());
    assert!(!body.contains("SECRET"), "{mount}: {body}");
    assert_eq!(field(&body, "REQUEST_METHOD"), "GET", "{body}");
    assert_eq!(field(&body, "PATH_INFO"), "/streamed", "{body}");
    assert_eq!(field(&body, "CONTENT_LENGTH"), "-", "{body}");
    assert_eq!(field(&body, "body"), "0", "{body}");
    let r = apache.get(&format!("{target}/after"));
    assert_eq!(r.status, 200, "{mount}: {}", apache.error_log());
    assert_eq!(field(&r.text(), "PATH_INFO"), "/after");
    // The same on one raw keep-alive connection, the body never read by
    // the application: the next request behind it is answered as such.
    let small = "y".repeat(5000);
    let raw = format!(
        "POST {mount}/local HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{small}\
         GET {target}/next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        small.len()
    );
    let answer = String::from_utf8_lossy(&apache.raw(raw.as_bytes())).into_owned();
    assert_eq!(
        answer.matches("HTTP/1.1 200 OK").count(),
        2,
        "{mount}: {answer}"
    );
    assert!(answer.contains("PATH_INFO=/here"), "{mount}: {answer}");
    assert!(answer.contains("PATH_INFO=/next"), "{mount}: {answer}");
    assert!(
        !answer.contains("SECRET") && !answer.contains("yyyy"),
        "{answer}"
    );

    // A static file as the target.
    let r = apache.get(&format!("{mount}/static"));
    assert_eq!(r.status, 200, "{mount}: {}", apache.error_log());
    assert_eq!(r.text(), "static file content\n");

    // An absolute URL (or a protocol-relative one) is for the client: the
    // response goes out as the application made it.
    for (path, text) in [
        ("absolute", "body of A (absolute)"),
        ("protocol-relative", "body of A (protocol-relative)"),
    ] {
        let r = apache.get(&format!("{mount}/{path}"));
        assert_eq!(r.status, 200, "{mount}/{path}");
        assert_eq!(r.text(), text, "{mount}/{path}");
        assert!(
            r.header("Location")
                .unwrap_or("")
                .contains("example.invalid/elsewhere")
        );
    }

    // Any other status with Location is passed on as usual.
    let r = apache.get(&format!("{mount}/found"));
    assert_eq!(r.status, 302, "{mount}");
    assert_eq!(r.text(), "body of A (302)");
    assert_eq!(
        r.header("Location"),
        Some(format!("{target}/here").as_str())
    );

    // The application failing while its (discarded) body is produced:
    // an ordinary 500, no redirect, nothing of A.
    let r = apache.get(&format!("{mount}/raises"));
    assert_eq!(r.status, 500, "{mount}: {}", r.text());
    assert!(!r.text().contains("SECRET") && !r.text().contains("target page"));

    // A redirect to itself ends at LimitInternalRecursion with a 500.
    let r = apache.get(&format!("{mount}/loop"));
    assert_eq!(r.status, 500, "{mount}: {}", r.text());
    assert!(!r.text().contains("SECRET"));
}

#[test]
fn local_redirect_in_daemon_mode() {
    let apache = redirect_server();
    check_local_redirects(&apache, "/daemon", "redir");
}

/// Beyond mod_wsgi, which redirects in daemon mode only.
#[test]
fn local_redirect_in_embedded_mode() {
    let apache = redirect_server();
    check_local_redirects(&apache, "/embedded", "");
}

// ------------------------------------------ Python in the Apache children

/// Read by Python when it starts in a process whose sys.path gets this
/// directory (site.addsitedir runs a .pth file's `import` lines): one log
/// line per interpreter started, naming the process. The observable for
/// "Python was initialised in this Apache child".
const PROBE_PTH: &str =
    "import os, sys; sys.stderr.write('python-probe started in pid %d\\n' % os.getpid())\n";

const TO_BACKEND: &str = "def process_group(environ):\n    return 'backend'\n";

/// WSGIRestrictEmbedded On with the probe on WSGIPythonPath (the Apache
/// children's path; the daemon group has a path of its own), a daemon
/// group, `/daemon` mapped to it, `/embedded` mapped to embedded mode, and
/// `extra` directives.
fn restricted_server(extra: &str) -> Apache {
    let mut d = auth_modules();
    d += "WSGIRestrictEmbedded On\n\
          WSGIPythonPath {dir}/childlib\n\
          WSGIDaemonProcess backend threads=2 python-path={dir}/daemonlib\n\
          WSGIScriptAlias /daemon {dir}/app/env.wsgi process-group=backend\n\
          WSGIScriptAlias /embedded {dir}/app/env.wsgi\n\
          WSGIScriptAlias /app {dir}/app/env.wsgi\n";
    d += extra;
    Apache::builder()
        .file("app/env.wsgi", ENV_APP)
        .file("childlib/probe.pth", PROBE_PTH)
        .file("daemonlib/README", "nothing to read here\n")
        .file("hooks/access.wsgi", ACCESS_SCRIPT)
        .file("hooks/auth.wsgi", AUTH_SCRIPT)
        .file("hooks/dispatch.wsgi", TO_BACKEND)
        .directives(&d)
        .start()
}

/// Pids of the probe's lines in the error log.
fn probed_pids(apache: &Apache) -> Vec<u32> {
    apache
        .error_log()
        .lines()
        .filter_map(|l| l.split("python-probe started in pid ").nth(1))
        .filter_map(|pid| pid.trim().parse().ok())
        .collect()
}

#[test]
fn restrict_embedded_still_runs_hook_scripts_in_children() {
    // The dispatch script is what sends /app to the daemon group: without
    // it the request would be for embedded mode, and refused.
    let apache = restricted_server(
        "<Location /app>\n\
         WSGIAccessScript {dir}/hooks/access.wsgi\n\
         AuthType Basic\nAuthName \"Top Secret\"\nAuthBasicProvider wsgi\n\
         WSGIAuthUserScript {dir}/hooks/auth.wsgi\n\
         Require valid-user\n\
         WSGIDispatchScript {dir}/hooks/dispatch.wsgi\n\
         </Location>\n",
    );
    let check = |apache: &Apache| {
        let r = get_as(apache, "/app?allow", "spy", "secret");
        assert_eq!(r.status, 200, "{}", apache.error_log());
        let body = r.text();
        assert_eq!(field(&body, "mod_wsgi.process_group"), "backend");
        assert_eq!(field(&body, "REMOTE_USER"), "spy");
        assert_eq!(get_as(apache, "/app?deny", "spy", "secret").status, 403);
        assert_eq!(apache.get("/app?allow").status, 401);
        assert_eq!(get_as(apache, "/app?allow", "spy", "wrong").status, 401);
    };
    check(&apache);
    let log = apache.error_log();
    assert!(log.contains("access check host=127.0.0.1"), "{log}");
    assert!(log.contains("check_password user=spy group=[]"), "{log}");
    assert!(!log.contains("Python is not running"), "{log}");
    // Python was started in the Apache children (not only in the daemon).
    let daemon_pid: u32 = field(
        &get_as(&apache, "/app?allow", "spy", "secret").text(),
        "pid",
    )
    .parse()
    .unwrap();
    let probed = probed_pids(&apache);
    assert!(
        probed.iter().any(|&p| p != daemon_pid),
        "probe: {probed:?}\n{log}"
    );
    // Embedded mode stays off for applications.
    let r = apache.get("/embedded");
    assert_eq!(r.status, 503);
    assert!(!r.text().contains("REMOTE_ADDR"), "the app must not run");
    assert!(
        apache.wait_for_log(
            "embedded mode is off (WSGIRestrictEmbedded On): this Apache child",
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
    // The next generation decides again, and the same way.
    apache.graceful_restart();
    check(&apache);
}

#[test]
fn restrict_embedded_keeps_python_out_of_children_when_nothing_needs_it() {
    let apache = restricted_server("");
    let r = apache.get("/daemon");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    assert_eq!(field(&r.text(), "mod_wsgi.process_group"), "backend");
    // The child that answered ran child_init before serving: had it
    // started Python, the probe would have logged (as it does in
    // restrict_embedded_still_runs_hook_scripts_in_children).
    let probed = probed_pids(&apache);
    assert!(
        probed.is_empty(),
        "probe: {probed:?}\n{}",
        apache.error_log()
    );
    assert_eq!(apache.get("/embedded").status, 503);
    assert!(
        apache.wait_for_log(
            "Python is not running in this Apache child",
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
}
