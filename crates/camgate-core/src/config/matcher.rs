//! Matchers: which events a rule applies to (zone `enter`/`exit` lists, the legacy
//! `eventos_Analisis` filter, the `history` filters of `[[avigilon]]` sites).
//!
//! A [`Matcher`] is a TOML inline table of conditions, one per event [`Field`]:
//!
//! ```toml
//! enter = [
//!   { name = { contains = "AFORO ENTRADA PARQUEADERO NORTE" } },
//!   { area = { equals = "Parqueadero Norte" }, activity = { equals = "OBJECT_COUNTING_ENTER" } },
//! ]
//! ```
//!
//! - The conditions of one matcher are ANDed; a list of matchers is ORed
//!   ([`any_matches`]). A matcher with no condition is refused (it would match everything).
//! - Each condition has exactly one operator: `contains`, `equals` (both on normalised
//!   text) or `regex` (the [`regex`] crate's syntax, searched anywhere in the value unless
//!   anchored with `^`/`$`).
//! - Comparison is case-insensitive and ignores surrounding and repeated whitespace: the
//!   event's value and the `contains`/`equals` text are both trimmed, every run of
//!   whitespace is collapsed to one space and the text is lower-cased (Unicode). A regex is
//!   compiled case-insensitive and searched in the trimmed, collapsed value.
//! - A field the event does not have never matches (whatever the operator).
//!
//! Where each field is read from: see [`Field`].

use std::cell::OnceCell;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Event;

/// The event fields a condition can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The name of what fired: the event's `rule` or, when it has none,
    /// `data.analyticEventName`. For Avigilon events this is the analytic rule's name
    /// (`analyticEventName`, e.g. "AFORO ENTRADA PARQUEADERO NORTE").
    Name,
    /// `data.area` when it is a string: the Avigilon occupancy area
    /// (`""` for rules that are not occupancy-area rules).
    Area,
    /// `data.activity` when it is a string: the Avigilon activity
    /// (`OBJECT_COUNTING_ENTER`, `OBJECT_COUNTING_EXIT`, `OBJECT_PRESENT`, ...).
    Activity,
    /// The event's `source` (the configured device name).
    Source,
    /// The event's `kind` (`counting`, `line_crossing`, ...).
    Kind,
    /// The event's `rule` only (no fallback).
    Rule,
    /// The event's `code`, the vendor's word (`DEVICE_ANALYTICS_STOP`, `CrossLineDetection`).
    Code,
    /// The event's `state`: `start`, `stop`, `pulse` or `state`.
    State,
}

impl Field {
    /// Every field, in the order of [`Matcher`]'s keys.
    pub const ALL: [Field; 8] =
        [Field::Name, Field::Area, Field::Activity, Field::Source, Field::Kind, Field::Rule, Field::Code, Field::State];

    /// The key of the field in a matcher table.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Area => "area",
            Field::Activity => "activity",
            Field::Source => "source",
            Field::Kind => "kind",
            Field::Rule => "rule",
            Field::Code => "code",
            Field::State => "state",
        }
    }

    /// The field's raw value in `event`, before normalisation; `None` when absent.
    pub fn raw(self, event: &Event) -> Option<&str> {
        let data = |key: &str| event.data.as_ref()?.get(key)?.as_str();
        match self {
            Field::Name => event.rule.as_deref().or_else(|| data("analyticEventName")),
            Field::Area => data("area"),
            Field::Activity => data("activity"),
            Field::Source => Some(&event.source),
            Field::Kind => Some(event.kind.as_str()),
            Field::Rule => event.rule.as_deref(),
            Field::Code => event.code.as_deref(),
            Field::State => event.state.map(crate::State::as_str),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Trim, and collapse every run of whitespace to one space.
pub fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The form `contains` and `equals` compare: whitespace collapsed, lower case.
pub fn normalise(s: &str) -> String {
    collapse_whitespace(s).to_lowercase()
}

/// A field value in both normalised forms.
#[derive(Debug)]
struct Value {
    /// Trimmed and collapsed, case kept (what a regex sees).
    collapsed: String,
    /// `collapsed`, lower-cased (what `contains`/`equals` see).
    folded: String,
}

/// An event seen by matchers: each field is normalised once, on first use, however many
/// matchers test it.
pub struct EventView<'e> {
    event: &'e Event,
    values: [OnceCell<Option<Value>>; 8],
}

impl<'e> EventView<'e> {
    pub fn new(event: &'e Event) -> Self {
        EventView { event, values: Default::default() }
    }

    pub fn event(&self) -> &'e Event {
        self.event
    }

    fn value(&self, field: Field) -> Option<&Value> {
        self.values[field.index()]
            .get_or_init(|| {
                field.raw(self.event).map(|raw| {
                    let collapsed = collapse_whitespace(raw);
                    let folded = collapsed.to_lowercase();
                    Value { collapsed, folded }
                })
            })
            .as_ref()
    }
}

