//! WSGITrustedProxies / WSGITrustedProxyHeaders: what a trusted front-end
//! proxy says about the original request replaces what Apache saw on the
//! connection, as mod_wsgi documents it.
//!
//! The supported headers come in sets, one set per purpose (client address,
//! scheme, host, port, server name, mount point). For a set that has at
//! least one header named by WSGITrustedProxyHeaders:
//! - when the direct peer (REMOTE_ADDR as Apache saw it) is one of
//!   WSGITrustedProxies, the named header is passed on and sets the special
//!   variable of its purpose; the other headers of the set are dropped;
//! - otherwise every header of the set is dropped, so an application never
//!   sees a value a client made up.
//!
//! Sets with no header named are left alone. Pure logic over the CGI
//! variables, shared by embedded and daemon mode (both build them in
//! `cgi::vars`).

use crate::config::{DirConfig, TrustedProxy};
use std::net::IpAddr;

/// What a header of a set stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// REMOTE_ADDR.
    ClientAddress,
    /// wsgi.url_scheme (through HTTPS) and REQUEST_SCHEME.
    Scheme,
    /// HTTP_HOST.
    Host,
    /// SERVER_PORT.
    Port,
    /// SERVER_NAME.
    Server,
    /// SCRIPT_NAME.
    ScriptName,
}

/// The header sets mod_wsgi documents, in its order.
const SETS: &[(Purpose, &[&str])] = &[
    (
        Purpose::ClientAddress,
        &["X-Forwarded-For", "X-Client-IP", "X-Real-IP"],
    ),
    (
        Purpose::Scheme,
        &[
            "X-Forwarded-HTTPS",
            "X-Forwarded-Proto",
            "X-Forwarded-Scheme",
            "X-Forwarded-SSL",
            "X-HTTPS",
            "X-Scheme",
        ],
    ),
    (Purpose::Host, &["X-Forwarded-Host", "X-Host"]),
    (Purpose::Port, &["X-Forwarded-Port"]),
    (Purpose::Server, &["X-Forwarded-Server"]),
    (
        Purpose::ScriptName,
        &["X-Script-Name", "X-Forwarded-Script-Name"],
    ),
];

/// Is `name` one of the headers WSGITrustedProxyHeaders understands?
pub fn is_supported_header(name: &str) -> bool {
    SETS.iter()
        .flat_map(|(_, headers)| headers.iter())
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// The two directives, as one request needs them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyTrust {
    /// Header names as configured (any case).
    pub headers: Vec<String>,
    pub proxies: Vec<TrustedProxy>,
}

impl ProxyTrust {
    pub fn from_dir(dir: &DirConfig) -> ProxyTrust {
        ProxyTrust {
            headers: dir.trusted_proxy_headers.clone(),
            proxies: dir.trusted_proxies.clone(),
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|p| p.contains(ip))
    }

    fn names(&self, header: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(header))
    }
}

