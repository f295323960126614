//! Cluster mode: several `hearth serve` processes sharing PostgreSQL (and
//! Redis), any of them answering any request.
//!
//! - [`config`]: the cluster file, checked whole.
//! - [`pg`]: the node's PostgreSQL connection and versioned migrations,
//!   shared by every backend that keeps state there (KV, placement).
//! - [`nats`]: the node's NATS connection and JetStream context (Queues).
//! - [`placement`]: Durable Object leases with fencing tokens.
//! - [`cron`]: which node fires each cron slot.
//! - [`do_log`]: Durable Object storage's change log and snapshots.
//! - [`channel`]: signing and checking node-to-node calls.
//!
//! This crate knows nothing of JavaScript or HTTP; the runtime forwards
//! requests and `hearth-http` serves the internal listener.

pub mod channel;
pub mod config;
pub mod cron;
pub mod do_log;
pub mod nats;
pub mod pg;
pub mod placement;

pub use async_nats;
pub use config::{
    ClusterConfig, ConfigError, KvBackend, NatsConfig, QueuesBackend, R2Backend, RateLimitBackend,
    S3Config,
};
pub use cron::PgCronClaims;
pub use do_log::{LogCounters, PgChangeLog, SecretAdopted};
pub use nats::{Nats, NatsError};
pub use pg::{Pg, PgError};
pub use placement::{NodeState, NodeStatus, Owner, Placement, PlacementCounters};
pub use tokio_postgres;
