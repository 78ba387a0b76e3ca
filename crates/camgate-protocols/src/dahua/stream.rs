//! Multipart framing of the event stream (dahua.md §3): an incremental, byte-level state
//! machine that cuts the response body into parts.
//!
//! The parser works line by line on its own buffer, never on a read in isolation (§3.2 V6),
//! and only ever decides something when the bytes it has make the decision final, so every
//! way of splitting the same stream into reads yields the same items (the tests check every
//! split point; the fuzz target checks random chunkings).
//!
//! * Between parts it looks for a boundary line `--<token>` (also `-- <token>`, `----<token>`,
//!   a trailing `--`, CRLF or bare LF). Anything else there is junk: it is skipped line by
//!   line and reported once per run as [`FrameError::Junk`] (a stray `HTTP/1.x 200 OK` block,
//!   V9). An HTTP response head before the first boundary is the response itself and is
//!   skipped silently (it may also tell the boundary, see [`StreamParser::new`]).
//! * Part headers are read one line at a time and end at a blank line **or** at the first line
//!   that is not `Name: value` (V1, V3, V4): `Code=...`, `Heartbeat`, anything else.
//! * A body with a `Content-Length` is delivered as soon as that many bytes are in (latency
//!   rule), unless a boundary line (or a stray HTTP status line) starts inside it: then that
//!   line wins and the part is flagged [`PartEnd::Truncated`] (V5). Without a usable
//!   `Content-Length` the body ends at the next boundary (V8). Trailing CR/LF are stripped
//!   from every body (V2).
//! * Every buffer is bounded by [`Limits`]: an over-long part or header block is reported and
//!   skipped to the next boundary, junk is dropped as it is read.

use std::fmt;
use std::ops::Range;

use super::scan::{find_byte, find_line_start, same};

/// Longest boundary token kept, in bytes (RFC 2046 allows 70).
const MAX_TOKEN: usize = 200;
/// A boundary line is at most this many bytes longer than its token (dashes, spaces, `--`, CR).
const BOUNDARY_SLACK: usize = 16;
/// The smallest `max_header` accepted: room for any boundary line.
const MIN_HEADER: usize = 512;
/// Extra room `max_buffer` keeps beyond one maximal part and header block.
const BUFFER_SLACK: usize = 1024;
/// Bytes of a junk run quoted in [`FrameError::Junk`].
const JUNK_SAMPLE: usize = 64;

/// Limits that keep the parser's memory bounded ("Bounded everything", DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest part body, in bytes. A larger part is reported as
    /// [`FrameError::PartTooLarge`] and skipped up to the next boundary. Default 256 KiB
    /// (dahua.md §3.2: real IVS/ANPR parts are 2.5-4 KB, never near it).
    pub max_part: usize,
    /// Largest part header block, and longest line kept while looking for a boundary.
    /// Default 8 KiB; never less than 512 bytes.
    pub max_header: usize,
    /// Most bytes the parser holds at once; [`StreamParser::feed`] accepts no more. Never less
    /// than `max_part + max_header + 1 KiB`, so one maximal part always fits. Default
    /// 320 KiB (one maximal part plus a 64 KiB read).
    pub max_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_part: 256 << 10, max_header: 8 << 10, max_buffer: 320 << 10 }
    }
}

impl Limits {
    /// The limits actually applied: `max_header` and `max_buffer` raised to their minimums.
    pub fn effective(self) -> Limits {
        let max_header = self.max_header.max(MIN_HEADER);
        let floor = self.max_part.saturating_add(max_header).saturating_add(BUFFER_SLACK);
        Limits { max_part: self.max_part, max_header, max_buffer: self.max_buffer.max(floor) }
    }
}

/// How a part's body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartEnd {
    /// All `Content-Length` bytes arrived (delivered without waiting for the next boundary).
    Length,
    /// No usable `Content-Length`: the body ran to the next boundary line or stray HTTP
    /// status line (V8).
    Boundary,
    /// `Content-Length` was not reached: the next boundary line (or a stray HTTP status line)
    /// came first (V5).
    Truncated,
    /// The stream ended ([`StreamParser::finish`]) before the part was complete.
    EndOfStream,
}

/// One part of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Stream offset (bytes accepted before it) of the part's boundary line.
    pub offset: u64,
    /// The part's `Content-Type`, when it sent one.
    pub content_type: Option<String>,
    /// The part's `Content-Length`, when it sent a readable one.
    pub content_length: Option<usize>,
    /// Whether a blank line separated headers and body (`false`: variant V1).
    pub blank_line: bool,
    pub end: PartEnd,
    /// The body, trailing CR/LF removed.
    pub body: Vec<u8>,
}

impl Part {
    /// Whether the body is shorter than the part said, or was cut by the end of the stream.
    pub fn is_truncated(&self) -> bool {
        match self.end {
            PartEnd::Truncated => true,
            PartEnd::EndOfStream => self.content_length.is_none_or(|n| self.body.len() < n),
            PartEnd::Length | PartEnd::Boundary => false,
        }
    }

    /// Whether the body is the literal `Heartbeat` (dahua.md §1 `heartbeat=`).
    pub fn is_heartbeat(&self) -> bool {
        self.body.trim_ascii().eq_ignore_ascii_case(b"Heartbeat")
    }
}

