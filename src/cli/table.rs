//! Aligned text tables for the subcommands: the library's
//! [`restb::report`] builds them; re-exported here for the CLI modules.

pub(super) use restb::report::{render, results_table};
