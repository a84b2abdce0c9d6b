//! WSGIHandlerScript (a named handler for SetHandler / AddHandler) and
//! WSGIDispatchScript (a script choosing process group, application group
//! and callable per request), against a real Apache.

mod common;
use common::*;

/// A handler script: reports what it was called with and the content of
/// the file Apache matched. `application` is there to show that the
/// handler's callable is handle_request, whatever WSGICallableObject says.
const HANDLER: &str = r#"
import os
KEYS = ["SCRIPT_FILENAME", "SCRIPT_NAME", "PATH_INFO", "mod_wsgi.handler_script",
        "mod_wsgi.process_group", "mod_wsgi.application_group",
        "mod_wsgi.request_handler"]
def handle_request(environ, start_response):
    lines = ["%s=%s" % (k, environ.get(k, "-")) for k in KEYS]
    if os.path.exists(environ["SCRIPT_FILENAME"]):
        with open(environ["SCRIPT_FILENAME"]) as f:
            lines.append("content=%s" % f.read().strip())
    else:
        lines.append("content=-")
    lines.append("pid=%d" % os.getpid())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode()]
def application(environ, start_response):
    start_response("500 Wrong Callable", [("Content-Type", "text/plain")])
    return [b"application() must not be called for a handler script"]
"#;

/// A WSGI app reporting where it ran.
const ENV_APP: &str = r#"
import os
def report(environ, start_response, name):
    lines = ["callable=%s" % name, "pid=%d" % os.getpid()]
    for k in ["mod_wsgi.process_group", "mod_wsgi.application_group",
              "mod_wsgi.callable_object", "PATH_INFO"]:
        lines.append("%s=%s" % (k, environ.get(k, "-")))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode()]
def application(environ, start_response):
    return report(environ, start_response, "application")
def other(environ, start_response):
    return report(environ, start_response, "other")
"#;

/// Routes by PATH_INFO; anything else keeps the configuration's choice.
const DISPATCH: &str = r#"
def process_group(environ):
    path = environ["PATH_INFO"]
    if path.startswith("/one"):
        return "one"
    if path.startswith("/two"):
        return "two"
    return None
def application_group(environ):
    path = environ["PATH_INFO"]
    if path.startswith("/named"):
        return "named-group"
    if path.startswith("/global") or path.startswith("/one"):
        return "%{GLOBAL}"
    return None
def callable_object(environ):
    if environ["PATH_INFO"].startswith("/other"):
        return "other"
    return None
"#;

#[test]
fn handler_script_with_set_handler_in_location() {
    let apache = Apache::builder()
        .file("handlers/show.py", HANDLER)
        .file("htdocs/files/a.txt", "alpha\n")
        .file("htdocs/plain/b.txt", "beta\n")
        .directives(
            "WSGICallableObject application\n\
             WSGIHandlerScript show {dir}/handlers/show.py application-group=%{GLOBAL}\n\
             <Location /files>\n\
             SetHandler show\n\
             </Location>\n",
        )
        .start();
    let dir = apache.dir.display().to_string();
    let body = ok_body(&apache, "/files/a.txt");
    assert_eq!(field(&body, "content"), "alpha");
    assert_eq!(
        field(&body, "SCRIPT_FILENAME"),
        format!("{dir}/htdocs/files/a.txt")
    );
    assert_eq!(field(&body, "SCRIPT_NAME"), "/files/a.txt");
    assert_eq!(
        field(&body, "mod_wsgi.handler_script"),
        format!("{dir}/handlers/show.py")
    );
    assert_eq!(field(&body, "mod_wsgi.request_handler"), "show");
    assert_eq!(field(&body, "mod_wsgi.process_group"), "");
    assert_eq!(field(&body, "mod_wsgi.application_group"), "");
    // A URL with no file behind it still reaches the handler script, as
    // with mod_wsgi (mod_wsgi-express sends every unmatched URL to one).
    let body = ok_body(&apache, "/files/missing.txt");
    assert_eq!(field(&body, "content"), "-");
    assert_eq!(
        field(&body, "SCRIPT_FILENAME"),
        format!("{dir}/htdocs/files/missing.txt")
    );
    // Outside the location the file is Apache's as usual.
    let r = apache.get("/plain/b.txt");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "beta\n");
}

