//! Unit tests of request parsing and response writing, without sockets.

use super::*;

fn head(text: &str) -> Result<Head, HttpError> {
    parse_head(text.as_bytes())
}

#[test]
fn parses_a_get_with_query() {
    let h = head("GET /vision/v2/predict?client_key=k&model_id=re_logo HTTP/1.1\r\nHost: x\r\nX-A:  b \r\n\r\n")
        .unwrap();
    assert_eq!(h.method, "GET");
    assert_eq!(h.path, "/vision/v2/predict");
    assert_eq!(h.query, "client_key=k&model_id=re_logo");
    assert_eq!(h.version, Version::Http11);
    assert_eq!(h.header("x-a"), Some("b"));
    assert_eq!(h.header("HOST"), Some("x"));
    assert!(h.keep_alive());
    assert_eq!(h.content_length(), Ok(0));
}

#[test]
fn accepts_bare_lf_and_leading_blank_line() {
    let h = head("\r\nPOST / HTTP/1.0\nContent-Length: 5\n\n").unwrap();
    assert_eq!(h.version, Version::Http10);
    assert!(!h.keep_alive());
    assert_eq!(h.content_length(), Ok(5));
}

#[test]
fn absolute_form_target_keeps_path_and_query() {
    let h = head("GET http://127.0.0.1:9/vision/v2/predict?a=1 HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(h.path, "/vision/v2/predict");
    assert_eq!(h.query, "a=1");
    let h = head("GET http://host?a=1 HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!((h.path.as_str(), h.query.as_str()), ("/", "a=1"));
}

#[test]
fn connection_header_decides_keep_alive() {
    assert!(
        !head("GET / HTTP/1.1\r\nConnection: Keep-Alive, close\r\n\r\n")
            .unwrap()
            .keep_alive()
    );
    assert!(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap()
        .keep_alive());
}

#[test]
fn malformed_request_lines_are_400() {
    for bad in [
        "\r\n\r\n",
        "GET\r\n\r\n",
        "GET /\r\n\r\n",
        "GET / HTTP/1.1 extra\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",
        "GET noslash HTTP/1.1\r\n\r\n",
        "GET / FTP/1.1\r\n\r\n",
    ] {
        assert_eq!(head(bad), Err(HttpError::BadRequest), "{bad:?}");
    }
    assert_eq!(
        head("PRI * HTTP/2.0\r\n\r\n"),
        Err(HttpError::VersionNotSupported)
    );
}

#[test]
fn malformed_headers_are_400() {
    for bad in [
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nName : v\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n",
        "GET / HTTP/1.1\r\n: empty\r\n\r\n",
    ] {
        assert_eq!(head(bad), Err(HttpError::BadRequest), "{bad:?}");
    }
}

#[test]
fn content_length_rules() {
    let cl = |h: &str| {
        head(&format!("POST / HTTP/1.1\r\n{h}\r\n\r\n"))
            .unwrap()
            .content_length()
    };
    assert_eq!(cl("Content-Length: 12"), Ok(12));
    assert_eq!(cl("Content-Length: 3\r\ncontent-length: 3"), Ok(3));
    assert_eq!(
        cl("Content-Length: 3\r\nContent-Length: 4"),
        Err(HttpError::BadRequest)
    );
    assert_eq!(cl("Content-Length: -1"), Err(HttpError::BadRequest));
    assert_eq!(cl("Content-Length: 1e3"), Err(HttpError::BadRequest));
    assert_eq!(cl("Content-Length:"), Err(HttpError::BadRequest));
    assert_eq!(
        cl("Content-Length: 99999999999999999999999999"),
        Err(HttpError::PayloadTooLarge)
    );
    assert_eq!(
        cl(&format!("Content-Length: {}", MAX_BODY + 1)),
        Err(HttpError::PayloadTooLarge)
    );
    assert_eq!(
        cl("Transfer-Encoding: chunked"),
        Err(HttpError::LengthRequired)
    );
}

#[test]
fn expect_continue_only_on_1_1() {
    assert!(head("POST / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n")
        .unwrap()
        .expects_continue());
    assert!(!head("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")
        .unwrap()
        .expects_continue());
}

#[test]
fn finds_the_end_of_a_head() {
    assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest", 0), Some(18));
    assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nrest", 0), Some(16));
    assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
    // Resuming the scan just before the previous end still sees a split terminator.
    let buf = b"GET / HTTP/1.1\r\n\r\n";
    assert_eq!(find_head_end(buf, 16), Some(18));
}

#[test]
fn form_decoding() {
    assert_eq!(
        parse_form(b"a=1+2&b=%41%2b&c&=x&&d=%zz%4"),
        vec![
            ("a".into(), "1 2".into()),
            ("b".into(), "A+".into()),
            ("c".into(), "".into()),
            ("".into(), "x".into()),
            ("d".into(), "%zz%4".into()),
        ]
    );
    assert_eq!(form_decode(b"%e2%9c%93"), "\u{2713}");
}

#[test]
fn responses_carry_length_and_connection() {
    let bytes = Response::json(429, "{}")
        .with_header("Retry-After", 1)
        .to_bytes(true);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
    assert!(text.contains("\r\nContent-Length: 2\r\n"));
    assert!(text.contains("\r\nRetry-After: 1\r\n"));
    assert!(text.ends_with("\r\nConnection: close\r\n\r\n{}"));
    assert!(text.contains("\r\nContent-Type: application/json\r\n"));
}

#[test]
fn truncated_bytes_keep_the_head_and_half_the_body() {
    let r = Response::with_type(200, "text/plain", "0123456789");
    let whole = r.to_bytes(false);
    let cut = r.to_truncated_bytes(false);
    assert_eq!(cut.len(), whole.len() - 5);
    let text = String::from_utf8(cut).unwrap();
    assert!(text.contains("\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n"));
    assert!(text.ends_with("\r\n\r\n01234"));
}
