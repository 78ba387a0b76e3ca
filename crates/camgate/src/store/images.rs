//! Snapshots as files under `data_dir/images/YYYY/MM/DD/`.

use std::path::{Path, PathBuf};

use camgate_core::{Event, Image};
use sha2::{Digest, Sha256};

use super::StoreError;

/// Writes and removes image files.
#[derive(Debug, Clone)]
pub struct ImageStore {
    data_dir: PathBuf,
    root: PathBuf,
}

/// A file extension for the image, from its first bytes.
fn extension(bytes: &[u8]) -> &'static str {
    match bytes {
        [0xff, 0xd8, 0xff, ..] => "jpg",
        [0x89, b'P', b'N', b'G', ..] => "png",
        [b'G', b'I', b'F', b'8', ..] => "gif",
        [b'B', b'M', ..] => "bmp",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => "webp",
        _ => "bin",
    }
}

impl ImageStore {
    pub fn new(data_dir: &Path) -> Self {
        ImageStore { data_dir: data_dir.to_path_buf(), root: data_dir.join("images") }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Write the `n`-th (1-based) image of `role` of `event`. The file appears whole or not
    /// at all (write to a temporary name, then rename); a failed write leaves nothing behind.
    pub async fn save(&self, event: &Event, role: &str, n: usize, bytes: &[u8]) -> Result<Image, StoreError> {
        let day = event.received_at.to_zoned(jiff::tz::TimeZone::UTC).date();
        // Roles come from parsers; keep the file name safe whatever they say.
        let safe: String =
            role.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        let suffix = if n > 1 { format!("-{n}") } else { String::new() };
        let rel = format!(
            "images/{:04}/{:02}/{:02}/{}-{safe}{suffix}.{}",
            day.year(),
            day.month(),
            day.day(),
            event.id,
            extension(bytes)
        );
        let path = self.data_dir.join(&rel);
        let tmp = path.with_extension("part");
        let sha256 = hex::encode(Sha256::digest(bytes));
        let write = async {
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            tokio::fs::write(&tmp, bytes).await?;
            tokio::fs::rename(&tmp, &path).await
        };
        if let Err(e) = write.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            let msg = format!("writing {}: {e}", path.display());
            return Err(if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
                StoreError::Full(msg)
            } else {
                StoreError::Image(msg)
            });
        }
        Ok(Image { role: role.to_owned(), path: rel, bytes: bytes.len() as u64, sha256 })
    }

    /// Remove image files (of an event that was not stored).
    pub async fn remove(&self, images: &[Image]) {
        for img in images {
            let path = self.data_dir.join(&img.path);
            if let Err(e) = tokio::fs::remove_file(&path).await {
                tracing::warn!(path = %path.display(), error = %e, "could not remove an unused image file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_from_magic() {
        assert_eq!(extension(&[0xff, 0xd8, 0xff, 0xe0]), "jpg");
        assert_eq!(extension(b"\x89PNG\r\n"), "png");
        assert_eq!(extension(b"hello"), "bin");
    }
}
