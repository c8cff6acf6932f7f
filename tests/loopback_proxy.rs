//! A proxy from the environment is never used for a loopback base URL:
//! plain `http://` is allowed there on the word that the traffic stays on
//! the machine, and through a proxy the client key would leave it in clear.

mod common;

use common::tiny_server::{answer_no_logo, TinyServer};
use common::{assert_exactly_once, restb, text, Batch};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn a_loopback_base_url_bypasses_the_environments_proxy() {
    let proxied = Arc::new(AtomicUsize::new(0));
    let proxy = {
        let proxied = proxied.clone();
        TinyServer::start(move |_, _| {
            proxied.fetch_add(1, Ordering::SeqCst);
            false // a proxy that takes the request and closes
        })
    };
    let api = TinyServer::start(|_, stream| answer_no_logo(stream));
    let batch = Batch::of(2);
    let proxy_url = proxy.base_url();
    let output = restb(Some("the-secret-key-0123"))
        .args(["run", batch.input(), "--base-url", &api.base_url()])
        .args(["-o", batch.out(), "--models", "re_logo", "--rps", "20"])
        .env("ALL_PROXY", &proxy_url)
        .env("HTTPS_PROXY", &proxy_url)
        .env("HTTP_PROXY", &proxy_url)
        .env("http_proxy", &proxy_url)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_exactly_once(&batch.out, 2);
    assert_eq!(proxied.load(Ordering::SeqCst), 0, "the proxy saw a request");
}
