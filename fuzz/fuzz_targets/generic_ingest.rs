//! `parse_ingest` must never panic, and whatever it accepts must satisfy the invariants the
//! rest of camgate relies on.
#![no_main]

use camgate_core::event::bbox_is_valid;
use camgate_protocols::generic::{MAX_KEY_LEN, MAX_SOURCE_LEN, parse_ingest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(e) = parse_ingest(body) else { return };
    assert!(!e.source.is_empty(), "accepted an empty source");
    assert!(e.source.len() <= MAX_SOURCE_LEN, "accepted a source of {} bytes", e.source.len());
    assert_eq!(e.source.trim(), e.source, "the source is not trimmed");
    if let Some(key) = &e.key {
        assert!(!key.is_empty() && key.len() <= MAX_KEY_LEN, "accepted a key of {} bytes", key.len());
    }
    for (i, o) in e.objects.iter().enumerate() {
        if let Some(b) = &o.bbox {
            assert!(bbox_is_valid(b), "objects[{i}].bbox {b:?} was accepted but is not valid");
        }
    }
    for (i, img) in e.images.iter().enumerate() {
        assert!(!img.bytes.is_empty(), "images[{i}] was accepted with no bytes");
        assert!(
            !img.role.is_empty()
                && img.role.len() <= 32
                && img.role.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "images[{i}].role {:?} was accepted",
            img.role
        );
    }
});
