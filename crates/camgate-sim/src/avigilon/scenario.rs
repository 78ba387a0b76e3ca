//! Scenarios: the servers, cameras, analytic rules and timeline the emulator serves, and the
//! known truth (STOP events per rule and per zone) a test compares camgate's counts with.
//!
//! A scenario is built in code ([`Scenario::builder`], or [`Scenario::counting`] for the
//! generated occupancy workload) or loaded from JSON ([`Scenario::from_json`],
//! [`Scenario::from_file`]). Times in a scenario are milliseconds relative to its *start*,
//! which is either absolute ([`Scenario::start`]) or the moment the server binds plus
//! [`Scenario::start_offset_ms`] (negative: events in the past, ready for a back-fill).
//!
//! JSON, explicit form (every field but the lists has a default; unknown fields are errors):
//!
//! ```json
//! {
//!   "start_offset_ms": -60000,
//!   "servers": [{"id": "UMooFPEhRpayellyz_q3iA", "name": "ARCHER"}],
//!   "cameras": [{"id": "cam-1", "name": "Puerta Norte", "server_id": "UMooFPEhRpayellyz_q3iA"}],
//!   "rules": [{"camera_id": "cam-1", "name": " aforo  Entrada parqueadero NORTE", "area": "Parqueadero Norte",
//!              "activity": "OBJECT_COUNTING_ENTER", "zone": "PARQUEADERO NORTE"}],
//!   "timeline": [{"rule": 0, "at_ms": 1000}, {"rule": 0, "at_ms": 5000, "count": 1001, "delay_ms": 20000}]
//! }
//! ```
//!
//! JSON, generated form: `{"counting": {"entries": 10000, "exits": 9400, "zones": 3, "cameras": 40,
//! "servers": 2, "span_ms": 20000, "seed": 7}}` (fields of [`CountingSpec`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use base64::Engine;
use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// `activity` of an occupancy-area entry (§2.3): counts +1 for the rule's zone.
pub const OBJECT_COUNTING_ENTER: &str = "OBJECT_COUNTING_ENTER";
/// `activity` of an occupancy-area exit (§2.3): counts -1 for the rule's zone.
pub const OBJECT_COUNTING_EXIT: &str = "OBJECT_COUNTING_EXIT";
/// `activity` of a plain presence rule (noise for occupancy).
pub const OBJECT_PRESENT: &str = "OBJECT_PRESENT";

/// A scenario that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Not valid JSON, or not the scenario shape.
    #[error("scenario JSON: {0}")]
    Json(String),
    /// Read failure.
    #[error("scenario file {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        error: std::io::Error,
    },
    /// Inconsistent content (unknown reference, duplicate id, impossible counts).
    #[error("scenario: {0}")]
    Invalid(String),
}

/// One ACC server (`GET /server/ids`; `serverId` of `events/search`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// `id` (22-character URL-safe base64 on real servers).
    pub id: String,
    /// `name` (also the events' `originatingServerName`).
    pub name: String,
}

/// One camera (`GET /cameras`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraSpec {
    /// `id`, also the events' `cameraId` and the `deviceIds` filter value.
    pub id: String,
    /// `name`.
    pub name: String,
    /// The server it is connected to (`serverId`).
    pub server_id: String,
    /// `connected`/`connectionState`; default true.
    #[serde(default = "yes")]
    pub connected: bool,
}

/// One analytic rule configured on a camera.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// The camera it runs on.
    pub camera_id: String,
    /// `analyticEventName`, exactly as "typed" (mixed case and extra spaces are the point).
    pub name: String,
    /// `area` (occupancy area name, or empty).
    #[serde(default)]
    pub area: String,
    /// `activity` ([`OBJECT_COUNTING_ENTER`], [`OBJECT_COUNTING_EXIT`], [`OBJECT_PRESENT`], ...).
    pub activity: String,
    /// `classifiedObjects[].subclass`; default `PERSON`.
    #[serde(default = "person")]
    pub subclass: String,
    /// Simulator-only: the zone this rule counts for (entries for `..._ENTER`, exits for
    /// `..._EXIT`), used only to compute the [`Truth`]. Never on the wire.
    #[serde(default)]
    pub zone: Option<String>,
}

