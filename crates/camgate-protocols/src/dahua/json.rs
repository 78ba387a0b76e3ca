//! `data=` payloads read without building them.
//!
//! The payload stays text in the decoder's output ([`Record`](super::Record)); a consumer
//! that wants the value builds it ([`Record::to_json`](super::Record::to_json)). Building the
//! whole tree per event (a map node and a string per member, dropped again) was most of what
//! a record cost. Here a payload is checked by [`Scan`], a quick reader that accepts exactly
//! texts `serde_json` reads into a `Value` without error (and leaves the rest, which devices
//! do not send, to `serde_json` itself), and normalisation then reads the members it needs
//! from the checked text ([`RawJson`]) through the same [`Json`] interface it reads a
//! `serde_json::Value` through.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde_json::{Map, Number, Value};

use super::scan::{find_string_stop, same};

/// Map keys `serde_json` itself gives a meaning to when a feature is on (`raw_value`,
/// `arbitrary_precision`: a map whose first key is one reads as something else). A payload
/// with such a key is left to `serde_json`, so that it reads as `serde_json` reads it,
/// whatever features some other crate turned on.
const MAGIC_KEY_PREFIX: &[u8] = b"$serde_json::private::";

/// Whether `serde_json::Map` iterates in key order (a `BTreeMap`; with the `preserve_order`
/// feature it keeps insertion order instead): which of the members whose names match a name
/// without case a lookup finds ([`Pick`]).
static MAP_IS_SORTED: LazyLock<bool> = LazyLock::new(|| {
    let mut m = Map::new();
    m.insert("b".to_owned(), Value::Null);
    m.insert("a".to_owned(), Value::Null);
    m.keys().next().is_some_and(|k| k == "a")
});

/// Whether `raw` is JSON, as `serde_json::from_str::<Value>(raw)` decides: `Err(truncated)`
/// when not, `truncated` as the error's `is_eof()`.
pub(super) fn check_json(raw: &str) -> Result<(), bool> {
    if quick_check(raw) {
        return Ok(());
    }
    serde_json::from_str::<Value>(raw).map(|_| ()).map_err(|e| e.is_eof())
}

/// Whether [`Scan`] reads `raw` (then `serde_json` reads it into a `Value` without error);
/// `false` says nothing either way.
pub(super) fn quick_check(raw: &str) -> bool {
    quick_read(raw, &[], &mut Pick::new()).is_some()
}

/// [`quick_check`], and when `raw` is an object (`Some(true)`), its members named by `names`
/// offered to `pick` on the way: `Some(false)` for JSON that is not an object, `None` when
/// `serde_json` is left to read `raw` (`pick` may then hold members already offered).
pub(super) fn quick_read<'a, const N: usize>(
    raw: &'a str,
    names: &[&'static str; N],
    pick: &mut Pick<'a, RawJson<'a>, N>,
) -> Option<bool> {
    quick_read_with(raw, names, &NameFilter::new(names), pick)
}

/// [`quick_read`] with the [`NameFilter`] of `names` at hand (a constant, for the lists
/// normalisation reads: building it costs about as much as reading a small payload).
pub(super) fn quick_read_with<'a, const N: usize>(
    raw: &'a str,
    names: &[&'static str; N],
    filter: &NameFilter,
    pick: &mut Pick<'a, RawJson<'a>, N>,
) -> Option<bool> {
    scan(raw, &mut Top { names, filter, pick })
}

/// The top-level members [`quick_read`] looks for.
struct Top<'a, 'n, 'p, const N: usize> {
    names: &'n [&'static str; N],
    filter: &'n NameFilter,
    pick: &'p mut Pick<'a, RawJson<'a>, N>,
}

/// A JSON value as normalisation reads it: a `serde_json::Value` ([`&Value`](Value)), or
/// the text of one that [`Scan`] read ([`RawJson`]). Both read the same: for a text and the
/// `Value` `serde_json` reads from it, every method gives the same.
pub(super) trait Json<'a>: Copy + 'a {
    /// The elements of an array.
    type Elements: Iterator<Item = Self>;
    /// The members of an object, in the order a `serde_json::Map` would not necessarily list
    /// them, repeated names included; [`Pick`] finds members as `Map` would.
    type Entries: Iterator<Item = (Cow<'a, str>, Self)>;

    /// A string's text, unescaped.
    fn as_str(self) -> Option<Cow<'a, str>>;

    /// A number, as `serde_json` reads it.
    fn as_number(self) -> Option<Number>;

    /// A number as text, as the `Display` of [`as_number`](Self::as_number)'s value writes
    /// it.
    fn number_text(self) -> Option<Cow<'a, str>> {
        self.as_number().map(|n| Cow::Owned(n.to_string()))
    }

