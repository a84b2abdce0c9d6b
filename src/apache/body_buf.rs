//! The buffer a request body is read into.
//!
//! Reads fill it from the front. It may start out uninitialised (the fresh
//! bytes object that `wsgi.input.read(n)` returns), so a 64 KiB read does
//! not first zero 64 KiB it is about to overwrite; only the filled part
//! can be looked at.

use std::mem::MaybeUninit;

pub struct BodyBuf<'a> {
    buf: &'a mut [MaybeUninit<u8>],
    /// `buf[..filled]` holds bytes written through this type.
    filled: usize,
}

impl<'a> BodyBuf<'a> {
    /// A buffer over memory that need not be initialised.
    pub fn uninit(buf: &'a mut [MaybeUninit<u8>]) -> BodyBuf<'a> {
        BodyBuf { buf, filled: 0 }
    }

    /// A buffer over initialised bytes, overwritten from the front.
    pub fn new(buf: &'a mut [u8]) -> BodyBuf<'a> {
        let len = buf.len();
        // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and this type
        // only ever writes initialised bytes into what it borrows, so the
        // caller's `[u8]` stays initialised.
        let buf = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast(), len) };
        BodyBuf { buf, filled: 0 }
    }

    /// The bytes read so far.
    pub fn filled(&self) -> &[u8] {
        // SAFETY: the first `filled` bytes were written by `append` or
        // declared written by `assume_filled`.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast(), self.filled) }
    }

    /// Room left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.filled
    }

    pub fn is_full(&self) -> bool {
        self.remaining() == 0
    }

    /// Copies as much of `bytes` as fits; returns how much that was.
    pub fn append(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.remaining());
        // SAFETY: `n` bytes fit after `filled` in `buf`, and `bytes` (a
        // shared borrow) cannot overlap the buffer borrowed mutably here.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.unfilled_ptr(), n);
        }
        self.filled += n;
        n
    }

    /// Where the next byte goes, for a C function that writes up to
    /// `remaining()` bytes.
    pub(crate) fn unfilled_ptr(&mut self) -> *mut u8 {
        self.buf[self.filled..].as_mut_ptr().cast()
    }

    /// Records that `n` more bytes were written at `unfilled_ptr()`.
    ///
    /// # Safety
    /// Those `n` bytes (at most `remaining()`) must have been written.
    pub(crate) unsafe fn assume_filled(&mut self, n: usize) {
        assert!(n <= self.remaining());
        self.filled += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_up_to_its_capacity() {
        let mut mem = [MaybeUninit::uninit(); 5];
        let mut b = BodyBuf::uninit(&mut mem);
        assert_eq!(b.append(b"abc"), 3);
        assert_eq!(b.append(b"defg"), 2);
        assert!(b.is_full());
        assert_eq!(b.filled(), b"abcde");
        let mut init = *b"xyz";
        let mut b = BodyBuf::new(&mut init);
        assert_eq!(b.append(b"q"), 1);
        assert_eq!((b.filled(), b.remaining()), (&b"q"[..], 2));
    }
}
