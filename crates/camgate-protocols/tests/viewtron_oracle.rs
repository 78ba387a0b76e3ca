//! Conformance: camgate's Viewtron parser against the reference implementation, run as an oracle.
//!
//! The reference is `viewtron` 1.4.1 from PyPI (`docs/protocols/viewtron.md` §7 of the shared
//! folder). `scripts/python-env` puts it in `<repo>/.venv`, `scripts/viewtron_oracle.py` runs its
//! `viewtron.events._classify_post` (with `TZ=UTC`, §10) over the 18 vendor samples of
//! `<repo>/../shared/samples/viewtron/{ipc-v1x,nvr-v2}` and prints, per file, the class, the
//! reason and every field and getter the reference exposes (§7.6, §7.7). This test parses the
//! same files with `camgate_protocols::viewtron::parse` and compares field by field:
//!
//! * outcome: reference `(None, None)` ↔ `Post::Keepalive`; reference reason `alarmStatus` ↔
//!   `Post::Events` of category `status` (camgate improvement, defect 11 of §7.9: alarm-status
//!   posts are parsed into start/stop events instead of being dropped); reference class ↔ one
//!   event whose `category` is the reference's category;
//! * `alarm_type` ↔ `code`, `ip_cam` ↔ `device.name`, `time_stamp_formatted` ↔ `occurred_at`
//!   (the reference's naive local time under TZ=UTC is a UTC wall-clock time), `config_version`,
//!   `format` ↔ `family`;
//! * LPR: plate number, list/group, direction, confidence, vehicle attributes, NVR plate colour
//!   and car owner ↔ `plate`; NVR face attributes ↔ `face`; NVR device ip/mac/channel ↔ `device`
//!   and `channel`;
//! * images: the reference's source/target image presence ↔ a camgate image (decoded, or reported
//!   in `image_errors`, since the samples carry placeholder words instead of base64).
//!
//! Where camgate deliberately differs from the reference (§7.9), the improved value is asserted
//! and the defect number is named. Then a few fields the reference does not read at all are
//! checked per sample (ids, state, rules, objects, device identity of keepalives).
//!
//! Every mismatch is collected and reported together. Nothing is skipped: a missing shared folder,
//! a failed Python setup or a failing oracle fails the test with the reason.
//!
//! Run alone: `cargo test -p camgate-protocols --test viewtron_oracle -- --nocapture`. The first run
//! needs PyPI to create `.venv`; later runs take well under a second of Python time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::Command;

use camgate_core::{Kind, State};
use camgate_protocols::viewtron::{Device, Family, ParseOptions, Parsed, Post, Reason, parse};
use jiff::Timestamp;
use serde_json::Value;

/// Where the sample subfolders live, relative to `<repo>/../shared`.
const SAMPLE_DIRS: [&str; 2] = ["samples/viewtron/ipc-v1x", "samples/viewtron/nvr-v2"];
const SAMPLE_COUNT: usize = 18;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// `<repo>/../shared`, or a failure that says what is missing.
fn shared_dir(repo: &Path) -> PathBuf {
    let shared = repo.join("../shared");
    let samples = shared.join("samples/viewtron");
    assert!(
        samples.is_dir(),
        "the Viewtron samples are missing: expected {} (the shared folder next to the repository, \
         see docs/protocols/viewtron.md §9). This conformance test cannot run without them.",
        samples.display()
    );
    shared.canonicalize().expect("shared folder")
}

/// Runs `scripts/python-env` and returns the Python it prints on its last line.
fn python(repo: &Path) -> PathBuf {
    let script = repo.join("scripts/python-env");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e} (is bash installed?)", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed ({}); it sets up the reference `viewtron` 1.4.1 in .venv and needs python3 \
         and PyPI on first use.\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        script.display(),
        out.status
    );
    let path = stdout.lines().rev().find(|l| !l.trim().is_empty()).map(|l| PathBuf::from(l.trim()));
    match path {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "{} did not print an existing python path on its last line.\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            script.display()
        ),
    }
}

/// Every `*.xml` sample, sorted.
fn sample_files(shared: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in SAMPLE_DIRS {
        let dir = shared.join(dir);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|e| e == "xml") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert_eq!(
        files.len(),
        SAMPLE_COUNT,
        "expected {SAMPLE_COUNT} Viewtron samples under {}/{{ipc-v1x,nvr-v2}}, found: {files:#?}",
        shared.join("samples/viewtron").display()
    );
    files
}

