//! The Apache parent's side of daemon mode: one listener socket per group,
//! `processes` daemons forked per group, a dead daemon restarted (with a
//! back-off when it keeps dying at startup), and at the end of each restart
//! generation every daemon stopped and every socket removed.
//!
//! All of it lives in the generation's configuration pool: module statics
//! do not survive Apache's unload/reload of modules at each restart.

use super::GroupRuntime;
use crate::apache::log::{self, Level};
use crate::apache::pool::Pool;
use crate::apache::process::{self, ChildEvent, Forked};
use crate::config::{DaemonGroup, PythonSettings, ServerConfig};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, listen, socket,
};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use nix::unistd::Pid;
use std::cell::RefCell;
use std::os::fd::{IntoRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Key of the supervisor in the configuration pool's userdata; Apache's
/// children find the groups (socket paths) there after they fork.
pub const POOL_KEY: &std::ffi::CStr = c"mod_wsgi_rs.daemons";

/// The groups of this generation, shared with Apache children (read-only).
pub struct Daemons {
    pub groups: Vec<GroupRuntime>,
    /// The parent's argv area, which daemons rewrite for display-name.
    pub title: Option<process::ProcessTitle>,
}

impl Daemons {
    pub fn group(&self, name: &str) -> Option<&GroupRuntime> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Closes every listener in this process (Apache children must not
    /// hold them).
    pub fn close_listeners(&self) {
        for g in &self.groups {
            let _ = nix::unistd::close(g.listener);
        }
    }
}

/// Each group once, even though merged vhost configs repeat the main
/// server's groups.
pub fn collect_groups<'a>(
    main: &'a ServerConfig,
    vhosts: &[&'a ServerConfig],
) -> Vec<&'a DaemonGroup> {
    let mut out: Vec<&DaemonGroup> = Vec::new();
    for server in std::iter::once(main).chain(vhosts.iter().copied()) {
        for g in &server.daemon_groups {
            if !out.iter().any(|o| o.name == g.name) {
                out.push(g);
            }
        }
    }
    out
}

/// Where a group's socket goes, as mod_wsgi names them. With
/// WSGISocketRotation On (the default) `{prefix}.{parent pid}.{generation}.{n}.sock`,
/// so a new generation never meets an old socket; with Off
/// `{prefix}.{parent pid}.u{daemon uid}.{n}.sock`, the same path in every
/// generation, so Apache children of an old generation that still hold
/// clients connect to the new generation's daemons.
fn socket_path(prefix: &str, naming: SocketNaming, index: usize) -> PathBuf {
    let parent = std::process::id();
    PathBuf::from(match naming {
        SocketNaming::PerGeneration(generation) => {
            format!("{prefix}.{parent}.{generation}.{index}.sock")
        }
        SocketNaming::PerUser(uid) => format!("{prefix}.{parent}.u{uid}.{index}.sock"),
    })
}

/// What tells one group's socket path from another's over restarts.
#[derive(Debug, Clone, Copy)]
enum SocketNaming {
    PerGeneration(i32),
    PerUser(u32),
}

fn create_listener(path: &Path, backlog: u32, owner: u32) -> Result<RawFd, String> {
    let shown = path.display();
    if path.as_os_str().len() >= 108 {
        return Err(format!(
            "socket path {shown} is longer than a Unix socket allows (107 bytes); set a shorter WSGISocketPrefix"
        ));
    }
    let _ = std::fs::remove_file(path);
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("cannot create socket {shown}: {e}"))?;
    let addr = UnixAddr::new(path).map_err(|e| format!("bad socket path {shown}: {e}"))?;
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr).map_err(|e| {
        format!("cannot bind socket {shown}: {e} (does the directory of WSGISocketPrefix exist and is it writable?)")
    })?;
    let backlog = Backlog::new(backlog.min(i32::MAX as u32) as i32).unwrap_or(Backlog::MAXCONN);
    listen(&fd, backlog).map_err(|e| format!("cannot listen on socket {shown}: {e}"))?;
    // Apache's children (running as the worker user) connect; nobody else may.
    nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(owner)), None)
        .map_err(|e| format!("cannot give socket {shown} to uid {owner}: {e}"))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|e| format!("cannot chmod socket {shown}: {e}"))?;
    Ok(fd.into_raw_fd())
}

