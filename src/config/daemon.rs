//! WSGIDaemonProcess: the option table and the typed [`DaemonOptions`].
//!
//! Options are parsed through [`OPTIONS`], one row per option with its own
//! small parser, so adding an option is one line and the "allowed:" list in
//! the unknown-option error is always complete.

use std::time::Duration;

use nix::unistd::{Gid, Group, Uid, User};

use super::Origin;
use super::values;

/// A user named in an option, resolved when the configuration is read so a
/// typo fails `apache2 -t` instead of the daemon's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// Name as found in the password database (or "#N" when the numeric
    /// form names a uid without an entry).
    pub name: String,
    pub uid: u32,
}

/// A group named in an option, resolved like [`UserSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    pub name: String,
    pub gid: u32,
}

/// One `WSGIDaemonProcess` definition.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonGroup {
    pub name: String,
    pub options: DaemonOptions,
    pub origin: Origin,
}

/// Every WSGIDaemonProcess option, typed, with mod_wsgi's defaults.
///
/// Times are `Duration`s where zero means "off" (or "use the fallback"
/// noted on the field), as in mod_wsgi.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonOptions {
    /// Processes in the group (>= 1).
    pub processes: usize,
    /// True when `processes=` was given at all: mod_wsgi then reports
    /// wsgi.multiprocess True even for processes=1.
    pub multiprocess: bool,
    /// Request threads per process (>= 0; 0 = preload only).
    pub threads: usize,
    /// Process title; "%{GROUP}" means "(wsgi:NAME)".
    pub display_name: Option<String>,
    /// None = Apache's User.
    pub user: Option<UserSpec>,
    /// None = Apache's Group.
    pub group: Option<GroupSpec>,
    pub supplementary_groups: Vec<GroupSpec>,
    /// None = inherited.
    pub umask: Option<u32>,
    /// None = the user's home when user= is set, else Apache's cwd.
    pub home: Option<String>,
    pub chroot: Option<String>,
    pub lang: Option<String>,
    pub locale: Option<String>,
    pub python_home: Option<String>,
    /// Split on ':'.
    pub python_path: Vec<String>,
    pub python_eggs: Option<String>,
    /// None = Python's default.
    pub switch_interval: Option<Duration>,
    pub script_user: Option<UserSpec>,
    pub script_group: Option<GroupSpec>,
    /// Request thread stack size in bytes; None = OS default.
    pub stack_size: Option<usize>,
    pub maximum_requests: u64,
    pub restart_interval: Duration,
    pub inactivity_timeout: Duration,
    pub request_timeout: Duration,
    pub interrupt_timeout: Duration,
    pub deadlock_timeout: Duration,
    pub startup_timeout: Duration,
    pub graceful_timeout: Duration,
    /// Zero = graceful_timeout.
    pub eviction_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub connect_timeout: Duration,
    /// Zero = Apache's Timeout.
    pub socket_timeout: Duration,
    pub queue_timeout: Duration,
    pub listen_backlog: u32,
    /// How many ASGI requests a process's event loop may hold at once
    /// (ours, not mod_wsgi's); 0 = no limit but Apache's own.
    pub loop_held_limit: u64,
    /// None = Apache's User.
    pub socket_user: Option<UserSpec>,
    /// RLIMIT_CPU seconds; 0 = unlimited.
    pub cpu_time_limit: u64,
    /// nice value, -20..=19.
    pub cpu_priority: i32,
    /// RLIMIT_DATA bytes; 0 = unlimited.
    pub memory_limit: u64,
    /// RLIMIT_AS bytes; 0 = unlimited.
    pub virtual_memory_limit: u64,
    /// 0 = OS default, else >= 512.
    pub send_buffer_size: u32,
    /// 0 = OS default, else >= 512.
    pub receive_buffer_size: u32,
    /// Longest response header line from the daemon (0 given = default).
    pub header_buffer_size: usize,
    /// Flush after this many buffered bytes (0 given = default).
    pub response_buffer_size: usize,
    /// Zero = socket_timeout.
    pub response_socket_timeout: Duration,
    pub response_flush_delay: Duration,
    pub server_metrics: bool,
}

