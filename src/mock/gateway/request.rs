//! The API behind the gateway, for one request: its endpoint, its parameters, its
//! image, and the API-style error bodies of requests it cannot serve.

use super::super::answers::{self, ImageRef};
use super::super::http::{self, Head, HttpError, Response};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde_json::json;

/// Longest piece of user input echoed in an error message.
const ECHO_MAX: usize = 100;

/// Base64 decoding that accepts missing or present padding and stray trailing bits.
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
/// Standard alphabet (`+/`).
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
/// URL-safe alphabet (`-_`), what the SDK sends.
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// The two endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// Exactly one model.
    Predict,
    /// A comma-separated list of models.
    Multipredict,
}

/// The endpoint a request is for, or its 404 / 405.
pub(crate) fn route(head: &Head) -> Result<Endpoint, Response> {
    let endpoint = match head.path.as_str() {
        super::PREDICT => Endpoint::Predict,
        super::MULTIPREDICT => Endpoint::Multipredict,
        _ => return Err(error(404, "404", "not found")),
    };
    if head.method != "GET" && head.method != "POST" {
        return Err(error(405, "405", "method not allowed").with_header("Allow", "GET, POST"));
    }
    Ok(endpoint)
}

/// The image of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Image {
    /// `image_url`.
    Url(String),
    /// Decoded `image_base64`.
    Bytes(Vec<u8>),
}

impl Image {
    /// The stable hash the fake solutions are drawn from.
    pub(crate) fn hash(&self) -> u64 {
        match self {
            Image::Url(url) => answers::image_hash(ImageRef::Url(url)),
            Image::Bytes(bytes) => answers::image_hash(ImageRef::Bytes(bytes)),
        }
    }
}

/// The first non-empty value of `name`.
pub(crate) fn lookup<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, v)| n == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// Whether the body is to be read as a form: it says so, or says nothing.
pub(crate) fn accepts_form(head: &Head) -> bool {
    head.header("content-type").is_none_or(|ct| {
        ct.split(';').next().is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    })
}

/// The models and the image of a request, or `(error_id, message)` for a 400.
pub(crate) fn validate(
    endpoint: Endpoint,
    params: &[(String, String)],
) -> Result<(Vec<&str>, Image), (&'static str, String)> {
    let raw = lookup(params, "model_id").ok_or(("003", "missing model_id".to_string()))?;
    let models: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    if models.is_empty() {
        return Err(("003", "missing model_id".to_string()));
    }
    if endpoint == Endpoint::Predict && models.len() > 1 {
        return Err((
            "003",
            format!(
                "invalid model_id: {} (predict takes one model; use multipredict)",
                echo(raw)
            ),
        ));
    }
    if let Some(unknown) = models.iter().find(|m| !crate::models::is_known(m)) {
        return Err(("003", format!("invalid model_id: {}", echo(unknown))));
    }
    let image = if let Some(url) = lookup(params, "image_url") {
        Image::Url(url.to_string())
    } else if let Some(encoded) = lookup(params, "image_base64") {
        match decode_base64(encoded) {
            Some(bytes) if !bytes.is_empty() => Image::Bytes(bytes),
            _ => return Err(("004", "invalid image_base64".to_string())),
        }
    } else {
        return Err(("004", "missing image_url or image_base64".to_string()));
    };
    Ok((models, image))
}

/// Decode URL-safe or standard base64, padded or not; line breaks are ignored, and
/// spaces are read as `+` (an unescaped `+` in a form decodes to a space).
pub(crate) fn decode_base64(encoded: &str) -> Option<Vec<u8>> {
    let cleaned: String = encoded
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    if cleaned.contains(['-', '_']) {
        URL_SAFE.decode(cleaned).ok()
    } else {
        STANDARD.decode(cleaned).ok()
    }
}

/// User input cut to [`ECHO_MAX`] characters for an error message.
fn echo(input: &str) -> String {
    match input.char_indices().nth(ECHO_MAX) {
        Some((i, _)) => format!("{}...", &input[..i]),
        None => input.to_string(),
    }
}

/// An API-style error reply (`error` is the string "true", as the API sends it).
pub(crate) fn error(status: u16, error_id: &str, message: &str) -> Response {
    let body = json!({"error": "true", "error_id": error_id, "message": message});
    Response::json(status, body.to_string())
}

/// The reply to a request the HTTP layer could not read.
pub(crate) fn http_error(err: HttpError) -> Response {
    let status = err.status();
    error(status, &status.to_string(), http::reason(status))
}