/// "X-Forwarded-For" -> "HTTP_X_FORWARDED_FOR", as Apache names headers
/// among the CGI variables.
fn cgi_key(header: &str) -> String {
    let mut key = String::with_capacity(header.len() + 5);
    key.push_str("HTTP_");
    key.extend(header.chars().map(|c| match c {
        '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    key
}

fn get<'a>(vars: &'a [(String, String)], key: &str) -> Option<&'a str> {
    vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn set(vars: &mut Vec<(String, String)>, key: &str, value: &str) {
    vars.retain(|(k, _)| k != key);
    vars.push((key.to_string(), value.to_string()));
}

fn remove(vars: &mut Vec<(String, String)>, key: &str) {
    vars.retain(|(k, _)| k != key);
}

/// One address as proxies write it: "10.0.0.1", "::1", "[::1]", or with a
/// port ("10.0.0.1:4711", "[::1]:4711").
fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return inside.parse().ok();
    }
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The client address a header gives. X-Forwarded-For lists every hop
/// ("client, proxy1, proxy2"); each proxy appends the peer it saw, so only
/// the entries our trusted proxies appended can be believed: walk from the
/// right over trusted proxies and take the first address that is not one
/// (the leftmost when all are). A malformed entry on that walk ends it
/// with no answer.
fn client_address(value: &str, trust: &ProxyTrust) -> Option<IpAddr> {
    let hops: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    let mut chosen = None;
    for hop in hops.iter().rev() {
        let ip = parse_address(hop)?;
        chosen = Some(ip);
        if !trust.is_trusted(ip) {
            break;
        }
    }
    chosen
}

/// The scheme a header gives: Some(true) for https, Some(false) for http,
/// None when the value says neither. A proxy chain may list several
/// ("https, http"): the first is the client's.
fn is_https(header: &str, value: &str) -> Option<bool> {
    let first = value.split(',').next().unwrap_or("").trim();
    let first = first.to_ascii_lowercase();
    let flag_header = ["X-Forwarded-HTTPS", "X-Forwarded-SSL", "X-HTTPS"]
        .iter()
        .any(|h| h.eq_ignore_ascii_case(header));
    if flag_header {
        match first.as_str() {
            "on" | "1" | "true" | "yes" => Some(true),
            "off" | "0" | "false" | "no" => Some(false),
            _ => None,
        }
    } else {
        match first.as_str() {
            "https" | "wss" => Some(true),
            "http" | "ws" => Some(false),
            _ => None,
        }
    }
}

/// Applies what one trusted header says; false when the value was not
/// usable (the variable is left as Apache set it).
fn apply_one(
    vars: &mut Vec<(String, String)>,
    purpose: Purpose,
    header: &str,
    value: &str,
    trust: &ProxyTrust,
) -> bool {
    let first = || value.split(',').next().unwrap_or("").trim().to_string();
    match purpose {
        Purpose::ClientAddress => {
            let ip = if header.eq_ignore_ascii_case("X-Forwarded-For") {
                client_address(value, trust)
            } else {
                parse_address(value)
            };
            match ip {
                Some(ip) => {
                    set(vars, "REMOTE_ADDR", &ip.to_string());
                    true
                }
                None => false,
            }
        }
        Purpose::Scheme => match is_https(header, value) {
            Some(true) => {
                set(vars, "HTTPS", "on");
                set(vars, "REQUEST_SCHEME", "https");
                true
            }
            Some(false) => {
                remove(vars, "HTTPS");
                set(vars, "REQUEST_SCHEME", "http");
                true
            }
            None => false,
        },
        Purpose::Host => {
            let host = first();
            let ok = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, '/' | '\\' | '@'));
            if ok {
                set(vars, "HTTP_HOST", &host);
            }
            ok
        }
        Purpose::Port => match first().parse::<u16>() {
            Ok(port) if port > 0 => {
                set(vars, "SERVER_PORT", &port.to_string());
                true
            }
            _ => false,
        },
        Purpose::Server => {
            let name = first();
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, '/' | '\\' | '@'));
            if ok {
                set(vars, "SERVER_NAME", &name);
            }
            ok
        }
        Purpose::ScriptName => {
            let path = value.trim();
            // A mount point is a path ("/app") or nothing at all.
            let ok = path.is_empty() || (path.starts_with('/') && !path.contains(['?', '#']));
            if ok {
                set(vars, "SCRIPT_NAME", path.trim_end_matches('/'));
            }
            ok
        }
    }
}

/// What `apply` did, for the debug log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Headers whose value was applied.
    pub applied: Vec<String>,
    /// Headers removed (untrusted peer, or not the named one of their set).
    pub dropped: Vec<String>,
    /// Trusted headers whose value could not be used.
    pub unusable: Vec<String>,
}

