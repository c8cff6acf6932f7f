//! Classifying a reply: ok, rate-limited, permanent, auth or transient.
//!
//! Pure functions of status, headers and body, so every gateway quirk in
//! RESTB_API.md is a unit test: `"error":"true"` with HTTP 200, the legacy
//! `error_id` "005" rate-limit body, Kong's and nginx's 429s, HTML 502 pages.

use serde_json::Value;
use std::borrow::Cow;
use std::time::{Duration, SystemTime};

/// What a reply means for the job that got it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Verdict {
    /// The models' answers: `response.solutions`, raw, keyed by model id.
    Ok(Value),
    /// Slow down; try again after `retry_after` (if the gateway said).
    RateLimited {
        /// From `Retry-After` (or, on a 429, `RateLimit-Reset`).
        retry_after: Option<Duration>,
    },
    /// The request itself is wrong (bad model, bad image): retrying won't help.
    Permanent(String),
    /// The key was refused: no request of this run can succeed.
    Auth(String),
    /// The API cannot be reached safely (its TLS certificate was refused) or
    /// answers at another address (a redirect, which restb does not follow):
    /// no request of this run can succeed either.
    Fatal(String),
    /// May pass on another try: 5xx, network errors, timeouts, unreadable bodies.
    Transient(String),
}

/// The longest `Retry-After` read: the latest a quota can reset. Longer is
/// a wrong header. The limiter waits at most an hour before it asks again
/// anyway; this is what a run that stops for it says about when to resume.
const MAX_RETRY_AFTER: Duration = super::headers::LONGEST_RESET;

/// Classifies a reply that arrived with `status`, `retry_after` already read
/// from the headers, and `body`. A body that is not a JSON object goes
/// through `hide` before any of it is quoted; a JSON object's texts and
/// answers are the caller's to hide once parsed (hiding in its raw text
/// could break its escapes), and an error message comes whole: the client
/// hides the key in it, then cuts it to 500 characters.
pub fn classify<'b>(
    status: u16,
    retry_after: Option<Duration>,
    body: &'b [u8],
    hide: impl FnOnce(&'b [u8]) -> Cow<'b, [u8]>,
) -> Verdict {
    let json: Option<Value> = serde_json::from_slice(body).ok().filter(Value::is_object);
    let Some(mut json) = json else {
        return classify_opaque(status, retry_after, &hide(body));
    };
    let error_id = json.get("error_id").map(text_of);
    if status == 429 || error_id.as_deref() == Some("005") {
        return Verdict::RateLimited { retry_after };
    }
    let message = || message_of(&json, status);
    match status {
        401 | 403 => Verdict::Auth(message()),
        200..=299 => {
            if json.get("error").is_some_and(is_true) {
                return Verdict::Permanent(message());
            }
            // Parsed once; the answers are moved out, not copied.
            match json.get_mut("response").map(Value::take) {
                Some(mut response) => Verdict::Ok(match response.get_mut("solutions") {
                    Some(solutions) => solutions.take(),
                    None => response,
                }),
                None => Verdict::Transient(format!("HTTP {status} without a response")),
            }
        }
        408 | 425 | 500..=599 => Verdict::Transient(message()),
        _ => Verdict::Permanent(message()),
    }
}

fn classify_opaque(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Verdict {
    let what = format!(
        "HTTP {status} with a body that is not JSON: {}",
        snippet(body)
    );
    match status {
        429 => Verdict::RateLimited { retry_after },
        503 if is_nginx_error_page(body) => Verdict::RateLimited { retry_after },
        401 | 403 => Verdict::Auth(what),
        200..=299 | 408 | 425 | 500..=599 => Verdict::Transient(what),
        _ => Verdict::Permanent(what),
    }
}

/// Whether `body` is nginx's own error page. nginx's `limit_req` and
/// `limit_conn` answer 503 unless `limit_req_status` says otherwise, with
/// that page; an upstream's 503 comes with the upstream's body (and none
/// up at all is a 502). Taken as a 503, each rejection would spend one of
/// the job's tries and teach the limiter nothing: 56 % of a batch failed
/// behind nginx at its default.
fn is_nginx_error_page(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(1024)]);
    text.contains("<center>nginx") && text.contains("<title>503 ")
}

/// The start of a body, on one line, for an error message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(80)]);
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        "(empty)".to_string()
    } else if body.len() > 80 {
        format!("{flat}...")
    } else {
        flat
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn is_true(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::String(text) => text.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Longest error message kept from a reply, in characters: the API's are
/// a sentence; a gateway that echoes its input could send megabytes, each
/// copied into an outcome line and a log line per try.
const MAX_MESSAGE_CHARS: usize = 500;

/// The message of a JSON reply, whole: [`shorten`] it once the key is
/// hidden (a cut through an encoded key would leave a part of it that no
/// longer reads as the key).
fn message_of(json: &Value, status: u16) -> String {
    ["message", "error_message", "detail"]
        .iter()
        .find_map(|field| json.get(field).filter(|v| !v.is_null()).map(text_of))
        .unwrap_or_else(|| format!("HTTP {status}"))
}

/// `message` cut to [`MAX_MESSAGE_CHARS`], saying how long it was.
pub(crate) fn shorten(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}... ({} bytes in all)", &message[..cut], message.len()),
        None => message,
    }
}

