//! The cluster file (`hearth serve --cluster cluster.toml`): who this node
//! is, where its peers reach it, the backends' addresses and which binding
//! uses which backend. Every problem is reported as
//! `<file>: <field>: <what is wrong>`; unknown fields are errors, since a
//! misspelt backend must not silently fall back to the embedded one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The shortest node secret accepted: HMAC-SHA256 keys below 32 bytes are
/// weaker than the hash.
pub const MIN_SECRET_BYTES: usize = 32;

/// Default time a node's Durable Object leases outlive its last heartbeat.
pub const DEFAULT_LEASE_MS: u64 = 5_000;

/// A checked cluster file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub path: PathBuf,
    /// This node's name, unique in the cluster.
    pub node_id: String,
    /// The internal address peers use to reach this node.
    pub advertise: SocketAddr,
    /// Where the internal listener binds (defaults to `advertise`).
    pub listen: SocketAddr,
    /// The shared key of node-to-node calls.
    pub secret: Vec<u8>,
    pub postgres: Option<PostgresConfig>,
    pub redis: Option<RedisConfig>,
    pub nats: Option<NatsConfig>,
    pub s3: Option<S3Config>,
    pub backends: Backends,
    pub durable_objects: DurableObjectsConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    pub url: String,
    /// The schema every table lives in, so several clusters (or tests) can
    /// share one database.
    pub schema: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub url: String,
    /// Prefix of every key, for the same reason as the schema.
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    pub url: String,
    /// Start of every stream name and subject, so several clusters (or
    /// tests) can share one NATS server.
    pub prefix: String,
    /// How long JetStream waits for a silent node before it hands that
    /// node's leased messages to another; the holder keeps its leases alive
    /// meanwhile.
    pub ack_wait_ms: u64,
    /// Copies JetStream keeps of every queue stream (at most the number of
    /// servers in the NATS cluster).
    pub replicas: usize,
}

/// Default [`NatsConfig::ack_wait_ms`].
pub const DEFAULT_NATS_ACK_WAIT_MS: u64 = 30_000;

