//! Event codes (dahua.md §5): the one table that maps a Dahua `Code` to a camgate kind, and
//! the `codes` filter.
//!
//! Codes are open strings: a code in no table is kept whole with kind `other`.

use std::sync::LazyLock;

use camgate_core::Kind;

use super::scan::same;

/// `Code` → kind, compared without case. Codes starting with `Traffic` (ITC/ANPR) are
/// `plate` even when not listed. Sources are dahua.md §5 rows; `(u)` codes (documented,
/// no capture known) are mapped by their documented meaning.
pub const CODE_KINDS: &[(&str, Kind)] = &[
    // Motion.
    ("VideoMotion", Kind::Motion),
    ("VideoMotionInfo", Kind::Motion),
    ("MDResult", Kind::Metadata),
    ("ProfileAlarmTransmit", Kind::Motion),
    // Smart motion (SMD) and IVS.
    ("SmartMotionHuman", Kind::Human),
    ("SmartMotionVehicle", Kind::Vehicle),
    ("CrossLineDetection", Kind::LineCrossing),
    ("CrossRegionDetection", Kind::Intrusion),
    ("WanderDetection", Kind::Loitering),
    ("ParkingDetection", Kind::Parking),
    ("IntelliFrame", Kind::Metadata),
    // Faces and bodies.
    ("FaceDetection", Kind::Face),
    ("FaceRecognition", Kind::Face),
    ("HumanTrait", Kind::Human),
    // ANPR (any other `Traffic*` code too).
    ("TrafficJunction", Kind::Plate),
    ("TrafficSnapshot", Kind::Plate),
    ("TrafficParkingSpaceParking", Kind::Plate),
    // Counting.
    ("NumberStat", Kind::Counting),
    ("ManNumDetection", Kind::Counting),
    ("QueueDetection", Kind::Counting),
    ("CrowdDetection", Kind::Counting),
    // Camera health and tampering.
    ("VideoLoss", Kind::VideoLoss),
    ("VideoBlind", Kind::Tamper),
    ("VideoAbnormalDetection", Kind::Tamper),
    ("VideoUnFocus", Kind::Tamper),
    ("StorageNotExist", Kind::Device),
    ("StorageFailure", Kind::Device),
    ("StorageLowSpace", Kind::Device),
    // Wired I/O.
    ("AlarmLocal", Kind::AlarmInput),
    // Audio.
    ("AudioMutation", Kind::Audio),
    ("AudioAnomaly", Kind::Audio),
    // Doorbells: which code means "pressed" depends on the model (§5, §8).
    ("_DoTalkAction_", Kind::Doorbell),
    ("CallNoAnswered", Kind::Doorbell),
    ("_CallNoAnswer_", Kind::Doorbell),
    ("PhoneCallDetect", Kind::Doorbell),
    ("BackKeyLight", Kind::Doorbell),
    ("DoorbellPressed", Kind::Doorbell),
    ("Invite", Kind::Doorbell),
    ("IgnoreInvite", Kind::Doorbell),
    ("HungupPhone", Kind::Doorbell),
    ("PassiveHungup", Kind::Doorbell),
    // Access control (VTO/ASI).
    ("AccessControl", Kind::Access),
    ("DoorStatus", Kind::Access),
    ("DoorCard", Kind::Access),
];

/// The kind of a `Code`; `other` for codes in no table.
pub fn kind_for_code(code: &str) -> Kind {
    if let Some(kind) = table_kind(code) {
        return kind;
    }
    let traffic = code.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("Traffic"));
    if traffic { Kind::Plate } else { Kind::Other }
}

/// [`CODE_KINDS`] lookup without case, once per event: only the entries of the code's length
/// are compared ([`BY_LENGTH`]).
fn table_kind(code: &str) -> Option<Kind> {
    let same_length = BY_LENGTH.get(code.len())?;
    // The table's spelling first, as devices send it (no two entries differ in case only).
    let exact = same_length.iter().find(|(c, _)| same(c.as_bytes(), code.as_bytes()));
    exact.or_else(|| same_length.iter().find(|(c, _)| c.eq_ignore_ascii_case(code))).map(|&(_, kind)| kind)
}

/// [`CODE_KINDS`] by the length of the code, each list in table order.
static BY_LENGTH: LazyLock<Vec<Vec<(&str, Kind)>>> = LazyLock::new(|| {
    let longest = CODE_KINDS.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    let mut by_length = vec![Vec::new(); longest + 1];
    for &(code, kind) in CODE_KINDS {
        by_length[code.len()].push((code, kind));
    }
    by_length
});

