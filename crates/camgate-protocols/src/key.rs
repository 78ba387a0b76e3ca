//! Idempotency keys built from what a device says, shared by the parsers.

use std::fmt::{Display, Write};

/// Longest key a parser returns; a longer one keeps a prefix and a hash of the whole.
pub const MAX_KEY: usize = 200;

/// `s` cut to at most `max` bytes on a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Builds `part/part/...` keys. `/` and `%` inside parts are percent-escaped, so parts
/// cannot run into each other; control characters are dropped.
#[derive(Debug, Default)]
pub struct KeyBuilder {
    key: String,
    /// Whether a part went in (the next one is preceded by `/`).
    started: bool,
}

impl KeyBuilder {
    pub fn new() -> Self {
        KeyBuilder { key: String::with_capacity(64), started: false }
    }

    /// `/` between parts.
    fn separate(&mut self) {
        if self.started {
            self.key.push('/');
        }
        self.started = true;
    }

    /// Append `/`, `prefix` and the escaped `part`.
    pub fn part(&mut self, prefix: &str, part: &str) -> &mut Self {
        self.separate();
        self.key.push_str(prefix);
        self.push_escaped(part);
        self
    }

    /// Append `/`, `prefix` and the escaped `items` joined by `,`: what
    /// [`part`](Self::part) appends for `items.join(",")` (`,` is not escaped), without
    /// building the joined string.
    pub fn list_part(&mut self, prefix: &str, items: &[&str]) -> &mut Self {
        self.separate();
        self.key.push_str(prefix);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.key.push(',');
            }
            self.push_escaped(item);
        }
        self
    }

    /// Append `part`, `/` and `%` percent-escaped, control characters dropped.
    fn push_escaped(&mut self, part: &str) {
        // Fast path: nothing to escape or drop (no `/`, `%`, ASCII control, or 0xC2, the
        // lead byte of the C1 controls U+0080..U+009F), so the part goes in whole.
        if !needs_escape(part.as_bytes()) {
            self.key.push_str(part);
            return;
        }
        for c in part.chars() {
            match c {
                '/' => self.key.push_str("%2F"),
                '%' => self.key.push_str("%25"),
                c if c.is_control() => {}
                c => self.key.push(c),
            }
        }
    }

    /// Append `/ch<channel>`.
    pub fn channel(&mut self, channel: impl Display) -> &mut Self {
        self.separate();
        let _ = write!(self.key, "ch{channel}");
        self
    }

    /// As [`channel`](Self::channel) for a number, without the formatting machinery (one
    /// per event).
    pub fn channel_number(&mut self, channel: u32) -> &mut Self {
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut n = channel;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.separate();
        self.key.push_str("ch");
        self.key.extend(digits[at..].iter().map(|&d| char::from(d)));
        self
    }

    /// The key: `-` when nothing was added; over [`MAX_KEY`] a clipped prefix, `~` and a
    /// 64-bit FNV-1a hash of the whole.
    pub fn finish(&self) -> String {
        let k = self.key.as_str();
        if k.is_empty() {
            "-".to_owned()
        } else if k.len() <= MAX_KEY {
            k.to_owned()
        } else {
            format!("{}~{:016x}", clip(k, MAX_KEY - 17), fnv1a(k.as_bytes()))
        }
    }

    /// As [`finish`](Self::finish), reusing the builder's buffer (no copy for a key within
    /// [`MAX_KEY`]).
    pub fn into_key(self) -> String {
        let k = self.key;
        if k.is_empty() {
            "-".to_owned()
        } else if k.len() <= MAX_KEY {
            k
        } else {
            format!("{}~{:016x}", clip(&k, MAX_KEY - 17), fnv1a(k.as_bytes()))
        }
    }
}

/// Whether `part` holds a byte that [`KeyBuilder::part`] escapes or drops, or may drop: `/`,
/// `%`, an ASCII control, or 0xC2 (the lead byte of U+0080..U+009F). Eight bytes per step
/// (a part is read once per event).
fn needs_escape(part: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // Bit 7 set in some byte when a byte of `x` is zero / below `n`: exact as to whether any is.
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let below = |x: u64, n: u64| x.wrapping_sub(LO * n) & !x & HI;
    let word = |w: u64| {
        below(w, 0x20)
            | zero(w ^ (LO * u64::from(b'/')))
            | zero(w ^ (LO * u64::from(b'%')))
            | zero(w ^ (LO * 0x7f))
            | zero(w ^ (LO * 0xc2))
    };
    let mut chunks = part.chunks_exact(8);
    for c in &mut chunks {
        if word(u64::from_le_bytes(c.try_into().unwrap_or_default())) != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b < 0x20 || matches!(b, b'/' | b'%' | 0x7f | 0xc2))
}

/// 64-bit FNV-1a: stable across builds and platforms (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn needs_escape_as_a_byte_loop(part in proptest::collection::vec(prop_oneof![Just(b'/'), Just(b'%'), Just(0x1f_u8), Just(0x20_u8), Just(0x7f_u8), Just(0xc2_u8), Just(0xc3_u8), Just(0x80_u8), any::<u8>()], 0..40)) {
            let want = part.iter().any(|&b| b < 0x20 || matches!(b, b'/' | b'%' | 0x7f | 0xc2));
            prop_assert_eq!(needs_escape(&part), want);
        }
    }

    #[test]
    fn parts_are_escaped_and_keys_bounded() {
        let k = KeyBuilder::new().part("", "a/b%c\u{1}").channel(2).part("@", "1").finish();
        assert_eq!(k, "a%2Fb%25c/ch2/@1");
        assert_eq!(KeyBuilder::new().finish(), "-");
        assert_eq!(KeyBuilder::new().into_key(), "-");
        // Empty parts keep their place.
        assert_eq!(KeyBuilder::new().part("", "").part("", "a").finish(), "/a");
        let mut k = KeyBuilder::new();
        k.part("", "").part("", "a");
        assert_eq!(k.into_key(), "/a");
        let mut k = KeyBuilder::new();
        k.part("", "");
        assert_eq!(k.into_key(), "-");
        let mut k = KeyBuilder::new();
        k.channel_number(0).part("@", "");
        assert_eq!(k.into_key(), "ch0/@");
        let mut b = KeyBuilder::new();
        b.part("", "a/b%c\u{1}\u{85}\u{a0}é").channel(2).part("@", "1");
        assert_eq!(
            (b.finish(), b.into_key()),
            ("a%2Fb%25c\u{a0}é/ch2/@1".to_owned(), "a%2Fb%25c\u{a0}é/ch2/@1".to_owned())
        );
        let long = "x".repeat(500);
        let k1 = KeyBuilder::new().part("", &long).part("", "1").finish();
        let k2 = KeyBuilder::new().part("", &long).part("", "2").finish();
        assert!(k1.len() <= MAX_KEY && k1.contains('~'));
        assert_ne!(k1, k2, "the hash keeps long keys apart");
        assert_eq!(clip("héllo", 2), "h");
        let list = ["a/b", "", "c%\u{1}d"];
        assert_eq!(
            KeyBuilder::new().list_part("t", &list).finish(),
            KeyBuilder::new().part("t", &list.join(",")).finish()
        );
        for n in [0, 1, 9, 10, 99, 4_294_967_295] {
            assert_eq!(KeyBuilder::new().channel_number(n).finish(), KeyBuilder::new().channel(n).finish());
        }
    }
}
