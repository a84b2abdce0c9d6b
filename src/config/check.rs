//! Checks that need the whole configuration: group names are global, and a
//! group may be used before (or after) the WSGIDaemonProcess that defines it.

use std::collections::HashMap;

use super::directives::{DIRECTIVES, Status};
use super::{ConfigError, Origin, ServerConfig};

/// Run once every directive has been applied.
///
/// - a daemon group name may be defined only once across all servers
///   (its socket and processes are global);
/// - every recorded group reference must name a group defined in the same
///   server or in the main server (a vhost's group is private to it, as in
///   mod_wsgi). Dynamic names (%{GLOBAL}, %{ENV:...}) were never recorded.
pub fn check(main: &ServerConfig, vhosts: &[&ServerConfig]) -> Result<(), ConfigError> {
    let mut seen: HashMap<&str, &Origin> = HashMap::new();
    for server in std::iter::once(main).chain(vhosts.iter().copied()) {
        for group in &server.daemon_groups {
            if let Some(first) = seen.insert(&group.name, &group.origin) {
                // Apache hands check_config the merged vhost configs, which
                // repeat the main server's groups: the same definition, not a
                // second one.
                if *first == group.origin {
                    continue;
                }
                return Err(ConfigError::new(
                    "WSGIDaemonProcess",
                    format!(
                        "daemon process group '{}' is defined twice: at {} and at {}; \
                         group names must be unique across all virtual hosts",
                        group.name, first, group.origin
                    ),
                ));
            }
        }
    }

    for server in std::iter::once(main).chain(vhosts.iter().copied()) {
        for r in &server.group_refs {
            if server.daemon_group(&r.name).is_some() || main.daemon_group(&r.name).is_some() {
                continue;
            }
            let elsewhere = vhosts
                .iter()
                .find_map(|v| v.daemon_group(&r.name))
                .map(|g| {
                    format!(
                        " (a group of that name is defined at {}, in another virtual host, \
                         which makes it private to that host)",
                        g.origin
                    )
                })
                .unwrap_or_default();
            return Err(ConfigError::new(
                r.directive,
                format!(
                    "daemon process group '{}' used at {} is not defined in this virtual host \
                     or in the main server{elsewhere}; define it with WSGIDaemonProcess",
                    r.name, r.origin
                ),
            ));
        }
    }
    Ok(())
}

