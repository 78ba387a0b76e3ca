//! Byte searches for the decoder's hot loops.
//!
//! The lines and head items searched are short (a header line is ~20 bytes, `index=0` 7), so
//! a search must be cheap to start as well as fast per byte: these look at 8 bytes per step
//! with plain integer operations (SWAR) and are inlined, where a byte-by-byte loop costs a
//! compare and a branch per byte and `memchr` an indirect call per search.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of each byte of the result is set for the bytes of `x` that are zero, and possibly
/// for bytes after a zero byte (a borrow), never before one: the lowest set bit marks the
/// first zero byte exactly.
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
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

/// Index of the first `a` or `b` in `hay`.
#[inline]
pub(super) fn find_byte2(hay: &[u8], a: u8, b: u8) -> Option<usize> {
    let (pa, pb) = (LO * u64::from(a), LO * u64::from(b));
    let mut chunks = hay.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let hits = zero_bytes(w ^ pa) | zero_bytes(w ^ pb);
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks.remainder().iter().position(|&c| c == a || c == b).map(|i| at + i)
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
        assert_eq!(find_byte2(b"index=0;data=", b';', b'\n'), Some(7));
        assert_eq!(find_byte2(b"0123456789\nabc;", b';', b'\n'), Some(10));
        assert_eq!(find_byte2(b"0123456789", b';', b'\n'), None);
    }

    proptest! {
        #[test]
        fn same_as_a_byte_loop(hay in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b';'), Just(0u8), Just(0x8a_u8), any::<u8>()], 0..80)) {
            prop_assert_eq!(find_byte(&hay, b'\n'), hay.iter().position(|&b| b == b'\n'));
            prop_assert_eq!(find_byte(&hay, 0), hay.iter().position(|&b| b == 0));
            prop_assert_eq!(find_byte2(&hay, b';', b'\n'), hay.iter().position(|&b| b == b';' || b == b'\n'));
        }
    }
}
