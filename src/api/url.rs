//! The request URL, built in one string.
//!
//! ureq's `.query()` formats each parameter into a string of its own and
//! then rebuilds the whole URI (parsing it again) for every request: three
//! percent-encodings, a URI parse and eight allocations a request. The part
//! that never changes (`…/predict?client_key=…&model_id=`) is encoded once
//! here, and each request appends its own values, encoded exactly as ureq
//! encodes them, in the same order: the server sees the same bytes.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// What ureq 3 escapes in a query value (`ureq::query::ENCODED_IN_QUERY`).
const ENCODED_IN_QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'$')
    .add(b'%')
    .add(b'&')
    .add(b'\'')
    .add(b'+')
    .add(b',')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The fixed starts of the request URLs of one client. They hold the client
/// key: never print them.
#[derive(Clone)]
pub(super) struct UrlPrefixes {
    /// `{base}/vision/v2/predict?client_key={key}`
    predict: String,
    /// `{base}/vision/v2/multipredict?client_key={key}`
    multipredict: String,
}

impl UrlPrefixes {
    /// The prefixes for `base_url` (validated, no trailing slash) and `key`.
    pub(super) fn new(base_url: &str, key: &str) -> UrlPrefixes {
        let prefix = |endpoint: &str| {
            let mut url = format!("{base_url}/vision/v2/{endpoint}?client_key=");
            push_encoded(&mut url, key);
            url
        };
        UrlPrefixes {
            predict: prefix("predict"),
            multipredict: prefix("multipredict"),
        }
    }

    /// The URL with the key only: `/predict` for one model, `/multipredict`
    /// for several.
    pub(super) fn endpoint(&self, models: &[String]) -> &str {
        if models.len() == 1 {
            &self.predict
        } else {
            &self.multipredict
        }
    }

    /// The whole GET URL for an image the API fetches:
    /// `…?client_key=…&model_id=a,b&image_url=…`.
    pub(super) fn for_image_url(&self, models: &[String], image_url: &str) -> String {
        let prefix = self.endpoint(models);
        let models_len: usize = models.iter().map(|m| m.len() + 3).sum();
        let mut url = String::with_capacity(prefix.len() + models_len + image_url.len() * 2 + 32);
        url.push_str(prefix);
        url.push_str("&model_id=");
        for (n, model) in models.iter().enumerate() {
            if n > 0 {
                // The comma of `models.join(",")`, encoded.
                url.push_str("%2C");
            }
            push_encoded(&mut url, model);
        }
        url.push_str("&image_url=");
        push_encoded(&mut url, image_url);
        url
    }
}

fn push_encoded(url: &mut String, value: &str) {
    url.extend(utf8_percent_encode(value, ENCODED_IN_QUERY));
}

#[cfg(test)]
mod tests {
    use super::UrlPrefixes;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    /// The request target ureq's `.query()` puts on the wire for these values.
    fn sent_by_ureq_query(key: &str, models: &str, image: &str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let url = format!("{base}/vision/v2/multipredict");
        let (key, models, image) = (key.to_string(), models.to_string(), image.to_string());
        let client = std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(std::time::Duration::from_secs(5)))
                .build()
                .into();
            // The server hangs up without answering: only the request matters.
            let _ = agent
                .get(&url)
                .query("client_key", &key)
                .query("model_id", &models)
                .query("image_url", &image)
                .call();
        });
        let (stream, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        client.join().unwrap();
        let target = line.split(' ').nth(1).unwrap();
        format!("{base}{target}")
    }

    /// Regression guard: the same bytes as ureq's `.query()` sent before.
    #[test]
    fn the_url_is_what_ureq_query_sent() {
        let key = "k+y/=&%\u{e9} ~!*()";
        let image = "https://example.com/a b/\u{e7}.jpg?x=1&y=[2]#f|{}^`'\"<>;@";
        let models = ["re_logo".to_string(), "re_roomtype_global_v2".to_string()];
        let theirs = sent_by_ureq_query(key, &models.join(","), image);
        let base = theirs.split("/vision").next().unwrap();
        let ours = UrlPrefixes::new(base, key).for_image_url(&models, image);
        assert_eq!(ours, theirs);
        let one = UrlPrefixes::new("http://h", "k").for_image_url(&models[..1], "u");
        assert_eq!(
            one,
            "http://h/vision/v2/predict?client_key=k&model_id=re_logo&image_url=u"
        );
    }
}
