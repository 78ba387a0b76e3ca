//! Response head, part framing (§2, §3 and the §3.2 variants) and event bodies (§4, §5).

use std::fmt::Write as _;

use super::{BOUNDARY, EventCode, SENT_MS_FIELD};

/// How one stream frames its parts (dahua.md §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Framing {
    /// §3.1: CRLF, `Content-Length:N` (no space), blank line, body, CRLF CRLF; heartbeats
    /// followed by one CRLF.
    Canonical,
    /// As canonical with bare LF everywhere in the body of the response (the head stays CRLF).
    BareLf,
    /// V1: no blank line between the part headers and the body (`Content-Length: N`).
    NoBlankLine,
    /// V3: heartbeats with `Content-Length:9` and no blank line, events canonical.
    HeartbeatNoBlankLine,
    /// V2: `Content-Length` counts the CRLF after the body.
    LengthIncludesCrlf,
    /// V8: no `Content-Length` at all.
    NoContentLength,
    /// V9: a stray `HTTP/1.1 200 OK` header block before every third part.
    StrayHttpHead,
    /// V10 + V1: `HTTP/1.0 200 OK` status line, no blank line after part headers (the NVR
    /// of sample `05`).
    Http10,
    /// `boundary="myboundary"` quoted in the `Content-Type` header.
    QuotedBoundary,
}

impl Framing {
    /// Every variant.
    pub const ALL: [Framing; 9] = [
        Framing::Canonical,
        Framing::BareLf,
        Framing::NoBlankLine,
        Framing::HeartbeatNoBlankLine,
        Framing::LengthIncludesCrlf,
        Framing::NoContentLength,
        Framing::StrayHttpHead,
        Framing::Http10,
        Framing::QuotedBoundary,
    ];

    /// The `200` response head.
    pub fn head(self) -> String {
        let version = if self == Framing::Http10 { "1.0" } else { "1.1" };
        let boundary = if self == Framing::QuotedBoundary { format!("\"{BOUNDARY}\"") } else { BOUNDARY.to_string() };
        format!(
            "HTTP/{version} 200 OK\r\nCache-Control: no-cache\r\nPragma: no-cache\r\nExpires: Thu, 01 Dec 2099 16:00:00 GMT\r\n\
             Connection: close\r\nContent-Type: multipart/x-mixed-replace; boundary={boundary}\r\n\r\n"
        )
    }

    /// Append one part carrying `body` (`heartbeat`: the `Heartbeat` part). `part_no` counts
    /// the parts of the stream (for [`Framing::StrayHttpHead`]).
    pub(crate) fn part(self, out: &mut Vec<u8>, body: &str, heartbeat: bool, part_no: u64) {
        let nl = if self == Framing::BareLf { "\n" } else { "\r\n" };
        let mut s = String::with_capacity(body.len() + 96);
        if self == Framing::StrayHttpHead && part_no % 3 == 2 {
            s.push_str("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
        }
        let _ = write!(s, "--{BOUNDARY}{nl}Content-Type: text/plain{nl}");
        let (len, blank) = match self {
            Framing::NoBlankLine | Framing::Http10 => (Some(format!("Content-Length: {}", body.len())), false),
            Framing::HeartbeatNoBlankLine if heartbeat => (Some(format!("Content-Length:{}", body.len())), false),
            Framing::LengthIncludesCrlf => (Some(format!("Content-Length: {}", body.len() + 2)), false),
            Framing::NoContentLength => (None, true),
            _ => (Some(format!("Content-Length:{}", body.len())), true),
        };
        if let Some(l) = len {
            s.push_str(&l);
            s.push_str(nl);
        }
        if blank {
            s.push_str(nl);
        }
        s.push_str(body);
        s.push_str(nl);
        if !heartbeat {
            s.push_str(nl);
        }
        out.extend_from_slice(s.as_bytes());
    }
}

/// The body of one event (§4), `UTC` = `utc` in the data; with `sent_ms` the data starts
/// with the simulator-only [`SENT_MS_FIELD`].
pub(crate) fn event_body(
    code: EventCode,
    action: &str,
    index: u32,
    utc: i64,
    seq: u64,
    sent_ms: Option<i64>,
) -> String {
    let start = action == "Start";
    let mut data = match code {
        EventCode::VideoMotion => format!(
            "{{\n   \"Id\" : [ {index} ],\n   \"RegionName\" : [ \"Region1\" ],\n   \"SmartMotionEnable\" : true,\n   \"UTC\" : {utc}\n}}\n"
        ),
        EventCode::SmartMotionHuman => {
            let x = (seq * 97 % 4000) as u32;
            format!(
                "{{\n   \"RegionName\" : [ \"Entry\" ],\n   \"WindowId\" : [ 0 ],\n   \"object\" : [\n      {{\n         \"HumamID\" : {seq},\n         \"Rect\" : [ {x}, 1000, {}, 5000 ]\n      }}\n   ],\n   \"Object\" : {{\n      \"ObjectType\" : \"Human\",\n      \"ObjectID\" : {seq},\n      \"BoundingBox\" : [ {x}, 1000, {}, 5000 ]\n   }},\n   \"UTC\" : {utc}\n}}\n",
                x + 1200,
                x + 1200
            )
        }
        EventCode::CrossLineDetection => format!(
            "{{\n   \"Class\" : \"Normal\",\n   \"Name\" : \"Gate; Drive\",\n   \"RuleID\" : 1,\n   \"EventID\" : {seq},\n   \"DetectLine\" : [ [ 0, 4096 ], [ 8191, 4096 ] ],\n   \"Direction\" : \"LeftToRight\",\n   \"Object\" : {{\n      \"ObjectType\" : \"Human\",\n      \"ObjectID\" : {seq},\n      \"BoundingBox\" : [ 2000, 2000, 3000, 6000 ],\n      \"Center\" : [ 2500, 4000 ],\n      \"Confidence\" : 87,\n      \"Action\" : \"{}\"\n   }},\n   \"UTC\" : {utc},\n   \"UTCMS\" : 250\n}}\n",
            if start { "Appear" } else { "Leave" }
        ),
        EventCode::AlarmLocal => format!("{{\n   \"UTC\" : {utc}\n}}\n"),
        EventCode::Doorbell => {
            format!(
                "{{\n   \"Action\" : \"Invite\",\n   \"CallID\" : \"{seq}\",\n   \"CallSrcMask\" : 4,\n   \"UTC\" : {utc}\n}}\n"
            )
        }
        EventCode::NumberStat => format!(
            "{{\n   \"Name\" : \"Door\",\n   \"Number\" : {},\n   \"EnteredNumber\" : {},\n   \"ExitedNumber\" : {},\n   \"UTC\" : {utc}\n}}\n",
            seq % 7,
            seq,
            seq.saturating_sub(seq % 7)
        ),
        EventCode::Unknown => format!("{{\n   \"Foo\" : \"bar\",\n   \"UTC\" : {utc}\n}}\n"),
    };
    if let Some(ms) = sent_ms {
        // Every object above opens with "{\n" and has at least one member after it.
        data.insert_str(2, &format!("   \"{SENT_MS_FIELD}\" : {ms},\n"));
    }
    format!("Code={};action={action};index={index};data={data}", code.code())
}
