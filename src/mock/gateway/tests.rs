//! Unit tests of the gateway's decisions, without sockets.

use super::*;
use crate::mock::http::HttpError;
use crate::mock::{FaultMix, HeaderStyle};
use serde_json::Value;
use std::time::UNIX_EPOCH;

fn gateway(config: MockConfig) -> Gateway {
    config.validate().expect("a valid test configuration");
    Gateway::new(&config)
}

fn get(target: &str) -> Head {
    http::parse_head(format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes()).unwrap()
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_100)
}

fn respond(decision: Decision) -> Response {
    match decision.action {
        Action::Respond(r) | Action::Delayed(_, r) | Action::Truncated(_, r) => r,
        Action::Close(d) => panic!("closed after {d:?} without an answer"),
    }
}

fn body(r: &Response) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

const OK: &str =
    "/vision/v2/predict?client_key=k&model_id=re_logo&image_url=http%3A%2F%2Fx%2F1.jpg";

#[test]
fn success_is_delayed_by_the_latency() {
    let g = gateway(MockConfig {
        latency: Duration::from_millis(300),
        ..MockConfig::default()
    });
    match g.handle(&get(OK), b"", now()).action {
        Action::Delayed(d, r) => {
            assert_eq!(d, Duration::from_millis(300));
            assert_eq!(r.status, 200);
            let b = body(&r);
            assert_eq!(b["error"], "false");
            assert!(b["response"]["solutions"]["re_logo"]["detections"].is_array());
        }
        other => panic!("{other:?}"),
    };
}

