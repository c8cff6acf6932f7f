//! The Restb.ai Vision API client.

mod client;
mod headers;
mod image;
mod key;
mod reply;
mod resolver;

pub use client::{
    validate_base_url, Client, ClientConfig, ConfigError, ParseRegionError, Region, Reply,
};
pub use headers::gateway_hint;
pub use image::{looks_like_image, ImageSource};
pub use key::ClientKey;
pub use reply::{classify, parse_retry_after, Verdict};
