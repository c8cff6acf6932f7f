//! `restb bench`: sweep thread counts against a gateway.

use super::{Exit, UsageError};
use crate::stop::Stop;
use clap::Args;

/// `restb bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {}

pub(super) fn bench(_args: &BenchArgs, _stop: &Stop) -> Result<Exit, UsageError> {
    Err(UsageError("bench: not built yet".into()))
}
