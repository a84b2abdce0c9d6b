//! The Apache parent's side of daemon mode: one listener socket per group,
//! `processes` daemons forked per group, a dead daemon restarted (with a
//! back-off when it keeps dying at startup). At a restart (graceful or
//! not) the generation's daemons retire: the next generation's socket
//! takes the group's path over, they drain what reached theirs and exit,
//! so no request is refused or cut by the restart (docs/reliability.md).
//! At a stop every daemon is stopped and every socket removed.
//!
//! All of it lives in the generation's configuration pool: module statics
//! do not survive Apache's unload/reload of modules at each restart.

use super::GroupRuntime;
use super::board::{End, GroupBoard};
use super::exit_cause::ExitCause;
use crate::apache::exit_note::ExitNotes;
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

/// Where a group's socket goes. The path stays the same over restart
/// generations, so an Apache child of an old generation, still serving a
/// client's keep-alive connection after a graceful restart, reaches the
/// group's daemons whichever generation they belong to (mod_wsgi names
/// sockets per generation, and such a child then fails on a removed file).
/// `{prefix}.{parent pid}.{group}.sock`; with WSGISocketRotation Off, as
/// mod_wsgi's Off names it, with the daemon user's uid:
/// `{prefix}.{parent pid}.u{uid}.{group}.sock`.
fn socket_path(prefix: &str, naming: SocketNaming, group: &str) -> PathBuf {
    let parent = std::process::id();
    let group = path_safe(group);
    PathBuf::from(match naming {
        SocketNaming::PerGroup => format!("{prefix}.{parent}.{group}.sock"),
        SocketNaming::PerUser(uid) => format!("{prefix}.{parent}.u{uid}.{group}.sock"),
    })
}

/// A group name as a file name part: itself when short and plain, else a
/// hash of it (names are free text in WSGIDaemonProcess).
fn path_safe(name: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
    if !name.is_empty() && name.len() <= 24 && name.chars().all(plain) {
        return name.to_string();
    }
    // FNV-1a: stable across builds and runs, unlike std's hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("g{hash:016x}")
}

/// What tells one group's socket path from another's.
#[derive(Debug, Clone, Copy)]
enum SocketNaming {
    PerGroup,
    PerUser(u32),
}

/// A listening socket made at a side path, then renamed over `path`: the
/// path always names a socket somebody accepts on (the previous
/// generation's until the rename, this one's after), and the daemons of
/// the previous generation see the new inode and drain. Returns the fd and
/// the inode.
fn create_listener(path: &Path, backlog: u32, owner: u32) -> Result<(RawFd, u64), String> {
    let shown = path.display();
    let side = PathBuf::from(format!("{}.new", path.display()));
    if side.as_os_str().len() >= 108 {
        return Err(format!(
            "socket path {shown} is longer than a Unix socket allows (103 bytes, and 4 more for the side path it is made at); set a shorter WSGISocketPrefix"
        ));
    }
    let _ = std::fs::remove_file(&side);
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("cannot create socket {shown}: {e}"))?;
    let addr = UnixAddr::new(&side).map_err(|e| format!("bad socket path {shown}: {e}"))?;
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr).map_err(|e| {
        format!("cannot bind socket {shown}: {e} (does the directory of WSGISocketPrefix exist and is it writable?)")
    })?;
    let backlog = Backlog::new(backlog.min(i32::MAX as u32) as i32).unwrap_or(Backlog::MAXCONN);
    listen(&fd, backlog).map_err(|e| format!("cannot listen on socket {shown}: {e}"))?;
    let placed = (|| {
        // Apache's children (running as the worker user) connect; nobody else may.
        nix::unistd::chown(&side, Some(nix::unistd::Uid::from_raw(owner)), None)
            .map_err(|e| format!("cannot give socket {shown} to uid {owner}: {e}"))?;
        std::fs::set_permissions(&side, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| format!("cannot chmod socket {shown}: {e}"))?;
        let inode = std::os::unix::fs::MetadataExt::ino(
            &std::fs::metadata(&side).map_err(|e| format!("cannot stat socket {shown}: {e}"))?,
        );
        std::fs::rename(&side, path)
            .map_err(|e| format!("cannot put socket {shown} in place: {e}"))?;
        Ok(inode)
    })();
    match placed {
        Ok(inode) => Ok((fd.into_raw_fd(), inode)),
        Err(e) => {
            let _ = std::fs::remove_file(&side);
            Err(e)
        }
    }
}