    /// An array's elements; `None` for anything else.
    fn elements(self) -> Option<Self::Elements>;

    /// An object's members; `None` for anything else.
    fn entries(self) -> Option<Self::Entries>;

    fn is_object(self) -> bool {
        self.entries().is_some()
    }

    /// Calls `f` with the members of each object among an array's elements, in order, as
    /// long as it returns `true`; `None` for anything but an array. (For a text, each
    /// object is read once, where [`elements`](Self::elements) then
    /// [`entries`](Self::entries) would read it twice: once to find its end, once for its
    /// members.)
    fn for_each_object_element(self, mut f: impl FnMut(&mut Self::Entries) -> bool) -> Option<()> {
        for element in self.elements()? {
            if let Some(mut entries) = element.entries()
                && !f(&mut entries)
            {
                break;
            }
        }
        Some(())
    }

    /// `true`, `false` or `null` (the tests compare whole values).
    #[cfg(test)]
    fn as_literal(self) -> Option<Value>;
}

type MapEntries<'a> =
    std::iter::Map<serde_json::map::Iter<'a>, fn((&'a String, &'a Value)) -> (Cow<'a, str>, &'a Value)>;

impl<'a> Json<'a> for &'a Value {
    type Elements = std::slice::Iter<'a, Value>;
    type Entries = MapEntries<'a>;

    fn as_str(self) -> Option<Cow<'a, str>> {
        Value::as_str(self).map(Cow::Borrowed)
    }

    fn as_number(self) -> Option<Number> {
        match self {
            Value::Number(n) => Some(n.clone()),
            _ => None,
        }
    }

    fn elements(self) -> Option<Self::Elements> {
        self.as_array().map(|a| a.iter())
    }

    fn entries(self) -> Option<Self::Entries> {
        self.as_object().map(entries_of)
    }

    #[cfg(test)]
    fn as_literal(self) -> Option<Value> {
        (self.is_boolean() || self.is_null()).then(|| self.clone())
    }
}

/// The members of a map, as [`Json::entries`] lists them.
pub(super) fn entries_of(m: &Map<String, Value>) -> MapEntries<'_> {
    m.iter().map(|(k, v)| (Cow::Borrowed(k.as_str()), v))
}

/// One JSON value as text, checked by [`Scan`] (so: no `\u` escapes, no exponents, at most
/// 18 integer digits, nothing `serde_json` would refuse), without blanks around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RawJson<'a>(pub(super) &'a str);

impl<'a> Json<'a> for RawJson<'a> {
    type Elements = RawElements<'a>;
    type Entries = RawEntries<'a>;

    fn as_str(self) -> Option<Cow<'a, str>> {
        let inner = self.0.strip_prefix('"')?.strip_suffix('"')?;
        Some(unescape(inner))
    }

    fn as_number(self) -> Option<Number> {
        let n = self.0;
        match n.as_bytes().first()? {
            b'-' | b'0'..=b'9' => {}
            _ => return None,
        }
        if !is_integer(n) {
            // A float: as `serde_json` reads it (`-0` too: it reads as the float -0.0).
            serde_json::from_str(n).ok()
        } else if n.starts_with('-') {
            n.parse::<i64>().ok().map(Number::from)
        } else {
            n.parse::<u64>().ok().map(Number::from)
        }
    }

    fn number_text(self) -> Option<Cow<'a, str>> {
        match self.0.as_bytes().first()? {
            b'-' | b'0'..=b'9' => {}
            _ => return None,
        }
        if is_integer(self.0) {
            // Checked, an integer has no leading zero and at most 18 digits: an `i64` or `u64`,
            // which `Display` writes back digit for digit. No formatting needed.
            Some(Cow::Borrowed(self.0))
        } else {
            self.as_number().map(|n| Cow::Owned(n.to_string()))
        }
    }

    fn elements(self) -> Option<Self::Elements> {
        let inner = self.0.strip_prefix('[')?;
        Some(RawElements { s: inner, at: 0 })
    }

    fn entries(self) -> Option<Self::Entries> {
        let inner = self.0.strip_prefix('{')?;
        Some(RawEntries { s: inner, at: 0 })
    }

    fn for_each_object_element(self, mut f: impl FnMut(&mut RawEntries<'a>) -> bool) -> Option<()> {
        let inner = self.0.strip_prefix('[')?;
        let b = inner.as_bytes();
        let mut at = 0;
        loop {
            let start = skip_blanks(b, at);
            let end = match b.get(start) {
                None | Some(b']') => return Some(()),
                Some(b'{') => {
                    let mut entries = RawEntries { s: inner.get(start + 1..)?, at: 0 };
                    if !f(&mut entries) {
                        return Some(());
                    }
                    // The object ends after its last member: where its members, all read,
                    // left off.
                    entries.by_ref().for_each(drop);
                    match entries.end() {
                        Some(end) => start + 1 + end,
                        None => skip_value(b, start)?,
                    }
                }
                Some(_) => skip_value(b, start)?,
            };
            at = skip_separator(b, end);
        }
    }

    #[cfg(test)]
    fn as_literal(self) -> Option<Value> {
        match self.0 {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            "null" => Some(Value::Null),
            _ => None,
        }
    }
}