/// The oracle's object for each file, keyed by path.
fn run_oracle(python: &Path, repo: &Path, files: &[PathBuf]) -> BTreeMap<PathBuf, Value> {
    let script = repo.join("scripts/viewtron_oracle.py");
    let out = Command::new(python)
        .arg(&script)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} {}: {e}", python.display(), script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the oracle {} failed ({}).\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        script.display(),
        out.status
    );
    let mut by_path = BTreeMap::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("oracle printed non-JSON ({e}): {line}"));
        assert_eq!(v["viewtron_version"], "1.4.1", "the oracle must run viewtron 1.4.1: {line}");
        assert!(v.get("error").is_none(), "the reference raised on a sample: {line}");
        let path = PathBuf::from(v["path"].as_str().expect("oracle object without path"));
        by_path.insert(path, v);
    }
    let expected: BTreeSet<_> = files.iter().cloned().collect();
    let got: BTreeSet<_> = by_path.keys().cloned().collect();
    assert_eq!(got, expected, "the oracle did not report exactly the sample files");
    by_path
}

/// Mismatches found in one sample.
struct Report {
    file: String,
    problems: Vec<String>,
}

impl Report {
    /// `camgate` must equal `expected` (the reference value, or the documented improvement).
    fn eq<T: PartialEq + Debug>(&mut self, field: &str, camgate: T, expected: T) {
        if camgate != expected {
            self.problems.push(format!("{}: {field}: expected {expected:?}, camgate {camgate:?}", self.file));
        }
    }

    fn fail(&mut self, what: impl Into<String>) {
        self.problems.push(format!("{}: {}", self.file, what.into()));
    }
}

/// A reference field that must be present (JSON value).
fn field<'a>(r: &'a Value, name: &str) -> &'a Value {
    r.get(name).unwrap_or_else(|| panic!("the oracle has no `{name}` for {}", r["path"]))
}

/// A reference string or null, as the reference holds it.
fn ref_str(r: &Value, name: &str) -> Option<String> {
    field(r, name).as_str().map(str::to_owned)
}

/// A reference string where `""` and the string `"None"` mean "not given": the reference's
/// `str()` of an empty element (§7.9 defect 13). camgate has no value there instead.
fn ref_text(r: &Value, name: &str) -> Option<String> {
    ref_str(r, name).filter(|s| !s.is_empty() && s != "None")
}

fn ref_bool(r: &Value, name: &str) -> bool {
    field(r, name).as_bool().unwrap_or_else(|| panic!("`{name}` is not a boolean in {}", r["path"]))
}

/// The reference's face `glasses`/`mask` string as camgate's `Option<bool>`.
fn yes_no(s: Option<String>) -> Option<bool> {
    match s.as_deref() {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        // `unknown`, empty, absent: not given.
        _ => None,
    }
}

/// The reference's normalised direction (`approach`, `away`; `leave` → `away`) of a camgate value.
fn reference_direction(s: &str) -> Option<&'static str> {
    match s.trim().to_lowercase().as_str() {
        "approach" => Some("approach"),
        "away" | "leave" => Some("away"),
        _ => None,
    }
}

/// The reference's plate-list name (`whiteList`, ...) as camgate's `plate.list` (docs/events.md:
/// `white`, `black`, `temporary`, ...).
fn camgate_list_name(reference: &str) -> String {
    reference.strip_suffix("List").unwrap_or(reference).to_lowercase()
}

/// The text of an element in xmltodict's shape (a string, or an object with `#text`), as both
/// the reference's raw getters and camgate's `data` hold it.
fn xml_text(v: &Value) -> Option<&str> {
    v.as_str().or_else(|| v.get("#text").and_then(Value::as_str))
}

/// The event time the reference printed (`2024-11-19T19:40:34.584193`, naive, UTC under TZ=UTC).
fn reference_instant(r: &Value) -> Timestamp {
    let s = ref_str(r, "time_stamp_formatted").expect("time_stamp_formatted");
    assert!(ref_bool(r, "time_stamp_formatted_is_datetime"), "{}: time is not a datetime", r["path"]);
    format!("{s}Z").parse().unwrap_or_else(|e| panic!("reference time {s:?} does not parse: {e}"))
}

/// The roles of every image camgate found in a post: decoded (`images`) or present but not
/// decodable (`image_errors`, messages `"<role> image in <element> ..."`); the samples carry
/// placeholder words instead of base64, so their images all land in `image_errors`. A message
/// of another shape counts under its whole text, so it never passes for a role by accident.
fn image_roles(p: &Parsed) -> Vec<String> {
    let decoded = p.images.iter().map(|i| i.role.clone());
    let failed =
        p.image_errors.iter().map(|e| e.split_once(" image in <").map_or(e.as_str(), |(role, _)| role).to_owned());
    decoded.chain(failed).collect()
}

