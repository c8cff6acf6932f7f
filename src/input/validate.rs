//! Checks of one record's fields, shared by all formats.

use std::path::Path;

use crate::api::ImageSource;
use crate::models;

use super::ReadOptions;

/// Where an image text came from: a field named `url` must hold an http(s)
/// URL; a `path` field or a plain line may hold either a URL or a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    /// A `url` column or key.
    Url,
    /// A `path` column or key, or a line of a plain list.
    Any,
}

/// Turns the text of a `url`/`path` field or a plain line into an image
/// source, refusing what cannot work.
///
/// # Errors
///
/// The reason, without a location: an empty text, a URL that is not http(s)
/// with a host, a `url` field without an `http(s)://` scheme, a scheme-less
/// text that looks like a web address and is not a file, or (with
/// `check_files`) a path that is not an existing regular file.
pub(super) fn image(
    field: Field,
    text: &str,
    options: &ReadOptions,
) -> Result<ImageSource, String> {
    if text.is_empty() {
        return Err("empty image URL or path".to_string());
    }
    let source = ImageSource::parse(text);
    if field == Field::Url && matches!(source, ImageSource::File(_)) && other_scheme(text).is_none()
    {
        return Err(format!(
            "`url` value `{text}` is not a URL: a URL needs http:// or https:// \
             (put local files in a `path` field)"
        ));
    }
    match source {
        ImageSource::Url(url) => {
            check_url(&url)?;
            Ok(ImageSource::Url(url))
        }
        ImageSource::File(path) => {
            if let Some(scheme) = other_scheme(text) {
                return Err(format!(
                    "unsupported URL scheme `{scheme}` in `{text}`: a URL needs http:// or https://"
                ));
            }
            if looks_like_web_address(text) && !path.exists() {
                return Err(format!(
                    "`{text}` is not a file, and a URL needs http:// or https://"
                ));
            }
            if options.check_files {
                check_file(&path)?;
            }
            Ok(ImageSource::File(path))
        }
    }
}

/// Checks an `http(s)://` URL has a host and no spaces or control characters.
fn check_url(url: &str) -> Result<(), String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "URL contains a space or control character: `{url}`"
        ));
    }
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = split_host_port(host_port);
    if host.is_empty() {
        return Err(format!("URL has no host: `{url}`"));
    }
    if let Some(port) = port {
        if port.parse::<u16>().is_err() {
            return Err(format!("URL has a bad port `{port}`: `{url}`"));
        }
    }
    Ok(())
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]`.
fn split_host_port(text: &str) -> (&str, Option<&str>) {
    if let Some(rest) = text.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => ("", None),
        };
    }
    match text.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    }
}

/// The scheme of a `scheme://...` text, when it has one (it is not http(s):
/// `ImageSource::parse` took those).
fn other_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// Whether a scheme-less text reads like a web address: `www.` first, or a
/// first path segment shaped like a domain name (`example.com/a.jpg`).
fn looks_like_web_address(text: &str) -> bool {
    if text
        .get(..4)
        .is_some_and(|start| start.eq_ignore_ascii_case("www."))
    {
        return true;
    }
    let Some((first, _)) = text.split_once('/') else {
        return false;
    };
    let labels: Vec<&str> = first.split('.').collect();
    let Some(tld) = labels.last() else {
        return false;
    };
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && tld.len() >= 2
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && !is_image_extension(tld)
}

fn is_image_extension(ext: &str) -> bool {
    const EXTENSIONS: [&str; 10] = [
        "jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff", "heic", "avif",
    ];
    EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext))
}

/// Checks a local image path names an existing regular file that starts
/// like an image.
fn check_file(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => check_image_content(path),
        Ok(_) => Err(format!("not a regular file: {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "image file not found: {}{}",
            path.display(),
            format_hint(&path.to_string_lossy())
        )),
        Err(e) => Err(format!("cannot access image file {}: {e}", path.display())),
    }
}

