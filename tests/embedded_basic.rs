//! The first request path: a .wsgi script served in embedded mode by a real
//! Apache, under each MPM.

mod common;
use common::*;
use std::time::Duration;

const ENV_APP: &str = r#"
import os, json
def application(environ, start_response):
    keys = ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
            "wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess", "mod_wsgi.application_group",
            "HTTP_X_TEST", "CONTENT_LENGTH"]
    data = {k: environ.get(k) for k in keys}
    data["wsgi.version"] = list(environ["wsgi.version"])
    data["pid"] = os.getpid()
    data["body"] = environ["wsgi.input"].read().decode("latin-1")
    body = json.dumps(data).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("X-App", "yes")])
    return [body]
"#;

fn env_server(mpm: Mpm) -> Apache {
    Apache::builder()
        .mpm(mpm)
        .file("app/env.wsgi", ENV_APP)
        .directives("WSGIScriptAlias /env {dir}/app/env.wsgi\n")
        .start()
}

fn json_field(body: &str, key: &str) -> String {
    // The app writes compact JSON with known keys; pull one value as text.
    let needle = format!("\"{key}\": ");
    let start = body
        .find(&needle)
        .unwrap_or_else(|| panic!("{key} missing in {body}"))
        + needle.len();
    let rest = &body[start..];
    let end = rest.find([',', '}']).unwrap();
    rest[..end].trim().trim_matches('"').to_string()
}

#[test]
fn serves_hello_under_every_mpm() {
    for mpm in Mpm::ALL {
        let apache = Apache::builder()
            .mpm(mpm)
            .file(
                "app/hello.wsgi",
                include_str!("../conf-examples/hello.wsgi"),
            )
            .directives("WSGIScriptAlias / {dir}/app/hello.wsgi\n")
            .start();
        let r = apache.get("/");
        assert_eq!(r.status, 200, "{mpm:?}: {}", apache.error_log());
        assert_eq!(r.text(), "Hello, World!");
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
        let server = r.header("Server").unwrap_or("");
        assert!(
            server.contains("mod_wsgi_rs/") && server.contains("Python/3."),
            "banner: {server}"
        );
        // Everything under / is the script, the rest of the URL its PATH_INFO.
        assert_eq!(apache.get("/some/page").text(), "Hello, World!");
        apache.stop();
    }
}

/// Says which Python serves the request.
const WHICH_PYTHON_APP: &str = r#"
import sys
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("version=%d.%d\nbase=%s\n" % (sys.version_info[:2] + (sys.base_prefix,))).encode()]
"#;

/// The banner names the Python the module was built against, and that
/// Python (its own standard library, not the system's) serves the
/// requests in embedded and daemon mode: with `make python-matrix`, each
/// version in turn.
#[test]
fn banner_names_the_python_that_serves() {
    let home = python::home();
    for (mode, directives) in [
        ("embedded", ""),
        (
            "daemon",
            "WSGIDaemonProcess which processes=1 threads=2\nWSGIProcessGroup which\n",
        ),
    ] {
        let apache = Apache::builder()
            .file("app/which.wsgi", WHICH_PYTHON_APP)
            .directives(directives)
            .directives("WSGIScriptAlias /which {dir}/app/which.wsgi\n")
            .start();
        let r = apache.get("/which");
        assert_eq!(r.status, 200, "{mode}: {}", apache.error_log());
        let server = r.header("Server").unwrap_or("").to_string();
        let f = fields(&r.text());
        assert_eq!(f["version"], python::version(), "{mode}: {f:?}");
        assert_eq!(f["base"], home, "{mode}: {f:?}");
        assert!(
            server.contains(&format!(" Python/{} ", python::version()))
                || server.ends_with(&format!(" Python/{}", python::version())),
            "{mode}: banner {server:?} does not name Python/{}",
            python::version()
        );
        apache.stop();
    }
}

