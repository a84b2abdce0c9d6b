//! Differential test: the same environ-dumping application, the same
//! configuration and the same requests under C mod_wsgi and under
//! mod_wsgi_rs, in embedded mode and in daemon mode. The environs must
//! match key for key; the few keys whose values cannot match (times, pids,
//! versions, object types) are compared by shape, and
//! docs/environ-differences.md says why for each.
//!
//! The reference is Debian's libapache2-mod-wsgi-py3 (4.9.4) unless
//! `MOD_WSGI_C_SO` names another build of C mod_wsgi. mod_wsgi_rs gives
//! the environ of mod_wsgi 6: against a 4.x reference every difference
//! between 4.x and 6.x must be one of `FOUR_VS_SIX` (and each of those must
//! show up), against a 6.x build there must be none.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;

/// C mod_wsgi as Debian installs it (`make deps` installs the package).
const DEBIAN_C_MOD_WSGI: &str = "/usr/lib/apache2/modules/mod_wsgi.so";

/// The C mod_wsgi to compare with: `$MOD_WSGI_C_SO`, else Debian's.
fn c_mod_wsgi() -> String {
    std::env::var("MOD_WSGI_C_SO")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEBIAN_C_MOD_WSGI.to_string())
}

/// Apache's environment gets a library path: mod_cgi would pass it to a
/// script; mod_wsgi 4 passed it to the application too, mod_wsgi 6 does not.
const LIBRARY_PATH: &str = "/nonexistent/mwrs-differential";

/// How mod_wsgi 6 (and so mod_wsgi_rs) differs from mod_wsgi 4 in the
/// environs of these requests (docs/environ-differences.md).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Change {
    /// Only mod_wsgi 4 has the key.
    Removed,
    /// Only mod_wsgi 6 has the key.
    Added,
    /// mod_wsgi 4: a str of µs since the epoch; mod_wsgi 6: a float of
    /// seconds.
    SecondsNotMicros,
}

const FOUR_VS_SIX: &[(&str, Change)] = &[
    ("GATEWAY_INTERFACE", Change::Removed),
    ("SERVER_SIGNATURE", Change::Removed),
    ("PATH_TRANSLATED", Change::Removed),
    ("LD_LIBRARY_PATH", Change::Removed),
    ("mod_wsgi.script_reloading", Change::Removed),
    ("mod_wsgi.enable_sendfile", Change::Removed),
    ("mod_wsgi.ignore_activity", Change::Removed),
    ("mod_wsgi.script_start", Change::Removed),
    ("mod_wsgi.thread_requests", Change::Removed),
    ("mod_wsgi.total_requests", Change::Removed),
    ("mod_wsgi.daemon_connects", Change::Removed),
    ("mod_wsgi.daemon_restarts", Change::Removed),
    ("mod_wsgi.application_start", Change::Added),
    ("mod_wsgi.server_pid", Change::Added),
    // Embedded mode: 0.0 in mod_wsgi 6, absent in 4; daemon mode: retyped.
    ("mod_wsgi.queue_start", Change::Added),
    ("mod_wsgi.daemon_start", Change::Added),
    ("mod_wsgi.queue_start", Change::SecondsNotMicros),
    ("mod_wsgi.daemon_start", Change::SecondsNotMicros),
    ("mod_wsgi.request_start", Change::SecondsNotMicros),
];

const APP: &str = include_str!("apps/environ_dump.wsgi");

/// A response head with latin-1 characters above 127 in the reason
/// phrase, the Content-Type and another header (PEP 3333: each character
/// stands for one byte).
const LATIN1_APP: &str = r#"
def application(environ, start_response):
    start_response("200 Caf\xe9", [
        ("Content-Type", "text/plain; x=caf\xe9"),
        ("X-Latin", "caf\xe9 \xff\xa0end"),
        ("Content-Length", "3"),
    ])
    return [b"ok\n"]
"#;

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
WSGIScriptAlias /latin1 {dir}/app/latin1.wsgi
WSGIScriptAlias / {dir}/app/dump.wsgi
";

const DAEMON: &str = "WSGIDaemonProcess diff threads=4\nWSGIProcessGroup diff\n";

#[derive(Clone, Copy, Debug)]
enum Server {
    C,
    Rust,
}

