//! Per-directory configuration (S V D [H] directives).
//!
//! Every setting is optional so that merging can tell "not said here" from
//! "said Off"; the accessors give mod_wsgi's defaults.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use super::Origin;
use super::server::ScriptOptions;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirConfig {
    pub process_group: Option<String>,
    pub application_group: Option<String>,
    pub callable_object: Option<String>,
    pub pass_authorization: Option<bool>,
    pub script_reloading: Option<bool>,
    pub error_override: Option<bool>,
    pub chunked_request: Option<bool>,
    pub map_head_to_get: Option<MapHeadToGet>,
    pub ignore_activity: Option<bool>,
    pub enable_sendfile: Option<bool>,
    /// Header names as written (e.g. "X-Forwarded-For"); empty = not set.
    pub trusted_proxy_headers: Vec<String>,
    /// Empty = not set (no proxy trusted).
    pub trusted_proxies: Vec<TrustedProxy>,
    pub pass_apache_request: Option<bool>,
    /// Groups this directory may delegate to; empty = not set (no limit).
    pub restrict_process: Vec<String>,
    pub access_script: Option<ScriptFile>,
    pub auth_user_script: Option<ScriptFile>,
    pub auth_group_script: Option<ScriptFile>,
    pub group_authoritative: Option<bool>,
    pub dispatch_script: Option<ScriptFile>,
    /// WSGIHandlerScript entries; a later one with the same name replaces
    /// an earlier one.
    pub handler_scripts: Vec<HandlerScript>,
}

impl DirConfig {
    pub fn process_group(&self) -> &str {
        self.process_group.as_deref().unwrap_or("%{GLOBAL}")
    }
    pub fn application_group(&self) -> &str {
        self.application_group.as_deref().unwrap_or("%{RESOURCE}")
    }
    pub fn callable_object(&self) -> &str {
        self.callable_object.as_deref().unwrap_or("application")
    }
    pub fn pass_authorization(&self) -> bool {
        self.pass_authorization.unwrap_or(false)
    }
    pub fn script_reloading(&self) -> bool {
        self.script_reloading.unwrap_or(true)
    }
    pub fn error_override(&self) -> bool {
        self.error_override.unwrap_or(false)
    }
    pub fn chunked_request(&self) -> bool {
        self.chunked_request.unwrap_or(false)
    }
    pub fn map_head_to_get(&self) -> MapHeadToGet {
        self.map_head_to_get.unwrap_or(MapHeadToGet::Auto)
    }
    pub fn ignore_activity(&self) -> bool {
        self.ignore_activity.unwrap_or(false)
    }
    pub fn enable_sendfile(&self) -> bool {
        self.enable_sendfile.unwrap_or(false)
    }
    pub fn pass_apache_request(&self) -> bool {
        self.pass_apache_request.unwrap_or(false)
    }
    pub fn group_authoritative(&self) -> bool {
        self.group_authoritative.unwrap_or(true)
    }

    /// Is `ip` one of the trusted proxies?
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|p| p.contains(ip))
    }

    /// The handler script registered under `name` (for SetHandler/AddHandler).
    pub fn handler_script(&self, name: &str) -> Option<&HandlerScript> {
        self.handler_scripts.iter().rev().find(|h| h.name == name)
    }

    /// The more specific config wins, setting by setting (mod_wsgi's
    /// merge): `add` is the inner section, `base` the enclosing one. Lists
    /// are replaced as a whole, except handler scripts, which are overlaid
    /// by name.
    pub fn merge(base: &DirConfig, add: &DirConfig) -> DirConfig {
        fn pick<T: Clone>(base: &Option<T>, add: &Option<T>) -> Option<T> {
            add.as_ref().or(base.as_ref()).cloned()
        }
        fn pick_list<T: Clone>(base: &[T], add: &[T]) -> Vec<T> {
            if add.is_empty() { base } else { add }.to_vec()
        }
        let mut handler_scripts: Vec<HandlerScript> = base
            .handler_scripts
            .iter()
            .filter(|b| !add.handler_scripts.iter().any(|a| a.name == b.name))
            .cloned()
            .collect();
        handler_scripts.extend(add.handler_scripts.iter().cloned());
        DirConfig {
            process_group: pick(&base.process_group, &add.process_group),
            application_group: pick(&base.application_group, &add.application_group),
            callable_object: pick(&base.callable_object, &add.callable_object),
            pass_authorization: pick(&base.pass_authorization, &add.pass_authorization),
            script_reloading: pick(&base.script_reloading, &add.script_reloading),
            error_override: pick(&base.error_override, &add.error_override),
            chunked_request: pick(&base.chunked_request, &add.chunked_request),
            map_head_to_get: pick(&base.map_head_to_get, &add.map_head_to_get),
            ignore_activity: pick(&base.ignore_activity, &add.ignore_activity),
            enable_sendfile: pick(&base.enable_sendfile, &add.enable_sendfile),
            trusted_proxy_headers: pick_list(
                &base.trusted_proxy_headers,
                &add.trusted_proxy_headers,
            ),
            trusted_proxies: pick_list(&base.trusted_proxies, &add.trusted_proxies),
            pass_apache_request: pick(&base.pass_apache_request, &add.pass_apache_request),
            restrict_process: pick_list(&base.restrict_process, &add.restrict_process),
            access_script: pick(&base.access_script, &add.access_script),
            auth_user_script: pick(&base.auth_user_script, &add.auth_user_script),
            auth_group_script: pick(&base.auth_group_script, &add.auth_group_script),
            group_authoritative: pick(&base.group_authoritative, &add.group_authoritative),
            dispatch_script: pick(&base.dispatch_script, &add.dispatch_script),
            handler_scripts,
        }
    }
}