/// The module finds its libpython without LD_LIBRARY_PATH: a RUNPATH to the
/// directory of a Python outside the loader's path (the copies `make
/// python-matrix` makes), none for the system's.
#[test]
fn module_records_the_runpath_of_its_python() {
    let module = module_path();
    let out = std::process::Command::new("readelf")
        .arg("-d")
        .arg(&module)
        .output()
        .expect("readelf (binutils)");
    let dynamic = String::from_utf8_lossy(&out.stdout);
    let runpath: Vec<&str> = dynamic
        .lines()
        .filter(|l| l.contains("(RUNPATH)") || l.contains("(RPATH)"))
        .collect();
    if python::is_other() {
        let libdir = format!("[{}/lib]", python::home());
        assert!(
            runpath
                .iter()
                .any(|l| l.contains("(RUNPATH)") && l.contains(&libdir)),
            "{} should have RUNPATH {libdir}: {runpath:?}",
            module.display()
        );
    } else {
        assert!(
            runpath.is_empty(),
            "the system's Python needs no RUNPATH (a module built against another: \
             set MOD_WSGI_RS_PYTHON to its interpreter): {runpath:?}"
        );
    }
}

#[test]
fn environ_has_cgi_and_wsgi_keys() {
    for mpm in Mpm::ALL {
        let apache = env_server(mpm);
        let r = apache.request("POST", "/env/a/b?x=1&y=2", &[("X-Test", "hi")], b"payload");
        assert_eq!(r.status, 200, "{}", apache.error_log());
        let body = r.text();
        assert_eq!(json_field(&body, "REQUEST_METHOD"), "POST");
        assert_eq!(json_field(&body, "SCRIPT_NAME"), "/env");
        assert_eq!(json_field(&body, "PATH_INFO"), "/a/b");
        assert_eq!(json_field(&body, "QUERY_STRING"), "x=1&y=2");
        assert_eq!(json_field(&body, "HTTP_X_TEST"), "hi");
        assert_eq!(json_field(&body, "CONTENT_LENGTH"), "7");
        assert_eq!(json_field(&body, "body"), "payload");
        assert_eq!(json_field(&body, "wsgi.url_scheme"), "http");
        assert_eq!(json_field(&body, "wsgi.multiprocess"), "true");
        let threaded = if mpm == Mpm::Prefork { "false" } else { "true" };
        assert_eq!(json_field(&body, "wsgi.multithread"), threaded, "{mpm:?}");
        assert!(body.contains("\"wsgi.version\": [1, 0]"), "{body}");
        assert_eq!(r.header("X-App"), Some("yes"));
        // The app runs inside an Apache child, not the parent.
        let pid: u32 = json_field(&body, "pid").parse().unwrap();
        assert_ne!(pid, apache.parent_pid());
        assert!(
            apache.pids().contains(&pid),
            "pid {pid} is not one of Apache's"
        );
    }
}

#[test]
fn root_mount_gives_empty_script_name() {
    let apache = Apache::builder()
        .file("app/env.wsgi", ENV_APP)
        .directives("WSGIScriptAlias / {dir}/app/env.wsgi\n")
        .start();
    let r = apache.get("/");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    assert_eq!(json_field(&r.text(), "SCRIPT_NAME"), "");
    assert_eq!(json_field(&r.text(), "PATH_INFO"), "/");
    let r = apache.get("/deep/path");
    assert_eq!(json_field(&r.text(), "SCRIPT_NAME"), "");
    assert_eq!(json_field(&r.text(), "PATH_INFO"), "/deep/path");
}

#[test]
fn alias_for_static_files_wins_over_root_script_alias() {
    let apache = Apache::builder()
        .file(
            "app/hello.wsgi",
            include_str!("../conf-examples/hello.wsgi"),
        )
        .file("static/style.css", "body{}")
        .directives("Alias /static {dir}/static\nWSGIScriptAlias / {dir}/app/hello.wsgi\n")
        .start();
    assert_eq!(apache.get("/static/style.css").text(), "body{}");
    assert_eq!(apache.get("/anything").text(), "Hello, World!");
}

