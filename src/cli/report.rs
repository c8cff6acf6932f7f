//! `restb report`: summarise an outcome file.

use super::{Exit, UsageError};
use clap::Args;

/// `restb report`.
#[derive(Debug, Args)]
pub struct ReportArgs {}

pub(super) fn report(_args: &ReportArgs) -> Result<Exit, UsageError> {
    Err(UsageError("report: not built yet".into()))
}
