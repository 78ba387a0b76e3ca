//! Smart events (`smartType`), both families, read by layout rather than by family: the
//! same code path finds IPC `perimeter`/`tripwire`/`listInfo` blocks and NVR
//! `eventInfo`/`targetListInfo`/`licensePlateListInfo`/`faceListInfo` blocks.

use camgate_core::{Counts, Kind, State};

use super::fields::{self, KeyParts, number, rect, smart_status, target_kind, uint, unit_confidence};
use super::images::Images;
use super::lpr::{self, SCALE};
use super::targets::Targets;
use super::xml::El;
use super::{Common, ParseOptions, Parsed};

/// One row of the event table: device code, camgate kind, the reference's category, and
/// whether it is an IPC (config 1.x) code.
struct Code {
    code: &'static str,
    kind: Kind,
    category: &'static str,
    ipc: bool,
}

const fn code(code: &'static str, kind: Kind, category: &'static str, ipc: bool) -> Code {
    Code { code, kind, category, ipc }
}

/// §3.1 of the protocol notes. `PEA` is intrusion or line crossing depending on its block.
const CODES: [Code; 20] = [
    code("VEHICE", Kind::Plate, "lpr", true),
    code("VEHICLE", Kind::Plate, "lpr", true),
    code("VFD", Kind::Face, "face", true),
    code("VFD_MATCH", Kind::Face, "face", true),
    code("PEA", Kind::Intrusion, "intrusion", true),
    code("AOIENTRY", Kind::RegionEntry, "intrusion", true),
    code("AOILEAVE", Kind::RegionExit, "intrusion", true),
    code("LOITER", Kind::Loitering, "intrusion", true),
    code("PVD", Kind::Parking, "intrusion", true),
    code("PASSLINECOUNT", Kind::Counting, "counting", true),
    code("TRAFFIC", Kind::Counting, "counting", true),
    code("VSD", Kind::Metadata, "metadata", true),
    code("vehicle", Kind::Plate, "lpr", false),
    code("videoFaceDetect", Kind::Face, "face", false),
    code("regionIntrusion", Kind::Intrusion, "intrusion", false),
    code("lineCrossing", Kind::LineCrossing, "intrusion", false),
    code("targetCountingByLine", Kind::Counting, "counting", false),
    code("targetCountingByArea", Kind::Counting, "counting", false),
    code("videoMetadata", Kind::Metadata, "metadata", false),
    // Described by the reference but without a class: pass-through events.
    code("MOTION", Kind::Motion, "other", true),
];

/// The table row for a `smartType`: an exact match first, else a case-insensitive one.
fn lookup(smart_type: &str) -> Option<&'static Code> {
    let st = smart_type.trim();
    CODES.iter().find(|c| c.code == st).or_else(|| CODES.iter().find(|c| c.code.eq_ignore_ascii_case(st)))
}

/// Whether a `smartType` names an IPC event (for config 2.x bodies without `messageType`,
/// which the reference reads as IPC when the code is an IPC one).
pub(super) fn is_ipc_code(smart_type: &str) -> bool {
    lookup(smart_type).is_some_and(|c| c.ipc)
}

/// Codes the reference implementation or the vendor documents name without a layout of
/// their own: they are events (category `other`) with the kind their name says.
const NAMED: [(&str, Kind); 14] = [
    ("SENSOR", Kind::AlarmInput),
    ("AVD", Kind::Tamper),
    ("OSC", Kind::Other),
    ("CDD", Kind::Other),
    ("EA", Kind::Vehicle),
    ("FALLING", Kind::Other),
    ("CPC", Kind::Counting),
    ("IPD", Kind::Human),
    ("FIRE", Kind::Other),
    ("TEMPERATURE", Kind::Other),
    ("ASD", Kind::Audio),
    ("SMD", Kind::Motion),
    ("CROWDGATHERING", Kind::Other),
    ("MOTOR", Kind::Vehicle),
];

/// Whether camgate knows `smart_type` (from the event table or the named codes); a code in
/// neither is an `unknown-smartType` post, kept as a dead letter.
pub(super) fn is_known(smart_type: &str) -> bool {
    let st = smart_type.trim();
    lookup(st).is_some() || NAMED.iter().any(|(c, _)| c.eq_ignore_ascii_case(st))
}

/// Kind and category of a known `smartType` (and the PEA block present).
fn classify(smart_type: &str, root: El<'_, '_>) -> (Kind, &'static str) {
    match lookup(smart_type) {
        Some(c) if c.code == "PEA" && root.child("perimeter").is_none() && root.child("tripwire").is_some() => {
            (Kind::LineCrossing, c.category)
        }
        Some(c) => (c.kind, c.category),
        None => {
            let st = smart_type.trim();
            let kind = NAMED.iter().find(|(c, _)| c.eq_ignore_ascii_case(st)).map_or(Kind::Other, |(_, k)| *k);
            (kind, "other")
        }
    }
}

/// Root children that are never blocks of event items.
const NOT_EVENT_BLOCKS: [&str; 12] = [
    "types",
    "deviceInfo",
    "listInfo",
    "targetListInfo",
    "faceListInfo",
    "licensePlateListInfo",
    "sourceDataInfo",
    "vsd",
    "traject",
    "alarmStatusInfo",
    "entranceCount",
    "exitCount",
];

