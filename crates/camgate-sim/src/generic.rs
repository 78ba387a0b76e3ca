//! A script-like source: posts a realistic mix of events in camgate's JSON model to
//! `POST /api/ingest`, with the occasional retry of an already-sent event (as a device
//! that missed the reply would), so deduplication is exercised too.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A valid 1×1 pixel baseline JPEG (160 bytes): enough to show images flowing through
/// without a codec.
pub const TINY_JPEG: &[u8] = &[
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
    0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x08, 0x06, 0x06, 0x07, 0x06, 0x05, 0x08, 0x07, 0x07, 0x07, 0x09, 0x09, 0x08,
    0x0a, 0x0c, 0x14, 0x0d, 0x0c, 0x0b, 0x0b, 0x0c, 0x19, 0x12, 0x13, 0x0f, 0x14, 0x1d, 0x1a, 0x1f, 0x1e, 0x1d, 0x1a,
    0x1c, 0x1c, 0x20, 0x24, 0x2e, 0x27, 0x20, 0x22, 0x2c, 0x23, 0x1c, 0x1c, 0x28, 0x37, 0x29, 0x2c, 0x30, 0x31, 0x34,
    0x34, 0x34, 0x1f, 0x27, 0x39, 0x3d, 0x38, 0x32, 0x3c, 0x2e, 0x33, 0x34, 0x32, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00,
    0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x10, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01,
    0x00, 0x00, 0x3f, 0x00, 0x2a, 0x9f, 0xff, 0xd9,
];

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Posts answered 200 with a new event.
    pub stored: u64,
    /// Posts answered 200 as a duplicate of an earlier key (the deliberate retries).
    pub duplicates: u64,
    /// Posts that failed (connection error or non-200).
    pub failed: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} events stored, {} retries deduplicated, {} failed", self.stored, self.duplicates, self.failed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid target {0:?}: give the base URL of the webhook listener, e.g. http://127.0.0.1:5050")]
    Target(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Posts events at a steady rate until stopped or `count` is reached.
#[derive(Debug, Clone)]
pub struct Generator {
    target: String,
    rate: f64,
    count: Option<u64>,
    token: Option<String>,
    seed: Option<u64>,
}

/// The simulated site: (source, channel count).
const CAMERAS: &[(&str, u32)] = &[("front-door", 1), ("gate-lpr", 1), ("lobby", 2), ("parking-north", 4)];

impl Generator {
    /// `target` is the base URL of the webhook listener (`http://127.0.0.1:5050`).
    pub fn new(target: &str, rate: f64) -> Self {
        Generator { target: target.trim_end_matches('/').to_owned(), rate, count: None, token: None, seed: None }
    }
    pub fn with_count(mut self, count: Option<u64>) -> Self {
        self.count = count;
        self
    }
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }
    /// Make the sequence of events repeatable.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    pub async fn run(self, stop: CancellationToken) -> Result<Stats, SimError> {
        if !(self.target.starts_with("http://") || self.target.starts_with("https://")) {
            return Err(SimError::Target(self.target));
        }
        let url = format!("{}/api/ingest", self.target);
        // The workspace builds reqwest with `rustls-no-provider` (camgate's Dahua client
        // chooses ring): a client needs a process-wide provider, installed here unless one is.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SimError::Client(e.to_string()))?;
        let mut rng = match self.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => rand::make_rng(),
        };
        let run_id = Timestamp::now().as_millisecond();
        let mut stats = Stats::default();
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / self.rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<Value> = None;
        let mut n: u64 = 0;
        while self.count.is_none_or(|c| n < c) {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => break,
            }
            // One post in fifty repeats the previous one, as a device retrying would.
            let body = match last.take() {
                Some(prev) if rng.random_bool(0.02) => prev,
                _ => {
                    n += 1;
                    event(&mut rng, run_id, n)
                }
            };
            let mut req = client.post(&url).json(&body);
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    let reply: Value = resp.json().await.unwrap_or_default();
                    if reply["duplicate"] == true {
                        stats.duplicates += 1;
                    } else {
                        stats.stored += 1;
                    }
                }
                Ok(resp) => {
                    stats.failed += 1;
                    tracing::warn!(status = %resp.status(), "simulated post refused");
                }
                Err(e) => {
                    stats.failed += 1;
                    tracing::warn!(error = %e, "simulated post failed");
                }
            }
            last = Some(body);
        }
        Ok(stats)
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn bbox(rng: &mut StdRng) -> [f64; 4] {
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let x = rng.random_range(0.0..0.8);
    let y = rng.random_range(0.0..0.7);
    [round(x), round(y), round(x + rng.random_range(0.05..0.2)), round(y + rng.random_range(0.1..0.3))]
}

