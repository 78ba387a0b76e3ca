//! Part bodies (dahua.md §4): `Code=<code>;action=<action>;index=<n>[;data=<json>]`, or the
//! literal `Heartbeat`.
//!
//! The head is split on `;` (and on line breaks, for firmware that puts one `key=value` per
//! line) with keys and values trimmed (V11) and keys compared without case (`Code`/`Action`/
//! `Index`/`Data` of RPC2 and DHIP read the same); everything after the first `data=` key is
//! the JSON, verbatim, whatever `;`, `=` or newlines it holds. `data=null` (and an empty
//! value) is no data (V12); JSON that does not parse is kept as text and flagged, truncated
//! or not. A line that starts with `Code=` begins a further record: valid JSON cannot hold
//! one (strings cannot contain raw newlines and keys are quoted), so a part that packs several
//! events yields them all.

use std::borrow::Cow;
use std::fmt;

use camgate_core::State;
use serde_json::{Map, Value};

use super::json::check_json;
use super::scan::{Positions, find_byte};

/// One part body.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    /// The body as text (lossy UTF-8), trailing CR/LF removed: the verbatim record for a
    /// dead-letter entry.
    pub text: String,
    /// Whether a `Heartbeat` line was present (a heartbeat part proves the stream is alive).
    pub heartbeat: bool,
    /// The events, in order; empty for a heartbeat or a body that is not in the grammar
    /// (`Error` / `Bad Request!` texts, garbage).
    pub records: Vec<Record>,
}

impl Body {
    /// A heartbeat and nothing else.
    pub fn is_heartbeat(&self) -> bool {
        self.heartbeat && self.records.is_empty()
    }
}

/// One `Code=...` event, as the device sent it: its text, kept whole in one string, and
/// where its items are in it. Nothing is copied out or built until asked for: the items are
/// `&str`s of the text, `data=` is JSON text already checked by the parser that reads it
/// ([`Data::Json`]), and [`to_json`](Record::to_json) builds the record as a JSON value.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    text: Box<str>,
    at: Layout,
}

/// `data=` of a record, borrowed from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data<'t> {
    /// No `data=` key.
    Absent,
    /// `data=null` or an empty value (V12).
    Null,
    /// Well-formed JSON, verbatim (trimmed): `serde_json` reads it without error, into the
    /// same value it read when this was checked ([`Record::json`]).
    Json(&'t str),
    /// Not JSON: the text after `data=`, trimmed. `truncated` when the text ended in the
    /// middle of a value (a payload cut short), rather than holding a syntax error.
    Invalid { raw: &'t str, truncated: bool },
}

/// A byte range of a record's text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// The span of `part`, a slice of `text`.
    fn within(text: &str, part: &str) -> Span {
        let start = (part.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
        Span { start, end: start + part.len() }
    }

    pub(super) fn of(self, text: &str) -> &str {
        text.get(self.start..self.end).unwrap_or_default()
    }
}

/// Where `data=` is in a record's text, and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DataAt {
    Absent,
    Null,
    /// JSON, once checked; until then (see [`read_records`]), any other value.
    Json(Span),
    Invalid {
        raw: Span,
        truncated: bool,
    },
}

/// Where a record's items are in its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    code: Span,
    action: Option<Span>,
    index: Option<Span>,
    /// Any other head keys, in order: (key, value).
    extra: Vec<(Span, Span)>,
    pub(super) data: DataAt,
}

impl Layout {
    pub(super) fn code<'t>(&self, text: &'t str) -> &'t str {
        self.code.of(text)
    }

    pub(super) fn action<'t>(&self, text: &'t str) -> Option<&'t str> {
        self.action.map(|s| s.of(text))
    }

    pub(super) fn index<'t>(&self, text: &'t str) -> Option<&'t str> {
        self.index.map(|s| s.of(text))
    }

    fn extra<'a>(&'a self, text: &'a str) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        self.extra.iter().map(|(k, v)| (k.of(text), v.of(text)))
    }

    fn data<'t>(&self, text: &'t str) -> Data<'t> {
        match self.data {
            DataAt::Absent => Data::Absent,
            DataAt::Null => Data::Null,
            DataAt::Json(s) => Data::Json(s.of(text)),
            DataAt::Invalid { raw, truncated } => Data::Invalid { raw: raw.of(text), truncated },
        }
    }
}