/// The `*Base64Data` elements of a sample that carry text: every one is an image camgate must
/// account for (camgate keeps every crop, §7.9 defect 12/14).
fn image_elements(xml: &str) -> usize {
    let mut n = 0;
    for tag in ["<sourceBase64Data", "<targetBase64Data"] {
        let mut rest = xml;
        while let Some(i) = rest.find(tag) {
            rest = &rest[i + tag.len()..];
            let open_end = rest.find('>').expect("tag end");
            let close = rest.find("</").expect("closing tag");
            let content = rest[open_end + 1..close].trim();
            if !content.is_empty() && !rest[..open_end].ends_with('/') && content != "<![CDATA[]]>" {
                n += 1;
            }
        }
    }
    n
}

/// Compare one smart event with the reference object of the same post.
fn compare_event(rep: &mut Report, p: &Parsed, r: &Value, xml: &str) {
    let class = ref_str(r, "class").expect("class");
    let nvr = field(r, "format") == "v2";

    rep.eq("category", p.category, field(r, "category").as_str().expect("category"));
    rep.eq("config_version", p.config_version.clone(), ref_str(r, "config_version"));
    // §7.9 defect 17: `format` reflects the envelope version; for these samples it is also the
    // family.
    rep.eq("family", p.family, if nvr { Family::Nvr } else { Family::Ipc });
    rep.eq("code (alarm_type)", p.code.as_str(), ref_str(r, "alarm_type").unwrap().as_str());
    rep.eq("code (get_alarm_type)", p.code.as_str(), ref_str(r, "get_alarm_type").unwrap().as_str());

    // Device name: IPC `ip_cam` is None when absent (all ipc-v1x samples); NVR falls back to
    // "Unknown Camera", which camgate leaves absent (§7.9 defect 13).
    let name = ref_str(r, "ip_cam").filter(|n| !(nvr && n == "Unknown Camera"));
    rep.eq("device.name (ip_cam)", p.device.name.clone(), name);

    // Time: the same instant, to the microsecond.
    rep.eq("occurred_at (time_stamp_formatted)", p.occurred_at, Some(reference_instant(r)));
    rep.eq("time_error", p.time_error.clone(), None);

    // IPC `get_alarm_types()` / `get_target_types()`: the raw `types` block (xmltodict values).
    // camgate does not model it; it must survive verbatim in `data`.
    for (getter, element) in [("get_alarm_types", "openAlramObj"), ("get_target_types", "targetType")] {
        if let Some(text) = r.get(getter).and_then(xml_text) {
            let kept = p.data.pointer(&format!("/config/types/{element}")).and_then(xml_text);
            rep.eq(&format!("data.config.types.{element} ({getter})"), kept, Some(text));
        }
    }

    // Plate.
    if r.get("plate_number").is_some() {
        compare_plate(rep, p, r);
    } else {
        // §7.9 defect 13: no "<NO PLATE EXISTS>" string on non-LPR events, just no plate.
        rep.eq("get_plate_number", ref_str(r, "get_plate_number").as_deref(), Some("<NO PLATE EXISTS>"));
        rep.eq("plate (non-LPR)", p.plate.as_ref(), None);
    }

    // Face.
    if class == "FaceDetectionV2" {
        let face = p.face.clone().unwrap_or_default();
        rep.eq("face.age (get_face_age)", face.age, ref_text(r, "get_face_age"));
        rep.eq("face.sex (get_face_sex)", face.sex, ref_text(r, "get_face_sex"));
        rep.eq("face.glasses (get_face_glasses)", face.glasses, yes_no(ref_text(r, "get_face_glasses")));
        rep.eq("face.mask (get_face_mask)", face.mask, yes_no(ref_text(r, "get_face_mask")));
        let any = [ref_text(r, "get_face_age"), ref_text(r, "get_face_sex")].iter().any(Option::is_some);
        // Absent, not empty (docs/events.md): a face object only when an attribute is given.
        if any {
            rep.eq("face present", p.face.is_some(), true);
        }
    } else {
        // IPC face posts carry no attributes (§7.6), other classes have none.
        rep.eq("face (no attributes in post)", p.face.as_ref(), None);
    }

    // NVR device identity and channel.
    if r.get("device_ip").is_some() {
        rep.eq("device.ip (device_ip)", p.device.ip.clone(), ref_text(r, "device_ip"));
        rep.eq("device.mac (device_mac)", p.device.mac.clone(), ref_text(r, "device_mac"));
        let channel = ref_text(r, "get_channel_id").map(|c| c.parse::<u32>().expect("numeric channel id"));
        rep.eq("device.channel (get_channel_id)", p.device.channel.map(|c| c.get()), channel);
        rep.eq("channel (get_channel_id)", p.channel.map(|c| c.get()), channel);
    }

    // Images. The reference's getters return the stripped base64 text; the samples carry
    // placeholder words (`BASE64_JPEG_TARGET_CROP`, ...) in place of base64.
    let roles = image_roles(p);
    let src = ref_bool(r, "source_image_exists");
    rep.eq("source_image_exists ↔ has_source_image", src, ref_bool(r, "has_source_image"));
    rep.eq(&format!("source image present (camgate image roles {roles:?})"), roles.iter().any(|r| r == "source"), src);
    let tgt = ref_bool(r, "target_image_exists");
    rep.eq("target_image_exists ↔ has_target_image", tgt, ref_bool(r, "has_target_image"));
    // The reference exposes only the first crop; camgate keeps all, so "present" is "at least one
    // image that is not the overview frame".
    if tgt {
        rep.eq(
            &format!("target (crop) image present (camgate image roles {roles:?})"),
            roles.iter().any(|r| r != "source"),
            true,
        );
    }
    if src {
        rep.eq("source image text length > 0", field(r, "source_image_len").as_u64().unwrap_or(0) > 0, true);
    }
    if tgt {
        rep.eq("target image text length > 0", field(r, "target_image_len").as_u64().unwrap_or(0) > 0, true);
    }
    // Strict decoding (§5 "decode strictly"): none of the placeholders is base64, so camgate
    // decodes no image and reports each one. The reference's lenient `b64decode` drops the `_`
    // of `BASE64_JPEG_TARGET_CROP` and returns 15 bytes of garbage for it
    // (`target_image_bytes_none` false), which camgate rightly refuses.
    rep.eq(
        "images decoded from placeholder base64",
        p.images.iter().map(|i| i.role.as_str()).collect::<Vec<_>>(),
        vec![],
    );
    rep.eq("image_errors (one per image element)", p.image_errors.len(), image_elements(xml));
}

