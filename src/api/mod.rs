//! The Restb.ai Vision API client.

mod image;

pub use image::ImageSource;