impl Record {
    /// `Code`, never empty, no control characters.
    pub fn code(&self) -> &str {
        self.at.code(&self.text)
    }

    /// `action` as sent (`Start`, `Stop`, `Pulse`, `State`, ...), trimmed.
    pub fn action(&self) -> Option<&str> {
        self.at.action(&self.text)
    }

    /// `index` as sent (0-based channel, or alarm input for `AlarmLocal`), trimmed.
    pub fn index(&self) -> Option<&str> {
        self.at.index(&self.text)
    }

    /// Any other head keys, in order, as sent (trimmed).
    pub fn extra(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.at.extra(&self.text)
    }

    /// The `data=` value.
    pub fn data(&self) -> Data<'_> {
        self.at.data(&self.text)
    }

    /// The record's text as sent, from its `Code=` to the next record or the end of the body.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// `index` as a number.
    pub fn index_number(&self) -> Option<u32> {
        index_number(self.index()?)
    }

    /// `action` as a camgate state (`Start`, `Stop`, `Pulse`, `State`, any case).
    pub fn state(&self) -> Option<State> {
        state_of(self.action()?)
    }

    /// The payload read into a JSON value, when `data=` held well-formed JSON. Builds the
    /// value on each call.
    pub fn json(&self) -> Option<Value> {
        match self.data() {
            Data::Json(raw) => serde_json::from_str(raw).ok(),
            _ => None,
        }
    }

    /// Whether `data=` held JSON that ended in the middle of a value.
    pub fn data_truncated(&self) -> bool {
        matches!(self.at.data, DataAt::Invalid { truncated: true, .. })
    }

    /// The whole record as JSON: `{"Code", "action", "index", other head keys, "data"}`,
    /// `index` a number when it is one, `data` the payload's value, `null` (`data=null` or
    /// empty), or the raw text when it is not JSON; the first of a repeated head key wins.
    /// Builds the value on each call.
    pub fn to_json(&self) -> Value {
        // The fixed keys go in from the greatest (`data`, `index`, `action`, `Code`) down: a
        // map this small is one node, searched from its first key, so each insert compares
        // one key.
        let mut m = Map::new();
        match self.data() {
            Data::Absent => {}
            Data::Null => {
                m.insert("data".to_owned(), Value::Null);
            }
            Data::Json(raw) => {
                // Checked JSON reads as it did when checked; the fallback is never taken.
                let v = serde_json::from_str(raw).unwrap_or_else(|_| Value::from(raw));
                m.insert("data".to_owned(), v);
            }
            Data::Invalid { raw, .. } => {
                m.insert("data".to_owned(), Value::from(raw));
            }
        }
        if let Some(i) = self.index() {
            let v = i.parse::<u64>().map_or_else(|_| Value::from(i), Value::from);
            m.insert("index".to_owned(), v);
        }
        if let Some(a) = self.action() {
            m.insert("action".to_owned(), Value::from(a));
        }
        m.insert("Code".to_owned(), Value::from(self.code()));
        for (k, v) in self.extra() {
            // The first of a repeated key wins (an extra key is never `data`: that key ends
            // the head).
            if !m.contains_key(k) {
                m.insert(k.to_owned(), Value::from(v));
            }
        }
        Value::Object(m)
    }

    /// The record read in place.
    pub(super) fn as_ref(&self) -> RecordRef<'_> {
        RecordRef { text: &self.text, at: self.at.clone() }
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("code", &self.code())
            .field("action", &self.action())
            .field("index", &self.index())
            .field("extra", &self.extra().collect::<Vec<_>>())
            .field("data", &self.data())
            .finish()
    }
}

/// An `index` value as a number: digits only.
pub(super) fn index_number(i: &str) -> Option<u32> {
    if i.is_empty() || !i.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    i.parse().ok()
}

