//! Files behind Python file objects, for reading them without the GIL.

use std::os::fd::{FromRawFd, RawFd};

/// A private duplicate of descriptor `fd` (of a Python file object the
/// caller holds the GIL for), owned by the returned File: it stays valid
/// even if the application closes its file object while we read with the
/// GIL released. It shares the file offset with the original, so read it
/// with positional reads (`FileExt::read_at`).
pub fn dup_file(fd: RawFd) -> std::io::Result<std::fs::File> {
    let new = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(0))?;
    // SAFETY: F_DUPFD_CLOEXEC just created `new`; nothing else owns it, so
    // the File becomes its only owner and closes it once.
    Ok(unsafe { std::fs::File::from_raw_fd(new) })
}