/// One or more analytic detections of a rule: each is a START/STOP pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Occurrence {
    /// Index into [`Scenario::rules`].
    pub rule: usize,
    /// The STOP `timestamp`, ms after the scenario start (may be negative).
    pub at_ms: i64,
    /// START `timestamp` = STOP `timestamp` - `dwell_ms`. Default 800.
    #[serde(default = "default_dwell")]
    pub dwell_ms: u64,
    /// Delivery delay: each event of the pair exists (is returned by searches) only from its
    /// `timestamp` + `delay_ms` of server wall-clock time; a delay longer than the client's
    /// settle time lands it inside a window the client already polled. Default 0.
    #[serde(default)]
    pub delay_ms: u64,
    /// Number of objects detected at exactly the same instants: `count` pairs sharing both
    /// timestamps (equal-timestamp bursts). Default 1.
    #[serde(default = "one")]
    pub count: u32,
    /// Deliver the STOP twice: a byte-identical copy is listed (and exists) as if its
    /// timestamp were [`Scenario::duplicate_shift_ms`] later, so it turns up again in a
    /// later window. Default false.
    #[serde(default)]
    pub duplicate: bool,
}

/// What `classifiedObjects` a STOP event carries (§2.3 leaves it open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopObjects {
    /// The START's list (default).
    #[default]
    Same,
    /// `[]`.
    Empty,
    /// No `classifiedObjects` field.
    Absent,
}

/// Servers, cameras, rules and a timeline of detections. See the module docs for the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Absolute start; when `None` the start is the bind time plus `start_offset_ms`.
    pub start: Option<Timestamp>,
    /// Start relative to the bind time, ms (used when `start` is `None`). Default 0.
    pub start_offset_ms: i64,
    /// `eventTriggerTime` = `timestamp` + this, ms (they differ on real servers). Default 381.
    pub trigger_lag_ms: i64,
    /// First `thisId` of each server. `thisId` counts per server (so two servers reuse the
    /// same numbers: de-duplicate by (`originatingServerId`, `thisId`)), increasing in the
    /// order events become visible. Default 30000.
    pub first_id: u64,
    /// First `classifiedObjects[].objectId`. Default 32775346.
    pub first_object_id: u64,
    /// `classifiedObjects` of STOP events.
    pub stop_objects: StopObjects,
    /// Where a duplicate STOP copy is listed, ms after the original. Default 60000.
    pub duplicate_shift_ms: i64,
    /// `GET /sites`: one site.
    pub site: ServerSpec,
    /// ACC servers.
    pub servers: Vec<ServerSpec>,
    /// Cameras, each on one server.
    pub cameras: Vec<CameraSpec>,
    /// Analytic rules, each on one camera.
    pub rules: Vec<RuleSpec>,
    /// Detections.
    pub timeline: Vec<Occurrence>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            start: None,
            start_offset_ms: 0,
            trigger_lag_ms: 381,
            first_id: 30_000,
            first_object_id: 32_775_346,
            stop_objects: StopObjects::Same,
            duplicate_shift_ms: 60_000,
            site: ServerSpec { id: "c2ltLXNpdGUtMDAwMDAwMQ".into(), name: "SIM SITE".into() },
            servers: Vec::new(),
            cameras: Vec::new(),
            rules: Vec::new(),
            timeline: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn person() -> String {
    "PERSON".into()
}
fn default_dwell() -> u64 {
    800
}

/// `analyticEventName` normalised the way the doc asks camgate to (§2.3): trimmed, upper
/// case, runs of whitespace collapsed to one space.
pub fn normalize_name(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_uppercase()
}

impl Scenario {
    /// Build a scenario in code.
    pub fn builder() -> ScenarioBuilder {
        ScenarioBuilder { scenario: Scenario::default() }
    }