/// Daemons of ended generations that are still draining, kept in the
/// process pool (which outlives generations) as text: `pid group path`
/// per line. The next generation watches them (so the parent reaps them
/// quietly), and a stop ends them with the current daemons.
const RETIREES_KEY: &std::ffi::CStr = c"mod_wsgi_rs.retired_daemons";

#[derive(Debug, Clone, PartialEq)]
struct Retiree {
    pid: i32,
    group: String,
    socket_path: PathBuf,
}

fn parse_retirees(text: &str) -> Vec<Retiree> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            Some(Retiree {
                pid: parts.next()?.parse().ok()?,
                group: parts.next()?.to_string(),
                socket_path: PathBuf::from(parts.next()?),
            })
        })
        .collect()
}

fn format_retirees(list: &[Retiree]) -> String {
    list.iter()
        .map(|r| format!("{}\t{}\t{}\n", r.pid, r.group, r.socket_path.display()))
        .collect()
}

/// The retirees still alive (a reaped pid is gone from the process table;
/// a pid reused by an unrelated process is not our child, so waitpid
/// rejects it).
fn living(list: Vec<Retiree>) -> Vec<Retiree> {
    list.into_iter()
        .filter(|r| {
            match waitpid(Pid::from_raw(r.pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => true,
                // It ended between the generations: said as if watched.
                Ok(WaitStatus::Exited(_, code)) => {
                    log_retiree_end(r, ExitCause::Exited(code));
                    false
                }
                Ok(WaitStatus::Signaled(_, sig, _)) => {
                    log_retiree_end(r, ExitCause::Killed(sig as i32));
                    false
                }
                _ => false,
            }
        })
        .collect()
}

/// A draining daemon of an earlier generation ended.
fn log_retiree_end(r: &Retiree, cause: ExitCause) {
    log::server(
        None,
        level_of(&cause),
        &format!(
            "daemon process '{}' (pid {}) of an earlier generation {} after draining",
            r.group,
            r.pid,
            cause.describe()
        ),
    );
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
    /// Daemons of earlier generations still draining.
    retirees: RefCell<Vec<Retiree>>,
    /// Where the retirees are handed to the next generation.
    process_pool: Option<Pool>,
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
        Ok(Forked::Parent { child }) => {
            daemons.groups[group]
                .board
                .process_started(index, child as u32);
            Ok(child)
        }
        Ok(Forked::Child) => super::process::run(daemons, group, index, delay),
    }
}

/// Exit codes of our daemons, above any signal number (a daemon dying
/// without a note is told by its status being one: see `exit_cause`).
pub const EXIT_STARTUP_FAILED: i32 = 100;
pub const EXIT_REAPED: i32 = 101;

