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

use camgate_core::State;
use serde_json::Value;

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
        let i = self.index.as_deref()?;
        if i.is_empty() || !i.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        i.parse().ok()
    }

    /// `action` as a camgate state (`Start`, `Stop`, `Pulse`, `State`, any case).
    pub fn state(&self) -> Option<State> {
        let a = self.action.as_deref()?;
        [State::Start, State::Stop, State::Pulse, State::State].into_iter().find(|s| a.eq_ignore_ascii_case(s.as_str()))
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
    let text = String::from_utf8_lossy(body);
    let text = text.trim_end_matches(['\r', '\n']);
    let starts = record_starts(text);
    let mut heartbeat = text[..starts.first().copied().unwrap_or(text.len())].lines().any(is_heartbeat_line);
    let mut records = Vec::with_capacity(starts.len());
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        if let Some(r) = record(&text[start..end], &mut heartbeat) {
            records.push(r);
        }
    }
    Body { text: text.to_owned(), heartbeat, records }
}

fn is_heartbeat_line(line: &str) -> bool {
    line.trim().eq_ignore_ascii_case("Heartbeat")
}

/// Byte offsets of the lines that start with `Code=` (any case, blanks around allowed).
fn record_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::with_capacity(1);
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let lead = line.len() - line.trim_start_matches([' ', '\t', '\r']).len();
        let rest = &line[lead..];
        let is_code = rest.get(..4).is_some_and(|k| k.eq_ignore_ascii_case("code"))
            && rest[4..].trim_start_matches([' ', '\t']).starts_with('=');
        if is_code {
            starts.push(at + lead);
        }
        at += line.len();
    }
    starts
}

/// One record's text: the head items up to `data=`, then the data verbatim.
fn record(text: &str, heartbeat: &mut bool) -> Option<Record> {
    let mut code = None;
    let mut action = None;
    let mut index = None;
    let mut extra = Vec::new();
    let mut data = Data::Absent;
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find([';', '\n']).unwrap_or(rest.len());
        let item = &rest[..end];
        if let Some((k, v)) = item.split_once('=') {
            let key = k.trim();
            if key.eq_ignore_ascii_case("data") {
                let from = item.len() - v.len();
                data = read_data(&rest[from..]);
                break;
            }
            let value = v.trim().to_owned();
            let slot = if key.eq_ignore_ascii_case("code") {
                &mut code
            } else if key.eq_ignore_ascii_case("action") {
                &mut action
            } else if key.eq_ignore_ascii_case("index") {
                &mut index
            } else {
                if !key.is_empty() {
                    extra.push((key.to_owned(), value));
                }
                rest = rest.get(end + 1..).unwrap_or("");
                continue;
            };
            if slot.is_none() {
                *slot = Some(value);
            } else {
                extra.push((key.to_owned(), value));
            }
        } else if is_heartbeat_line(item) {
            *heartbeat = true;
        }
        rest = rest.get(end + 1..).unwrap_or("");
    }
    // A code is an identifier: empty or with control characters, the text is not a record.
    let code = code.filter(|c: &String| !c.is_empty() && !c.chars().any(char::is_control))?;
    Some(Record { code, action, index, extra, data })
}

fn read_data(raw: &str) -> Data {
    let raw = raw.trim();
    if raw.is_empty() || raw.eq_ignore_ascii_case("null") {
        return Data::Null;
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(v) => Data::Json(v),
        Err(e) => Data::Invalid { raw: raw.to_owned(), truncated: e.is_eof() },
    }
}
