//! Differential test: the same environ-dumping application, the same
//! configuration and the same requests under C mod_wsgi (Debian's
//! libapache2-mod-wsgi-py3, 4.9.4) and under mod_wsgi_rs, in embedded mode
//! and in daemon mode. The environs must match key for key; the few keys
//! whose values cannot match (times, pids, versions, object types) are
//! compared by shape, and docs/environ-differences.md says why for each.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;

/// C mod_wsgi as Debian installs it (`make deps` installs the package).
const C_MOD_WSGI: &str = "/usr/lib/apache2/modules/mod_wsgi.so";

const APP: &str = include_str!("apps/environ_dump.wsgi");

const CONFIG: &str = "\
WSGIChunkedRequest On
SetEnv DIFF_TEST_VAR set-by-apache
<Location /app/auth>
    WSGIPassAuthorization On
</Location>
<Location /app/https>
    SetEnv HTTPS on
</Location>
WSGIScriptAlias /app {dir}/app/dump.wsgi
WSGIScriptAlias / {dir}/app/dump.wsgi
";

const DAEMON: &str = "WSGIDaemonProcess diff threads=4\nWSGIProcessGroup diff\n";

#[derive(Clone, Copy, Debug)]
enum Server {
    C,
    Rust,
}

fn start(server: Server, mpm: Mpm, extra: &str) -> Apache {
    let builder = Apache::builder().mpm(mpm).file("app/dump.wsgi", APP);
    let builder = match server {
        Server::C => builder
            .with_module(false)
            .directives(&format!("LoadModule wsgi_module {C_MOD_WSGI}")),
        Server::Rust => builder,
    };
    builder.directives(extra).directives(CONFIG).start()
}

/// One environ: key -> (type name, repr), with the server's temp dir and
/// port replaced by placeholders so two servers can be compared.
type Environ = BTreeMap<String, (String, String)>;

fn parse_dump(apache: &Apache, text: &str) -> Environ {
    let dir = apache.dir.display().to_string();
    let port = apache.port.to_string();
    text.lines()
        .map(|line| {
            let mut f = line.splitn(3, '\t');
            let key = f.next().unwrap().to_string();
            let ty = f.next().unwrap_or_else(|| panic!("bad line {line:?}"));
            let value = f.next().unwrap_or_default();
            let value = value.replace(&dir, "{dir}").replace(&port, "{port}");
            (key, (ty.to_string(), value))
        })
        .collect()
}

/// The requests both servers answer; each gives one environ.
fn requests(apache: &Apache) -> Vec<(&'static str, Environ)> {
    let mut out = Vec::new();
    let mut get =
        |label: &'static str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]| {
            let r = apache.request(method, path, headers, body);
            assert_eq!(r.status, 200, "{label}: {}", apache.error_log());
            out.push((label, parse_dump(apache, &r.text())));
        };
    get(
        "post with query and headers",
        "POST",
        "/app/x/y?q=1&r=%20s",
        &[
            ("X-Foo", "bar"),
            ("X_Under", "dropped by both"),
            ("Cookie", "a=1; b=2"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"abc=1",
    );
    get("root mount", "GET", "/", &[], b"");
    get("script without path info", "GET", "/app", &[], b"");
    get("double slashes", "GET", "/app//a//b", &[], b"");
    get(
        "authorization passed",
        "GET",
        "/app/auth/p",
        &[("Authorization", "Basic dXNlcjpwdw==")],
        b"",
    );
    get(
        "authorization not passed",
        "GET",
        "/app/p",
        &[("Authorization", "Basic dXNlcjpwdw==")],
        b"",
    );
    get("HTTPS set by SetEnv", "GET", "/app/https/p", &[], b"");
    let chunked = b"POST /app/chunked HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\
        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    let raw = apache.raw(chunked);
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "chunked: {text}");
    let body_start = text.find("\r\n\r\n").unwrap() + 4;
    // The dump is sent chunked or with a length; take the lines with a tab.
    let dump: Vec<&str> = text[body_start..]
        .lines()
        .filter(|l| l.contains('\t'))
        .collect();
    out.push(("chunked request body", parse_dump(apache, &dump.join("\n"))));
    out
}

fn digits(v: &str) -> Option<u64> {
    v.trim_matches('\'').parse().ok()
}

/// A time in APR microseconds, as a str: 16 digits.
fn is_usec_time(ty: &str, v: &str) -> bool {
    ty == "str" && v.trim_matches('\'').len() == 16 && digits(v).is_some()
}

/// `(a, b, c)` of ints.
fn int_triple(ty: &str, v: &str) -> Option<(u64, u64, u64)> {
    if ty != "tuple" {
        return None;
    }
    let parts: Vec<u64> = v
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(|p| p.trim().parse().ok())
        .collect::<Option<_>>()?;
    match parts[..] {
        [a, b, c] => Some((a, b, c)),
        _ => None,
    }
}