#[test]
fn jitter_stays_in_range_and_follows_the_seed() {
    let config = MockConfig {
        latency: Duration::from_millis(100),
        jitter: Duration::from_millis(50),
        seed: 42,
        ..MockConfig::default()
    };
    let delays = |g: &Gateway| -> Vec<Duration> {
        (0..50)
            .map(|_| match g.handle(&get(OK), b"", now()).action {
                Action::Delayed(d, _) => d,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let a = delays(&gateway(config.clone()));
    assert_eq!(a, delays(&gateway(config.clone())));
    assert!(a.iter().all(|d| (50..=150).contains(&d.as_millis())));
    assert!(a.iter().any(|d| *d != a[0]));
    let b = delays(&gateway(MockConfig { seed: 43, ..config }));
    assert_ne!(a, b);
}

#[test]
fn jitter_larger_than_latency_floors_at_zero() {
    let g = gateway(MockConfig {
        jitter: Duration::from_secs(1),
        ..MockConfig::default()
    });
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..100 {
        assert!(g.delay(&mut rng) <= Duration::from_secs(1));
    }
}

#[test]
fn auth_comes_before_the_rate_limit() {
    let g = gateway(MockConfig {
        rps: Some(1),
        valid_keys: Some(vec!["good".into()]),
        ..MockConfig::default()
    });
    let missing = respond(g.handle(&get("/vision/v2/predict?model_id=re_logo"), b"", now()));
    assert_eq!(
        (missing.status, body(&missing)["error_id"].as_str()),
        (401, Some("001"))
    );
    let bad = respond(g.handle(&get("/vision/v2/predict?client_key=secret"), b"", now()));
    assert_eq!(
        (bad.status, body(&bad)["error_id"].as_str()),
        (401, Some("002"))
    );
    assert!(!bad.body.contains("secret"));
    // Neither 401 used up the one request of this second.
    let ok = OK.replace("client_key=k", "client_key=good");
    assert_eq!(respond(g.handle(&get(&ok), b"", now())).status, 200);
    assert_eq!(respond(g.handle(&get(&ok), b"", now())).status, 429);
}

#[test]
fn validation_errors_count_against_the_window() {
    let g = gateway(MockConfig {
        rps: Some(2),
        ..MockConfig::default()
    });
    let bad = respond(g.handle(
        &get("/vision/v2/predict?client_key=k&model_id=nope"),
        b"",
        now(),
    ));
    assert_eq!(bad.status, 400);
    assert_eq!(header(&bad, "X-RateLimit-Remaining-Second"), Some("1"));
    assert_eq!(respond(g.handle(&get(OK), b"", now())).status, 200);
    let limited = respond(g.handle(&get(OK), b"", now()));
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body, RATE_LIMITED_BODY);
    assert_eq!(header(&limited, "Retry-After"), Some("1"));
}

#[test]
fn header_styles() {
    let names = |style| {
        let g = gateway(MockConfig {
            rps: Some(1),
            header_style: style,
            ..MockConfig::default()
        });
        let ok = respond(g.handle(&get(OK), b"", now()));
        let limited = respond(g.handle(&get(OK), b"", now()));
        let names = |r: &Response| {
            r.headers
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
        };
        (names(&ok), names(&limited))
    };
    let (ok, limited) = names(HeaderStyle::KongLegacy);
    assert_eq!(
        ok,
        [
            "X-RateLimit-Limit-second=1",
            "X-RateLimit-Remaining-second=0"
        ]
    );
    assert_eq!(limited, ok);
    let (ok, limited) = names(HeaderStyle::Kong2);
    assert_eq!(
        ok,
        [
            "X-RateLimit-Limit-Second=1",
            "X-RateLimit-Remaining-Second=0",
            "RateLimit-Limit=1",
            "RateLimit-Remaining=0",
            "RateLimit-Reset=1"
        ]
    );
    assert_eq!(limited.last().map(String::as_str), Some("Retry-After=1"));
    let (ok, limited) = names(HeaderStyle::None);
    assert!(ok.is_empty() && limited.is_empty());
}

#[test]
fn model_id_rules() {
    let g = gateway(MockConfig::default());
    let status_and_message = |target: &str| {
        let r = respond(g.handle(&get(target), b"", now()));
        (
            r.status,
            body(&r)["message"].as_str().unwrap_or_default().to_string(),
        )
    };
    let img = "&image_url=u";
    assert_eq!(
        status_and_message(&format!("/vision/v2/predict?client_key=k{img}")),
        (400, "missing model_id".into())
    );
    assert_eq!(
        status_and_message(&format!(
            "/vision/v2/predict?client_key=k&model_id=re_logo,caption{img}"
        ))
        .0,
        400
    );
    assert_eq!(
        status_and_message(&format!(
            "/vision/v2/multipredict?client_key=k&model_id=re_logo,re_foo{img}"
        )),
        (400, "invalid model_id: re_foo".into())
    );
    let r = respond(g.handle(
        &get(&format!(
            "/vision/v2/multipredict?client_key=k&model_id=re_logo%2C+caption{img}"
        )),
        b"",
        now(),
    ));
    assert_eq!(r.status, 200);
    let solutions = body(&r)["response"]["solutions"].as_object().unwrap().len();
    assert_eq!(solutions, 2);
    assert_eq!(
        status_and_message("/vision/v2/predict?client_key=k&model_id=re_logo"),
        (400, "missing image_url or image_base64".into())
    );
    let long = "x".repeat(500);
    let (_, message) = status_and_message(&format!(
        "/vision/v2/predict?client_key=k&model_id={long}{img}"
    ));
    assert!(message.len() < 130);
}

#[test]
fn post_form_with_base64() {
    let g = gateway(MockConfig::default());
    let post = |body: &str, ct: &str| {
        let head = http::parse_head(
            format!("POST /vision/v2/multipredict?client_key=k HTTP/1.1\r\n{ct}Content-Length: {}\r\n\r\n", body.len())
                .as_bytes(),
        )
        .unwrap();
        respond(g.handle(&head, body.as_bytes(), now())).status
    };
    let form = "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n";
    // "\xfb\xff" is "-_8=" URL-safe and "+/8=" standard.
    assert_eq!(post("model_id=re_logo&image_base64=-_8", form), 200);
    assert_eq!(post("model_id=re_logo&image_base64=%2B%2F8%3D", form), 200);
    assert_eq!(post("model_id=re_logo&image_base64=+/8=", form), 200);
    assert_eq!(post("model_id=re_logo&image_base64=-_8", ""), 200);
    assert_eq!(
        post(
            "model_id=re_logo&image_base64=-_8",
            "Content-Type: text/plain\r\n"
        ),
        400
    );
    assert_eq!(post("model_id=re_logo&image_base64=%%%", form), 400);
    assert_eq!(post("model_id=re_logo&image_base64==", form), 400);
    assert_eq!(post("image_base64=-_8", form), 400);
}

#[test]
fn same_image_bytes_same_solutions_whichever_alphabet() {
    assert_eq!(decode_base64("-_8"), Some(vec![0xfb, 0xff]));
    assert_eq!(decode_base64("+/8="), Some(vec![0xfb, 0xff]));
    assert_eq!(decode_base64("+/\n8"), Some(vec![0xfb, 0xff]));
    assert_eq!(decode_base64("a"), None);
}

#[test]
fn routes_and_methods() {
    let g = gateway(MockConfig::default());
    let r = respond(g.handle(&get("/vision/v2/other?client_key=k"), b"", now()));
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        r#"{"error":"true","error_id":"404","message":"not found"}"#
    );
    let put = http::parse_head(b"PUT /vision/v2/predict HTTP/1.1\r\n\r\n").unwrap();
    let r = respond(g.handle(&put, b"", now()));
    assert_eq!((r.status, header(&r, "Allow")), (405, Some("GET, POST")));
}

fn faulty(fault: Fault) -> Gateway {
    gateway(MockConfig {
        rps: Some(100),
        latency: Duration::from_millis(300),
        faults: FaultMix::none().with(fault, 1.0),
        hang: Duration::from_secs(2),
        ..MockConfig::default()
    })
}

#[test]
fn replacing_faults_answer_after_the_latency() {
    let cases = [
        (Fault::Status500, 500, INTERNAL_ERROR_BODY, true),
        (Fault::Status503, 503, UNAVAILABLE_BODY, true),
        (Fault::Html502, 502, BAD_GATEWAY_PAGE, false),
        (Fault::NotJson, 200, NOT_JSON_BODY, true),
        (Fault::Error200, 200, ERROR_200_BODY, true),
        (Fault::Legacy005, 200, LEGACY_005_BODY, true),
    ];
    for (fault, status, body, rate_headers) in cases {
        let g = faulty(fault);
        let decision = g.handle(&get(OK), b"", now());
        assert_eq!(decision.fault, Some(fault));
        match decision.action {
            Action::Delayed(d, r) => {
                assert_eq!(d, Duration::from_millis(300), "{fault:?}");
                assert_eq!((r.status, r.body.as_str()), (status, body), "{fault:?}");
                assert_eq!(
                    header(&r, "RateLimit-Limit").is_some(),
                    rate_headers,
                    "{fault:?}"
                );
            }
            other => panic!("{fault:?}: {other:?}"),
        }
    }
}

#[test]
fn faults_come_after_auth_and_the_rate_limit() {
    let g = gateway(MockConfig {
        rps: Some(1),
        faults: FaultMix::none().with(Fault::Status500, 1.0),
        ..MockConfig::default()
    });
    let d = g.handle(&get("/vision/v2/predict?model_id=re_logo"), b"", now());
    assert_eq!((d.fault, respond(d).status), (None, 401));
    let d = g.handle(&get("/vision/v2/other?client_key=k"), b"", now());
    assert_eq!((d.fault, respond(d).status), (None, 404));
    let d = g.handle(&get(OK), b"", now());
    assert_eq!((d.fault, respond(d).status), (Some(Fault::Status500), 500));
    // The 500 used up the window.
    let d = g.handle(&get(OK), b"", now());
    assert_eq!((d.fault, respond(d).status), (None, 429));
}

#[test]
fn reset_and_hang_close_without_an_answer() {
    let action = |fault| faulty(fault).handle(&get(OK), b"", now()).action;
    assert_eq!(
        action(Fault::Reset),
        Action::Close(Duration::from_millis(300))
    );
    assert_eq!(
        action(Fault::Hang),
        Action::Close(Duration::from_millis(2300))
    );
}

#[test]
fn truncated_and_no_headers_change_the_real_answer() {
    match faulty(Fault::Truncated).handle(&get(OK), b"", now()).action {
        Action::Truncated(d, r) => {
            assert_eq!((d, r.status), (Duration::from_millis(300), 200));
            assert_eq!(body(&r)["error"], "false");
            assert!(header(&r, "RateLimit-Limit").is_some());
        }
        other => panic!("{other:?}"),
    }
    let bad = "/vision/v2/predict?client_key=k&model_id=nope&image_url=u";
    match faulty(Fault::Truncated)
        .handle(&get(bad), b"", now())
        .action
    {
        Action::Truncated(d, r) => assert_eq!((d, r.status), (Duration::ZERO, 400)),
        other => panic!("{other:?}"),
    }
    let g = faulty(Fault::NoRateLimitHeaders);
    let d = g.handle(&get(OK), b"", now());
    assert_eq!(d.fault, Some(Fault::NoRateLimitHeaders));
    match d.action {
        Action::Delayed(_, r) => {
            assert_eq!(r.status, 200);
            assert!(r.headers.is_empty(), "{:?}", r.headers);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_fault_mix_follows_the_seed() {
    let config = MockConfig {
        seed: 9,
        faults: "500=0.3,reset=0.3".parse().unwrap(),
        ..MockConfig::default()
    };
    let faults = |g: Gateway| -> Vec<Option<Fault>> {
        (0..60)
            .map(|_| g.handle(&get(OK), b"", now()).fault)
            .collect()
    };
    let a = faults(gateway(config.clone()));
    assert_eq!(a, faults(gateway(config.clone())));
    assert!(a.contains(&None) && a.contains(&Some(Fault::Status500)));
    assert!(a.contains(&Some(Fault::Reset)));
    assert_ne!(a, faults(gateway(MockConfig { seed: 10, ..config })));
}

#[test]
fn no_faults_leave_the_answers_as_they_were() {
    // Same correlation ids and jitter with an empty mix as before faults existed.
    let config = MockConfig {
        jitter: Duration::from_millis(50),
        latency: Duration::from_millis(100),
        seed: 5,
        ..MockConfig::default()
    };
    let g = gateway(config.clone());
    let with_zero = gateway(MockConfig {
        faults: "500=0".parse().unwrap(),
        ..config
    });
    for _ in 0..10 {
        let a = g.handle(&get(OK), b"", now()).action;
        assert_eq!(a, with_zero.handle(&get(OK), b"", now()).action);
    }
}

#[test]
fn max_in_flight_refuses_until_a_slot_is_freed() {
    let g = gateway(MockConfig {
        max_in_flight: Some(2),
        ..MockConfig::default()
    });
    let first = g.handle(&get(OK), b"", now());
    let second = g.handle(&get(OK), b"", now());
    assert!(first.slot.is_some() && second.slot.is_some());
    let other_key = OK.replace("client_key=k", "client_key=other");
    let other = g.handle(&get(&other_key), b"", now());
    assert_eq!(respond(other).status, 200);
    let refused = respond(g.handle(&get(OK), b"", now()));
    assert_eq!(refused.status, 429);
    assert_eq!(refused.body, RATE_LIMITED_BODY);
    assert!(refused.headers.is_empty());
    drop(first);
    let third = g.handle(&get(OK), b"", now());
    assert!(third.slot.is_some());
    drop((second, third));
    assert!(g.in_flight.lock().is_empty());
}

#[test]
fn max_in_flight_and_rps_do_not_count_each_others_refusals() {
    let g = gateway(MockConfig {
        rps: Some(2),
        max_in_flight: Some(1),
        ..MockConfig::default()
    });
    let held = g.handle(&get(OK), b"", now());
    for _ in 0..3 {
        let r = respond(g.handle(&get(OK), b"", now()));
        assert_eq!((r.status, r.headers.len()), (429, 0));
    }
    drop(held);
    // The refusals above were not counted in the window: one request is left.
    let r = respond(g.handle(&get(OK), b"", now()));
    assert_eq!(r.status, 200);
    let r = respond(g.handle(&get(OK), b"", now()));
    assert_eq!(r.status, 429);
    assert_eq!(header(&r, "Retry-After"), Some("1"));
    // An rps refusal holds no place.
    assert!(g.in_flight.lock().is_empty());
}

#[test]
fn http_errors_have_api_bodies() {
    let r = http_error(HttpError::HeadTooLarge);
    assert_eq!(r.status, 431);
    assert_eq!(body(&r)["error"], "true");
}