/// A running daemon process slot in the parent.
struct Slot {
    group: usize,
    index: usize,
    pid: i32,
    started: Instant,
    quick_deaths: u32,
}

/// Parent-side state of one generation.
struct Supervisor {
    daemons: &'static Daemons,
    slots: RefCell<Vec<Slot>>,
}

/// Forks one daemon process of `group`; in the child this never returns.
fn spawn(
    daemons: &'static Daemons,
    group: usize,
    index: usize,
    delay: Duration,
) -> Result<i32, String> {
    match process::fork() {
        Err(e) => Err(format!(
            "cannot fork daemon process for group '{}': {e}",
            daemons.groups[group].name
        )),
        Ok(Forked::Parent { child }) => Ok(child),
        Ok(Forked::Child) => super::process::run(daemons, group, index, delay),
    }
}

/// Exit codes of our daemons, distinct from signal numbers: APR hands the
/// supervisor either an exit code or a signal number, not which of the two.
pub const EXIT_STARTUP_FAILED: i32 = 100;
pub const EXIT_REAPED: i32 = 101;

fn describe_exit(status: i32) -> String {
    match status {
        0 => "exited".to_string(),
        EXIT_STARTUP_FAILED => "failed to start (see the line before)".to_string(),
        EXIT_REAPED => {
            "was ended by its reaper (shutdown took longer than shutdown-timeout)".to_string()
        }
        1..=64 => match Signal::try_from(status) {
            Ok(sig) => format!("was killed by {sig}"),
            Err(_) => format!("was killed by signal {status}"),
        },
        n => format!("exited with status {n}"),
    }
}

/// Starts every group of this generation. Called from post_config on the
/// real pass, in the parent.
pub fn start(
    pconf: Pool,
    title: Option<process::ProcessTitle>,
    main: &ServerConfig,
    vhosts: &[&ServerConfig],
) -> Result<(), String> {
    let groups = collect_groups(main, vhosts);
    if groups.is_empty() {
        return Ok(());
    }
    let generation = process::generation();
    let prefix = match &main.socket_prefix {
        Some(p) => process::server_root_relative(pconf, p),
        None => process::runtime_dir_relative(pconf, "wsgi"),
    };
    let worker = process::worker_identity();
    let mut runtimes = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let naming = if main.socket_rotation() {
            SocketNaming::PerGeneration(generation)
        } else {
            SocketNaming::PerUser(g.options.user.as_ref().map_or(worker.uid, |u| u.uid))
        };
        let path = socket_path(&prefix, naming, i);
        let owner = g.options.socket_user.as_ref().map_or(worker.uid, |u| u.uid);
        let listener = create_listener(&path, g.options.listen_backlog, owner)?;
        runtimes.push(GroupRuntime {
            name: g.name.clone(),
            options: g.options.clone(),
            socket_path: path,
            listener,
            python: main.python.clone(),
            import_scripts: main
                .import_scripts
                .iter()
                .filter(|s| s.process_group == g.name)
                .map(|s| (s.path.clone(), s.application_group.clone()))
                .collect(),
        });
    }
    let daemons_ref: &'static Daemons = pconf.adopt_for_generation(Daemons {
        groups: runtimes,
        title,
    });
    pconf.set_userdata(POOL_KEY, daemons_ref as *const Daemons as *mut Daemons);

    let supervisor = Rc::new(Supervisor {
        daemons: daemons_ref,
        slots: RefCell::new(Vec::new()),
    });
    for (gi, g) in daemons_ref.groups.iter().enumerate() {
        for index in 0..g.options.processes {
            let pid = spawn(daemons_ref, gi, index, Duration::ZERO)?;
            log::server(
                None,
                Level::Info,
                &format!("started daemon process '{}' (pid {pid})", g.name),
            );
            supervisor.slots.borrow_mut().push(Slot {
                group: gi,
                index,
                pid,
                started: Instant::now(),
                quick_deaths: 0,
            });
            watch(pconf, supervisor.clone(), pid);
        }
    }
    // End of the generation (restart, graceful or stop): stop the daemons
    // and remove the sockets. Registered after the watches, so it runs
    // before APR drops them.
    let stopper = supervisor.clone();
    pconf.on_cleanup(move || stop_all(&stopper));
    Ok(())
}

