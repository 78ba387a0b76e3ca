//! Byte searches for the decoder's hot loops.
//!
//! The lines and head items searched are short (a header line is ~20 bytes, `index=0` 7), so
//! a search must be cheap to start as well as fast per byte: these look at 8 bytes per step
//! with plain integer operations (SWAR) and are inlined, where a byte-by-byte loop costs a
//! compare and a branch per byte and `memchr` an indirect call per search. Searches for
//! bytes that are rare over a whole body ([`find_line_start`]) use `memchr`, whose vector
//! loop pays for its start there.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of each byte of the result is set for the bytes of `x` that are zero, and possibly
/// for bytes after a zero byte (a borrow), never before one: the lowest set bit marks the
/// first zero byte exactly.
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

/// Bit 7 of each byte of the result is set for exactly the bytes of `x` that are zero.
#[inline(always)]
fn zero_bytes_exact(x: u64) -> u64 {
    !(((x & !HI).wrapping_add(!HI)) | x | !HI)
}

/// The positions of `a` in `hay[..end]`, in order: one pass, 8 bytes per step, for haystacks
/// with many hits (the lines of a body), where a search per hit would restart. Bytes of `hay`
/// past `end` are read (never reported) to avoid the byte-by-byte tail where there are some.
#[derive(Debug, Clone)]
pub(super) struct Positions<'h> {
    hay: &'h [u8],
    end: usize,
    pattern: u64,
    /// Start of the word `hits` belongs to.
    at: usize,
    /// The hits left in that word (bit 7 of each byte).
    hits: u64,
}

impl<'h> Positions<'h> {
    /// The positions of `a` in `hay`.
    pub(super) fn new(hay: &'h [u8], a: u8) -> Self {
        Self::within(hay, hay.len(), a)
    }

    /// The positions of `a` in `hay[..end]`.
    pub(super) fn within(hay: &'h [u8], end: usize, a: u8) -> Self {
        let pattern = LO * u64::from(a);
        let end = end.min(hay.len());
        let mut p = Positions { hay, end, pattern, at: 0, hits: 0 };
        p.hits = p.word_hits(0);
        p
    }

    #[inline(always)]
    fn word_hits(&self, at: usize) -> u64 {
        let w = match self.hay.get(at..at + 8) {
            Some(w) => u64::from_le_bytes(w.try_into().unwrap_or_default()),
            None => {
                let mut w = [0u8; 8];
                let rest = self.hay.get(at..).unwrap_or_default();
                w[..rest.len()].copy_from_slice(rest);
                u64::from_le_bytes(w)
            }
        };
        let hits = zero_bytes_exact(w ^ self.pattern);
        // Only bytes before `end` count.
        match self.end.saturating_sub(at) {
            n if n >= 8 => hits,
            n => hits & ((1u64 << (n * 8)) - 1),
        }
    }
}

impl Iterator for Positions<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.hits == 0 {
            self.at += 8;
            if self.at >= self.end {
                return None;
            }
            self.hits = self.word_hits(self.at);
        }
        let i = self.at + (self.hits.trailing_zeros() / 8) as usize;
        self.hits &= self.hits - 1;
        Some(i)
    }
}

/// The first line start in `hay[from..=end]` whose first byte is `a` or `b`, or `end` itself
/// when it is a line start: the smallest `p` with `from < p <= end`, `hay[p - 1] == b'\n'`
/// and `p == end` or `hay[p]` one of the two. Bytes from `end` on are never read. A body's
/// lines are ~25 bytes and almost none starts with `a` or `b` (`-`, `H`): the two bytes are
/// looked for (`memchr2`, many bytes per step), not the line breaks, and each one found is
/// checked for a line break before it.
#[inline]
pub(super) fn find_line_start(hay: &[u8], from: usize, end: usize, a: u8, b: u8) -> Option<usize> {
    let end = end.min(hay.len());
    if from >= end {
        return None;
    }
    let mut at = from + 1;
    while let Some(i) = memchr::memchr2(a, b, &hay[at..end]) {
        let p = at + i;
        if hay[p - 1] == b'\n' {
            return Some(p);
        }
        at = p + 1;
    }
    (hay[end - 1] == b'\n').then_some(end)
}

/// `a == b` for the short slices compared once per part or event (a boundary token, a header
/// value, a code): 8 bytes per step, inlined, where `==` calls `memcmp`.
#[inline]
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut ca, mut cb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut ca).zip(&mut cb) {
        if u64::from_le_bytes(x.try_into().unwrap_or_default()) != u64::from_le_bytes(y.try_into().unwrap_or_default())
        {
            return false;
        }
    }
    ca.remainder().iter().zip(cb.remainder()).all(|(x, y)| x == y)
}

