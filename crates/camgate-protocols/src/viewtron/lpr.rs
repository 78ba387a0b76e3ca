//! Plate and face attributes: IPC `listInfo` LPR items, NVR `licensePlateListInfo` and
//! `faceListInfo`.

use camgate_core::{Face, Object, Plate, Vehicle};

use super::fields::{corner_points, number, pixel_rect, rect, unit_confidence};
use super::images::Images;
use super::targets::Targets;
use super::xml::El;

/// Device coordinates of IPC and NVR events run 0..10000 on both axes.
pub(super) const SCALE: f64 = 10_000.0;

/// The device's plate list, normalised: `whiteList` → `white`, `blackList` → `black`,
/// `temporaryList` → `temporary`, `strangerList` → `stranger`; other names verbatim (NVR
/// groups can have custom names).
pub(super) fn plate_list(raw: &str) -> String {
    let raw = raw.trim();
    match raw.to_ascii_lowercase().as_str() {
        "whitelist" | "white" | "allowlist" => "white".to_owned(),
        "blacklist" | "black" | "blocklist" => "black".to_owned(),
        "temporarylist" | "temporary" => "temporary".to_owned(),
        "strangerlist" | "stranger" => "stranger".to_owned(),
        _ => raw.to_owned(),
    }
}

/// `vehicleDirect`: `approach` stays, `away` and `leave` become `leave`; other words verbatim.
pub(super) fn direction(raw: &str) -> String {
    let raw = raw.trim();
    match raw.to_ascii_lowercase().as_str() {
        "approach" | "come" | "coming" => "approach".to_owned(),
        "away" | "leave" | "leaving" => "leave".to_owned(),
        _ => raw.to_owned(),
    }
}

fn vehicle(attrs: Option<El<'_, '_>>, type_names: &[&str]) -> Option<Vehicle> {
    let a = attrs?;
    let v = Vehicle {
        kind: a.child_value_any(type_names).map(str::to_owned),
        color: a.child_value("color").map(str::to_owned),
        brand: a.child_value("brand").map(str::to_owned),
        model: a.child_value("model").map(str::to_owned),
    };
    (v != Vehicle::default()).then_some(v)
}

fn some_plate(p: Plate) -> Option<Plate> {
    let empty = p.number.is_empty() && p.list.is_none() && p.vehicle.is_none() && p.color.is_none();
    (!empty).then_some(p)
}

/// `PlateConfidence/@count` (or its text): 0..10000.
fn plate_confidence_raw(item: El<'_, '_>) -> Option<f64> {
    let c = item.child("PlateConfidence")?;
    c.attr("count").or_else(|| c.value()).and_then(number).filter(|v| *v <= SCALE)
}

/// The frame size an item's pixel coordinates refer to (`SourceImageWidth/Height`).
fn item_frame(item: El<'_, '_>) -> Option<(f64, f64)> {
    let w = item.child_value("SourceImageWidth").and_then(number).filter(|v| *v > 0.0)?;
    let h = item.child_value("SourceImageHeight").and_then(number).filter(|v| *v > 0.0)?;
    Some((w, h))
}

/// A box given either as `x1..y2` or as `x, y, width, height`, in pixels of `frame`.
fn pixel_box(el: El<'_, '_>, (w, h): (f64, f64)) -> Option<camgate_core::event::BBox> {
    if el.child("x1").is_some() { rect(el, w, h) } else { pixel_rect(el, w, h) }
}

/// IPC LPR (`VEHICE`/`VEHICLE`): `listInfo/item`. The plate item is the first with a
/// `plateNumber`, else item[1] of two or more, else item[0] (the reference's rule); every
/// item with a plate number is a plate object with its crop. Items without a plate are the
/// overview picture, kept as `source` only when no source picture was decoded from
/// `sourceDataInfo` (the same frame twice otherwise; the copy stands in when the original is
/// missing or broken).
pub(super) fn ipc_plate(list: El<'_, '_>, has_source: bool, t: &mut Targets, images: &mut Images) -> Option<Plate> {
    let items: Vec<_> = list.children_named("item").collect();
    let has_number = |i: &El<'_, '_>| i.child_value("plateNumber").is_some();
    let primary = items.iter().position(has_number).or(match items.len() {
        0 => None,
        1 => Some(0),
        _ => Some(1),
    });
    for (i, item) in items.iter().enumerate() {
        if Some(i) != primary && !has_number(item) {
            if !has_source && let Some(img) = item.child("targetImageData") {
                images.add("source", img);
            }
            continue;
        }
        let id = item.child_value_any(&["targetId", "plateId", "vehiceId", "vehicleId"]);
        let bbox = item.child("rect").and_then(|r| rect(r, SCALE, SCALE)).or_else(|| corner_points(*item, SCALE));
        let confidence = plate_confidence_raw(*item).and_then(unit_confidence);
        if id.is_some() || bbox.is_some() || has_number(item) {
            t.push(Object { kind: "plate".to_owned(), id: id.map(str::to_owned), bbox, confidence });
        }
        if let Some(frame) = item_frame(*item)
            && let Some(bbox) = item.child("carRect").and_then(|c| pixel_box(c, frame))
        {
            t.push(Object {
                kind: "vehicle".to_owned(),
                id: id.map(str::to_owned),
                bbox: Some(bbox),
                confidence: None,
            });
        }
        if let Some(img) = item.child("targetImageData") {
            images.add("plate", img);
        }
    }
    let item = items.get(primary?)?;
    let color = item
        .child("plateColor")
        .filter(|c| c.attr("count").is_none())
        .and_then(El::value)
        .filter(|v| !v.bytes().all(|b| b.is_ascii_digit()));
    some_plate(Plate {
        number: item.child_value("plateNumber").unwrap_or("").to_owned(),
        list: item.child_value("vehicleListType").map(plate_list),
        confidence: plate_confidence_raw(*item).map(|c| c / 100.0),
        direction: item.child_value_any(&["vehicleDirect", "vehicleDirection", "direction"]).map(direction),
        color: color.map(str::to_owned),
        vehicle: vehicle(item.child("carAttr"), &["type", "carType"]),
    })
}