/// SERVER_SOFTWARE without the module's own banner component.
fn without_module_banner(v: &str) -> String {
    v.split(' ')
        .filter(|w| !w.starts_with("mod_wsgi"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Compares one key; Err says how the two differ.
fn compare(key: &str, c: &(String, String), ours: &(String, String)) -> Result<(), String> {
    let ((cty, cv), (ty, v)) = (c, ours);
    let ok = match key {
        // Different on every request, or per process/thread: shape only.
        "REMOTE_PORT" => ty == "str" && digits(v).is_some(),
        "mod_wsgi.request_id" => ty == "str" && v.len() > 2,
        "mod_wsgi.request_start"
        | "mod_wsgi.script_start"
        | "mod_wsgi.queue_start"
        | "mod_wsgi.daemon_start" => is_usec_time(ty, v),
        "mod_wsgi.thread_id" => ty == "int" && digits(v).is_some_and(|n| n >= 1),
        "mod_wsgi.thread_requests" | "mod_wsgi.total_requests" => {
            ty == "int" && digits(v).is_some()
        }
        "mod_wsgi.daemon_connects" => ty == "str" && digits(v).is_some_and(|n| n >= 1),
        "mod_wsgi.daemon_restarts" => ty == "str" && digits(v).is_some(),
        // Objects: their reprs carry addresses.
        "wsgi.input" | "wsgi.file_wrapper" => ty == cty,
        // A TextIOWrapper over the log buffer in both: same repr.
        "wsgi.errors" => ty == cty && v == cv,
        // Documented differences (docs/environ-differences.md).
        "SERVER_SOFTWARE" => {
            ty == "str"
                && v.contains("mod_wsgi_rs/")
                && without_module_banner(v) == without_module_banner(cv)
        }
        "mod_wsgi.version" => int_triple(ty, v).is_some() && int_triple(cty, cv).is_some(),
        "apache.version" => match (int_triple(ty, v), int_triple(cty, cv)) {
            (Some((2, 4, _)), Some((2, 4, _))) => true,
            _ => false,
        },
        _ => ty == cty && v == cv,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{key}: C mod_wsgi {cty} {cv} / mod_wsgi_rs {ty} {v}"
        ))
    }
}

fn differences(c: &Environ, ours: &Environ) -> Vec<String> {
    let mut out = Vec::new();
    for (key, cval) in c {
        match ours.get(key) {
            None => out.push(format!(
                "{key}: only C mod_wsgi has it ({} {})",
                cval.0, cval.1
            )),
            Some(v) => {
                if let Err(e) = compare(key, cval, v) {
                    out.push(e);
                }
            }
        }
    }
    for (key, v) in ours {
        if !c.contains_key(key) {
            out.push(format!("{key}: only mod_wsgi_rs has it ({} {})", v.0, v.1));
        }
    }
    out
}

fn compare_servers(mpm: Mpm, extra: &str, label: &str) {
    let c_server = start(Server::C, mpm, extra);
    let c_environs = requests(&c_server);
    drop(c_server);
    let ours = start(Server::Rust, mpm, extra);
    let our_environs = requests(&ours);
    let mut report = Vec::new();
    for ((name, c), (_, rs)) in c_environs.iter().zip(&our_environs) {
        // The comparison must have something to compare.
        assert!(
            c.contains_key("REQUEST_METHOD") && c.contains_key("wsgi.version"),
            "{name}: {c:?}"
        );
        for d in differences(c, rs) {
            report.push(format!("[{label}] {name}: {d}"));
        }
    }
    assert!(
        report.is_empty(),
        "environ differences between C mod_wsgi and mod_wsgi_rs:\n{}",
        report.join("\n")
    );
}

fn require_c_mod_wsgi() {
    assert!(
        Path::new(C_MOD_WSGI).is_file(),
        "{C_MOD_WSGI} is missing: run `make deps` (installs libapache2-mod-wsgi-py3)"
    );
}

#[test]
fn embedded_environ_matches_c_mod_wsgi() {
    require_c_mod_wsgi();
    compare_servers(Mpm::Event, "", "embedded event");
    compare_servers(Mpm::Prefork, "", "embedded prefork");
}

#[test]
fn daemon_environ_matches_c_mod_wsgi() {
    require_c_mod_wsgi();
    compare_servers(Mpm::Event, DAEMON, "daemon event");
}

#[test]
fn shape_checks_reject_wrong_values() {
    // The comparison itself must be able to fail.
    let s = |t: &str, v: &str| (t.to_string(), v.to_string());
    assert!(compare("PATH_INFO", &s("str", "'/a'"), &s("str", "'/b'")).is_err());
    assert!(
        compare(
            "mod_wsgi.request_start",
            &s("str", "'1795673790394004'"),
            &s("str", "'17'")
        )
        .is_err()
    );
    assert!(compare("mod_wsgi.thread_id", &s("int", "1"), &s("str", "'1'")).is_err());
    assert!(
        compare(
            "apache.version",
            &s("tuple", "(2, 4, 55)"),
            &s("tuple", "(0, 1, 0)")
        )
        .is_err()
    );
    assert!(
        compare(
            "SERVER_SOFTWARE",
            &s("str", "'Apache/2.4.71 (Debian) mod_wsgi/4.9.4 Python/3.11'"),
            &s(
                "str",
                "'Apache/2.4.71 (Debian) mod_wsgi_rs/0.1.0 Python/3.12'"
            )
        )
        .is_err()
    );
    let mut a = Environ::new();
    a.insert("X".into(), s("str", "'1'"));
    assert_eq!(differences(&a, &Environ::new()).len(), 1);
    assert_eq!(differences(&Environ::new(), &a).len(), 1);
}
