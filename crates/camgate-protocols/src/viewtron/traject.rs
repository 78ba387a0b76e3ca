//! Traject (smart tracking) posts: `traject[@type="list"]/item/{targetId, point, rect,
//! velocity, direction, targetType, trajectlength}`, 6-12 posts a second per tracked target.

use camgate_core::{Kind, State};

use super::fields::{self, KeyParts, rect, target_kind};
use super::images::Images;
use super::lpr::SCALE;
use super::targets::Targets;
use super::xml::El;
use super::{Common, ParseOptions, Parsed};

/// Reads one traject post: kind `track`, state `state` (a periodic position report), one
/// object per tracked target (velocity, direction, point and path stay in `data`).
pub(super) fn parse(root: El<'_, '_>, traject: El<'_, '_>, common: Common<'_>, opts: &ParseOptions) -> Parsed {
    let mut t = Targets::default();
    for item in traject.children_named("item") {
        let bbox = item.child("rect").and_then(|r| rect(r, SCALE, SCALE));
        let kind = item.child_value("targetType").and_then(target_kind);
        t.merge(item.child_value("targetId"), kind, bbox, None);
    }
    let mut images = Images::new(opts.max_image_bytes);
    if let Some(s) = root.child("sourceDataInfo") {
        images.add("source", s);
    }
    let state = State::State;
    let code = "traject";
    let target_ids = t.ids();
    let key = fields::key(&KeyParts {
        device: &common.device,
        code,
        event_ids: &[],
        target_ids: &target_ids,
        rule: None,
        state: Some(state),
        time: common.time.raw,
    });
    let (images, image_errors) = images.finish();
    Parsed {
        family: common.family,
        config_version: common.config_version,
        category: "traject",
        kind: Kind::Track,
        code: code.to_owned(),
        state: Some(state),
        channel: common.device.channel,
        rule: None,
        occurred_at: common.time.at,
        time_error: common.time.error,
        event_id: None,
        plate: None,
        face: None,
        objects: t.into_objects(),
        counts: None,
        device: common.device,
        data: common.data,
        images,
        image_errors,
        key,
    }
}