    /// Parse the JSON form (explicit or `{"counting": {...}}`, see the module docs).
    pub fn from_json(text: &str) -> Result<Scenario, ScenarioError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ScenarioError::Json(e.to_string()))?;
        if value.get("counting").is_some() {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Wrapper {
                counting: CountingSpec,
            }
            let w: Wrapper = serde_json::from_value(value).map_err(|e| ScenarioError::Json(e.to_string()))?;
            return Scenario::counting(&w.counting);
        }
        let s: Scenario = serde_json::from_value(value).map_err(|e| ScenarioError::Json(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// Read and parse a JSON scenario file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|error| ScenarioError::Io { path: path.display().to_string(), error })?;
        Scenario::from_json(&text)
    }

    /// The explicit JSON form (round-trips through [`Scenario::from_json`]).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Check references and ids.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        if self.servers.is_empty() {
            return bad("no servers".into());
        }
        let mut servers = HashSet::new();
        for s in &self.servers {
            if !servers.insert(s.id.as_str()) {
                return bad(format!("duplicate server id {:?}", s.id));
            }
        }
        let mut cameras = HashSet::new();
        for c in &self.cameras {
            if !servers.contains(c.server_id.as_str()) {
                return bad(format!("camera {:?}: unknown server {:?}", c.id, c.server_id));
            }
            if !cameras.insert(c.id.as_str()) {
                return bad(format!("duplicate camera id {:?}", c.id));
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            if !cameras.contains(r.camera_id.as_str()) {
                return bad(format!("rule {i}: unknown camera {:?}", r.camera_id));
            }
        }
        for (i, o) in self.timeline.iter().enumerate() {
            if o.rule >= self.rules.len() {
                return bad(format!("timeline entry {i}: no rule {}", o.rule));
            }
            if i64::try_from(o.dwell_ms).is_err() || i64::try_from(o.delay_ms).is_err() {
                return bad(format!("timeline entry {i}: dwell/delay out of range"));
            }
        }
        Ok(())
    }

    /// Start instant when the server binds at `bind_time`.
    pub fn start_at(&self, bind_time: Timestamp) -> Timestamp {
        self.start.unwrap_or_else(|| {
            Timestamp::from_millisecond(bind_time.as_millisecond() + self.start_offset_ms).unwrap_or(bind_time)
        })
    }

    /// The known truth: STOP events per rule and per zone (duplicates and bursts counted
    /// once per detected object, as a correct client must).
    pub fn truth(&self) -> Truth {
        let camera_server: HashMap<&str, &str> =
            self.cameras.iter().map(|c| (c.id.as_str(), c.server_id.as_str())).collect();
        let mut rules: Vec<RuleTruth> = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| RuleTruth {
                rule: i,
                camera_id: r.camera_id.clone(),
                server_id: camera_server.get(r.camera_id.as_str()).map(|s| s.to_string()).unwrap_or_default(),
                name: r.name.clone(),
                normalized_name: normalize_name(&r.name),
                area: r.area.clone(),
                activity: r.activity.clone(),
                zone: r.zone.clone(),
                stops: 0,
            })
            .collect();
        let mut truth = Truth::default();
        let mut groups: HashMap<(&str, i64), u64> = HashMap::new();
        for o in &self.timeline {
            let n = u64::from(o.count);
            rules[o.rule].stops += n;
            truth.starts += n;
            truth.stops += n;
            if o.duplicate {
                truth.duplicate_copies += n;
            }
            if o.delay_ms > 0 {
                truth.late_stops += n;
            }
            let server = camera_server.get(self.rules[o.rule].camera_id.as_str()).copied().unwrap_or("");
            *truth.events_by_server.entry(server.to_owned()).or_default() += 2 * n;
            *groups.entry((server, o.at_ms)).or_default() += n;
        }
        truth.largest_equal_timestamp_stops = groups.values().copied().max().unwrap_or(0);
        let mut zones: BTreeMap<String, ZoneTruth> = BTreeMap::new();
        for r in &rules {
            let Some(zone) = &r.zone else { continue };
            let z =
                zones.entry(zone.clone()).or_insert_with(|| ZoneTruth { zone: zone.clone(), ..ZoneTruth::default() });
            let area = normalize_name(&r.area);
            if !area.is_empty() && !z.areas.contains(&area) {
                z.areas.push(area);
            }
            match r.activity.as_str() {
                OBJECT_COUNTING_ENTER => {
                    z.entries += r.stops;
                    if !z.entry_names.contains(&r.normalized_name) {
                        z.entry_names.push(r.normalized_name.clone());
                    }
                }
                OBJECT_COUNTING_EXIT => {
                    z.exits += r.stops;
                    if !z.exit_names.contains(&r.normalized_name) {
                        z.exit_names.push(r.normalized_name.clone());
                    }
                }
                _ => {}
            }
        }
        truth.zones = zones.into_values().collect();
        truth.rules = rules;
        truth
    }

    /// The generated occupancy workload: `entries` entry and `exits` exit detections over
    /// `zones` zones and `cameras` cameras on `servers` servers, with rule names and areas in
    /// mixed case with extra spaces, and the faults the spec asks for. Deterministic for a
    /// given spec (seeded). Per zone, the running count in STOP-timestamp order never goes
    /// below 0, and only exits are delivered late, so a client's clamp at 0 cannot change the
    /// final counts.
    pub fn counting(spec: &CountingSpec) -> Result<Scenario, ScenarioError> {
        counting(spec)
    }
}