/// An `action` value as a camgate state (`Start`, `Stop`, `Pulse`, `State`, any case).
pub(super) fn state_of(a: &str) -> Option<State> {
    [State::Start, State::Stop, State::Pulse, State::State].into_iter().find(|s| a.eq_ignore_ascii_case(s.as_str()))
}

/// A [`Record`] that borrows its text from the body: what the decoder reads, so that a
/// record costs one copy of its text ([`into_owned`](Self::into_owned)) and no other
/// allocation (see [`read_records`]).
#[derive(Debug)]
pub(super) struct RecordRef<'t> {
    pub(super) text: &'t str,
    pub(super) at: Layout,
}

impl RecordRef<'_> {
    pub(super) fn into_owned(self) -> Record {
        Record { text: self.text.into(), at: self.at }
    }
}

/// Reads one part body. Never fails: what is not in the grammar stays in [`Body::text`].
///
/// ```
/// use camgate_protocols::dahua::{Data, parse_body};
///
/// let b = parse_body(b"Code=CrossLineDetection; action=Start; index=0;data={\"Name\" : \"Drive; Gate=1\"}");
/// let r = &b.records[0];
/// assert_eq!((r.code(), r.action(), r.index_number()), ("CrossLineDetection", Some("Start"), Some(0)));
/// assert_eq!(r.data(), Data::Json("{\"Name\" : \"Drive; Gate=1\"}"));
/// assert_eq!(r.json().unwrap()["Name"], "Drive; Gate=1");
/// assert!(parse_body(b"Heartbeat").is_heartbeat());
/// assert!(matches!(parse_body(b"Code=VideoMotion;action=Start;index=0;data={\"Id\" : [").records[0].data(),
///     Data::Invalid { truncated: true, .. }));
/// ```
pub fn parse_body(body: &[u8]) -> Body {
    let text = body_text(body);
    let mut records = Vec::new();
    let heartbeat = read_records(&text, |mut r| {
        if let DataAt::Json(span) = r.at.data
            && let Err(truncated) = check_json(span.of(r.text))
        {
            r.at.data = DataAt::Invalid { raw: span, truncated };
        }
        records.push(r.into_owned());
    });
    Body { text: text.into_owned(), heartbeat, records }
}

/// A body as text: lossy UTF-8, trailing CR/LF removed ([`Body::text`]). Borrowed when the
/// body is valid UTF-8: `str::from_utf8` checks that much faster than the chunk-by-chunk
/// scan of `String::from_utf8_lossy`, which only runs when there is something to replace.
pub(super) fn body_text(body: &[u8]) -> Cow<'_, str> {
    let text = match std::str::from_utf8(body) {
        Ok(t) => Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(body),
    };
    match text {
        Cow::Borrowed(t) => Cow::Borrowed(t.trim_end_matches(['\r', '\n'])),
        Cow::Owned(mut t) => {
            t.truncate(t.trim_end_matches(['\r', '\n']).len());
            Cow::Owned(t)
        }
    }
}

/// Reads the records of a body text ([`body_text`]) in place, handing them to `on_record` in
/// order, and returns whether a `Heartbeat` line was present ([`Body::heartbeat`]). A
/// record's `data=` is [`DataAt::Json`] for any value but an empty one or `null`: the JSON is
/// not checked here but by the reader of the record, which reads it anyway (normalisation
/// reads what it needs from it and checks the rest in the same pass).
pub(super) fn read_records<'t>(text: &'t str, mut on_record: impl FnMut(RecordRef<'t>)) -> bool {
    let mut starts = RecordStarts::new(text);
    let mut start = starts.next();
    let mut heartbeat = text[..start.unwrap_or(text.len())].lines().any(is_heartbeat_line);
    while let Some(from) = start {
        start = starts.next();
        if let Some(r) = record(&text[from..start.unwrap_or(text.len())], &mut heartbeat) {
            on_record(r);
        }
    }
    heartbeat
}

fn is_heartbeat_line(line: &str) -> bool {
    line.trim().eq_ignore_ascii_case("Heartbeat")
}

/// Byte offsets of the lines that start with `Code=` (any case, blanks around allowed), in
/// one pass over the text's line breaks.
struct RecordStarts<'t> {
    text: &'t [u8],
    /// Whether the first line is still to look at.
    first: bool,
    /// The line breaks, when the lines after the first are to be looked at.
    breaks: Option<Positions<'t>>,
}