pub const DEFAULT_HEADER_BUFFER_SIZE: usize = 32768;
pub const DEFAULT_RESPONSE_BUFFER_SIZE: usize = 8 * 1024 * 1024;

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            processes: 1,
            multiprocess: false,
            threads: 15,
            display_name: None,
            user: None,
            group: None,
            supplementary_groups: Vec::new(),
            umask: None,
            home: None,
            chroot: None,
            lang: None,
            locale: None,
            python_home: None,
            python_path: Vec::new(),
            python_eggs: None,
            switch_interval: None,
            script_user: None,
            script_group: None,
            stack_size: None,
            maximum_requests: 0,
            restart_interval: Duration::ZERO,
            inactivity_timeout: Duration::ZERO,
            request_timeout: Duration::ZERO,
            interrupt_timeout: Duration::ZERO,
            deadlock_timeout: Duration::from_secs(300),
            startup_timeout: Duration::ZERO,
            graceful_timeout: Duration::from_secs(15),
            eviction_timeout: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(15),
            socket_timeout: Duration::ZERO,
            queue_timeout: Duration::ZERO,
            listen_backlog: 100,
            loop_held_limit: 0,
            socket_user: None,
            cpu_time_limit: 0,
            cpu_priority: 0,
            memory_limit: 0,
            virtual_memory_limit: 0,
            send_buffer_size: 0,
            receive_buffer_size: 0,
            header_buffer_size: DEFAULT_HEADER_BUFFER_SIZE,
            response_buffer_size: DEFAULT_RESPONSE_BUFFER_SIZE,
            response_socket_timeout: Duration::ZERO,
            response_flush_delay: Duration::from_millis(5),
            server_metrics: false,
        }
    }
}

impl DaemonOptions {
    /// Threads a serving daemon process runs: main (caretaker), monitor,
    /// deadlock watcher, and the request threads.
    pub fn threads_total(&self) -> usize {
        self.threads + 3
    }

    /// Parse the option words after the group name.
    ///
    /// Errors are message fragments ("option 'threads' must be ...") for
    /// the caller to prefix with the directive name.
    pub fn parse(words: &[&str]) -> Result<DaemonOptions, String> {
        let mut opts = DaemonOptions::default();
        for word in words {
            let Some((name, value)) = values::split_option(word) else {
                return Err(format!(
                    "option '{word}' is not of the form name=value; allowed: {}",
                    allowed_list()
                ));
            };
            let Some(spec) = OPTIONS.iter().find(|o| o.name == name) else {
                return Err(format!(
                    "unknown option '{name}'; allowed: {}",
                    allowed_list()
                ));
            };
            if value.is_empty() && !EMPTY_MEANS_UNSET.contains(&name) {
                return Err(format!("option '{name}' has an empty value"));
            }
            (spec.set)(&mut opts, value).map_err(|e| format!("option '{name}' {e}"))?;
        }
        if opts.script_user.is_some() && opts.script_group.is_some() {
            return Err("options 'script-user' and 'script-group' cannot both be given".into());
        }
        Ok(opts)
    }
}

/// One WSGIDaemonProcess option: its name and how to store its value.
struct OptionSpec {
    name: &'static str,
    set: fn(&mut DaemonOptions, &str) -> Result<(), String>,
}

