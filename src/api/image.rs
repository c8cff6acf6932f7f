//! Where an image comes from: a URL the API fetches, or a local file we upload.

use std::fmt;
use std::path::PathBuf;

/// One image to classify.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageSource {
    /// An `http://` or `https://` URL the API fetches itself (sent as `image_url`, GET).
    Url(String),
    /// A local file, uploaded as URL-safe base64 in a POST form (`image_base64`).
    File(PathBuf),
}

impl ImageSource {
    /// Classifies a text from an input file: a URL when it has an `http(s)://`
    /// scheme, a local path otherwise.
    pub fn parse(text: &str) -> ImageSource {
        let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            ImageSource::Url(text.to_string())
        } else {
            ImageSource::File(PathBuf::from(text))
        }
    }
}

/// Whether `head` (the first bytes of a file, 12 are enough) starts like an
/// image format the API reads: JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC/AVIF.
/// Checked up front so a batch of wrong files costs no requests.
pub fn looks_like_image(head: &[u8]) -> bool {
    let starts = |magic: &[u8]| head.starts_with(magic);
    starts(b"\xFF\xD8")
        || starts(b"\x89PNG\r\n\x1A\n")
        || starts(b"GIF87a")
        || starts(b"GIF89a")
        || (starts(b"RIFF") && head.get(8..12) == Some(b"WEBP"))
        || starts(b"BM")
        || starts(b"II*\0")
        || starts(b"MM\0*")
        || (head.get(4..8) == Some(b"ftyp")
            && matches!(
                head.get(8..12),
                Some(b"heic" | b"heix" | b"hevc" | b"mif1" | b"msf1" | b"avif")
            ))
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSource::Url(url) => f.write_str(url),
            ImageSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_formats_are_recognised_by_their_first_bytes() {
        assert!(looks_like_image(b"\xFF\xD8\xFF\xE0\0\x10JFIF"));
        assert!(looks_like_image(b"\x89PNG\r\n\x1A\n\0\0"));
        assert!(looks_like_image(b"GIF89a"));
        assert!(looks_like_image(b"RIFF\x10\0\0\0WEBPVP8 "));
        assert!(looks_like_image(b"\0\0\0\x18ftypheic"));
        assert!(!looks_like_image(b"RIFF\x10\0\0\0WAVEfmt "));
        assert!(!looks_like_image(b"%PDF-1.7"));
        assert!(!looks_like_image(b"id,url\n"));
        assert!(!looks_like_image(b""));
    }

    #[test]
    fn urls_and_paths_are_told_apart() {
        assert_eq!(
            ImageSource::parse("https://x/y.jpg"),
            ImageSource::Url("https://x/y.jpg".into())
        );
        assert_eq!(
            ImageSource::parse("HTTP://x/y.jpg"),
            ImageSource::Url("HTTP://x/y.jpg".into())
        );
        assert_eq!(
            ImageSource::parse("photos/1.jpg"),
            ImageSource::File("photos/1.jpg".into())
        );
        assert_eq!(ImageSource::parse("a").to_string(), "a");
    }
}
