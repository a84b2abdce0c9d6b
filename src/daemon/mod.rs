//! Daemon mode: WSGIDaemonProcess groups forked from the Apache parent and
//! supervised by it (`supervisor`), the daemon process itself with its
//! N + 3 thread layout (`process`), and the worker side that proxies a
//! request from an Apache child to a daemon over a Unix socket (`worker`);
//! `peer` decides who may connect to that socket, `exit_cause` tells how a
//! daemon process ended, `fd_passing` hands a wsgi.file_wrapper's open file
//! from the daemon to the worker, `kept` holds the child's connections
//! kept open between requests, `loop_exchange` is an exchange an ASGI
//! application's event loop drives instead of a request thread.

pub mod board;
pub mod exit_cause;
pub mod fd_passing;
pub mod kept;
pub mod loop_exchange;
pub mod peer;
pub mod process;
mod service;
pub mod socket_backend;
pub mod status;
pub mod supervisor;
pub mod worker;

use crate::config::{DaemonOptions, PythonSettings};
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

/// One daemon process group as this restart generation runs it.
#[derive(Debug)]
pub struct GroupRuntime {
    pub name: String,
    pub options: DaemonOptions,
    /// The listener socket the group's processes accept on: one path for
    /// the group over restarts (see `supervisor`).
    pub socket_path: PathBuf,
    /// Inode of this generation's socket file at `socket_path`: when the
    /// path names another one, the next generation has taken it over.
    pub socket_inode: u64,
    /// The Apache parent (a daemon whose parent changed was orphaned).
    pub parent_pid: u32,
    /// Apache's Timeout: the socket-timeout when the group sets none.
    pub server_timeout: Duration,
    /// Listener fd (open in the parent and the group's daemons, closed in
    /// Apache's worker children).
    pub listener: RawFd,
    /// Server-wide Python settings (the group's options override them).
    pub python: PythonSettings,
    /// WSGIImportScript for this group: (script, application group).
    pub import_scripts: Vec<(String, String)>,
    /// Where each of the group's processes notes how it ended, for the
    /// parent (one slot per process index).
    pub exit_notes: crate::apache::exit_note::ExitNotes,
    /// What each of the group's processes and threads is doing: which
    /// process took which worker's request (for the worker's log line
    /// when the process fails) and the status page.
    pub board: board::GroupBoard,
}

impl GroupRuntime {
    /// What ps shows for the group's processes.
    pub fn display_name(&self) -> Option<String> {
        self.options.display_name.as_ref().map(|d| {
            if d == "%{GROUP}" {
                format!("(wsgi:{})", self.name)
            } else {
                d.clone()
            }
        })
    }
}
