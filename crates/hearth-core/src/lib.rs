//! Shared ground for Hearth's binding crates.
//!
//! - [`calendar`]: UTC dates from Unix times and back, and their text forms.
//! - [`clock`]: the injected clock every TTL, alarm, delay and cron reads.
//! - [`sqlite`]: opening an embedded SQLite database with the durability
//!   settings every backend relies on ("acknowledged means durable"), the
//!   schema versioning every store uses, SQLite's result-code names.
//! - [`sql`]: the SQL statement splitter D1 and Durable Objects share.
//! - [`error_class`]: which JS exception class a contract error becomes.
//! - [`fs`]: atomic, fsynced file writes for blob storage.
//! - [`data_dir`]: where each binding keeps its files under the data directory.
//!
//! This crate knows nothing of JavaScript, HTTP or argv.

pub mod calendar;
pub mod clock;
pub mod data_dir;
pub mod error_class;
pub mod fs;
pub mod sql;
pub mod sqlite;

pub use clock::{
    AdjustableClock, Clock, ClockError, ClockWaker, ManualClock, SharedClock, SystemClock,
};
pub use data_dir::{DataDir, DirLock, LockError};
pub use error_class::{ContractError, ErrorClass};
