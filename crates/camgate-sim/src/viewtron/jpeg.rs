//! Valid JPEG files of any size: [`TINY_JPEG`] with comment (`COM`) segments of random
//! filler inserted after the SOI marker. Decoders skip `COM` segments, so the file decodes
//! to the same 1×1 picture whatever its size, and every file is different (random filler),
//! so a receiver's sha256 of each stored image is checkable.

use std::ops::RangeInclusive;

use rand::RngExt;
use rand::rngs::StdRng;

use crate::generic::TINY_JPEG;

/// The base picture every generated JPEG is built on (see [`fake_jpeg`]): [`TINY_JPEG`].
pub fn base_jpeg() -> &'static [u8] {
    TINY_JPEG
}

/// Largest `COM` segment: marker (2 bytes) + length field (2) + 65,533 bytes of payload;
/// the length field counts itself and the payload, at most 65,535.
const MAX_SEGMENT: usize = 2 + 65_535;
/// Smallest `COM` segment: marker + length field, no payload.
const MIN_SEGMENT: usize = 4;

/// Sizes of the generated images in bytes, drawn uniformly from each range. A range of
/// `0..=0` sends that image as empty elements (`*Base64Length` 0), as devices do when a
/// picture is disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSizes {
    /// Overview frames (`sourceDataInfo`, the IPC LPR overview item).
    pub source: RangeInclusive<usize>,
    /// Target crops: person, vehicle, face.
    pub crop: RangeInclusive<usize>,
    /// Licence plate crops.
    pub plate: RangeInclusive<usize>,
}

impl Default for ImageSizes {
    /// Realistic sizes: ~50 KB overviews, 2-10 KB crops, 1.5-3.5 KB plate crops.
    fn default() -> Self {
        ImageSizes { source: 45_000..=55_000, crop: 2_000..=10_000, plate: 1_500..=3_500 }
    }
}

impl ImageSizes {
    /// Small images (a few hundred bytes), for fast tests that still carry real JPEGs.
    pub fn small() -> Self {
        ImageSizes { source: 600..=900, crop: 300..=500, plate: 250..=400 }
    }

    /// No images at all: every image element is present but empty.
    pub fn none() -> Self {
        ImageSizes { source: 0..=0, crop: 0..=0, plate: 0..=0 }
    }
}

/// The size actually produced for a requested `size`: `0` stays `0` (no image); sizes below
/// the [`base_jpeg`] become its size; sizes 1-3 bytes above it (too small for a `COM`
/// segment) grow to 4 bytes above it. Every other size is exact.
pub fn jpeg_size(size: usize) -> usize {
    let base = TINY_JPEG.len();
    if size == 0 {
        return 0;
    }
    let extra = size.saturating_sub(base);
    if extra > 0 && extra < MIN_SEGMENT { base + MIN_SEGMENT } else { base + extra }
}

/// A valid JPEG of [`jpeg_size`]`(size)` bytes (at least the [`base_jpeg`], 160 bytes),
/// starting `FF D8` and ending `FF D9`: the base picture with random filler in `COM`
/// segments right after SOI (filler bytes `00`-`FE`, so no stray marker byte appears even to
/// naive scanners).
pub fn fake_jpeg(rng: &mut StdRng, size: usize) -> Vec<u8> {
    let base: &[u8] = TINY_JPEG;
    let total = jpeg_size(size).max(base.len());
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&base[..2]); // SOI
    let mut extra = total - base.len();
    while extra > 0 {
        let mut seg = extra.min(MAX_SEGMENT);
        // Never leave a remainder too small to be a segment of its own.
        if (1..MIN_SEGMENT).contains(&(extra - seg)) {
            seg -= MIN_SEGMENT;
        }
        let len = u16::try_from(seg - 2).expect("segment length fits in u16");
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&len.to_be_bytes());
        let start = out.len();
        out.resize(start + seg - MIN_SEGMENT, 0);
        rng.fill(&mut out[start..]);
        for b in &mut out[start..] {
            if *b == 0xFF {
                *b = 0xFE;
            }
        }
        extra -= seg;
    }
    out.extend_from_slice(&base[2..]);
    debug_assert_eq!(out.len(), total);
    out
}

/// A size drawn from `range` (`0..=0` gives `0`).
pub(crate) fn draw(rng: &mut StdRng, range: &RangeInclusive<usize>) -> usize {
    if range.start() >= range.end() { *range.start() } else { rng.random_range(range.clone()) }
}

#[cfg(test)]
pub(crate) mod tests {
    use rand::SeedableRng;

    use super::*;

    /// Walks the JPEG marker segments up to SOS and checks their lengths; returns the number
    /// of `COM` segments. Panics on anything malformed.
    pub(crate) fn check_jpeg(bytes: &[u8]) -> usize {
        assert_eq!(&bytes[..2], &[0xFF, 0xD8], "SOI");
        assert_eq!(&bytes[bytes.len() - 2..], &[0xFF, 0xD9], "EOI");
        let mut i = 2;
        let mut coms = 0;
        loop {
            assert_eq!(bytes[i], 0xFF, "marker at {i}");
            let marker = bytes[i + 1];
            let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
            assert!(len >= 2, "segment length at {i}");
            assert!(i + 2 + len <= bytes.len(), "segment at {i} runs past the end");
            if marker == 0xFE {
                coms += 1;
                assert!(!bytes[i + 4..i + 2 + len].contains(&0xFF), "0xFF in COM filler");
            }
            i += 2 + len;
            if marker == 0xDA {
                // Entropy-coded data follows SOS, then EOI: the tail is the base picture's.
                let tail = &TINY_JPEG[TINY_JPEG.len() - (bytes.len() - i)..];
                assert_eq!(&bytes[i..], tail, "scan data");
                return coms;
            }
        }
    }

    #[test]
    fn sizes_are_exact_and_files_are_valid() {
        let mut rng = StdRng::seed_from_u64(1);
        let tiny = base_jpeg().len();
        assert_eq!(check_jpeg(base_jpeg()), 0);
        for size in [tiny, tiny + 4, tiny + 5, 2_000, 50_000, 65_537 + tiny, 65_538 + tiny, 65_541 + tiny, 200_000] {
            let j = fake_jpeg(&mut rng, size);
            assert_eq!(j.len(), size, "size {size}");
            let coms = check_jpeg(&j);
            assert_eq!(coms, (size - tiny).div_ceil(MAX_SEGMENT), "segments for {size}");
        }
        assert_eq!(fake_jpeg(&mut rng, 1).len(), tiny);
        assert_eq!(fake_jpeg(&mut rng, tiny + 2).len(), tiny + 4);
        assert_eq!(jpeg_size(0), 0);
    }

    #[test]
    fn tiny_jpeg_is_strictly_segmented() {
        // SOI, then segments whose declared lengths chain exactly up to the scan, then EOI.
        let j = TINY_JPEG;
        assert_eq!(&j[..2], [0xFF, 0xD8]);
        assert_eq!(&j[j.len() - 2..], [0xFF, 0xD9]);
        let mut i = 2;
        while j[i + 1] != 0xDA {
            assert_eq!(j[i], 0xFF, "a segment starts at byte {i}");
            i += 2 + usize::from(u16::from_be_bytes([j[i + 2], j[i + 3]]));
        }
        assert_eq!(check_jpeg(j), 0);
    }

    #[test]
    fn files_differ() {
        let mut rng = StdRng::seed_from_u64(2);
        assert_ne!(fake_jpeg(&mut rng, 5_000), fake_jpeg(&mut rng, 5_000));
    }
}