fn compare_plate(rep: &mut Report, p: &Parsed, r: &Value) {
    let number = ref_str(r, "plate_number").expect("plate_number");
    rep.eq("get_plate_number", ref_str(r, "get_plate_number"), Some(number.clone()));
    let Some(plate) = p.plate.clone() else {
        // §7.9 defect 13: "<NO PLATE>" is no plate in camgate.
        if number != "<NO PLATE>" && !number.is_empty() {
            rep.fail(format!("plate: reference plate {number:?}, camgate has no plate"));
        }
        return;
    };
    if number == "<NO PLATE>" || number.is_empty() {
        // §7.9 defect 13: camgate has no plate object without a plate text.
        rep.fail(format!("plate: reference has no plate ({number:?}), camgate has {plate:?}"));
        return;
    }
    rep.eq("plate.number (plate_number)", plate.number.as_str(), number.as_str());

    // List: the reference's normalised list name, or else its raw group (IPC
    // `vehicleListType`, NVR `groupName`, e.g. a custom NVR group).
    let expected_list = match ref_str(r, "plate_list") {
        Some(list) => Some(camgate_list_name(&list)),
        None => ref_text(r, "get_plate_group"),
    };
    rep.eq("plate.list (plate_list/get_plate_group)", plate.list.clone(), expected_list);

    rep.eq(
        "plate.direction (direction)",
        plate.direction.as_deref().map(|d| reference_direction(d).unwrap_or("<not approach/away/leave>")),
        ref_str(r, "direction").as_deref().map(|d| reference_direction(d).unwrap_or("<reference value?>")),
    );
    rep.eq("plate.confidence (confidence)", plate.confidence, field(r, "confidence").as_f64());

    let vehicle = plate.vehicle.clone().unwrap_or_default();
    rep.eq("plate.vehicle.type (vehicle_type)", vehicle.kind.clone(), ref_text(r, "vehicle_type"));
    rep.eq("plate.vehicle.color (vehicle_color)", vehicle.color.clone(), ref_text(r, "vehicle_color"));
    rep.eq("plate.vehicle.brand (vehicle_brand)", vehicle.brand.clone(), ref_text(r, "vehicle_brand"));
    rep.eq("plate.vehicle.model (vehicle_model)", vehicle.model.clone(), ref_text(r, "vehicle_model"));
    // Absent, not empty (docs/events.md).
    if plate
        .vehicle
        .as_ref()
        .is_some_and(|v| v.kind.is_none() && v.color.is_none() && v.brand.is_none() && v.model.is_none())
    {
        rep.fail("plate.vehicle is an empty object");
    }

    if r.get("plate_color").is_some() {
        // NVR VehicleLPR: the `get_car_*` strings ("None" for empty elements, defect 13) agree
        // with the `vehicle_*` attributes, and with camgate.
        rep.eq("plate.color (get_plate_color)", plate.color.clone(), ref_text(r, "get_plate_color"));
        rep.eq("plate.vehicle.type (get_car_type)", vehicle.kind.clone(), ref_text(r, "get_car_type"));
        rep.eq("plate.vehicle.color (get_car_color)", vehicle.color.clone(), ref_text(r, "get_car_color"));
        rep.eq("plate.vehicle.brand (get_car_brand)", vehicle.brand.clone(), ref_text(r, "get_car_brand"));
        rep.eq("plate.vehicle.model (get_car_model)", vehicle.model.clone(), ref_text(r, "get_car_model"));
        rep.eq("group_name = get_plate_group", ref_str(r, "group_name"), ref_str(r, "get_plate_group"));
        // camgate's Plate has no owner field; the owner must at least survive in `data`.
        if let Some(owner) = ref_text(r, "get_car_owner") {
            rep.eq("car owner kept in data", p.data.to_string().contains(&owner), true);
        }
    } else {
        // IPC LPR posts of these samples carry no plate colour the reference reads.
        rep.eq("plate.color (IPC)", plate.color.clone(), None);
    }
}