fn plate_number<'d>(item: &El<'d, '_>) -> Option<&'d str> {
    item.path(&["licensePlateAttribute", "licensePlateNumber"]).and_then(El::value)
}

/// NVR `vehicle`: `licensePlateListInfo/item`. Its `rect` is in pixels of the source
/// picture, so boxes are given only when `sourceDataInfo` says the frame size.
pub(super) fn nvr_plate(
    list: El<'_, '_>,
    frame: Option<(f64, f64)>,
    t: &mut Targets,
    images: &mut Images,
) -> Option<Plate> {
    let items: Vec<_> = list.children_named("item").collect();
    let primary = items.iter().position(|i| plate_number(i).is_some()).or((!items.is_empty()).then_some(0));
    for item in &items {
        let id = item.child_value("targetId");
        let bbox = frame.and_then(|f| item.child("rect").and_then(|r| pixel_box(r, f)));
        let confidence = item
            .path(&["licensePlateAttribute", "confidence"])
            .or_else(|| item.child("confidence"))
            .and_then(El::value)
            .and_then(number)
            .and_then(unit_confidence);
        t.push(Object { kind: "plate".to_owned(), id: id.map(str::to_owned), bbox, confidence });
        if let Some(bbox) = frame.and_then(|f| item.child("carRect").and_then(|r| pixel_box(r, f))) {
            t.push(Object {
                kind: "vehicle".to_owned(),
                id: id.map(str::to_owned),
                bbox: Some(bbox),
                confidence: None,
            });
        }
        if let Some(img) = item.child("targetImageData") {
            images.add("plate", img);
        }
    }
    let item = items.get(primary?)?;
    let attrs = item.child("licensePlateAttribute");
    some_plate(Plate {
        number: plate_number(item).unwrap_or("").to_owned(),
        list: item.path(&["licensePlateMatchInfo", "groupName"]).and_then(El::value).map(plate_list),
        confidence: None,
        direction: item.child_value_any(&["vehicleDirect", "direction"]).map(direction),
        color: attrs.and_then(|a| a.child_value("color")).map(str::to_owned),
        vehicle: vehicle(item.child("carAttribute"), &["carType", "type"]),
    })
}

fn known(v: Option<&str>) -> Option<String> {
    v.filter(|v| !v.eq_ignore_ascii_case("unknown")).map(str::to_owned)
}

/// `yes`/`no`/`unknown` (and `true`/`false`, `1`/`0`).
fn yes_no(v: Option<&str>) -> Option<bool> {
    match v?.to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" => Some(true),
        "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

/// Face crops and boxes of a face list (`faceListInfo` or the IPC `listInfo` of `VFD`),
/// and the attributes of its first item (only NVR posts carry any).
pub(super) fn faces(list: El<'_, '_>, t: &mut Targets, images: &mut Images) -> Option<Face> {
    let mut first = None;
    for item in list.children_named("item") {
        first.get_or_insert(item);
        let bbox = item.child("rect").and_then(|r| rect(r, SCALE, SCALE));
        let confidence = item.child_value("confidence").and_then(number).and_then(unit_confidence);
        t.merge(item.child_value("targetId"), Some("face".to_owned()), bbox, confidence);
        if let Some(img) = item.child("targetImageData") {
            images.add("face", img);
        }
    }
    let item = first?;
    let f = Face {
        age: known(item.child_value("age")),
        sex: known(item.child_value_any(&["sex", "gender"])),
        glasses: yes_no(item.child_value("glasses")),
        mask: yes_no(item.child_value("mask")),
    };
    (f != Face::default()).then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(plate_list("whiteList"), "white");
        assert_eq!(plate_list("BLACKLIST"), "black");
        assert_eq!(plate_list("temporaryList"), "temporary");
        assert_eq!(plate_list("strangerList"), "stranger");
        assert_eq!(plate_list("Staff cars"), "Staff cars");
        assert_eq!(direction("approach"), "approach");
        assert_eq!(direction("away"), "leave");
        assert_eq!(direction("leave"), "leave");
        assert_eq!(yes_no(Some("unknown")), None);
        assert_eq!(yes_no(Some("Yes")), Some(true));
        assert_eq!(yes_no(Some("no")), Some(false));
    }
}