#[test]
fn script_alias_match_substitutes_groups() {
    let app = "def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [__file__.encode()]\n";
    let apache = Apache::builder()
        .file("apps/one.wsgi", app)
        .file("apps/two.wsgi", app)
        .directives("WSGIScriptAliasMatch ^/site/([^/]+) {dir}/apps/$1.wsgi\n")
        .start();
    let one = apache.get("/site/one/page");
    assert_eq!(one.status, 200, "{}", apache.error_log());
    assert!(one.text().ends_with("/apps/one.wsgi"), "{}", one.text());
    assert!(apache.get("/site/two").text().ends_with("/apps/two.wsgi"));
    assert_eq!(apache.get("/site/three").status, 404);
}

/// The expression is Apache's (PCRE, as mod_wsgi compiles it), not another
/// engine's: look-ahead, a back-reference and a PCRE class work.
#[test]
fn script_alias_match_uses_apaches_regular_expressions() {
    let app = "def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [('%s|%s|%s' % (__file__.rsplit('/', 1)[1], environ['SCRIPT_NAME'], environ['PATH_INFO'])).encode()]\n";
    let apache = Apache::builder()
        .file("apps/one.wsgi", app)
        .file("apps/two.wsgi", app)
        .directives(
            "WSGIScriptAliasMatch ^/(?!private)([[:alpha:]]+)/(\\d+)/\\2 {dir}/apps/$1.wsgi\n",
        )
        .start();
    let r = apache.get("/one/42/42/rest");
    assert_eq!(r.status, 200, "{}", apache.error_log());
    assert_eq!(r.text(), "one.wsgi|/one/42/42|/rest");
    assert_eq!(apache.get("/two/7/7").text(), "two.wsgi|/two/7/7|");
    // The back-reference must repeat the number; the look-ahead keeps
    // /private... out.
    assert_eq!(apache.get("/one/42/43").status, 404);
    assert_eq!(apache.get("/privateone/1/1").status, 404);
}

#[test]
fn callable_object_option_and_directive() {
    let app = "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'custom']\n\ndef other(environ, start_response):\n    start_response('200 OK', [])\n    return [b'other']\n";
    let apache = Apache::builder()
        .file("app/c.wsgi", app)
        .directives(
            "WSGIScriptAlias /a {dir}/app/c.wsgi callable-object=app\n\
             WSGIScriptAlias /b {dir}/app/c.wsgi\n\
             <Location /b>\n  WSGICallableObject other\n</Location>\n\
             WSGIScriptAlias /c {dir}/app/c.wsgi\n\
             WSGIDaemonProcess d threads=1\n\
             WSGIScriptAlias /d {dir}/app/c.wsgi process-group=d\n",
        )
        .start();
    assert_eq!(apache.get("/a").text(), "custom");
    assert_eq!(apache.get("/b").text(), "other");
    // No such callable: 404 as with mod_wsgi, in both modes.
    for path in ["/c", "/d"] {
        assert_eq!(
            apache.get(path).status,
            404,
            "{path}: {}",
            apache.error_log()
        );
    }
    assert!(apache.wait_for_log(
        "does not contain WSGI application 'application'",
        Duration::from_secs(5)
    ));
}

#[test]
fn exception_is_500_with_traceback_in_log() {
    let app =
        "def application(environ, start_response):\n    raise ValueError('boom from the app')\n";
    let apache = Apache::builder()
        .file("app/bad.wsgi", app)
        .directives("WSGIScriptAlias /bad {dir}/app/bad.wsgi\n")
        .start();
    let r = apache.get("/bad");
    assert_eq!(r.status, 500);
    assert!(
        !r.text().contains("boom"),
        "the traceback must not reach the client"
    );
    assert!(
        apache.wait_for_log("ValueError: boom from the app", Duration::from_secs(5)),
        "{}",
        apache.error_log()
    );
    assert!(
        apache
            .error_log()
            .contains("ValueError exception raised processing WSGI script")
    );
    // The child survived: the next request is served normally.
    assert_eq!(apache.get("/bad").status, 500);
}

