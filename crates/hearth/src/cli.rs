//! The command line. The verbs mirror wrangler's (`kv key put`, `d1 execute`,
//! `r2 object get`, ...) so its users find their way without a manual.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hearth",
    version,
    about = "Run Cloudflare Workers projects on your own machines"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the worker a config names, with its bindings, over HTTP.
    Serve(ServeArgs),
    /// Serve like `serve`, reloading the worker when a file it loaded
    /// changes; error stacks go into 500 responses.
    Dev(ServeArgs),
    /// Workers KV: keys and bulk writes.
    Kv {
        #[command(subcommand)]
        command: KvCommand,
    },
    /// D1: SQL and migrations.
    D1 {
        #[command(subcommand)]
        command: D1Command,
    },
    /// R2: buckets, objects, and access keys of the S3 endpoint.
    R2 {
        #[command(subcommand)]
        command: R2Command,
    },
    /// Queues: list queues, send a message, inspect a queue's backlog.
    Queues {
        #[command(subcommand)]
        command: QueuesCommand,
    },
    /// Workflows: list them, list and describe instances, terminate, pause
    /// or resume one.
    Workflows {
        #[command(subcommand)]
        command: WorkflowsCommand,
    },
    /// Workers Analytics Engine: query the datasets with the SQL API's dialect.
    Analytics {
        #[command(subcommand)]
        command: AnalyticsCommand,
    },
    /// Workers AI: the models an AI config serves.
    Ai {
        #[command(subcommand)]
        command: AiCommand,
    },
    /// Vectorize: create and inspect indexes, their metadata indexes and vectors.
    Vectorize {
        #[command(subcommand)]
        command: VectorizeCommand,
    },
    /// Load and validate a config; print it as JSON with the environment applied.
    Config(ProjectArgs),
    /// Copy a data directory's KV namespaces, R2 buckets, Durable Objects,
    /// D1 databases and Workflows into the backends a cluster file names,
    /// so nodes started with `serve --cluster` see them. Run it with the
    /// server and every node stopped.
    Migrate(MigrateArgs),
    /// Cluster mode: the state of the nodes sharing a cluster file's backends.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// API keys the edge checks (`[[api_keys]]` in the --edge zone file).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The edge's security events (blocks and logs).
    Security {
        #[command(subcommand)]
        command: SecurityCommand,
    },
    /// Serve AI Gateway on a listener of its own, as a drop-in base URL
    /// for OpenAI/Anthropic clients: `http://ADDR/<gateway>/<provider>`.
    Gateway(GatewayArgs),
    /// AI Gateway's logs and their summary.
    AiGateway {
        #[command(subcommand)]
        command: AiGatewayCommand,
    },
}