/// Reads a `Retry-After` value: whole (or fractional) seconds, or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(seconds) = value.parse::<f64>() {
        if !seconds.is_finite() || seconds < 0.0 {
            return None;
        }
        Duration::from_secs_f64(seconds.min(MAX_RETRY_AFTER.as_secs_f64() + 1.0))
    } else {
        let when = httpdate::parse_http_date(value).ok()?;
        when.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Verdict {
        super::classify(status, retry_after, body, Cow::Borrowed)
    }

    fn ok_body() -> &'static [u8] {
        br#"{"error":"false","correlation_id":"x","version":"2","response":{"solutions":{"re_logo":{"detections":[]}}}}"#
    }

    #[test]
    fn a_success_keeps_the_raw_solutions() {
        let verdict = classify(200, None, ok_body());
        assert_eq!(
            verdict,
            Verdict::Ok(serde_json::json!({"re_logo": {"detections": []}}))
        );
    }

    #[test]
    fn an_error_with_http_200_is_a_failure() {
        let body = br#"{"error":"true","error_id":"003","message":"invalid model_id: foo"}"#;
        assert_eq!(
            classify(200, None, body),
            Verdict::Permanent("invalid model_id: foo".into())
        );
        assert_eq!(
            classify(200, None, br#"{"error":true,"message":"m"}"#),
            Verdict::Permanent("m".into())
        );
    }

    #[test]
    fn rate_limits_come_as_429_or_as_legacy_005() {
        let kong = br#"{"message":"API rate limit exceeded"}"#;
        let wait = Some(Duration::from_secs(1));
        assert_eq!(
            classify(429, wait, kong),
            Verdict::RateLimited { retry_after: wait }
        );
        let legacy = br#"{"error":"true","error_id":"005","message":"rate limit"}"#;
        assert_eq!(
            classify(200, None, legacy),
            Verdict::RateLimited { retry_after: None }
        );
        assert_eq!(
            classify(429, None, b"<html>slow down</html>"),
            Verdict::RateLimited { retry_after: None }
        );
        assert_eq!(
            classify(429, None, b""),
            Verdict::RateLimited { retry_after: None }
        );
    }

    #[test]
    fn refused_keys_are_auth_failures() {
        let body = br#"{"error":"true","error_id":"002","message":"invalid client_key"}"#;
        assert_eq!(
            classify(401, None, body),
            Verdict::Auth("invalid client_key".into())
        );
        assert!(matches!(
            classify(403, None, b"Forbidden"),
            Verdict::Auth(_)
        ));
    }

    #[test]
    fn server_errors_and_garbage_are_transient() {
        let html = b"<html><body><h1>502 Bad Gateway</h1></body></html>";
        match classify(502, None, html) {
            Verdict::Transient(message) => {
                assert!(
                    message.starts_with("HTTP 502 with a body that is not JSON: <html>"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(200, None, b"{\"resp"),
            Verdict::Transient(_)
        ));
        assert!(matches!(
            classify(200, None, b"[1,2]"),
            Verdict::Transient(_)
        ));
        assert!(matches!(
            classify(200, None, br#"{"error":"false"}"#),
            Verdict::Transient(_)
        ));
        assert!(matches!(
            classify(503, None, br#"{"message":"busy"}"#),
            Verdict::Transient(_)
        ));
        assert!(matches!(
            classify(200, None, &[0xff, 0xfe, 0x00]),
            Verdict::Transient(_)
        ));
    }

    #[test]
    fn client_errors_are_permanent() {
        assert_eq!(
            classify(400, None, br#"{"error":"true","message":"bad image"}"#),
            Verdict::Permanent("bad image".into())
        );
        assert_eq!(
            classify(404, None, br#"{}"#),
            Verdict::Permanent("HTTP 404".into())
        );
        assert!(matches!(
            classify(404, None, b"Not Found"),
            Verdict::Permanent(_)
        ));
    }

    #[test]
    fn nginxs_own_503_page_is_its_rate_limit_and_an_upstreams_503_is_not() {
        let page = |server: &str| {
            format!(
                "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n\
                 <body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n\
                 <hr><center>{server}</center>\r\n</body>\r\n</html>\r\n"
            )
        };
        for server in ["nginx", "nginx/1.22.1"] {
            let verdict = classify(503, None, page(server).as_bytes());
            assert_eq!(verdict, Verdict::RateLimited { retry_after: None });
        }
        let upstream = classify(503, None, b"<html><body>Maintenance</body></html>");
        assert!(matches!(upstream, Verdict::Transient(_)), "{upstream:?}");
        let json = classify(503, None, br#"{"message":"service unavailable"}"#);
        assert!(matches!(json, Verdict::Transient(_)), "{json:?}");
        let bad_gateway =
            page("nginx").replace("503 Service Temporarily Unavailable", "502 Bad Gateway");
        let verdict = classify(502, None, bad_gateway.as_bytes());
        assert!(matches!(verdict, Verdict::Transient(_)), "{verdict:?}");
    }

    #[test]
    fn a_long_error_message_is_cut() {
        let long = "é".repeat(2 * MAX_MESSAGE_CHARS);
        let body = format!(r#"{{"error":"true","message":"{long}"}}"#);
        let Verdict::Permanent(message) = classify(400, None, body.as_bytes()) else {
            panic!("a 400 is permanent");
        };
        let message = shorten(message);
        assert!(
            message.starts_with(&"é".repeat(MAX_MESSAGE_CHARS)),
            "{message}"
        );
        assert!(message.ends_with("... (2000 bytes in all)"), "{message}");
        let Verdict::Permanent(short) = classify(400, None, br#"{"message":"bad model"}"#) else {
            panic!("a 400 is permanent");
        };
        assert_eq!(short, "bad model");
    }

    #[test]
    fn retry_after_takes_seconds_or_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 0.5 ", now),
            Some(Duration::from_millis(500))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(3));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(3)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(3));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("7200", now),
            Some(Duration::from_secs(7200)),
            "a spent hour or day says when it resets"
        );
        assert_eq!(
            parse_retry_after("1e12", now),
            Some(MAX_RETRY_AFTER),
            "a timestamp for a count of seconds"
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