/// Fields the reference does not read (§0.7, §7.9 defect 12), a few per sample.
fn extra_checks(rep: &mut Report, rel: &str, post: &Post) {
    let one = |post: &Post| -> Option<Parsed> {
        match post {
            Post::Events(v) if v.len() == 1 => Some(v[0].clone()),
            _ => None,
        }
    };
    // Bounding boxes: 0..10000 on both axes, as fractions (§4.1).
    let bbox = |x1: f64, y1: f64, x2: f64, y2: f64| Some([x1 / 1e4, y1 / 1e4, x2 / 1e4, y2 / 1e4]);
    let ids = |p: &Parsed| p.objects.iter().map(|o| o.id.clone().unwrap_or_default()).collect::<Vec<_>>();

    match rel {
        "ipc-v1x/keepalive.xml" | "nvr-v2/keepalive.xml" => {
            let Post::Keepalive(d) = post else { return };
            // §2: camgate keeps the identity the reference throws away.
            let expected = if rel.starts_with("ipc") {
                Device {
                    name: Some("Device Name".into()),
                    ip: Some("192.168.1.192".into()),
                    mac: Some("58:5b:69:5a:84:bb".into()),
                    serial: Some("NF40D099BCM0".into()),
                    number: Some("1".into()),
                    channel: None,
                }
            } else {
                Device {
                    name: Some("Office".into()),
                    ip: Some("192.168.0.50".into()),
                    mac: Some("58:5B:69:12:F0:79".into()),
                    ..Device::default()
                }
            };
            rep.eq("keepalive device", d.clone(), expected);
        }
        "ipc-v1x/alarm-status.xml" => {
            let Some(p) = one(post) else { return rep.fail("alarm status: expected exactly one event") };
            rep.eq("status code", p.code.as_str(), "vehiceAlarm");
            rep.eq("status rule", p.rule.as_deref(), Some("1"));
            rep.eq("status state (true)", p.state, Some(State::Start));
            rep.eq("status family", p.family, Family::Ipc);
            // `dataTime` 11-19-2025 12:15:11 PM in the configured zone (UTC by default), §6.
            rep.eq("status occurred_at (dataTime)", p.occurred_at, Some("2025-11-19T12:15:11Z".parse().unwrap()));
            let d = &p.device;
            rep.eq("status device.name", d.name.as_deref(), Some("Viewtron IPC"));
            rep.eq("status device.serial", d.serial.as_deref(), Some("I84BB0A8D59C"));
            rep.eq("status device.number", d.number.as_deref(), Some("1"));
            rep.eq("status device.ip", d.ip.as_deref(), Some("192.168.1.57"));
            rep.eq("status device.mac", d.mac.as_deref(), Some("58:5b:69:5a:84:bb"));
        }
        "nvr-v2/alarm-status.xml" => {
            // The two other examples of this file are inside XML comments: one event only.
            let Some(p) = one(post) else { return rep.fail("alarm status: expected exactly one event") };
            rep.eq("status code", p.code.as_str(), "perimeterAlarm");
            rep.eq("status rule", p.rule.as_deref(), Some("1"));
            rep.eq("status state (true)", p.state, Some(State::Start));
            rep.eq("status family", p.family, Family::Nvr);
            rep.eq("status channel", p.channel.map(|c| c.get()), Some(1));
            rep.eq("status occurred_at", p.occurred_at, Some(Timestamp::from_second(1_772_056_914).unwrap()));
            rep.eq("status device.name", p.device.name.as_deref(), Some("Device Name"));
            rep.eq("status device.ip", p.device.ip.as_deref(), Some("192.168.0.60"));
        }
        _ => {
            let Some(p) = one(post) else { return };
            rep.eq("key not empty", p.key.is_empty(), false);
            rep.eq("counts (posts carry none, §0.7)", p.counts.as_ref(), None);
            match rel {
                "ipc-v1x/lpr.xml" => {
                    rep.eq("kind", p.kind, Kind::Plate);
                    rep.eq("device (none in post)", p.device.clone(), Device::default());
                }
                "ipc-v1x/face-detection.xml" => {
                    rep.eq("kind", p.kind, Kind::Face);
                    rep.eq("object ids", ids(&p), vec!["15".to_owned()]);
                    rep.eq("object bbox", p.objects.first().and_then(|o| o.bbox), bbox(4200., 1500., 5800., 4200.));
                }
                "ipc-v1x/perimeter-intrusion.xml" => {
                    rep.eq("kind", p.kind, Kind::Intrusion);
                    rep.eq("event_id", p.event_id.as_deref(), Some("220"));
                    rep.eq("state (SMART_START)", p.state, Some(State::Start));
                    rep.eq("object ids", ids(&p), vec!["20".to_owned()]);
                    rep.eq("object bbox", p.objects.first().and_then(|o| o.bbox), bbox(113., 0., 5511., 8472.));
                    rep.eq("object type (targetType 1)", p.objects.first().map(|o| o.kind.as_str()), Some("human"));
                }
                "ipc-v1x/line-crossing.xml" => {
                    // PEA with <tripwire> is the IPC line crossing (§3.1).
                    rep.eq("kind", p.kind, Kind::LineCrossing);
                    rep.eq("event_id", p.event_id.as_deref(), Some("320"));
                    rep.eq("state (SMART_START)", p.state, Some(State::Start));
                    rep.eq("object ids", ids(&p), vec!["30".to_owned()]);
                    rep.eq("object bbox", p.objects.first().and_then(|o| o.bbox), bbox(3200., 2100., 4800., 8500.));
                }
                "ipc-v1x/zone-entry.xml" | "ipc-v1x/zone-exit.xml" => {
                    let entry = rel.ends_with("entry.xml");
                    rep.eq("kind", p.kind, if entry { Kind::RegionEntry } else { Kind::RegionExit });
                    rep.eq("object ids", ids(&p), vec![if entry { "40" } else { "45" }.to_owned()]);
                    // targetType 1 = person, 2 = car (§4.1).
                    rep.eq(
                        "object type",
                        p.objects.first().map(|o| o.kind.as_str()),
                        Some(if entry { "human" } else { "vehicle" }),
                    );
                    let expected =
                        if entry { bbox(2000., 3000., 4000., 8000.) } else { bbox(6000., 3000., 8000., 8000.) };
                    rep.eq("object bbox", p.objects.first().and_then(|o| o.bbox), expected);
                }
                "ipc-v1x/video-metadata.xml" => rep.eq("kind", p.kind, Kind::Metadata),
                "nvr-v2/region-intrusion.xml"
                | "nvr-v2/line-crossing.xml"
                | "nvr-v2/target-counting-by-line.xml"
                | "nvr-v2/target-counting-by-area.xml"
                | "nvr-v2/video-metadata.xml" => {
                    let (kind, event, target) = match rel {
                        "nvr-v2/region-intrusion.xml" => (Kind::Intrusion, "916", "716"),
                        "nvr-v2/line-crossing.xml" => (Kind::LineCrossing, "1409", "1309"),
                        "nvr-v2/target-counting-by-line.xml" => (Kind::Counting, "1080", "480"),
                        "nvr-v2/target-counting-by-area.xml" => (Kind::Counting, "2904", "2204"),
                        _ => (Kind::Metadata, "3215", "2215"),
                    };
                    rep.eq("kind", p.kind, kind);
                    rep.eq("event_id", p.event_id.as_deref(), Some(event));
                    // eventInfo and targetListInfo describe the same target: one object.
                    rep.eq("object ids", ids(&p), vec![target.to_owned()]);
                    rep.eq("object type (person)", p.objects.first().map(|o| o.kind.as_str()), Some("human"));
                    if rel == "nvr-v2/region-intrusion.xml" {
                        rep.eq("object bbox", p.objects.first().and_then(|o| o.bbox), bbox(3096., 3715., 4005., 9861.));
                    }
                }
                "nvr-v2/vehicle-lpr.xml" => {
                    rep.eq("kind", p.kind, Kind::Plate);
                    rep.eq("device.channel 2", p.device.channel.map(|c| c.get()), Some(2));
                }
                "nvr-v2/face-detection.xml" => {
                    rep.eq("kind", p.kind, Kind::Face);
                    rep.eq("object ids", ids(&p), vec!["50".to_owned()]);
                }
                other => rep.fail(format!("no extra checks written for sample {other}")),
            }
        }
    }
}

