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

use camgate_core::State;
use serde_json::Value;

use super::scan::{find_byte, find_byte2};

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

/// One `Code=...` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `Code`, never empty, no control characters.
    pub code: String,
    /// `action` as sent (`Start`, `Stop`, `Pulse`, `State`, ...).
    pub action: Option<String>,
    /// `index` as sent (0-based channel, or alarm input for `AlarmLocal`).
    pub index: Option<String>,
    /// Any other head keys, in order, as sent (trimmed).
    pub extra: Vec<(String, String)>,
    pub data: Data,
}

/// The `data=` value.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// No `data=` key.
    Absent,
    /// `data=null` or an empty value (V12).
    Null,
    /// Well-formed JSON.
    Json(Value),
    /// Not JSON: the text after `data=`, trimmed. `truncated` when the text ended in the
    /// middle of a value (a payload cut short), rather than holding a syntax error.
    Invalid { raw: String, truncated: bool },
}

impl Record {
    /// `index` as a number.
    pub fn index_number(&self) -> Option<u32> {
        index_number(self.index.as_deref()?)
    }

    /// `action` as a camgate state (`Start`, `Stop`, `Pulse`, `State`, any case).
    pub fn state(&self) -> Option<State> {
        state_of(self.action.as_deref()?)
    }

    /// The JSON, when `data=` held well-formed JSON.
    pub fn json(&self) -> Option<&Value> {
        match &self.data {
            Data::Json(v) => Some(v),
            _ => None,
        }
    }

    /// Whether `data=` held JSON that ended in the middle of a value.
    pub fn data_truncated(&self) -> bool {
        matches!(self.data, Data::Invalid { truncated: true, .. })
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
/// record costs no allocation beyond what its event keeps (see [`read_records`]).
#[derive(Debug)]
pub(super) struct RecordRef<'t> {
    pub(super) code: &'t str,
    pub(super) action: Option<&'t str>,
    pub(super) index: Option<&'t str>,
    pub(super) extra: Vec<(&'t str, &'t str)>,
    pub(super) data: DataRef<'t>,
}

/// [`Data`], borrowing the raw text of JSON that does not parse.
#[derive(Debug)]
pub(super) enum DataRef<'t> {
    Absent,
    Null,
    Json(Value),
    Invalid { raw: &'t str, truncated: bool },
}

impl RecordRef<'_> {
    fn into_owned(self) -> Record {
        Record {
            code: self.code.to_owned(),
            action: self.action.map(str::to_owned),
            index: self.index.map(str::to_owned),
            extra: self.extra.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
            data: match self.data {
                DataRef::Absent => Data::Absent,
                DataRef::Null => Data::Null,
                DataRef::Json(v) => Data::Json(v),
                DataRef::Invalid { raw, truncated } => Data::Invalid { raw: raw.to_owned(), truncated },
            },
        }
    }
}

/// Reads one part body. Never fails: what is not in the grammar stays in [`Body::text`].
///
/// ```
/// use camgate_protocols::dahua::{Data, parse_body};
///
/// let b = parse_body(b"Code=CrossLineDetection; action=Start; index=0;data={\"Name\" : \"Drive; Gate=1\"}");
/// let r = &b.records[0];
/// assert_eq!((r.code.as_str(), r.action.as_deref(), r.index_number()), ("CrossLineDetection", Some("Start"), Some(0)));
/// assert_eq!(r.json().unwrap()["Name"], "Drive; Gate=1");
/// assert!(parse_body(b"Heartbeat").is_heartbeat());
/// assert!(matches!(parse_body(b"Code=VideoMotion;action=Start;index=0;data={\"Id\" : [").records[0].data,
///     Data::Invalid { truncated: true, .. }));
/// ```
pub fn parse_body(body: &[u8]) -> Body {
    let text = body_text(body);
    let mut records = Vec::new();
    let heartbeat = read_records(&text, |r| records.push(r.into_owned()));
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
/// order, and returns whether a `Heartbeat` line was present ([`Body::heartbeat`]).
pub(super) fn read_records<'t>(text: &'t str, mut on_record: impl FnMut(RecordRef<'t>)) -> bool {
    let mut starts = RecordStarts { text: text.as_bytes(), at: 0 };
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

/// Byte offsets of the lines that start with `Code=` (any case, blanks around allowed).
struct RecordStarts<'t> {
    text: &'t [u8],
    /// Start of the next line to look at.
    at: usize,
}

impl Iterator for RecordStarts<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.at < self.text.len() {
            let line_start = self.at;
            let rest = &self.text[line_start..];
            let line = match find_byte(rest, b'\n') {
                Some(i) => &rest[..=i],
                None => rest,
            };
            self.at += line.len();
            let lead = line.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\r')).unwrap_or(line.len());
            let rest = &line[lead..];
            // ASCII bytes only are compared, so `rest[4..]` starts on a character boundary.
            let is_code = rest.get(..4).is_some_and(|k| k.eq_ignore_ascii_case(b"code"))
                && rest[4..].iter().find(|b| !matches!(b, b' ' | b'\t')) == Some(&b'=');
            if is_code {
                return Some(line_start + lead);
            }
        }
        None
    }
}

/// One record's text: the head items up to `data=`, then the data verbatim.
fn record<'t>(text: &'t str, heartbeat: &mut bool) -> Option<RecordRef<'t>> {
    let mut code = None;
    let mut action = None;
    let mut index = None;
    let mut extra = Vec::new();
    let mut data = DataRef::Absent;
    let mut rest = text;
    while !rest.is_empty() {
        // `;` and LF are ASCII: a byte search finds the same index as a char search.
        let end = find_byte2(rest.as_bytes(), b';', b'\n').unwrap_or(rest.len());
        let item = &rest[..end];
        if let Some(eq) = find_byte(item.as_bytes(), b'=') {
            let (k, v) = (&item[..eq], &item[eq + 1..]);
            let key = k.trim();
            if key.eq_ignore_ascii_case("data") {
                data = read_data(&rest[eq + 1..]);
                break;
            }
            let value = v.trim();
            let slot = if key.eq_ignore_ascii_case("code") {
                &mut code
            } else if key.eq_ignore_ascii_case("action") {
                &mut action
            } else if key.eq_ignore_ascii_case("index") {
                &mut index
            } else {
                if !key.is_empty() {
                    extra.push((key, value));
                }
                rest = rest.get(end + 1..).unwrap_or("");
                continue;
            };
            if slot.is_none() {
                *slot = Some(value);
            } else {
                extra.push((key, value));
            }
        } else if is_heartbeat_line(item) {
            *heartbeat = true;
        }
        rest = rest.get(end + 1..).unwrap_or("");
    }
    // A code is an identifier: empty or with control characters, the text is not a record.
    let code = code.filter(|c: &&str| !c.is_empty() && !c.chars().any(char::is_control))?;
    Some(RecordRef { code, action, index, extra, data })
}

fn read_data(raw: &str) -> DataRef<'_> {
    let raw = raw.trim();
    if raw.is_empty() || raw.eq_ignore_ascii_case("null") {
        return DataRef::Null;
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(v) => DataRef::Json(v),
        Err(e) => DataRef::Invalid { raw, truncated: e.is_eof() },
    }
}
