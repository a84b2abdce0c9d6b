//! Words of memory the Apache parent shares with every process it forks
//! afterwards: an anonymous shared mapping made at configuration time,
//! before the daemon processes and Apache's worker children exist, so that
//! it is the same memory in all of them. Only atomics are handed out, so
//! any thread of any of those processes may read and write a word.

use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

pub struct SharedWords {
    base: NonNull<AtomicU64>,
    len: usize,
}

// SAFETY: the mapping is only accessed through atomics, from any thread or
// process; it stays mapped for as long as the value lives.
unsafe impl Send for SharedWords {}
// SAFETY: as above.
unsafe impl Sync for SharedWords {}

impl std::fmt::Debug for SharedWords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedWords({})", self.len)
    }
}

impl SharedWords {
    /// Maps `len` zeroed words (at least one).
    pub fn new(len: usize) -> std::io::Result<SharedWords> {
        let len = len.max(1);
        // SAFETY: a fresh anonymous mapping; the kernel zeroes it, and a
        // zeroed AtomicU64 is a valid one.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len * std::mem::size_of::<AtomicU64>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = NonNull::new(base.cast::<AtomicU64>())
            .ok_or_else(|| std::io::Error::other("mmap returned NULL"))?;
        Ok(SharedWords { base, len })
    }

    /// Word `i`, if in range.
    pub fn get(&self, i: usize) -> Option<&AtomicU64> {
        // SAFETY: in bounds of the mapping, which lives as long as `self`.
        (i < self.len).then(|| unsafe { &*self.base.as_ptr().add(i) })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; no reference into it
        // outlives `self` (`get` borrows it). Processes forked meanwhile keep
        // their own mapping of the same memory.
        unsafe {
            libc::munmap(
                self.base.as_ptr().cast(),
                self.len * std::mem::size_of::<AtomicU64>(),
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn words_are_zeroed_and_bounded() {
        let words = SharedWords::new(3).unwrap();
        assert_eq!(words.len(), 3);
        assert_eq!(words.get(2).unwrap().load(Ordering::SeqCst), 0);
        words.get(2).unwrap().store(7, Ordering::SeqCst);
        assert_eq!(words.get(2).unwrap().load(Ordering::SeqCst), 7);
        assert!(words.get(3).is_none());
        assert_eq!(SharedWords::new(0).unwrap().len(), 1);
    }
}
