//! What a daemon process may do once it runs: never as root, with the
//! user, group and umask its group names, without capabilities; and what
//! an application is told about the client's credentials.
//!
//! Covered elsewhere, not repeated here:
//! - user=root refused by `apache2 -t`: config_errors.rs
//!   `daemon_user_root_refused` (and `user=#0` at parse level, the unit test
//!   `config::daemon::tests::root_is_refused_by_name_and_number`);
//! - Authorization hidden unless WSGIPassAuthorization On, embedded mode:
//!   embedded_basic.rs `authorization_hidden_unless_passed`; daemon mode
//!   behind a WSGI auth provider: hooks.rs
//!   `basic_auth_provider_guards_daemon_mode`;
//! - proxy headers honoured only from WSGITrustedProxies, both modes:
//!   trusted_proxies.rs `every_header_embedded` / `every_header_daemon`.

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;

/// Reports its pid, and with `?PATH` creates the file PATH first.
const APP: &str = r#"
import os
def application(environ, start_response):
    path = environ.get("QUERY_STRING")
    if path:
        with open(path, "w") as f:
            f.write("made by the application")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"#;

/// The fields of a `Name:` line of /proc/PID/status.
fn status_fields(pid: u32, name: &str) -> Vec<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn user(name: &str) -> nix::unistd::User {
    nix::unistd::User::from_name(name).unwrap().unwrap()
}

fn group(name: &str) -> nix::unistd::Group {
    nix::unistd::Group::from_name(name).unwrap().unwrap()
}

/// Real, effective, saved and file-system ids all `id`; no capability left.
fn assert_identity(pid: u32, uid: u32, gid: u32, groups: &[u32]) {
    let ids = |v: u32| vec![v.to_string(); 4];
    assert_eq!(status_fields(pid, "Uid"), ids(uid), "Uid of {pid}");
    assert_eq!(status_fields(pid, "Gid"), ids(gid), "Gid of {pid}");
    let mut have: Vec<u32> = status_fields(pid, "Groups")
        .iter()
        .map(|g| g.parse().unwrap())
        .collect();
    have.sort_unstable();
    assert_eq!(have, groups, "supplementary groups of {pid}");
    for caps in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(
            status_fields(pid, caps),
            vec!["0000000000000000"],
            "{caps} of {pid}"
        );
    }
}

#[test]
fn daemons_run_as_their_user_and_group_with_their_umask_never_as_root() {
    if !nix::unistd::Uid::effective().is_root() {
        return; // Apache must start as root to switch users.
    }
    // Where the applications write: anyone may create files.
    let out = temp_dir_with_mode("mwrs-priv-", 0o1777);
    let apache = Apache::builder()
        .file("app/a.wsgi", APP)
        .directives(
            "WSGIDaemonProcess plain threads=1\n\
             WSGIDaemonProcess other threads=1 user=nobody group=nogroup umask=0027\n\
             WSGIScriptAlias /plain {dir}/app/a.wsgi process-group=plain\n\
             WSGIScriptAlias /other {dir}/app/a.wsgi process-group=other\n",
        )
        .start();
    let made = |mount: &str| {
        let path = out.path().join(mount);
        let r = apache.get(&format!("/{mount}?{}", path.display()));
        assert_eq!(r.status, 200, "{}", apache.error_log());
        let pid: u32 = r.text().parse().unwrap();
        (pid, std::fs::metadata(path).unwrap())
    };

    // No user=: Apache's User and Group, and only the groups that user has.
    let www = user("www-data");
    let (pid, file) = made("plain");
    let www_groups =
        nix::unistd::getgrouplist(&std::ffi::CString::new("www-data").unwrap(), www.gid).unwrap();
    let mut www_groups: Vec<u32> = www_groups.iter().map(|g| g.as_raw()).collect();
    www_groups.sort_unstable();
    www_groups.dedup();
    assert_identity(pid, www.uid.as_raw(), www.gid.as_raw(), &www_groups);
    assert_eq!(
        (file.uid(), file.gid()),
        (www.uid.as_raw(), www.gid.as_raw())
    );

    // user=nobody group=nogroup umask=0027.
    let nobody = user("nobody").uid.as_raw();
    let nogroup = group("nogroup").gid.as_raw();
    let (pid, file) = made("other");
    assert_identity(pid, nobody, nogroup, &[nogroup]);
    assert_eq!(status_fields(pid, "Umask"), vec!["0027"]);
    assert_eq!((file.uid(), file.gid()), (nobody, nogroup));
    assert_eq!(file.mode() & 0o777, 0o640, "0666 under umask 0027");
}

#[test]
fn numeric_root_user_is_refused_by_the_configuration_test() {
    let t = Apache::builder()
        .file("app/a.wsgi", APP)
        .directives("WSGIDaemonProcess g user=#0\n")
        .config_test();
    assert!(!t.ok, "{}", t.output);
    assert!(
        t.output.contains("daemon processes may not run as root"),
        "{}",
        t.output
    );
}

const AUTH_APP: &str = "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [repr(environ.get('HTTP_AUTHORIZATION')).encode()]\n";

#[test]
fn authorization_reaches_a_daemon_only_when_passed() {
    let apache = Apache::builder()
        .file("app/a.wsgi", AUTH_APP)
        .directives(
            "WSGIDaemonProcess g threads=1\n\
             WSGIProcessGroup g\n\
             WSGIScriptAlias /hidden {dir}/app/a.wsgi\n\
             WSGIScriptAlias /option {dir}/app/a.wsgi pass-authorization=On\n\
             WSGIScriptAlias /dir {dir}/app/a.wsgi\n\
             <Location /dir>\n  WSGIPassAuthorization On\n</Location>\n",
        )
        .start();
    let auth = [("Authorization", "Basic dXNlcjpwdw==")];
    let text = |path: &str| {
        let r = apache.request("GET", path, &auth, b"");
        assert_eq!(r.status, 200, "{}", apache.error_log());
        r.text()
    };
    assert_eq!(text("/hidden"), "None");
    assert_eq!(text("/option"), "'Basic dXNlcjpwdw=='");
    assert_eq!(text("/dir"), "'Basic dXNlcjpwdw=='");
}