/// Whether checked number text is an integer: no fraction, and not `-0` (which `serde_json`
/// reads as the float -0.0).
fn is_integer(n: &str) -> bool {
    !n.bytes().any(|b| b == b'.') && n != "-0"
}

/// A string's contents with the escapes [`Scan`] reads (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`,
/// `\r`, `\t`) undone.
fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(c) => out.push(c),
            None => {}
        }
    }
    Cow::Owned(out)
}

/// The elements of a checked array, from after its `[`.
#[derive(Debug, Clone)]
pub(super) struct RawElements<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Iterator for RawElements<'a> {
    type Item = RawJson<'a>;

    fn next(&mut self) -> Option<RawJson<'a>> {
        let b = self.s.as_bytes();
        let start = skip_blanks(b, self.at);
        if matches!(b.get(start), None | Some(b']')) {
            self.at = b.len();
            return None;
        }
        let end = skip_value(b, start)?;
        self.at = skip_separator(b, end);
        self.s.get(start..end).map(RawJson)
    }
}

/// The members of a checked object, from after its `{`.
#[derive(Debug, Clone)]
pub(super) struct RawEntries<'a> {
    s: &'a str,
    at: usize,
}

impl RawEntries<'_> {
    /// Once every member has been read: the end of the object (past its `}`), from after its
    /// `{`.
    fn end(&self) -> Option<usize> {
        (self.s.as_bytes().get(self.at) == Some(&b'}')).then_some(self.at + 1)
    }
}

impl<'a> Iterator for RawEntries<'a> {
    type Item = (Cow<'a, str>, RawJson<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.s.as_bytes();
        let key_start = skip_blanks(b, self.at);
        if b.get(key_start) != Some(&b'"') {
            // At the closing `}` (see `end`), where later calls stay.
            self.at = key_start;
            return None;
        }
        let (key_end, escaped) = string(b, key_start)?;
        let key = self.s.get(key_start + 1..key_end - 1)?;
        let key = if escaped { unescape(key) } else { Cow::Borrowed(key) };
        let colon = skip_blanks(b, key_end);
        let start = skip_blanks(b, colon + 1);
        let end = skip_value(b, start)?;
        self.at = skip_separator(b, end);
        Some((key, RawJson(self.s.get(start..end)?)))
    }
}

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\t' | b'\r')
}

fn skip_blanks(b: &[u8], at: usize) -> usize {
    let rest = b.get(at..).unwrap_or_default();
    at + rest.iter().position(|&c| !is_blank(c)).unwrap_or(rest.len())
}

/// Past the blanks and the `,` after a member or element (at its container's end, at the
/// closing bracket).
fn skip_separator(b: &[u8], at: usize) -> usize {
    let at = skip_blanks(b, at);
    if b.get(at) == Some(&b',') { at + 1 } else { at }
}

