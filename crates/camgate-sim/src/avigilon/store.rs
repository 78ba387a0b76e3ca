//! The events of a scenario, materialised at bind time: JSON written once per event, one list
//! per server sorted by listing timestamp, searched by binary search plus a scan.

use std::collections::HashMap;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::scenario::{Scenario, StopObjects};

/// `DEVICE_ANALYTICS_START`.
pub const TOPIC_START: &str = "DEVICE_ANALYTICS_START";
/// `DEVICE_ANALYTICS_STOP`.
pub const TOPIC_STOP: &str = "DEVICE_ANALYTICS_STOP";

/// One listed event (an original, or a duplicate copy).
#[derive(Debug)]
pub(crate) struct Stored {
    /// Where it is listed (its `timestamp`; later for a duplicate copy), Unix ms.
    pub key_ms: i64,
    /// From when searches return it, Unix ms of server wall-clock time.
    pub visible_ms: i64,
    /// START only: when its STOP becomes visible (for `ACTIVE`); `i64::MAX` otherwise.
    pub stop_visible_ms: i64,
    /// Camera index in the scenario.
    pub camera: u32,
    pub stop: bool,
    pub this_id: u64,
    pub duplicate: bool,
    pub json: Box<str>,
}

#[derive(Debug, Default)]
pub(crate) struct ServerEvents {
    pub events: Vec<Stored>,
}

#[derive(Debug)]
pub(crate) struct Store {
    pub servers: Vec<ServerEvents>,
    /// When the last event becomes visible (Unix ms).
    pub last_visible_ms: i64,
}

/// Format Unix ms as the events do: `2022-01-17T09:35:55.048Z`.
pub fn format_ms(ms: i64) -> String {
    let ts = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 1_000_000
    )
}

/// Parse `from`/`to`: ISO 8601 with or without fractional seconds, with `Z` or an offset, or
/// without a zone (taken as UTC). Nanoseconds since the epoch.
pub(crate) fn parse_time(s: &str) -> Option<i128> {
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts.as_nanosecond());
    }
    let dt: jiff::civil::DateTime = s.parse().ok()?;
    // Only full date-times: a bare date also parses as a DateTime.
    if !s.contains('T') && !s.contains(' ') {
        return None;
    }
    dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp().as_nanosecond())
}

struct Pending {
    server: usize,
    camera: u32,
    rule: usize,
    object_id: u64,
    start_ms: i64,
    stop_ms: i64,
    delay_ms: i64,
    duplicate: bool,
}

impl Store {
    /// Materialise `scenario` with its start at `start_ms` (Unix ms).
    pub fn build(scenario: &Scenario, start_ms: i64) -> Store {
        let server_index: HashMap<&str, usize> =
            scenario.servers.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        let camera_index: HashMap<&str, usize> =
            scenario.cameras.iter().enumerate().map(|(i, c)| (c.id.as_str(), i)).collect();
        let mut per_server: Vec<Vec<Pending>> = (0..scenario.servers.len()).map(|_| Vec::new()).collect();
        let mut object_id = scenario.first_object_id;
        for o in &scenario.timeline {
            let rule = &scenario.rules[o.rule];
            let camera = camera_index[rule.camera_id.as_str()];
            let server = server_index[scenario.cameras[camera].server_id.as_str()];
            let stop_ms = start_ms + o.at_ms;
            for _ in 0..o.count {
                per_server[server].push(Pending {
                    server,
                    camera: camera as u32,
                    rule: o.rule,
                    object_id,
                    start_ms: stop_ms - o.dwell_ms as i64,
                    stop_ms,
                    delay_ms: o.delay_ms as i64,
                    duplicate: o.duplicate,
                });
                object_id += 1;
            }
        }
        let mut last_visible_ms = i64::MIN;
        let servers = per_server
            .into_iter()
            .map(|pending| {
                // thisId follows the order events become visible (as a server numbers events
                // as it records them); ties by timestamp, then START before STOP.
                let mut order: Vec<(i64, i64, usize, bool)> = Vec::with_capacity(pending.len() * 2);
                for (i, p) in pending.iter().enumerate() {
                    order.push((p.start_ms + p.delay_ms, p.start_ms, i, false));
                    order.push((p.stop_ms + p.delay_ms, p.stop_ms, i, true));
                }
                order.sort_unstable_by_key(|&(v, t, i, stop)| (v, t, stop, i));
                let mut ids = vec![(0u64, 0u64); pending.len()];
                for (n, &(_, _, i, stop)) in order.iter().enumerate() {
                    let id = scenario.first_id + n as u64;
                    if stop {
                        ids[i].1 = id;
                    } else {
                        ids[i].0 = id;
                    }
                }
                let mut events = Vec::with_capacity(order.len() + pending.iter().filter(|p| p.duplicate).count());
                for (i, p) in pending.iter().enumerate() {
                    let (start_id, stop_id) = ids[i];
                    let start_json = event_json(scenario, p, false, start_id, -1);
                    let stop_json = event_json(scenario, p, true, stop_id, start_id as i64);
                    last_visible_ms = last_visible_ms.max(p.stop_ms + p.delay_ms);
                    events.push(Stored {
                        key_ms: p.start_ms,
                        visible_ms: p.start_ms + p.delay_ms,
                        stop_visible_ms: p.stop_ms + p.delay_ms,
                        camera: p.camera,
                        stop: false,
                        this_id: start_id,
                        duplicate: false,
                        json: start_json,
                    });
                    if p.duplicate {
                        let shift = scenario.duplicate_shift_ms;
                        last_visible_ms = last_visible_ms.max(p.stop_ms + p.delay_ms + shift);
                        events.push(Stored {
                            key_ms: p.stop_ms + shift,
                            visible_ms: p.stop_ms + p.delay_ms + shift,
                            stop_visible_ms: i64::MAX,
                            camera: p.camera,
                            stop: true,
                            this_id: stop_id,
                            duplicate: true,
                            json: stop_json.clone(),
                        });
                    }
                    events.push(Stored {
                        key_ms: p.stop_ms,
                        visible_ms: p.stop_ms + p.delay_ms,
                        stop_visible_ms: i64::MAX,
                        camera: p.camera,
                        stop: true,
                        this_id: stop_id,
                        duplicate: false,
                        json: stop_json,
                    });
                }
                events.sort_unstable_by_key(|e| (e.key_ms, e.this_id, e.duplicate));
                ServerEvents { events }
            })
            .collect();
        Store { servers, last_visible_ms }
    }
}