/// WSGIMapHEADToGET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapHeadToGet {
    Off,
    On,
    /// Map only when an output filter is registered that might need the body.
    Auto,
}

/// A script named by WSGIAccessScript, WSGIAuthUserScript,
/// WSGIAuthGroupScript or WSGIDispatchScript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFile {
    pub path: String,
    /// Only process_group and application_group are ever set here.
    pub options: ScriptOptions,
    pub origin: Origin,
}

/// WSGIHandlerScript name path [options].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerScript {
    pub name: String,
    pub path: String,
    pub options: ScriptOptions,
    pub origin: Origin,
}

/// One WSGITrustedProxies entry: an address or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    pub network: IpAddr,
    pub prefix_len: u8,
}

impl TrustedProxy {
    /// Parse what Apache's `Require ip` accepts: "10.0.0.1", "10.0.0.0/8",
    /// "10.0.0.0/255.0.0.0", partial IPv4 "10.1" (= 10.1.0.0/16), "::1",
    /// "fd00::/8". Host bits beyond the prefix are cleared.
    pub fn parse(s: &str) -> Result<TrustedProxy, String> {
        let bad = || {
            format!("'{s}' is not an IP address or network (e.g. 10.0.0.1, 10.0.0.0/8, fd00::/8)")
        };
        let (addr, mask) = match s.split_once('/') {
            Some((a, m)) => (a, Some(m)),
            None => (s, None),
        };
        let (network, max_len, implied) = match addr.parse::<IpAddr>() {
            Ok(ip @ IpAddr::V4(_)) => (ip, 32, 32),
            Ok(ip @ IpAddr::V6(_)) => (ip, 128, 128),
            Err(_) => {
                let (ip, octets) = partial_ipv4(addr).ok_or_else(bad)?;
                (IpAddr::V4(ip), 32, 8 * octets)
            }
        };
        let prefix_len = match mask {
            None => implied,
            Some(m) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) => {
                match m.parse::<u8>() {
                    Ok(n) if n <= max_len => n,
                    _ => return Err(bad()),
                }
            }
            Some(m) => match (network, m.parse::<Ipv4Addr>()) {
                (IpAddr::V4(_), Ok(mask)) => {
                    let bits = u32::from(mask);
                    // A netmask must be contiguous ones then zeros.
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return Err(bad());
                    }
                    bits.leading_ones() as u8
                }
                _ => return Err(bad()),
            },
        };
        Ok(TrustedProxy {
            network: mask_addr(network, prefix_len),
            prefix_len,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // Treat IPv4-mapped IPv6 peers ("::ffff:10.0.0.1") as IPv4.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask_addr(ip, self.prefix_len) == self.network
            }
            _ => false,
        }
    }
}

impl fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// "10", "10.1", "10.1.2" -> address with the missing octets zero.
fn partial_ipv4(s: &str) -> Option<(Ipv4Addr, u8)> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        octets[i] = p.parse().ok()?;
    }
    Some((Ipv4Addr::from(octets), parts.len() as u8))
}

