//! WSGITrustedProxyHeaders with and without WSGITrustedProxies, against a
//! real Apache, in embedded and daemon mode: for every header mod_wsgi
//! 6.1.1 understands, named alone, with every one of them sent, from a peer
//! trusted because no list applies, trusted because the list has it, and
//! not in the list. The harness client is 127.0.0.1.

mod common;
use common::*;

/// Reports the environ keys the tests look at, as `key=value` lines ("-"
/// for a missing key).
const ENV_APP: &str = r#"
KEYS = ["REMOTE_ADDR", "wsgi.url_scheme", "HTTPS", "REQUEST_SCHEME", "HTTP_HOST",
        "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME", "mod_wsgi.mount_point",
        "mod_wsgi.script_name",
        "mod_wsgi.process_group",
        "HTTP_X_FORWARDED_FOR", "HTTP_X_CLIENT_IP", "HTTP_X_REAL_IP",
        "HTTP_X_FORWARDED_HOST", "HTTP_X_HOST", "HTTP_X_FORWARDED_SERVER",
        "HTTP_X_FORWARDED_PORT", "HTTP_X_SCRIPT_NAME", "HTTP_X_FORWARDED_SCRIPT_NAME",
        "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_SCHEME", "HTTP_X_SCHEME",
        "HTTP_X_FORWARDED_HTTPS", "HTTP_X_FORWARDED_SSL", "HTTP_X_HTTPS"]
def application(environ, start_response):
    lines = ["%s=%s" % (k, environ.get(k, "-")) for k in KEYS]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["\n".join(lines).encode()]
"#;

#[derive(Clone, Copy, PartialEq)]
enum Category {
    Client,
    Host,
    Server,
    Port,
    ScriptName,
    Scheme,
}
use Category::*;

/// mod_wsgi 6.1.1's registry: header, category, the value every request
/// sends.
const HEADERS: &[(&str, Category, &str)] = &[
    (
        "X-Forwarded-For",
        Client,
        "203.0.113.50, 198.51.100.7, 127.0.0.2",
    ),
    ("X-Client-IP", Client, "192.0.2.2"),
    ("X-Real-IP", Client, "192.0.2.1"),
    ("X-Forwarded-Host", Host, "www.example.com:8443"),
    ("X-Host", Host, "host.example"),
    ("X-Forwarded-Server", Server, "front.example.com"),
    ("X-Forwarded-Port", Port, "8443"),
    ("X-Script-Name", ScriptName, "/shop"),
    ("X-Forwarded-Script-Name", ScriptName, "/store/"),
    ("X-Forwarded-Proto", Scheme, "https"),
    ("X-Forwarded-Scheme", Scheme, "HTTPS"),
    ("X-Scheme", Scheme, "https"),
    ("X-Forwarded-HTTPS", Scheme, "On"),
    ("X-Forwarded-SSL", Scheme, "true"),
    ("X-HTTPS", Scheme, "1"),
];

fn cgi_key(header: &str) -> String {
    format!("HTTP_{}", header.to_ascii_uppercase().replace('-', "_"))
}

/// Who the peer is to the configuration.
#[derive(Clone, Copy, Debug)]
enum Trust {
    /// No WSGITrustedProxies: every peer is trusted.
    NoList,
    /// The peer is in WSGITrustedProxies.
    Listed,
    /// WSGITrustedProxies without the peer.
    NotListed,
}

const TRUSTS: [(Trust, &str); 3] = [
    (Trust::NoList, "nolist"),
    (Trust::Listed, "listed"),
    (Trust::NotListed, "notlisted"),
];

/// A location per trust case and header (`/{mode}/{case}/{header}`), under
/// `WSGIScriptAlias /e` (embedded) and `/d` (daemon group `proxied`).
fn server() -> Apache {
    let mut d = String::from(
        "WSGIApplicationGroup %{GLOBAL}\n\
         WSGIDaemonProcess proxied threads=4\n\
         WSGIScriptAlias /e {dir}/app/env.wsgi\n\
         WSGIScriptAlias /d {dir}/app/env.wsgi\n\
         <Location /d>\n  WSGIProcessGroup proxied\n</Location>\n",
    );
    for mode in ["e", "d"] {
        for (trust, case) in TRUSTS {
            let proxies = match trust {
                Trust::NoList => "",
                Trust::Listed => "  WSGITrustedProxies 10.0.0.0/8 127.0.0.0/8\n",
                Trust::NotListed => "  WSGITrustedProxies 10.0.0.0/8 ::1 192.168.1.1\n",
            };
            for (header, _, _) in HEADERS {
                d += &format!(
                    "<Location /{mode}/{case}/{}>\n  WSGITrustedProxyHeaders {header}\n{proxies}</Location>\n",
                    header.to_ascii_lowercase()
                );
            }
        }
        // Two synonyms named: the last one the configuration names wins.
        d += &format!(
            "<Location /{mode}/order>\n  WSGITrustedProxyHeaders X-Forwarded-Proto X-Forwarded-SSL\n</Location>\n"
        );
        // Scheme values against an HTTPS Apache already set.
        d += &format!(
            "<Location /{mode}/https>\n  SetEnv HTTPS on\n  WSGITrustedProxyHeaders X-Forwarded-Proto\n</Location>\n"
        );
    }
    Apache::builder()
        .file("app/env.wsgi", ENV_APP)
        .directives(&d)
        .start()
}

