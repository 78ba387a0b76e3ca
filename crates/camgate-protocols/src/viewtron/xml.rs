//! A small read-only DOM over one XML body, built in one pass with quick-xml.
//!
//! Names are local names (a namespace prefix is dropped, `xmlns` declarations are ignored)
//! and every lookup is ASCII case-insensitive, because Viewtron firmware varies the case of
//! the same field (`Width`/`width`, `DeviceNo.`/`deviceNo.`). Element text is the
//! concatenation of its text and CDATA pieces, trimmed; whitespace between child elements is
//! dropped. Names, attribute values and text borrow from the input where they can.
//!
//! Safety limits: at most [`MAX_DEPTH`] nested elements, [`MAX_ELEMENTS`] elements and
//! [`MAX_ATTRIBUTES`] attributes per element. Entities are never expanded: the five XML
//! entities and character references are resolved, any other reference (one a DTD would
//! declare) makes the document malformed. A DTD itself is skipped.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

/// Deepest element nesting accepted (the root is at depth 1).
pub(super) const MAX_DEPTH: usize = 64;
/// Most elements accepted in one document.
pub(super) const MAX_ELEMENTS: usize = 100_000;
/// Most attributes accepted on one element.
pub(super) const MAX_ATTRIBUTES: usize = 256;

const NONE: u32 = u32::MAX;

#[derive(Debug)]
struct Node<'a> {
    name: &'a str,
    text: Cow<'a, str>,
    attrs_start: u32,
    attrs_end: u32,
    first_child: u32,
    last_child: u32,
    next_sibling: u32,
}

#[derive(Debug)]
struct Attr<'a> {
    name: &'a str,
    value: Cow<'a, str>,
}

/// A parsed document: the root element is node 0.
#[derive(Debug)]
pub(super) struct Doc<'a> {
    nodes: Vec<Node<'a>>,
    attrs: Vec<Attr<'a>>,
}

/// Why a body is not a well-formed document (the message says where and what).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct XmlError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, XmlError> {
    Err(XmlError(message.into()))
}

/// `s` as a slice of `input` when it points into `input` (so it can outlive the event).
fn reborrow<'a>(input: &'a str, s: &str) -> Option<&'a str> {
    let off = (s.as_ptr() as usize).checked_sub(input.as_ptr() as usize)?;
    let found = input.get(off..off.checked_add(s.len())?)?;
    (found == s).then_some(found)
}

fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, l)| l)
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn trim_cow(c: Cow<'_, str>) -> Cow<'_, str> {
    match c {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim_matches(is_xml_space)),
        Cow::Owned(s) => {
            let t = s.trim_matches(is_xml_space);
            if t.len() == s.len() { Cow::Owned(s) } else { Cow::Owned(t.to_owned()) }
        }
    }
}

/// What may stand outside the root element besides markup: XML whitespace, and the NUL
/// bytes some embedded HTTP clients append.
fn ignorable_outside(s: &str) -> bool {
    s.chars().all(|c| is_xml_space(c) || c == '\0')
}

struct Builder<'a> {
    input: &'a str,
    doc: Doc<'a>,
    stack: Vec<u32>,
}

