//! restb: send batches of images to the Restb.ai Vision API at the allotted rate,
//! from plain blocking threads.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod input;
pub mod job;
pub mod limiter;
pub mod logging;
pub mod mock;
pub mod models;
pub mod output;
pub mod pool;
pub mod retry;
pub mod stats;
pub mod stop;