fn start(server: Server, mpm: Mpm, extra: &str) -> Apache {
    let builder = Apache::builder()
        .mpm(mpm)
        .file("app/dump.wsgi", APP)
        .file("app/latin1.wsgi", LATIN1_APP);
    let builder = match server {
        Server::C => builder
            .with_module(false)
            .directives(&format!("LoadModule wsgi_module {}", c_mod_wsgi())),
        Server::Rust => builder,
    };
    builder
        .env("LD_LIBRARY_PATH", LIBRARY_PATH)
        .directives(extra)
        .directives(CONFIG)
        .start()
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

/// A time in APR microseconds, as a str: 16 digits (mod_wsgi 4).
fn is_usec_time(ty: &str, v: &str) -> bool {
    ty == "str" && v.trim_matches('\'').len() == 16 && digits(v).is_some()
}

/// A time in seconds since the epoch as a float, after 2020 (mod_wsgi 6).
fn is_seconds_time(ty: &str, v: &str) -> bool {
    ty == "float" && v.parse::<f64>().is_ok_and(|t| t > 1.6e9)
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

/// Compares one key present in both; Err says how the two differ.
fn compare(key: &str, c: &(String, String), ours: &(String, String)) -> Result<(), String> {
    let ((cty, cv), (ty, v)) = (c, ours);
    let ok = match key {
        // Different on every request, or per process/thread: shape only.
        "REMOTE_PORT" | "mod_wsgi.server_pid" => {
            ty == "str" && cty == "str" && digits(v).is_some() && digits(cv).is_some()
        }
        "mod_wsgi.request_id" => ty == "str" && cty == "str" && v.len() > 2,
        // No such moment (embedded mode) is 0.0, in both.
        "mod_wsgi.request_start"
        | "mod_wsgi.queue_start"
        | "mod_wsgi.daemon_start"
        | "mod_wsgi.application_start" => {
            (is_seconds_time(ty, v) && is_seconds_time(cty, cv))
                || (ty == "float" && v == "0.0" && cty == "float" && cv == "0.0")
        }
        "mod_wsgi.thread_id" => ty == "int" && cty == "int" && digits(v).is_some(),
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
        "apache.version" => matches!(
            (int_triple(ty, v), int_triple(cty, cv)),
            (Some((2, 4, _)), Some((2, 4, _)))
        ),
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

/// One way two environs differ.
#[derive(Debug, PartialEq)]
enum Difference {
    /// The key, and the value C mod_wsgi gives it.
    OnlyC(String, String),
    OnlyOurs(String),
    Value(String, String),
}

impl Difference {
    /// The documented mod_wsgi 4 -> 6 change this is, if any.
    fn four_vs_six(&self, c: &Environ, ours: &Environ) -> Option<(&'static str, Change)> {
        let (key, change) = match self {
            Difference::OnlyC(k, _) => (k, Change::Removed),
            Difference::OnlyOurs(k) => (k, Change::Added),
            Difference::Value(k, _) => {
                let ((cty, cv), (ty, v)) = (&c[k], &ours[k]);
                if !(is_usec_time(cty, cv) && is_seconds_time(ty, v)) {
                    return None;
                }
                (k, Change::SecondsNotMicros)
            }
        };
        FOUR_VS_SIX
            .iter()
            .find(|(k, ch)| k == key && *ch == change)
            .copied()
    }
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::OnlyC(k, v) => write!(f, "{k}: only C mod_wsgi has it ({v})"),
            Difference::OnlyOurs(k) => write!(f, "{k}: only mod_wsgi_rs has it"),
            Difference::Value(_, how) => f.write_str(how),
        }
    }
}

fn differences(c: &Environ, ours: &Environ) -> Vec<Difference> {
    let mut out = Vec::new();
    for (key, cval) in c {
        match ours.get(key) {
            None => out.push(Difference::OnlyC(
                key.clone(),
                format!("{} {}", cval.0, cval.1),
            )),
            Some(v) => {
                if let Err(e) = compare(key, cval, v) {
                    out.push(Difference::Value(key.clone(), e));
                }
            }
        }
    }
    for key in ours.keys() {
        if !c.contains_key(key) {
            out.push(Difference::OnlyOurs(key.clone()));
        }
    }
    out
}

/// The major version of the reference's mod_wsgi (from its environ).
fn major_version(c: &Environ) -> u64 {
    let (ty, v) = &c["mod_wsgi.version"];
    int_triple(ty, v).expect("mod_wsgi.version").0
}

fn compare_servers(mpm: Mpm, extra: &str, label: &str) {
    let c_server = start(Server::C, mpm, extra);
    let c_environs = requests(&c_server);
    drop(c_server);
    let ours = start(Server::Rust, mpm, extra);
    let our_environs = requests(&ours);
    let mut report = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut four = false;
    for ((name, c), (_, rs)) in c_environs.iter().zip(&our_environs) {
        // The comparison must have something to compare.
        assert!(
            c.contains_key("REQUEST_METHOD") && c.contains_key("wsgi.version"),
            "{name}: {c:?}"
        );
        four = major_version(c) == 4;
        for d in differences(c, rs) {
            match d.four_vs_six(c, rs).filter(|_| four) {
                Some(change) => {
                    seen.insert(format!("{change:?}"));
                }
                None => report.push(format!("[{label}] {name}: {d}")),
            }
        }
    }
    assert!(
        report.is_empty(),
        "environ differences between C mod_wsgi ({}) and mod_wsgi_rs:\n{}",
        c_mod_wsgi(),
        report.join("\n")
    );
    if four {
        // Every documented change shows in these requests in this mode.
        let daemon = !extra.is_empty();
        let missing: Vec<String> = FOUR_VS_SIX
            .iter()
            .filter(|(key, change)| expected_in(key, *change, daemon))
            .map(|entry| format!("{entry:?}"))
            .filter(|entry| !seen.contains(entry))
            .collect();
        assert!(
            missing.is_empty(),
            "[{label}] documented mod_wsgi 4 -> 6 differences that did not show: {missing:?}"
        );
    }
}

/// Whether a documented change shows in the given mode: daemon mode has
/// queue_start and daemon_start in both versions (retyped), embedded mode
/// in mod_wsgi 6 only; mod_wsgi 4 had daemon_connects and daemon_restarts
/// in daemon mode only.
fn expected_in(key: &str, change: Change, daemon: bool) -> bool {
    match (key, change) {
        ("mod_wsgi.queue_start" | "mod_wsgi.daemon_start", Change::Added) => !daemon,
        ("mod_wsgi.queue_start" | "mod_wsgi.daemon_start", Change::SecondsNotMicros) => daemon,
        ("mod_wsgi.daemon_connects" | "mod_wsgi.daemon_restarts", _) => daemon,
        _ => true,
    }
}

fn require_c_mod_wsgi() {
    let path = c_mod_wsgi();
    assert!(
        Path::new(&path).is_file(),
        "{path} is missing: run `make deps` (installs libapache2-mod-wsgi-py3), or point MOD_WSGI_C_SO at a C mod_wsgi"
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

/// The status line and the headers of `LATIN1_APP`'s response as the
/// bytes on the wire, sorted, each shown with `\xNN` for bytes past ASCII.
fn latin1_head(server: Server, extra: &str) -> Vec<String> {
    let apache = start(server, Mpm::Event, extra);
    let raw = apache.raw(b"GET /latin1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {:?} {}", raw, apache.error_log()));
    let mut lines: Vec<String> = raw[..end]
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| {
            line.starts_with(b"HTTP/")
                || line.starts_with(b"Content-Type")
                || line.starts_with(b"X-Latin")
        })
        .map(|line| line.escape_ascii().to_string())
        .collect();
    lines.sort();
    lines
}

#[test]
fn latin1_response_head_matches_c_mod_wsgi() {
    require_c_mod_wsgi();
    for (extra, label) in [("", "embedded"), (DAEMON, "daemon")] {
        let c = latin1_head(Server::C, extra);
        let ours = latin1_head(Server::Rust, extra);
        // What C mod_wsgi sends: one byte per character, as latin-1.
        assert_eq!(
            c,
            [
                r"Content-Type: text/plain; x=caf\xe9",
                r"HTTP/1.1 200 Caf\xe9",
                r"X-Latin: caf\xe9 \xff\xa0end",
            ],
            "[{label}] C mod_wsgi"
        );
        assert_eq!(ours, c, "[{label}] mod_wsgi_rs against C mod_wsgi");
    }
}

#[test]
fn shape_checks_reject_wrong_values() {
    // The comparison itself must be able to fail.
    let s = |t: &str, v: &str| (t.to_string(), v.to_string());
    assert!(compare("PATH_INFO", &s("str", "'/a'"), &s("str", "'/b'")).is_err());
    assert!(
        compare(
            "mod_wsgi.request_start",
            &s("float", "1795673790.394004"),
            &s("float", "17.5")
        )
        .is_err()
    );
    assert!(
        compare(
            "mod_wsgi.queue_start",
            &s("float", "0.0"),
            &s("float", "1795673790.394004")
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
    // A documented change covers only its own kind of difference.
    let mut c = Environ::new();
    c.insert(
        "mod_wsgi.request_start".into(),
        s("str", "'1795673790394004'"),
    );
    let mut ours = Environ::new();
    ours.insert(
        "mod_wsgi.request_start".into(),
        s("float", "1795673790.394004"),
    );
    let d = differences(&c, &ours);
    assert_eq!(d.len(), 1);
    assert!(d[0].four_vs_six(&c, &ours).is_some());
    ours.insert(
        "mod_wsgi.request_start".into(),
        s("str", "'1795673790394004'"),
    );
    c.insert("mod_wsgi.request_start".into(), s("str", "'17'"));
    let d = differences(&c, &ours);
    assert_eq!(d.len(), 1);
    assert!(d[0].four_vs_six(&c, &ours).is_none());
    assert!(
        Difference::OnlyOurs("GATEWAY_INTERFACE".into())
            .four_vs_six(&c, &ours)
            .is_none()
    );
    let removed = Difference::OnlyC("GATEWAY_INTERFACE".into(), "str 'CGI/1.1'".into());
    assert!(removed.four_vs_six(&c, &ours).is_some());
}
