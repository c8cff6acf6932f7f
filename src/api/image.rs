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
