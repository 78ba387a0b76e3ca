//! Dahua event-stream speed, with no HTTP around it.
//!
//! The input is a captured-style `eventManager.cgi?action=attach&codes=[All]&heartbeat=5`
//! stream of 1,000 parts (CRLF framing, exact `Content-Length`, pretty-printed JSON with bare
//! LF, as in dahua.md §3.1): per 20 parts, 4 `Heartbeat`, 8 `VideoMotionInfo` State, 2
//! `VideoMotion` Start/Stop with data, 2 `SmartMotionHuman`, 2 `CrossLineDetection` (IVS,
//! ~1.2 KB), 1 `TrafficJunction` (ANPR, ~3 KB) and 1 WizMind `HumanTrait` (the sample). It
//! is fed in 1,460-byte reads (one TCP segment each).
//!
//! * `dahua_bytes/frame`: [`StreamParser`] only (framing), MB/s.
//! * `dahua_bytes/decode`: [`Decoder`] (framing + body grammar + JSON + normalisation), MB/s.
//! * `dahua_parts/decode`: the same, parts/s.

use std::fmt::Write as _;
use std::hint::black_box;

use camgate_protocols::dahua::{Decoder, Limits, NormaliseOptions, Output, StreamParser};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const WIZMIND: &str = include_str!("../../../../shared/samples/dahua/10_wizmind_humantrait_body.txt");

/// Read size: one TCP segment.
const READ: usize = 1460;

fn part(out: &mut String, body: &str) {
    let _ =
        write!(out, "--myboundary\r\nContent-Type: text/plain\r\nContent-Length:{}\r\n\r\n{body}\r\n\r\n", body.len());
}

fn video_motion(action: &str) -> String {
    format!(
        "Code=VideoMotion;action={action};index=0;data={{\n   \"Id\" : [ 0 ],\n   \"RegionName\" : [ \"Region1\" ],\n   \"SmartMotionEnable\" : true\n}}\n"
    )
}

fn smart_motion(action: &str, id: u32) -> String {
    format!(
        "Code=SmartMotionHuman;action={action};index=0;data={{\n   \"RegionName\" : [ \"Region1\" ],\n   \"WindowId\" : [ 0 ],\n   \"object\" : [\n      {{\n         \"HumamID\" : {id},\n         \"Rect\" : [ 2304, 736, 2752, 2944 ]\n      }}\n   ]\n}}\n"
    )
}

fn cross_line(action: &str, seq: u32) -> String {
    format!(
        "Code=CrossLineDetection;action={action};index=1;data={{
   \"Class\" : \"Normal\",
   \"CountInGroup\" : 1,
   \"DetectLine\" : [
      [ 1024, 4096 ],
      [ 7168, 4096 ]
   ],
   \"Direction\" : \"LeftToRight\",
   \"EventID\" : {seq},
   \"EventSeq\" : {seq},
   \"FrameSequence\" : 3058160,
   \"GroupID\" : {seq},
   \"IndexInGroup\" : 0,
   \"LocaleTime\" : \"2024-11-21 10:33:41\",
   \"Mark\" : 0,
   \"Name\" : \"Gate line; north\",
   \"Object\" : {{
      \"Action\" : \"Appear\",
      \"BelongID\" : 0,
      \"BoundingBox\" : [ 2624, 4760, 3024, 6240 ],
      \"Center\" : [ 2824, 5500 ],
      \"Confidence\" : 87,
      \"FrameSequence\" : 3058160,
      \"LowerBodyColor\" : [ 0, 0, 0, 0 ],
      \"MainColor\" : [ 0, 0, 0, 0 ],
      \"ObjectID\" : {seq},
      \"ObjectType\" : \"Human\",
      \"RelativeID\" : 0,
      \"Source\" : 0.0,
      \"Speed\" : 0,
      \"SpeedTypeInternal\" : 0
   }},
   \"PTS\" : 43332082110.0,
   \"RuleID\" : 3,
   \"RuleId\" : 1,
   \"CfgRuleId\" : 3,
   \"Source\" : 52582800.0,
   \"Track\" : null,
   \"UTC\" : 1732203221,
   \"UTCMS\" : 5
}}
"
    )
}

