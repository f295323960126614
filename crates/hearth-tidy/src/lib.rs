//! Checks live in `tests/tidy.rs`; this crate has no code of its own.