/// Builds a [`Scenario`] in code. Rules are numbered in the order added (0, 1, ...).
#[derive(Debug, Clone)]
pub struct ScenarioBuilder {
    scenario: Scenario,
}

impl ScenarioBuilder {
    /// Absolute start instant.
    pub fn start(mut self, at: Timestamp) -> Self {
        self.scenario.start = Some(at);
        self
    }

    /// Start = bind time + `ms` (negative: the timeline is already in the past).
    pub fn start_offset_ms(mut self, ms: i64) -> Self {
        self.scenario.start_offset_ms = ms;
        self
    }

    /// `eventTriggerTime` - `timestamp`, ms (default 381).
    pub fn trigger_lag_ms(mut self, ms: i64) -> Self {
        self.scenario.trigger_lag_ms = ms;
        self
    }

    /// First `thisId` per server (default 30000).
    pub fn first_id(mut self, id: u64) -> Self {
        self.scenario.first_id = id;
        self
    }

    /// STOP `classifiedObjects` (default the START's).
    pub fn stop_objects(mut self, s: StopObjects) -> Self {
        self.scenario.stop_objects = s;
        self
    }

    /// Where duplicate STOP copies are listed, ms after the original (default 60000).
    pub fn duplicate_shift_ms(mut self, ms: i64) -> Self {
        self.scenario.duplicate_shift_ms = ms;
        self
    }

    /// The site of `GET /sites`.
    pub fn site(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.scenario.site = ServerSpec { id: id.into(), name: name.into() };
        self
    }

    /// Add a server.
    pub fn server(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.scenario.servers.push(ServerSpec { id: id.into(), name: name.into() });
        self
    }

    /// Add a connected camera.
    pub fn camera(mut self, id: impl Into<String>, name: impl Into<String>, server_id: impl Into<String>) -> Self {
        self.scenario.cameras.push(CameraSpec {
            id: id.into(),
            name: name.into(),
            server_id: server_id.into(),
            connected: true,
        });
        self
    }

    /// Add a camera described in full (e.g. disconnected).
    pub fn camera_spec(mut self, camera: CameraSpec) -> Self {
        self.scenario.cameras.push(camera);
        self
    }

    /// Add a rule that counts for no zone.
    pub fn rule(
        mut self,
        camera_id: impl Into<String>,
        name: impl Into<String>,
        area: impl Into<String>,
        activity: impl Into<String>,
    ) -> Self {
        self.scenario.rules.push(RuleSpec {
            camera_id: camera_id.into(),
            name: name.into(),
            area: area.into(),
            activity: activity.into(),
            subclass: person(),
            zone: None,
        });
        self
    }