/// Bytes the parser could not frame. The stream goes on: the parser has already
/// resynchronised on the next boundary. Count these (a protocol warning); do not reconnect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Lines outside any part, skipped up to the next boundary (§3.2 V9).
    #[error(
        "skipped {len} bytes outside any part at stream offset {offset}{}, starting {sample:?}; \
         the parser resynchronised on the next boundary (a firmware quirk, dahua.md §3.2 V9; \
         nothing to do unless it repeats)",
        if *http_status { " (a stray HTTP status line among them)" } else { "" }
    )]
    Junk {
        offset: u64,
        len: u64,
        /// Whether the run holds an `HTTP/1.x` status line.
        http_status: bool,
        /// The run's first line, at most 64 bytes, lossy UTF-8.
        sample: String,
    },
    /// A part body over [`Limits::max_part`], skipped up to the next boundary.
    #[error(
        "part at stream offset {offset} is over the {limit}-byte part limit (declared Content-Length {}); \
         skipped to the next boundary; raise the part limit if the device really sends parts this big",
        declared.map_or_else(|| "none".to_owned(), |n| n.to_string())
    )]
    PartTooLarge { offset: u64, limit: usize, declared: Option<usize> },
    /// A part header block over [`Limits::max_header`], skipped up to the next boundary.
    #[error(
        "part at stream offset {offset} has a header block over the {limit}-byte limit; skipped to the next boundary"
    )]
    HeaderTooLarge { offset: u64, limit: usize },
}

/// Counters since the parser was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes accepted by `feed`.
    pub bytes: u64,
    /// Parts delivered.
    pub parts: u64,
    /// Parts delivered flagged truncated ([`Part::is_truncated`]).
    pub truncated_parts: u64,
    /// Parts with nothing in the body (a boundary right after a boundary or a header block,
    /// a body of blank lines); they are not delivered.
    pub empty_parts: u64,
    /// Junk runs reported, and their bytes.
    pub junk_runs: u64,
    pub junk_bytes: u64,
    /// Stray `HTTP/1.x` status lines after the first boundary (V9).
    pub http_status_lines: u64,
    /// Bytes of the HTTP response head skipped before the first boundary.
    pub preamble_bytes: u64,
    /// Parts and header blocks over the limits, and the bytes dropped with them.
    pub oversized: u64,
    pub dropped_bytes: u64,
}

/// The boundary token of a `Content-Type: multipart/x-mixed-replace; boundary=...` value:
/// quotes and leading dashes removed (`boundary="--myboundary"` gives `myboundary`). `None`
/// when there is no usable `boundary` parameter.
pub fn boundary_from_content_type(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value.strip_prefix('"').map_or(value, |v| v.strip_suffix('"').unwrap_or(v));
        normalise_token(value.as_bytes()).map(|t| String::from_utf8_lossy(&t).into_owned())
    })
}

/// A usable token: leading dashes and surrounding blanks removed, printable ASCII, at most
/// 200 bytes.
fn normalise_token(raw: &[u8]) -> Option<Vec<u8>> {
    let t = raw.trim_ascii();
    let start = t.iter().position(|&b| b != b'-').unwrap_or(t.len());
    let t = t[start..].trim_ascii_start();
    let ok = !t.is_empty() && t.len() <= MAX_TOKEN && t.iter().all(|b| (0x21..=0x7e).contains(b));
    ok.then(|| t.to_vec())
}

/// What the bytes at a line start are, as far as the bytes in hand tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    /// A boundary line; the value is the length of the line including its LF.
    Boundary(usize),
    /// An `HTTP/1.x NNN` status line.
    Http,
    No,
    NeedMore,
}

/// `-{2,}[ \t]*<token>[-\t \r]*\n` at the start of `b`, the token compared without case.
fn boundary_at(b: &[u8], token: &[u8]) -> Tri {
    let max = token.len() + BOUNDARY_SLACK;
    let mut i = 0;
    while i < b.len() && b[i] == b'-' {
        i += 1;
    }
    if i < 2 && i < b.len() {
        return Tri::No;
    }
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    if i > max {
        return Tri::No;
    }
    // The token as configured is the usual spelling: one slice compare instead of a case-blind
    // compare per byte.
    let to_compare = if b.get(i..i + token.len()) == Some(token) {
        i += token.len();
        &[][..]
    } else {
        token
    };
    for &t in to_compare {
        match b.get(i) {
            None => return Tri::NeedMore,
            Some(c) if c.eq_ignore_ascii_case(&t) => i += 1,
            Some(_) => return Tri::No,
        }
    }
    loop {
        if i > max {
            return Tri::No;
        }
        match b.get(i) {
            None => return Tri::NeedMore,
            Some(b'\n') => return Tri::Boundary(i + 1),
            Some(b'-' | b' ' | b'\t' | b'\r') => i += 1,
            Some(_) => return Tri::No,
        }
    }
}

/// `HTTP/1.<d> <d>` at the start of `b`.
fn http_status_at(b: &[u8]) -> Tri {
    const PAT: &[u8] = b"HTTP/1.";
    for (i, &p) in PAT.iter().enumerate() {
        match b.get(i) {
            None => return Tri::NeedMore,
            Some(&c) if c == p => {}
            Some(_) => return Tri::No,
        }
    }
    let rest = &b[PAT.len()..];
    let want: [fn(u8) -> bool; 3] = [|c| c.is_ascii_digit(), |c| c == b' ', |c| c.is_ascii_digit()];
    for (i, ok) in want.iter().enumerate() {
        match rest.get(i) {
            None => return Tri::NeedMore,
            Some(&c) if ok(c) => {}
            Some(_) => return Tri::No,
        }
    }
    Tri::Http
}