fn allowed_list() -> String {
    OPTIONS
        .iter()
        .map(|o| o.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Options mod_wsgi takes with an empty value (`python-path=''`, as
/// mod_wsgi-express writes it): empty leaves them unset.
const EMPTY_MEANS_UNSET: &[&str] = &[
    "display-name",
    "supplementary-groups",
    "lang",
    "locale",
    "python-home",
    "python-path",
    "python-eggs",
];

/// Values such as paths and names that are taken as given; empty is unset.
fn text(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

fn absolute(v: &str) -> Result<String, String> {
    if v.starts_with('/') {
        Ok(v.to_string())
    } else {
        Err(format!("must be an absolute path, got '{v}'"))
    }
}

/// Look up a user by name or as "#uid".
///
/// The numeric form is accepted even without a password entry (containers
/// often run with bare uids); the name then stays "#uid".
pub fn resolve_user(v: &str) -> Result<UserSpec, String> {
    if let Some(num) = v.strip_prefix('#') {
        let uid: u32 =
            values::count(num, 0).map_err(|_| format!("must be a user name or #uid, got '{v}'"))?;
        let name = match User::from_uid(Uid::from_raw(uid)) {
            Ok(Some(u)) => u.name,
            _ => v.to_string(),
        };
        return Ok(UserSpec { name, uid });
    }
    match User::from_name(v) {
        Ok(Some(u)) => Ok(UserSpec {
            name: u.name,
            uid: u.uid.as_raw(),
        }),
        Ok(None) => Err(format!(
            "names user '{v}', which does not exist on this system"
        )),
        Err(e) => Err(format!(
            "names user '{v}', which could not be looked up: {e}"
        )),
    }
}

/// Look up a group by name or as "#gid" (numeric form accepted as for users).
pub fn resolve_group(v: &str) -> Result<GroupSpec, String> {
    if let Some(num) = v.strip_prefix('#') {
        let gid: u32 = values::count(num, 0)
            .map_err(|_| format!("must be a group name or #gid, got '{v}'"))?;
        let name = match Group::from_gid(Gid::from_raw(gid)) {
            Ok(Some(g)) => g.name,
            _ => v.to_string(),
        };
        return Ok(GroupSpec { name, gid });
    }
    match Group::from_name(v) {
        Ok(Some(g)) => Ok(GroupSpec {
            name: g.name,
            gid: g.gid.as_raw(),
        }),
        Ok(None) => Err(format!(
            "names group '{v}', which does not exist on this system"
        )),
        Err(e) => Err(format!(
            "names group '{v}', which could not be looked up: {e}"
        )),
    }
}

fn daemon_user(v: &str) -> Result<UserSpec, String> {
    let user = resolve_user(v)?;
    if user.uid == 0 {
        return Err(format!(
            "is refused ('{v}'): daemon processes may not run as root"
        ));
    }
    Ok(user)
}

fn group_list(v: &str) -> Result<Vec<GroupSpec>, String> {
    v.split(',')
        .filter(|g| !g.is_empty())
        .map(resolve_group)
        .collect()
}

fn millis(v: &str) -> Result<Duration, String> {
    let ms: u64 = values::count(v, 0)
        .map_err(|_| format!("must be a whole number of milliseconds >= 0, got '{v}'"))?;
    Ok(Duration::from_millis(ms))
}

macro_rules! opt {
    ($name:literal, |$o:ident, $v:ident| $body:expr) => {
        OptionSpec {
            name: $name,
            set: |$o: &mut DaemonOptions, $v: &str| -> Result<(), String> {
                $body;
                Ok(())
            },
        }
    };
}

/// All options, in the order of the reference table (ours, loop-held-limit,
/// beside listen-backlog).
static OPTIONS: &[OptionSpec] = &[
    opt!("processes", |o, v| {
        o.processes = values::count(v, 1)?;
        o.multiprocess = true
    }),
    opt!("threads", |o, v| o.threads = values::count(v, 0)?),
    opt!("display-name", |o, v| o.display_name = text(v)),
    opt!("user", |o, v| o.user = Some(daemon_user(v)?)),
    opt!("group", |o, v| o.group = Some(resolve_group(v)?)),
    opt!("supplementary-groups", |o, v| o.supplementary_groups =
        group_list(v)?),
    opt!("umask", |o, v| o.umask = Some(values::octal_umask(v)?)),
    opt!("home", |o, v| o.home = Some(absolute(v)?)),
    opt!("chroot", |o, v| o.chroot = Some(absolute(v)?)),
    opt!("lang", |o, v| o.lang = text(v)),
    opt!("locale", |o, v| o.locale = text(v)),
    opt!("python-home", |o, v| o.python_home = text(v)),
    opt!("python-path", |o, v| o.python_path = values::path_list(v)),
    opt!("python-eggs", |o, v| o.python_eggs = text(v)),
    opt!("switch-interval", |o, v| o.switch_interval =
        Some(values::positive_seconds(v)?)),
    opt!("script-user", |o, v| o.script_user = Some(resolve_user(v)?)),
    opt!("script-group", |o, v| o.script_group =
        Some(resolve_group(v)?)),
    opt!("stack-size", |o, v| o.stack_size =
        Some(values::count(v, 1)?)),
    opt!("maximum-requests", |o, v| o.maximum_requests =
        values::count(v, 0)?),
    opt!("restart-interval", |o, v| o.restart_interval =
        values::seconds(v)?),
    opt!("inactivity-timeout", |o, v| o.inactivity_timeout =
        values::seconds(v)?),
    opt!("request-timeout", |o, v| o.request_timeout =
        values::seconds(v)?),
    opt!("interrupt-timeout", |o, v| o.interrupt_timeout =
        values::seconds(v)?),
    opt!("deadlock-timeout", |o, v| o.deadlock_timeout =
        values::seconds(v)?),
    opt!("startup-timeout", |o, v| o.startup_timeout =
        values::seconds(v)?),
    opt!("graceful-timeout", |o, v| o.graceful_timeout =
        values::seconds(v)?),
    opt!("eviction-timeout", |o, v| o.eviction_timeout =
        values::seconds(v)?),
    opt!("shutdown-timeout", |o, v| o.shutdown_timeout =
        values::seconds(v)?),
    opt!("connect-timeout", |o, v| o.connect_timeout =
        values::seconds(v)?),
    opt!("socket-timeout", |o, v| o.socket_timeout =
        values::seconds(v)?),
    opt!("queue-timeout", |o, v| o.queue_timeout =
        values::seconds(v)?),
    opt!("listen-backlog", |o, v| o.listen_backlog =
        values::count::<i32>(v, 0)? as u32),
    opt!("loop-held-limit", |o, v| o.loop_held_limit =
        values::count(v, 0)?),
    opt!("socket-user", |o, v| o.socket_user = Some(resolve_user(v)?)),
    opt!("cpu-time-limit", |o, v| o.cpu_time_limit =
        values::count(v, 0)?),
    opt!("cpu-priority", |o, v| o.cpu_priority =
        values::whole(v, -20, 19)? as i32),
    opt!("memory-limit", |o, v| o.memory_limit = values::count(v, 0)?),
    opt!("virtual-memory-limit", |o, v| o.virtual_memory_limit =
        values::count(v, 0)?),
    opt!("send-buffer-size", |o, v| {
        o.send_buffer_size = u32::try_from(values::size_or_zero(v, 512, "OS default")?)
            .map_err(|_| format!("is too large, got '{v}'"))?
    }),
    opt!("receive-buffer-size", |o, v| {
        o.receive_buffer_size = u32::try_from(values::size_or_zero(v, 512, "OS default")?)
            .map_err(|_| format!("is too large, got '{v}'"))?
    }),
    // mod_wsgi: >= 8192 bytes, or 0 for the default.
    opt!("header-buffer-size", |o, v| {
        o.header_buffer_size = match values::size_or_zero(v, 8192, "default")? {
            0 => DEFAULT_HEADER_BUFFER_SIZE,
            n => usize::try_from(n).map_err(|_| format!("is too large, got '{v}'"))?,
        }
    }),
    // mod_wsgi: >= 65536 bytes, or 0 for the default.
    opt!("response-buffer-size", |o, v| {
        o.response_buffer_size = match values::size_or_zero(v, 65536, "default")? {
            0 => DEFAULT_RESPONSE_BUFFER_SIZE,
            n => usize::try_from(n).map_err(|_| format!("is too large, got '{v}'"))?,
        }
    }),
    opt!("response-socket-timeout", |o, v| o
        .response_socket_timeout =
        values::seconds(v)?),
    // Milliseconds: the option exists to tune a 5 ms default.
    opt!("response-flush-delay", |o, v| o.response_flush_delay =
        millis(v)?),
    opt!("server-metrics", |o, v| o.server_metrics =
        values::on_off(v)?),
];

/// Names of all options (for the edge's docs and for tests).
pub fn option_names() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().map(|o| o.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<DaemonOptions, String> {
        DaemonOptions::parse(words)
    }

    fn one(word: &str) -> Result<DaemonOptions, String> {
        parse(&[word])
    }

    #[test]
    fn defaults_follow_the_reference() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.processes, 1);
        assert!(!o.multiprocess);
        assert_eq!(o.threads, 15);
        assert_eq!(o.threads_total(), 18);
        assert_eq!(o.deadlock_timeout, Duration::from_secs(300));
        assert_eq!(o.graceful_timeout, Duration::from_secs(15));
        assert_eq!(o.shutdown_timeout, Duration::from_secs(5));
        assert_eq!(o.connect_timeout, Duration::from_secs(15));
        assert_eq!(o.listen_backlog, 100);
        assert_eq!(o.header_buffer_size, 32768);
        assert_eq!(o.response_buffer_size, 8 * 1024 * 1024);
        assert_eq!(o.response_flush_delay, Duration::from_millis(5));
        assert_eq!(o.umask, None);
        assert!(!o.server_metrics);
    }

    #[test]
    fn empty_values_where_mod_wsgi_takes_them() {
        for name in EMPTY_MEANS_UNSET {
            let o = one(&format!("{name}=")).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(o.display_name, None);
            assert_eq!(o.lang, None);
            assert_eq!(o.locale, None);
            assert_eq!(o.python_home, None);
            assert!(o.python_path.is_empty());
            assert_eq!(o.python_eggs, None);
            assert!(o.supplementary_groups.is_empty());
        }
        for name in [
            "threads",
            "processes",
            "home",
            "user",
            "umask",
            "server-metrics",
        ] {
            let e = one(&format!("{name}=")).unwrap_err();
            assert_eq!(e, format!("option '{name}' has an empty value"));
        }
    }

    #[test]
    fn option_count() {
        // The 44 of mod_wsgi's reference table and our loop-held-limit.
        assert_eq!(OPTIONS.len(), 45);
    }

    /// Some non-root user and group of this system, found by id so the
    /// tests do not depend on one distribution's account names.
    fn system_user() -> String {
        (1..=65534)
            .find_map(|uid| User::from_uid(Uid::from_raw(uid)).ok().flatten())
            .expect("a non-root user")
            .name
    }

    fn system_group() -> String {
        (1..=65534)
            .find_map(|gid| Group::from_gid(Gid::from_raw(gid)).ok().flatten())
            .expect("a non-root group")
            .name
    }

    /// A good and a bad value for every option in the table ("" for free
    /// text, which has no bad value).
    #[test]
    fn every_option_good_and_bad() {
        let (user, group) = (system_user(), system_group());
        let groups = format!("{group},{group}");
        let bad_groups = format!("{group},no-such-group-xyz");
        let cases: &[(&str, &str, &str)] = &[
            ("processes", "3", "0"),
            ("threads", "0", "-1"),
            ("display-name", "%{GROUP}", ""),
            ("user", &user, "root"),
            ("group", &group, "no-such-group-xyz"),
            ("supplementary-groups", &groups, &bad_groups),
            ("umask", "0022", "0999"),
            ("home", "/srv/app", "srv/app"),
            ("chroot", "/srv/jail", "jail"),
            ("lang", "en_US.UTF-8", ""),
            ("locale", "en_US.UTF-8", ""),
            ("python-home", "/opt/venv", ""),
            ("python-path", "/a:/b", ""),
            ("python-eggs", "/tmp/eggs", ""),
            ("switch-interval", "0.002", "0"),
            ("script-user", "#1234", "no-such-user-xyz"),
            ("script-group", &group, "#abc"),
            ("stack-size", "524288", "0"),
            ("maximum-requests", "1000", "many"),
            ("restart-interval", "3600", "-5"),
            ("inactivity-timeout", "300", "5m"),
            ("request-timeout", "60", "x"),
            ("interrupt-timeout", "2.5", "-1"),
            ("deadlock-timeout", "60", "1.2.3"),
            ("startup-timeout", "15", "soon"),
            ("graceful-timeout", "0", "-1"),
            ("eviction-timeout", "10", "ten"),
            ("shutdown-timeout", "5", "-5"),
            ("connect-timeout", "15", "abc"),
            ("socket-timeout", "60", "1e3"),
            ("queue-timeout", "45", "-45"),
            ("listen-backlog", "500", "-1"),
            ("loop-held-limit", "64", "-1"),
            ("socket-user", &user, "no-such-user-xyz"),
            ("cpu-time-limit", "60", "1.5"),
            ("cpu-priority", "-20", "20"),
            ("memory-limit", "1073741824", "1G"),
            ("virtual-memory-limit", "0", "-1"),
            ("send-buffer-size", "512", "511"),
            ("receive-buffer-size", "0", "100"),
            ("header-buffer-size", "8192", "8191"),
            ("response-buffer-size", "65536", "1024"),
            ("response-socket-timeout", "30", "x"),
            ("response-flush-delay", "10", "0.5"),
            ("server-metrics", "On", "maybe"),
        ];
        assert_eq!(cases.len(), OPTIONS.len());
        for name in option_names() {
            assert!(cases.iter().any(|c| c.0 == name), "no case for {name}");
        }
        for (name, good, bad) in cases {
            let ok = one(&format!("{name}={good}"));
            assert!(ok.is_ok(), "{name}={good}: {ok:?}");
            if bad.is_empty() {
                // Free text: mod_wsgi takes any value, the empty one too.
                assert!(one(&format!("{name}=")).is_ok(), "{name}=");
                continue;
            }
            let err = one(&format!("{name}={bad}")).expect_err(&format!("{name}={bad}"));
            assert!(err.starts_with(&format!("option '{name}'")), "{err}");
        }
    }

    #[test]
    fn parsed_values_land_in_their_fields() {
        let o = parse(&[
            "processes=2",
            "threads=4",
            "umask=0007",
            "python-path=/a::/b",
            "request-timeout=0.5",
            "cpu-priority=-5",
            "header-buffer-size=0",
            "response-buffer-size=0",
            "server-metrics=on",
            "user=#4321",
        ])
        .unwrap();
        assert_eq!(o.processes, 2);
        assert!(o.multiprocess);
        assert_eq!(o.threads_total(), 7);
        assert_eq!(o.umask, Some(0o7));
        assert_eq!(o.python_path, ["/a", "/b"]);
        assert_eq!(o.request_timeout, Duration::from_millis(500));
        assert_eq!(o.cpu_priority, -5);
        assert_eq!(o.header_buffer_size, DEFAULT_HEADER_BUFFER_SIZE);
        assert_eq!(o.response_buffer_size, DEFAULT_RESPONSE_BUFFER_SIZE);
        assert!(o.server_metrics);
        assert_eq!(o.user.as_ref().map(|u| u.uid), Some(4321));
        // processes=1 still counts as multiprocess (mod_wsgi behaviour).
        assert!(one("processes=1").unwrap().multiprocess);
    }

    #[test]
    fn messages() {
        assert_eq!(
            one("threads=abc").unwrap_err(),
            "option 'threads' must be a whole number >= 0, got 'abc'"
        );
        let e = one("thread=4").unwrap_err();
        assert!(
            e.starts_with("unknown option 'thread'; allowed: processes, threads, "),
            "{e}"
        );
        assert!(e.ends_with("server-metrics"), "{e}");
        let e = one("threads").unwrap_err();
        assert!(e.contains("not of the form name=value"), "{e}");
        assert_eq!(
            one("threads=").unwrap_err(),
            "option 'threads' has an empty value"
        );
        assert_eq!(
            one("send-buffer-size=100").unwrap_err(),
            "option 'send-buffer-size' must be 0 (OS default) or a whole number >= 512, got '100'"
        );
    }

    #[test]
    fn root_is_refused_by_name_and_number() {
        for v in ["root", "#0"] {
            let e = one(&format!("user={v}")).unwrap_err();
            assert!(e.contains("daemon processes may not run as root"), "{e}");
        }
        // Only user= is restricted; a root-owned socket or group is fine.
        assert!(one("group=#0").is_ok());
        assert!(one("socket-user=root").is_ok());
    }

    #[test]
    fn unknown_user_and_group_are_named() {
        let e = one("user=no-such-user-xyz").unwrap_err();
        assert!(
            e.contains("'no-such-user-xyz', which does not exist"),
            "{e}"
        );
        let e = one("group=no-such-group-xyz").unwrap_err();
        assert!(
            e.contains("'no-such-group-xyz', which does not exist"),
            "{e}"
        );
        let o = one("user=#65534").unwrap();
        assert_eq!(o.user.unwrap().uid, 65534);
    }

    #[test]
    fn script_user_and_group_are_exclusive() {
        let e = parse(&["script-user=#1000", "script-group=#1000"]).unwrap_err();
        assert!(e.contains("cannot both"), "{e}");
    }
}