#[test]
fn invalid_status_and_header_are_500_and_never_reach_client() {
    let app = r#"
def application(environ, start_response):
    kind = environ["PATH_INFO"]
    if kind == "/status":
        start_response("OK", [])
    elif kind == "/crlf":
        start_response("200 OK", [("X-Evil", "a\r\nSet-Cookie: x=1")])
    elif kind == "/hop":
        start_response("200 OK", [("Connection", "close")])
    elif kind == "/str":
        start_response("200 OK", [])
        return ["not bytes"]
    return [b"x"]
"#;
    let apache = Apache::builder()
        .file("app/v.wsgi", app)
        .directives("WSGIScriptAlias /v {dir}/app/v.wsgi\n")
        .start();
    for path in ["/v/status", "/v/crlf", "/v/hop", "/v/str"] {
        let r = apache.get(path);
        assert_eq!(r.status, 500, "{path}");
        assert!(r.header("X-Evil").is_none() && r.header("Set-Cookie").is_none());
    }
    let log = apache.error_log();
    assert!(
        log.contains("status code must be a 3 digit integer"),
        "{log}"
    );
    assert!(
        log.contains("carriage return/line feed character in header value"),
        "{log}"
    );
    assert!(log.contains("hop-by-hop"), "{log}");
    assert!(
        log.contains("TypeError: response iterable must yield bytes, not str"),
        "{log}"
    );
}

#[test]
fn missing_script_is_404_with_log_line() {
    let apache = Apache::builder()
        .directives("WSGIScriptAlias /gone {dir}/app/gone.wsgi\n")
        .start();
    assert_eq!(apache.get("/gone").status, 404);
    assert!(apache.wait_for_log("Target WSGI script not found", Duration::from_secs(5)));
}

#[test]
fn not_yet_directives_warn_at_startup() {
    let apache = Apache::builder()
        .file(
            "app/hello.wsgi",
            include_str!("../conf-examples/hello.wsgi"),
        )
        .directives(
            "WSGIPerInterpreterGIL On\nWSGIScriptAlias / {dir}/app/hello.wsgi\nWSGIPerInterpreterGIL Off\n",
        )
        .start();
    assert_eq!(apache.get("/").text(), "Hello, World!");
    let log = apache.error_log();
    assert!(
        log.contains("WSGIPerInterpreterGIL is accepted but not implemented yet"),
        "{log}"
    );
    assert_eq!(
        log.matches("WSGIPerInterpreterGIL is accepted but not implemented yet")
            .count(),
        1,
        "{log}"
    );
}

#[test]
fn python_path_directive_extends_sys_path() {
    let app = "import helper_mod\ndef application(environ, start_response):\n    start_response('200 OK', [])\n    return [helper_mod.VALUE]\n";
    let apache = Apache::builder()
        .file("app/p.wsgi", app)
        .file("lib/helper_mod.py", "VALUE = b'from helper'\n")
        .directives("WSGIPythonPath {dir}/lib\nWSGIScriptAlias /p {dir}/app/p.wsgi\n")
        .start();
    let r = apache.get("/p");
    assert_eq!(r.text(), "from helper", "{}", apache.error_log());
}

const AUTH_APP: &str = "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [repr(environ.get('HTTP_AUTHORIZATION')).encode()]\n";

#[test]
fn authorization_hidden_unless_passed() {
    let apache = Apache::builder()
        .file("app/a.wsgi", AUTH_APP)
        .directives(
            "WSGIScriptAlias /hidden {dir}/app/a.wsgi\n\
             WSGIScriptAlias /option {dir}/app/a.wsgi pass-authorization=On\n\
             WSGIScriptAlias /dir {dir}/app/a.wsgi\n\
             <Location /dir>\n  WSGIPassAuthorization On\n</Location>\n",
        )
        .start();
    let auth = [("Authorization", "Basic dXNlcjpwdw==")];
    assert_eq!(apache.request("GET", "/hidden", &auth, b"").text(), "None");
    assert_eq!(
        apache.request("GET", "/option", &auth, b"").text(),
        "'Basic dXNlcjpwdw=='"
    );
    assert_eq!(
        apache.request("GET", "/dir", &auth, b"").text(),
        "'Basic dXNlcjpwdw=='"
    );
}

