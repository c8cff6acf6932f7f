//! The outcome file: one JSONL line per finished job ([`OutcomeLine`]),
//! written by one [`OutcomeWriter`], read back by one reader ([`Outcomes`])
//! for `restb report` and for `--resume`, which turns it into a
//! [`ResumeIndex`] of the jobs already done. A run holds the file's lock
//! while it writes ([`create_locked`], [`open_for_resume`]).
//!
//! # Examples
//!
//! Write two outcomes and read them back:
//!
//! ```
//! use restb::outcome::{OutcomeLine, OutcomeWriter, Outcomes, Status};
//!
//! let line: OutcomeLine = serde_json::from_str(
//!     r#"{"id":"1","image":"1.jpg","models":["re_logo"],"status":"ok","attempts":1,"rate_limited":0}"#,
//! )?;
//! let mut file = Vec::new();
//! let mut writer = OutcomeWriter::new(&mut file);
//! writer.write(&line)?;
//! writer.write(&OutcomeLine { status: Status::Failed, ..line.clone() })?;
//! writer.flush()?;
//! drop(writer);
//! let read: Vec<OutcomeLine> = Outcomes::new(&file[..], "memory").collect::<Result<_, _>>()?;
//! assert_eq!(read.len(), 2);
//! assert_eq!(read[1].status, Status::Failed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod filter;
mod identity;
mod index;
mod line;
mod lock;
mod read;
mod resume;
mod writer;

pub use filter::ResumeFilter;
pub use index::ResumeIndex;
pub use line::{OutcomeLine, Status};
pub use lock::{create_locked, lock_for_writing, Existing, LockError};
pub use read::{read_outcomes, Outcomes, ReadError, MAX_LINE_BYTES};
pub use resume::{open_for_resume, read_for_resume, ResumeError};
pub use writer::OutcomeWriter;