/// How a condition compares.
#[derive(Debug, Clone)]
enum Op {
    /// The normalised needle.
    Contains(String),
    Equals(String),
    Regex(regex::Regex),
}

/// One test of one field: `{ contains = "..." }`, `{ equals = "..." }` or `{ regex = "..." }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(try_from = "ConditionSpec", into = "ConditionSpec")]
pub struct Condition {
    op: Op,
    /// The text as written in the file.
    text: String,
}

/// The TOML shape of a [`Condition`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ConditionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
}

impl TryFrom<ConditionSpec> for Condition {
    type Error = String;
    fn try_from(spec: ConditionSpec) -> Result<Self, String> {
        match spec {
            ConditionSpec { contains: Some(t), equals: None, regex: None } => Condition::contains(&t),
            ConditionSpec { contains: None, equals: Some(t), regex: None } => Ok(Condition::equals(&t)),
            ConditionSpec { contains: None, equals: None, regex: Some(t) } => Condition::regex(&t),
            _ => Err("a condition needs exactly one of `contains`, `equals` or `regex`, \
                      e.g. { contains = \"ENTRADA\" }"
                .into()),
        }
    }
}

impl From<Condition> for ConditionSpec {
    fn from(c: Condition) -> Self {
        let mut spec = ConditionSpec::default();
        match c.op {
            Op::Contains(_) => spec.contains = Some(c.text),
            Op::Equals(_) => spec.equals = Some(c.text),
            Op::Regex(_) => spec.regex = Some(c.text),
        }
        spec
    }
}

impl Condition {
    /// Matches a value that contains `text` (both normalised). Empty text is refused.
    pub fn contains(text: &str) -> Result<Self, String> {
        let needle = normalise(text);
        if needle.is_empty() {
            return Err("`contains` needs some text; an empty one would match every value".into());
        }
        Ok(Condition { op: Op::Contains(needle), text: text.to_owned() })
    }

    /// Matches a value equal to `text` (both normalised).
    pub fn equals(text: &str) -> Self {
        Condition { op: Op::Equals(normalise(text)), text: text.to_owned() }
    }

    /// Matches a value the case-insensitive regex finds a match in.
    pub fn regex(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("`regex` needs a pattern; an empty one would match every value".into());
        }
        let re = regex::RegexBuilder::new(pattern).case_insensitive(true).size_limit(1 << 20).build().map_err(|e| {
            // Syntax errors come as several lines with a caret drawing; keep the reason.
            let text = e.to_string();
            let reason = text.lines().last().unwrap_or_default().trim().trim_start_matches("error: ").to_owned();
            format!("invalid regex {pattern:?}: {reason}")
        })?;
        Ok(Condition { op: Op::Regex(re), text: pattern.to_owned() })
    }

    fn test(&self, v: &Value) -> bool {
        match &self.op {
            Op::Contains(n) => v.folded.contains(n.as_str()),
            Op::Equals(n) => v.folded == *n,
            Op::Regex(re) => re.is_match(&v.collapsed),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Contains(_) => "contains",
            Op::Equals(_) => "equals",
            Op::Regex(_) => "matches",
        };
        write!(f, "{op} {:?}", self.text)
    }
}

/// Conditions on several fields, all of which must hold.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(try_from = "MatcherSpec", into = "MatcherSpec")]
pub struct Matcher {
    conditions: Vec<(Field, Condition)>,
}

