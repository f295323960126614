//! R2: the R2Bucket contract, blob files with SQLite metadata, multipart uploads.