/// Compare camgate's parse of one sample with the reference's view of it.
fn compare(rep: &mut Report, rel: &str, xml: &str, r: &Value) {
    let result = parse(xml.as_bytes(), &ParseOptions::default());
    let class = ref_str(r, "class");
    let reason = ref_str(r, "reason");
    let post = match result {
        Err(e) if reason.as_deref() == Some("parse-error") => {
            rep.eq("error reason (parse-error)", e.reason, Reason::Malformed);
            return;
        }
        Err(e) => {
            rep.fail(format!("camgate could not parse it ({e}); reference: class {class:?}, reason {reason:?}"));
            return;
        }
        Ok(post) => post,
    };

    match (class.as_deref(), reason.as_deref()) {
        // Keepalive or ignored (no <config> root, NVR keepalive).
        (None, None) => {
            if !matches!(post, Post::Keepalive(_)) {
                rep.fail(format!("reference: keepalive/ignored (None, None); camgate: {}", outline(&post)));
            }
        }
        // §7.9 defect 11: the reference drops alarm-status posts (`on_unparsed` "alarmStatus");
        // camgate parses them into start/stop events of category `status`, one per alarm element
        // and rule.
        (None, Some("alarmStatus")) => match &post {
            Post::Events(v) if !v.is_empty() => {
                for p in v {
                    rep.eq("category of an alarm-status event", p.category, "status");
                    rep.eq("alarm-status event has a state", p.state.is_some(), true);
                }
            }
            _ => rep.fail(format!("reference: alarmStatus; camgate: {} (expected status events)", outline(&post))),
        },
        // §3: camgate keeps unknown smartType values as pass-through events.
        (None, Some("unknown-smartType")) => match &post {
            Post::Events(v) if v.len() == 1 => rep.eq("category (unknown smartType)", v[0].category, "other"),
            _ => rep.fail(format!("reference: unknown-smartType; camgate: {}", outline(&post))),
        },
        (None, Some(other)) => rep.fail(format!("reference reason {other:?} is not covered by this test")),
        (Some("Traject"), _) => match &post {
            Post::Traject(p) => rep.eq("category", p.category, "traject"),
            _ => rep.fail(format!("reference: Traject; camgate: {}", outline(&post))),
        },
        (Some(class), _) => match &post {
            Post::Events(v) if v.len() == 1 => compare_event(rep, &v[0], r, xml),
            _ => rep.fail(format!("reference: one {class} event; camgate: {}", outline(&post))),
        },
    }
    extra_checks(rep, rel, &post);
}