fn all_headers() -> Vec<(&'static str, &'static str)> {
    HEADERS.iter().map(|(h, _, v)| (*h, *v)).collect()
}

fn get(apache: &Apache, path: &str, headers: &[(&str, &str)]) -> String {
    let r = apache.request("GET", path, headers, b"");
    assert_eq!(r.status, 200, "{path}: {}", apache.error_log());
    r.text()
}

/// What the application sees for `header` named alone, with every header
/// sent.
fn check_header(apache: &Apache, mode: &str, group: &str, trust: Trust, case: &str, i: usize) {
    let (header, category, sent) = HEADERS[i];
    let path = format!("/{mode}/{case}/{}/x", header.to_ascii_lowercase());
    let body = get(apache, &path, &all_headers());
    let at = format!("{path} ({trust:?})\n{body}");
    assert_eq!(field(&body, "mod_wsgi.process_group"), group, "{at}");
    let trusted = !matches!(trust, Trust::NotListed);
    let applies = |c: Category| trusted && c == category;
    // Headers: the named one stays when trusted; its synonyms always go;
    // other categories pass as any other header.
    for (other, other_category, other_sent) in HEADERS {
        let want = if *other_category != category {
            other_sent.to_string()
        } else if *other != header || !trusted {
            "-".to_string()
        } else if header == "X-Forwarded-For" && matches!(trust, Trust::Listed) {
            // Rewritten to start at the client (127.0.0.2 is trusted).
            "198.51.100.7, 127.0.0.2".to_string()
        } else {
            sent.to_string()
        };
        assert_eq!(field(&body, &cgi_key(other)), want, "{other}: {at}");
    }
    // The variables each category sets, or Apache's own.
    let remote = match (applies(Client), header, trust) {
        (false, _, _) => "127.0.0.1",
        // Without a list the first entry; with one, walked from the right.
        (true, "X-Forwarded-For", Trust::NoList) => "203.0.113.50",
        (true, "X-Forwarded-For", _) => "198.51.100.7",
        (true, _, _) => sent,
    };
    assert_eq!(field(&body, "REMOTE_ADDR"), remote, "{at}");
    let apache_host = format!("127.0.0.1:{}", apache.port);
    let host = if applies(Host) { sent } else { &apache_host };
    assert_eq!(field(&body, "HTTP_HOST"), host, "{at}");
    let server = if applies(Server) { sent } else { "127.0.0.1" };
    assert_eq!(field(&body, "SERVER_NAME"), server, "{at}");
    let apache_port = apache.port.to_string();
    let port = if applies(Port) { sent } else { &apache_port };
    assert_eq!(field(&body, "SERVER_PORT"), port, "{at}");
    let mount = format!("/{mode}");
    let (script_name, mount_point) = if applies(ScriptName) {
        (sent, sent)
    } else {
        (mount.as_str(), "-")
    };
    // The mount point as the proxy gave it ("/store/" keeps its slash), as
    // mod_wsgi 6; mod_wsgi.script_name keeps Apache's.
    assert_eq!(field(&body, "SCRIPT_NAME"), script_name, "{at}");
    assert_eq!(field(&body, "mod_wsgi.mount_point"), mount_point, "{at}");
    assert_eq!(field(&body, "mod_wsgi.script_name"), mount, "{at}");
    let scheme = if applies(Scheme) { "https" } else { "http" };
    assert_eq!(field(&body, "wsgi.url_scheme"), scheme, "{at}");
    assert_eq!(field(&body, "HTTPS"), "-", "{at}: HTTPS is never passed on");
    // As in mod_wsgi, REQUEST_SCHEME stays Apache's.
    assert_eq!(field(&body, "REQUEST_SCHEME"), "http", "{at}");
}

fn check_every_header(apache: &Apache, mode: &str, group: &str) {
    for (trust, case) in TRUSTS {
        for i in 0..HEADERS.len() {
            check_header(apache, mode, group, trust, case, i);
        }
    }
}