    /// Add a counting rule for `zone` (entries with [`OBJECT_COUNTING_ENTER`], exits with
    /// [`OBJECT_COUNTING_EXIT`]).
    pub fn zone_rule(
        mut self,
        camera_id: impl Into<String>,
        name: impl Into<String>,
        area: impl Into<String>,
        activity: impl Into<String>,
        zone: impl Into<String>,
    ) -> Self {
        self.scenario.rules.push(RuleSpec {
            camera_id: camera_id.into(),
            name: name.into(),
            area: area.into(),
            activity: activity.into(),
            subclass: person(),
            zone: Some(zone.into()),
        });
        self
    }

    /// Add a rule described in full.
    pub fn rule_spec(mut self, rule: RuleSpec) -> Self {
        self.scenario.rules.push(rule);
        self
    }

    /// One detection of `rule` whose STOP is at `at_ms` after the start.
    pub fn occurrence(self, rule: usize, at_ms: i64) -> Self {
        self.occurrence_spec(Occurrence {
            rule,
            at_ms,
            dwell_ms: default_dwell(),
            delay_ms: 0,
            count: 1,
            duplicate: false,
        })
    }

    /// `count` detections of `rule` with identical START and STOP timestamps.
    pub fn burst(self, rule: usize, at_ms: i64, count: u32) -> Self {
        self.occurrence_spec(Occurrence {
            rule,
            at_ms,
            dwell_ms: default_dwell(),
            delay_ms: 0,
            count,
            duplicate: false,
        })
    }

    /// One detection that exists only `delay_ms` after its timestamps (a late event).
    pub fn late(self, rule: usize, at_ms: i64, delay_ms: u64) -> Self {
        self.occurrence_spec(Occurrence {
            rule,
            at_ms,
            dwell_ms: default_dwell(),
            delay_ms,
            count: 1,
            duplicate: false,
        })
    }

    /// One detection whose STOP is delivered twice (see [`Occurrence::duplicate`]).
    pub fn duplicated(self, rule: usize, at_ms: i64) -> Self {
        self.occurrence_spec(Occurrence {
            rule,
            at_ms,
            dwell_ms: default_dwell(),
            delay_ms: 0,
            count: 1,
            duplicate: true,
        })
    }

    /// Add a timeline entry described in full.
    pub fn occurrence_spec(mut self, o: Occurrence) -> Self {
        self.scenario.timeline.push(o);
        self
    }

    /// Check and finish.
    pub fn build(self) -> Result<Scenario, ScenarioError> {
        self.scenario.validate()?;
        Ok(self.scenario)
    }
}

/// The known truth of a scenario ([`Scenario::truth`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Truth {
    /// Per rule, in [`Scenario::rules`] order.
    pub rules: Vec<RuleTruth>,
    /// Per zone, by name.
    pub zones: Vec<ZoneTruth>,
    /// Unique START events.
    pub starts: u64,
    /// Unique STOP events.
    pub stops: u64,
    /// Extra STOP copies delivered ([`Occurrence::duplicate`]).
    pub duplicate_copies: u64,
    /// STOP events delivered late (delay > 0).
    pub late_stops: u64,
    /// Unique events (START + STOP) per server id.
    pub events_by_server: BTreeMap<String, u64>,
    /// The most STOP events one server has at one identical timestamp.
    pub largest_equal_timestamp_stops: u64,
}

/// Truth for one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleTruth {
    /// Index in [`Scenario::rules`].
    pub rule: usize,
    /// Its camera.
    pub camera_id: String,
    /// Its camera's server.
    pub server_id: String,
    /// `analyticEventName` as sent.
    pub name: String,
    /// [`normalize_name`] of it.
    pub normalized_name: String,
    /// `area` as sent.
    pub area: String,
    /// `activity`.
    pub activity: String,
    /// Zone it counts for, if any.
    pub zone: Option<String>,
    /// Unique STOP events.
    pub stops: u64,
}