/// Index of the first `a` in `hay`.
#[inline]
pub(super) fn find_byte(hay: &[u8], a: u8) -> Option<usize> {
    let pa = LO * u64::from(a);
    let mut chunks = hay.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let hits = zero_bytes(w ^ pa);
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks.remainder().iter().position(|&b| b == a).map(|i| at + i)
}

/// Index of the first byte of `hay` that ends a run of plain string content in JSON: `"`,
/// `\\` or a control character (below 0x20).
#[inline]
pub(super) fn find_string_stop(hay: &[u8]) -> Option<usize> {
    let (quote, backslash) = (LO * u64::from(b'"'), LO * u64::from(b'\\'));
    let mut chunks = hay.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        // Bytes below 0x20 (never one of 0x80 and above: `!w` clears those); the lowest hit of
        // each test is exact.
        let control = w.wrapping_sub(LO * 0x20) & !w & HI;
        let hits = zero_bytes(w ^ quote) | zero_bytes(w ^ backslash) | control;
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks.remainder().iter().position(|&c| c < 0x20 || c == b'"' || c == b'\\').map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn finds_the_first() {
        assert_eq!(find_byte(b"", b'\n'), None);
        assert_eq!(find_byte(b"abc\n", b'\n'), Some(3));
        assert_eq!(find_byte(b"0123456789abcdef\nx\n", b'\n'), Some(16));
        assert_eq!(find_byte(b"\x0b\x0a\x0a", b'\n'), Some(1));
        assert_eq!(find_byte(b"\x8a\x0a\x01\x00\xff\x0a\x0a\x0a\x0a", b'\n'), Some(1));
    }

    #[test]
    fn positions_are_all_the_hits() {
        let all = |hay: &[u8], a: u8| Positions::new(hay, a).collect::<Vec<_>>();
        assert_eq!(all(b"", b'\n'), Vec::<usize>::new());
        assert_eq!(all(b"\n", b'\n'), [0]);
        assert_eq!(all(b"a\nb\n\n0123456789\n", b'\n'), [1, 3, 4, 15]);
        assert_eq!(all(b"\x0a\x0b\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x09", b'\n'), [0, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(all(&[0xf5; 11], 0xf5), (0..11).collect::<Vec<_>>());
    }

    proptest! {
        #[test]
        fn same_as_eq(a in proptest::collection::vec(0u8..4, 0..20), b in proptest::collection::vec(0u8..4, 0..20)) {
            prop_assert_eq!(same(&a, &b), a == b);
            prop_assert!(same(&a, &a));
        }

        #[test]
        fn string_stops_as_a_byte_loop(hay in proptest::collection::vec(prop_oneof![Just(b'"'), Just(b'\\'), Just(0x1f_u8), Just(0x20_u8), Just(0u8), Just(0x80_u8), Just(0xa2_u8), Just(0xdc_u8), any::<u8>()], 0..40)) {
            let want = hay.iter().position(|&c| c < 0x20 || c == b'"' || c == b'\\');
            prop_assert_eq!(find_string_stop(&hay), want);
        }

        #[test]
        fn line_starts_as_a_byte_loop(hay in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'-'), Just(b'H'), Just(b'\n' | 0x80), Just(b'-' | 0x80), Just(0u8), any::<u8>()], 0..40), from in 0usize..40, end in 0usize..40) {
            let end_c = end.min(hay.len());
            let want = (from + 1..=end_c).find(|&p| hay[p - 1] == b'\n' && (p == end_c || matches!(hay[p], b'-' | b'H')));
            prop_assert_eq!(find_line_start(&hay, from, end, b'-', b'H'), want);
        }

        #[test]
        fn positions_as_a_byte_loop(hay in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(0u8), Just(0x0b_u8), Just(0x8a_u8), any::<u8>()], 0..80), a in prop_oneof![Just(b'\n'), Just(0u8), Just(0xff_u8), any::<u8>()]) {
            let want: Vec<usize> = hay.iter().enumerate().filter(|(_, b)| **b == a).map(|(i, _)| i).collect();
            prop_assert_eq!(Positions::new(&hay, a).collect::<Vec<_>>(), want);
            for end in 0..=hay.len() {
                let want: Vec<usize> = hay[..end].iter().enumerate().filter(|(_, b)| **b == a).map(|(i, _)| i).collect();
                prop_assert_eq!(Positions::within(&hay, end, a).collect::<Vec<_>>(), want);
            }
        }

        #[test]
        fn same_as_a_byte_loop(hay in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b';'), Just(0u8), Just(0x8a_u8), any::<u8>()], 0..80)) {
            prop_assert_eq!(find_byte(&hay, b'\n'), hay.iter().position(|&b| b == b'\n'));
            prop_assert_eq!(find_byte(&hay, 0), hay.iter().position(|&b| b == 0));
        }
    }
}
