//! Reads a Cloudflare Workers project's own config (`wrangler.toml`,
//! `wrangler.json` or `wrangler.jsonc`) into a typed, validated [`Config`].
//!
//! - [`load`] takes the config file, or the directory holding it, plus
//!   [`LoadOptions`] (the environment to select, the process environment to read
//!   secrets from, the [`Limits`] to check against).
//! - Every problem is collected: a failed load returns a [`ConfigError`] listing
//!   each one as `<file>: <field path>: <what is wrong>`. Unknown fields never
//!   fail a load; they come back as warnings in the same style.
//! - `[env.NAME]` sections follow wrangler's inheritance rules (see [`load`]).
//! - Secrets come from `.dev.vars` / `.dev.vars.<env>` beside the config and from
//!   `HEARTH_SECRET_<NAME>` process variables (see [`LoadOptions::process_env`]).
//!
//! This crate reads files and nothing else: it opens no database, binds no
//! socket and knows nothing of JavaScript.

mod build;
mod dev_vars;
mod error;
mod parse;
mod reader;
pub mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

pub use dev_vars::parse_dev_vars;
pub use error::{ConfigError, Problem};
pub use validate::Limits;

/// The config file names wrangler looks for in a directory, in its order of
/// preference: `wrangler.json` wins over `wrangler.jsonc`, which wins over
/// `wrangler.toml`.
pub const CONFIG_FILE_NAMES: [&str; 3] = ["wrangler.json", "wrangler.jsonc", "wrangler.toml"];

/// Prefix of process variables that become secrets:
/// `HEARTH_SECRET_<WORKER>__API_KEY=x` gives the secret `API_KEY` to the
/// worker whose `name` is `<WORKER>` (see [`secret_scope`]); the unscoped
/// `HEARTH_SECRET_API_KEY=x` gives it to the only worker a process serves.
pub const SECRET_ENV_PREFIX: &str = "HEARTH_SECRET_";

/// Separates the worker from the secret's name in a scoped process secret.
pub const SECRET_SCOPE_SEPARATOR: &str = "__";

/// How a worker's `name` is spelled in `HEARTH_SECRET_<WORKER>__<NAME>`:
/// ASCII letters upper-cased, every other character but a digit becomes
/// `_` (so `my-api` is `MY_API`), since a shell variable name can hold
/// neither dashes nor dots.
pub fn secret_scope(worker_name: &str) -> String {
    worker_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// How to load a config.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions<'a> {
    /// The `[env.NAME]` section to select (`--env NAME`); `None` for the top level.
    pub env: Option<&'a str>,
    /// The process environment, passed in rather than read so that callers
    /// decide what the Worker can see. Only variables named
    /// `HEARTH_SECRET_<WORKER>__<NAME>` (scoped to this worker by its
    /// [`secret_scope`]) and `HEARTH_SECRET_<NAME>` (unscoped) are used: each
    /// becomes the secret `<NAME>` and overrides a value of the same name
    /// from `.dev.vars`; a scoped one wins over an unscoped one. Nothing
    /// else of the process environment reaches the Worker.
    pub process_env: BTreeMap<String, String>,
    /// The names of every worker the process serves together, when more
    /// than one: then an unscoped `HEARTH_SECRET_<NAME>` is refused (it would
    /// reach every worker), and a scope naming none of them is a warning.
    /// Empty for a process serving one worker (or none: the data commands).
    pub served_workers: Vec<String>,
    /// Limits to validate against; `Default` holds Cloudflare's.
    pub limits: Limits,
}

/// A successfully loaded config.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    /// Unknown fields and other doubtful things, one line each, in the error style.
    pub warnings: Vec<String>,
    /// The config file that was read (absolute).
    pub path: PathBuf,
    /// The `.wrangler/deploy/config.json` followed to reach `path`, when the
    /// directory given holds one (see [`DEPLOY_REDIRECT_FILE`]).
    pub redirected_from: Option<PathBuf>,
}

impl Loaded {
    /// The directory the user named: where their own config lives, and
    /// where local state belongs even when a build tool's generated config
    /// was loaded instead.
    pub fn user_dir(&self) -> &Path {
        match &self.redirected_from {
            // <dir>/.wrangler/deploy/config.json
            Some(redirect) => redirect
                .ancestors()
                .nth(3)
                .unwrap_or_else(|| self.config.dir()),
            None => self.config.dir(),
        }
    }
}