/// Truth for one zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ZoneTruth {
    /// Zone name.
    pub zone: String,
    /// Normalised `analyticEventName`s of its entry rules.
    pub entry_names: Vec<String>,
    /// Normalised `analyticEventName`s of its exit rules.
    pub exit_names: Vec<String>,
    /// Normalised `area`s of its rules.
    pub areas: Vec<String>,
    /// STOP events of its entry rules.
    pub entries: u64,
    /// STOP events of its exit rules.
    pub exits: u64,
}

impl ZoneTruth {
    /// Entries - exits (never negative for [`Scenario::counting`] scenarios).
    pub fn net(&self) -> i64 {
        self.entries as i64 - self.exits as i64
    }
}

impl Truth {
    /// A zone by name.
    pub fn zone(&self, name: &str) -> Option<&ZoneTruth> {
        self.zones.iter().find(|z| z.zone == name)
    }

    /// Unique STOP events per normalised `analyticEventName`.
    pub fn stops_by_name(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for r in &self.rules {
            *m.entry(r.normalized_name.clone()).or_default() += r.stops;
        }
        m
    }

    /// Unique STOP events per camera id.
    pub fn stops_by_camera(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for r in &self.rules {
            *m.entry(r.camera_id.clone()).or_default() += r.stops;
        }
        m
    }
}

/// Parameters of [`Scenario::counting`]. `Default` is a small live workload (100 entries, 90
/// exits, 2 zones, 4 cameras, 2 servers over 60 s from the bind time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountingSpec {
    /// Entry detections (STOP events of entry rules).
    pub entries: u64,
    /// Exit detections; at most `entries`.
    pub exits: u64,
    /// Zones (named `PARQUEADERO NORTE`, `PARQUEADERO SUR`, `CAMPINSITO`, then `ZONA <n>`).
    pub zones: usize,
    /// Counting cameras (at least `zones`); camera `i` serves zone `i % zones`, on server
    /// `(i / zones) % servers`, and has one entry and one exit rule.
    pub cameras: usize,
    /// Servers.
    pub servers: usize,
    /// Extra disconnected cameras without rules.
    pub disconnected_cameras: usize,
    /// Absolute start (else bind time + `start_offset_ms`).
    pub start: Option<Timestamp>,
    /// Start relative to the bind time, ms.
    pub start_offset_ms: i64,
    /// STOP timestamps are spread over `[0, span_ms)` after the start.
    pub span_ms: u64,
    /// RNG seed (names, ids, times, fault picks).
    pub seed: u64,
    /// Fraction of exits delivered `late_delay_ms` late.
    pub late_fraction: f64,
    /// Delay of late exits, ms.
    pub late_delay_ms: u64,
    /// Fraction of STOP events delivered twice.
    pub duplicate_fraction: f64,
    /// Where duplicate copies are listed, ms after the original.
    pub duplicate_shift_ms: i64,
    /// When > 1: this many entries of the first zone, all on cameras of the first server,
    /// share one START and one STOP timestamp (fewer if the zone has fewer entries there).
    /// Use the client's page size (or one more) to put a page boundary inside the burst.
    pub equal_timestamp_burst: u32,
    /// Detections of rules that count for no zone (presence rules, and a vehicle counting rule
    /// with an unrelated name and area).
    pub noise: u64,
    /// `classifiedObjects[].subclass` of counting detections.
    pub subclass: String,
}

impl Default for CountingSpec {
    fn default() -> Self {
        CountingSpec {
            entries: 100,
            exits: 90,
            zones: 2,
            cameras: 4,
            servers: 2,
            disconnected_cameras: 0,
            start: None,
            start_offset_ms: 0,
            span_ms: 60_000,
            seed: 1,
            late_fraction: 0.0,
            late_delay_ms: 30_000,
            duplicate_fraction: 0.0,
            duplicate_shift_ms: 60_000,
            equal_timestamp_burst: 0,
            noise: 0,
            subclass: "PERSON".into(),
        }
    }
}