/// Starts every group of this generation. Called from post_config on the
/// real pass, in the parent.
pub fn start(
    pconf: Pool,
    title: Option<process::ProcessTitle>,
    main: &ServerConfig,
    vhosts: &[&ServerConfig],
    server_timeout: Duration,
) -> Result<(), String> {
    let groups = collect_groups(main, vhosts);
    let process_pool = pconf.parent();
    let retirees = living(parse_retirees(
        &process_pool
            .and_then(|p| p.text_userdata(RETIREES_KEY))
            .unwrap_or_default(),
    ));
    if groups.is_empty() && retirees.is_empty() {
        return Ok(());
    }
    let prefix = match &main.socket_prefix {
        Some(p) => process::server_root_relative(pconf, p),
        None => process::runtime_dir_relative(pconf, "wsgi"),
    };
    let worker = process::worker_identity();
    let mut runtimes = Vec::new();
    for g in &groups {
        let naming = if main.socket_rotation() {
            SocketNaming::PerGroup
        } else {
            SocketNaming::PerUser(g.options.user.as_ref().map_or(worker.uid, |u| u.uid))
        };
        let path = socket_path(&prefix, naming, &g.name);
        let owner = g.options.socket_user.as_ref().map_or(worker.uid, |u| u.uid);
        let (listener, socket_inode) = create_listener(&path, g.options.listen_backlog, owner)?;
        let exit_notes = ExitNotes::new(g.options.processes).map_err(|e| {
            format!(
                "cannot map the exit notes of daemon process group '{}': {e}",
                g.name
            )
        })?;
        let board = GroupBoard::new(g.options.processes, g.options.threads).map_err(|e| {
            format!(
                "cannot map the board of daemon process group '{}': {e}",
                g.name
            )
        })?;
        runtimes.push(GroupRuntime {
            name: g.name.clone(),
            options: g.options.clone(),
            socket_path: path,
            socket_inode,
            parent_pid: std::process::id(),
            server_timeout,
            listener,
            python: main.python.clone(),
            import_scripts: main
                .import_scripts
                .iter()
                .filter(|s| s.process_group == g.name)
                .map(|s| (s.path.clone(), s.application_group.clone()))
                .collect(),
            exit_notes,
            board,
        });
    }
    // A socket of an earlier generation that no group took over (the group
    // is gone, renamed, or its path changed): removed, so its draining
    // daemons see that nothing new can arrive and finish.
    for r in &retirees {
        if !runtimes.iter().any(|g| g.socket_path == r.socket_path) {
            let _ = std::fs::remove_file(&r.socket_path);
        }
    }
    let daemons_ref: &'static Daemons = pconf.adopt_for_generation(Daemons {
        groups: runtimes,
        title,
    });
    pconf.set_userdata(POOL_KEY, daemons_ref as *const Daemons as *mut Daemons);

    let supervisor = Rc::new(Supervisor {
        daemons: daemons_ref,
        slots: RefCell::new(Vec::new()),
        retirees: RefCell::new(retirees),
        process_pool,
    });
    for r in supervisor.retirees.borrow().iter() {
        watch_retiree(pconf, supervisor.clone(), r.pid);
    }
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
    process::wake_on_child_exit();
    // End of the generation. Registered after the watches, so it runs
    // before APR drops them.
    let ender = supervisor.clone();
    pconf.on_cleanup(move || {
        process::restore_child_exit_signal();
        if process::reloading_config() {
            retire_all(&ender)
        } else {
            stop_all(&ender)
        }
    });
    Ok(())
}

/// A daemon of an earlier generation, draining: when it exits, say so and
/// forget it (nothing replaces it).
fn watch_retiree(pconf: Pool, supervisor: Rc<Supervisor>, pid: i32) {
    process::ChildWatch::watch(
        pconf,
        pid,
        Box::new(move |event, pid| {
            if let ChildEvent::Died(status) = event {
                let mut retirees = supervisor.retirees.borrow_mut();
                if let Some(at) = retirees.iter().position(|r| r.pid == pid) {
                    let r = retirees.remove(at);
                    // Its generation's notes are gone with that generation.
                    log_retiree_end(&r, ExitCause::of(None, status));
                }
            }
            None
        }),
    );
}