impl<'a> Builder<'a> {
    fn open(&mut self, e: &BytesStart<'a>) -> Result<u32, XmlError> {
        if self.doc.nodes.len() >= MAX_ELEMENTS {
            return err(format!("more than {MAX_ELEMENTS} elements"));
        }
        if self.stack.len() >= MAX_DEPTH {
            return err(format!("elements nested deeper than {MAX_DEPTH} levels"));
        }
        if self.stack.is_empty() && !self.doc.nodes.is_empty() {
            return err("a second root element after the first one closed");
        }
        let qname = e.name().into_inner();
        let name = local(reborrow(self.input, qname).unwrap_or(""));
        if name.is_empty() {
            return err(format!("element name {qname:?} is not usable"));
        }
        let attrs_start = self.doc.attrs.len() as u32;
        let mut attributes = e.attributes();
        attributes.with_checks(false);
        for (i, a) in attributes.enumerate() {
            if i >= MAX_ATTRIBUTES {
                return err(format!("more than {MAX_ATTRIBUTES} attributes on <{name}>"));
            }
            let a = a.map_err(|e| XmlError(format!("bad attribute on <{name}>: {e}")))?;
            let key = a.key.into_inner();
            if key == "xmlns" || key.starts_with("xmlns:") {
                continue;
            }
            let key = local(reborrow(self.input, key).unwrap_or(""));
            if key.is_empty() {
                continue;
            }
            let value = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| XmlError(format!("bad attribute {key:?} on <{name}>: {e}")))?;
            let value = match value {
                Cow::Borrowed(v) => reborrow(self.input, v).map_or_else(|| Cow::Owned(v.to_owned()), Cow::Borrowed),
                Cow::Owned(v) => Cow::Owned(v),
            };
            self.doc.attrs.push(Attr { name: key, value });
        }
        let id = self.doc.nodes.len() as u32;
        self.doc.nodes.push(Node {
            name,
            text: Cow::Borrowed(""),
            attrs_start,
            attrs_end: self.doc.attrs.len() as u32,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
        });
        if let Some(&parent) = self.stack.last() {
            let p = &mut self.doc.nodes[parent as usize];
            if p.last_child == NONE {
                p.first_child = id;
            } else {
                let last = p.last_child as usize;
                p.last_child = id;
                self.doc.nodes[last].next_sibling = id;
                return Ok(id);
            }
            p.last_child = id;
        }
        Ok(id)
    }

    fn close(&mut self, id: u32) {
        let node = &mut self.doc.nodes[id as usize];
        let text = std::mem::take(&mut node.text);
        node.text = trim_cow(text);
    }

    /// Appends a piece of text to the open element. Whitespace-only text pieces
    /// (indentation) are dropped at the start of an element and once it has children.
    fn text(&mut self, piece: Cow<'a, str>, markup_free: bool) -> Result<(), XmlError> {
        let Some(&cur) = self.stack.last() else {
            if markup_free && ignorable_outside(&piece) {
                return Ok(());
            }
            return err("text outside the root element");
        };
        let node = &mut self.doc.nodes[cur as usize];
        if markup_free && piece.chars().all(is_xml_space) && (node.text.is_empty() || node.first_child != NONE) {
            return Ok(());
        }
        if node.text.is_empty() {
            node.text = piece;
        } else {
            node.text.to_mut().push_str(&piece);
        }
        Ok(())
    }
}

impl<'a> Doc<'a> {
    /// Parses one document. The whole input must be one root element, optionally preceded
    /// and followed by a declaration, comments, processing instructions, a DTD and whitespace.
    pub(super) fn parse(input: &'a str) -> Result<Doc<'a>, XmlError> {
        let mut reader = Reader::from_str(input);
        let mut b = Builder { input, doc: Doc { nodes: Vec::new(), attrs: Vec::new() }, stack: Vec::new() };
        loop {
            let event = match reader.read_event() {
                Ok(ev) => ev,
                Err(e) => return err(format!("not well-formed XML at byte {}: {e}", reader.error_position())),
            };
            match event {
                Event::Start(e) => {
                    let id = b.open(&e)?;
                    b.stack.push(id);
                }
                Event::Empty(e) => {
                    let id = b.open(&e)?;
                    b.close(id);
                }
                Event::End(_) => {
                    // quick-xml checks that the end tag matches the open one.
                    let Some(id) = b.stack.pop() else { return err("an end tag without a start tag") };
                    b.close(id);
                }
                Event::Text(t) => b.text(t.into_inner(), true)?,
                Event::CData(c) => b.text(c.into_inner(), false)?,
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c,
                        Ok(None) => match &*r {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            other => {
                                let shown: String = other.chars().take(32).collect();
                                return err(format!("undeclared entity &{shown}; (entities are never expanded)"));
                            }
                        },
                        Err(e) => return err(format!("bad character reference: {e}")),
                    };
                    let mut buf = [0u8; 4];
                    b.text(Cow::Owned(resolved.encode_utf8(&mut buf).to_owned()), false)?;
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
                Event::Eof => break,
            }
        }
        if let Some(&open) = b.stack.last() {
            return err(format!("the body ends inside <{}>", b.doc.nodes[open as usize].name));
        }
        if b.doc.nodes.is_empty() {
            return err("no root element");
        }
        Ok(b.doc)
    }

