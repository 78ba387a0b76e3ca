//! The whole payload as JSON (`Parsed::data`), the way xmltodict shows it, minus the noise.
//!
//! `{"config": {...}}`: an element becomes an object, repeated siblings an array, a leaf its
//! text (`null` when empty); attributes other than `type` (the IPC type annotations) become
//! `"@name"`, and the text of an element that also has attributes or children `"#text"`.
//! Image data (`*Base64Data`) is replaced by `{"omitted_base64_chars": N}`.

use serde_json::{Map, Value};

use super::xml::El;

/// Whether an element holds base64 image data.
pub(super) fn is_base64_data(el: El<'_, '_>) -> bool {
    let n = el.name().as_bytes();
    n.len() >= 10 && n[n.len() - 10..].eq_ignore_ascii_case(b"Base64Data")
}

/// `{root name: root value}`.
pub(super) fn document(root: El<'_, '_>) -> Value {
    let mut m = Map::new();
    m.insert(root.name().to_owned(), value(root));
    Value::Object(m)
}

/// One element's value (see the module docs).
pub(super) fn value(el: El<'_, '_>) -> Value {
    if is_base64_data(el) {
        let mut m = Map::new();
        m.insert("omitted_base64_chars".to_owned(), Value::from(el.text().len()));
        return Value::Object(m);
    }
    let mut attrs = el.attrs().filter(|(k, _)| !k.eq_ignore_ascii_case("type")).peekable();
    if attrs.peek().is_none() && !el.has_children() {
        return el.value().map_or(Value::Null, |t| Value::String(t.to_owned()));
    }
    let mut m = Map::new();
    for (k, v) in attrs {
        m.insert(format!("@{k}"), Value::String(v.to_owned()));
    }
    if let Some(t) = el.value() {
        m.insert("#text".to_owned(), Value::String(t.to_owned()));
    }
    for child in el.children() {
        let v = value(child);
        match m.get_mut(child.name()) {
            None => {
                m.insert(child.name().to_owned(), v);
            }
            // `element` never returns an array, so an array here was built from siblings.
            Some(Value::Array(list)) => list.push(v),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, v]);
            }
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::super::xml::Doc;
    use super::*;

    #[test]
    fn shape() {
        let doc = Doc::parse(
            r#"<config version="1.7" xmlns="http://www.ipc.com/ver10"><smartType type="openAlramObj">VEHICE</smartType>
            <listInfo type="list" count="2"><item><a>1</a></item><item><a>2</a><e/></item></listInfo>
            <PlateConfidence type="uint32" count="9900"/><x id="1">true</x>
            <sourceDataInfo><sourceBase64Data>QUJD</sourceBase64Data></sourceDataInfo></config>"#,
        )
        .unwrap();
        let v = document(doc.root());
        assert_eq!(
            v,
            serde_json::json!({"config": {
                "@version": "1.7",
                "smartType": "VEHICE",
                "listInfo": {"@count": "2", "item": [{"a": "1"}, {"a": "2", "e": null}]},
                "PlateConfidence": {"@count": "9900"},
                "x": {"@id": "1", "#text": "true"},
                "sourceDataInfo": {"sourceBase64Data": {"omitted_base64_chars": 4}}
            }})
        );
    }
}