/// How loud a daemon's exit is in the log: a clean one is routine.
fn level_of(cause: &ExitCause) -> Level {
    if cause.is_clean() {
        Level::Info
    } else {
        Level::Error
    }
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
    // A clean exit (a recycle: maximum-requests, restart-interval, ...) is
    // never "dying at startup", however short the life: a small
    // maximum-requests under load makes lives short on purpose. Except
    // for a process that serves no requests: its service script ending
    // at once (SystemExit) would otherwise restart it in a tight loop.
    let serves_requests = group.options.threads > 0;
    slot.quick_deaths = if (status != 0 || !serves_requests) && lived < Duration::from_secs(1) {
        slot.quick_deaths + 1
    } else {
        0
    };
    group.board.quick_deaths(slot.index, slot.quick_deaths);
    let delay = match slot.quick_deaths {
        0 => Duration::ZERO,
        n => Duration::from_millis(100u64 << n.min(6)).min(Duration::from_secs(5)),
    };
    let cause = ExitCause::of(group.exit_notes.take(slot.index, pid), status);
    // For the status page: how it ended, unless it said so itself (a
    // recycle, or a stop its reaper had to finish).
    let end = match cause {
        ExitCause::Killed(sig) => Some(End::Killed(sig)),
        ExitCause::Exited(0 | EXIT_REAPED) => None,
        ExitCause::Exited(n) => Some(End::Exited(n)),
    };
    group.board.process_ended(slot.index, end, true);
    group.board.process_gone(slot.index, pid as u32);
    log::server(
        None,
        level_of(&cause),
        &format!(
            "daemon process '{}' (pid {pid}) {} after {:.1}s; starting a replacement{}",
            group.name,
            cause.describe(),
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

/// The end of a generation that a restart follows (graceful or not): each
/// daemon is told to retire. It goes on serving from its socket until the
/// next generation's socket takes the path over (moments from now, in the
/// same parent), takes what is left in its backlog, finishes its running
/// requests (graceful-timeout) and exits. Nothing waits here: the parent
/// goes straight on to the next generation, and the daemons pass to it as
/// retirees. Their socket files stay: the next generation replaces them.
fn retire_all(supervisor: &Supervisor) {
    let daemons = supervisor.daemons;
    let mut retirees = supervisor.retirees.borrow().clone();
    for s in supervisor.slots.borrow().iter() {
        let _ = process::send_retire_signal(s.pid);
        let group = &daemons.groups[s.group];
        retirees.push(Retiree {
            pid: s.pid,
            group: group.name.clone(),
            socket_path: group.socket_path.clone(),
        });
    }
    for g in &daemons.groups {
        let _ = nix::unistd::close(g.listener);
    }
    if let Some(pool) = supervisor.process_pool {
        pool.set_text_userdata(RETIREES_KEY, &format_retirees(&retirees));
    }
}

/// Stops every daemon, this generation's and the retirees still draining:
/// SIGTERM, then wait (bounded by the longest shutdown-timeout) and
/// SIGKILL what is left, so that no daemon outlives Apache and no socket
/// is left behind.
fn stop_all(supervisor: &Supervisor) {
    let daemons = supervisor.daemons;
    let slots = supervisor.slots.borrow();
    let retirees = supervisor.retirees.borrow();
    let mut alive: Vec<i32> = slots
        .iter()
        .map(|s| s.pid)
        .chain(retirees.iter().map(|r| r.pid))
        .collect();
    for &pid in &alive {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let longest = daemons
        .groups
        .iter()
        .map(|g| g.options.shutdown_timeout)
        .max()
        .unwrap_or(Duration::from_secs(5));
    let deadline = Instant::now() + longest + Duration::from_secs(1);
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
    for r in retirees.iter() {
        let _ = std::fs::remove_file(&r.socket_path);
    }
    if let Some(pool) = supervisor.process_pool {
        pool.set_text_userdata(RETIREES_KEY, "");
    }
}

/// The settings of a group's Python (for the daemon process).
pub fn python_for(group: &GroupRuntime) -> (&PythonSettings, &crate::config::DaemonOptions) {
    (&group.python, &group.options)
}
