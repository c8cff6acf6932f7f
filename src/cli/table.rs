//! Aligned text tables for the subcommands: the library's
//! [`crate::report`] builds them; re-exported here for the CLI modules.

pub(super) use crate::report::{render, results_table};
