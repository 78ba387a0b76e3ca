//! The targets of one post, merged by the device's target id.

use std::collections::HashMap;

use camgate_core::Object;
use camgate_core::event::BBox;

/// Most objects kept per post; the rest stay in `data`.
pub(super) const MAX_OBJECTS: usize = 1000;

/// Objects in the order first seen. The same target often appears twice (an event item with
/// the rule geometry and a target-list item with the type and crop); [`Targets::merge`]
/// joins them by id.
#[derive(Default)]
pub(super) struct Targets {
    objects: Vec<Object>,
    by_id: HashMap<String, usize>,
}

impl Targets {
    /// Adds a target, or completes the one with the same id (its type when it was
    /// `unknown`, its box and confidence when it had none). Nothing is added for an entry
    /// with neither id, type nor box.
    pub(super) fn merge(
        &mut self,
        id: Option<&str>,
        kind: Option<String>,
        bbox: Option<BBox>,
        confidence: Option<f64>,
    ) {
        if let Some(&i) = id.and_then(|id| self.by_id.get(id)) {
            let o = &mut self.objects[i];
            if o.kind == "unknown"
                && let Some(k) = kind
            {
                o.kind = k;
            }
            o.bbox = o.bbox.or(bbox);
            o.confidence = o.confidence.or(confidence);
            return;
        }
        if id.is_none() && kind.is_none() && bbox.is_none() {
            return;
        }
        self.push(Object {
            kind: kind.unwrap_or_else(|| "unknown".to_owned()),
            id: id.map(str::to_owned),
            bbox,
            confidence,
        });
    }

    /// Adds an object without merging (a plate and its vehicle share the target id).
    pub(super) fn push(&mut self, o: Object) {
        if self.objects.len() >= MAX_OBJECTS {
            return;
        }
        if let Some(id) = &o.id {
            self.by_id.entry(id.clone()).or_insert(self.objects.len());
        }
        self.objects.push(o);
    }

    /// The distinct target ids, in order.
    pub(super) fn ids(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.objects.iter().filter_map(|o| o.id.as_deref()).filter(|id| seen.insert(*id)).collect()
    }

    pub(super) fn into_objects(self) -> Vec<Object> {
        self.objects
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_by_id() {
        let mut t = Targets::default();
        t.merge(Some("7"), None, Some([0.1, 0.1, 0.2, 0.2]), None);
        t.merge(Some("7"), Some("human".into()), Some([0.5, 0.5, 0.6, 0.6]), Some(0.9));
        t.merge(None, None, None, None);
        t.merge(Some("8"), Some("vehicle".into()), None, None);
        let o = t.into_objects();
        assert_eq!(o.len(), 2);
        assert_eq!((o[0].kind.as_str(), o[0].bbox, o[0].confidence), ("human", Some([0.1, 0.1, 0.2, 0.2]), Some(0.9)));
        assert_eq!(o[1].kind, "vehicle");
    }
}
