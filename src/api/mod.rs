//! The Restb.ai Vision API client.

mod client;
mod headers;
mod image;
mod key;
mod key_safe_log;
mod quota;
mod region;
mod reply;
mod resolver;
#[cfg(unix)]
mod transport;
mod url;

pub use client::{validate_base_url, Client, ClientConfig, ConfigError, Reply};
pub use headers::gateway_hint;
pub use image::{looks_like_image, ImageSource};
pub use key::{ClientKey, KeyError};
pub use key_safe_log::{may_quote_the_key, KeySafeLog};
pub use quota::{Quota, QuotaWatch, QuotaWindow};
pub use region::{ParseRegionError, Region};
pub use reply::{classify, parse_retry_after, Verdict};