/// A line start that ends a body: a boundary line or a stray HTTP status line.
fn terminator_at(b: &[u8], token: &[u8]) -> Tri {
    match b.first() {
        None => Tri::NeedMore,
        Some(b'-') => boundary_at(b, token),
        Some(b'H') => http_status_at(b),
        Some(_) => Tri::No,
    }
}

/// Header-name bytes (`[A-Za-z0-9_-]`), as a table: names are scanned on every header line.
const NAME_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        b += 1;
    }
    t
};

fn is_name_byte(b: u8) -> bool {
    NAME_BYTES[usize::from(b)]
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|&b| matches!(b, b' ' | b'\t' | b'\r'))
}

/// What a line inside a part's header block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineClass {
    /// Not decidable from the bytes in hand.
    Undecided,
    Blank,
    /// The length of the boundary line including its LF.
    Boundary(usize),
    Http,
    /// `Name: value`; the value is the index of the colon.
    Header(usize),
    /// The first line of the body.
    Body,
}

/// Classifies a header-block line. `bytes` starts at the line; with `complete` it ends with
/// the line's LF, otherwise it is all that arrived of the line so far. Monotone: once a
/// prefix is classified `Body`, every extension is too, which keeps the result independent of
/// how the stream was split into reads.
fn classify(bytes: &[u8], complete: bool, token: &[u8]) -> LineClass {
    let line = if complete { &bytes[..bytes.len() - 1] } else { bytes };
    // The usual headers, as every firmware spells them: what the checks below find for them.
    if complete {
        if line.starts_with(b"Content-Length:") {
            return LineClass::Header(14);
        }
        if line.starts_with(b"Content-Type:") {
            return LineClass::Header(12);
        }
    }
    if line.starts_with(b"Heartbeat") {
        return LineClass::Body;
    }
    if is_blank(line) {
        return if complete { LineClass::Blank } else { LineClass::Undecided };
    }
    match boundary_at(bytes, token) {
        Tri::Boundary(n) => return LineClass::Boundary(n),
        Tri::NeedMore => return LineClass::Undecided,
        Tri::No | Tri::Http => {}
    }
    match http_status_at(line) {
        Tri::Http => return LineClass::Http,
        Tri::NeedMore => return if complete { LineClass::Body } else { LineClass::Undecided },
        Tri::No | Tri::Boundary(_) => {}
    }
    let name_end = line.iter().position(|&b| !is_name_byte(b)).unwrap_or(line.len());
    if name_end == 0 {
        return LineClass::Body;
    }
    let mut i = name_end;
    while i < line.len() && (line[i] == b' ' || line[i] == b'\t') {
        i += 1;
    }
    match line.get(i) {
        Some(b':') if complete => LineClass::Header(i),
        Some(b':') => LineClass::Undecided,
        Some(_) => LineClass::Body,
        None if complete => LineClass::Body,
        None => LineClass::Undecided,
    }
}

/// A run of junk lines being skipped.
#[derive(Debug, Clone)]
struct JunkRun {
    offset: u64,
    len: u64,
    http_status: bool,
    sample: String,
    /// Before the first boundary and opened by an HTTP status line: the response head.
    preamble: bool,
}

/// The part being read.
#[derive(Debug, Clone)]
struct Head {
    offset: u64,
    /// Whether the part sent a `Content-Type`; its value is in [`StreamParser::content_type`]
    /// (a buffer reused from part to part, so that framing allocates nothing per part).
    content_type: bool,
    content_length: Option<usize>,
    header_bytes: usize,
}

impl Head {
    fn new(offset: u64) -> Self {
        Head { offset, content_type: false, content_length: None, header_bytes: 0 }
    }
}

/// A part as framed, its body still in the parser's buffer: what [`StreamParser::next_raw`]
/// returns. [`StreamParser::next_part`] copies it out into a [`Part`]; the decoder reads the
/// body in place ([`StreamParser::raw_body`]), so framing allocates nothing per part.
#[derive(Debug, Clone)]
pub(super) struct RawPart {
    pub(super) offset: u64,
    /// Whether a `Content-Type` was sent (its value: [`StreamParser::content_type`]).
    content_type: bool,
    pub(super) content_length: Option<usize>,
    pub(super) blank_line: bool,
    pub(super) end: PartEnd,
    /// The body (trailing CR/LF removed) in `StreamParser::buf`; valid until the next
    /// [`StreamParser::feed`].
    body: Range<usize>,
}

