//! Decoding the base64 images of a post, within the per-post byte budget.

use super::ParsedImage;
use super::fields::uint;
use super::json::is_base64_data;
use super::xml::El;
use crate::generic::decode_base64;

/// Most image error messages kept per post (the rest are counted in one more message).
const MAX_ERRORS: usize = 32;

/// Collects the images of one post.
pub(super) struct Images {
    budget: usize,
    used: usize,
    pub images: Vec<ParsedImage>,
    pub errors: Vec<String>,
    dropped_errors: usize,
}

/// The base64 text of an image container (`sourceDataInfo`, `targetImageData`): a
/// non-empty `*Base64Data` whose `*Base64Length`, if given, is not `0`.
fn data_of<'d>(container: El<'d, '_>) -> Option<&'d str> {
    let length = container.children().find(|c| {
        let n = c.name().as_bytes();
        n.len() >= 12 && n[n.len() - 12..].eq_ignore_ascii_case(b"Base64Length")
    });
    if length.and_then(|l| uint(l.text())) == Some(0) {
        return None;
    }
    container.children().find(|c| is_base64_data(*c)).and_then(El::value)
}

impl Images {
    pub(super) fn new(budget: usize) -> Self {
        Images { budget, used: 0, images: Vec::new(), errors: Vec::new(), dropped_errors: 0 }
    }

    /// Decodes the image in `container` (if any) as `role`. A bad image costs only itself:
    /// the reason goes to `errors`.
    pub(super) fn add(&mut self, role: &str, container: El<'_, '_>) {
        let Some(data) = data_of(container) else { return };
        let dim = |names: &[&str]| container.child_value_any(names).and_then(uint).and_then(|v| u32::try_from(v).ok());
        let width = dim(&["width"]).filter(|w| *w > 0);
        let height = dim(&["height"]).filter(|h| *h > 0);
        let estimate = data.len() / 4 * 3;
        if self.used.saturating_add(estimate) > self.budget.saturating_add(3) {
            self.error(format!(
                "{role} image in <{}> dropped: about {estimate} bytes would exceed the {} byte image limit of a post \
                 ({} bytes already used)",
                container.name(),
                self.budget,
                self.used
            ));
            return;
        }
        let bytes = if data.bytes().any(|b| b.is_ascii_whitespace()) {
            let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            decode_base64(&compact)
        } else {
            decode_base64(data)
        };
        match bytes {
            Ok(bytes) if bytes.is_empty() => {}
            Ok(bytes) if self.used + bytes.len() > self.budget => self.error(format!(
                "{role} image in <{}> dropped: {} bytes would exceed the {} byte image limit of a post",
                container.name(),
                bytes.len(),
                self.budget
            )),
            Ok(bytes) => {
                self.used += bytes.len();
                self.images.push(ParsedImage { role: role.to_owned(), bytes, width, height });
            }
            Err(e) => self.error(format!(
                "{role} image in <{}> ({} base64 chars) is not valid base64: {e}",
                container.name(),
                data.len()
            )),
        }
    }

    /// Whether an image of `role` was decoded.
    pub(super) fn has_role(&self, role: &str) -> bool {
        self.images.iter().any(|i| i.role == role)
    }

    fn error(&mut self, message: String) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(message);
        } else {
            self.dropped_errors += 1;
        }
    }

    /// The decoded images and the error messages.
    pub(super) fn finish(mut self) -> (Vec<ParsedImage>, Vec<String>) {
        if self.dropped_errors > 0 {
            self.errors.push(format!("{} more image errors not listed", self.dropped_errors));
        }
        (self.images, self.errors)
    }
}
