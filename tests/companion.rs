//! The companion `mod_wsgi` package (what the PyPI `mod-wsgi` distribution
//! installs next to its C module: `mod_wsgi.express`, `mod_wsgi.server`,
//! ...): as with C mod_wsgi, when it is importable in an interpreter its
//! `__path__` is lent to the built-in `mod_wsgi` module, so its
//! subpackages import while `mod_wsgi.version` and the rest stay ours; one
//! that raises on import is logged with its traceback and the process
//! serves on; none at all is silent.

mod common;
use common::*;
use std::time::Duration;

/// A stand-in for the companion package: a name of its own in
/// `__init__` (which must not show through the built-in module) and a
/// subpackage.
const PACKAGE_INIT: &str = "ONLY_IN_THE_PACKAGE = True\n";
const HELLO: &str = "X = 'hello from the companion'\n";

/// Imports a subpackage of the companion through the built-in module and
/// reports what the built-in module says.
const APP: &str = r#"
import os
import mod_wsgi
from mod_wsgi.extra.hello import X
def application(environ, start_response):
    lines = [
        "x=%s" % X,
        "version=%s" % ".".join(str(v) for v in mod_wsgi.version),
        "process_group=%s" % mod_wsgi.process_group,
        "application_group=%s" % mod_wsgi.application_group,
        "builtin=%s" % callable(getattr(mod_wsgi, "process_metrics", None)),
        "package_name_visible=%s" % hasattr(mod_wsgi, "ONLY_IN_THE_PACKAGE"),
        "path=%s" % list(mod_wsgi.__path__),
        "pid=%d" % os.getpid(),
    ]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode()]
"#;

/// Serves with whatever `mod_wsgi` is: the built-in module must be there.
const PLAIN_APP: &str = r#"
import os
import mod_wsgi
def application(environ, start_response):
    body = "version=%s group=[%s] has_path=%s pid=%d" % (
        ".".join(str(v) for v in mod_wsgi.version), mod_wsgi.process_group,
        hasattr(mod_wsgi, "__path__"), os.getpid())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

#[test]
fn companion_package_lends_its_path_in_every_interpreter() {
    let apache = Apache::builder()
        .file("pylib/mod_wsgi/__init__.py", PACKAGE_INIT)
        .file("pylib/mod_wsgi/extra/__init__.py", "")
        .file("pylib/mod_wsgi/extra/hello.py", HELLO)
        .file("daemonlib/mod_wsgi/__init__.py", PACKAGE_INIT)
        .file("daemonlib/mod_wsgi/extra/__init__.py", "")
        .file("daemonlib/mod_wsgi/extra/hello.py", HELLO)
        .file("app/app.wsgi", APP)
        .directives(
            "WSGIPythonPath {dir}/pylib\n\
             WSGIDaemonProcess companion threads=2 python-path={dir}/daemonlib\n\
             WSGIScriptAlias /main {dir}/app/app.wsgi application-group=%{GLOBAL}\n\
             WSGIScriptAlias /sub {dir}/app/app.wsgi application-group=sub\n\
             WSGIScriptAlias /daemon {dir}/app/app.wsgi process-group=companion application-group=%{GLOBAL}\n\
             WSGIScriptAlias /daemon-sub {dir}/app/app.wsgi process-group=companion application-group=dsub\n",
        )
        .start();
    let cases = [
        ("/main", "", "", "pylib"),
        ("/sub", "", "sub", "pylib"),
        ("/daemon", "companion", "", "daemonlib"),
        ("/daemon-sub", "companion", "dsub", "daemonlib"),
    ];
    for (path, process_group, application_group, lib) in cases {
        let r = apache.get(path);
        assert_eq!(r.status, 200, "{path}: {}", apache.error_log());
        let body = r.text();
        assert_eq!(field(&body, "x"), "hello from the companion", "{path}");
        assert_eq!(field(&body, "version"), version(), "{path}");
        assert_eq!(field(&body, "process_group"), process_group, "{path}");
        assert_eq!(
            field(&body, "application_group"),
            application_group,
            "{path}"
        );
        assert_eq!(field(&body, "builtin"), "True", "{path}");
        // Only __path__ is lent, as C mod_wsgi does.
        assert_eq!(field(&body, "package_name_visible"), "False", "{path}");
        let lent = format!("{}/{lib}/mod_wsgi", apache.dir.display());
        assert_eq!(field(&body, "path"), format!("['{lent}']"), "{path}");
    }
    let log = apache.error_log();
    assert!(!log.contains("companion package failed"), "{log}");
}

#[test]
fn a_companion_package_that_raises_is_logged_and_the_app_served() {
    let apache = Apache::builder()
        .file(
            "broken/mod_wsgi/__init__.py",
            "def _load():\n    raise RuntimeError('companion is broken')\n_load()\n",
        )
        .file("nothing/README", "no mod_wsgi package here\n")
        .file("app/plain.wsgi", PLAIN_APP)
        .directives(
            "WSGIPythonPath {dir}/broken\n\
             WSGIDaemonProcess broken threads=1 python-path={dir}/broken\n\
             WSGIDaemonProcess clean threads=1 python-path={dir}/nothing\n\
             WSGIScriptAlias /main {dir}/app/plain.wsgi application-group=%{GLOBAL}\n\
             WSGIScriptAlias /sub {dir}/app/plain.wsgi application-group=sub\n\
             WSGIScriptAlias /daemon {dir}/app/plain.wsgi process-group=broken\n\
             WSGIScriptAlias /clean {dir}/app/plain.wsgi process-group=clean\n",
        )
        .start();
    let v = version();
    for (path, group) in [
        ("/main", ""),
        ("/sub", ""),
        ("/daemon", "broken"),
        ("/clean", "clean"),
    ] {
        let r = apache.get(path);
        assert_eq!(r.status, 200, "{path}: {}", apache.error_log());
        // The built-in module, without a __path__ to lend.
        assert!(
            r.text()
                .starts_with(&format!("version={v} group=[{group}] has_path=False")),
            "{path}: {}",
            r.text()
        );
    }
    let pid_of = |path: &str| {
        let body = apache.get(path).text();
        body.rsplit("pid=").next().unwrap().to_string()
    };
    let (broken_pid, clean_pid) = (pid_of("/daemon"), pid_of("/clean"));
    for who in [
        "the main interpreter",
        "the sub-interpreter of application group",
    ] {
        let line = format!("importing the mod_wsgi companion package failed in {who}");
        assert!(
            apache.wait_for_log(&line, Duration::from_secs(5)),
            "{line}: {}",
            apache.error_log()
        );
    }
    let log = apache.error_log();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("companion package failed"))
        .collect();
    assert!(
        failures
            .iter()
            .all(|l| l.contains("RuntimeError: companion is broken")),
        "the line names the cause: {log}"
    );
    assert!(log.contains("Traceback (most recent call last):"), "{log}");
    assert!(log.contains("in _load"), "{log}");
    assert!(
        failures
            .iter()
            .any(|l| l.contains(&format!("the main interpreter (pid {broken_pid})"))),
        "the daemon process logs it too: {log}"
    );
    // The daemon group without a package says nothing about it.
    assert!(
        !failures
            .iter()
            .any(|l| l.contains(&format!("(pid {clean_pid})"))),
        "{log}"
    );
}