const ZONE_NAMES: [&str; 3] = ["PARQUEADERO NORTE", "PARQUEADERO SUR", "CAMPINSITO"];

/// Zone `z`'s canonical name.
fn zone_name(z: usize) -> String {
    ZONE_NAMES.get(z).map(|s| s.to_string()).unwrap_or_else(|| format!("ZONA {}", z + 1))
}

/// A spelling of `canonical` a person might type: words in random case styles, joined by 1-3
/// spaces, with 0-2 spaces around. Always normalises back to `canonical`.
fn messy(rng: &mut StdRng, canonical: &str) -> String {
    let words: Vec<String> = canonical
        .split_whitespace()
        .map(|w| match rng.random_range(0..4) {
            0 => w.to_uppercase(),
            1 => w.to_lowercase(),
            2 => {
                let lower = w.to_lowercase();
                let mut c = lower.chars();
                c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
            }
            _ => w
                .chars()
                .map(|c| if rng.random_bool(0.5) { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() })
                .collect(),
        })
        .collect();
    let mut out = " ".repeat(rng.random_range(0..3));
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(rng.random_range(1..4)));
        }
        out.push_str(w);
    }
    out.push_str(&" ".repeat(rng.random_range(0..3)));
    out
}

fn b64url(rng: &mut StdRng, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rng.fill(&mut buf[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

fn counting(spec: &CountingSpec) -> Result<Scenario, ScenarioError> {
    let bad = |m: &str| Err(ScenarioError::Invalid(format!("counting: {m}")));
    if spec.zones == 0 || spec.servers == 0 {
        return bad("zones and servers must be at least 1");
    }
    if spec.cameras < spec.zones {
        return bad("cameras must be at least zones");
    }
    if spec.exits > spec.entries {
        return bad("exits must not exceed entries (zone counts would go below 0)");
    }
    if !(0.0..=1.0).contains(&spec.late_fraction) || !(0.0..=1.0).contains(&spec.duplicate_fraction) {
        return bad("fractions must be within 0..=1");
    }
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut s = Scenario {
        start: spec.start,
        start_offset_ms: spec.start_offset_ms,
        duplicate_shift_ms: spec.duplicate_shift_ms,
        ..Scenario::default()
    };
    for i in 0..spec.servers {
        s.servers.push(ServerSpec { id: b64url(&mut rng, 16), name: format!("ACC-SIM-{}", i + 1) });
    }
    // Counting cameras, each with an entry rule (2i) and an exit rule (2i + 1).
    for i in 0..spec.cameras {
        let zone = i % spec.zones;
        let server = (i / spec.zones) % spec.servers;
        let id = b64url(&mut rng, 43);
        s.cameras.push(CameraSpec {
            id: id.clone(),
            name: format!("Camara {:02} {}", i + 1, zone_name(zone).to_lowercase()),
            server_id: s.servers[server].id.clone(),
            connected: true,
        });
        for (verb, activity) in [("ENTRADA", OBJECT_COUNTING_ENTER), ("SALIDA", OBJECT_COUNTING_EXIT)] {
            let name = messy(&mut rng, &format!("AFORO {verb} {}", zone_name(zone)));
            let area = messy(&mut rng, &zone_name(zone));
            s.rules.push(RuleSpec {
                camera_id: id.clone(),
                name,
                area,
                activity: activity.into(),
                subclass: spec.subclass.clone(),
                zone: Some(zone_name(zone)),
            });
        }
    }
    for i in 0..spec.disconnected_cameras {
        let server = i % spec.servers;
        s.cameras.push(CameraSpec {
            id: b64url(&mut rng, 43),
            name: format!("Camara fuera de linea {:02}", i + 1),
            server_id: s.servers[server].id.clone(),
            connected: false,
        });
    }
    let noise_rules = if spec.noise > 0 {
        let first = s.rules.len();
        for i in 0..spec.cameras.min(4) {
            let camera_id = s.cameras[i].id.clone();
            s.rules.push(RuleSpec {
                camera_id: camera_id.clone(),
                name: format!("Presencia  Puerta {}", i + 1),
                area: String::new(),
                activity: OBJECT_PRESENT.into(),
                subclass: spec.subclass.clone(),
                zone: None,
            });
            s.rules.push(RuleSpec {
                camera_id,
                name: format!("Conteo Vehicular Acceso {}", i + 1),
                area: "Acceso vehicular".into(),
                activity: OBJECT_COUNTING_ENTER.into(),
                subclass: "VEHICLE_CAR".into(),
                zone: None,
            });
        }
        first..s.rules.len()
    } else {
        0..0
    };

    let span = spec.span_ms.max(1) as i64;
    let zone_cameras: Vec<Vec<usize>> =
        (0..spec.zones).map(|z| (0..spec.cameras).filter(|i| i % spec.zones == z).collect()).collect();
    let zones = spec.zones as u64;
    for z in 0..spec.zones {
        let zi = z as u64;
        let mut e = spec.entries / zones + u64::from(zi < spec.entries % zones);
        let mut x = spec.exits / zones + u64::from(zi < spec.exits % zones);
        let n = (e + x) as usize;
        let mut times: Vec<i64> = (0..n).map(|_| rng.random_range(0..span)).collect();
        times.sort_unstable();
        let mut occupancy = 0u64;
        for at_ms in times {
            // Exit only when someone is inside; invariant: x <= occupancy + e.
            let exit = e == 0 || (occupancy > 0 && x > 0 && rng.random_range(0..e + x) < x);
            let camera = zone_cameras[z][rng.random_range(0..zone_cameras[z].len())];
            let dwell_ms = rng.random_range(200..2000);
            let (rule, delay_ms) = if exit {
                x -= 1;
                occupancy -= 1;
                let late = spec.late_fraction > 0.0 && rng.random_bool(spec.late_fraction);
                (2 * camera + 1, if late { spec.late_delay_ms } else { 0 })
            } else {
                e -= 1;
                occupancy += 1;
                (2 * camera, 0)
            };
            let duplicate = spec.duplicate_fraction > 0.0 && rng.random_bool(spec.duplicate_fraction);
            s.timeline.push(Occurrence { rule, at_ms, dwell_ms, delay_ms, count: 1, duplicate });
        }
    }
    if spec.equal_timestamp_burst > 1 {
        // Move later entries of zone 0 on server 0 back to the first one's instants: moving an
        // entry earlier can only raise the running count, so it stays >= 0.
        let server0 = &s.servers[0].id;
        let mut picked: Vec<usize> = (0..s.timeline.len())
            .filter(|&i| {
                let r = &s.rules[s.timeline[i].rule];
                r.activity == OBJECT_COUNTING_ENTER
                    && r.zone.as_deref() == Some(zone_name(0).as_str())
                    && s.cameras.iter().any(|c| c.id == r.camera_id && &c.server_id == server0)
            })
            .collect();
        picked.sort_by_key(|&i| s.timeline[i].at_ms);
        picked.truncate(spec.equal_timestamp_burst as usize);
        if let Some(&first) = picked.first() {
            let (at_ms, dwell_ms) = (s.timeline[first].at_ms, s.timeline[first].dwell_ms);
            for &i in &picked {
                s.timeline[i].at_ms = at_ms;
                s.timeline[i].dwell_ms = dwell_ms;
            }
        }
    }
    for _ in 0..spec.noise {
        let rule = noise_rules.start + rng.random_range(0..noise_rules.len());
        let at_ms = rng.random_range(0..span);
        s.timeline.push(Occurrence {
            rule,
            at_ms,
            dwell_ms: rng.random_range(200..5000),
            delay_ms: 0,
            count: 1,
            duplicate: false,
        });
    }
    s.timeline.sort_by_key(|o| o.at_ms);
    s.validate()?;
    Ok(s)
}