fn event_json(scenario: &Scenario, p: &Pending, stop: bool, this_id: u64, linked: i64) -> Box<str> {
    let rule = &scenario.rules[p.rule];
    let camera = &scenario.cameras[p.camera as usize];
    let server = &scenario.servers[p.server];
    let ts = if stop { p.stop_ms } else { p.start_ms };
    let mut v = json!({
        "targetIdsDeprecated": [],
        "analyticEventName": rule.name,
        "area": rule.area,
        "activity": rule.activity,
        "eventTriggerTime": format_ms(ts + scenario.trigger_lag_ms),
        "cameraId": camera.id,
        "thisId": this_id.to_string(),
        "linkedEventId": linked.to_string(),
        "timestamp": format_ms(ts),
        "originatingEventId": this_id.to_string(),
        "originatingServerName": server.name,
        "location": "Unknown",
        "type": if stop { TOPIC_STOP } else { TOPIC_START },
        "originatingServerId": server.id,
        "cameraIds": [],
        "entityIds": [],
    });
    let objects = json!([{"subclass": rule.subclass, "objectId": p.object_id}]);
    let objects = match (stop, scenario.stop_objects) {
        (false, _) | (true, StopObjects::Same) => Some(objects),
        (true, StopObjects::Empty) => Some(json!([])),
        (true, StopObjects::Absent) => None,
    };
    if let (Some(objects), Value::Object(m)) = (objects, &mut v) {
        m.insert("classifiedObjects".into(), objects);
    }
    v.to_string().into_boxed_str()
}

/// A search's filter.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub from_ns: i128,
    pub to_ns: i128,
    pub from_inclusive: bool,
    pub to_inclusive: bool,
    /// `None` = every topic.
    pub topics: Option<Topics>,
    /// `None` = every camera; else camera indices (sorted).
    pub devices: Option<Vec<u32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Topics {
    pub start: bool,
    pub stop: bool,
}

impl Filter {
    fn after_from(&self, key_ms: i64) -> bool {
        let ns = i128::from(key_ms) * 1_000_000;
        if self.from_inclusive { ns >= self.from_ns } else { ns > self.from_ns }
    }

    fn before_to(&self, key_ms: i64) -> bool {
        let ns = i128::from(key_ms) * 1_000_000;
        if self.to_inclusive { ns <= self.to_ns } else { ns < self.to_ns }
    }

    fn matches(&self, e: &Stored, now_ms: i64) -> bool {
        e.visible_ms <= now_ms
            && self.topics.is_none_or(|t| if e.stop { t.stop } else { t.start })
            && self.devices.as_ref().is_none_or(|d| d.binary_search(&e.camera).is_ok())
    }
}

/// One page: indices into the server's list, and where the next page starts if more match.
#[derive(Debug)]
pub(crate) struct Page {
    pub hits: Vec<usize>,
    pub next: Option<usize>,
}

impl ServerEvents {
    /// First index of the window.
    pub fn window_start(&self, filter: &Filter) -> usize {
        self.events.partition_point(|e| !filter.after_from(e.key_ms))
    }

    /// Up to `limit` matches from index `from`, and whether another one follows.
    pub fn page(&self, filter: &Filter, from: usize, limit: usize, now_ms: i64) -> Page {
        let mut hits = Vec::with_capacity(limit.min(4096));
        let mut next = None;
        for (i, e) in self.events.iter().enumerate().skip(from) {
            if !filter.before_to(e.key_ms) {
                break;
            }
            if !filter.matches(e, now_ms) {
                continue;
            }
            if hits.len() == limit {
                next = hits.last().map(|&l: &usize| l + 1);
                break;
            }
            hits.push(i);
        }
        Page { hits, next }
    }

    /// START events visible now whose STOP is not (the `ACTIVE` query).
    pub fn active(&self, filter: &Filter, limit: usize, now_ms: i64) -> Vec<usize> {
        self.events
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.stop && e.visible_ms <= now_ms && e.stop_visible_ms > now_ms)
            .filter(|(_, e)| filter.devices.as_ref().is_none_or(|d| d.binary_search(&e.camera).is_ok()))
            .filter(|_| filter.topics.is_none_or(|t| t.start))
            .map(|(i, _)| i)
            .take(limit)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(format_ms(1_642_412_155_048), "2022-01-17T09:35:55.048Z");
        let base = 1_580_151_600_000i128 * 1_000_000;
        assert_eq!(parse_time("2020-01-27T19:00:00.000Z"), Some(base));
        assert_eq!(parse_time("2020-01-27T19:00:00Z"), Some(base));
        assert_eq!(parse_time("2020-01-27T19:00:00.000001Z"), Some(base + 1000));
        assert_eq!(parse_time("2020-01-27T14:00:00-05:00"), Some(base));
        assert_eq!(parse_time("2020-01-27T19:00:00.000000"), Some(base));
        assert_eq!(parse_time("2020-01-27"), None);
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2020-01-27T19:00:00 00:00"), None);
    }
}
