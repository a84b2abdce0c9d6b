//! WSGITrustedProxyHeaders / WSGITrustedProxies: what a front-end proxy
//! says about the original request replaces what Apache saw on the
//! connection, as C mod_wsgi 6.1.1 does it (`wsgi_process_proxy_headers`).
//!
//! The headers mod_wsgi understands form a registry; each belongs to a
//! category (client address, host, server name, port, mount point,
//! scheme), the headers of one category being synonyms. For one request:
//! - the peer is trusted when no WSGITrustedProxies applies, or when its
//!   address (REMOTE_ADDR as Apache saw it) is in that list;
//! - the configured headers are taken in the order the configuration names
//!   them; one the registry does not know is ignored. Each marks its
//!   category as matched and, when the peer is trusted and the request
//!   carries it, its value is applied. The last applied header of a
//!   category is the one that won;
//! - then, for every matched category, every synonym except the one that
//!   won is removed, whether the peer is trusted or not: an application
//!   never sees a value for that purpose its proxy did not vouch for.
//!
//! Values are used as the proxy gives them, as mod_wsgi does, except
//! X-Forwarded-For under a WSGITrustedProxies list: there the address
//! chosen must be an IP address or nothing changes (mod_wsgi takes the
//! entry as it is, and resolves host names among the hops through DNS).
//!
//! Pure logic over the CGI variables, shared by embedded and daemon mode
//! (both build them in `cgi::vars`).

use crate::cgi::Var;
use crate::config::{DirConfig, TrustedProxy};
use std::borrow::Cow;
use std::net::IpAddr;

/// The purpose of a header; the headers of one category are synonyms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    ClientAddress = 0,
    Host,
    Server,
    Port,
    ScriptName,
    Scheme,
}

const CATEGORIES: usize = 6;

/// What applying a header does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// REMOTE_ADDR from the list of hops (`forwarded_for`).
    ForwardedFor,
    /// REMOTE_ADDR, the value as it is.
    RemoteAddr,
    /// HTTP_HOST, as it is (it may carry a port).
    HttpHost,
    /// SERVER_NAME, as it is.
    ServerName,
    /// SERVER_PORT, as it is.
    ServerPort,
    /// SCRIPT_NAME and mod_wsgi.mount_point, as it is.
    MountPoint,
    /// HTTPS from "https" / "http" (any case, the whole value).
    SchemeName,
    /// HTTPS from "On" / "true" / "1" or "Off" / "false" / "0" (any case).
    SchemeFlag,
}

struct Header {
    /// As documented.
    name: &'static str,
    /// Among the CGI variables.
    key: &'static str,
    category: Category,
    effect: Effect,
}

/// mod_wsgi 6.1.1's registry, in its order.
const REGISTRY: &[Header] = &[
    header(
        "X-Forwarded-For",
        "HTTP_X_FORWARDED_FOR",
        Category::ClientAddress,
        Effect::ForwardedFor,
    ),
    header(
        "X-Client-IP",
        "HTTP_X_CLIENT_IP",
        Category::ClientAddress,
        Effect::RemoteAddr,
    ),
    header(
        "X-Real-IP",
        "HTTP_X_REAL_IP",
        Category::ClientAddress,
        Effect::RemoteAddr,
    ),
    header(
        "X-Forwarded-Host",
        "HTTP_X_FORWARDED_HOST",
        Category::Host,
        Effect::HttpHost,
    ),
    header("X-Host", "HTTP_X_HOST", Category::Host, Effect::HttpHost),
    header(
        "X-Forwarded-Server",
        "HTTP_X_FORWARDED_SERVER",
        Category::Server,
        Effect::ServerName,
    ),
    header(
        "X-Forwarded-Port",
        "HTTP_X_FORWARDED_PORT",
        Category::Port,
        Effect::ServerPort,
    ),
    header(
        "X-Script-Name",
        "HTTP_X_SCRIPT_NAME",
        Category::ScriptName,
        Effect::MountPoint,
    ),
    header(
        "X-Forwarded-Script-Name",
        "HTTP_X_FORWARDED_SCRIPT_NAME",
        Category::ScriptName,
        Effect::MountPoint,
    ),
    header(
        "X-Forwarded-Proto",
        "HTTP_X_FORWARDED_PROTO",
        Category::Scheme,
        Effect::SchemeName,
    ),
    header(
        "X-Forwarded-Scheme",
        "HTTP_X_FORWARDED_SCHEME",
        Category::Scheme,
        Effect::SchemeName,
    ),
    header(
        "X-Scheme",
        "HTTP_X_SCHEME",
        Category::Scheme,
        Effect::SchemeName,
    ),
    header(
        "X-Forwarded-HTTPS",
        "HTTP_X_FORWARDED_HTTPS",
        Category::Scheme,
        Effect::SchemeFlag,
    ),
    header(
        "X-Forwarded-SSL",
        "HTTP_X_FORWARDED_SSL",
        Category::Scheme,
        Effect::SchemeFlag,
    ),
    header(
        "X-HTTPS",
        "HTTP_X_HTTPS",
        Category::Scheme,
        Effect::SchemeFlag,
    ),
];