/// Rewrites the CGI variables of one request (REMOTE_ADDR as Apache saw
/// the connection is the direct peer).
pub fn apply(vars: &mut Vec<(String, String)>, trust: &ProxyTrust) -> Outcome {
    let mut outcome = Outcome::default();
    if trust.headers.is_empty() {
        return outcome;
    }
    let peer_trusted = get(vars, "REMOTE_ADDR")
        .and_then(parse_address)
        .is_some_and(|ip| trust.is_trusted(ip));
    for (purpose, headers) in SETS {
        if !headers.iter().any(|h| trust.names(h)) {
            continue;
        }
        // The first named header of the set the proxy sent wins; a second
        // one named for the same purpose is a configuration mistake the
        // documentation warns about, and is dropped.
        let mut used = false;
        for header in headers.iter() {
            let key = cgi_key(header);
            let Some(value) = get(vars, &key).map(str::to_string) else {
                continue;
            };
            if peer_trusted && trust.names(header) && !used {
                used = true;
                if apply_one(vars, *purpose, header, &value, trust) {
                    outcome.applied.push(header.to_string());
                } else {
                    outcome.unusable.push(header.to_string());
                }
            } else {
                remove(vars, &key);
                outcome.dropped.push(header.to_string());
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(headers: &[&str], proxies: &[&str]) -> ProxyTrust {
        ProxyTrust {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            proxies: proxies
                .iter()
                .map(|p| TrustedProxy::parse(p).unwrap())
                .collect(),
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn base(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v = vars(&[
            ("REMOTE_ADDR", "10.0.0.5"),
            ("SERVER_NAME", "backend"),
            ("SERVER_PORT", "8080"),
            ("HTTP_HOST", "backend:8080"),
            ("REQUEST_SCHEME", "http"),
            ("SCRIPT_NAME", ""),
        ]);
        v.extend(vars(extra));
        v
    }

    #[test]
    fn nothing_configured_changes_nothing() {
        let mut v = base(&[("HTTP_X_FORWARDED_FOR", "1.2.3.4")]);
        let before = v.clone();
        assert_eq!(apply(&mut v, &ProxyTrust::default()), Outcome::default());
        assert_eq!(v, before);
    }

    #[test]
    fn trusted_peer_sets_remote_addr() {
        let t = trust(&["X-Forwarded-For"], &["10.0.0.0/8"]);
        let mut v = base(&[("HTTP_X_FORWARDED_FOR", "203.0.113.7")]);
        apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("203.0.113.7"));
        assert_eq!(get(&v, "HTTP_X_FORWARDED_FOR"), Some("203.0.113.7"));
    }

    #[test]
    fn forwarded_for_skips_trusted_hops_from_the_right() {
        let t = trust(&["x-forwarded-for"], &["10.0.0.0/8"]);
        // A client-made "1.1.1.1" at the left, the real client appended by
        // the first trusted proxy, then another trusted hop.
        let mut v = base(&[("HTTP_X_FORWARDED_FOR", "1.1.1.1, 198.51.100.2, 10.0.0.9")]);
        apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("198.51.100.2"));
        // All hops trusted: the leftmost.
        let mut v = base(&[("HTTP_X_FORWARDED_FOR", "10.1.1.1, 10.0.0.9")]);
        apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("10.1.1.1"));
        // Garbage on the walk: REMOTE_ADDR stays the proxy's.
        let mut v = base(&[("HTTP_X_FORWARDED_FOR", "1.1.1.1, bogus")]);
        let o = apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("10.0.0.5"));
        assert_eq!(o.unusable, ["X-Forwarded-For"]);
        // IPv6 with brackets and a port.
        let mut v = base(&[("HTTP_X_FORWARDED_FOR", "[2001:db8::1]:4711")]);
        apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("2001:db8::1"));
    }

    #[test]
    fn untrusted_peer_drops_the_whole_set() {
        let t = trust(&["X-Real-IP", "X-Forwarded-Proto"], &["192.168.0.0/16"]);
        let mut v = base(&[
            ("HTTP_X_REAL_IP", "1.2.3.4"),
            ("HTTP_X_FORWARDED_FOR", "1.2.3.4"),
            ("HTTP_X_CLIENT_IP", "1.2.3.4"),
            ("HTTP_X_FORWARDED_PROTO", "https"),
            ("HTTP_X_FORWARDED_SSL", "on"),
            // Not in a configured set: left alone.
            ("HTTP_X_FORWARDED_HOST", "evil.example"),
        ]);
        let o = apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("10.0.0.5"));
        assert_eq!(get(&v, "HTTPS"), None);
        for k in [
            "HTTP_X_REAL_IP",
            "HTTP_X_FORWARDED_FOR",
            "HTTP_X_CLIENT_IP",
            "HTTP_X_FORWARDED_PROTO",
            "HTTP_X_FORWARDED_SSL",
        ] {
            assert_eq!(get(&v, k), None, "{k} must be dropped");
        }
        assert_eq!(get(&v, "HTTP_X_FORWARDED_HOST"), Some("evil.example"));
        assert_eq!(o.dropped.len(), 5);
        assert!(o.applied.is_empty());
    }

    #[test]
    fn trusted_peer_keeps_only_the_named_header_of_a_set() {
        let t = trust(&["X-Real-IP"], &["10.0.0.5"]);
        let mut v = base(&[
            ("HTTP_X_REAL_IP", "203.0.113.1"),
            ("HTTP_X_FORWARDED_FOR", "198.51.100.1"),
        ]);
        apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("203.0.113.1"));
        assert_eq!(get(&v, "HTTP_X_REAL_IP"), Some("203.0.113.1"));
        assert_eq!(get(&v, "HTTP_X_FORWARDED_FOR"), None);
    }

    #[test]
    fn headers_without_proxies_trust_nobody() {
        let t = trust(&["X-Forwarded-For"], &[]);
        let mut v = base(&[("HTTP_X_FORWARDED_FOR", "1.2.3.4")]);
        apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("10.0.0.5"));
        assert_eq!(get(&v, "HTTP_X_FORWARDED_FOR"), None);
    }

    #[test]
    fn scheme_headers() {
        let cases = [
            ("X-Forwarded-Proto", "https", Some("on")),
            ("X-Forwarded-Proto", "HTTPS, http", Some("on")),
            ("X-Forwarded-Proto", "http", None),
            ("X-Forwarded-Scheme", "https", Some("on")),
            ("X-Scheme", "https", Some("on")),
            ("X-Forwarded-SSL", "on", Some("on")),
            ("X-Forwarded-SSL", "off", None),
            ("X-Forwarded-HTTPS", "1", Some("on")),
            ("X-HTTPS", "on", Some("on")),
        ];
        for (header, value, https) in cases {
            let t = trust(&[header], &["10.0.0.5"]);
            let mut v = base(&[(cgi_key(header).as_str(), value)]);
            apply(&mut v, &t);
            assert_eq!(get(&v, "HTTPS"), https, "{header}: {value}");
            let scheme = if https.is_some() { "https" } else { "http" };
            assert_eq!(get(&v, "REQUEST_SCHEME"), Some(scheme));
        }
        // http from a trusted proxy turns Apache's own HTTPS off.
        let t = trust(&["X-Forwarded-Proto"], &["10.0.0.5"]);
        let mut v = base(&[("HTTPS", "on"), ("HTTP_X_FORWARDED_PROTO", "http")]);
        apply(&mut v, &t);
        assert_eq!(get(&v, "HTTPS"), None);
        // A value that says neither leaves it alone.
        let mut v = base(&[("HTTPS", "on"), ("HTTP_X_FORWARDED_PROTO", "gopher")]);
        apply(&mut v, &t);
        assert_eq!(get(&v, "HTTPS"), Some("on"));
    }

    #[test]
    fn host_port_server_and_script_name() {
        let t = trust(
            &[
                "X-Forwarded-Host",
                "X-Forwarded-Port",
                "X-Forwarded-Server",
                "X-Script-Name",
            ],
            &["10.0.0.5"],
        );
        let mut v = base(&[
            ("HTTP_X_FORWARDED_HOST", "www.example.com, proxy.internal"),
            ("HTTP_X_HOST", "other.example"),
            ("HTTP_X_FORWARDED_PORT", "443"),
            ("HTTP_X_FORWARDED_SERVER", "front.example.com"),
            ("HTTP_X_SCRIPT_NAME", "/shop/"),
        ]);
        apply(&mut v, &t);
        assert_eq!(get(&v, "HTTP_HOST"), Some("www.example.com"));
        assert_eq!(get(&v, "HTTP_X_HOST"), None);
        assert_eq!(get(&v, "SERVER_PORT"), Some("443"));
        assert_eq!(get(&v, "SERVER_NAME"), Some("front.example.com"));
        assert_eq!(get(&v, "SCRIPT_NAME"), Some("/shop"));
        // Unusable values leave Apache's.
        let mut v = base(&[
            ("HTTP_X_FORWARDED_PORT", "http"),
            ("HTTP_X_SCRIPT_NAME", "shop"),
            ("HTTP_X_FORWARDED_HOST", "a/b"),
        ]);
        let o = apply(&mut v, &t);
        assert_eq!(get(&v, "SERVER_PORT"), Some("8080"));
        assert_eq!(get(&v, "SCRIPT_NAME"), Some(""));
        assert_eq!(get(&v, "HTTP_HOST"), Some("backend:8080"));
        assert_eq!(o.unusable.len(), 3);
    }

    #[test]
    fn supported_headers() {
        assert!(is_supported_header("x-forwarded-for"));
        assert!(is_supported_header("X-Forwarded-Script-Name"));
        assert!(!is_supported_header("Forwarded"));
        assert_eq!(cgi_key("X-Forwarded-For"), "HTTP_X_FORWARDED_FOR");
    }
}
