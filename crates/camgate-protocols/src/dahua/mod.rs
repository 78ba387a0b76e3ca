//! Dahua CGI event stream (`/cgi-bin/eventManager.cgi?action=attach`) and its OEMs (Amcrest,
//! Lorex, EmpireTech, IMOU, ...): the multipart response body, cut into parts, read and
//! normalised. Protocol facts: `docs/protocols/dahua.md` of the shared folder (section
//! numbers below refer to it).
//!
//! Three pure stages, each usable alone:
//!
//! 1. [`StreamParser`] frames the byte stream into [`Part`]s, incrementally over `&[u8]`
//!    (§3): every firmware variant of §3.2, any split into reads, several parts per read,
//!    delivery as soon as `Content-Length` is complete, bounded memory with resync
//!    ([`Limits`], [`FrameError`]).
//! 2. [`parse_body`] reads a body by the §4 grammar into a [`Body`]: `Heartbeat`, or
//!    [`Record`]s (`Code`, `action`, `index`, other head keys, `data` verbatim: the record
//!    is kept as its text, the JSON checked, not built; truncated or malformed JSON flagged).
//! 3. [`normalise`] turns a record into a [`Normalised`] event (§5): kind from the one code
//!    table ([`CODE_KINDS`]), state, 1-based channel, rule, device time, objects with boxes
//!    scaled from 0..8191, plate, counts, the record itself and an idempotency key; the
//!    `codes` filter ([`CodeFilter`]) and the `VideoMotionInfo` spam filter apply here.
//!    The payload members it needs are read from the checked JSON text; no JSON tree is
//!    built. The record as a JSON value (the `data` of a camgate event) is built on demand:
//!    [`Normalised::data`].
//!
//! [`Decoder`] chains them for a source: bytes in, [`Output`]s out (events, heartbeats,
//! filtered codes, unrecognised bodies, framing errors).
//!
//! ```
//! use camgate_protocols::dahua::{Decoder, Limits, NormaliseOptions, Output};
//!
//! let mut d = Decoder::new(Some("myboundary"), Limits::default(), NormaliseOptions::default());
//! let stream = b"--myboundary\r\nContent-Type: text/plain\r\nContent-Length:9\r\n\r\nHeartbeat\r\n\
//!     --myboundary\r\nContent-Type: text/plain\r\nContent-Length:37\r\n\r\nCode=VideoMotion;action=Start;index=0\r\n\r\n";
//! let mut out = Vec::new();
//! d.push(stream, |o| out.push(o));
//! assert!(matches!(out[0], Output::Heartbeat { .. }));
//! let Output::Event(e) = &out[1] else { panic!("{:?}", out[1]) };
//! assert_eq!((e.code(), e.kind, e.state), ("VideoMotion", camgate_core::Kind::Motion, Some(camgate_core::State::Start)));
//! assert_eq!(e.channel.map(|c| c.get()), Some(1));
//! ```

use std::collections::VecDeque;

mod body;
mod codes;
mod json;
mod normalise;
mod scan;
mod stream;

#[cfg(test)]
mod tests;

pub use body::{Body, Data, Record, parse_body};
pub use codes::{CODE_KINDS, CodeFilter, kind_for_code};
pub use normalise::{COORD_MAX, DataError, MAX_OBJECTS, NormaliseOptions, Normalised, normalise};
pub use stream::{FrameError, Limits, Part, PartEnd, Stats, StreamParser, boundary_from_content_type};

use stream::RawPart;

/// What the stream said, one item at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A `Heartbeat` part: not an event, but proof the stream is alive.
    Heartbeat { offset: u64 },
    /// An event.
    Event(Box<Normalised>),
    /// A record the `codes` list or the `VideoMotionInfo` filter dropped.
    Filtered { code: String, action: Option<String> },
    /// A part body in no known shape (an `Error` text, garbage), or a part the end of the
    /// stream cut short, kept verbatim for a dead-letter entry. `truncated` when the part was
    /// cut short.
    Unrecognised { offset: u64, text: String, truncated: bool },
    /// Bytes that could not be framed; the stream goes on.
    Frame(FrameError),
}