fn mask_addr(ip: IpAddr, prefix_len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len))
                .unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults() {
        let d = DirConfig::default();
        assert_eq!(d.process_group(), "%{GLOBAL}");
        assert_eq!(d.application_group(), "%{RESOURCE}");
        assert_eq!(d.callable_object(), "application");
        assert!(d.script_reloading());
        assert!(!d.pass_authorization());
        assert!(!d.error_override());
        assert!(!d.chunked_request());
        assert_eq!(d.map_head_to_get(), MapHeadToGet::Auto);
        assert!(!d.ignore_activity());
        assert!(!d.enable_sendfile());
        assert!(!d.pass_apache_request());
        assert!(d.group_authoritative());
        assert!(!d.is_trusted_proxy(ip("127.0.0.1")));
    }

    #[test]
    fn trusted_proxy_forms() {
        let p = TrustedProxy::parse("10.1.2.3").unwrap();
        assert_eq!(p.to_string(), "10.1.2.3/32");
        assert!(p.contains(ip("10.1.2.3")));
        assert!(!p.contains(ip("10.1.2.4")));

        let p = TrustedProxy::parse("10.1.2.3/8").unwrap();
        assert_eq!(p.to_string(), "10.0.0.0/8");
        assert!(p.contains(ip("10.200.0.1")));
        assert!(p.contains(ip("::ffff:10.0.0.9")));
        assert!(!p.contains(ip("11.0.0.1")));

        assert_eq!(
            TrustedProxy::parse("192.168.0.0/255.255.0.0")
                .unwrap()
                .prefix_len,
            16
        );
        assert_eq!(
            TrustedProxy::parse("172.16").unwrap().to_string(),
            "172.16.0.0/16"
        );

        let p = TrustedProxy::parse("fd00::/8").unwrap();
        assert!(p.contains(ip("fd12::1")));
        assert!(!p.contains(ip("fe80::1")));
        assert!(!p.contains(ip("10.0.0.1")));
        assert!(TrustedProxy::parse("::1").unwrap().contains(ip("::1")));
        assert_eq!(TrustedProxy::parse("0.0.0.0/0").unwrap().prefix_len, 0);
    }

    #[test]
    fn bad_trusted_proxies() {
        for bad in [
            "",
            "localhost",
            "10.0.0.256",
            "10.0.0.0/33",
            "10.0.0.0/",
            "::1/129",
            "10.0.0.0/255.0.255.0",
            "fd00::/255.0.0.0",
            "1.2.3.4.5",
            "10..1",
        ] {
            let e = TrustedProxy::parse(bad).expect_err(bad);
            assert!(e.contains(&format!("'{bad}'")), "{e}");
        }
    }

    fn handler(name: &str, path: &str) -> HandlerScript {
        HandlerScript {
            name: name.into(),
            path: path.into(),
            options: ScriptOptions::default(),
            origin: Origin {
                file: "t".into(),
                line: 1,
            },
        }
    }

    #[test]
    fn merge_more_specific_wins() {
        let base = DirConfig {
            process_group: Some("outer".into()),
            callable_object: Some("app".into()),
            script_reloading: Some(false),
            trusted_proxy_headers: vec!["X-Forwarded-For".into()],
            restrict_process: vec!["a".into()],
            handler_scripts: vec![handler("h1", "/base1"), handler("h2", "/base2")],
            ..DirConfig::default()
        };
        let add = DirConfig {
            process_group: Some("inner".into()),
            script_reloading: Some(true),
            restrict_process: vec!["b".into(), "c".into()],
            handler_scripts: vec![handler("h2", "/add2"), handler("h3", "/add3")],
            ..DirConfig::default()
        };
        let m = DirConfig::merge(&base, &add);
        assert_eq!(m.process_group(), "inner");
        assert_eq!(m.callable_object(), "app");
        assert!(m.script_reloading());
        assert_eq!(m.trusted_proxy_headers, ["X-Forwarded-For"]);
        assert_eq!(m.restrict_process, ["b", "c"]);
        assert_eq!(m.handler_script("h1").unwrap().path, "/base1");
        assert_eq!(m.handler_script("h2").unwrap().path, "/add2");
        assert_eq!(m.handler_script("h3").unwrap().path, "/add3");
        assert_eq!(m.handler_scripts.len(), 3);
        // Merging with an empty config changes nothing.
        assert_eq!(DirConfig::merge(&base, &DirConfig::default()), base);
        assert_eq!(DirConfig::merge(&DirConfig::default(), &base), base);
    }
}