const fn header(
    name: &'static str,
    key: &'static str,
    category: Category,
    effect: Effect,
) -> Header {
    Header {
        name,
        key,
        category,
        effect,
    }
}

/// "X-Forwarded-For" -> "HTTP_X_FORWARDED_FOR", as mod_wsgi turns a
/// configured name into a CGI variable; None for a name with a character
/// other than letters, digits and '-' (mod_wsgi matches nothing then).
fn cgi_key(name: &str) -> Option<String> {
    let mut key = String::with_capacity(name.len() + 5);
    key.push_str("HTTP_");
    for c in name.chars() {
        match c {
            '-' => key.push('_'),
            c if c.is_ascii_alphanumeric() => key.push(c.to_ascii_uppercase()),
            _ => return None,
        }
    }
    Some(key)
}

/// The registry entry a configured header name stands for.
fn lookup(name: &str) -> Option<&'static Header> {
    let key = cgi_key(name)?;
    REGISTRY.iter().find(|h| h.key == key)
}

/// Is `name` one of the headers WSGITrustedProxyHeaders understands?
pub fn is_supported_header(name: &str) -> bool {
    lookup(name).is_some()
}

/// The two directives, as one request needs them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyTrust {
    /// Header names as configured (any case), in order.
    pub headers: Vec<String>,
    /// Empty when no WSGITrustedProxies applies: every peer is trusted.
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

    /// Is the direct peer (REMOTE_ADDR as Apache saw it) to be believed?
    fn trusts_peer(&self, remote_addr: Option<&str>) -> bool {
        if self.proxies.is_empty() {
            return true;
        }
        remote_addr
            .and_then(|a| a.parse::<IpAddr>().ok())
            .is_some_and(|ip| self.is_trusted(ip))
    }
}