/// The end of the string starting (with its `"`) at `at` in checked text.
fn skip_string(b: &[u8], at: usize) -> Option<usize> {
    let mut at = at + 1;
    loop {
        at += find_string_stop(b.get(at..)?)?;
        match b[at] {
            b'"' => return Some(at + 1),
            // An escape: the next byte is never the end of the string.
            b'\\' => at += 2,
            _ => return None,
        }
    }
}

/// The bytes that open or close a string or container.
const STRUCTURE: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'{' as usize] = true;
    t[b'}' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t
};

/// The end of the value starting at `at` in checked text.
fn skip_value(b: &[u8], at: usize) -> Option<usize> {
    match *b.get(at)? {
        b'"' => skip_string(b, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut at = at;
            loop {
                // Straight to the next byte that matters.
                let rest = b.get(at..)?;
                at += rest.iter().position(|&c| STRUCTURE[usize::from(c)])?;
                match b[at] {
                    b'"' => {
                        at = skip_string(b, at)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    _ => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                }
                at += 1;
            }
        }
        _ => {
            let rest = &b[at..];
            Some(at + rest.iter().position(|&c| matches!(c, b',' | b'}' | b']') || is_blank(c)).unwrap_or(rest.len()))
        }
    }
}

/// A quick test whether a key may match one of some names without ASCII case: by its
/// length and its first byte (any case), from a table built once per list of names.
#[derive(Debug, Clone, Copy)]
pub(super) struct NameFilter {
    /// For a length (64 and more: 63), bit `b & 31` set for a name of that length whose
    /// first byte is `b` (in either case: ASCII letters differ in bit 5 only).
    by_length: [u32; 64],
}

impl NameFilter {
    pub(super) const fn new(names: &[&str]) -> Self {
        let mut by_length = [0u32; 64];
        let mut i = 0;
        while i < names.len() {
            let n = names[i].as_bytes();
            if let Some(&first) = n.first() {
                let len = if n.len() < 63 { n.len() } else { 63 };
                by_length[len] |= 1 << (first & 31);
            }
            i += 1;
        }
        NameFilter { by_length }
    }

    fn may_match(&self, key: &[u8]) -> bool {
        key.first().is_some_and(|&first| self.by_length[key.len().min(63)] & 1 << (first & 31) != 0)
    }
}

/// Finds, among an object's members, the ones with given names as a lookup in the
/// `serde_json::Map` of the object finds them: the member of exactly that name (its last
/// value: a map keeps one per name), else the member whose name matches without ASCII case
/// that the map lists first (in key order, or insertion order with `preserve_order`), with
/// that name's last value. The names must be distinct without case.
#[derive(Debug)]
pub(super) struct Pick<'k, J, const N: usize> {
    exact: [Option<J>; N],
    /// Matched without case: (name index, key, value), the key the map would list first.
    /// Rare: a list, empty (no allocation) unless one is met.
    loose: Vec<(usize, Cow<'k, str>, J)>,
}

impl<'k, J: Copy, const N: usize> Pick<'k, J, N> {
    pub(super) fn new() -> Self {
        Pick { exact: [None; N], loose: Vec::new() }
    }

    /// Looks at one member.
    pub(super) fn offer(&mut self, names: &[&str; N], key: Cow<'k, str>, value: J) {
        let Some(i) = names.iter().position(|n| n.len() == key.len() && n.eq_ignore_ascii_case(&key)) else {
            return;
        };
        if same(names[i].as_bytes(), key.as_bytes()) {
            self.exact[i] = Some(value);
            return;
        }
        match self.loose.iter_mut().find(|(j, _, _)| *j == i) {
            None => self.loose.push((i, key, value)),
            // The same name again: the map keeps its last value.
            Some(found) if found.1 == key => found.2 = value,
            // A sorted map lists the smaller name first; an insertion-ordered one the first
            // inserted.
            Some(found) if *MAP_IS_SORTED && key < found.1 => *found = (i, key, value),
            Some(_) => {}
        }
    }

    /// Looks at every member.
    #[cfg(test)]
    pub(super) fn offer_all(&mut self, names: &[&str; N], entries: impl Iterator<Item = (Cow<'k, str>, J)>) {
        self.offer_all_with(names, &NameFilter::new(names), entries);
    }

    /// [`offer_all`](Self::offer_all) with the [`NameFilter`] of `names` at hand.
    pub(super) fn offer_all_with(
        &mut self,
        names: &[&str; N],
        filter: &NameFilter,
        entries: impl Iterator<Item = (Cow<'k, str>, J)>,
    ) {
        for (k, v) in entries {
            if filter.may_match(k.as_bytes()) {
                self.offer(names, k, v);
            }
        }
    }

    /// The members found, by name.
    pub(super) fn finish(self) -> [Option<J>; N] {
        let mut out = self.exact;
        for (i, _, v) in self.loose {
            if out[i].is_none() {
                out[i] = Some(v);
            }
        }
        out
    }
}

/// Nesting deeper than this is left to `serde_json` (which refuses 128 levels).
const SCAN_DEPTH: usize = 100;

/// Integer digits of the longest number [`Scan`] reads itself: any 18 digits fit an `i64`.
const SCAN_DIGITS: usize = 18;

/// A quick check of JSON text for the shapes devices send: `Some(is an object)` for a text
/// it is sure `serde_json` reads into a `Value` without error, `None` for the rest, which is
/// left to `serde_json`: numbers with an exponent or more than 18 integer digits, `\u`
/// escapes, nesting deeper than 100, keys `serde_json` gives a meaning to, and anything
/// `serde_json` refuses. The members of a top-level object whose names have the length of
/// one of `top`'s are offered to it on the way.
///
/// One loop over the text, containers on a bit stack: the check costs a few operations per
/// byte, where a validating parser (serde_json's `IgnoredAny` or `Value`) costs several
/// times that.
fn scan<'a, const N: usize>(s: &'a str, top: &mut Top<'a, '_, '_, N>) -> Option<bool> {
    let b = s.as_bytes();
    // Bit `d` set: the container at depth `d` (1-based) is an object.
    let mut objects: u128 = 0;
    let mut depth = 0usize;
    // The top-level member being read: its key (range, escaped) and where its value starts.
    let mut member = (0..0, false, 0);
    let mut i = blanks(b, 0);
    let object = *b.get(i)? == b'{';
    'value: loop {
        // A value starts at `i`.
        match *b.get(i)? {
            open @ (b'{' | b'[') => {
                depth += 1;
                if depth > SCAN_DEPTH {
                    return None;
                }
                let is_object = open == b'{';
                if is_object {
                    objects |= 1 << depth;
                } else {
                    objects &= !(1 << depth);
                }
                i = blanks(b, i + 1);
                if *b.get(i)? == if is_object { b'}' } else { b']' } {
                    i += 1;
                    depth -= 1;
                } else if is_object {
                    i = key(s, i, depth, &mut member)?;
                    continue 'value;
                } else {
                    continue 'value;
                }
            }
            b'"' => i = string(b, i)?.0,
            b'-' | b'0'..=b'9' => i = number(b, i)?,
            b't' => i = word(b, i, b"true")?,
            b'f' => i = word(b, i, b"false")?,
            b'n' => i = word(b, i, b"null")?,
            _ => return None,
        }
        // A value ended at `i`: what follows it.
        loop {
            if depth == 0 {
                break 'value;
            }
            if depth == 1 && object {
                let (key, escaped, start) = member.clone();
                if top.filter.may_match(s.as_bytes().get(key.clone())?) {
                    let key = if escaped { unescape(s.get(key)?) } else { Cow::Borrowed(s.get(key)?) };
                    top.pick.offer(top.names, key, RawJson(s.get(start..i)?));
                }
            }
            i = blanks(b, i);
            let in_object = objects >> depth & 1 == 1;
            match *b.get(i)? {
                b',' => {
                    i = blanks(b, i + 1);
                    if in_object {
                        i = key(s, i, depth, &mut member)?;
                    }
                    continue 'value;
                }
                b'}' if in_object => {}
                b']' if !in_object => {}
                _ => return None,
            }
            i += 1;
            depth -= 1;
        }
    }
    (blanks(b, i) == b.len()).then_some(object)
}

fn blanks(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        if !is_blank(c) {
            break;
        }
        i += 1;
    }
    i
}