fn traffic(seq: u32) -> String {
    let mut b = format!(
        "Code=TrafficJunction;action=Pulse;index=0;data={{
   \"Class\" : \"Traffic\",
   \"CommInfo\" : {{
      \"Country\" : \"CO\",
      \"ExtraPlates\" : [],
      \"IsVehicleHeadLightOn\" : false
   }},
   \"CountInGroup\" : 1,
   \"EventID\" : {seq},
   \"GroupID\" : {seq},
   \"LocaleTime\" : \"2024-11-21 10:33:41\",
   \"Lane\" : 1,
   \"Name\" : \"TrafficJunction\",
   \"Object\" : {{
      \"Action\" : \"Appear\",
      \"BoundingBox\" : [ 4000, 5000, 4600, 5300 ],
      \"Category\" : \"Normal\",
      \"Center\" : [ 4300, 5150 ],
      \"Confidence\" : 92,
      \"Country\" : \"CO\",
      \"ObjectID\" : {seq},
      \"ObjectType\" : \"Plate\",
      \"Text\" : \"ABC123\"
   }},
   \"PTS\" : 43332082110.0,
   \"TrafficCar\" : {{
      \"Brand\" : \"Toyota\",
      \"Direction\" : \"Approach\",
      \"PlateColor\" : \"Yellow\",
      \"PlateNumber\" : \"ABC123\",
      \"PlateType\" : \"Normal\",
      \"Speed\" : 32,
      \"VehicleColor\" : \"White\",
      \"VehicleType\" : \"Sedan\"
   }},
   \"UTC\" : 1732203221,
   \"UTCMS\" : 120,
   \"Vehicle\" : {{
      \"BoundingBox\" : [ 3000, 3000, 6000, 6000 ],
      \"Category\" : \"Motor\",
      \"MainColor\" : [ 255, 255, 255, 0 ],
      \"ObjectID\" : {seq},
      \"ObjectType\" : \"Vehicle\",
      \"Text\" : \"Toyota\"
   }},
   \"CarCandidates\" : [
"
    );
    for i in 0..12 {
        let _ = writeln!(
            b,
            "      {{ \"ObjectID\" : {i}, \"Text\" : \"ABC12{i}\", \"Confidence\" : {}, \"BoundingBox\" : [ 4000, 5000, 4600, 5300 ], \"Color\" : \"Yellow\" }},",
            90 - i
        );
    }
    b.push_str("      { \"ObjectID\" : 99, \"Text\" : \"ABC199\", \"Confidence\" : 10 }\n   ]\n}\n");
    b
}

/// The stream and its number of parts.
fn stream() -> (Vec<u8>, u64) {
    let wizmind = WIZMIND.trim_end();
    let mut s = String::new();
    let mut n = 0u64;
    for round in 0..50u32 {
        let seq = 10_000 + round;
        let bodies = [
            "Heartbeat".to_owned(),
            video_motion("Start"),
            "Code=VideoMotionInfo;action=State;index=0".to_owned(),
            smart_motion("Start", seq),
            "Code=VideoMotionInfo;action=State;index=0".to_owned(),
            cross_line("Start", seq),
            "Heartbeat".to_owned(),
            "Code=VideoMotionInfo;action=State;index=0".to_owned(),
            traffic(seq),
            "Code=VideoMotionInfo;action=State;index=0".to_owned(),
            "Heartbeat".to_owned(),
            wizmind.to_owned(),
            "Code=VideoMotionInfo;action=State;index=0".to_owned(),
            cross_line("Stop", seq),
            "Code=VideoMotionInfo;action=State;index=0".to_owned(),
            smart_motion("Stop", seq),
            "Heartbeat".to_owned(),
            "Code=VideoMotionInfo;action=State;index=0".to_owned(),
            video_motion("Stop"),
            "Code=VideoMotionInfo;action=State;index=0".to_owned(),
        ];
        for b in &bodies {
            part(&mut s, b);
            n += 1;
        }
    }
    (s.into_bytes(), n)
}

fn frame(stream: &[u8]) -> usize {
    let mut p = StreamParser::new(Some("myboundary"), Limits::default());
    let mut n = 0;
    for read in stream.chunks(READ) {
        p.push(read, |item| {
            black_box(&item);
            n += 1;
        });
    }
    n
}

fn decode(stream: &[u8]) -> usize {
    let mut d = Decoder::new(Some("myboundary"), Limits::default(), NormaliseOptions::default());
    let mut events = 0;
    for read in stream.chunks(READ) {
        d.push(read, |o| {
            if matches!(o, Output::Event(_)) {
                events += 1;
            }
            black_box(o);
        });
    }
    events
}

fn bench(c: &mut Criterion) {
    let (s, parts) = stream();
    assert_eq!(frame(&s) as u64, parts, "every part framed");
    assert_eq!(decode(&s), 400, "8 events per round of 20 parts");
    eprintln!("dahua stream: {} bytes, {parts} parts, {:.0} bytes per part", s.len(), s.len() as f64 / parts as f64);

    let mut g = c.benchmark_group("dahua_bytes");
    g.throughput(Throughput::Bytes(s.len() as u64));
    g.bench_function("frame", |b| b.iter(|| frame(black_box(&s))));
    g.bench_function("decode", |b| b.iter(|| decode(black_box(&s))));
    g.finish();

    let mut g = c.benchmark_group("dahua_parts");
    g.throughput(Throughput::Elements(parts));
    g.bench_function("decode", |b| b.iter(|| decode(black_box(&s))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