/// X-Forwarded-For's other forms, under /{mode}/{case}/x-forwarded-for.
fn check_forwarded_for(apache: &Apache, mode: &str) {
    let at = |case: &str| format!("/{mode}/{case}/x-forwarded-for/x");
    let cases = [
        // (case, sent, REMOTE_ADDR, X-Forwarded-For the app sees)
        // No list: the first entry as it is, empty entries skipped.
        (
            "nolist",
            ", , unknown, 10.0.0.1",
            "unknown",
            ", , unknown, 10.0.0.1",
        ),
        // A list: the last entry when it is not a trusted proxy...
        (
            "listed",
            "203.0.113.50, 198.51.100.7",
            "198.51.100.7",
            "198.51.100.7",
        ),
        // ...the leftmost when all are...
        (
            "listed",
            "10.1.1.1,127.0.0.2",
            "10.1.1.1",
            "10.1.1.1, 127.0.0.2",
        ),
        // ...and nothing changes where the walk stops on something that is
        // not an IP address (mod_wsgi would make it REMOTE_ADDR).
        (
            "listed",
            "198.51.100.7, bogus, 127.0.0.2",
            "127.0.0.1",
            "198.51.100.7, bogus, 127.0.0.2",
        ),
    ];
    for (case, sent, remote, header) in cases {
        let body = get(apache, &at(case), &[("X-Forwarded-For", sent)]);
        assert_eq!(field(&body, "REMOTE_ADDR"), remote, "{sent}: {body}");
        assert_eq!(
            field(&body, "HTTP_X_FORWARDED_FOR"),
            header,
            "{sent}: {body}"
        );
    }
}

/// The scheme values mod_wsgi accepts, and configuration order.
fn check_scheme(apache: &Apache, mode: &str) {
    // X-Forwarded-Proto is "https" or "http" only, whole and in any case.
    let proto = format!("/{mode}/nolist/x-forwarded-proto/x");
    for (sent, scheme) in [("HTTPS", "https"), ("https, http", "http"), ("on", "http")] {
        let body = get(apache, &proto, &[("X-Forwarded-Proto", sent)]);
        assert_eq!(field(&body, "wsgi.url_scheme"), scheme, "{sent}");
    }
    // The flags: On / true / 1, Off / false / 0.
    let ssl = format!("/{mode}/nolist/x-forwarded-ssl/x");
    for (sent, scheme) in [("ON", "https"), ("1", "https"), ("yes", "http")] {
        let body = get(apache, &ssl, &[("X-Forwarded-SSL", sent)]);
        assert_eq!(field(&body, "wsgi.url_scheme"), scheme, "{sent}");
    }
    // Over an Apache that says HTTPS: "http" turns it off; a value that is
    // neither leaves it.
    let https = format!("/{mode}/https/x");
    for (sent, scheme) in [("http", "http"), ("gopher", "https"), ("https", "https")] {
        let body = get(apache, &https, &[("X-Forwarded-Proto", sent)]);
        assert_eq!(field(&body, "wsgi.url_scheme"), scheme, "{sent}");
        assert_eq!(field(&body, "HTTPS"), "-");
    }
    let body = get(apache, &https, &[]);
    assert_eq!(field(&body, "wsgi.url_scheme"), "https");
    // X-Forwarded-Proto then X-Forwarded-SSL: both apply in that order,
    // the last one is kept.
    let order = format!("/{mode}/order/x");
    let sent = [("X-Forwarded-Proto", "https"), ("X-Forwarded-SSL", "off")];
    let body = get(apache, &order, &sent);
    assert_eq!(field(&body, "wsgi.url_scheme"), "http", "{body}");
    assert_eq!(field(&body, "HTTP_X_FORWARDED_PROTO"), "-", "{body}");
    assert_eq!(field(&body, "HTTP_X_FORWARDED_SSL"), "off", "{body}");
    let body = get(apache, &order, &[("X-Forwarded-Proto", "https")]);
    assert_eq!(field(&body, "wsgi.url_scheme"), "https", "{body}");
    assert_eq!(field(&body, "HTTP_X_FORWARDED_PROTO"), "https", "{body}");
}

#[test]
fn every_header_embedded() {
    let apache = server();
    check_every_header(&apache, "e", "");
    check_forwarded_for(&apache, "e");
    check_scheme(&apache, "e");
}

#[test]
fn every_header_daemon() {
    let apache = server();
    check_every_header(&apache, "d", "proxied");
    check_forwarded_for(&apache, "d");
    check_scheme(&apache, "d");
}