fn get<'a>(vars: &'a [Var<'_>], key: &str) -> Option<&'a str> {
    vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
}

/// Sets `key` to `value`, in the place of the first existing entry.
fn set(vars: &mut Vec<Var<'_>>, key: &str, value: &str) {
    let mut seen = false;
    vars.retain_mut(|(k, v)| {
        if k != key {
            return true;
        }
        if seen {
            return false;
        }
        seen = true;
        *v = Cow::Owned(value.to_string());
        true
    });
    if !seen {
        vars.push((Cow::Owned(key.to_string()), Cow::Owned(value.to_string())));
    }
}

fn remove(vars: &mut Vec<Var<'_>>, key: &str) -> bool {
    let before = vars.len();
    vars.retain(|(k, _)| k != key);
    vars.len() != before
}

/// White space as C's isspace() sees it.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// The entries of a comma separated list, trimmed, empty ones skipped (RFC
/// 9110 §5.6.1).
fn list_items(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(|item| item.trim_matches(is_space))
        .filter(|item| !item.is_empty())
        .collect()
}

/// X-Forwarded-For: "client, proxy1, proxy2", each proxy appending the
/// peer it saw. False when it changes nothing.
///
/// With no WSGITrustedProxies every peer is trusted and the client is the
/// first entry, taken as it is; the header is left alone.
///
/// With a list, only the entries our trusted proxies appended can be
/// believed: walk from the right over trusted proxies; the client is the
/// entry before the leftmost of them (the leftmost itself when all are
/// trusted, the last entry when the last is not a trusted proxy). The
/// header is rewritten to start at that entry, as mod_wsgi does. An entry
/// that is not an IP address ends the walk; when that entry is the one
/// chosen, nothing changes (mod_wsgi would make it REMOTE_ADDR).
fn forwarded_for(vars: &mut Vec<Var<'_>>, value: &str, trust: &ProxyTrust) -> bool {
    let items = list_items(value);
    if items.is_empty() {
        return false;
    }
    if trust.proxies.is_empty() {
        set(vars, "REMOTE_ADDR", items[0]);
        return true;
    }
    let mut leftmost_trusted = None;
    for (i, item) in items.iter().enumerate().rev() {
        match item.parse::<IpAddr>() {
            Ok(ip) if trust.is_trusted(ip) => leftmost_trusted = Some(i),
            _ => break,
        }
    }
    let client = match leftmost_trusted {
        Some(i) => i.saturating_sub(1),
        None => items.len() - 1,
    };
    if items[client].parse::<IpAddr>().is_err() {
        return false;
    }
    set(vars, "REMOTE_ADDR", items[client]);
    set(vars, "HTTP_X_FORWARDED_FOR", &items[client..].join(", "));
    true
}

/// Applies what one trusted header says; false when the value changed
/// nothing (a scheme value that is neither, an empty or unusable
/// X-Forwarded-For).
fn apply_one(vars: &mut Vec<Var<'_>>, effect: Effect, value: &str, trust: &ProxyTrust) -> bool {
    let https = |vars: &mut Vec<Var<'_>>, on: Option<bool>| match on {
        Some(true) => {
            set(vars, "HTTPS", "1");
            true
        }
        Some(false) => {
            remove(vars, "HTTPS");
            true
        }
        None => false,
    };
    match effect {
        Effect::ForwardedFor => forwarded_for(vars, value, trust),
        Effect::RemoteAddr => {
            set(vars, "REMOTE_ADDR", value);
            true
        }
        Effect::HttpHost => {
            set(vars, "HTTP_HOST", value);
            true
        }
        Effect::ServerName => {
            set(vars, "SERVER_NAME", value);
            true
        }
        Effect::ServerPort => {
            set(vars, "SERVER_PORT", value);
            true
        }
        // The environ's SCRIPT_NAME becomes this value as it is (see
        // `environ::build`); mod_wsgi.script_name keeps Apache's.
        Effect::MountPoint => {
            set(vars, "mod_wsgi.mount_point", value);
            true
        }
        Effect::SchemeName => {
            let on = if value.eq_ignore_ascii_case("https") {
                Some(true)
            } else if value.eq_ignore_ascii_case("http") {
                Some(false)
            } else {
                None
            };
            https(vars, on)
        }
        Effect::SchemeFlag => {
            let is = |words: [&str; 3]| words.iter().any(|w| value.eq_ignore_ascii_case(w));
            let on = if is(["on", "true", "1"]) {
                Some(true)
            } else if is(["off", "false", "0"]) {
                Some(false)
            } else {
                None
            };
            https(vars, on)
        }
    }
}

/// What `apply` did, for the debug log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Trusted headers whose value was applied.
    pub applied: Vec<String>,
    /// Headers removed (untrusted peer, or a synonym of the one that won).
    pub dropped: Vec<String>,
    /// Trusted headers whose value changed nothing.
    pub unusable: Vec<String>,
}

