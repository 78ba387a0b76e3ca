//! The Dahua event-stream parser and decoder must never panic, must give the same items
//! however the stream is split into reads, and must keep their limits.
//!
//! The first byte steers the run: bit 7 picks small limits (so over-limit parts, header
//! floods and junk runs are fuzzed too), bit 6 leaves the boundary to be learned from the
//! stream, and the whole byte seeds the chunking of the rest, which is the stream.
#![no_main]

use camgate_core::event::bbox_is_valid;
use camgate_protocols::dahua::{Data, Decoder, FrameError, Limits, NormaliseOptions, Output, Part, StreamParser};
use libfuzzer_sys::fuzz_target;

/// Cuts `stream` into reads of 1..=64 bytes chosen by a xorshift seeded with `seed`.
fn chunks(stream: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut x = u32::from(seed).wrapping_mul(0x9E37_79B9) | 1;
    let mut out = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let end = (at + 1 + (x % 64) as usize).min(stream.len());
        out.push(&stream[at..end]);
        at = end;
    }
    out
}

fn frame(boundary: Option<&str>, limits: Limits, reads: &[&[u8]]) -> Vec<Result<Part, FrameError>> {
    let mut p = StreamParser::new(boundary, limits);
    let max = p.limits();
    let mut items = Vec::new();
    for read in reads {
        let mut rest = *read;
        loop {
            rest = p.feed(rest);
            assert!(p.buffered() <= max.max_buffer, "{} bytes buffered over {}", p.buffered(), max.max_buffer);
            while let Some(item) = p.next_part() {
                items.push(item);
            }
            if rest.is_empty() {
                break;
            }
        }
    }
    while let Some(item) = p.finish() {
        items.push(item);
    }
    assert_eq!(p.buffered(), 0, "finish left bytes behind");
    for part in items.iter().flatten() {
        assert!(!part.body.is_empty(), "an empty part was delivered");
        assert!(part.body.len() <= max.max_part, "a part of {} bytes over {}", part.body.len(), max.max_part);
        assert!(!part.body.ends_with(b"\n") && !part.body.ends_with(b"\r"), "trailing CR/LF kept");
    }
    items
}

fn decode(boundary: Option<&str>, limits: Limits, reads: &[&[u8]]) -> Vec<Output> {
    let mut d = Decoder::new(boundary, limits, NormaliseOptions::default());
    let mut out = Vec::new();
    for read in reads {
        d.push(read, |o| out.push(o));
    }
    while let Some(o) = d.finish() {
        out.push(o);
    }
    for o in &out {
        if let Output::Event(e) = o {
            assert!(!e.code().is_empty(), "empty code");
            // `data=` kept as JSON text reads as JSON; the record as JSON names its code.
            if let Data::Json(raw) = e.record.data() {
                assert!(serde_json::from_str::<serde_json::Value>(raw).is_ok(), "unreadable JSON kept: {raw:?}");
            }
            assert_eq!(e.data()["Code"].as_str(), Some(e.code()), "record JSON");
            assert!(!e.key.is_empty() && e.key.len() <= 200, "key {:?}", e.key);
            assert_eq!(e.channel.map(|c| c.get()), e.index.and_then(|i| i.checked_add(1)), "channel is not index + 1");
            assert!(e.occurred_at.is_none() || e.time_error.is_none(), "both a time and a time error");
            assert!(e.objects.len() <= camgate_protocols::dahua::MAX_OBJECTS);
            for (i, obj) in e.objects.iter().enumerate() {
                if let Some(b) = &obj.bbox {
                    assert!(bbox_is_valid(b), "objects[{i}].bbox {b:?} is not valid");
                }
                if let Some(c) = obj.confidence {
                    assert!(c > 0.0 && c <= 1.0, "objects[{i}].confidence {c}");
                }
            }
            if let Some(c) = e.plate.as_ref().and_then(|p| p.confidence) {
                assert!(c > 0.0 && c <= 100.0, "plate confidence {c}");
            }
        }
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&ctl, stream)) = input.split_first() else { return };
    let limits = if ctl & 0x80 != 0 {
        Limits { max_part: 16 + usize::from(ctl & 0x3F), max_header: 0, max_buffer: 0 }
    } else {
        Limits::default()
    };
    let boundary = if ctl & 0x40 != 0 { None } else { Some("myboundary") };
    let reads = chunks(stream, ctl);
    assert_eq!(frame(boundary, limits, &reads), frame(boundary, limits, &[stream]), "chunking changed the parts");
    assert_eq!(decode(boundary, limits, &reads), decode(boundary, limits, &[stream]), "chunking changed the outputs");
});