/// One realistic event. `n` makes the key unique within the run.
pub fn event(rng: &mut StdRng, run_id: i64, n: u64) -> Value {
    let (source, channels) = *pick(rng, CAMERAS);
    let channel = rng.random_range(1..=channels);
    let now = Timestamp::now();
    let occurred = now - jiff::SignedDuration::from_millis(rng.random_range(5..400));
    let mut e = json!({
        "key": format!("sim:{run_id}:{n}"),
        "source": source,
        "channel": channel,
        "occurred_at": occurred.round(jiff::Unit::Millisecond).unwrap_or(occurred).to_string(),
    });
    let roll = rng.random_range(0..100);
    let set = |e: &mut Value, k: &str, v: Value| {
        e[k] = v;
    };
    match roll {
        0..=29 => {
            set(&mut e, "kind", json!("motion"));
            set(&mut e, "code", json!("VideoMotion"));
            set(&mut e, "state", json!(if rng.random_bool(0.5) { "start" } else { "stop" }));
            set(&mut e, "rule", json!(format!("Region{}", rng.random_range(1..=3))));
        }
        30..=49 => {
            set(&mut e, "kind", json!("human"));
            set(&mut e, "code", json!("SmartMotionHuman"));
            set(&mut e, "state", json!("start"));
            let objects: Vec<Value> = (0..rng.random_range(1..=3))
                .map(|i| {
                    json!({"type": "human", "id": (100 + i).to_string(), "bbox": bbox(rng),
                                "confidence": (rng.random_range(0.6..0.99f64) * 100.0).round() / 100.0})
                })
                .collect();
            set(&mut e, "objects", json!(objects));
        }
        50..=64 => {
            let letters: String = (0..3).map(|_| char::from(b'A' + rng.random_range(0..26u8))).collect();
            set(&mut e, "kind", json!("plate"));
            set(&mut e, "code", json!("TrafficJunction"));
            set(&mut e, "state", json!("pulse"));
            set(
                &mut e,
                "plate",
                json!({
                    "number": format!("{letters}{:03}", rng.random_range(0..1000)),
                    "list": pick(rng, &["white", "black", "visitor"]),
                    "confidence": rng.random_range(80..100) as f64,
                    "direction": pick(rng, &["approach", "leave"]),
                    "color": pick(rng, &["yellow", "white"]),
                    "vehicle": {"type": pick(rng, &["saloon car", "SUV", "pickup", "motorcycle"]),
                                "color": pick(rng, &["white", "black", "silver", "red"])}
                }),
            );
            set(&mut e, "objects", json!([{"type": "vehicle", "bbox": bbox(rng), "confidence": 0.95}]));
            set(
                &mut e,
                "images",
                json!([{"role": "plate",
                "data": base64::engine::general_purpose::STANDARD.encode(TINY_JPEG)}]),
            );
        }
        65..=74 => {
            set(&mut e, "kind", json!("face"));
            set(&mut e, "code", json!("FaceDetection"));
            set(&mut e, "state", json!("pulse"));
            set(
                &mut e,
                "face",
                json!({"age": pick(rng, &["young", "middleAged", "old"]),
                "sex": pick(rng, &["male", "female"]), "glasses": rng.random_bool(0.3), "mask": rng.random_bool(0.1)}),
            );
        }
        75..=87 => {
            set(&mut e, "kind", json!("line_crossing"));
            set(&mut e, "code", json!("CrossLineDetection"));
            set(&mut e, "state", json!("pulse"));
            set(&mut e, "rule", json!("Entrance line"));
            set(&mut e, "data", json!({"Direction": pick(rng, &["LeftToRight", "RightToLeft"])}));
            set(&mut e, "objects", json!([{"type": "human", "bbox": bbox(rng)}]));
        }
        88..=96 => {
            set(&mut e, "kind", json!("counting"));
            set(&mut e, "code", json!("NumberStat"));
            set(&mut e, "state", json!("pulse"));
            set(&mut e, "rule", json!("Door counter"));
            set(&mut e, "counts", json!({"enter": rng.random_range(0..4), "exit": rng.random_range(0..3)}));
        }
        _ => {
            set(&mut e, "kind", json!("tamper"));
            set(&mut e, "code", json!("VideoBlind"));
            set(&mut e, "state", json!(if rng.random_bool(0.5) { "start" } else { "stop" }));
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_varied_and_keyed() {
        let mut rng = StdRng::seed_from_u64(3);
        let events: Vec<Value> = (1..=200).map(|n| event(&mut rng, 1, n)).collect();
        let kinds: std::collections::HashSet<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert!(kinds.len() >= 6, "{kinds:?}");
        let keys: std::collections::HashSet<&str> = events.iter().map(|e| e["key"].as_str().unwrap()).collect();
        assert_eq!(keys.len(), 200);
    }
}