/// Rewrites the CGI variables of one request (REMOTE_ADDR as Apache saw
/// the connection is the direct peer).
pub fn apply(vars: &mut Vec<Var<'_>>, trust: &ProxyTrust) -> Outcome {
    let mut outcome = Outcome::default();
    if trust.headers.is_empty() {
        return outcome;
    }
    let peer_trusted = trust.trusts_peer(get(vars, "REMOTE_ADDR"));
    let mut matched = [false; CATEGORIES];
    let mut won: [Option<&'static str>; CATEGORIES] = [None; CATEGORIES];
    for name in &trust.headers {
        let Some(header) = lookup(name) else {
            continue;
        };
        let category = header.category as usize;
        matched[category] = true;
        if !peer_trusted {
            continue;
        }
        let Some(value) = get(vars, header.key).map(str::to_string) else {
            continue;
        };
        if apply_one(vars, header.effect, &value, trust) {
            outcome.applied.push(header.name.to_string());
        } else {
            outcome.unusable.push(header.name.to_string());
        }
        // As in mod_wsgi, the header won even when its value changed
        // nothing.
        won[category] = Some(header.key);
    }
    for header in REGISTRY {
        let category = header.category as usize;
        if matched[category] && won[category] != Some(header.key) && remove(vars, header.key) {
            outcome.dropped.push(header.name.to_string());
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

    fn vars(pairs: &[(&str, &str)]) -> Vec<Var<'static>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string().into(), v.to_string().into()))
            .collect()
    }

    /// A request from 10.0.0.5 to backend:8080, mounted at /app.
    fn base(extra: &[(&str, &str)]) -> Vec<Var<'static>> {
        let mut v = vars(&[
            ("REMOTE_ADDR", "10.0.0.5"),
            ("SERVER_NAME", "backend"),
            ("SERVER_PORT", "8080"),
            ("HTTP_HOST", "backend:8080"),
            ("REQUEST_SCHEME", "http"),
            ("SCRIPT_NAME", "/app"),
        ]);
        v.extend(vars(extra));
        v
    }

    fn key(name: &str) -> String {
        cgi_key(name).unwrap()
    }

    /// Every registry header with a value that has an effect.
    fn all_headers() -> Vec<Var<'static>> {
        let value = |name: &str| match name {
            "X-Forwarded-For" => "203.0.113.1",
            "X-Client-IP" => "203.0.113.2",
            "X-Real-IP" => "203.0.113.3",
            "X-Forwarded-Host" => "www.example.com:8443",
            "X-Host" => "x-host.example",
            "X-Forwarded-Server" => "front.example.com",
            "X-Forwarded-Port" => "8443",
            "X-Script-Name" => "/shop",
            "X-Forwarded-Script-Name" => "/store",
            "X-Forwarded-Proto" | "X-Forwarded-Scheme" | "X-Scheme" => "https",
            _ => "On",
        };
        REGISTRY
            .iter()
            .map(|h| (h.key.into(), value(h.name).into()))
            .collect()
    }

    #[test]
    fn nothing_configured_changes_nothing() {
        let mut v = base(&[]);
        v.extend(all_headers());
        let before = v.clone();
        assert_eq!(apply(&mut v, &ProxyTrust::default()), Outcome::default());
        assert_eq!(v, before);
        // Proxies without headers: nothing either.
        assert_eq!(
            apply(&mut v, &trust(&[], &["10.0.0.0/8"])),
            Outcome::default()
        );
        assert_eq!(v, before);
    }

    #[test]
    fn registry_categories() {
        let synonyms = |name: &str| -> Vec<&str> {
            let c = lookup(name).unwrap().category;
            REGISTRY
                .iter()
                .filter(|h| h.category == c)
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(
            synonyms("X-Real-IP"),
            ["X-Forwarded-For", "X-Client-IP", "X-Real-IP"]
        );
        assert_eq!(synonyms("X-Host"), ["X-Forwarded-Host", "X-Host"]);
        assert_eq!(synonyms("X-Forwarded-Server"), ["X-Forwarded-Server"]);
        assert_eq!(synonyms("X-Forwarded-Port"), ["X-Forwarded-Port"]);
        assert_eq!(
            synonyms("X-Script-Name"),
            ["X-Script-Name", "X-Forwarded-Script-Name"]
        );
        assert_eq!(
            synonyms("X-HTTPS"),
            [
                "X-Forwarded-Proto",
                "X-Forwarded-Scheme",
                "X-Scheme",
                "X-Forwarded-HTTPS",
                "X-Forwarded-SSL",
                "X-HTTPS"
            ]
        );
        for h in REGISTRY {
            assert_eq!(cgi_key(h.name).as_deref(), Some(h.key));
        }
    }

    /// Each header alone, with every header of the registry sent: the
    /// effect of the named one, its synonyms removed, the other categories
    /// untouched. Trusted peer: no list, or the peer in the list.
    #[test]
    fn each_header_from_a_trusted_peer() {
        for lists in [&[][..], &["10.0.0.0/8"][..]] {
            for h in REGISTRY {
                let t = trust(&[h.name], lists);
                let mut v = base(&[]);
                v.extend(all_headers());
                let sent = get(&v, h.key).unwrap().to_string();
                let o = apply(&mut v, &t);
                assert_eq!(o.applied, [h.name], "{}", h.name);
                // The named header is passed on as it came.
                assert_eq!(get(&v, h.key), Some(sent.as_str()), "{}", h.name);
                for other in REGISTRY.iter().filter(|o| o.key != h.key) {
                    let kept = get(&v, other.key).is_some();
                    assert_eq!(
                        kept,
                        other.category != h.category,
                        "{} {}",
                        h.name,
                        other.name
                    );
                }
                let (var, want) = match h.effect {
                    Effect::ForwardedFor | Effect::RemoteAddr => ("REMOTE_ADDR", sent.as_str()),
                    Effect::HttpHost => ("HTTP_HOST", sent.as_str()),
                    Effect::ServerName => ("SERVER_NAME", sent.as_str()),
                    Effect::ServerPort => ("SERVER_PORT", sent.as_str()),
                    Effect::MountPoint => ("mod_wsgi.mount_point", sent.as_str()),
                    Effect::SchemeName | Effect::SchemeFlag => ("HTTPS", "1"),
                };
                assert_eq!(get(&v, var), Some(want), "{}", h.name);
                assert_eq!(
                    get(&v, "mod_wsgi.mount_point"),
                    (h.effect == Effect::MountPoint).then_some(sent.as_str())
                );
                // REQUEST_SCHEME is Apache's, as in mod_wsgi.
                assert_eq!(get(&v, "REQUEST_SCHEME"), Some("http"));
            }
        }
    }

    /// The peer not in the list: nothing applied, every synonym of a
    /// configured header's category removed (the named one too), the
    /// other categories untouched.
    #[test]
    fn each_header_from_an_untrusted_peer() {
        for h in REGISTRY {
            let t = trust(&[h.name], &["192.168.0.0/16", "::1"]);
            let mut v = base(&[]);
            v.extend(all_headers());
            let o = apply(&mut v, &t);
            assert!(o.applied.is_empty());
            for other in REGISTRY {
                let kept = get(&v, other.key).is_some();
                assert_eq!(
                    kept,
                    other.category != h.category,
                    "{} {}",
                    h.name,
                    other.name
                );
            }
            let mut want = base(&[]);
            want.extend(all_headers());
            want.retain(|(k, _)| get(&v, k).is_some());
            assert_eq!(v, want, "{}: nothing else changes", h.name);
        }
    }

    #[test]
    fn peer_address_that_is_not_an_address_is_not_trusted() {
        let t = trust(&["X-Real-IP"], &["0.0.0.0/0"]);
        let mut v = base(&[("HTTP_X_REAL_IP", "1.2.3.4")]);
        set(&mut v, "REMOTE_ADDR", "localhost");
        apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("localhost"));
        assert_eq!(get(&v, "HTTP_X_REAL_IP"), None);
        let mut v = base(&[("HTTP_X_REAL_IP", "1.2.3.4")]);
        v.retain(|(k, _)| k != "REMOTE_ADDR");
        apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), None);
        assert_eq!(get(&v, "HTTP_X_REAL_IP"), None);
        // An IPv4-mapped IPv6 peer matches an IPv4 network.
        let mut v = base(&[("HTTP_X_REAL_IP", "1.2.3.4")]);
        set(&mut v, "REMOTE_ADDR", "::ffff:10.0.0.5");
        apply(&mut v, &trust(&["X-Real-IP"], &["10.0.0.0/8"]));
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("1.2.3.4"));
    }

    #[test]
    fn a_matched_category_without_its_header_loses_every_synonym() {
        // Trusted peer, X-Forwarded-For named but not sent: the synonyms a
        // client may have sent go, REMOTE_ADDR stays.
        let t = trust(&["X-Forwarded-For"], &[]);
        let mut v = base(&[
            ("HTTP_X_REAL_IP", "1.2.3.4"),
            ("HTTP_X_CLIENT_IP", "1.2.3.5"),
        ]);
        let o = apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("10.0.0.5"));
        assert_eq!(get(&v, "HTTP_X_REAL_IP"), None);
        assert_eq!(get(&v, "HTTP_X_CLIENT_IP"), None);
        assert_eq!(o.dropped, ["X-Client-IP", "X-Real-IP"]);
    }

    #[test]
    fn names_are_matched_as_mod_wsgi_turns_them_into_variables() {
        // Any case; unknown names and names mod_wsgi cannot turn into a
        // variable are ignored.
        let t = trust(&["x-REAL-ip", "Forwarded", "X_Forwarded_Host"], &[]);
        let mut v = base(&[
            ("HTTP_X_REAL_IP", "1.2.3.4"),
            ("HTTP_X_FORWARDED_HOST", "evil.example"),
            ("HTTP_FORWARDED", "for=1.1.1.1"),
        ]);
        apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("1.2.3.4"));
        assert_eq!(get(&v, "HTTP_HOST"), Some("backend:8080"));
        assert_eq!(get(&v, "HTTP_X_FORWARDED_HOST"), Some("evil.example"));
        assert_eq!(get(&v, "HTTP_FORWARDED"), Some("for=1.1.1.1"));
        assert!(is_supported_header("x-forwarded-for"));
        assert!(is_supported_header("X-Forwarded-Script-Name"));
        assert!(!is_supported_header("Forwarded"));
        assert!(!is_supported_header("X_Forwarded_For"));
    }

    #[test]
    fn synonyms_apply_in_configuration_order_and_the_last_wins() {
        // Both named and both sent: each applies in turn, the last one is
        // kept, the earlier one removed.
        let t = trust(&["X-Forwarded-Proto", "X-Forwarded-SSL"], &[]);
        let mut v = base(&[
            ("HTTP_X_FORWARDED_PROTO", "https"),
            ("HTTP_X_FORWARDED_SSL", "off"),
        ]);
        let o = apply(&mut v, &t);
        assert_eq!(get(&v, "HTTPS"), None);
        assert_eq!(get(&v, "HTTP_X_FORWARDED_PROTO"), None);
        assert_eq!(get(&v, "HTTP_X_FORWARDED_SSL"), Some("off"));
        assert_eq!(o.applied, ["X-Forwarded-Proto", "X-Forwarded-SSL"]);
        // The other order.
        let t = trust(&["X-Forwarded-SSL", "X-Forwarded-Proto"], &[]);
        let mut v = base(&[
            ("HTTP_X_FORWARDED_PROTO", "https"),
            ("HTTP_X_FORWARDED_SSL", "off"),
        ]);
        apply(&mut v, &t);
        assert_eq!(get(&v, "HTTPS"), Some("1"));
        assert_eq!(get(&v, "HTTP_X_FORWARDED_PROTO"), Some("https"));
        assert_eq!(get(&v, "HTTP_X_FORWARDED_SSL"), None);
        // Only one of them sent: that one wins.
        let mut v = base(&[("HTTP_X_FORWARDED_PROTO", "https")]);
        apply(&mut v, &t);
        assert_eq!(get(&v, "HTTPS"), Some("1"));
        assert_eq!(get(&v, "HTTP_X_FORWARDED_PROTO"), Some("https"));
        // A value that changes nothing still wins.
        let t = trust(&["X-Real-IP", "X-Forwarded-For"], &[]);
        let mut v = base(&[
            ("HTTP_X_REAL_IP", "1.2.3.4"),
            ("HTTP_X_FORWARDED_FOR", " , "),
        ]);
        let o = apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("1.2.3.4"));
        assert_eq!(get(&v, "HTTP_X_REAL_IP"), None);
        assert_eq!(get(&v, "HTTP_X_FORWARDED_FOR"), Some(" , "));
        assert_eq!(o.unusable, ["X-Forwarded-For"]);
    }

    #[test]
    fn scheme_values() {
        let cases = [
            ("X-Forwarded-Proto", "https", Some(true)),
            ("X-Forwarded-Proto", "HTTPS", Some(true)),
            ("X-Forwarded-Proto", "http", Some(false)),
            ("X-Forwarded-Proto", "HTTP", Some(false)),
            ("X-Forwarded-Proto", "https, http", None),
            ("X-Forwarded-Proto", " https", None),
            ("X-Forwarded-Proto", "wss", None),
            ("X-Forwarded-Proto", "on", None),
            ("X-Forwarded-Scheme", "https", Some(true)),
            ("X-Scheme", "http", Some(false)),
            ("X-Forwarded-SSL", "On", Some(true)),
            ("X-Forwarded-SSL", "TRUE", Some(true)),
            ("X-Forwarded-SSL", "1", Some(true)),
            ("X-Forwarded-SSL", "off", Some(false)),
            ("X-Forwarded-SSL", "False", Some(false)),
            ("X-Forwarded-SSL", "0", Some(false)),
            ("X-Forwarded-SSL", "yes", None),
            ("X-Forwarded-SSL", "https", None),
            ("X-Forwarded-HTTPS", "on", Some(true)),
            ("X-HTTPS", "0", Some(false)),
        ];
        for (header, value, on) in cases {
            let t = trust(&[header], &[]);
            for apache_https in [false, true] {
                let mut v = base(&[(key(header).as_str(), value)]);
                if apache_https {
                    v.push(("HTTPS".into(), "on".into()));
                }
                let o = apply(&mut v, &t);
                let want = match on {
                    Some(true) => Some("1"),
                    Some(false) => None,
                    None => apache_https.then_some("on"),
                };
                assert_eq!(get(&v, "HTTPS"), want, "{header}: {value}");
                assert_eq!(o.unusable.is_empty(), on.is_some(), "{header}: {value}");
                assert_eq!(get(&v, "REQUEST_SCHEME"), Some("http"));
            }
        }
    }

    #[test]
    fn values_are_taken_as_they_are() {
        let t = trust(
            &[
                "X-Client-IP",
                "X-Host",
                "X-Forwarded-Server",
                "X-Forwarded-Port",
                "X-Forwarded-Script-Name",
            ],
            &["10.0.0.5"],
        );
        let mut v = base(&[
            ("HTTP_X_CLIENT_IP", "unknown"),
            ("HTTP_X_HOST", "a.example, b.example"),
            ("HTTP_X_FORWARDED_SERVER", ""),
            ("HTTP_X_FORWARDED_PORT", "http"),
            ("HTTP_X_FORWARDED_SCRIPT_NAME", "/shop/"),
        ]);
        let o = apply(&mut v, &t);
        assert!(o.unusable.is_empty());
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("unknown"));
        assert_eq!(get(&v, "HTTP_HOST"), Some("a.example, b.example"));
        assert_eq!(get(&v, "SERVER_NAME"), Some(""));
        assert_eq!(get(&v, "SERVER_PORT"), Some("http"));
        // Apache's SCRIPT_NAME stays for mod_wsgi.script_name; the mount
        // point becomes the environ's SCRIPT_NAME (`environ::build`).
        assert_eq!(get(&v, "SCRIPT_NAME"), Some("/app"));
        assert_eq!(get(&v, "mod_wsgi.mount_point"), Some("/shop/"));
        // Variables keep their place.
        assert_eq!(v[0].0, "REMOTE_ADDR");
        assert_eq!(v[2], ("SERVER_PORT".into(), "http".into()));
    }

    #[test]
    fn forwarded_for_without_a_list_takes_the_first_entry() {
        let t = trust(&["X-Forwarded-For"], &[]);
        for (value, want) in [
            ("203.0.113.7", "203.0.113.7"),
            ("203.0.113.7, 10.0.0.9, 10.0.0.8", "203.0.113.7"),
            (" , ,\t198.51.100.2 , 10.0.0.9", "198.51.100.2"),
            ("unknown, 10.0.0.9", "unknown"),
            ("[2001:db8::1]:4711", "[2001:db8::1]:4711"),
        ] {
            let mut v = base(&[("HTTP_X_FORWARDED_FOR", value)]);
            apply(&mut v, &t);
            assert_eq!(get(&v, "REMOTE_ADDR"), Some(want), "{value}");
            // The header itself is left as it came.
            assert_eq!(get(&v, "HTTP_X_FORWARDED_FOR"), Some(value));
        }
        let mut v = base(&[("HTTP_X_FORWARDED_FOR", " , ")]);
        let o = apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("10.0.0.5"));
        assert_eq!(o.unusable, ["X-Forwarded-For"]);
    }

    #[test]
    fn forwarded_for_with_a_list_walks_from_the_right() {
        let t = trust(&["x-forwarded-for"], &["10.0.0.0/8", "2001:db8:ff::/48"]);
        for (value, addr, header) in [
            // The last entry is not a trusted proxy: it is the client.
            ("1.1.1.1, 198.51.100.2", "198.51.100.2", "198.51.100.2"),
            // A client-made "1.1.1.1", the real client the first trusted
            // proxy appended, then another trusted hop.
            (
                "1.1.1.1, 198.51.100.2, 10.0.0.9",
                "198.51.100.2",
                "198.51.100.2, 10.0.0.9",
            ),
            (
                "198.51.100.2,,10.1.1.1 ,10.0.0.9",
                "198.51.100.2",
                "198.51.100.2, 10.1.1.1, 10.0.0.9",
            ),
            // All trusted: the leftmost.
            ("10.1.1.1, 10.0.0.9", "10.1.1.1", "10.1.1.1, 10.0.0.9"),
            // IPv6, written as it came.
            (
                "2001:DB8::1, 2001:db8:ff::2",
                "2001:DB8::1",
                "2001:DB8::1, 2001:db8:ff::2",
            ),
        ] {
            let mut v = base(&[("HTTP_X_FORWARDED_FOR", value)]);
            let o = apply(&mut v, &t);
            assert_eq!(get(&v, "REMOTE_ADDR"), Some(addr), "{value}");
            assert_eq!(get(&v, "HTTP_X_FORWARDED_FOR"), Some(header), "{value}");
            assert_eq!(o.applied, ["X-Forwarded-For"]);
        }
        // Where the walk stops on something that is not an IP address,
        // nothing changes (mod_wsgi would take it as REMOTE_ADDR).
        for value in [
            "1.1.1.1, bogus",
            "1.1.1.1, bogus, 10.0.0.9",
            "proxy.example, 10.0.0.9",
            "[2001:db8::1]:4711",
            "198.51.100.2:4711, 10.0.0.9",
        ] {
            let mut v = base(&[("HTTP_X_FORWARDED_FOR", value)]);
            let o = apply(&mut v, &t);
            assert_eq!(get(&v, "REMOTE_ADDR"), Some("10.0.0.5"), "{value}");
            assert_eq!(get(&v, "HTTP_X_FORWARDED_FOR"), Some(value), "{value}");
            assert_eq!(o.unusable, ["X-Forwarded-For"], "{value}");
        }
        // Garbage to the left of the client does not matter.
        let mut v = base(&[("HTTP_X_FORWARDED_FOR", "bogus, 198.51.100.2, 10.0.0.9")]);
        apply(&mut v, &t);
        assert_eq!(get(&v, "REMOTE_ADDR"), Some("198.51.100.2"));
    }
}