/// A line read as a path that looks like a record of another format (the
/// file's name did not tell it): say which `--format` it may need.
fn format_hint(line: &str) -> &'static str {
    if line.starts_with('{') && line.ends_with('}') {
        "; the line is a JSON object: for JSONL, name the file .jsonl or give --format jsonl"
    } else if line.contains(',') && line.contains("://") {
        "; the line has commas: for CSV, name the file .csv or give --format csv"
    } else {
        ""
    }
}

fn check_image_content(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut head = Vec::with_capacity(12);
    std::fs::File::open(path)
        .and_then(|file| file.take(12).read_to_end(&mut head))
        .map_err(|e| format!("cannot read image file {}: {e}", path.display()))?;
    if head.is_empty() {
        Err(format!("image file is empty: {}", path.display()))
    } else if crate::api::looks_like_image(&head) {
        Ok(())
    } else {
        Err(format!(
            "not an image (expected JPEG, PNG, GIF, WebP, BMP, TIFF or HEIC): {}",
            path.display()
        ))
    }
}

/// Why a field (or column) `name` that is not this tool's but holds model
/// ids is refused, when there is no `models`: `model`, `modles`, `model_ids`
/// read as a typo of `models`, and the record would silently get the
/// default models instead (six readings, not the one or two asked for).
/// Callers look only at names that read as `models` mistyped (see
/// [`looks_like_models`]: a `kind` that says `caption` is not one). `None`
/// when the values are not all known model ids (a camera's model): that
/// field is not this tool's, and is left alone.
pub(super) fn model_for_models<'a>(
    name: &str,
    values: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let ids: Vec<&str> = values
        .into_iter()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    let all_known = !ids.is_empty() && ids.iter().all(|id| crate::models::is_known(id));
    all_known.then(|| {
        format!(
            "`{name}` holds model ids ({}), but restb reads them from `models`: rename it, or \
             the record gets the default models",
            ids.join(", ")
        )
    })
}

/// Whether a field's name reads as `models` mistyped: it holds `model`, or
/// is at most two letters' edits from `models` (`modles`, `mdoels`).
pub(super) fn looks_like_models(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    name.contains("model") || edit_distance(&name, "models") <= 2
}

/// Levenshtein distance, on bytes (the names that matter are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Cleans a record's model list: items trimmed, empty ones and repeats
/// dropped. A list left empty means the record does not say (`None`).
pub(super) fn clean_models<'a>(items: impl IntoIterator<Item = &'a str>) -> Option<Vec<String>> {
    let mut models: Vec<String> = Vec::new();
    for item in items.into_iter().map(str::trim) {
        if !item.is_empty() && !models.iter().any(|m| m == item) {
            models.push(item.to_string());
        }
    }
    (!models.is_empty()).then_some(models)
}