/// The NotYet directives used anywhere, each once, in DIRECTIVES order:
/// (directive name, what is missing). The edge logs one warning for each.
pub fn not_yet_used(
    main: &ServerConfig,
    vhosts: &[&ServerConfig],
) -> Vec<(&'static str, &'static str)> {
    let used = |i: &usize| {
        main.used_not_yet.contains(i) || vhosts.iter().any(|v| v.used_not_yet.contains(i))
    };
    (0..DIRECTIVES.len())
        .filter(used)
        .filter_map(|i| match DIRECTIVES[i].status {
            Status::NotYet(why) => Some((DIRECTIVES[i].name, why)),
            Status::Implemented => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::directives::index_of;
    use crate::config::{DirConfig, Scope, apply};

    /// Apply `lines` (directive name + args) to a fresh server config.
    fn server(file: &str, scope: Scope, lines: &[(&str, &[&str])]) -> ServerConfig {
        let mut s = ServerConfig::default();
        let mut d = DirConfig::default();
        for (n, (name, args)) in lines.iter().enumerate() {
            let origin = Origin {
                file: file.into(),
                line: n as u32 + 1,
            };
            apply(
                index_of(name).unwrap(),
                args,
                scope,
                &origin,
                &mut s,
                &mut d,
                &crate::config::server::RustRegex,
            )
            .unwrap();
        }
        s
    }

    #[test]
    fn duplicate_group_across_vhosts_names_both_origins() {
        let main = server(
            "main.conf",
            Scope::Server,
            &[("WSGIDaemonProcess", &["shop"])],
        );
        let v1 = server(
            "v1.conf",
            Scope::VirtualHost,
            &[("WSGIDaemonProcess", &["blog"])],
        );
        let v2 = server(
            "v2.conf",
            Scope::VirtualHost,
            &[
                ("WSGIScriptAlias", &["/", "/x.wsgi"]),
                ("WSGIDaemonProcess", &["shop"]),
            ],
        );
        assert!(check(&main, &[&v1]).is_ok());
        let e = check(&main, &[&v1, &v2]).unwrap_err();
        assert_eq!(e.directive, "WSGIDaemonProcess");
        assert!(
            e.message
                .contains("'shop' is defined twice: at main.conf:1 and at v2.conf:2"),
            "{e}"
        );

        let v3 = server(
            "v3.conf",
            Scope::VirtualHost,
            &[("WSGIDaemonProcess", &["blog"])],
        );
        let e = check(&main, &[&v1, &v3]).unwrap_err();
        assert!(e.message.contains("at v1.conf:1 and at v3.conf:1"), "{e}");
    }

    #[test]
    fn unknown_group_reference_names_its_origin() {
        let main = server(
            "main.conf",
            Scope::Server,
            &[
                ("WSGIDaemonProcess", &["shop"]),
                ("WSGIProcessGroup", &["shopp"]),
            ],
        );
        let e = check(&main, &[]).unwrap_err();
        assert_eq!(e.directive, "WSGIProcessGroup");
        assert!(
            e.message
                .contains("'shopp' used at main.conf:2 is not defined"),
            "{e}"
        );

        let main = server(
            "main.conf",
            Scope::Server,
            &[("WSGIScriptAlias", &["/", "/x.wsgi", "process-group=ghost"])],
        );
        let e = check(&main, &[]).unwrap_err();
        assert_eq!(e.directive, "WSGIScriptAlias");
    }

    #[test]
    fn reference_before_definition_is_fine() {
        let main = server(
            "main.conf",
            Scope::Server,
            &[
                ("WSGIProcessGroup", &["late"]),
                ("WSGIDaemonProcess", &["late"]),
            ],
        );
        assert!(check(&main, &[]).is_ok());
    }

    #[test]
    fn vhost_may_use_main_server_group_and_its_own() {
        let main = server(
            "main.conf",
            Scope::Server,
            &[("WSGIDaemonProcess", &["shared"])],
        );
        let v = server(
            "v.conf",
            Scope::VirtualHost,
            &[
                ("WSGIDaemonProcess", &["own"]),
                ("WSGIProcessGroup", &["shared"]),
                (
                    "WSGIScriptAlias",
                    &["/own", "/own.wsgi", "process-group=own"],
                ),
                ("WSGIProcessGroup", &["%{GLOBAL}"]),
                ("WSGIProcessGroup", &["%{ENV:GROUP}"]),
            ],
        );
        assert!(check(&main, &[&v]).is_ok());
    }

    #[test]
    fn vhost_group_is_private_to_its_vhost() {
        let main = server("main.conf", Scope::Server, &[]);
        let v1 = server(
            "v1.conf",
            Scope::VirtualHost,
            &[("WSGIDaemonProcess", &["one"])],
        );
        let v2 = server(
            "v2.conf",
            Scope::VirtualHost,
            &[("WSGIProcessGroup", &["one"])],
        );
        let e = check(&main, &[&v1, &v2]).unwrap_err();
        assert!(e.message.contains("used at v2.conf:1"), "{e}");
        assert!(
            e.message
                .contains("defined at v1.conf:1, in another virtual host"),
            "{e}"
        );
        // And the main server cannot use a vhost's group either.
        let main = server(
            "main.conf",
            Scope::Server,
            &[("WSGIProcessGroup", &["one"])],
        );
        assert!(check(&main, &[&v1]).is_err());
    }

    #[test]
    fn not_yet_used_lists_each_once_in_table_order() {
        let main = server(
            "main.conf",
            Scope::Server,
            &[
                ("WSGIScriptAlias", &["/", "/x.wsgi"]),
                ("WSGIFreeThreading", &["On"]),
                ("WSGIPerInterpreterGIL", &["On"]),
            ],
        );
        // Every directive still "not yet" is server-wide: the second
        // configuration stands for one more, as a vhost's would.
        let v = server(
            "v.conf",
            Scope::Server,
            &[
                ("WSGIPerInterpreterGIL", &["Off"]),
                ("WSGIFreeThreading", &["Off"]),
            ],
        );
        let used = not_yet_used(&main, &[&v]);
        let names: Vec<_> = used.iter().map(|u| u.0).collect();
        assert_eq!(names, ["WSGIPerInterpreterGIL"]);
        assert!(used[0].1.contains("not built yet"), "{}", used[0].1);
        assert!(not_yet_used(&ServerConfig::default(), &[]).is_empty());
    }
}