#[test]
fn headers_with_underscores_are_not_passed() {
    let app = "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [repr(sorted(k for k in environ if k.startswith('HTTP_X'))).encode()]\n";
    let apache = Apache::builder()
        .file("app/h.wsgi", app)
        .directives("WSGIScriptAlias /h {dir}/app/h.wsgi\n")
        .start();
    let r = apache.request("GET", "/h", &[("X-Good", "1"), ("X_Spoof", "1")], b"");
    assert_eq!(r.text(), "['HTTP_X_GOOD']");
}

#[test]
fn chunked_request_body_needs_directive() {
    let app = "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [environ['wsgi.input'].read()]\n";
    let chunked = b"POST /PATH HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let apache = Apache::builder()
        .file("app/c.wsgi", app)
        .directives(
            "WSGIScriptAlias /off {dir}/app/c.wsgi\n\
             WSGIScriptAlias /on {dir}/app/c.wsgi\n\
             <Location /on>\n  WSGIChunkedRequest On\n</Location>\n",
        )
        .start();
    let on = String::from_utf8_lossy(&apache.raw(&chunked.replace_path("/on"))).into_owned();
    assert!(on.starts_with("HTTP/1.1 200"), "{on}");
    assert!(
        on.ends_with("hello world")
            || on.contains("\r\n\r\nhello world")
            || on.contains("hello world"),
        "{on}"
    );
    let off = String::from_utf8_lossy(&apache.raw(&chunked.replace_path("/off"))).into_owned();
    assert!(off.starts_with("HTTP/1.1 411"), "{off}");
}

trait ReplacePath {
    fn replace_path(&self, path: &str) -> Vec<u8>;
}
impl ReplacePath for [u8] {
    fn replace_path(&self, path: &str) -> Vec<u8> {
        String::from_utf8_lossy(self)
            .replacen("/PATH", path, 1)
            .into_bytes()
    }
}

#[test]
fn changed_script_is_reloaded() {
    let v1 = "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'version 1']\n";
    let v2 = "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'version 2']\n";
    // One child, so every request meets the same interpreter.
    let apache = Apache::builder()
        .mpm(Mpm::Prefork)
        .file("app/r.wsgi", v1)
        .file("app/n.wsgi", v1)
        .directives(
            "StartServers 1\nMinSpareServers 1\nMaxSpareServers 1\nMaxRequestWorkers 1\n\
             WSGIScriptAlias /r {dir}/app/r.wsgi\n\
             WSGIScriptAlias /n {dir}/app/n.wsgi\n\
             <Location /n>\n  WSGIScriptReloading Off\n</Location>\n",
        )
        .start();
    assert_eq!(apache.get("/r").text(), "version 1");
    assert_eq!(apache.get("/n").text(), "version 1");
    // A different mtime (set explicitly: same-second writes would not show).
    for name in ["r", "n"] {
        let path = apache.dir.join(format!("app/{name}.wsgi"));
        std::fs::write(&path, v2).unwrap();
        let later = std::time::SystemTime::now() + Duration::from_secs(10);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
    }
    assert_eq!(apache.get("/r").text(), "version 2");
    assert_eq!(
        apache.get("/n").text(),
        "version 1",
        "WSGIScriptReloading Off keeps the loaded script"
    );
}

#[test]
fn restrict_embedded_keeps_python_out_of_children() {
    let apache = Apache::builder()
        .file(
            "app/hello.wsgi",
            include_str!("../conf-examples/hello.wsgi"),
        )
        .directives("WSGIRestrictEmbedded On\nWSGIScriptAlias / {dir}/app/hello.wsgi\n")
        .start();
    let r = apache.get("/");
    assert_eq!(r.status, 503);
    // The child that took the request reports Python is not running in it.
    assert!(
        apache.wait_for_log(
            "Python is not running in this Apache child",
            Duration::from_secs(5)
        ),
        "{}",
        apache.error_log()
    );
}