/// [`StreamParser`] + [`parse_body`] + [`normalise`] for one connection.
#[derive(Debug)]
pub struct Decoder {
    parser: StreamParser,
    opts: NormaliseOptions,
    /// Outputs of the part being handed out (a part may hold several records).
    pending: VecDeque<Output>,
}

impl Decoder {
    /// A decoder for one connection; `boundary` as in [`StreamParser::new`].
    pub fn new(boundary: Option<&str>, limits: Limits, opts: NormaliseOptions) -> Self {
        Decoder { parser: StreamParser::new(boundary, limits), opts, pending: VecDeque::new() }
    }

    /// The framing parser (boundary in use, counters, buffered bytes).
    pub fn parser(&self) -> &StreamParser {
        &self.parser
    }

    /// The options records are normalised with.
    pub fn options(&self) -> &NormaliseOptions {
        &self.opts
    }

    /// As [`StreamParser::feed`]: returns the bytes that did not fit.
    #[must_use = "bytes that did not fit must be fed again after taking the outputs"]
    pub fn feed<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        self.parser.feed(bytes)
    }

    /// Feeds all of `bytes`, handing every output that becomes complete to `on_output`.
    pub fn push(&mut self, mut bytes: &[u8], mut on_output: impl FnMut(Output)) {
        loop {
            bytes = self.feed(bytes);
            while let Some(o) = self.next_output() {
                on_output(o);
            }
            if bytes.is_empty() {
                return;
            }
        }
    }

    /// The next output, or `None` when nothing complete is buffered.
    pub fn next_output(&mut self) -> Option<Output> {
        loop {
            if let Some(o) = self.pending.pop_front() {
                return Some(o);
            }
            let item = self.parser.next_raw()?;
            self.decode(item);
        }
    }

    /// The stream ended: what is left, one output per call, then `None` (see
    /// [`StreamParser::finish`]).
    pub fn finish(&mut self) -> Option<Output> {
        loop {
            if let Some(o) = self.pending.pop_front() {
                return Some(o);
            }
            let item = self.parser.finish_raw()?;
            self.decode(item);
        }
    }

    /// The outputs of one framed part. The body is read where the parser holds it and the
    /// records borrow from it ([`body::read_records`]), so a part costs no allocation beyond
    /// what its outputs keep: this is the hot path of a source.
    fn decode(&mut self, item: Result<RawPart, FrameError>) {
        let part = match item {
            Ok(p) => p,
            Err(e) => {
                self.pending.push_back(Output::Frame(e));
                return;
            }
        };
        let body = self.parser.raw_body(&part);
        let truncated = part.is_truncated();
        if truncated && part.end == PartEnd::EndOfStream {
            // The connection was cut inside this part: even its head may be cut
            // (`Code=VideoMo`), so it is not read as an event but kept verbatim (§8: a part
            // lost to an abrupt close is that part only).
            let text = String::from_utf8_lossy(body).into_owned();
            self.pending.push_back(Output::Unrecognised { offset: part.offset, text, truncated });
            return;
        }
        let text = body::body_text(body);
        let (opts, pending) = (&self.opts, &mut self.pending);
        let first = pending.len();
        let mut records = false;
        let heartbeat = body::read_records(&text, |record| {
            records = true;
            let code = record.at.code(record.text);
            if !opts.accepts(code) {
                let (code, action) = (code.to_owned(), record.at.action(record.text).map(str::to_owned));
                pending.push_back(Output::Filtered { code, action });
                return;
            }
            let mut n = normalise::normalise_ref(record, opts);
            // A part cut short explains malformed JSON better than a syntax error.
            if truncated && n.data_error == Some(DataError::Invalid) {
                n.data_error = Some(DataError::Truncated);
            }
            pending.push_back(Output::Event(n));
        });
        if !records {
            pending.push_back(if heartbeat {
                Output::Heartbeat { offset: part.offset }
            } else {
                Output::Unrecognised { offset: part.offset, text: text.into_owned(), truncated }
            });
        } else if heartbeat {
            // The heartbeat comes before the part's records, wherever its line was.
            pending.insert(first, Output::Heartbeat { offset: part.offset });
        }
    }
}