impl<'t> RecordStarts<'t> {
    fn new(text: &'t str) -> Self {
        // A `Code=` line holds an `=`: when no `=` follows the first line break (a JSON
        // payload, as devices send it, holds none), only the first line can start a record,
        // and the lines after it are not looked at one by one.
        let b = text.as_bytes();
        let all_lines = find_byte(b, b'\n').is_some_and(|lf| memchr::memchr(b'=', &b[lf..]).is_some());
        let breaks = all_lines.then(|| Positions::new(b, b'\n'));
        RecordStarts { text: b, first: true, breaks }
    }
}

impl Iterator for RecordStarts<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if std::mem::take(&mut self.first)
            && let Some(at) = code_at(self.text, 0)
        {
            return Some(at);
        }
        let text = self.text;
        self.breaks.as_mut()?.find_map(|lf| code_at(text, lf + 1))
    }
}

/// Where `Code` is on the line that starts at `at`, when the line starts with `Code=` (any
/// case, blanks before and around `=`).
fn code_at(text: &[u8], at: usize) -> Option<usize> {
    let rest = text.get(at..)?;
    // The line's LF stops both runs of blanks.
    let lead = rest.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\r'))?;
    let rest = &rest[lead..];
    let is_code = rest.get(..4).is_some_and(|k| k.eq_ignore_ascii_case(b"code"))
        && rest[4..].iter().find(|b| !matches!(b, b' ' | b'\t')) == Some(&b'=');
    is_code.then_some(at + lead)
}

/// `s.trim()`, without decoding characters when `s` starts and ends with ASCII that is not
/// white space (the usual case: then there is nothing to trim).
fn trim(s: &str) -> &str {
    let solid = |b: Option<&u8>| b.is_some_and(|&b| b.is_ascii() && !matches!(b, b'\t'..=b'\r' | b' '));
    if solid(s.as_bytes().first()) && solid(s.as_bytes().last()) { s } else { s.trim() }
}

/// One record's text: the head items up to `data=`, then the data verbatim.
fn record<'t>(text: &'t str, heartbeat: &mut bool) -> Option<RecordRef<'t>> {
    if let Some(at) = usual_head(text) {
        return Some(RecordRef { text, at });
    }
    record_items(text, heartbeat)
}

/// [`record`], item by item.
fn record_items<'t>(text: &'t str, heartbeat: &mut bool) -> Option<RecordRef<'t>> {
    let mut code = None;
    let mut action = None;
    let mut index = None;
    let mut extra = Vec::new();
    let mut data = DataAt::Absent;
    let b = text.as_bytes();
    let mut at = 0;
    while at < b.len() {
        // An item runs to `;` or LF; its key to its first `=`. (All three are ASCII: byte
        // offsets are character boundaries.)
        let rest = &b[at..];
        let Some(stop) = rest.iter().position(|&c| matches!(c, b';' | b'\n' | b'=')) else {
            if is_heartbeat_line(&text[at..]) {
                *heartbeat = true;
            }
            break;
        };
        if rest[stop] != b'=' {
            if is_heartbeat_line(&text[at..at + stop]) {
                *heartbeat = true;
            }
            at += stop + 1;
            continue;
        }
        let eq = at + stop;
        let key = trim(&text[at..eq]);
        if key.eq_ignore_ascii_case("data") {
            data = data_at(text, &text[eq + 1..]);
            break;
        }
        let end = eq + 1 + b[eq + 1..].iter().position(|&c| c == b';' || c == b'\n').unwrap_or(b.len() - eq - 1);
        let value = trim(&text[eq + 1..end]);
        at = end + 1;
        let slot = if key.eq_ignore_ascii_case("code") {
            &mut code
        } else if key.eq_ignore_ascii_case("action") {
            &mut action
        } else if key.eq_ignore_ascii_case("index") {
            &mut index
        } else {
            if !key.is_empty() {
                extra.push((Span::within(text, key), Span::within(text, value)));
            }
            continue;
        };
        if slot.is_none() {
            *slot = Some(value);
        } else {
            extra.push((Span::within(text, key), Span::within(text, value)));
        }
    }
    // A code is an identifier: empty or with control characters, the text is not a record.
    let code = code.filter(|c: &&str| !c.is_empty() && !has_control(c))?;
    let span = |s: &str| Span::within(text, s);
    let at = Layout { code: span(code), action: action.map(span), index: index.map(span), extra, data };
    Some(RecordRef { text, at })
}

