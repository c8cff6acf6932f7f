//! restb: send batches of images to the Restb.ai Vision API at the allotted rate,
//! from plain blocking threads.
#![forbid(unsafe_code)]

pub mod api;
pub mod input;
pub mod mock;
pub mod models;
pub mod limiter;
pub mod pool;
pub mod retry;
pub mod stats;
pub mod stop;