fn watch(pconf: Pool, supervisor: Rc<Supervisor>, pid: i32) {
    process::ChildWatch::watch(
        pconf,
        pid,
        Box::new(move |event, pid| match event {
            ChildEvent::Died(status) => respawn(&supervisor, pid, status),
            ChildEvent::Restart | ChildEvent::Other => None,
        }),
    );
}

/// A daemon died: log why and start its replacement. A process that keeps
/// dying within a second of starting is restarted with a growing delay
/// (taken in the new child, so the parent never blocks).
fn respawn(supervisor: &Supervisor, pid: i32, status: i32) -> Option<i32> {
    if process::mpm_stopping() {
        return None;
    }
    let daemons = supervisor.daemons;
    let mut slots = supervisor.slots.borrow_mut();
    let slot = slots.iter_mut().find(|s| s.pid == pid)?;
    let group = &daemons.groups[slot.group];
    let lived = slot.started.elapsed();
    slot.quick_deaths = if lived < Duration::from_secs(1) {
        slot.quick_deaths + 1
    } else {
        0
    };
    let delay = match slot.quick_deaths {
        0 => Duration::ZERO,
        n => Duration::from_millis(100u64 << n.min(6)).min(Duration::from_secs(5)),
    };
    let level = if status == 0 {
        Level::Info
    } else {
        Level::Error
    };
    log::server(
        None,
        level,
        &format!(
            "daemon process '{}' (pid {pid}) {} after {:.1}s; starting a replacement{}",
            group.name,
            describe_exit(status),
            lived.as_secs_f64(),
            if delay.is_zero() {
                String::new()
            } else {
                format!(
                    " in {:.1}s (it keeps dying at startup)",
                    delay.as_secs_f64()
                )
            }
        ),
    );
    match spawn(daemons, slot.group, slot.index, delay) {
        Ok(new_pid) => {
            slot.pid = new_pid;
            slot.started = Instant::now();
            Some(new_pid)
        }
        Err(e) => {
            log::server(None, Level::Crit, &e);
            None
        }
    }
}

/// Stops every daemon of the generation: SIGTERM, then wait (bounded by the
/// group's shutdown-timeout) and SIGKILL what is left, so that no daemon
/// outlives Apache and no socket is left behind.
fn stop_all(supervisor: &Supervisor) {
    let daemons = supervisor.daemons;
    let slots = supervisor.slots.borrow();
    for s in slots.iter() {
        let _ = kill(Pid::from_raw(s.pid), Signal::SIGTERM);
    }
    let longest = daemons
        .groups
        .iter()
        .map(|g| g.options.shutdown_timeout)
        .max()
        .unwrap_or_default();
    let deadline = Instant::now() + longest + Duration::from_secs(1);
    let mut alive: Vec<i32> = slots.iter().map(|s| s.pid).collect();
    while !alive.is_empty() {
        alive.retain(
            |&pid| match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => true,
                _ => false, // exited, or already reaped by Apache
            },
        );
        if alive.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            for &pid in &alive {
                log::server(
                    None,
                    Level::Error,
                    &format!("daemon process (pid {pid}) did not stop in time; killing it"),
                );
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(pid), None);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for g in &daemons.groups {
        let _ = std::fs::remove_file(&g.socket_path);
        let _ = nix::unistd::close(g.listener);
    }
}

/// The settings of a group's Python (for the daemon process).
pub fn python_for(group: &GroupRuntime) -> (&PythonSettings, &crate::config::DaemonOptions) {
    (&group.python, &group.options)
}
