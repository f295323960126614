//! Shared ground for Hearth's binding crates.
//!
//! - [`clock`]: the injected clock every TTL, alarm, delay and cron reads.
//! - [`sqlite`]: opening an embedded SQLite database with the durability
//!   settings every backend relies on ("acknowledged means durable").
//! - [`fs`]: atomic, fsynced file writes for blob storage.
//! - [`data_dir`]: where each binding keeps its files under the data directory.
//!
//! This crate knows nothing of JavaScript, HTTP or argv.

pub mod clock;
pub mod data_dir;
pub mod fs;
pub mod sqlite;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use data_dir::DataDir;
