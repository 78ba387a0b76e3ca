//! Alarm-status posts: `alarmStatusInfo/<xxxAlarm>` = `true`/`false`, one start/stop event
//! per alarm element and rule id.
//!
//! IPC: `<vehiceAlarm type="boolean" id="1">true</vehiceAlarm>`, time in `dataTime`.
//! NVR: `<perimeterAlarm><item id="1">true</item></perimeterAlarm>`, time in `currentTime`.

use camgate_core::{Kind, State};
use serde_json::Value;

use super::fields::{self, KeyParts};
use super::json;
use super::xml::El;
use super::{Common, Parsed};

/// Most events read from one alarm-status post (devices send one; the rest stay in `data`).
pub(super) const MAX_STATUS_EVENTS: usize = 256;

/// While the body size times the number of events stays under this, every event carries the
/// whole payload in `data`. Beyond it (an abnormal post) only the first one does and the
/// others carry their own alarm entry, so memory stays linear in the body size.
const FULL_DATA_BUDGET: usize = 256 * 1024;

/// camgate's kind for an alarm element name (case-insensitive).
fn kind(name: &str) -> Kind {
    match name.to_ascii_lowercase().as_str() {
        "vehicealarm" | "vehiclealarm" => Kind::Plate,
        "vfdalarm" | "vfdmatchalarm" => Kind::Face,
        "perimeteralarm" => Kind::Intrusion,
        "tripwirealarm" => Kind::LineCrossing,
        "passlinealarm" | "trafficalarm" => Kind::Counting,
        "motionalarm" => Kind::Motion,
        "sensoralarm" => Kind::AlarmInput,
        "chlofflinealarm" => Kind::VideoLoss,
        "avdalarm" => Kind::Tamper,
        "aoientryalarm" => Kind::RegionEntry,
        "aoileavealarm" => Kind::RegionExit,
        "loiteralarm" => Kind::Loitering,
        "pvdalarm" => Kind::Parking,
        _ => Kind::Other,
    }
}

/// `true` → start, `false` → stop; anything else is a state report.
fn state(value: &str) -> State {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => State::Start,
        "false" | "0" | "off" | "no" => State::Stop,
        _ => State::State,
    }
}

/// `{"config": {"alarmStatusInfo": {name: entry}}}`: the event's own part of the payload.
fn own_entry(root: El<'_, '_>, alarm: El<'_, '_>, item: Option<El<'_, '_>>) -> Value {
    let entry = match item {
        None => json::value(alarm),
        Some(item) => {
            let mut m = serde_json::Map::new();
            m.insert(item.name().to_owned(), json::value(item));
            Value::Object(m)
        }
    };
    let mut info = serde_json::Map::new();
    info.insert(alarm.name().to_owned(), entry);
    let mut config = serde_json::Map::new();
    config.insert("alarmStatusInfo".to_owned(), Value::Object(info));
    let mut doc = serde_json::Map::new();
    doc.insert(root.name().to_owned(), Value::Object(config));
    Value::Object(doc)
}

/// One event per alarm element (IPC) or per `item` of an alarm element (NVR). An empty
/// list gives no events.
pub(super) fn parse(root: El<'_, '_>, info: El<'_, '_>, common: Common<'_>, body_len: usize) -> Vec<Parsed> {
    let mut entries = Vec::new();
    'outer: for alarm in info.children() {
        if alarm.has_children() {
            for item in alarm.children() {
                if entries.len() >= MAX_STATUS_EVENTS {
                    break 'outer;
                }
                entries.push((alarm, Some(item)));
            }
        } else {
            if entries.len() >= MAX_STATUS_EVENTS {
                break;
            }
            entries.push((alarm, None));
        }
    }
    let all_full = body_len.saturating_mul(entries.len()) <= FULL_DATA_BUDGET;
    let mut out = Vec::with_capacity(entries.len());
    for (n, (alarm, item)) in entries.into_iter().enumerate() {
        let code = alarm.name();
        let entry = item.unwrap_or(alarm);
        let rule = entry.attr("id").or_else(|| entry.child_value("id"));
        let state = state(entry.text());
        let key = fields::key(&KeyParts {
            device: &common.device,
            code,
            event_ids: &[],
            target_ids: &[],
            rule,
            state: Some(state),
            time: common.time.raw,
        });
        out.push(Parsed {
            family: common.family,
            config_version: common.config_version.clone(),
            category: "status",
            kind: kind(code),
            code: code.to_owned(),
            state: Some(state),
            channel: common.device.channel,
            rule: rule.map(str::to_owned),
            occurred_at: common.time.at,
            time_error: common.time.error.clone(),
            event_id: None,
            plate: None,
            face: None,
            objects: Vec::new(),
            counts: None,
            device: common.device.clone(),
            data: if all_full || n == 0 { common.data.clone() } else { own_entry(root, alarm, item) },
            images: Vec::new(),
            image_errors: Vec::new(),
            key,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_states() {
        assert_eq!(kind("vehiceAlarm"), Kind::Plate);
        assert_eq!(kind("VFDAlarm"), Kind::Face);
        assert_eq!(kind("vfdAlarm"), Kind::Face);
        assert_eq!(kind("perimeterAlarm"), Kind::Intrusion);
        assert_eq!(kind("tripwireAlarm"), Kind::LineCrossing);
        assert_eq!(kind("passlineAlarm"), Kind::Counting);
        assert_eq!(kind("motionAlarm"), Kind::Motion);
        assert_eq!(kind("sensorAlarm"), Kind::AlarmInput);
        assert_eq!(kind("chlOfflineAlarm"), Kind::VideoLoss);
        assert_eq!(kind("oscAlarm"), Kind::Other);
        assert_eq!(kind("somethingAlarm"), Kind::Other);
        assert_eq!(state("true"), State::Start);
        assert_eq!(state(" FALSE "), State::Stop);
        assert_eq!(state("maybe"), State::State);
    }
}