/// The head as nearly every device sends it, read at once: `Code=<code>;action=<action>;
/// index=<index>` so spelled, each value without blanks around it and without `;` or LF, then
/// the end of the text or `;data=`. What [`record`]'s item loop reads from such a text;
/// `None` for any other text, which that loop reads.
fn usual_head(text: &str) -> Option<Layout> {
    /// A value from `at` up to `;` (its index, `None` at the end of the text), when there is
    /// no LF and no blank at either end.
    fn value(b: &[u8], at: usize) -> Option<(Span, Option<usize>)> {
        let rest = b.get(at..)?;
        let end = rest.iter().position(|&c| c == b';' || c == b'\n');
        let v = &rest[..end.unwrap_or(rest.len())];
        let solid = |c: Option<&u8>| c.is_some_and(|&c| c.is_ascii() && !matches!(c, b'\t'..=b'\r' | b' '));
        if !solid(v.first()) || !solid(v.last()) {
            return None;
        }
        let span = Span { start: at, end: at + v.len() };
        match end {
            None => Some((span, None)),
            Some(i) if rest[i] == b';' => Some((span, Some(at + i))),
            Some(_) => None,
        }
    }
    let b = text.as_bytes();
    if !b.starts_with(b"Code=") {
        return None;
    }
    let (code, semi) = value(b, 5)?;
    if has_control(code.of(text)) || !b[semi?..].starts_with(b";action=") {
        return None;
    }
    let (action, semi) = value(b, semi? + 8)?;
    if !b[semi?..].starts_with(b";index=") {
        return None;
    }
    let (index, semi) = value(b, semi? + 7)?;
    let data = match semi {
        None => DataAt::Absent,
        Some(semi) => {
            let raw = text.get(semi + 1..)?.strip_prefix("data=")?;
            data_at(text, raw)
        }
    };
    Some(Layout { code, action: Some(action), index: Some(index), extra: Vec::new(), data })
}

/// Whether `s` holds a control character (`char::is_control`: U+0000-U+001F, U+007F-U+009F),
/// without decoding characters unless a lead byte of U+0080-U+009F (0xC2) is present.
fn has_control(s: &str) -> bool {
    if s.bytes().all(|b| b >= 0x20 && b != 0x7f && b != 0xc2) {
        return false;
    }
    s.chars().any(char::is_control)
}

/// `data=`'s value (`raw`, a slice of `text`), its JSON unchecked.
fn data_at(text: &str, raw: &str) -> DataAt {
    let raw = raw.trim();
    if raw.is_empty() || raw.eq_ignore_ascii_case("null") {
        return DataAt::Null;
    }
    DataAt::Json(Span::within(text, raw))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn head_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("Code="),
            Just("code="),
            Just(";action="),
            Just(";Action="),
            Just(";index="),
            Just(";data="),
            Just(";data={\"a\":1}"),
            Just(";x=1"),
            Just("VideoMotion"),
            Just("Start"),
            Just("0"),
            Just(" "),
            Just("\t"),
            Just("\r\n"),
            Just("\n"),
            Just(";"),
            Just("="),
            Just("\u{1}"),
            Just("\u{a0}"),
            Just("é"),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn usual_heads_read_as_item_by_item(tail in head_text(), usual in any::<bool>()) {
            let text = if usual { format!("Code=VideoMotion;action=Start;index=0{tail}") } else { tail };
            if let Some(at) = usual_head(&text) {
                let mut heartbeat = false;
                let slow = record_items(&text, &mut heartbeat).map(|r| r.at);
                prop_assert_eq!(Some(at), slow, "{:?}", text);
                prop_assert!(!heartbeat);
            }
        }
    }
}
