//! `viewtron::parse` must never panic, and whatever it returns must satisfy the invariants
//! the receiver relies on. The first byte picks a small image budget now and then, so the
//! limit path is fuzzed too.
#![no_main]

use camgate_core::event::bbox_is_valid;
use camgate_protocols::viewtron::{ParseOptions, Post, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (opts, body) = match input.split_first() {
        Some((&b, rest)) if b == 0xFF => (ParseOptions { max_image_bytes: 16, ..ParseOptions::default() }, rest),
        _ => (ParseOptions::default(), input),
    };
    let Ok(post) = parse(body, &opts) else { return };
    assert_eq!(parse(body, &opts).as_ref(), Ok(&post), "parsing is not deterministic");
    let events = match &post {
        Post::Keepalive(_) => return,
        Post::Events(v) => v.iter().collect::<Vec<_>>(),
        Post::Traject(p) => vec![p],
    };
    for p in events {
        assert!(!p.key.is_empty() && p.key.len() <= 200, "key {:?}", p.key);
        assert!(!p.code.is_empty(), "empty code");
        assert_eq!(p.channel, p.device.channel, "channel and device channel differ");
        assert!(p.occurred_at.is_none() || p.time_error.is_none(), "both a time and a time error");
        for (i, o) in p.objects.iter().enumerate() {
            if let Some(b) = &o.bbox {
                assert!(bbox_is_valid(b), "objects[{i}].bbox {b:?} is not valid");
            }
            if let Some(c) = o.confidence {
                assert!((0.0..=1.0).contains(&c), "objects[{i}].confidence {c}");
            }
        }
        if let Some(c) = p.plate.as_ref().and_then(|pl| pl.confidence) {
            assert!((0.0..=100.0).contains(&c), "plate confidence {c}");
        }
        let total: usize = p.images.iter().map(|i| i.bytes.len()).sum();
        assert!(total <= opts.max_image_bytes, "{total} image bytes over the limit");
        assert!(p.images.iter().all(|i| !i.bytes.is_empty()), "an empty image");
    }
});
