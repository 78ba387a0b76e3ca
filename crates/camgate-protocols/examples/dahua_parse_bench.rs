//! camgate side of `scripts/bench dahua` (parser throughput): feeds a captured multipart body
//! (`eventManager.cgi?action=attach` response body, from a file) through [`Decoder::push`] in
//! fixed-size reads and prints one JSON object with MB/s (10^6 bytes) and events/s.
//!
//! ```text
//! cargo run --release -p camgate-protocols --example dahua_parse_bench -- STREAM \
//!     [--chunk 4096] [--runs 5] [--min-seconds 0.4] [--boundary myboundary] [--with-data]
//! ```
//!
//! The file is read into memory first. A pass is one [`Decoder`] from scratch over the whole
//! file, `--chunk` bytes per `push` (the last read shorter), then [`Decoder::finish`]; every
//! [`Output`] is handed to `black_box`. A run repeats passes until `--min-seconds` have gone
//! by; the best of `--runs` runs is reported. Records are normalised with
//! `keep_video_motion_info` set, so that every `Code=` record becomes an event, as it does in
//! python-amcrest (by default camgate drops the chatty `VideoMotionInfo` records as
//! `Output::Filtered`, which is cheaper). A first, untimed pass also reports what was decoded:
//! outputs by kind and the (Code, action, index) multiset, for comparison with the reference.
//!
//! The decoder keeps each record as its text (the JSON checked, the members normalisation
//! needs read from it) and builds no JSON value; camgate builds the record's JSON value, an
//! event's `data`, where it turns a decoder event into a stored event. `--with-data` times
//! that too: every event's `Normalised::data` is built in the timed passes. The program
//! runs with the allocator of the camgate binary (mimalloc).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use camgate_protocols::dahua::{Data, Decoder, Limits, NormaliseOptions, Output};
use serde_json::json;

// The allocator the camgate binary runs the decoder with (crates/camgate/src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    path: String,
    chunk: usize,
    runs: u32,
    min_seconds: f64,
    boundary: String,
    with_data: bool,
}

fn usage() -> String {
    "usage: dahua_parse_bench STREAM [--chunk BYTES] [--runs N] [--min-seconds S] [--boundary NAME] [--with-data]"
        .to_owned()
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        path: String::new(),
        chunk: 4096,
        runs: 5,
        min_seconds: 0.4,
        boundary: "myboundary".to_owned(),
        with_data: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value\n{}", usage()));
        match a.as_str() {
            "--chunk" => args.chunk = value("--chunk")?.parse().map_err(|e| format!("--chunk: {e}"))?,
            "--runs" => args.runs = value("--runs")?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--min-seconds" => {
                args.min_seconds = value("--min-seconds")?.parse().map_err(|e| format!("--min-seconds: {e}"))?
            }
            "--boundary" => args.boundary = value("--boundary")?,
            "--with-data" => args.with_data = true,
            "-h" | "--help" => return Err(usage()),
            _ if a.starts_with('-') => return Err(format!("unknown option {a}\n{}", usage())),
            _ if args.path.is_empty() => args.path = a,
            _ => return Err(format!("more than one STREAM given\n{}", usage())),
        }
    }
    if args.path.is_empty() {
        return Err(usage());
    }
    if args.chunk == 0 || args.runs == 0 {
        return Err("--chunk and --runs must be at least 1".to_owned());
    }
    Ok(args)
}

fn options() -> NormaliseOptions {
    NormaliseOptions { keep_video_motion_info: true, ..NormaliseOptions::default() }
}

/// Outputs of one pass, by kind.
#[derive(Default, PartialEq, Debug)]
struct Counts {
    events: u64,
    heartbeats: u64,
    filtered: u64,
    unrecognised: u64,
    frame_errors: u64,
}

impl Counts {
    fn add(&mut self, o: &Output) {
        match o {
            Output::Event(_) => self.events += 1,
            Output::Heartbeat { .. } => self.heartbeats += 1,
            Output::Filtered { .. } => self.filtered += 1,
            Output::Unrecognised { .. } => self.unrecognised += 1,
            Output::Frame(_) => self.frame_errors += 1,
        }
    }
}

/// Feeds the whole stream to a new decoder, `chunk` bytes at a time, and hands every output
/// to `on_output`.
fn pass(stream: &[u8], chunk: usize, boundary: &str, mut on_output: impl FnMut(Output)) {
    let mut d = Decoder::new(Some(boundary), Limits::default(), options());
    for read in stream.chunks(chunk) {
        d.push(read, &mut on_output);
    }
    while let Some(o) = d.finish() {
        on_output(o);
    }
}

fn timed_pass(stream: &[u8], chunk: usize, boundary: &str, with_data: bool) -> Counts {
    let mut counts = Counts::default();
    pass(stream, chunk, boundary, |o| {
        counts.add(&o);
        if with_data && let Output::Event(e) = &o {
            black_box(e.data());
        }
        black_box(o);
    });
    counts
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let stream = match std::fs::read(&args.path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dahua_parse_bench: cannot read {}: {e}", args.path);
            return ExitCode::FAILURE;
        }
    };

    // Untimed: what the stream decodes to.
    let mut counts = Counts::default();
    let mut records: BTreeMap<(String, Option<String>, Option<u32>), u64> = BTreeMap::new();
    let mut data_json = 0u64;
    pass(&stream, args.chunk, &args.boundary, |o| {
        counts.add(&o);
        if let Output::Event(e) = o {
            // Checked JSON that starts with `{` is an object.
            data_json += u64::from(matches!(e.record.data(), Data::Json(raw) if raw.starts_with('{')));
            *records.entry((e.code().to_owned(), e.action().map(str::to_owned), e.index)).or_default() += 1;
        }
    });

    let mut runs = Vec::new();
    for _ in 0..args.runs {
        let started = Instant::now();
        let mut passes = 0u64;
        loop {
            let c = timed_pass(black_box(&stream), args.chunk, &args.boundary, args.with_data);
            assert_eq!(c, counts, "a timed pass decoded something else than the first pass");
            passes += 1;
            if started.elapsed().as_secs_f64() >= args.min_seconds {
                break;
            }
        }
        runs.push(started.elapsed().as_secs_f64() / passes as f64);
    }
    let best = runs.iter().copied().fold(f64::INFINITY, f64::min);

    let out = json!({
        "bytes": stream.len(),
        "chunk": args.chunk,
        "with_data": args.with_data,
        "seconds_per_pass": runs,
        "best_seconds": best,
        "mb_s": stream.len() as f64 / best / 1e6,
        "events_s": counts.events as f64 / best,
        "events": counts.events,
        "heartbeats": counts.heartbeats,
        "filtered": counts.filtered,
        "unrecognised": counts.unrecognised,
        "frame_errors": counts.frame_errors,
        "data_json": data_json,
        "records": records.iter().map(|((c, a, i), n)| json!([c, a, i.map(|i| i.to_string()), n])).collect::<Vec<_>>(),
    });
    println!("{out}");
    ExitCode::SUCCESS
}