    /// The root element.
    pub(super) fn root(&self) -> El<'_, 'a> {
        El { doc: self, id: 0 }
    }
}

/// One element of a [`Doc`].
#[derive(Clone, Copy)]
pub(super) struct El<'d, 'a> {
    doc: &'d Doc<'a>,
    id: u32,
}

impl std::fmt::Debug for El<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}>", self.name())
    }
}

impl<'d, 'a> El<'d, 'a> {
    fn node(self) -> &'d Node<'a> {
        &self.doc.nodes[self.id as usize]
    }

    /// The local name, as written.
    pub(super) fn name(self) -> &'d str {
        self.node().name
    }

    /// Whether the local name is `name`, ignoring ASCII case.
    pub(super) fn is(self, name: &str) -> bool {
        self.node().name.eq_ignore_ascii_case(name)
    }

    /// The element's own text (text and CDATA, trimmed; empty when there is none).
    pub(super) fn text(self) -> &'d str {
        &self.node().text
    }

    /// The element's text when it is not empty.
    pub(super) fn value(self) -> Option<&'d str> {
        Some(self.text()).filter(|t| !t.is_empty())
    }

    /// Attributes, in document order (namespace declarations excluded).
    pub(super) fn attrs(self) -> impl Iterator<Item = (&'d str, &'d str)> + 'd {
        let n = self.node();
        self.doc.attrs[n.attrs_start as usize..n.attrs_end as usize].iter().map(|a| (a.name, &*a.value))
    }

    /// The value of attribute `name` (ASCII case-insensitive).
    pub(super) fn attr(self, name: &str) -> Option<&'d str> {
        self.attrs().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// Whether the element has child elements.
    pub(super) fn has_children(self) -> bool {
        self.node().first_child != NONE
    }

    /// Child elements, in document order.
    pub(super) fn children(self) -> Children<'d, 'a> {
        Children { doc: self.doc, next: self.node().first_child }
    }

    /// The first child element called `name`.
    pub(super) fn child(self, name: &str) -> Option<El<'d, 'a>> {
        self.children().find(|c| c.is(name))
    }

    /// The first child element with one of `names` (checked in order of preference).
    pub(super) fn child_any(self, names: &[&str]) -> Option<El<'d, 'a>> {
        names.iter().find_map(|n| self.child(n))
    }

    /// Every child element called `name`.
    pub(super) fn children_named<'n>(self, name: &'n str) -> impl Iterator<Item = El<'d, 'a>> + 'n
    where
        'd: 'n,
    {
        self.children().filter(move |c| c.is(name))
    }

    /// The non-empty text of the first child called `name`.
    pub(super) fn child_value(self, name: &str) -> Option<&'d str> {
        self.child(name).and_then(El::value)
    }

    /// The non-empty text of the first of `names` that has one.
    pub(super) fn child_value_any(self, names: &[&str]) -> Option<&'d str> {
        names.iter().find_map(|n| self.child_value(n))
    }

    /// Follows a path of child names (first match at each step).
    pub(super) fn path(self, path: &[&str]) -> Option<El<'d, 'a>> {
        path.iter().try_fold(self, |el, name| el.child(name))
    }
}

/// Iterator over the child elements of an element.
pub(super) struct Children<'d, 'a> {
    doc: &'d Doc<'a>,
    next: u32,
}

