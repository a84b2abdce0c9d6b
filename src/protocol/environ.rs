//! A `Request` frame's environ: (key, value) byte-string pairs.

/// The pairs of a `Request`, in order, held in one buffer with their
/// places in it: a decoded request keeps its payload and two small
/// vectors instead of two allocations per variable (about 90 for a
/// plain request, made and freed again by each daemon request thread).
#[derive(Clone, Default)]
pub struct Environ {
    bytes: Vec<u8>,
    /// (key start, key end, value start, value end) in `bytes`.
    spans: Vec<[usize; 4]>,
}

impl Environ {
    pub fn new() -> Environ {
        Environ::default()
    }

    /// Over a buffer whose pairs are at `spans` (the decoder's payload).
    /// Every span must lie within `bytes` (the decoder checked them).
    pub(super) fn from_parts(bytes: Vec<u8>, spans: Vec<[usize; 4]>) -> Environ {
        debug_assert!(spans.iter().flatten().all(|&i| i <= bytes.len()));
        Environ { bytes, spans }
    }

    /// Appends a pair.
    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(value);
        let split = start + key.len();
        self.spans.push([start, split, split, self.bytes.len()]);
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + Clone + '_ {
        self.spans
            .iter()
            .map(|&[ks, ke, vs, ve]| (&self.bytes[ks..ke], &self.bytes[vs..ve]))
    }

    /// The value of the first pair with `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, V)> for Environ {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Environ {
        let mut environ = Environ::new();
        for (k, v) in pairs {
            environ.push(k.as_ref(), v.as_ref());
        }
        environ
    }
}

impl From<Vec<(Vec<u8>, Vec<u8>)>> for Environ {
    fn from(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Environ {
        pairs.into_iter().collect()
    }
}

/// Equal when the pairs are, wherever the buffers hold them.
impl PartialEq for Environ {
    fn eq(&self, other: &Environ) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Environ {}

impl std::fmt::Debug for Environ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Environ;

    #[test]
    fn pairs_come_back_in_order_and_compare_by_content() {
        let mut a = Environ::new();
        a.push(b"A", b"1");
        a.push(b"BB", b"");
        a.push(b"A", b"2");
        let got: Vec<_> = a.iter().collect();
        assert_eq!(got, [(&b"A"[..], &b"1"[..]), (b"BB", b""), (b"A", b"2")]);
        assert_eq!(a.get(b"A"), Some(&b"1"[..]));
        assert_eq!(a.get(b"C"), None);
        let b = Environ::from_parts(
            b"xxA1BBA2".to_vec(),
            vec![[2, 3, 3, 4], [4, 6, 6, 6], [6, 7, 7, 8]],
        );
        assert_eq!(a, b);
        assert_ne!(a, Environ::from(vec![(b"A".to_vec(), b"1".to_vec())]));
    }
}