#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8790", value_name = "ADDR")]
    pub listen: String,
    /// The gateway file (`[[gateways]]`, `[providers.*]`, `[[prices]]`).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Where the logs live (default: `.hearth/` beside the gateway file).
    #[arg(long = "data-dir", env = "HEARTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AiGatewayCommand {
    /// A gateway's logs, newest first, as JSON lines; or their summary.
    Logs {
        /// The gateway's id.
        gateway: String,
        /// The gateway file; its directory holds the default data directory.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Where the logs live (default: `.hearth/` beside --config, else
        /// in the current directory).
        #[arg(long = "data-dir", env = "HEARTH_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// `field=value`: provider, model, key, path, id, status, step,
        /// success, cached, since, until (Unix ms), dlp. May repeat.
        #[arg(long = "filter", value_name = "FIELD=VALUE")]
        filter: Vec<String>,
        /// Most logs printed.
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// One JSON object instead: requests, tokens, cost, p50/p99
        /// latency and cache hit rate, in total and per model.
        #[arg(long)]
        summary: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AiCommand {
    /// List each model name and the local files or provider serving it.
    Models {
        /// The AI config file (`[models."@cf/..."]`, `[providers.NAME]`).
        #[arg(long = "ai-config", value_name = "FILE", env = "HEARTH_AI_CONFIG")]
        ai_config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key for a tenant; the key is printed once and stored hashed.
    Create {
        #[command(flatten)]
        project: ProjectArgs,
        /// The tenant the key belongs to (forwarded to the worker).
        #[arg(long)]
        tenant: String,
        /// A scope the key grants; may be given more than once.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A note shown by `keys list`.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Every key (id, tenant, scopes, created, revoked), never the secret.
    List {
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Revoke a key by id; the next request carrying it is refused.
    Revoke {
        #[command(flatten)]
        project: ProjectArgs,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecurityCommand {
    /// Recorded block/log decisions, newest last, as JSON lines.
    Events {
        #[command(flatten)]
        project: ProjectArgs,
        /// Only the newest N.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Only events of this rule id.
        #[arg(long)]
        rule: Option<String>,
        /// Only events from this client IP.
        #[arg(long)]
        ip: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum VectorizeCommand {
    /// Create an index; its dimensions and metric are fixed from then on.
    Create {
        #[command(flatten)]
        project: ProjectArgs,
        name: String,
        #[arg(long)]
        dimensions: usize,
        /// cosine, euclidean or dot-product.
        #[arg(long)]
        metric: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Every index of the data directory.
    List {
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// An index's configuration.
    Get {
        #[command(flatten)]
        project: ProjectArgs,
        name: String,
    },
    /// Delete an index and every vector in it.
    Delete {
        #[command(flatten)]
        project: ProjectArgs,
        name: String,
        /// Accepted for wrangler compatibility (Hearth does not prompt).
        #[arg(long, short = 'y')]
        force: bool,
    },
    /// Vector count and the last mutation processed.
    Info {
        #[command(flatten)]
        project: ProjectArgs,
        name: String,
    },
    /// Insert (or with --upsert, upsert) the vectors of an NDJSON file, one
    /// `{"id", "values", "namespace"?, "metadata"?}` per line.
    Insert {
        #[command(flatten)]
        project: ProjectArgs,
        name: String,
        #[arg(long)]
        file: PathBuf,
        /// Vectors per write (at most 5000, the HTTP API's batch).
        #[arg(long = "batch-size", default_value_t = 1000)]
        batch_size: usize,
        #[arg(long)]
        upsert: bool,
    },
    /// Query by a vector (`--vector 0.1 0.2 ...` or `--vector "[0.1,0.2]"`)
    /// or by a stored vector's id.
    Query {
        #[command(flatten)]
        project: ProjectArgs,
        name: String,
        #[arg(long, num_args = 1.., allow_negative_numbers = true)]
        vector: Vec<String>,
        #[arg(long = "vector-id")]
        vector_id: Option<String>,
        #[arg(long = "top-k", default_value_t = 5)]
        top_k: usize,
        #[arg(long = "return-values")]
        return_values: bool,
        /// none, indexed or all.
        #[arg(long = "return-metadata", default_value = "none")]
        return_metadata: String,
        #[arg(long)]
        namespace: Option<String>,
        /// A metadata filter as JSON, e.g. '{"genre": {"$eq": "jazz"}}'.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Index a metadata property so queries can filter on it.
    #[command(name = "create-metadata-index")]
    CreateMetadataIndex {
        #[command(flatten)]
        project: ProjectArgs,
        name: String,
        #[arg(long = "property-name", visible_alias = "propertyName")]
        property_name: String,
        /// string, number or boolean.
        #[arg(long = "type")]
        index_type: String,
    },
    /// The metadata indexes of an index.
    #[command(name = "list-metadata-index")]
    ListMetadataIndex {
        #[command(flatten)]
        project: ProjectArgs,
        name: String,
    },
    /// Remove a metadata index.
    #[command(name = "delete-metadata-index")]
    DeleteMetadataIndex {
        #[command(flatten)]
        project: ProjectArgs,
        name: String,
        #[arg(long = "property-name", visible_alias = "propertyName")]
        property_name: String,
    },
    /// Print the vectors with these ids.
    #[command(name = "get-vectors")]
    GetVectors {
        #[command(flatten)]
        project: ProjectArgs,
        name: String,
        #[arg(long, num_args = 1..)]
        ids: Vec<String>,
    },
    /// Delete the vectors with these ids.
    #[command(name = "delete-vectors")]
    DeleteVectors {
        #[command(flatten)]
        project: ProjectArgs,
        name: String,
        #[arg(long, num_args = 1..)]
        ids: Vec<String>,
    },
    /// The ids in an index, a page at a time.
    #[command(name = "list-vectors")]
    ListVectors {
        #[command(flatten)]
        project: ProjectArgs,
        name: String,
        #[arg(long, default_value_t = 100)]
        count: usize,
        #[arg(long)]
        cursor: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AnalyticsCommand {
    /// Run one SQL API query (FORMAT JSON, JSONEachRow or TabSeparated) and
    /// print the answer.
    Sql {
        #[command(flatten)]
        project: ProjectArgs,
        /// The query, e.g. "SELECT blob1, SUM(_sample_interval) FROM my_dataset GROUP BY blob1".
        query: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueuesCommand {
    /// Every queue the config names or that holds messages, with its depth.
    List {
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Send one message; prints its id.
    Send {
        #[command(flatten)]
        project: ProjectArgs,
        queue: String,
        body: String,
        /// text, bytes, json or v8 (json and v8 take a JSON body).
        #[arg(long = "content-type", default_value = "text")]
        content_type: String,
        #[arg(long = "delay-seconds")]
        delay_seconds: Option<f64>,
    },
    /// Depth, in-flight count, oldest message age and dead-letter depth.
    Inspect {
        #[command(flatten)]
        project: ProjectArgs,
        queue: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkflowsCommand {
    /// Every Workflow the config declares, with instance counts by status.
    List {
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Instances of one Workflow.
    Instances {
        #[command(subcommand)]
        command: WorkflowInstancesCommand,
    },
    /// Terminate an instance (same as `instances terminate`).
    Terminate(WorkflowInstanceArgs),
    /// Pause an instance (same as `instances pause`).
    Pause(WorkflowInstanceArgs),
    /// Resume a paused instance (same as `instances resume`).
    Resume(WorkflowInstanceArgs),
}

#[derive(Debug, Subcommand)]
pub enum WorkflowInstancesCommand {
    /// Instances, newest first.
    List {
        #[command(flatten)]
        project: ProjectArgs,
        /// The workflow's name or binding.
        workflow: String,
        /// Only instances with this status (queued, running, paused, errored,
        /// terminated, complete, waiting, waitingForPause).
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1 to 1000, default 50).
        #[arg(long)]
        limit: Option<usize>,
        /// The `cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One instance: status, output or error, and every step with its
    /// attempts, timing and output.
    Describe(WorkflowInstanceArgs),
    Terminate(WorkflowInstanceArgs),
    Pause(WorkflowInstanceArgs),
    Resume(WorkflowInstanceArgs),
}

#[derive(Debug, Args)]
pub struct WorkflowInstanceArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The workflow's name or binding.
    pub workflow: String,
    /// The instance id.
    pub id: String,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// The worker's wrangler.toml / .json / .jsonc, or its directory
    /// (default: --config, else the current directory); several serve
    /// several workers. A .js/.ts/.mjs/.mts/.cjs/.jsx/.tsx file among them
    /// is the entry script, used in place of the config's `main` (as in
    /// `wrangler dev src/index.ts`).
    #[arg(value_name = "CONFIG|SCRIPT")]
    pub configs: Vec<PathBuf>,
    /// Do not run the config's `[build].command` before serving.
    #[arg(long = "no-build")]
    pub no_build: bool,
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Address to listen on.
    #[arg(short = 'l', long, default_value = hearth_http::DEFAULT_LISTEN)]
    pub listen: String,
    /// Development mode: an uncaught exception's stack goes into the 500 response.
    #[arg(long)]
    pub dev: bool,
    /// Bearer token that opens the internal endpoints (/__hearth/*,
    /// /cdn-cgi/handler/scheduled) on the main listener; required on the
    /// admin listener too when set.
    #[arg(
        long = "internal-token",
        env = "HEARTH_INTERNAL_TOKEN",
        hide_env_values = true
    )]
    pub internal_token: Option<String>,
    /// Bearer token of the Cloudflare API paths served on the main
    /// listener: the Analytics Engine SQL API
    /// (POST /client/v4/accounts/<id>/analytics_engine/sql) and, with
    /// --ai-gateway, the AI Gateway logs list
    /// (GET /client/v4/accounts/<id>/ai-gateway/gateways/<id>/logs);
    /// without it those paths are not served there.
    #[arg(
        long = "analytics-token",
        env = "HEARTH_ANALYTICS_TOKEN",
        hide_env_values = true
    )]
    pub analytics_token: Option<String>,
    /// A second listener serving only the internal endpoints, e.g.
    /// 127.0.0.1:8788 (a non-loopback address needs --internal-token).
    #[arg(long = "admin-listen", value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Most client connections open at once; past it a new one gets a 503
    /// (default: 10000, lowered to fit the open-files limit).
    #[arg(long = "max-connections", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Largest request body a worker accepts, in bytes (default: 100 MiB,
    /// as on Workers' Free and Pro plans); larger ones get a 413, or fail
    /// the worker's read of the stream once they pass it.
    #[arg(long = "max-request-body", value_name = "BYTES")]
    pub max_request_body: Option<u64>,
    /// A MaxMind-format database (GeoLite2/GeoIP2 City or Country, or ASN)
    /// that fills request.cf's country, city, asn... from the client's
    /// address; may be given more than once. Without one those fields are
    /// absent.
    #[arg(long = "geoip", value_name = "FILE")]
    pub geoip: Vec<PathBuf>,
    /// Serve R2's S3-compatible API on this address (e.g. 127.0.0.1:9000),
    /// over the same buckets the workers bind; keys from `hearth r2
    /// credentials create`.
    #[arg(long = "s3-listen", value_name = "ADDR")]
    pub s3_listen: Option<String>,
    /// Let the S3 endpoint create and serve buckets the configs do not declare.
    #[arg(long = "s3-any-bucket", requires = "s3_listen")]
    pub s3_any_bucket: bool,
    /// The zone file (hearth.toml): listeners, TLS, trusted proxies, WAF
    /// and rate-limiting rules, JWT and API-key policies in front of every
    /// worker. Reloaded on SIGHUP or when it changes.
    #[arg(long = "edge", value_name = "FILE")]
    pub edge: Option<PathBuf>,
    /// Cluster mode: the cluster file (node id, internal address, node
    /// secret, PostgreSQL and Redis). KV moves to PostgreSQL, rate limits
    /// to Redis, and each Durable Object runs on one node at a time, the
    /// others forwarding to it.
    #[arg(long = "cluster", value_name = "FILE")]
    pub cluster: Option<PathBuf>,
    /// The AI Gateway file (`[[gateways]]`, `[providers.*]`, `[[prices]]`),
    /// served at `/__hearth/ai-gateway/<gateway>/<provider>/...`.
    #[arg(long = "ai-gateway", value_name = "FILE")]
    pub ai_gateway: Option<PathBuf>,
    /// For tests only: run the workers on a clock that `POST
    /// /__hearth/clock` moves forward ({"advance_ms": N} or {"set_ms": T});
    /// Date, KV expiry, alarms, crons, Workflows, Queues and rate limits
    /// follow it. Never use it in production.
    #[arg(long = "test-clock", conflicts_with = "cluster")]
    pub test_clock: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The cluster's nodes: address, liveness, heartbeat age and how many
    /// Durable Objects each holds.
    Status {
        /// The cluster file, as given to `hearth serve --cluster`.
        #[arg(long = "cluster", value_name = "FILE")]
        cluster: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Moves every Durable Object off a node without dropping requests:
    /// the node takes no new lease and hands its objects over one at a
    /// time. Waits until the node holds none. The node rejoins as active
    /// when it restarts.
    Drain {
        /// The node's `node_id`.
        node: String,
        /// The cluster file, as given to `hearth serve --cluster`.
        #[arg(long = "cluster", value_name = "FILE")]
        cluster: PathBuf,
        /// Give up waiting after this many seconds (the node keeps draining).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The workers' wrangler.toml / .json / .jsonc, or their directories
    /// (default: --config, else the current directory), as given to
    /// `hearth serve`.
    #[arg(value_name = "CONFIG")]
    pub configs: Vec<PathBuf>,
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The cluster file the nodes will be started with.
    #[arg(long = "cluster", value_name = "FILE")]
    pub cluster: PathBuf,
    /// Copy even when the cluster already holds data of a namespace,
    /// bucket, object, database or workflow: keys and objects of the same
    /// name are replaced, a Durable Object, D1 database or workflow's
    /// instances are replaced whole.
    #[arg(long)]
    pub force: bool,
}

/// Where the project is and where its data lives; shared by every command.
#[derive(Debug, Args, Clone)]
pub struct ProjectArgs {
    /// wrangler.toml / wrangler.json / wrangler.jsonc, or the directory holding it.
    #[arg(short = 'c', long = "config", default_value = ".")]
    pub config: PathBuf,
    /// Where Hearth keeps its state (default: `.hearth/` beside the config).
    #[arg(
        long = "data-dir",
        visible_alias = "persist-to",
        env = "HEARTH_DATA_DIR"
    )]
    pub data_dir: Option<PathBuf>,
    /// The `[env.NAME]` section of the config to use.
    #[arg(short = 'e', long = "env")]
    pub env: Option<String>,
    /// Accepted for wrangler compatibility; Hearth's data is always local.
    #[arg(long = "local", hide = true)]
    pub local: bool,
    /// Refused with an explanation rather than an "unknown flag" error: a
    /// wrangler user's script may pass it.
    #[arg(long = "remote", hide = true, conflicts_with = "local")]
    pub remote: bool,
    /// The entry script given on the command line of `serve`/`dev`, in
    /// place of the config's `main`.
    #[arg(skip)]
    pub script: Option<PathBuf>,
    /// R2: age at which an unfinished multipart upload is aborted and its
    /// parts removed, e.g. 7d, 12h, 90m, 3600s (default: 7d, R2's rule).
    #[arg(long = "r2-multipart-expiry", value_name = "AGE", value_parser = parse_age)]
    pub r2_multipart_expiry: Option<std::time::Duration>,
    /// Workers AI: the file naming local models and providers (see
    /// `hearth ai models`).
    #[arg(long = "ai-config", value_name = "FILE", env = "HEARTH_AI_CONFIG")]
    pub ai_config: Option<PathBuf>,
}

/// `7d`, `12h`, `90m`, `3600s` or bare seconds.
fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not an age like 7d, 12h, 90m or 3600s"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    if secs == 0 {
        return Err("the age must be more than zero".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// Extensions of a positional argument that names the entry script rather
/// than a config.
pub const SCRIPT_EXTENSIONS: [&str; 8] = ["js", "mjs", "cjs", "ts", "mts", "cts", "jsx", "tsx"];

/// Which KV namespace: by binding name or by id, as wrangler takes it.
#[derive(Debug, Args, Clone)]
pub struct KvTarget {
    #[command(flatten)]
    pub namespace: KvNamespaceArg,
    /// With --binding: use the binding's `preview_id` namespace.
    #[arg(long, requires = "binding")]
    pub preview: bool,
}

/// Exactly one of `--binding` and `--namespace-id`.
#[derive(Debug, Args, Clone)]
#[group(required = true, multiple = false)]
pub struct KvNamespaceArg {
    /// The binding name in `kv_namespaces`.
    #[arg(long)]
    pub binding: Option<String>,
    /// The namespace id (`id` or `preview_id`) in `kv_namespaces`.
    #[arg(long = "namespace-id")]
    pub namespace_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Keys of one namespace.
    Key {
        #[command(subcommand)]
        command: KvKeyCommand,
    },
    /// Many keys at once.
    Bulk {
        #[command(subcommand)]
        command: KvBulkCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KvKeyCommand {
    /// Write a value.
    Put {
        key: String,
        /// The value; or give --path.
        value: Option<String>,
        /// Read the value from this file.
        #[arg(long, conflicts_with = "value")]
        path: Option<PathBuf>,
        /// Seconds until the key expires (at least 60).
        #[arg(long)]
        ttl: Option<f64>,
        /// Seconds since the Unix epoch at which the key expires.
        #[arg(long)]
        expiration: Option<f64>,
        /// JSON metadata stored with the key.
        #[arg(long)]
        metadata: Option<String>,
        #[command(flatten)]
        target: KvTarget,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Print a value to stdout.
    Get {
        key: String,
        /// Decode the value as UTF-8 text (the default writes raw bytes).
        #[arg(long)]
        text: bool,
        #[command(flatten)]
        target: KvTarget,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// List keys as JSON.
    List {
        #[arg(long)]
        prefix: Option<String>,
        #[command(flatten)]
        target: KvTarget,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Delete a key.
    Delete {
        key: String,
        #[command(flatten)]
        target: KvTarget,
        #[command(flatten)]
        project: ProjectArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KvBulkCommand {
    /// Write the entries of a JSON file: `[{"key", "value", "expiration"?,
    /// "expiration_ttl"?, "metadata"?, "base64"?}]`. Every entry is checked
    /// before the first is written.
    Put {
        file: PathBuf,
        #[command(flatten)]
        target: KvTarget,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Read the keys named in a JSON file (`["key", {"name": "key"}, ...]`)
    /// and print `{"key": {"value": ...}}` as JSON.
    Get {
        file: PathBuf,
        #[command(flatten)]
        target: KvTarget,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Delete the keys named in a JSON file (`["key", {"name": "key"}, ...]`).
    Delete {
        file: PathBuf,
        /// Accepted for wrangler compatibility; Hearth never prompts.
        #[arg(short = 'f', long, hide = true)]
        force: bool,
        #[command(flatten)]
        target: KvTarget,
        #[command(flatten)]
        project: ProjectArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum D1Command {
    /// Run SQL against a database (name or binding).
    Execute {
        database: String,
        /// SQL to run; several statements separated by `;` run as one batch.
        #[arg(
            long,
            required_unless_present = "file",
            conflicts_with = "file",
            allow_hyphen_values = true
        )]
        command: Option<String>,
        /// A file of SQL statements to run.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Print results as JSON (errors too, as `{"error": {"text": ...}}`).
        #[arg(long)]
        json: bool,
        /// Accepted for wrangler compatibility; Hearth never prompts.
        #[arg(short = 'y', long = "yes", hide = true)]
        yes: bool,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Migrations in the database's migrations_dir.
    Migrations {
        #[command(subcommand)]
        command: D1MigrationsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum D1MigrationsCommand {
    /// Write the next empty migration file.
    Create {
        database: String,
        message: String,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Show migrations not yet applied.
    List {
        database: String,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Apply every migration not yet applied, in order.
    Apply {
        database: String,
        #[command(flatten)]
        project: ProjectArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum R2Command {
    /// Objects of a bucket.
    Object {
        #[command(subcommand)]
        command: R2ObjectCommand,
    },
    /// Buckets: create, list, delete, info, CORS rules.
    Bucket {
        #[command(subcommand)]
        command: R2BucketCommand,
    },
    /// Access keys of the S3 endpoint (`hearth serve --s3-listen`).
    Credentials {
        #[command(subcommand)]
        command: R2CredentialsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum R2BucketCommand {
    /// Create a bucket (reachable over S3 with `serve --s3-any-bucket`, or
    /// by a worker once declared in r2_buckets).
    Create {
        name: String,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// List the buckets: those the config declares and those created.
    List {
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Delete an empty bucket the config does not declare.
    Delete {
        name: String,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// A bucket's object count, size and creation date.
    Info {
        name: String,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// CORS rules of the S3 endpoint for a bucket.
    Cors {
        #[command(subcommand)]
        command: R2CorsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum R2CorsCommand {
    /// Set the rules from a JSON file (wrangler's `r2 bucket cors set` format).
    #[command(visible_alias = "set")]
    Put {
        bucket: String,
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Print the rules.
    #[command(visible_alias = "get")]
    List {
        bucket: String,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Remove the rules.
    Delete {
        bucket: String,
        #[command(flatten)]
        project: ProjectArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum R2CredentialsCommand {
    /// Create an access key; its secret is printed once and never again.
    Create {
        /// A name to recognise the key by.
        #[arg(long, default_value = "")]
        name: String,
        /// Limit the key to this bucket (repeat for several; default: all).
        #[arg(long = "bucket")]
        buckets: Vec<String>,
        /// Allow reads and listings only.
        #[arg(long = "read-only")]
        read_only: bool,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// List the access keys (never their secrets).
    List {
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Revoke an access key; requests signed with it are refused at once.
    Revoke {
        access_key_id: String,
        #[command(flatten)]
        project: ProjectArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum R2ObjectCommand {
    /// Store a file (or stdin with --pipe) as `<bucket>/<key>`.
    Put {
        object_path: String,
        #[arg(short = 'f', long, required_unless_present = "pipe")]
        file: Option<PathBuf>,
        /// Read the body from stdin.
        #[arg(short = 'p', long, conflicts_with = "file")]
        pipe: bool,
        #[arg(long = "content-type", visible_alias = "ct")]
        content_type: Option<String>,
        #[arg(long = "content-disposition", visible_alias = "cd")]
        content_disposition: Option<String>,
        #[arg(long = "content-encoding", visible_alias = "ce")]
        content_encoding: Option<String>,
        #[arg(long = "content-language", visible_alias = "cl")]
        content_language: Option<String>,
        #[arg(long = "cache-control", visible_alias = "cc")]
        cache_control: Option<String>,
        /// When the object stops being cacheable, in milliseconds since the
        /// Unix epoch (as `wrangler r2 object put --local` takes it).
        #[arg(long)]
        expires: Option<u64>,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Write `<bucket>/<key>` to a file, or to stdout with --pipe.
    Get {
        object_path: String,
        #[arg(short = 'f', long, conflicts_with = "pipe")]
        file: Option<PathBuf>,
        #[arg(short = 'p', long)]
        pipe: bool,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Delete `<bucket>/<key>`.
    Delete {
        object_path: String,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// List a bucket's keys.
    List {
        bucket: String,
        #[arg(long)]
        prefix: Option<String>,
        /// Roll keys up to this delimiter (e.g. "/").
        #[arg(long)]
        delimiter: Option<String>,
        #[command(flatten)]
        project: ProjectArgs,
    },
}

#[cfg(test)]
mod age_tests {
    use super::parse_age;
    use std::time::Duration;

    #[test]
    fn ages_in_each_unit() {
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_age("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_age("3600"), Ok(Duration::from_secs(3600)));
        assert!(parse_age("0d").unwrap_err().contains("more than zero"));
        assert!(parse_age("7w").unwrap_err().contains("unit"));
        assert!(parse_age("d").unwrap_err().contains("not an age"));
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every CLI verb a binding kind declares is a command here.
    #[test]
    fn binding_kinds_name_real_verbs() {
        let root = Cli::command();
        for kind in hearth_runtime::bindings::registry::KINDS {
            for verb in kind.cli_verbs() {
                let mut cmd = &root;
                for word in verb.split(' ') {
                    cmd = cmd.find_subcommand(word).unwrap_or_else(|| {
                        panic!("{}: `hearth {verb}` is not a command", kind.section())
                    });
                }
            }
        }
    }
}