/// An S3-compatible store (`[s3]`): R2's objects live in it.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `http(s)://host:port`; `None` is AWS's endpoint for `region`.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Prepended to every object name; empty or ending in '/'.
    pub prefix: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Which backend each binding kind uses in cluster mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backends {
    pub kv: KvBackend,
    pub ratelimits: RateLimitBackend,
    pub queues: QueuesBackend,
    pub r2: R2Backend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuesBackend {
    Embedded,
    JetStream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum R2Backend {
    Embedded,
    S3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvBackend {
    Embedded,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitBackend {
    Memory,
    Redis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableObjectsConfig {
    /// Log bytes after which an object's owner uploads a snapshot (at
    /// least the object's file size): bounds what a new owner replays.
    pub snapshot_after_bytes: u64,
    /// How long a node's leases outlive its last heartbeat.
    pub lease_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{}", .problems.join("\n"))]
    Invalid { problems: Vec<String> },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    node_id: Option<String>,
    advertise: Option<String>,
    listen: Option<String>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    postgres: Option<RawPostgres>,
    redis: Option<RawRedis>,
    nats: Option<RawNats>,
    s3: Option<RawS3>,
    #[serde(default)]
    backends: RawBackends,
    #[serde(default)]
    durable_objects: RawDurableObjects,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPostgres {
    url: String,
    schema: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedis {
    url: String,
    prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNats {
    url: String,
    prefix: Option<String>,
    ack_wait_ms: Option<u64>,
    replicas: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawS3 {
    endpoint: Option<String>,
    bucket: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    access_key_id_file: Option<PathBuf>,
    secret_access_key: Option<String>,
    secret_access_key_file: Option<PathBuf>,
    prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackends {
    kv: Option<String>,
    ratelimits: Option<String>,
    queues: Option<String>,
    r2: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDurableObjects {
    storage: Option<PathBuf>,
    lease_ms: Option<u64>,
    snapshot_after_bytes: Option<u64>,
}

impl ClusterConfig {
    /// Reads and checks the cluster file at `path`. Relative paths in it
    /// (`secret_file`) are relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Checks the text of a cluster file read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: shown.clone(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut problems = Vec::new();
        let mut problem =
            |field: &str, what: String| problems.push(format!("{shown}: {field}: {what}"));

        let node_id = match raw.node_id {
            None => {
                problem(
                    "node_id",
                    "missing; every node needs a name unique in the cluster".into(),
                );
                String::new()
            }
            Some(id) if !valid_node_id(&id) => {
                problem(
                    "node_id",
                    format!(
                        "{id:?} is not a node name: use 1 to 63 characters of a-z, A-Z, 0-9, '-', '_' or '.'"
                    ),
                );
                id
            }
            Some(id) => id,
        };
        let advertise = match raw.advertise.as_deref() {
            None => {
                problem(
                    "advertise",
                    "missing; the internal address peers reach this node at, e.g. \"10.0.0.5:7800\"".into(),
                );
                None
            }
            Some(a) => match a.parse::<SocketAddr>() {
                Ok(addr) if addr.ip().is_unspecified() || addr.port() == 0 => {
                    problem(
                        "advertise",
                        format!(
                            "{a:?} cannot be reached by peers: give a concrete address and port"
                        ),
                    );
                    None
                }
                Ok(addr) => Some(addr),
                Err(_) => {
                    problem(
                        "advertise",
                        format!("{a:?} is not an IP address with a port"),
                    );
                    None
                }
            },
        };
        let listen = match raw.listen.as_deref() {
            None => advertise,
            Some(l) => match l.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    problem("listen", format!("{l:?} is not an IP address with a port"));
                    None
                }
            },
        };
        let secret = match (raw.secret, raw.secret_file) {
            (Some(_), Some(_)) => {
                problem(
                    "secret",
                    "give either secret or secret_file, not both".into(),
                );
                Vec::new()
            }
            (None, None) => {
                problem(
                    "secret",
                    format!(
                        "missing; node-to-node calls are signed with a shared secret of at least {MIN_SECRET_BYTES} bytes (secret or secret_file)"
                    ),
                );
                Vec::new()
            }
            (Some(s), None) => s.into_bytes(),
            (None, Some(file)) => {
                let file = base.join(file);
                match std::fs::read(&file) {
                    Ok(bytes) => trim_ascii_end(bytes),
                    Err(e) => {
                        problem(
                            "secret_file",
                            format!("cannot read {}: {e}", file.display()),
                        );
                        Vec::new()
                    }
                }
            }
        };
        if !secret.is_empty() && secret.len() < MIN_SECRET_BYTES {
            problem(
                "secret",
                format!(
                    "{} bytes is too short; use at least {MIN_SECRET_BYTES}",
                    secret.len()
                ),
            );
        }

        let postgres = raw.postgres.map(|p| {
            if !(p.url.starts_with("postgres://") || p.url.starts_with("postgresql://")) {
                problem("postgres.url", format!("{:?} is not a postgres:// URL", p.url));
            }
            let schema = p.schema.unwrap_or_else(|| "hearth".to_owned());
            if !valid_schema(&schema) {
                problem(
                    "postgres.schema",
                    format!("{schema:?} is not a schema name: use 1 to 63 characters of a-z, 0-9 and '_', starting with a letter"),
                );
            }
            PostgresConfig { url: p.url, schema }
        });
        let redis = raw.redis.map(|r| {
            if !(r.url.starts_with("redis://") || r.url.starts_with("rediss://")) {
                problem("redis.url", format!("{:?} is not a redis:// URL", r.url));
            }
            RedisConfig {
                url: r.url,
                prefix: r.prefix.unwrap_or_else(|| "hearth".to_owned()),
            }
        });

        let nats = raw.nats.map(|n| {
            if !(n.url.starts_with("nats://") || n.url.starts_with("tls://")) {
                problem("nats.url", format!("{:?} is not a nats:// URL", n.url));
            }
            let prefix = n.prefix.unwrap_or_else(|| "hearth".to_owned());
            if !valid_nats_prefix(&prefix) {
                problem(
                    "nats.prefix",
                    format!("{prefix:?} is not a prefix: use 1 to 32 characters of a-z, A-Z, 0-9 and '_'"),
                );
            }
            let ack_wait_ms = n.ack_wait_ms.unwrap_or(DEFAULT_NATS_ACK_WAIT_MS);
            if !(1_000..=3_600_000).contains(&ack_wait_ms) {
                problem(
                    "nats.ack_wait_ms",
                    format!("{ack_wait_ms} is out of range: use 1000 to 3600000 milliseconds"),
                );
            }
            let replicas = n.replicas.unwrap_or(1);
            if !(1..=5).contains(&replicas) {
                problem(
                    "nats.replicas",
                    format!("{replicas} is out of range: JetStream keeps 1 to 5 replicas"),
                );
            }
            NatsConfig {
                url: n.url,
                prefix,
                ack_wait_ms,
                replicas,
            }
        });
        let queues = match raw.backends.queues.as_deref() {
            None if nats.is_some() => QueuesBackend::JetStream,
            None | Some("embedded") => QueuesBackend::Embedded,
            Some("jetstream") => QueuesBackend::JetStream,
            Some(other) => {
                problem(
                    "backends.queues",
                    format!("{other:?} is not a Queues backend: use \"jetstream\" or \"embedded\""),
                );
                QueuesBackend::Embedded
            }
        };
        if queues == QueuesBackend::JetStream && nats.is_none() {
            problem(
                "backends.queues",
                "\"jetstream\" needs a [nats] section with its url".into(),
            );
        }
        let s3 = raw.s3.map(|r| parse_s3(r, base, &mut problem));
        let r2 = match raw.backends.r2.as_deref() {
            None if s3.is_some() => R2Backend::S3,
            None | Some("embedded") => R2Backend::Embedded,
            Some("s3") => R2Backend::S3,
            Some(other) => {
                problem(
                    "backends.r2",
                    format!("{other:?} is not an R2 backend: use \"s3\" or \"embedded\""),
                );
                R2Backend::Embedded
            }
        };
        if r2 == R2Backend::S3 && s3.is_none() {
            problem(
                "backends.r2",
                "\"s3\" needs an [s3] section with its bucket and keys".into(),
            );
        }
        let kv = match raw.backends.kv.as_deref() {
            None if postgres.is_some() => KvBackend::Postgres,
            None | Some("embedded") => KvBackend::Embedded,
            Some("postgres") => KvBackend::Postgres,
            Some(other) => {
                problem(
                    "backends.kv",
                    format!("{other:?} is not a KV backend: use \"postgres\" or \"embedded\""),
                );
                KvBackend::Embedded
            }
        };
        if kv == KvBackend::Postgres && postgres.is_none() {
            problem(
                "backends.kv",
                "\"postgres\" needs a [postgres] section with its url".into(),
            );
        }
        let ratelimits = match raw.backends.ratelimits.as_deref() {
            None if redis.is_some() => RateLimitBackend::Redis,
            None | Some("memory") => RateLimitBackend::Memory,
            Some("redis") => RateLimitBackend::Redis,
            Some(other) => {
                problem(
                    "backends.ratelimits",
                    format!(
                        "{other:?} is not a rate limiting backend: use \"redis\" or \"memory\""
                    ),
                );
                RateLimitBackend::Memory
            }
        };
        if ratelimits == RateLimitBackend::Redis && redis.is_none() {
            problem(
                "backends.ratelimits",
                "\"redis\" needs a [redis] section with its url".into(),
            );
        }
        let lease_ms = raw.durable_objects.lease_ms.unwrap_or(DEFAULT_LEASE_MS);
        if !(500..=600_000).contains(&lease_ms) {
            problem(
                "durable_objects.lease_ms",
                format!("{lease_ms} is out of range: use 500 to 600000 milliseconds"),
            );
        }
        if postgres.is_none() {
            problem(
                "postgres",
                "missing; Durable Object placement (leases and fencing tokens) lives in PostgreSQL"
                    .into(),
            );
        }
        if raw.durable_objects.storage.is_some() {
            problem(
                "durable_objects.storage",
                "no longer used: each node keeps its objects in its own data directory and ships every commit to PostgreSQL; remove the line".into(),
            );
        }
        let snapshot_after_bytes = raw
            .durable_objects
            .snapshot_after_bytes
            .unwrap_or(crate::do_log::DEFAULT_SNAPSHOT_AFTER_BYTES);
        if !(4096..=1 << 30).contains(&snapshot_after_bytes) {
            problem(
                "durable_objects.snapshot_after_bytes",
                format!("{snapshot_after_bytes} is out of range: use 4096 to 1073741824 bytes"),
            );
        }

        if !problems.is_empty() {
            return Err(ConfigError::Invalid { problems });
        }
        let (Some(advertise), Some(listen)) = (advertise, listen) else {
            return Err(ConfigError::Invalid {
                problems: vec![format!("{shown}: advertise: missing")],
            });
        };
        Ok(Self {
            path: path.to_path_buf(),
            node_id,
            advertise,
            listen,
            secret,
            postgres,
            redis,
            nats,
            s3,
            backends: Backends {
                kv,
                ratelimits,
                queues,
                r2,
            },
            durable_objects: DurableObjectsConfig {
                snapshot_after_bytes,
                lease_ms,
            },
        })
    }
}

/// Checks `[s3]`; a key is given inline or in a file (relative to the
/// cluster file's folder), never both.
fn parse_s3(raw: RawS3, base: &Path, problem: &mut impl FnMut(&str, String)) -> S3Config {
    let mut secret = |field: &str, inline: Option<String>, file: Option<PathBuf>| -> String {
        match (inline, file) {
            (Some(_), Some(_)) => {
                problem(
                    &format!("s3.{field}"),
                    format!("give either {field} or {field}_file, not both"),
                );
                String::new()
            }
            (None, None) => {
                problem(
                    &format!("s3.{field}"),
                    format!("missing; give {field} or {field}_file"),
                );
                String::new()
            }
            (Some(v), None) => v,
            (None, Some(file)) => {
                let file = base.join(file);
                match std::fs::read(&file) {
                    Ok(bytes) => String::from_utf8_lossy(&trim_ascii_end(bytes)).into_owned(),
                    Err(e) => {
                        problem(
                            &format!("s3.{field}_file"),
                            format!("cannot read {}: {e}", file.display()),
                        );
                        String::new()
                    }
                }
            }
        }
    };
    let access_key_id = secret("access_key_id", raw.access_key_id, raw.access_key_id_file);
    let secret_access_key = secret(
        "secret_access_key",
        raw.secret_access_key,
        raw.secret_access_key_file,
    );
    if let Some(e) = &raw.endpoint
        && !(e.starts_with("http://") || e.starts_with("https://"))
    {
        problem(
            "s3.endpoint",
            format!("{e:?} is not an http:// or https:// URL"),
        );
    }
    let bucket = raw.bucket.unwrap_or_default();
    if !valid_s3_bucket(&bucket) {
        problem(
            "s3.bucket",
            format!(
                "{bucket:?} is not an S3 bucket name: use 3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit"
            ),
        );
    }
    let region = raw.region.unwrap_or_else(|| "us-east-1".to_owned());
    if region.is_empty() {
        problem(
            "s3.region",
            "empty; give the store's region, e.g. \"us-east-1\"".into(),
        );
    }
    let prefix = raw.prefix.unwrap_or_default();
    if !(prefix.is_empty() || prefix.ends_with('/')) || prefix.starts_with('/') {
        problem(
            "s3.prefix",
            format!("{prefix:?} must be empty or a path ending in '/' (and not starting with one)"),
        );
    }
    S3Config {
        endpoint: raw.endpoint,
        bucket,
        region,
        access_key_id,
        secret_access_key,
        prefix,
    }
}

fn valid_s3_bucket(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'-'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn trim_ascii_end(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
        bytes.pop();
    }
    bytes
}

fn valid_node_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A prefix safe inside a JetStream stream name and a subject token.
pub fn valid_nats_prefix(prefix: &str) -> bool {
    (1..=32).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A schema name safe to put into SQL text unquoted.
pub fn valid_schema(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