/// The TOML shape of a [`Matcher`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct MatcherSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    area: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    activity: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rule: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<Condition>,
}

impl TryFrom<MatcherSpec> for Matcher {
    type Error = String;
    fn try_from(s: MatcherSpec) -> Result<Self, String> {
        let all = [s.name, s.area, s.activity, s.source, s.kind, s.rule, s.code, s.state];
        let conditions: Vec<(Field, Condition)> =
            Field::ALL.into_iter().zip(all).filter_map(|(f, c)| c.map(|c| (f, c))).collect();
        if conditions.is_empty() {
            return Err("a matcher needs at least one condition on name, area, activity, source, kind, rule, \
                        code or state, e.g. { name = { contains = \"ENTRADA\" } }"
                .into());
        }
        Ok(Matcher { conditions })
    }
}

impl From<Matcher> for MatcherSpec {
    fn from(m: Matcher) -> Self {
        let mut s = MatcherSpec::default();
        for (f, c) in m.conditions {
            let slot = match f {
                Field::Name => &mut s.name,
                Field::Area => &mut s.area,
                Field::Activity => &mut s.activity,
                Field::Source => &mut s.source,
                Field::Kind => &mut s.kind,
                Field::Rule => &mut s.rule,
                Field::Code => &mut s.code,
                Field::State => &mut s.state,
            };
            *slot = Some(c);
        }
        s
    }
}

impl Matcher {
    /// A matcher of the given conditions (at most one per field is meaningful; all are ANDed).
    pub fn new(conditions: impl IntoIterator<Item = (Field, Condition)>) -> Self {
        Matcher { conditions: conditions.into_iter().collect() }
    }

    /// The conditions, in field order.
    pub fn conditions(&self) -> &[(Field, Condition)] {
        &self.conditions
    }

    /// Whether every condition holds for the event.
    pub fn matches(&self, view: &EventView<'_>) -> bool {
        self.conditions.iter().all(|(f, c)| view.value(*f).is_some_and(|v| c.test(v)))
    }

    /// [`matches`](Self::matches) for a single event.
    pub fn matches_event(&self, event: &Event) -> bool {
        self.matches(&EventView::new(event))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (field, c)) in self.conditions.iter().enumerate() {
            if i > 0 {
                f.write_str(" and ")?;
            }
            write!(f, "{} {c}", field.as_str())?;
        }
        Ok(())
    }
}