/// Refuses model ids this tool does not know, unless the options allow them.
///
/// # Errors
///
/// The reason, listing every unknown id of the record.
pub(super) fn check_models(models: &[String], options: &ReadOptions) -> Result<(), String> {
    if options.allow_unknown_models {
        return Ok(());
    }
    let unknown: Vec<&str> = models
        .iter()
        .map(String::as_str)
        .filter(|m| !models::is_known(m))
        .collect();
    match unknown.as_slice() {
        [] => Ok(()),
        [one] => Err(format!(
            "unknown model id `{one}` (use --allow-unknown-models to send it anyway)"
        )),
        many => Err(format!(
            "unknown model ids `{}` (use --allow-unknown-models to send them anyway)",
            many.join("`, `")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Format;

    fn options(check_files: bool) -> ReadOptions {
        ReadOptions {
            format: Format::Lines,
            allow_unknown_models: false,
            check_files,
        }
    }

    #[test]
    fn good_urls_pass() {
        for url in [
            "https://example.com/a.jpg",
            "http://user:pw@example.com:8080/a.jpg?x=1#f",
            "HTTPS://[::1]:443/a",
            "http://localhost",
        ] {
            assert_eq!(
                image(Field::Any, url, &options(true)),
                Ok(ImageSource::Url(url.to_string())),
                "{url}"
            );
        }
    }

    #[test]
    fn bad_urls_fail() {
        let cases = [
            ("https://", "URL has no host"),
            ("http:///a.jpg", "URL has no host"),
            ("https://:80/a", "URL has no host"),
            ("https://x:99999/a", "bad port"),
            ("https://x/a b.jpg", "space or control"),
            ("ftp://x", "unsupported URL scheme `ftp`"),
            ("file:///tmp/a.jpg", "unsupported URL scheme `file`"),
            ("www.example.com/a.jpg", "a URL needs http:// or https://"),
            ("example.com/a.jpg", "a URL needs http:// or https://"),
        ];
        for (text, want) in cases {
            let err = image(Field::Any, text, &options(false)).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn paths_that_are_not_web_addresses_pass_unchecked() {
        for path in ["photos/1.jpg", "1.jpg", "a.jpg/b", "photos.v2/1.jpg", "./x"] {
            assert!(image(Field::Any, path, &options(false)).is_ok(), "{path}");
        }
        assert!(image(Field::Any, "", &options(false)).is_err());
    }

    #[test]
    fn a_url_field_needs_a_url() {
        let err = image(Field::Url, "photos/1.jpg", &options(false)).unwrap_err();
        assert!(
            err.starts_with("`url` value `photos/1.jpg` is not a URL"),
            "{err}"
        );
        let err = image(Field::Url, "ftp://x/1.jpg", &options(false)).unwrap_err();
        assert!(err.starts_with("unsupported URL scheme `ftp`"), "{err}");
        assert!(image(Field::Url, "https://x/1.jpg", &options(false)).is_ok());
    }

    #[test]
    fn check_files_wants_a_regular_file() {
        let dir = std::env::temp_dir();
        let err = image(Field::Any, &dir.display().to_string(), &options(true)).unwrap_err();
        assert!(err.starts_with("not a regular file"), "{err}");
        let err = image(Field::Any, "no/such/file.jpg", &options(true)).unwrap_err();
        assert_eq!(err, "image file not found: no/such/file.jpg");
        let err = image(Field::Any, r#"{"url":"https://x/1.jpg"}"#, &options(true)).unwrap_err();
        assert!(err.ends_with("give --format jsonl"), "{err}");
        let err = image(Field::Any, "1,https://x/1.jpg", &options(true)).unwrap_err();
        assert!(err.ends_with("give --format csv"), "{err}");
        let text = tempfile::NamedTempFile::new().unwrap();
        let name = text.path().display().to_string();
        let err = image(Field::Any, &name, &options(true)).unwrap_err();
        assert!(err.starts_with("image file is empty"), "{err}");
        std::fs::write(text.path(), "id,url\n").unwrap();
        let err = image(Field::Any, &name, &options(true)).unwrap_err();
        assert!(err.starts_with("not an image"), "{err}");
        std::fs::write(text.path(), b"\x89PNG\r\n\x1A\n").unwrap();
        assert!(image(Field::Any, &name, &options(true)).is_ok());
    }

    #[test]
    fn models_are_cleaned_and_checked() {
        let models = clean_models(" re_logo ; ;caption;re_logo".split(';'));
        assert_eq!(models, Some(vec!["re_logo".into(), "caption".into()]));
        assert_eq!(clean_models(" ; ".split(';')), None);
        assert!(check_models(&models.unwrap(), &options(false)).is_ok());
        let bad = vec!["re_logoo".to_string(), "x".to_string()];
        let err = check_models(&bad, &options(false)).unwrap_err();
        assert!(
            err.starts_with("unknown model ids `re_logoo`, `x`"),
            "{err}"
        );
        let allow = ReadOptions {
            allow_unknown_models: true,
            ..options(false)
        };
        assert!(check_models(&bad, &allow).is_ok());
    }
}