impl<'d, 'a> Iterator for Children<'d, 'a> {
    type Item = El<'d, 'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.next == NONE {
            return None;
        }
        let el = El { doc: self.doc, id: self.next };
        self.next = el.node().next_sibling;
        Some(el)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Doc<'_>, XmlError> {
        Doc::parse(s)
    }

    #[test]
    fn names_text_cdata_and_attributes() {
        let doc = parse(
            "<?xml version=\"1.0\"?>\n<ns:config version=\"1.7\" xmlns:ns=\"http://www.ipc.com/ver10\" xmlns=\"x\">\n  \
             <a type=\"string\"><![CDATA[ hello ]]></a>\n  <deviceNo.>1</deviceNo.>\n  <b x='1' y=\"&lt;&#65;\"/>\n  \
             <c>x &amp; y</c>\n</ns:config>",
        )
        .unwrap();
        let root = doc.root();
        assert_eq!(root.name(), "config");
        assert_eq!(root.attr("VERSION"), Some("1.7"));
        assert_eq!(root.attrs().count(), 1, "xmlns declarations are not attributes");
        assert_eq!(root.child_value("A"), Some("hello"));
        assert_eq!(root.child_value("deviceno."), Some("1"));
        assert_eq!(root.child("b").unwrap().attr("y"), Some("<A"));
        assert_eq!(root.child_value("c"), Some("x & y"));
        assert_eq!(root.text(), "", "indentation is not text");
        assert_eq!(root.children().count(), 4);
    }

    #[test]
    fn names_borrow_from_the_input() {
        let input = String::from("<config><smartType type=\"x\">VEHICE</smartType></config>");
        let doc = parse(&input).unwrap();
        let st = doc.root().child("smartType").unwrap();
        assert!(reborrow(&input, st.name()).is_some());
        assert!(reborrow(&input, st.text()).is_some());
        assert!(reborrow(&input, st.attr("type").unwrap()).is_some());
    }

    #[test]
    fn rejects_what_is_not_one_well_formed_element() {
        for bad in [
            "",
            "<?xml version=\"1.0\"?>",
            "<a>",
            "<a></b>",
            "</a>",
            "<a/><b/>",
            "<a/>trailing",
            "lead<a/>",
            "<a>&bogus;</a>",
            "<a x=\"&bogus;\"/>",
            "<a>&#0;</a>",
            "<a>AT&T</a>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse("<a/>\n\0\0").is_ok(), "trailing NULs are tolerated");
        assert!(parse("<!-- c --><a/><!-- after -->").is_ok());
    }

    #[test]
    fn entities_from_a_dtd_are_not_expanded() {
        let lol = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>\
                   <lolz>&lol2;</lolz>";
        let e = parse(lol).unwrap_err();
        assert!(e.0.contains("entit"), "{e:?}");
        let ext = "<!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><foo>&xxe;</foo>";
        assert!(parse(ext).is_err());
        // A DTD nobody refers to is skipped.
        assert_eq!(parse("<!DOCTYPE a><a>ok</a>").unwrap().root().text(), "ok");
    }

    #[test]
    fn depth_and_size_limits() {
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}{}", "<a>".repeat(MAX_DEPTH + 1), "</a>".repeat(MAX_DEPTH + 1));
        assert!(parse(&deep).unwrap_err().0.contains("deeper"));
        let many = format!("<r>{}</r>", "<i/>".repeat(MAX_ELEMENTS));
        assert!(parse(&many).unwrap_err().0.contains("elements"));
        let attrs: String = (0..=MAX_ATTRIBUTES).map(|i| format!(" a{i}=\"1\"")).collect();
        assert!(parse(&format!("<r{attrs}/>")).is_err());
    }

    #[test]
    fn mixed_text_keeps_inner_spaces() {
        let doc = parse("<a> x <![CDATA[y]]> z </a>").unwrap();
        assert_eq!(doc.root().text(), "x y z");
    }
}