/// Event items: `item`s (with an event id, target id, status or rect) of a root block or of
/// a block one level down: `perimeter/perInfo/item`, `tripwire/tripInfo/item`,
/// `eventInfo/item`, and whatever a firmware names its block for other codes.
fn event_items<'d, 'a>(root: El<'d, 'a>) -> Vec<El<'d, 'a>> {
    let mut out = Vec::new();
    let is_event_item =
        |i: &El<'_, '_>| i.is("item") && ["eventId", "targetId", "status", "rect"].iter().any(|n| i.child(n).is_some());
    for block in root.children().filter(|c| c.has_children() && !NOT_EVENT_BLOCKS.iter().any(|n| c.is(n))) {
        out.extend(block.children().filter(is_event_item));
        for inner in block.children().filter(|c| !c.is("item")) {
            out.extend(inner.children().filter(is_event_item));
        }
    }
    out
}

/// A target's type: `targetType`, else the `targetType` of its crop.
fn item_kind(item: El<'_, '_>) -> Option<String> {
    item.child_value("targetType")
        .or_else(|| item.path(&["targetImageData", "targetType"]).and_then(El::value))
        .and_then(target_kind)
}

fn item_confidence(item: El<'_, '_>) -> Option<f64> {
    item.child_value_any(&["confidence", "score"]).and_then(number).and_then(unit_confidence)
}

/// Counters, where a post has any: `entranceCount` / `exitCount` (the statistics shape:
/// numbers, or per-type children that are summed) and `totalCount`.
fn counts(root: El<'_, '_>) -> Option<Counts> {
    let read = |names: &[&str]| -> Option<u64> {
        let el = root.child_any(names)?;
        if el.has_children() {
            el.children().filter_map(|c| c.value().and_then(uint)).try_fold(0u64, u64::checked_add)
        } else {
            el.value().and_then(uint)
        }
    };
    let c = Counts {
        enter: read(&["entranceCount", "enterCount"]),
        exit: read(&["exitCount", "leaveCount"]),
        total: read(&["totalCount"]),
    };
    (!c.is_empty()).then_some(c)
}

/// Width and height of the source picture, when `sourceDataInfo` gives them.
fn frame(source: Option<El<'_, '_>>) -> Option<(f64, f64)> {
    let s = source?;
    let w = s.child_value("width").and_then(number).filter(|v| *v > 0.0)?;
    let h = s.child_value("height").and_then(number).filter(|v| *v > 0.0)?;
    Some((w, h))
}

/// Reads one smart event.
pub(super) fn parse(root: El<'_, '_>, smart_type: &str, common: Common<'_>, opts: &ParseOptions) -> Parsed {
    let (kind, category) = classify(smart_type, root);
    let mut t = Targets::default();
    let mut images = Images::new(opts.max_image_bytes);
    let mut event_ids = Vec::new();
    let mut state = None;
    let mut rule = None;

    for item in event_items(root) {
        if let Some(id) = item.child_value("eventId") {
            event_ids.push(id);
        }
        state = state.or_else(|| item.child_value("status").and_then(smart_status));
        rule = rule.or_else(|| item.child_value_any(&["ruleId", "ruleNo"]));
        let bbox = item.child("rect").and_then(|r| rect(r, SCALE, SCALE));
        t.merge(item.child_value("targetId"), item_kind(item), bbox, item_confidence(item));
    }

    let source = root.child("sourceDataInfo");
    if let Some(s) = source {
        images.add("source", s);
    }
    let list = root.child("listInfo");
    let mut plate = None;
    let mut face = None;
    if let Some(l) = root.child("licensePlateListInfo") {
        plate = lpr::nvr_plate(l, frame(source), &mut t, &mut images);
    } else if kind == Kind::Plate
        && let Some(l) = list
    {
        plate = lpr::ipc_plate(l, images.has_role("source"), &mut t, &mut images);
    }
    if let Some(l) = root.child("faceListInfo") {
        face = lpr::faces(l, &mut t, &mut images);
    } else if kind == Kind::Face
        && let Some(l) = list
    {
        face = lpr::faces(l, &mut t, &mut images);
    }
    let generic_list = list.filter(|_| kind != Kind::Plate && kind != Kind::Face);
    for l in root.children_named("targetListInfo").chain(generic_list) {
        for item in l.children_named("item") {
            let bbox = item.child("rect").and_then(|r| rect(r, SCALE, SCALE));
            t.merge(item.child_value("targetId"), item_kind(item), bbox, item_confidence(item));
            if let Some(img) = item.child("targetImageData") {
                images.add("target", img);
            }
        }
    }
    if let Some(vsd) = root.child("vsd") {
        for c in vsd.children() {
            if c.is("sourceDataInfo") {
                images.add("source", c);
            } else if c.is("targetImageData") {
                images.add("target", c);
            }
        }
    }

    let state = state.unwrap_or(State::Pulse);
    let target_ids = t.ids();
    let key = fields::key(&KeyParts {
        device: &common.device,
        code: smart_type,
        event_ids: &event_ids,
        target_ids: &target_ids,
        rule,
        state: Some(state),
        time: common.time.raw,
    });
    let (images, image_errors) = images.finish();
    Parsed {
        family: common.family,
        config_version: common.config_version,
        category,
        kind,
        code: smart_type.to_owned(),
        state: Some(state),
        channel: common.device.channel,
        rule: rule.map(str::to_owned),
        occurred_at: common.time.at,
        time_error: common.time.error,
        event_id: event_ids.first().map(|s| (*s).to_owned()),
        plate,
        face,
        objects: t.into_objects(),
        counts: counts(root),
        device: common.device,
        data: common.data,
        images,
        image_errors,
        key,
    }
}
