//! Tiny helpers to write the device XML into a `String`: elements with and without the IPC
//! `type="..."` attribute, CDATA text, and base64 image data written in place.

use std::fmt::{Display, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// An XML text buffer.
#[derive(Debug, Default)]
pub(crate) struct Xml {
    pub(crate) out: String,
}

impl Xml {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Xml { out: String::with_capacity(n) }
    }

    /// Raw markup, written as is.
    pub(crate) fn raw(&mut self, s: &str) -> &mut Self {
        self.out.push_str(s);
        self
    }

    /// `<name>`.
    pub(crate) fn open(&mut self, name: &str) -> &mut Self {
        self.fmt(format_args!("<{name}>"))
    }

    /// `<name type="ty" count="n">` for IPC lists.
    pub(crate) fn open_list(&mut self, name: &str, count: usize) -> &mut Self {
        self.fmt(format_args!("<{name} type=\"list\" count=\"{count}\">"))
    }

    /// `</name>`.
    pub(crate) fn close(&mut self, name: &str) -> &mut Self {
        self.fmt(format_args!("</{name}>"))
    }

    /// A newline (between top-level elements, as the devices write them).
    pub(crate) fn nl(&mut self) -> &mut Self {
        self.out.push('\n');
        self
    }

    /// `<name type="ty">value</name>` (IPC); `value` must not need escaping (numbers, codes).
    pub(crate) fn typed(&mut self, name: &str, ty: &str, value: impl Display) -> &mut Self {
        self.fmt(format_args!("<{name} type=\"{ty}\">{value}</{name}>"))
    }

    /// `<name type="ty"><![CDATA[value]]></name>` (IPC strings).
    pub(crate) fn typed_cdata(&mut self, name: &str, ty: &str, value: &str) -> &mut Self {
        self.fmt(format_args!("<{name} type=\"{ty}\">"));
        self.cdata(value);
        self.close(name)
    }

    /// `<name>value</name>` (NVR); `value` must not need escaping.
    pub(crate) fn el(&mut self, name: &str, value: impl Display) -> &mut Self {
        self.fmt(format_args!("<{name}>{value}</{name}>"))
    }

    /// `<name><![CDATA[value]]></name>` (NVR device strings).
    pub(crate) fn el_cdata(&mut self, name: &str, value: &str) -> &mut Self {
        self.open(name);
        self.cdata(value);
        self.close(name)
    }

    /// `<![CDATA[value]]>`; a `]]>` inside `value` is split across two sections.
    pub(crate) fn cdata(&mut self, value: &str) -> &mut Self {
        self.out.push_str("<![CDATA[");
        self.out.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
        self.out.push_str("]]>");
        self
    }

    /// The base64 of `bytes`, on one line, written straight into the buffer.
    pub(crate) fn base64(&mut self, bytes: &[u8]) -> &mut Self {
        STANDARD.encode_string(bytes, &mut self.out);
        self
    }

    /// Four `<x1>`..`<y2>` children, typed (IPC) or plain (NVR).
    pub(crate) fn rect(&mut self, name: &str, r: [u32; 4], typed: bool) -> &mut Self {
        self.open(name);
        for (n, v) in ["x1", "y1", "x2", "y2"].into_iter().zip(r) {
            if typed {
                self.typed(n, "uint32", v);
            } else {
                self.el(n, v);
            }
        }
        self.close(name)
    }

    /// `<name><x>..</x><y>..</y></name>`, typed (IPC) or plain (NVR).
    pub(crate) fn point(&mut self, name: &str, (x, y): (u32, u32), typed: bool) -> &mut Self {
        self.open(name);
        if typed {
            self.typed("x", "uint32", x).typed("y", "uint32", y);
        } else {
            self.el("x", x).el("y", y);
        }
        self.close(name)
    }

    fn fmt(&mut self, args: std::fmt::Arguments<'_>) -> &mut Self {
        self.out.write_fmt(args).expect("writing to a String cannot fail");
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdata_end_is_split() {
        let mut x = Xml::default();
        x.el_cdata("n", "a]]>b");
        assert_eq!(x.out, "<n><![CDATA[a]]]]><![CDATA[>b]]></n>");
    }
}
