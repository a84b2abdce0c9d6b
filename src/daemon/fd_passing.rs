//! Open files handed from a daemon process to the Apache child over their
//! Unix socket (SCM_RIGHTS), for `ResponseFile` (docs/protocol.md, "Passing
//! a file"): the daemon sends the descriptor of the file its application
//! returned through wsgi.file_wrapper, and the worker sends the file the way
//! Apache sends a static one, instead of the daemon copying its bytes
//! through the socket.
//!
//! The descriptor goes as ancillary data of the write that carries the
//! `ResponseFile` frame. The kernel hands it over with whichever read first
//! takes bytes of that write, so the worker reads its socket with recvmsg
//! throughout ([`Receiver`]) and queues what comes; each `ResponseFile`
//! takes the oldest descriptor from the queue. Nothing else on the
//! connection carries descriptors; whatever is left unclaimed when the
//! relay ends is closed with the queue.

use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Most descriptors one message can carry on Linux (SCM_MAX_FD). The
/// control buffer holds that many, so that the kernel never truncates a
/// message: descriptors it had installed before truncating would be in the
/// buffer, unseen (nix hides a truncated buffer's contents) and never
/// closed.
const SCM_MAX_FD: usize = 253;

/// Most descriptors kept waiting for their `ResponseFile`: a daemon sends
/// one per `ResponseFile` and the worker claims it as it reads the frame,
/// so more means a peer flooding this child's descriptor table. The
/// excess is closed at once.
const MAX_QUEUED: usize = 8;

/// Writes `bytes` on `stream` with `fd` attached (SCM_RIGHTS): the peer
/// gets its own descriptor of the same open file. Blocking, like the
/// stream's other writes (its write timeout applies).
pub fn send_with_fd(stream: &UnixStream, bytes: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd.as_raw_fd()];
    let rights = [ControlMessage::ScmRights(&fds)];
    let sent = loop {
        match sendmsg::<()>(
            stream.as_raw_fd(),
            &[IoSlice::new(bytes)],
            &rights,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => break n,
            // Nothing went, the descriptor neither: try again.
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    // The descriptor went with the first bytes; the rest are plain bytes.
    let mut writer = stream;
    writer.write_all(&bytes[sent..])
}

/// A new open file description of `file` (opened again through
/// /proc/self/fd, read-only), for the worker to read with a file position
/// of its own: APR's file bucket seeks, then reads, and on a description
/// shared with the application's file object the daemon's own seek after
/// the response (or anything the application does with the file) would
/// move the worker's reads. Err (no /proc, as in a chroot; the file's
/// permissions changed since it was opened): the caller streams the file
/// instead.
pub fn reopened(file: &std::fs::File) -> io::Result<std::fs::File> {
    std::fs::File::open(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// The worker's reads of its daemon socket: the bytes, and the
/// descriptors that arrive with them, kept in arrival order until a
/// `ResponseFile` frame claims one ([`Receiver::take_fd`]). Dropping it
/// closes those never claimed.
pub struct Receiver<'s> {
    stream: &'s UnixStream,
    fds: VecDeque<OwnedFd>,
    /// recvmsg's control buffer, the thread's own (see `CONTROL`).
    control: Vec<u8>,
    /// Why descriptors sent to us were dropped, if some were: a
    /// `ResponseFile` whose descriptor is missing says so.
    dropped: Option<&'static str>,
}

thread_local! {
    /// recvmsg's control buffer (about 1 KiB), made once per Apache thread
    /// and lent to each relay of that thread rather than allocated per
    /// request.
    static CONTROL: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

impl<'s> Receiver<'s> {
    pub fn new(stream: &'s UnixStream) -> Receiver<'s> {
        let mut control = CONTROL.take();
        if control.capacity() == 0 {
            control = nix::cmsg_space!([RawFd; SCM_MAX_FD]);
        }
        Receiver {
            stream,
            fds: VecDeque::new(),
            control,
            dropped: None,
        }
    }

    pub fn stream(&self) -> &'s UnixStream {
        self.stream
    }

    /// Whether no descriptor waits for a frame to claim it, and none was
    /// dropped: the connection holds nothing of the exchange any more.
    pub fn nothing_queued(&self) -> bool {
        self.fds.is_empty() && self.dropped.is_none()
    }

    /// The oldest descriptor received and not yet claimed; Err says why
    /// there is none.
    pub fn take_fd(&mut self) -> Result<OwnedFd, &'static str> {
        self.fds
            .pop_front()
            .ok_or(self.dropped.unwrap_or("no descriptor came with it"))
    }
}

impl Drop for Receiver<'_> {
    fn drop(&mut self) {
        // Back to the thread for its next relay (recvmsg uses only its
        // capacity).
        CONTROL.set(std::mem::take(&mut self.control));
    }
}

impl Read for Receiver<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<()>(
            self.stream.as_raw_fd(),
            &mut iov,
            Some(&mut self.control),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let bytes = msg.bytes;
        let mut received = Vec::new();
        match msg.cmsgs() {
            Ok(cmsgs) => {
                for cmsg in cmsgs {
                    if let ControlMessageOwned::ScmRights(fds) = cmsg {
                        received.extend(fds);
                    }
                }
            }
            Err(_) => {
                self.dropped = Some(
                    "its descriptor was dropped by the kernel on the way (no descriptor free in this Apache child: RLIMIT_NOFILE)",
                )
            }
        }
        for fd in received {
            let fd = crate::apache::process::owned_received_fd(fd);
            if self.fds.len() < MAX_QUEUED {
                self.fds.push_back(fd);
            } else {
                // Closed here, as it drops.
                self.dropped =
                    Some("more descriptors came than frames claim; the excess was closed");
            }
        }
        Ok(bytes)
    }
}