/// Where build tools (Cloudflare's Vite plugin) leave a pointer to the
/// config they generated: `{"configPath": "../../dist/worker/wrangler.json"}`,
/// relative to the pointer file. As in wrangler, a directory holding it
/// loads the generated config instead of the user's; a config file named
/// explicitly is loaded as it is.
pub const DEPLOY_REDIRECT_FILE: &str = ".wrangler/deploy/config.json";

/// Loads the config at `path`: a config file, or a directory in which the first
/// of [`CONFIG_FILE_NAMES`] that exists is used (wrangler's order; unlike
/// wrangler, parent directories are not searched). A directory holding a
/// [`DEPLOY_REDIRECT_FILE`] loads the config that file points to.
///
/// With `opts.env` set, the `[env.NAME]` section is applied as wrangler does:
/// - inherited from the top level unless the environment sets them: `main`,
///   `compatibility_date`, `compatibility_flags`, `routes`/`route`, `triggers`,
///   `limits`, `build`, `assets`, `observability`, `migrations`, ...;
/// - `name` becomes `<name>-<env>` unless the environment sets its own;
/// - never inherited: `vars`, `kv_namespaces`, `d1_databases`, `r2_buckets`,
///   `durable_objects`, `queues`, `workflows`, `vectorize`, `ai`,
///   `analytics_engine_datasets`, `ratelimits`, `services`, `unsafe`, `secrets`
///   (a warning says so when the top level has one the environment lacks);
/// - top level only: `dev`.
///
/// Selecting an environment the file does not define is an error listing the
/// ones it does; when the file defines none, it is a warning and the top level
/// is used (as wrangler does).
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    build::load(path, opts)
}

/// Finds the config file in `dir` (see [`CONFIG_FILE_NAMES`]); `None` when there is none.
pub fn find_config_file(dir: &Path) -> Option<PathBuf> {
    CONFIG_FILE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// A Worker's configuration with the selected environment applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// The config file this came from (absolute).
    pub path: PathBuf,
    /// The selected environment, if any.
    pub env: Option<String>,
    /// Environments the file defines, sorted by name.
    pub defined_environments: Vec<String>,
    pub name: String,
    pub main: Option<String>,
    /// `base_dir`: the directory modules are resolved under (wrangler's
    /// module root), relative to the config file; the config's directory
    /// when absent. A project whose workers share source files above their
    /// own directories sets it to the common ancestor.
    pub base_dir: Option<String>,
    pub compatibility_date: Option<String>,
    pub compatibility_flags: Vec<String>,
    /// Plain-text (`Value::String`) and JSON variables. A var that a secret of the
    /// same name overrides is removed from here (wrangler's dev does the same
    /// override), so `vars` and `secrets` never share a name.
    pub vars: BTreeMap<String, Value>,
    /// Secrets from `.dev.vars[.<env>]` and `HEARTH_SECRET_*` process variables.
    pub secrets: BTreeMap<String, String>,
    /// `secrets.required`: names the Worker declares it needs, when the file says.
    pub secrets_required: Option<Vec<String>>,
    pub kv_namespaces: Vec<KvNamespaceBinding>,
    pub d1_databases: Vec<D1DatabaseBinding>,
    pub r2_buckets: Vec<R2BucketBinding>,
    pub durable_objects: DurableObjects,
    pub migrations: Vec<DurableObjectMigration>,
    pub queues: Queues,
    pub workflows: Vec<WorkflowBinding>,
    pub triggers: Triggers,
    pub vectorize: Vec<VectorizeBinding>,
    pub ai: Option<AiBinding>,
    pub analytics_engine_datasets: Vec<AnalyticsEngineDatasetBinding>,
    /// From `ratelimits`, and from `unsafe.bindings` entries of `type = "ratelimit"`.
    pub ratelimits: Vec<RateLimitBinding>,
    pub services: Vec<ServiceBinding>,
    pub limits: WorkerLimits,
    /// `routes`, or the single `route`, normalised to a list.
    pub routes: Vec<Route>,
    pub assets: Option<Assets>,
    pub build: Build,
    pub dev: Dev,
    pub observability: Option<Observability>,
    pub workers_dev: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvNamespaceBinding {
    pub binding: String,
    pub id: Option<String>,
    pub preview_id: Option<String>,
}

impl KvNamespaceBinding {
    /// What identifies this namespace's storage on this machine: the `id`, or the
    /// binding name when the file gives none.
    pub fn local_id(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.binding)
    }
}