#[test]
fn handler_script_with_add_handler_by_extension() {
    let apache = Apache::builder()
        .file("handlers/show.py", HANDLER)
        .file("htdocs/docs/page.md", "markdown here\n")
        .file("htdocs/docs/page.txt", "text here\n")
        .directives(
            "<Directory {dir}/htdocs/docs>\n\
             WSGIHandlerScript markdown {dir}/handlers/show.py\n\
             AddHandler markdown .md\n\
             </Directory>\n\
             <Directory {dir}/htdocs/other>\n\
             AddHandler markdown .md\n\
             </Directory>\n",
        )
        .file("htdocs/other/page.md", "unregistered\n")
        .start();
    let dir = apache.dir.display().to_string();
    let body = ok_body(&apache, "/docs/page.md");
    assert_eq!(field(&body, "content"), "markdown here");
    assert_eq!(
        field(&body, "SCRIPT_FILENAME"),
        format!("{dir}/htdocs/docs/page.md")
    );
    // The default application group, %{RESOURCE}, names the file's URL.
    assert_eq!(
        field(&body, "mod_wsgi.application_group"),
        format!("127.0.0.1:{}|/docs/page.md", apache.port)
    );
    let r = apache.get("/docs/page.txt");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "text here\n");
    // Where no WSGIHandlerScript registers the name it is not ours: Apache
    // serves the file itself.
    let r = apache.get("/other/page.md");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "unregistered\n");
}

#[test]
fn handler_script_in_daemon_process_group() {
    let apache = Apache::builder()
        .file("handlers/show.py", HANDLER)
        .file("htdocs/docs/page.md", "from the daemon\n")
        .directives(
            "WSGIDaemonProcess hgroup threads=2\n\
             WSGIHandlerScript markdown {dir}/handlers/show.py process-group=hgroup application-group=%{GLOBAL}\n\
             AddHandler markdown .md\n",
        )
        .start();
    let dir = apache.dir.display().to_string();
    let body = ok_body(&apache, "/docs/page.md");
    assert_eq!(field(&body, "mod_wsgi.process_group"), "hgroup");
    assert_eq!(field(&body, "content"), "from the daemon");
    assert_eq!(
        field(&body, "SCRIPT_FILENAME"),
        format!("{dir}/htdocs/docs/page.md")
    );
    assert_eq!(
        field(&body, "mod_wsgi.handler_script"),
        format!("{dir}/handlers/show.py")
    );
}

fn dispatch_server() -> Apache {
    Apache::builder()
        .file("app/env.wsgi", ENV_APP)
        .file("dispatch.py", DISPATCH)
        .directives(
            "WSGIDaemonProcess one threads=1\n\
             WSGIDaemonProcess two threads=1\n\
             WSGIScriptAlias /app {dir}/app/env.wsgi\n\
             WSGIDispatchScript {dir}/dispatch.py\n",
        )
        .start()
}

#[test]
fn dispatch_script_routes_to_two_daemon_groups() {
    let apache = dispatch_server();
    let one = ok_body(&apache, "/app/one");
    let two = ok_body(&apache, "/app/two");
    let plain = ok_body(&apache, "/app/plain");
    assert_eq!(field(&one, "mod_wsgi.process_group"), "one");
    assert_eq!(field(&two, "mod_wsgi.process_group"), "two");
    assert_eq!(field(&plain, "mod_wsgi.process_group"), "");
    let pids: Vec<String> = [&one, &two, &plain]
        .iter()
        .map(|b| field(b, "pid"))
        .collect();
    assert_ne!(pids[0], pids[1], "both groups answered from one process");
    assert_ne!(pids[0], pids[2]);
    assert_ne!(pids[1], pids[2]);
    // A daemon group gets the application group the script chose.
    assert_eq!(field(&one, "mod_wsgi.application_group"), "");
    assert_eq!(
        field(&two, "mod_wsgi.application_group"),
        format!("127.0.0.1:{}|/app", apache.port)
    );
}

#[test]
fn dispatch_script_changes_application_group_and_callable() {
    let apache = dispatch_server();
    let named = ok_body(&apache, "/app/named");
    assert_eq!(field(&named, "mod_wsgi.application_group"), "named-group");
    assert_eq!(field(&named, "callable"), "application");
    let global = ok_body(&apache, "/app/global");
    assert_eq!(field(&global, "mod_wsgi.application_group"), "");
    let default = ok_body(&apache, "/app/plain");
    assert_eq!(
        field(&default, "mod_wsgi.application_group"),
        format!("127.0.0.1:{}|/app", apache.port)
    );
    let other = ok_body(&apache, "/app/other");
    assert_eq!(field(&other, "callable"), "other");
    assert_eq!(field(&other, "mod_wsgi.callable_object"), "other");
}