/// The `codes` list of a camera: what the attach request asks for (§1) and what is kept
/// locally (devices that refuse a list are attached with `[All]` and filtered here).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CodeFilter {
    /// Every code (`[All]`).
    #[default]
    All,
    /// These codes only, compared without case (an empty list accepts every code, as
    /// [`CodeFilter::new`] reads it).
    Only(Vec<String>),
}

impl CodeFilter {
    /// A filter from a configured list: `All` (any case) anywhere in it, or an empty list,
    /// means every code. Blank entries are ignored, duplicates dropped.
    pub fn new<I, S>(codes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list: Vec<String> = Vec::new();
        for c in codes {
            let c = c.as_ref().trim();
            if c.eq_ignore_ascii_case("All") {
                return CodeFilter::All;
            }
            if !c.is_empty() && !list.iter().any(|k| k.eq_ignore_ascii_case(c)) {
                list.push(c.to_owned());
            }
        }
        if list.is_empty() { CodeFilter::All } else { CodeFilter::Only(list) }
    }

    /// Whether events with this code are kept.
    pub fn accepts(&self, code: &str) -> bool {
        match self {
            CodeFilter::All => true,
            CodeFilter::Only(list) => self.names(code) || list.is_empty(),
        }
    }

    /// Whether the list names this code explicitly (`All` names none).
    pub fn names(&self, code: &str) -> bool {
        match self {
            CodeFilter::All => false,
            CodeFilter::Only(list) => list.iter().any(|c| c.eq_ignore_ascii_case(code)),
        }
    }

    /// The `codes=` query value, brackets included and to be sent literally (§1):
    /// `[All]` or `[VideoMotion,CrossLineDetection]`.
    pub fn query_value(&self) -> String {
        match self {
            CodeFilter::All => "[All]".to_owned(),
            CodeFilter::Only(list) => format!("[{}]", list.join(",")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lookup() {
        assert_eq!(kind_for_code("VideoMotion"), Kind::Motion);
        assert_eq!(kind_for_code("videomotion"), Kind::Motion);
        assert_eq!(kind_for_code("TrafficJunction"), Kind::Plate);
        assert_eq!(kind_for_code("TrafficManualSnap"), Kind::Plate);
        assert_eq!(kind_for_code("Traffic"), Kind::Plate);
        assert_eq!(kind_for_code("Traffi"), Kind::Other);
        assert_eq!(kind_for_code("LeFunctionStatusSync"), Kind::Other);
        assert_eq!(kind_for_code("Ünknown"), Kind::Other);
        assert_eq!(kind_for_code(""), Kind::Other);
    }

    #[test]
    fn table_lookup_matches_a_scan() {
        for &(code, kind) in CODE_KINDS {
            for c in [code.to_owned(), code.to_ascii_lowercase(), code.to_ascii_uppercase()] {
                assert_eq!(kind_for_code(&c), kind, "{c}");
            }
        }
        let long = "VideoMotion".repeat(4);
        assert_eq!(kind_for_code(&long), Kind::Other);
        assert_eq!(kind_for_code("VideoMotio"), Kind::Other);
        assert_eq!(kind_for_code("VideoMotionX"), Kind::Other);
    }

    #[test]
    fn table_has_no_duplicates() {
        for (i, (a, _)) in CODE_KINDS.iter().enumerate() {
            assert!(!CODE_KINDS[i + 1..].iter().any(|(b, _)| a.eq_ignore_ascii_case(b)), "{a} twice");
        }
    }

    #[test]
    fn filters() {
        assert_eq!(CodeFilter::new(["VideoMotion", "all"]), CodeFilter::All);
        assert_eq!(CodeFilter::new(Vec::<String>::new()), CodeFilter::All);
        let f = CodeFilter::new([" VideoMotion", "CrossLineDetection", "videomotion", ""]);
        assert_eq!(f.query_value(), "[VideoMotion,CrossLineDetection]");
        assert!(f.accepts("VIDEOMOTION") && f.accepts("CrossLineDetection"));
        assert!(!f.accepts("VideoMotionInfo"));
        assert!(f.names("videomotion") && !CodeFilter::All.names("VideoMotion"));
        assert!(CodeFilter::All.accepts("Anything"));
        assert_eq!(CodeFilter::All.query_value(), "[All]");
    }
}