/// Whether any matcher of the list matches (an empty list matches nothing).
pub fn any_matches(matchers: &[Matcher], view: &EventView<'_>) -> bool {
    matchers.iter().any(|m| m.matches(view))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Kind, State, Vendor};

    fn avigilon(name: &str, area: &str, activity: &str) -> Event {
        let mut e = Event::new("k", "acc", Vendor::Avigilon, Kind::Counting);
        e.rule = Some(name.into());
        e.code = Some("DEVICE_ANALYTICS_STOP".into());
        e.state = Some(State::Stop);
        e.data = Some(serde_json::json!({ "analyticEventName": name, "area": area, "activity": activity }));
        e
    }

    fn list(toml_text: &str) -> Vec<Matcher> {
        #[derive(Deserialize)]
        struct T {
            m: Vec<Matcher>,
        }
        toml::from_str::<T>(toml_text).map(|t| t.m).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn contains_is_case_and_space_insensitive() {
        let m = list(r#"m = [{ name = { contains = "aforo  entrada parqueadero NORTE " } }]"#);
        let e = avigilon("  Cam 3 - AFORO ENTRADA\tPARQUEADERO   Norte ", "", "OBJECT_COUNTING_ENTER");
        assert!(any_matches(&m, &EventView::new(&e)));
        let e = avigilon("AFORO SALIDA PARQUEADERO NORTE", "", "OBJECT_COUNTING_EXIT");
        assert!(!any_matches(&m, &EventView::new(&e)));
    }

    #[test]
    fn equals_needs_the_whole_value() {
        let m = list(r#"m = [{ name = { equals = "INGRESO PERSONAS ENTRADA MARATON" } }]"#);
        assert!(m[0].matches_event(&avigilon(" ingreso personas  entrada maraton", "", "")));
        assert!(!m[0].matches_event(&avigilon("INGRESO PERSONAS ENTRADA MARATON 2", "", "")));
    }

    #[test]
    fn regex_is_case_insensitive_on_collapsed_text() {
        let m = list(r#"m = [{ name = { regex = "^entrada (norte|sur)$" } }]"#);
        assert!(m[0].matches_event(&avigilon("  ENTRADA   Sur ", "", "")));
        assert!(!m[0].matches_event(&avigilon("ENTRADA ESTE", "", "")));
    }

    #[test]
    fn conditions_are_anded_and_the_list_is_ored() {
        let m = list(
            r#"m = [
                { area = { equals = "Zona Sur" }, activity = { equals = "object_counting_enter" } },
                { name = { contains = "INGRESO PARQUEADERO SUR" } },
            ]"#,
        );
        let v = |e: &Event| any_matches(&m, &EventView::new(e));
        assert!(v(&avigilon("Regla 1", "ZONA  SUR", "OBJECT_COUNTING_ENTER")));
        assert!(!v(&avigilon("Regla 1", "ZONA SUR", "OBJECT_COUNTING_EXIT")), "only one of two conditions");
        assert!(v(&avigilon("x INGRESO PARQUEADERO SUR", "", "OBJECT_PRESENT")), "the second matcher");
        assert!(!any_matches(&[], &EventView::new(&avigilon("a", "b", "c"))), "an empty list matches nothing");
    }

    #[test]
    fn absent_fields_never_match() {
        let m = list(r#"m = [{ area = { regex = ".*" } }, { code = { equals = "" } }]"#);
        let mut e = Event::new("k", "cam", Vendor::Dahua, Kind::Motion);
        assert!(!any_matches(&m, &EventView::new(&e)), "no data.area and no code");
        e.data = Some(serde_json::json!({ "area": 5 }));
        assert!(!any_matches(&m, &EventView::new(&e)), "a non-string area is absent");
        e.code = Some(String::new());
        assert!(any_matches(&m, &EventView::new(&e)), "an empty code equals the empty text");
    }

    #[test]
    fn name_falls_back_to_the_analytic_event_name() {
        let m = list(r#"m = [{ name = { contains = "puerta" } }]"#);
        let mut e = avigilon("PUERTA 4", "", "");
        e.rule = None;
        assert!(m[0].matches_event(&e));
        let r = list(r#"m = [{ rule = { contains = "puerta" } }]"#);
        assert!(!r[0].matches_event(&e), "`rule` has no fallback");
    }

    #[test]
    fn source_kind_code_and_state() {
        let m = list(
            r#"m = [{ source = { equals = "ACC" }, kind = { equals = "counting" }, code = { contains = "analytics_stop" }, state = { equals = "stop" } }]"#,
        );
        let mut e = avigilon("x", "", "");
        assert!(m[0].matches_event(&e));
        e.state = Some(State::Start);
        assert!(!m[0].matches_event(&e));
    }

    #[test]
    fn bad_conditions_are_refused_with_a_reason() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct T {
            m: Vec<Matcher>,
        }
        for (text, needle) in [
            (r#"m = [{}]"#, "at least one condition"),
            (r#"m = [{ name = {} }]"#, "exactly one"),
            (r#"m = [{ name = { contains = "a", equals = "a" } }]"#, "exactly one"),
            (r#"m = [{ name = { contains = "  " } }]"#, "empty"),
            (r#"m = [{ name = { regex = "(" } }]"#, "invalid regex \"(\": unclosed group"),
            (r#"m = [{ nam = { contains = "a" } }]"#, "nam"),
            (r#"m = [{ name = { starts = "a" } }]"#, "starts"),
        ] {
            let e = toml::from_str::<T>(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn display_and_round_trip() {
        let m = list(r#"m = [{ name = { contains = "A  b" }, activity = { equals = "X" } }]"#);
        assert_eq!(m[0].to_string(), r#"name contains "A  b" and activity equals "X""#);
        let back = toml::to_string(&MatcherSpec::from(m[0].clone())).unwrap();
        assert!(back.contains("contains = \"A  b\""), "{back}");
    }
}
