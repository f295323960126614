//! R2's S3-compatible API over Hearth's R2 buckets.
//!
//! `hearth serve --s3-listen ADDR` serves this endpoint beside the workers.
//! It opens the same bucket directories through the same shared handles as
//! the workers' R2 bindings, so an object written either way is visible the
//! other way at once.
//!
//! - [`sigv4`]: AWS Signature Version 4 (header and presigned forms, and
//!   the seed of signed `aws-chunked` bodies); pure and total.
//! - [`body`]: request bodies streamed through a bounded channel into R2
//!   with their checks (payload hash, chunk signatures, Content-MD5,
//!   `x-amz-checksum-*`, length), and object bodies streamed out.
//! - [`xml`]: request XML parsed under size, depth and element limits;
//!   responses written with escaping.
//! - [`credentials`]: access keys (secrets sealed with AES-256-GCM under a
//!   0600 key file) scoped to buckets and read or read-write, and CORS rules.
//! - [`buckets`]: which buckets exist and where they live.
//! - `ops`: the operations; `server`: listener, authentication, routing.
//!
//! Keys never become file names: R2 stores bytes under random version ids,
//! so no key (`../x`, absolute, NUL-free or not) can reach outside its
//! bucket's directory.

pub mod body;
pub mod buckets;
pub mod cors;
pub mod credentials;
pub mod error;
mod ops;
mod server;
pub mod sigv4;
pub mod time;
pub mod xml;

pub use buckets::Buckets;
pub use credentials::{
    Access, CorsRule, CredentialInfo, CredentialStore, NewCredential, StoreError,
};
pub use error::S3Error;
pub use server::{DEFAULT_MAX_CONNECTIONS, S3Options, S3Server};
