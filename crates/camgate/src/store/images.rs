//! Snapshots as files under `data_dir/images/YYYY/MM/DD/`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use camgate_core::{EventId, Image};
use sha2::{Digest, Sha256};

use super::StoreError;

/// Writes and removes image files. Its methods do blocking file I/O: call them on a
/// blocking thread (the store does, once per event for all its images).
#[derive(Debug, Clone)]
pub struct ImageStore {
    data_dir: PathBuf,
    root: PathBuf,
    /// Day directories known to exist, so that each is created once, not once per image.
    made: Arc<Mutex<HashSet<PathBuf>>>,
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
        ImageStore { data_dir: data_dir.to_path_buf(), root: data_dir.join("images"), made: Arc::default() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Write every image of the event `id` received at `received_at`; the n-th image of a
    /// role gets `-n` in its name. Each file appears whole or not at all (written under a
    /// temporary name, then renamed); when one fails, the ones already written are removed.
    pub fn save_all(
        &self,
        id: EventId,
        received_at: jiff::Timestamp,
        images: &[(String, Vec<u8>)],
    ) -> Result<Vec<Image>, StoreError> {
        let day = received_at.to_zoned(jiff::tz::TimeZone::UTC).date();
        let dir_rel = format!("images/{:04}/{:02}/{:02}", day.year(), day.month(), day.day());
        let dir = self.data_dir.join(&dir_rel);
        let mut written = Vec::with_capacity(images.len());
        for (i, (role, bytes)) in images.iter().enumerate() {
            let n = images[..i].iter().filter(|(r, _)| r == role).count() + 1;
            match self.save_one(&dir, &dir_rel, id, role, n, bytes) {
                Ok(img) => written.push(img),
                Err(e) => {
                    self.remove_all(&written);
                    return Err(e);
                }
            }
        }
        Ok(written)
    }

    fn save_one(
        &self,
        dir: &Path,
        dir_rel: &str,
        id: EventId,
        role: &str,
        n: usize,
        bytes: &[u8],
    ) -> Result<Image, StoreError> {
        // Roles come from parsers; keep the file name safe whatever they say.
        let safe: String =
            role.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        let suffix = if n > 1 { format!("-{n}") } else { String::new() };
        let name = format!("{id}-{safe}{suffix}.{}", extension(bytes));
        let path = dir.join(&name);
        let tmp = path.with_extension("part");
        let write = || -> std::io::Result<()> {
            let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
            if !made.contains(dir) {
                std::fs::create_dir_all(dir)?;
                made.insert(dir.to_path_buf());
            }
            drop(made);
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            if e.kind() == std::io::ErrorKind::NotFound {
                // The directory went away (cleaned up by hand): make it again next time.
                self.made.lock().unwrap_or_else(|e| e.into_inner()).remove(dir);
            }
            let msg = format!("writing {}: {e}", path.display());
            return Err(if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
                StoreError::Full(msg)
            } else {
                StoreError::Image(msg)
            });
        }
        let sha256 = hex::encode(Sha256::digest(bytes));
        Ok(Image { role: role.to_owned(), path: format!("{dir_rel}/{name}"), bytes: bytes.len() as u64, sha256 })
    }

    /// Remove image files (of an event that was not stored).
    pub fn remove_all(&self, images: &[Image]) {
        for img in images {
            let path = self.data_dir.join(&img.path);
            if let Err(e) = std::fs::remove_file(&path) {
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