#[test]
fn dispatch_script_errors_are_500_with_traceback() {
    let apache = Apache::builder()
        .file("app/env.wsgi", ENV_APP)
        .file(
            "raises.py",
            "def process_group(environ):\n    raise RuntimeError('dispatch exploded')\n",
        )
        .file(
            "number.py",
            "def application_group(environ):\n    return 42\n",
        )
        .directives(
            "WSGIScriptAlias /raises {dir}/app/env.wsgi\n\
             WSGIScriptAlias /number {dir}/app/env.wsgi\n\
             WSGIScriptAlias /fine {dir}/app/env.wsgi\n\
             <Location /raises>\n\
             WSGIDispatchScript {dir}/raises.py\n\
             </Location>\n\
             <Location /number>\n\
             WSGIDispatchScript {dir}/number.py application-group=%{GLOBAL}\n\
             </Location>\n",
        )
        .start();
    let r = apache.get("/raises");
    assert_eq!(r.status, 500);
    assert!(!r.text().contains("callable="), "the app must not run");
    let log = apache.error_log();
    assert!(log.contains("WSGIDispatchScript"), "{log}");
    assert!(log.contains("RuntimeError: dispatch exploded"), "{log}");
    assert!(log.contains("Traceback"), "{log}");
    let r = apache.get("/number");
    assert_eq!(r.status, 500);
    let log = apache.error_log();
    assert!(
        log.contains("application_group() returned a value of type int"),
        "{log}"
    );
    // Locations without a dispatch script are unaffected.
    let body = ok_body(&apache, "/fine");
    assert_eq!(field(&body, "callable"), "application");
}

/// Answers the status named by the path ("/e/404" -> 404) with its own body.
const STATUS_APP: &str = r#"
def application(environ, start_response):
    code = environ["PATH_INFO"].strip("/") or "200"
    start_response(code + " Whatever", [("Content-Type", "text/plain"), ("X-App", "yes")])
    return [b"body from the application"]
"#;

#[test]
fn error_override_lets_error_document_replace_daemon_errors() {
    let apache = Apache::builder()
        .file("app/status.wsgi", STATUS_APP)
        .directives(
            "WSGIDaemonProcess g threads=2\n\
             ErrorDocument 404 \"custom not found\"\n\
             ErrorDocument 500 \"custom failure\"\n\
             WSGIScriptAlias /over {dir}/app/status.wsgi process-group=g\n\
             WSGIScriptAlias /plain {dir}/app/status.wsgi process-group=g\n\
             <Location /over>\n\
             WSGIErrorOverride On\n\
             </Location>\n",
        )
        .start();
    let r = apache.get("/over/404");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.text().trim(),
        "custom not found",
        "{}",
        apache.error_log()
    );
    assert_eq!(
        r.header("X-App"),
        None,
        "the application's headers are dropped"
    );
    let r = apache.get("/over/500");
    assert_eq!(r.status, 500);
    assert_eq!(r.text().trim(), "custom failure");
    // Success statuses pass through untouched.
    let r = apache.get("/over/200");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "body from the application");
    let r = apache.get("/over/302");
    assert_eq!(r.status, 302);
    // Without WSGIErrorOverride the application's own error body is sent.
    let r = apache.get("/plain/404");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "body from the application");
    assert_eq!(r.header("X-App"), Some("yes"));
    // The daemon stays usable after a discarded body.
    let r = apache.get("/over/200");
    assert_eq!(r.status, 200);
}

/// `AddHandler wsgi-script` outside a WSGIScriptAlias runs a script only
/// where `Options ExecCGI` is on, as mod_wsgi. (A directory is refused
/// too, but mod_dir redirects such URLs before any handler runs.)
#[test]
fn wsgi_script_handler_needs_exec_cgi() {
    let app = "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ran']\n";
    let apache = Apache::builder()
        .file("htdocs/cgi/app.wsgi", app)
        .file("htdocs/plain/app.wsgi", app)
        .directives(
            "AddHandler wsgi-script .wsgi\n\
             <Directory {dir}/htdocs/cgi>\n  Options +ExecCGI\n</Directory>\n\
             <Directory {dir}/htdocs/plain>\n  Options -ExecCGI\n</Directory>\n",
        )
        .start();
    assert_eq!(ok_body(&apache, "/cgi/app.wsgi"), "ran");
    assert_eq!(apache.get("/plain/app.wsgi").status, 403);
    assert!(
        apache
            .error_log()
            .contains("Options ExecCGI is off in this directory"),
        "{}",
        apache.error_log()
    );
    assert_eq!(apache.get("/cgi/gone.wsgi").status, 404);
}