/// Default of `d1_databases[].migrations_dir`.
pub const DEFAULT_D1_MIGRATIONS_DIR: &str = "migrations";
/// Default of `d1_databases[].migrations_table`.
pub const DEFAULT_D1_MIGRATIONS_TABLE: &str = "d1_migrations";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct D1DatabaseBinding {
    pub binding: String,
    pub database_name: Option<String>,
    pub database_id: Option<String>,
    pub preview_database_id: Option<String>,
    /// Relative to the config's directory; see [`Config::d1_migrations_dir`].
    pub migrations_dir: String,
    pub migrations_table: String,
}

impl D1DatabaseBinding {
    /// What identifies this database's storage on this machine: `database_id`,
    /// else `database_name`, else the binding name.
    pub fn local_id(&self) -> &str {
        self.database_id
            .as_deref()
            .or(self.database_name.as_deref())
            .unwrap_or(&self.binding)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct R2BucketBinding {
    pub binding: String,
    pub bucket_name: Option<String>,
    pub preview_bucket_name: Option<String>,
    pub jurisdiction: Option<String>,
}

impl R2BucketBinding {
    /// The bucket's name, or the binding name when the file gives none.
    pub fn local_name(&self) -> &str {
        self.bucket_name.as_deref().unwrap_or(&self.binding)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DurableObjects {
    pub bindings: Vec<DurableObjectBinding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DurableObjectBinding {
    pub name: String,
    pub class_name: String,
    /// The Worker that exports the class, when it is not this one.
    pub script_name: Option<String>,
    pub environment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DurableObjectMigration {
    pub tag: String,
    pub new_classes: Vec<String>,
    pub new_sqlite_classes: Vec<String>,
    pub renamed_classes: Vec<RenamedClass>,
    pub deleted_classes: Vec<String>,
    pub transferred_classes: Vec<TransferredClass>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenamedClass {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferredClass {
    pub from: String,
    pub from_script: String,
    pub to: String,
}

/// Which storage backend a Durable Object class was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DurableObjectStorage {
    /// `new_classes`: the key-value storage API only.
    KeyValue,
    /// `new_sqlite_classes`: SQLite-backed, with the SQL API.
    Sqlite,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Queues {
    pub producers: Vec<QueueProducerBinding>,
    pub consumers: Vec<QueueConsumer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueProducerBinding {
    pub binding: String,
    pub queue: String,
    /// Seconds to delay every message sent through this binding.
    pub delivery_delay: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum QueueConsumerType {
    /// The Worker's `queue()` handler receives batches (push).
    Worker,
    /// Messages are pulled over HTTP.
    HttpPull,
}

impl QueueConsumerType {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueConsumerType::Worker => "worker",
            QueueConsumerType::HttpPull => "http_pull",
        }
    }
}

/// A consumer with Cloudflare's defaults filled in for unset fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueConsumer {
    pub queue: String,
    pub consumer_type: QueueConsumerType,
    /// Default 10.
    pub max_batch_size: u64,
    /// Seconds; default 5.
    pub max_batch_timeout: u64,
    /// Default 3.
    pub max_retries: u64,
    pub dead_letter_queue: Option<String>,
    /// `None`: scale automatically.
    pub max_concurrency: Option<u64>,
    /// Seconds before a retried message is delivered again.
    pub retry_delay: Option<u64>,
    /// For HTTP pull consumers.
    pub visibility_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowBinding {
    pub name: String,
    pub binding: String,
    pub class_name: String,
    pub script_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Triggers {
    pub crons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VectorizeBinding {
    pub binding: String,
    pub index_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AiBinding {
    pub binding: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnalyticsEngineDatasetBinding {
    pub binding: String,
    pub dataset: Option<String>,
}

impl AnalyticsEngineDatasetBinding {
    /// The dataset written to; Cloudflare uses the binding name when none is given.
    pub fn dataset_name(&self) -> &str {
        self.dataset.as_deref().unwrap_or(&self.binding)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimitBinding {
    pub name: String,
    pub namespace_id: String,
    pub simple: RateLimitSimple,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimitSimple {
    pub limit: u64,
    /// Seconds: 10 or 60.
    pub period: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceBinding {
    pub binding: String,
    pub service: String,
    pub entrypoint: Option<String>,
    pub environment: Option<String>,
}

/// The `limits` field (named so as not to clash with the checker's [`Limits`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct WorkerLimits {
    pub cpu_ms: Option<u64>,
    pub subrequests: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub pattern: String,
    pub zone_name: Option<String>,
    pub zone_id: Option<String>,
    pub custom_domain: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assets {
    /// Relative to the config's directory; see [`Config::assets_dir`].
    pub directory: String,
    pub binding: Option<String>,
    pub html_handling: HtmlHandling,
    pub not_found_handling: NotFoundHandling,
    pub run_worker_first: RunWorkerFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HtmlHandling {
    AutoTrailingSlash,
    ForceTrailingSlash,
    DropTrailingSlash,
    None,
}

impl HtmlHandling {
    pub const ALL: [HtmlHandling; 4] = [
        HtmlHandling::AutoTrailingSlash,
        HtmlHandling::ForceTrailingSlash,
        HtmlHandling::DropTrailingSlash,
        HtmlHandling::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HtmlHandling::AutoTrailingSlash => "auto-trailing-slash",
            HtmlHandling::ForceTrailingSlash => "force-trailing-slash",
            HtmlHandling::DropTrailingSlash => "drop-trailing-slash",
            HtmlHandling::None => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NotFoundHandling {
    SinglePageApplication,
    Page404,
    None,
}

impl NotFoundHandling {
    pub const ALL: [NotFoundHandling; 3] = [
        NotFoundHandling::SinglePageApplication,
        NotFoundHandling::Page404,
        NotFoundHandling::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotFoundHandling::SinglePageApplication => "single-page-application",
            NotFoundHandling::Page404 => "404-page",
            NotFoundHandling::None => "none",
        }
    }
}

/// Whether requests reach the Worker before static assets are tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RunWorkerFirst {
    All(bool),
    /// Route patterns (a leading `!` excludes).
    Patterns(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Build {
    pub command: Option<String>,
    pub cwd: Option<String>,
    pub watch_dir: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Dev {
    pub ip: Option<String>,
    pub port: Option<u16>,
    /// `"http"` or `"https"`.
    pub local_protocol: Option<String>,
    pub upstream_protocol: Option<String>,
    pub host: Option<String>,
    pub inspector_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observability {
    pub enabled: Option<bool>,
    /// 0.0 ..= 1.0.
    pub head_sampling_rate: Option<f64>,
    /// Kept as written; Hearth reads no setting from it yet.
    pub logs: Option<Value>,
    pub traces: Option<Value>,
}

impl Config {
    /// Every `env` binding the config declares, as (config section, name):
    /// what the server must serve or warn about. Triggers and consumers
    /// add no `env` entry and are not listed.
    pub fn declared_bindings(&self) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = Vec::new();
        let mut add = |section: &'static str, names: &mut dyn Iterator<Item = &String>| {
            out.extend(names.map(|n| (section, n.clone())));
        };
        add(
            "kv_namespaces",
            &mut self.kv_namespaces.iter().map(|b| &b.binding),
        );
        add(
            "d1_databases",
            &mut self.d1_databases.iter().map(|b| &b.binding),
        );
        add(
            "r2_buckets",
            &mut self.r2_buckets.iter().map(|b| &b.binding),
        );
        add(
            "durable_objects",
            &mut self.durable_objects.bindings.iter().map(|b| &b.name),
        );
        add(
            "queues",
            &mut self.queues.producers.iter().map(|b| &b.binding),
        );
        add("workflows", &mut self.workflows.iter().map(|b| &b.binding));
        add("vectorize", &mut self.vectorize.iter().map(|b| &b.binding));
        add("ai", &mut self.ai.iter().map(|b| &b.binding));
        add(
            "analytics_engine_datasets",
            &mut self.analytics_engine_datasets.iter().map(|b| &b.binding),
        );
        add("ratelimits", &mut self.ratelimits.iter().map(|b| &b.name));
        add("services", &mut self.services.iter().map(|b| &b.binding));
        add(
            "assets",
            &mut self.assets.iter().filter_map(|a| a.binding.as_ref()),
        );
        out
    }

    /// The directory holding the config file; relative paths in it resolve here.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("."))
    }

    /// `main`, resolved against [`Config::dir`].
    pub fn main_path(&self) -> Option<PathBuf> {
        self.main.as_ref().map(|m| self.dir().join(m))
    }

    /// The directory every module the worker imports must lie under:
    /// `base_dir` resolved against [`Config::dir`], else [`Config::dir`].
    pub fn module_root(&self) -> PathBuf {
        match &self.base_dir {
            Some(b) => self.dir().join(b),
            None => self.dir().to_path_buf(),
        }
    }

    /// The directory of a D1 database's migration files, resolved against [`Config::dir`].
    pub fn d1_migrations_dir(&self, db: &D1DatabaseBinding) -> PathBuf {
        self.dir().join(&db.migrations_dir)
    }

    /// `assets.directory`, resolved against [`Config::dir`].
    pub fn assets_dir(&self) -> Option<PathBuf> {
        self.assets.as_ref().map(|a| self.dir().join(&a.directory))
    }

    /// A D1 binding by binding name, else by `database_name`.
    pub fn d1_database(&self, name_or_binding: &str) -> Option<&D1DatabaseBinding> {
        self.d1_databases
            .iter()
            .find(|d| d.binding == name_or_binding)
            .or_else(|| {
                self.d1_databases
                    .iter()
                    .find(|d| d.database_name.as_deref() == Some(name_or_binding))
            })
    }

    pub fn kv_namespace(&self, binding: &str) -> Option<&KvNamespaceBinding> {
        self.kv_namespaces.iter().find(|k| k.binding == binding)
    }

    /// An R2 binding by binding name, else by `bucket_name`.
    pub fn r2_bucket(&self, binding_or_name: &str) -> Option<&R2BucketBinding> {
        self.r2_buckets
            .iter()
            .find(|r| r.binding == binding_or_name)
            .or_else(|| {
                self.r2_buckets
                    .iter()
                    .find(|r| r.bucket_name.as_deref() == Some(binding_or_name))
            })
    }

    pub fn durable_object(&self, binding: &str) -> Option<&DurableObjectBinding> {
        self.durable_objects
            .bindings
            .iter()
            .find(|d| d.name == binding)
    }

    pub fn queue_producer(&self, binding: &str) -> Option<&QueueProducerBinding> {
        self.queues.producers.iter().find(|p| p.binding == binding)
    }

    /// The consumer of a queue, by queue name.
    pub fn queue_consumer(&self, queue: &str) -> Option<&QueueConsumer> {
        self.queues.consumers.iter().find(|c| c.queue == queue)
    }

    /// A workflow by binding name, else by workflow name.
    pub fn workflow(&self, binding_or_name: &str) -> Option<&WorkflowBinding> {
        self.workflows
            .iter()
            .find(|w| w.binding == binding_or_name)
            .or_else(|| self.workflows.iter().find(|w| w.name == binding_or_name))
    }

    pub fn service(&self, binding: &str) -> Option<&ServiceBinding> {
        self.services.iter().find(|s| s.binding == binding)
    }

    pub fn ratelimit(&self, name: &str) -> Option<&RateLimitBinding> {
        self.ratelimits.iter().find(|r| r.name == name)
    }

    pub fn vectorize_index(&self, binding: &str) -> Option<&VectorizeBinding> {
        self.vectorize.iter().find(|v| v.binding == binding)
    }

    /// The Durable Object classes this Worker defines after applying `migrations`
    /// in order, each with the storage it was created with.
    pub fn durable_object_classes(&self) -> BTreeMap<String, DurableObjectStorage> {
        let mut classes = BTreeMap::new();
        for m in &self.migrations {
            for c in &m.new_classes {
                classes.insert(c.clone(), DurableObjectStorage::KeyValue);
            }
            for c in &m.new_sqlite_classes {
                classes.insert(c.clone(), DurableObjectStorage::Sqlite);
            }
            for r in &m.renamed_classes {
                if let Some(storage) = classes.remove(&r.from) {
                    classes.insert(r.to.clone(), storage);
                }
            }
            for t in &m.transferred_classes {
                // The source Worker's storage type is not visible from this file;
                // assume SQLite, the backend Cloudflare recommends for new classes.
                classes
                    .entry(t.to.clone())
                    .or_insert(DurableObjectStorage::Sqlite);
            }
            for c in &m.deleted_classes {
                classes.remove(c);
            }
        }
        classes
    }
}