/// Why a passed file cannot be sent as the daemon asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassedFileError {
    NotRegular,
    NotReadable,
    Short { size: u64, end: u64 },
    Stat(String),
}

impl std::fmt::Display for PassedFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PassedFileError::NotRegular => f.write_str("the descriptor is not a regular file"),
            PassedFileError::NotReadable => f.write_str("the file is not open for reading"),
            PassedFileError::Short { size, end } => write!(
                f,
                "the file holds {size} bytes, fewer than the {end} the range needs"
            ),
            PassedFileError::Stat(e) => write!(f, "cannot fstat the descriptor: {e}"),
        }
    }
}

/// A passed file the worker may send, and whether it may be memory-mapped.
#[derive(Debug)]
pub struct PassedFile {
    pub file: std::fs::File,
    /// The daemon's user cannot change the file's length (see
    /// [`out_of_reach`]): Apache may map it, as it maps a static file.
    pub mappable: bool,
}

/// The worker's check of a passed descriptor before it gives it to Apache
/// (the daemon runs as another user: the worker trusts nothing it sends):
/// a regular file (a pipe or socket would hang or break Apache's file
/// bucket), open for reading, holding `offset + length` bytes now.
/// `daemon_uids`: the uids the group's daemons may run as.
pub fn passed_file(
    fd: OwnedFd,
    offset: u64,
    length: u64,
    daemon_uids: &[u32],
) -> Result<PassedFile, PassedFileError> {
    use std::os::unix::fs::MetadataExt;
    let mode = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)
        .map_err(|e| PassedFileError::Stat(e.to_string()))?;
    let file = std::fs::File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| PassedFileError::Stat(e.to_string()))?;
    if !meta.is_file() {
        return Err(PassedFileError::NotRegular);
    }
    if mode & libc::O_ACCMODE == libc::O_WRONLY {
        return Err(PassedFileError::NotReadable);
    }
    let end = offset.saturating_add(length);
    if meta.len() < end {
        return Err(PassedFileError::Short {
            size: meta.len(),
            end,
        });
    }
    let read_only = mode & libc::O_ACCMODE == libc::O_RDONLY;
    let mappable = out_of_reach(read_only, meta.uid(), meta.mode(), daemon_uids);
    Ok(PassedFile { file, mappable })
}