/// A member's key at `i`, the `:` after it and the blanks around that: where its value
/// starts. At depth 1, the key is noted in `member`.
fn key(s: &str, i: usize, depth: usize, member: &mut (std::ops::Range<usize>, bool, usize)) -> Option<usize> {
    let b = s.as_bytes();
    if *b.get(i)? != b'"' {
        return None;
    }
    let (end, escaped) = string(b, i)?;
    let key = i + 1..end - 1;
    if b[key.clone()].starts_with(MAGIC_KEY_PREFIX) {
        return None;
    }
    let colon = blanks(b, end);
    if *b.get(colon)? != b':' {
        return None;
    }
    let value = blanks(b, colon + 1);
    if depth == 1 {
        *member = (key, escaped, value);
    }
    Some(value)
}

/// A string at `i` with no escape but `\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t` and no
/// control character: where it ends, and whether it holds an escape.
fn string(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut i = i + 1;
    let mut escaped = false;
    loop {
        i += find_string_stop(b.get(i..)?)?;
        match b[i] {
            b'"' => return Some((i + 1, escaped)),
            b'\\' => match b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                    escaped = true;
                    i += 2;
                }
                _ => return None,
            },
            _ => return None,
        }
    }
}

/// `-?(0|[1-9][0-9]{0,17})(\.[0-9]+)?` at `i`, not followed by a digit or an exponent: where
/// it ends.
fn number(b: &[u8], i: usize) -> Option<usize> {
    let mut i = i + usize::from(b[i] == b'-');
    let start = i;
    match *b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(b, i),
        _ => return None,
    }
    if i - start > SCAN_DIGITS {
        return None;
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(b, i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    match b.get(i) {
        Some(b'0'..=b'9' | b'e' | b'E') => None,
        _ => Some(i),
    }
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

fn word(b: &[u8], i: usize, w: &[u8]) -> Option<usize> {
    (b.get(i..i + w.len())? == w).then_some(i + w.len())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The value a [`Json`] reads as, built through its methods only.
    fn value_of<'a>(j: impl Json<'a>) -> Value {
        if let Some(s) = j.as_str() {
            return Value::String(s.into_owned());
        }
        if let Some(n) = j.as_number() {
            return Value::Number(n);
        }
        if let Some(e) = j.elements() {
            return Value::Array(e.map(value_of).collect());
        }
        if let Some(m) = j.entries() {
            // A map keeps one member per name, the last.
            return Value::Object(m.map(|(k, v)| (k.into_owned(), value_of(v))).collect());
        }
        j.as_literal().expect("a literal")
    }

    /// The value of a whole text [`Scan`] read.
    fn raw_value(raw: &str) -> Value {
        value_of(RawJson(raw.trim_matches(|c| matches!(c, ' ' | '\n' | '\t' | '\r'))))
    }

    /// Whether `raw` is JSON, as `serde_json` decides.
    fn serde_check(raw: &str) -> Result<(), bool> {
        serde_json::from_str::<Value>(raw).map(|_| ()).map_err(|e| e.is_eof())
    }

    #[test]
    fn reads_as_serde_json_reads() {
        for raw in [
            r#"{"Name": "a", "name": "b", "NAME": "c", "utc": 1, "UTc": 2, "Object": {"x": [1, 2]}}"#,
            r#"{"name": "b", "NAME": "c", "name": "d", "Name": 1, "Name": 2}"#,
            r#"{"a": -0, "b": 1.5, "c": 123456789012345678, "d": "x\"y\\z\/w\n\t", "e": [], "f": {}}"#,
            r#" [ 1 , -2 , 3.25 , "s" , null , true , false , [ [ ] ] , { "k" : { } } ] "#,
            "{\n   \"Id\" : [ 0 ],\n   \"RegionName\" : [ \"Region1\" ],\n   \"SmartMotionEnable\" : true\n}",
            "\"x\"",
            "-0.0",
            "0",
            "{}",
        ] {
            assert!(quick_check(raw), "{raw}");
            assert_eq!(raw_value(raw), serde_json::from_str::<Value>(raw).unwrap(), "{raw}");
            assert_eq!(check_json(raw), Ok(()));
        }
        // Left to serde_json, whatever it decides.
        for raw in [
            "1e5",
            "1234567890123456789",
            "\"\\u0041\"",
            "{\"a\":1,}",
            "[1,]",
            "01",
            "1.",
            "-",
            "tru",
            "{\"a\": 1e400}",
            "{\"a\": \"\\ud800\"}",
            "{\"a\" : [ 1,",
            "{\"$serde_json::private::RawValue\": \"[1, 2]\"}",
            "{\"x\": {\"$serde_json::private::Number\": \"1\"}}",
            "\"\t\"",
        ] {
            assert!(!quick_check(raw), "{raw}");
            assert_eq!(check_json(raw), serde_check(raw), "{raw}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(!quick_check(&deep));
        assert_eq!(check_json(&deep), Err(false));
    }

    #[test]
    fn picks_as_a_map_lookup_finds() {
        const NAMES: [&str; 3] = ["Name", "UTC", "x"];
        for raw in [
            r#"{"Name": 1, "name": 2, "NAME": 3, "utc": 4, "UTc": 5, "X": 6}"#,
            r#"{"name": 1, "NAME": 2, "name": 3, "nAme": 4, "Name": 5, "Name": 6, "x": 7, "X": 8, "x": 9}"#,
            r#"{"nAME": 1, "naME": 2, "y": 3}"#,
            r#"{}"#,
        ] {
            let v: Value = serde_json::from_str(raw).unwrap();
            let m = v.as_object().unwrap();
            let want = NAMES.map(|n| {
                m.get(n).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v)).cloned()
            });
            let mut pick = Pick::new();
            pick.offer_all(&NAMES, RawJson(raw).entries().unwrap());
            assert_eq!(pick.finish().map(|j| j.map(value_of)), want, "{raw}");
            let mut pick = Pick::new();
            pick.offer_all(&NAMES, entries_of(m));
            assert_eq!(pick.finish().map(|j| j.cloned()), want, "{raw}");
        }
    }

    /// JSON-ish text: valid often, broken sometimes.
    fn json_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("{"),
            Just("}"),
            Just("["),
            Just("]"),
            Just(","),
            Just(":"),
            Just(" "),
            Just("\n"),
            Just("null"),
            Just("true"),
            Just("fals"),
            Just("1e400"),
            Just("-0.5"),
            Just("-0"),
            Just("0."),
            Just("01"),
            Just("12345678901234567890"),
            Just("123456789012345678"),
            Just("\"\\u00e9\""),
            Just("\"a\\\"\\n\\\\\\/\""),
            Just("\"\\x\""),
            Just("\"\t\""),
            Just("\"é\""),
            Just("\"Name\":"),
            Just("\"name\":"),
            Just("\"x\":"),
            Just("\"$serde_json::private::RawValue\":"),
        ];
        proptest::collection::vec(piece, 0..30).prop_map(|v| v.concat())
    }

    /// Valid JSON of every shape, in several layouts.
    fn json_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("1".to_owned()),
            Just("-7".to_owned()),
            Just("0.125".to_owned()),
            Just("-0".to_owned()),
            Just("\"s\\\"t\\\\u\\/v\\b\\f\\n\\r\\t\"".to_owned()),
            Just("\"é\"".to_owned()),
            Just("null".to_owned()),
            Just("true".to_owned()),
            any::<i64>().prop_map(|n| (n / 100).to_string()),
            any::<u32>().prop_map(|n| format!("{n}.{n}")),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            let key = prop_oneof![Just("a"), Just("A"), Just("Name"), Just("b\\n"), Just("")];
            let blank = prop_oneof![Just(""), Just(" "), Just("\n   ")];
            prop_oneof![
                (proptest::collection::vec(inner.clone(), 0..5), blank.clone())
                    .prop_map(|(v, b)| format!("[{b}{}{b}]", v.join(&format!("{b},{b}")))),
                (proptest::collection::vec((key, inner), 0..5), blank).prop_map(|(m, b)| {
                    let m: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\"{b}:{b}{v}")).collect();
                    format!("{{{b}{}{b}}}", m.join(&format!(",{b}")))
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn checks_any_text_as_serde_json_does(raw in json_text()) {
            if quick_check(&raw) {
                prop_assert_eq!(serde_check(&raw), Ok(()));
                prop_assert_eq!(raw_value(&raw), serde_json::from_str::<Value>(&raw).unwrap());
            }
            prop_assert_eq!(check_json(&raw), serde_check(&raw));
        }

        #[test]
        fn reads_valid_json_as_serde_json_does(raw in json_value()) {
            prop_assert!(quick_check(&raw), "{}", raw);
            prop_assert_eq!(raw_value(&raw), serde_json::from_str::<Value>(&raw).unwrap());
        }
    }
}