/// A short description of a camgate post for failure messages.
fn outline(post: &Post) -> String {
    let event = |p: &Parsed| format!("{}/{}/{}", p.category, p.code, p.kind);
    match post {
        Post::Keepalive(d) => format!("Keepalive({d:?})"),
        Post::Events(v) => format!("Events[{}]", v.iter().map(event).collect::<Vec<_>>().join(", ")),
        Post::Traject(p) => format!("Traject({})", event(p)),
    }
}

/// One sample: its path relative to `samples/viewtron` and its text.
struct Sample {
    rel: String,
    path: PathBuf,
    xml: String,
}

/// Every mismatch between camgate and the reference objects `oracle` (keyed by path).
fn mismatches(samples: &[Sample], oracle: &BTreeMap<PathBuf, Value>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut keys = BTreeMap::new();
    for s in samples {
        let mut rep = Report { file: s.rel.clone(), problems: Vec::new() };
        compare(&mut rep, &s.rel, &s.xml, &oracle[&s.path]);
        // Idempotency keys of different posts differ.
        if let Ok(Post::Events(v)) = parse(s.xml.as_bytes(), &ParseOptions::default()) {
            for p in v {
                if let Some(other) = keys.insert(p.key.clone(), s.rel.clone()) {
                    rep.fail(format!("key {:?} also produced by {other}", p.key));
                }
            }
        }
        problems.extend(rep.problems);
    }
    problems
}