impl RawPart {
    /// As [`Part::is_truncated`].
    pub(super) fn is_truncated(&self) -> bool {
        match self.end {
            PartEnd::Truncated => true,
            PartEnd::EndOfStream => self.content_length.is_none_or(|n| self.body.len() < n),
            PartEnd::Length | PartEnd::Boundary => false,
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    /// Looking for a boundary line; other lines are junk.
    Seek,
    /// Dropping the rest of an over-limit part up to the next boundary (not reported again).
    Drop,
    Headers(Head),
    Body {
        head: Head,
        blank_line: bool,
        /// A line start (relative to `pos`) still to check for a terminator.
        cand: Option<usize>,
        /// Where the search for the next line start resumes (relative to `pos`).
        scan: usize,
    },
}

/// Outcome of one state-machine step.
enum Step {
    Emit(Result<RawPart, FrameError>),
    Continue,
    NeedMore,
}

/// The incremental part parser. Feed it bytes as they arrive, take parts as soon as they are
/// complete; it never does I/O and never panics.
///
/// ```
/// use camgate_protocols::dahua::{Limits, PartEnd, StreamParser};
///
/// let mut p = StreamParser::new(Some("myboundary"), Limits::default());
/// let rest = p.feed(b"--myboundary\r\nContent-Type: text/plain\r\nContent-Length:9\r\n\r\nHeart");
/// assert!(rest.is_empty());
/// assert!(p.next_part().is_none());
/// let _ = p.feed(b"beat\r\n");
/// let part = p.next_part().unwrap().unwrap();
/// assert_eq!((part.body.as_slice(), part.end), (&b"Heartbeat"[..], PartEnd::Length));
/// ```
pub struct StreamParser {
    token: Option<Vec<u8>>,
    limits: Limits,
    buf: Vec<u8>,
    /// Consumed bytes at the front of `buf`.
    pos: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    state: State,
    /// The `Content-Type` of the part being read, when [`Head::content_type`] says it sent one.
    content_type: String,
    /// Inside an over-long line that is being dropped up to its LF.
    skip_line: bool,
    junk: Option<JunkRun>,
    seen_boundary: bool,
    stats: Stats,
}

impl fmt::Debug for StreamParser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamParser")
            .field("boundary", &self.boundary())
            .field("limits", &self.limits)
            .field("buffered", &self.buffered())
            .field("offset", &self.offset())
            .field("state", &self.state)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl StreamParser {
    /// A parser for one connection. `boundary` is the token from the response's
    /// `Content-Type` (see [`boundary_from_content_type`]; quotes and leading dashes are
    /// removed here too). With `None` (or an unusable value) the parser learns it from a
    /// response head in the stream (`Content-Type: ...; boundary=...`), else from the first
    /// line that looks like `--token`.
    pub fn new(boundary: Option<&str>, limits: Limits) -> Self {
        let token = boundary.and_then(|b| {
            let b = b.trim();
            let b = b.strip_prefix('"').map_or(b, |v| v.strip_suffix('"').unwrap_or(v));
            normalise_token(b.as_bytes())
        });
        StreamParser {
            token,
            limits: limits.effective(),
            buf: Vec::new(),
            pos: 0,
            base: 0,
            state: State::Seek,
            content_type: String::new(),
            skip_line: false,
            junk: None,
            seen_boundary: false,
            stats: Stats::default(),
        }
    }

    /// The boundary token in use (configured or learned).
    pub fn boundary(&self) -> Option<&str> {
        self.token.as_deref().and_then(|t| std::str::from_utf8(t).ok())
    }

    /// The limits in force ([`Limits::effective`]).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Counters since the parser was created.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Bytes held and not yet consumed (never more than `max_buffer`).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Stream offset of the first byte not yet consumed.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Appends bytes to the buffer, as many as fit under `max_buffer`, and returns the ones
    /// that did not fit: take the parts out with [`next_part`](Self::next_part), then feed the
    /// rest again. With reads of at most 64 KiB and parts taken out after each read,
    /// everything always fits. [`push`](Self::push) does the loop.
    #[must_use = "bytes that did not fit must be fed again after taking the parts out"]
    pub fn feed<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        let room = self.limits.max_buffer - self.buf.len();
        let (take, rest) = bytes.split_at(bytes.len().min(room));
        self.buf.extend_from_slice(take);
        self.stats.bytes += take.len() as u64;
        rest
    }

    /// Feeds all of `bytes`, handing every item that becomes complete to `on_item`.
    pub fn push(&mut self, mut bytes: &[u8], mut on_item: impl FnMut(Result<Part, FrameError>)) {
        loop {
            bytes = self.feed(bytes);
            while let Some(item) = self.next_part() {
                on_item(item);
            }
            if bytes.is_empty() {
                return;
            }
        }
    }

    /// The next complete part, or an error for bytes that could not be framed; `None` when
    /// the buffer holds nothing complete (feed more).
    pub fn next_part(&mut self) -> Option<Result<Part, FrameError>> {
        let item = self.next_raw()?;
        Some(item.map(|raw| self.to_part(&raw)))
    }

    /// As [`next_part`](Self::next_part), with the body left in the buffer (see [`RawPart`]).
    pub(super) fn next_raw(&mut self) -> Option<Result<RawPart, FrameError>> {
        loop {
            match self.step() {
                Step::Emit(item) => return Some(item),
                Step::Continue => {}
                Step::NeedMore => return None,
            }
        }
    }

    /// The body of a part just returned by [`next_raw`](Self::next_raw) or
    /// [`finish_raw`](Self::finish_raw).
    pub(super) fn raw_body(&self, raw: &RawPart) -> &[u8] {
        &self.buf[raw.body.clone()]
    }

    /// The [`Part`] of a part just returned by `next_raw` or `finish_raw`.
    fn to_part(&self, raw: &RawPart) -> Part {
        Part {
            offset: raw.offset,
            content_type: raw.content_type.then(|| self.content_type.clone()),
            content_length: raw.content_length,
            blank_line: raw.blank_line,
            end: raw.end,
            body: self.raw_body(raw).to_vec(),
        }
    }

    /// The stream ended: returns what is left, one item per call (complete parts first, then
    /// an incomplete part flagged [`PartEnd::EndOfStream`] or a pending junk report), then
    /// `None`. Afterwards the parser is empty and may be reused for a new connection: the
    /// boundary and the counters are kept, offsets go on counting, and a response head before
    /// the next first boundary is skipped silently again.
    pub fn finish(&mut self) -> Option<Result<Part, FrameError>> {
        let item = self.finish_raw()?;
        Some(item.map(|raw| self.to_part(&raw)))
    }

    /// As [`finish`](Self::finish), with the body left in the buffer (see [`RawPart`]).
    pub(super) fn finish_raw(&mut self) -> Option<Result<RawPart, FrameError>> {
        if let Some(item) = self.next_raw() {
            return Some(item);
        }
        let avail = self.buf.len() - self.pos;
        let state = std::mem::replace(&mut self.state, State::Seek);
        let item = match state {
            State::Body { head, blank_line, .. } => {
                let (end, len) = match head.content_length {
                    Some(n) if n <= avail => (PartEnd::Length, n),
                    _ => (PartEnd::EndOfStream, avail.min(self.limits.max_part)),
                };
                let body = self.pos..self.pos + len;
                self.make_part(head, blank_line, end, body).map(Ok)
            }
            State::Seek => {
                if self.skip_line {
                    self.add_junk(avail);
                } else if !is_blank(&self.buf[self.pos..]) {
                    let line = self.buf[self.pos..].to_vec();
                    self.junk_line(&line, avail);
                }
                // A response head and nothing else (a 200 that sent no part) is no junk.
                self.take_junk(true).map(Err)
            }
            State::Headers(_) | State::Drop => None,
        };
        // Everything is consumed; the bytes stay in the buffer until the next `feed` (as
        // consumed bytes always do), so that the body of the part returned stays readable.
        self.pos = self.buf.len();
        self.skip_line = false;
        self.junk = None;
        self.seen_boundary = false;
        item
    }

    fn step(&mut self) -> Step {
        match self.state {
            State::Seek => self.step_seek(),
            State::Drop => self.step_drop(),
            State::Headers(_) => self.step_headers(),
            State::Body { .. } => self.step_body(),
        }
    }

    /// Drops the rest of an over-long line; `true` when its LF was reached.
    fn skip_rest_of_line(&mut self, junk: bool) -> bool {
        let avail = &self.buf[self.pos..];
        let (n, done) = match find_byte(avail, b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        self.pos += n;
        if junk {
            self.add_junk(n);
        } else {
            self.stats.dropped_bytes += n as u64;
        }
        if done {
            self.skip_line = false;
        }
        done
    }

    fn step_seek(&mut self) -> Step {
        if self.skip_line {
            if !self.skip_rest_of_line(true) {
                return Step::NeedMore;
            }
            return self.junk_line_done();
        }
        if self.junk.is_none() && !line_by_line() {
            // The empty lines after a body (each shorter than a line kept), dropped as the
            // line-by-line steps below would drop them.
            let avail = &self.buf[self.pos..];
            let window = &avail[..avail.len().min(self.limits.max_header)];
            let run = window.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(window.len());
            if let Some(lf) = window[..run].iter().rposition(|&b| b == b'\n') {
                self.pos += lf + 1;
            }
            if self.usual_head() {
                return Step::Continue;
            }
        }
        let max_line = self.limits.max_header;
        let avail = &self.buf[self.pos..];
        let window = &avail[..avail.len().min(max_line + 1)];
        let Some(i) = find_byte(window, b'\n') else {
            if avail.len() <= max_line {
                return Step::NeedMore;
            }
            // Longer than any line worth keeping: junk, dropped as it arrives.
            let prefix = window.to_vec();
            let n = avail.len();
            self.junk_line(&prefix, n);
            self.pos += n;
            self.skip_line = true;
            return Step::Continue;
        };
        let line = &avail[..i];
        let offset = self.offset();
        if self.token.is_none() {
            let learned = line.trim_ascii_end().strip_prefix(b"--").map(|l| {
                let end = l.iter().rposition(|&b| b != b'-').map_or(0, |i| i + 1);
                &l[..end]
            });
            if let Some(t) = learned.and_then(normalise_token) {
                self.token = Some(t);
            }
        }
        if let Some(token) = &self.token
            && let Tri::Boundary(n) = boundary_at(&avail[..=i], token)
        {
            self.pos += n;
            self.seen_boundary = true;
            self.state = State::Headers(Head::new(offset));
            return match self.take_junk(true) {
                Some(e) => Step::Emit(Err(e)),
                None => Step::Continue,
            };
        }
        if is_blank(line) {
            if self.junk.is_some() {
                self.add_junk(i + 1);
            }
            self.pos += i + 1;
            return Step::Continue;
        }
        if self.token.is_none()
            && let Some(v) = header_value(line, b"content-type")
            && let Some(t) = boundary_from_content_type(&String::from_utf8_lossy(v))
        {
            self.token = Some(t.into_bytes());
        }
        let line = line.to_vec();
        self.junk_line(&line, i + 1);
        self.pos += i + 1;
        self.junk_line_done()
    }

    /// The head of a part as nearly every device sends it, read at once: `--<token>` (as
    /// configured) and CRLF or LF, header lines that start `Content-Length:` or
    /// `Content-Type:`, each complete, then an empty line (CRLF or LF), or no empty line and
    /// a body that starts `Code=` or `Heartbeat` (V1). Leaves the parser where the
    /// line-by-line steps (`step_seek`, `step_headers`) would: at the body, in
    /// [`State::Body`]. `false`, nothing changed, for anything else, which those steps read.
    fn usual_head(&mut self) -> bool {
        let Some(token) = &self.token else { return false };
        if self.junk.is_some() {
            return false;
        }
        let avail = &self.buf[self.pos..];
        let Some(rest) = avail.strip_prefix(b"--") else { return false };
        let Some((t, rest)) = rest.split_at_checked(token.len()) else { return false };
        if !same(t, token) {
            return false;
        }
        let rest = rest.strip_prefix(b"\r").unwrap_or(rest);
        let Some(rest) = rest.strip_prefix(b"\n") else { return false };
        let mut at = avail.len() - rest.len();
        let mut head = Head::new(self.offset());
        let mut content_type = None;
        let blank_line = loop {
            let budget = self.limits.max_header.saturating_sub(head.header_bytes);
            // The first line of a body that follows the headers at once (`classify` finds
            // these prefixes enough, with or without the rest of the line, when the budget
            // leaves room for them).
            let rest = &avail[at..];
            if (rest.starts_with(b"Code=") || rest.starts_with(b"Heartbeat")) && budget >= 9 {
                break false;
            }
            // A line (without its LF) is read when its LF is within the header budget.
            let window = &rest[..rest.len().min(budget + 1)];
            let Some(lf) = find_byte(window, b'\n') else { return false };
            let line = &window[..lf];
            if line.is_empty() || line == b"\r" {
                at += lf + 1;
                break true;
            }
            let colon = if line.starts_with(b"Content-Length:") {
                14
            } else if line.starts_with(b"Content-Type:") {
                12
            } else {
                return false;
            };
            let after = &line[colon + 1..];
            let value = after.trim_ascii();
            if colon == 14 {
                head.content_length = parse_length(value);
            } else {
                head.content_type = true;
                let start = at + colon + 1 + (after.len() - after.trim_ascii_start().len());
                content_type = Some(start..start + value.len().min(MAX_TOKEN));
            }
            head.header_bytes += lf + 1;
            at += lf + 1;
        };
        if let Some(v) = content_type {
            let v = &self.buf[self.pos + v.start..self.pos + v.end];
            if !same(self.content_type.as_bytes(), v) {
                self.content_type.clear();
                match std::str::from_utf8(v) {
                    Ok(v) => self.content_type.push_str(v),
                    Err(_) => self.content_type.push_str(&String::from_utf8_lossy(v)),
                }
            }
        }
        self.pos += at;
        self.seen_boundary = true;
        self.state = State::Body { head, blank_line, cand: Some(0), scan: 0 };
        true
    }

    /// After a complete junk line: reports a run that reached the part limit, so a stream of
    /// nothing but junk is still reported.
    fn junk_line_done(&mut self) -> Step {
        let full = self.junk.as_ref().is_some_and(|j| j.len >= self.limits.max_part as u64);
        match full.then(|| self.take_junk(false)).flatten() {
            Some(e) => Step::Emit(Err(e)),
            None => Step::Continue,
        }
    }

    /// Starts or extends the junk run with a line (or the kept prefix of an over-long line)
    /// of `n` bytes in the stream.
    fn junk_line(&mut self, line: &[u8], n: usize) {
        let http = http_status_at(line) == Tri::Http;
        if http && self.seen_boundary {
            self.stats.http_status_lines += 1;
        }
        match &mut self.junk {
            Some(run) => {
                run.http_status |= http;
                run.len += n as u64;
            }
            None => {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let sample = &line[..line.len().min(JUNK_SAMPLE)];
                self.junk = Some(JunkRun {
                    offset: self.offset(),
                    len: n as u64,
                    http_status: http,
                    sample: String::from_utf8_lossy(sample).into_owned(),
                    preamble: http && !self.seen_boundary,
                });
            }
        }
    }

    fn add_junk(&mut self, n: usize) {
        if let Some(run) = &mut self.junk {
            run.len += n as u64;
        }
    }

    /// Ends the junk run: the error to report, or `None` for no run or, with
    /// `preamble_is_silent`, a response head before the first boundary.
    fn take_junk(&mut self, preamble_is_silent: bool) -> Option<FrameError> {
        let run = self.junk.take()?;
        if run.preamble && preamble_is_silent {
            self.stats.preamble_bytes += run.len;
            return None;
        }
        self.stats.junk_runs += 1;
        self.stats.junk_bytes += run.len;
        Some(FrameError::Junk { offset: run.offset, len: run.len, http_status: run.http_status, sample: run.sample })
    }

    fn step_drop(&mut self) -> Step {
        if self.skip_line && !self.skip_rest_of_line(false) {
            return Step::NeedMore;
        }
        let Some(token) = &self.token else {
            self.state = State::Seek;
            return Step::Continue;
        };
        let avail = &self.buf[self.pos..];
        match terminator_at(avail, token) {
            Tri::Boundary(n) => {
                let offset = self.offset();
                self.pos += n;
                self.state = State::Headers(Head::new(offset));
                Step::Continue
            }
            Tri::Http => {
                self.state = State::Seek;
                Step::Continue
            }
            Tri::NeedMore => Step::NeedMore,
            Tri::No => {
                self.skip_line = true;
                Step::Continue
            }
        }
    }

    fn step_headers(&mut self) -> Step {
        let State::Headers(head) = &mut self.state else { return Step::NeedMore };
        let Some(token) = &self.token else { return Step::NeedMore };
        let budget = self.limits.max_header.saturating_sub(head.header_bytes);
        let avail = &self.buf[self.pos..];
        let window = &avail[..avail.len().min(budget + 1)];
        let (class, len) = match find_byte(window, b'\n') {
            Some(i) => (classify(&window[..=i], true, token), i + 1),
            None if avail.len() > budget => match classify(&window[..budget], false, token) {
                LineClass::Body => (LineClass::Body, 0),
                _ => {
                    let e = FrameError::HeaderTooLarge { offset: head.offset, limit: self.limits.max_header };
                    self.stats.oversized += 1;
                    self.state = State::Drop;
                    return Step::Emit(Err(e));
                }
            },
            None => (classify(window, false, token), 0),
        };
        match class {
            LineClass::Undecided => Step::NeedMore,
            LineClass::Blank => {
                self.pos += len;
                self.start_body(true);
                Step::Continue
            }
            LineClass::Boundary(n) => {
                // A boundary where headers were expected: an empty part (doubled boundary).
                head.offset = self.base + self.pos as u64;
                head.content_type = false;
                head.content_length = None;
                head.header_bytes = 0;
                self.pos += n;
                self.stats.empty_parts += 1;
                Step::Continue
            }
            LineClass::Http => {
                self.state = State::Seek;
                Step::Continue
            }
            LineClass::Header(colon) => {
                let line = &window[..len - 1];
                let name = line[..colon].trim_ascii();
                let value = line[colon + 1..].trim_ascii();
                // Exact spellings first: cheaper than the case-blind compare they imply.
                if name == b"Content-Length" || name.eq_ignore_ascii_case(b"content-length") {
                    head.content_length = parse_length(value);
                } else if name == b"Content-Type" || name.eq_ignore_ascii_case(b"content-type") {
                    let v = &value[..value.len().min(MAX_TOKEN)];
                    head.content_type = true;
                    // Usually what the part before sent: then already in place.
                    if !same(self.content_type.as_bytes(), v) {
                        self.content_type.clear();
                        match std::str::from_utf8(v) {
                            Ok(v) => self.content_type.push_str(v),
                            Err(_) => self.content_type.push_str(&String::from_utf8_lossy(v)),
                        }
                    }
                }
                head.header_bytes += len;
                self.pos += len;
                Step::Continue
            }
            LineClass::Body => {
                self.start_body(false);
                Step::Continue
            }
        }
    }

    fn start_body(&mut self, blank_line: bool) {
        let State::Headers(head) = std::mem::replace(&mut self.state, State::Seek) else { return };
        self.state = State::Body { head, blank_line, cand: Some(0), scan: 0 };
    }

    fn step_body(&mut self) -> Step {
        let Some(token) = &self.token else { return Step::NeedMore };
        let State::Body { head, cand, scan, .. } = &mut self.state else { return Step::NeedMore };
        let max_part = self.limits.max_part;
        let limit = match head.content_length {
            Some(n) if n <= max_part => n,
            _ => max_part + 1,
        };
        let avail = &self.buf[self.pos..];
        let lim = avail.len().min(limit);
        // Terminators are looked for at line starts before `limit`: a boundary inside the
        // declared length wins (V5); without a length the next one ends the body (V8). Only a
        // line that starts with `-` or `H` can be one (see `terminator_at`): those are found
        // in one pass ([`find_line_start`]) from where the last search ended, and a line
        // start at `lim`, whose first byte is still to come, is kept for the next call.
        let found = loop {
            if let Some(p) = *cand {
                if p >= lim {
                    break None;
                }
                match terminator_at(&avail[p..], token) {
                    Tri::Boundary(_) | Tri::Http => break Some(p),
                    Tri::NeedMore => return Step::NeedMore,
                    Tri::No => {
                        *cand = None;
                        *scan = p;
                    }
                }
            }
            match find_line_start(avail, *scan, lim, b'-', b'H') {
                Some(p) => {
                    *cand = Some(p);
                    *scan = p;
                }
                None => {
                    *scan = lim;
                    break None;
                }
            }
        };
        let (end, len) = match (found, head.content_length) {
            (Some(p), Some(_)) => (PartEnd::Truncated, p),
            (Some(p), None) => (PartEnd::Boundary, p),
            (None, _) if avail.len() < limit => return Step::NeedMore,
            (None, Some(n)) if n <= max_part => (PartEnd::Length, n),
            (None, declared) => {
                let e = FrameError::PartTooLarge { offset: head.offset, limit: max_part, declared };
                self.stats.oversized += 1;
                self.state = State::Drop;
                return Step::Emit(Err(e));
            }
        };
        let body = self.pos..self.pos + len;
        self.pos += len;
        let State::Body { head, blank_line, .. } = std::mem::replace(&mut self.state, State::Seek) else {
            return Step::NeedMore;
        };
        match self.make_part(head, blank_line, end, body) {
            Some(part) => Step::Emit(Ok(part)),
            None => Step::Continue,
        }
    }

    /// The part with its body's trailing CR/LF removed, counted; `None` (counted as an empty
    /// part) when nothing is left of the body.
    fn make_part(&mut self, head: Head, blank_line: bool, end: PartEnd, mut body: Range<usize>) -> Option<RawPart> {
        while body.end > body.start && matches!(self.buf[body.end - 1], b'\r' | b'\n') {
            body.end -= 1;
        }
        if body.is_empty() {
            self.stats.empty_parts += 1;
            return None;
        }
        let part = RawPart {
            offset: head.offset,
            content_type: head.content_type,
            content_length: head.content_length,
            blank_line,
            end,
            body,
        };
        self.stats.parts += 1;
        if part.is_truncated() {
            self.stats.truncated_parts += 1;
        }
        Some(part)
    }
}

#[cfg(test)]
thread_local! {
    /// Tests: read every line between parts and in heads one by one (no
    /// [`StreamParser::usual_head`]).
    pub(super) static LINE_BY_LINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the quick paths between parts are off (tests compare with and without them).
fn line_by_line() -> bool {
    #[cfg(test)]
    return LINE_BY_LINE.get();
    #[cfg(not(test))]
    false
}

/// `Content-Length` digits; an overflowing number reads as `usize::MAX` (over any limit).
fn parse_length(v: &[u8]) -> Option<usize> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().try_fold(0usize, |n, &d| n.checked_mul(10)?.checked_add(usize::from(d - b'0'))).unwrap_or(usize::MAX))
}

/// The value of a `name: value` line when its name is `name` (lower case, compared without
/// case).
fn header_value<'l>(line: &'l [u8], name: &[u8]) -> Option<&'l [u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    line[..colon].trim_ascii().eq_ignore_ascii_case(name).then(|| line[colon + 1..].trim_ascii())
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn boundary_lines() {
        let t = b"myboundary";
        assert_eq!(boundary_at(b"--myboundary\r\n", t), Tri::Boundary(14));
        assert_eq!(boundary_at(b"--myboundary\nx", t), Tri::Boundary(13));
        assert_eq!(boundary_at(b"-- myboundary\n", t), Tri::Boundary(14));
        assert_eq!(boundary_at(b"----myboundary--\r\n", t), Tri::Boundary(18));
        assert_eq!(boundary_at(b"--MyBoundary\n", t), Tri::Boundary(13));
        assert_eq!(boundary_at(b"--mybo", t), Tri::NeedMore);
        assert_eq!(boundary_at(b"-", t), Tri::NeedMore);
        assert_eq!(boundary_at(b"--myboundary", t), Tri::NeedMore);
        assert_eq!(boundary_at(b"--myboundaryx\n", t), Tri::No);
        assert_eq!(boundary_at(b"-x", t), Tri::No);
        assert_eq!(boundary_at(b"--other\n", t), Tri::No);
        let long = [b"--myboundary".as_slice(), &[b' '; 40], b"\n"].concat();
        assert_eq!(boundary_at(&long, t), Tri::No);
    }

    #[test]
    fn http_status_lines() {
        assert_eq!(http_status_at(b"HTTP/1.1 200 OK"), Tri::Http);
        assert_eq!(http_status_at(b"HTTP/1.0 2"), Tri::Http);
        assert_eq!(http_status_at(b"HTTP/1."), Tri::NeedMore);
        assert_eq!(http_status_at(b"HTTP/2 200"), Tri::No);
        assert_eq!(http_status_at(b"Heartbeat"), Tri::No);
    }

    #[test]
    fn header_lines_classify() {
        let t = b"myboundary";
        assert_eq!(classify(b"Content-Length:9\n", true, t), LineClass::Header(14));
        assert_eq!(classify(b"Content-Length :9\n", true, t), LineClass::Header(15));
        assert_eq!(classify(b"Content-Length", false, t), LineClass::Undecided);
        assert_eq!(classify(b"Code=Vid", false, t), LineClass::Body);
        assert_eq!(classify(b"Heartbeat", false, t), LineClass::Body);
        assert_eq!(classify(b"Heartbeat\n", true, t), LineClass::Body);
        assert_eq!(classify(b"\r", false, t), LineClass::Undecided);
        assert_eq!(classify(b"\r\n", true, t), LineClass::Blank);
        assert_eq!(classify(b"--myboundary\r\n", true, t), LineClass::Boundary(14));
        assert_eq!(classify(b"--my", false, t), LineClass::Undecided);
        assert_eq!(classify(b"HTTP/1.1 200 OK\r\n", true, t), LineClass::Http);
        assert_eq!(classify(b"HTTP", false, t), LineClass::Undecided);
        assert_eq!(classify(b"{", false, t), LineClass::Body);
        assert_eq!(classify(b"Error\n", true, t), LineClass::Body);
    }

    #[test]
    fn content_type_boundaries() {
        let b = |s: &str| boundary_from_content_type(s);
        assert_eq!(b("multipart/x-mixed-replace; boundary=myboundary").as_deref(), Some("myboundary"));
        assert_eq!(b("multipart/x-mixed-replace;boundary=\"myboundary\"").as_deref(), Some("myboundary"));
        assert_eq!(b("multipart/x-mixed-replace; boundary=--myboundary").as_deref(), Some("myboundary"));
        assert_eq!(b("multipart/x-mixed-replace; charset=x; Boundary=\"--abc\" ").as_deref(), Some("abc"));
        assert_eq!(b("multipart/x-mixed-replace"), None);
        assert_eq!(b("multipart/x-mixed-replace; boundary=\"\""), None);
        assert_eq!(b("multipart/x-mixed-replace; boundary=--"), None);
        assert_eq!(b("text/plain; boundary=a b"), None);
    }

    #[test]
    fn lengths() {
        assert_eq!(parse_length(b"135"), Some(135));
        assert_eq!(parse_length(b"99999999999999999999999"), Some(usize::MAX));
        assert_eq!(parse_length(b"1a"), None);
        assert_eq!(parse_length(b""), None);
    }

    #[test]
    fn limits_have_floors() {
        let l = Limits { max_part: 10, max_header: 1, max_buffer: 1 }.effective();
        assert_eq!(l.max_header, MIN_HEADER);
        assert_eq!(l.max_buffer, 10 + MIN_HEADER + BUFFER_SLACK);
        let d = Limits::default().effective();
        assert_eq!(d, Limits::default());
    }
}