/// Whether a daemon running as one of `daemon_uids` cannot truncate a file
/// (owned by `owner`, permission bits `mode`) passed to us read-only
/// (`read_only`). A memory-mapped file that shrinks kills the process
/// reading the map with SIGBUS, and the daemon's user must never be able
/// to do that to an Apache child; a static file carries the same risk
/// from whoever can write it, which Apache's EnableMMAP accepts. So: the
/// descriptor is read-only, the daemon does not own the file (an owner
/// can chmod it writable) and is not root, and nobody but the owner may
/// write it (no group or other write bit; with POSIX ACLs the group bits
/// are the mask, which bounds every named entry too).
pub fn out_of_reach(read_only: bool, owner: u32, mode: u32, daemon_uids: &[u32]) -> bool {
    let daemon_may_write = daemon_uids.iter().any(|&uid| uid == owner || uid == 0);
    read_only && !daemon_may_write && mode & 0o022 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Seek;

    fn temp_file(bytes: &[u8]) -> std::fs::File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f.rewind().unwrap();
        f
    }

    #[test]
    fn a_descriptor_goes_with_its_bytes_and_is_claimed_in_order() {
        let (a, b) = UnixStream::pair().unwrap();
        let first = temp_file(b"first");
        let second = temp_file(b"second file");
        send_with_fd(&a, b"one", std::os::fd::AsFd::as_fd(&first)).unwrap();
        send_with_fd(&a, b"two", std::os::fd::AsFd::as_fd(&second)).unwrap();
        drop(a);
        let mut r = Receiver::new(&b);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"onetwo");
        let got = passed_file(r.take_fd().unwrap(), 0, 5, &[]).unwrap().file;
        assert_eq!(got.metadata().unwrap().len(), 5);
        let got = passed_file(r.take_fd().unwrap(), 1, 10, &[]).unwrap().file;
        assert_eq!(got.metadata().unwrap().len(), 11);
        assert_eq!(r.take_fd().unwrap_err(), "no descriptor came with it");
    }

    #[test]
    fn descriptors_beyond_the_queue_are_closed() {
        let (a, b) = UnixStream::pair().unwrap();
        let f = temp_file(b"x");
        for _ in 0..MAX_QUEUED + 3 {
            send_with_fd(&a, b"!", std::os::fd::AsFd::as_fd(&f)).unwrap();
        }
        drop(a);
        let mut r = Receiver::new(&b);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all.len(), MAX_QUEUED + 3);
        // The queue holds MAX_QUEUED; the rest were dropped (closed) on arrival.
        for _ in 0..MAX_QUEUED {
            r.take_fd().unwrap();
        }
        assert!(r.take_fd().unwrap_err().contains("excess was closed"));
    }

    #[test]
    fn received_descriptors_are_close_on_exec() {
        let (a, b) = UnixStream::pair().unwrap();
        let f = temp_file(b"x");
        send_with_fd(&a, b"!", std::os::fd::AsFd::as_fd(&f)).unwrap();
        let mut r = Receiver::new(&b);
        let mut byte = [0u8; 1];
        assert_eq!(r.read(&mut byte).unwrap(), 1);
        let fd = r.take_fd().unwrap();
        let flags = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
    }

    #[test]
    fn a_reopened_file_has_a_position_of_its_own() {
        let mut f = temp_file(b"0123456789");
        let mut again = reopened(&f).unwrap();
        f.seek(io::SeekFrom::Start(7)).unwrap();
        let mut two = [0u8; 2];
        again.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"01");
        assert_eq!(f.stream_position().unwrap(), 7);
        let flags = nix::fcntl::fcntl(again.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_eq!(flags & libc::O_ACCMODE, libc::O_RDONLY);
    }

    #[test]
    fn a_passed_descriptor_is_checked() {
        let f = temp_file(b"0123456789");
        let fd = |f: &std::fs::File| OwnedFd::from(f.try_clone().unwrap());
        assert!(passed_file(fd(&f), 0, 10, &[]).is_ok());
        assert!(passed_file(fd(&f), 9, 1, &[]).is_ok());
        assert_eq!(
            passed_file(fd(&f), 5, 6, &[]).unwrap_err(),
            PassedFileError::Short { size: 10, end: 11 }
        );
        let (pipe_read, _w) = nix::unistd::pipe().unwrap();
        assert_eq!(
            passed_file(pipe_read, 0, 1, &[]).unwrap_err(),
            PassedFileError::NotRegular
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        std::fs::write(&path, b"abc").unwrap();
        let write_only = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        assert_eq!(
            passed_file(OwnedFd::from(write_only), 0, 1, &[]).unwrap_err(),
            PassedFileError::NotReadable
        );
    }

    #[test]
    fn only_a_file_the_daemon_cannot_truncate_may_be_mapped() {
        let daemon = [33];
        // Root's 0644 file, passed read-only to a daemon running as 33.
        assert!(out_of_reach(true, 0, 0o100644, &daemon));
        assert!(out_of_reach(true, 1000, 0o100444, &daemon));
        // A descriptor open for writing can be truncated through.
        assert!(!out_of_reach(false, 0, 0o100644, &daemon));
        // The daemon's own file, even read-only (it may chmod it).
        assert!(!out_of_reach(true, 33, 0o100444, &daemon));
        // Writable by group or others: the daemon may be among them.
        assert!(!out_of_reach(true, 0, 0o100664, &daemon));
        assert!(!out_of_reach(true, 0, 0o100646, &daemon));
        // A daemon running as root can write anything.
        assert!(!out_of_reach(true, 1000, 0o100644, &[33, 0]));
        // Every uid the daemon may run as counts.
        assert!(!out_of_reach(true, 1000, 0o100644, &[33, 1000]));
    }
}