/// Reference values changed on purpose, each of which the comparison must notice: proof that
/// the fields compared above are really compared (and not, say, None against None).
const MUTATIONS: &[(&str, &[(&str, &str)])] = &[
    ("ipc-v1x/lpr.xml", &[("plate_number", r#""ABC1235""#), ("get_plate_number", r#""ABC1235""#)]),
    ("ipc-v1x/lpr.xml", &[("plate_list", r#""blackList""#)]),
    ("ipc-v1x/lpr.xml", &[("confidence", "99.0")]),
    ("ipc-v1x/lpr.xml", &[("direction", r#""approach""#)]),
    ("ipc-v1x/lpr.xml", &[("source_image_exists", "false"), ("has_source_image", "false")]),
    ("nvr-v2/vehicle-lpr.xml", &[("vehicle_brand", r#""Ford""#)]),
    ("nvr-v2/vehicle-lpr.xml", &[("get_car_model", r#""F150""#)]),
    ("nvr-v2/vehicle-lpr.xml", &[("get_plate_color", r#""yellow""#)]),
    ("nvr-v2/vehicle-lpr.xml", &[("get_car_owner", r#""Somebody Else""#)]),
    ("nvr-v2/face-detection.xml", &[("get_face_glasses", r#""yes""#)]),
    ("nvr-v2/face-detection.xml", &[("get_face_age", r#""young""#)]),
    ("nvr-v2/face-detection.xml", &[("get_face_sex", r#""female""#)]),
    ("nvr-v2/region-intrusion.xml", &[("get_channel_id", r#""3""#)]),
    ("nvr-v2/region-intrusion.xml", &[("device_mac", r#""00:00:00:00:00:00""#)]),
    ("nvr-v2/region-intrusion.xml", &[("device_ip", r#""None""#)]),
    ("nvr-v2/line-crossing.xml", &[("ip_cam", r#""Other""#)]),
    ("nvr-v2/video-metadata.xml", &[("config_version", r#""2.1.0""#)]),
    ("ipc-v1x/video-metadata.xml", &[("get_target_types", r##"{"@type": "string", "#text": "1,2"}"##)]),
    ("ipc-v1x/zone-entry.xml", &[("time_stamp_formatted", r#""2024-11-19T19:40:34.584194""#)]),
    ("ipc-v1x/zone-entry.xml", &[("alarm_type", r#""AOILEAVE""#)]),
    ("ipc-v1x/face-detection.xml", &[("category", r#""intrusion""#)]),
    ("ipc-v1x/keepalive.xml", &[("class", r#""LPR""#)]),
    ("ipc-v1x/alarm-status.xml", &[("reason", "null")]),
    ("nvr-v2/keepalive.xml", &[("reason", r#""alarmStatus""#)]),
];

#[test]
fn camgate_matches_reference_viewtron_on_vendor_samples() {
    let repo = repo_root();
    let shared = shared_dir(&repo);
    let files = sample_files(&shared);
    let python = python(&repo);
    let oracle = run_oracle(&python, &repo, &files);
    let samples_root = shared.join("samples/viewtron");
    let samples: Vec<Sample> = files
        .iter()
        .map(|path| Sample {
            rel: path
                .strip_prefix(&samples_root)
                .expect("sample under samples/viewtron")
                .to_string_lossy()
                .into_owned(),
            path: path.clone(),
            xml: std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())),
        })
        .collect();

    let problems = mismatches(&samples, &oracle);
    assert!(
        problems.is_empty(),
        "camgate differs from the reference `viewtron` 1.4.1 (or from its documented improvement) \
         in {} place(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );

    for (rel, changes) in MUTATIONS {
        let path = samples_root.join(rel);
        let mut mutated = oracle.clone();
        let object = mutated.get_mut(&path).unwrap_or_else(|| panic!("no sample {rel}"));
        for (name, value) in *changes {
            assert!(object.get(*name).is_some(), "mutation of {rel}: the oracle has no `{name}`");
            object[*name] = serde_json::from_str(value).expect("mutation value is JSON");
        }
        assert!(
            !mismatches(&samples, &mutated).is_empty(),
            "the comparison did not notice the reference change {changes:?} in {rel}"
        );
    }
}
