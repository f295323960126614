//! From a parsed document to a [`Config`]: environment selection and
//! inheritance, field-by-field validation, and the cross-field rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::ConfigError;
use crate::parse::{parse_document, read_limited};
use crate::reader::{
    Diag, Syntax, Table, as_bool, as_object, as_str, as_str_list, as_uint, check_range, child,
    item, tables_of,
};
use crate::validate::{
    self, DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_BATCH_TIMEOUT_SECS, DEFAULT_MAX_RETRIES, Limits,
    RATELIMIT_PERIODS,
};
use crate::{
    AiBinding, AnalyticsEngineDatasetBinding, Assets, Build, CONFIG_FILE_NAMES, Config,
    D1DatabaseBinding, DEFAULT_D1_MIGRATIONS_DIR, DEFAULT_D1_MIGRATIONS_TABLE,
    DEPLOY_REDIRECT_FILE, Dev, DurableObjectBinding, DurableObjectMigration, DurableObjects,
    HtmlHandling, KvNamespaceBinding, LoadOptions, Loaded, NotFoundHandling, Observability,
    QueueConsumer, QueueConsumerType, QueueProducerBinding, Queues, R2BucketBinding,
    RateLimitBinding, RateLimitSimple, RenamedClass, Route, RunWorkerFirst, ServiceBinding,
    TransferredClass, Triggers, VectorizeBinding, WorkerLimits, WorkflowBinding, dev_vars,
    find_config_file,
};

/// Inheritable keys wrangler knows that Hearth reads no meaning from.
const IGNORED_INHERITABLE: &[&str] = &[
    "account_id",
    "find_additional_modules",
    "preserve_file_names",
    "preview_urls",
    "tsconfig",
    "jsx_factory",
    "jsx_fragment",
    "rules",
    "no_bundle",
    "minify",
    "keep_names",
    "first_party_worker",
    "logfwdr",
    "logpush",
    "upload_source_maps",
    "placement",
    "access",
    "cache",
    "compliance_region",
    "python_modules",
    "previews",
    "exports",
    "usage_model",
    "node_compat",
    "zone_id",
];

/// Top-level-only keys wrangler knows that Hearth reads no meaning from.
const IGNORED_TOP_ONLY: &[&str] = &[
    "$schema",
    "site",
    "wasm_modules",
    "text_blobs",
    "data_blobs",
    "alias",
    "keep_vars",
    "send_metrics",
    "legacy_env",
    "addresses",
    "pages_build_output_dir",
    "dependencies_instrumentation",
    // Written by build tools (Cloudflare's Vite plugin) into the config they
    // generate: where it came from and which environment it was built for.
    "configPath",
    "userConfigPath",
    "topLevelName",
    "definedEnvironments",
    "targetEnvironment",
];

/// Build-time substitutions; nothing to bind at run time.
const IGNORED_OWN: &[&str] = &["define"];

/// Bindings Cloudflare offers that Hearth does not provide yet: a Worker relying
/// on one would find it missing, so their presence is a warning.
const UNSUPPORTED_BINDINGS: &[&str] = &[
    "cloudchamber",
    "containers",
    "send_email",
    "connect",
    "ai_search_namespaces",
    "ai_search",
    "agent_memory",
    "websearch",
    "hyperdrive",
    "dispatch_namespaces",
    "mtls_certificates",
    "tail_consumers",
    "streaming_tail_consumers",
    "browser",
    "images",
    "media",
    "stream",
    "pipelines",
    "secrets_store_secrets",
    "artifacts",
    "unsafe_hello_world",
    "flagship",
    "worker_loaders",
    "vpc_services",
    "vpc_networks",
    "version_metadata",
];

/// Keys every binding entry may carry for remote development; meaningless here.
const IGNORED_BINDING_KEYS: &[&str] = &["remote", "experimental_remote"];

pub(crate) fn load(path: &Path, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    if path.is_dir() {
        let redirect = path.join(DEPLOY_REDIRECT_FILE);
        if redirect.is_file() {
            let redirect = std::path::absolute(&redirect).unwrap_or(redirect);
            let target = redirect_target(&redirect, opts)?;
            let mut loaded = load_file(&target, opts, Vec::new())?;
            loaded.redirected_from = Some(redirect);
            return Ok(loaded);
        }
    }
    let mut early_warnings = Vec::new();
    let file_path = if path.is_dir() {
        match find_config_file(path) {
            Some(found) => {
                // Say which file won, so an edit to the ignored one is not a mystery.
                for other in CONFIG_FILE_NAMES.iter().map(|n| path.join(n)) {
                    if other != found && other.is_file() {
                        early_warnings.push(format!(
                            "{}: ignored, {} takes precedence",
                            file_name(&other),
                            file_name(&found)
                        ));
                    }
                }
                found
            }
            None => {
                return Err(ConfigError::single(
                    path.display().to_string(),
                    "",
                    format!(
                        "no {}, {} or {} in this directory",
                        CONFIG_FILE_NAMES[0], CONFIG_FILE_NAMES[1], CONFIG_FILE_NAMES[2]
                    ),
                ));
            }
        }
    } else {
        path.to_path_buf()
    };
    load_file(&file_path, opts, early_warnings)
}

/// The config a [`DEPLOY_REDIRECT_FILE`] points to, resolved against the
/// directory holding the redirect file.
fn redirect_target(redirect: &Path, opts: &LoadOptions) -> Result<PathBuf, ConfigError> {
    let shown = redirect.display().to_string();
    let text = read_limited(redirect, &shown, opts.limits.max_file_bytes)?;
    let doc = parse_document(&text, Syntax::Json, &shown)?;
    let Some(relative) = doc.get("configPath") else {
        return Err(ConfigError::single(
            shown,
            "configPath",
            "missing; a deploy redirect must name the config to load, e.g. {\"configPath\": \"../../dist/wrangler.json\"}",
        ));
    };
    let Value::String(relative) = relative else {
        return Err(ConfigError::single(
            shown,
            "configPath",
            format!("expected a string, found {relative}"),
        ));
    };
    let base = redirect.parent().unwrap_or_else(|| Path::new("."));
    let target = base.join(relative);
    if !target.is_file() {
        return Err(ConfigError::single(
            shown,
            "configPath",
            format!(
                "points to {}, which does not exist; run the build that writes it again, or delete {DEPLOY_REDIRECT_FILE} to use the config beside it",
                target.display()
            ),
        ));
    }
    // Without the `../..` of the pointer, so messages name the file plainly.
    Ok(std::fs::canonicalize(&target).unwrap_or(target))
}

fn load_file(
    file_path: &Path,
    opts: &LoadOptions,
    early_warnings: Vec<String>,
) -> Result<Loaded, ConfigError> {
    let abs = std::path::absolute(file_path).unwrap_or_else(|_| file_path.to_path_buf());
    let file = file_name(&abs);

    let syntax = match abs.extension().and_then(|e| e.to_str()) {
        Some("toml") => Syntax::Toml,
        Some("json") | Some("jsonc") => Syntax::Json,
        _ => {
            return Err(ConfigError::single(
                file,
                "",
                "unsupported config file type; expected a .toml, .json or .jsonc file",
            ));
        }
    };
    let with_warnings = |mut e: ConfigError| {
        e.warnings.splice(0..0, early_warnings.iter().cloned());
        e
    };
    let text = read_limited(&abs, &file, opts.limits.max_file_bytes).map_err(with_warnings)?;
    let doc = parse_document(&text, syntax, &file).map_err(with_warnings)?;

    let mut d = Diag::new(file, syntax);
    d.warnings = early_warnings.clone();
    let (mut config, binding_names) = build_config(&mut d, &doc, opts, abs.clone());

    dev_vars::apply_secrets(&mut d, &mut config, opts, &binding_names);

    if d.errors.is_empty() {
        Ok(Loaded {
            config,
            warnings: d.warnings,
            path: abs,
            redirected_from: None,
        })
    } else {
        Err(ConfigError {
            errors: d.errors,
            warnings: d.warnings,
        })
    }
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Names bound on `env`, each with the path that declared it.
pub(crate) type BindingNames = Vec<(String, String)>;

fn build_config(
    d: &mut Diag,
    doc: &Map<String, Value>,
    opts: &LoadOptions,
    path: PathBuf,
) -> (Config, BindingNames) {
    // Environments: a table of tables.
    let mut envs: Vec<(String, &Map<String, Value>)> = Vec::new();
    if let Some(v) = doc.get("env")
        && let Some(map) = as_object(d, "env", v)
    {
        for (name, v) in map {
            if let Some(t) = as_object(d, &child("env", name), v) {
                envs.push((name.clone(), t));
            }
        }
    }
    // Sorted: TOML tables do not keep file order, and both syntaxes should agree.
    let mut defined: Vec<String> = envs.iter().map(|(n, _)| n.clone()).collect();
    defined.sort();

    // The top level is always validated, as wrangler does, even when an
    // environment is selected; problems found twice are reported once.
    let selected_exists = opts.env.is_some_and(|e| envs.iter().any(|(n, _)| n == e));
    let top_only = build_scope(d, doc, None, opts, !selected_exists);
    let (mut config, names, selected) = match opts.env {
        None => (top_only.0, top_only.1, None),
        Some(env) => match envs.iter().find(|(n, _)| n == env) {
            Some((_, env_map)) => {
                let (c, n) = build_scope(d, doc, Some((env, env_map)), opts, true);
                (c, n, Some(env.to_string()))
            }
            None if envs.is_empty() => {
                d.warn(
                    &child("env", env),
                    "no such environment, and the file defines none; using the top-level configuration",
                );
                (top_only.0, top_only.1, None)
            }
            None => {
                d.error(
                    &child("env", env),
                    format!(
                        "no such environment; defined environments: {}",
                        defined.join(", ")
                    ),
                );
                (top_only.0, top_only.1, None)
            }
        },
    };
    config.path = path;
    config.env = selected;
    config.defined_environments = defined;
    (config, names)
}

/// The keys of one effective environment: the top level alone, or an
/// `[env.NAME]` section over it.
struct Scope<'a> {
    top: Table<'a>,
    env: Option<(String, Table<'a>)>,
}

impl<'a> Scope<'a> {
    /// A key the environment inherits from the top level unless it sets its own.
    fn inherit(&mut self, key: &str) -> Option<(String, &'a Value)> {
        if let Some((_, env)) = &mut self.env
            && env.has(key)
        {
            self.top.mark(key);
            return env.get(key);
        }
        self.top.get(key)
    }

    /// A key the environment never inherits.
    fn own(&mut self, d: &mut Diag, key: &str) -> Option<(String, &'a Value)> {
        match &mut self.env {
            Some((name, env)) => {
                self.top.mark(key);
                if env.has(key) {
                    return env.get(key);
                }
                if self.top.has(key) && !is_empty(self.top.map.get(key)) {
                    d.warn(
                        &child("env", name),
                        format!(
                            "\"{key}\" is set at the top level but not in this environment; it is not inherited, so this environment has none"
                        ),
                    );
                }
                None
            }
            None => self.top.get(key),
        }
    }

    /// A key only the top level may set.
    fn top_only(&mut self, d: &mut Diag, key: &str) -> Option<(String, &'a Value)> {
        if let Some((_, env)) = &mut self.env
            && env.has(key)
        {
            env.mark(key);
            d.warn(&env.path_of(key), "only allowed at the top level; ignored");
        }
        self.top.get(key)
    }

    fn ignore(&mut self, keys: &[&str]) {
        self.top.ignore(keys);
        if let Some((_, env)) = &mut self.env {
            env.ignore(keys);
        }
    }

    fn finish(self, d: &mut Diag) {
        match self.env {
            Some((_, env)) => env.finish(d),
            None => self.top.finish(d),
        }
    }
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    }
}

/// Binding names seen so far, for the identifier and uniqueness rules.
struct Names {
    seen: BindingNames,
}

impl Names {
    fn add(&mut self, d: &mut Diag, path: &str, name: &str) {
        if !validate::is_js_identifier(name) {
            d.error(
                path,
                format!(
                    "expected a JavaScript identifier (letters, digits, \"_\" and \"$\", not starting with a digit), found {}",
                    Value::String(name.to_string())
                ),
            );
        }
        if let Some((_, first)) = self.seen.iter().find(|(n, _)| n == name) {
            d.error(
                path,
                format!("binding name \"{name}\" is already used by {first}"),
            );
            return;
        }
        self.seen.push((name.to_string(), path.to_string()));
    }
}

fn build_scope(
    d: &mut Diag,
    doc: &Map<String, Value>,
    env: Option<(&str, &Map<String, Value>)>,
    opts: &LoadOptions,
    // Whether this scope is the one loaded (not just the top level checked
    // beneath a selected environment); whole-config rules apply only then.
    effective: bool,
) -> (Config, BindingNames) {
    let limits = &opts.limits;
    let mut s = Scope {
        top: Table::new(doc, ""),
        env: env.map(|(n, m)| (n.to_string(), Table::new(m, child("env", n)))),
    };
    let mut names = Names { seen: Vec::new() };

    s.top.mark("env");
    s.top_only(d, "env");
    s.ignore(IGNORED_INHERITABLE);
    s.ignore(IGNORED_TOP_ONLY);
    s.ignore(IGNORED_OWN);

    let name = scope_name(d, &mut s, env.map(|(n, _)| n), effective);
    let main = s.inherit("main").and_then(|(p, v)| as_str(d, &p, v));
    let base_dir = s.inherit("base_dir").and_then(|(p, v)| as_str(d, &p, v));
    let compatibility_date = scope_compatibility_date(d, &mut s, effective);
    let compatibility_flags = s
        .inherit("compatibility_flags")
        .and_then(|(p, v)| as_str_list(d, &p, v))
        .unwrap_or_default();
    let workers_dev = s
        .inherit("workers_dev")
        .and_then(|(p, v)| as_bool(d, &p, v));

    let vars = s
        .own(d, "vars")
        .map(|(p, v)| read_vars(d, &mut names, &p, v))
        .unwrap_or_default();
    let secrets_required = s
        .own(d, "secrets")
        .and_then(|(p, v)| read_secrets(d, &p, v));
    if let Some(required) = &secrets_required {
        for (i, n) in required.iter().enumerate() {
            names.add(d, &item("secrets.required", i), n);
        }
    }

    let (bindings, do_class_paths) = read_bindings(d, &mut s, &mut names, limits);
    let worker_limits = s
        .inherit("limits")
        .map(|(p, v)| read_limits(d, &p, v, limits))
        .unwrap_or_default();
    let routes = read_routes(d, &mut s);
    let assets = s
        .inherit("assets")
        .and_then(|(p, v)| read_assets(d, &mut names, &p, v));
    let build = s
        .inherit("build")
        .map(|(p, v)| read_build(d, &p, v))
        .unwrap_or_default();
    let dev = s
        .top_only(d, "dev")
        .map(|(p, v)| read_dev(d, &p, v))
        .unwrap_or_default();
    let observability = s
        .inherit("observability")
        .and_then(|(p, v)| read_observability(d, &p, v));

    s.finish(d);

    let config = Config {
        path: PathBuf::new(),
        env: None,
        defined_environments: Vec::new(),
        name,
        main,
        base_dir,
        compatibility_date,
        compatibility_flags,
        vars,
        secrets: BTreeMap::new(),
        secrets_required,
        kv_namespaces: bindings.kv_namespaces,
        d1_databases: bindings.d1_databases,
        r2_buckets: bindings.r2_buckets,
        durable_objects: bindings.durable_objects,
        migrations: bindings.migrations,
        queues: bindings.queues,
        workflows: bindings.workflows,
        triggers: bindings.triggers,
        vectorize: bindings.vectorize,
        ai: bindings.ai,
        analytics_engine_datasets: bindings.analytics_engine_datasets,
        ratelimits: bindings.ratelimits,
        services: bindings.services,
        limits: worker_limits,
        routes,
        assets,
        build,
        dev,
        observability,
        workers_dev,
    };
    check_durable_object_classes(d, &config, &do_class_paths);
    (config, names.seen)
}

/// The worker's name: the environment's own, else `<top-level name>-<env>`.
fn scope_name(d: &mut Diag, s: &mut Scope, env_name: Option<&str>, effective: bool) -> String {
    match (s.inherit("name"), &s.env) {
        (Some((p, v)), scope_env) => {
            let from_env = scope_env.as_ref().is_some_and(|(_, t)| t.has("name"));
            match as_str(d, &p, v) {
                Some(n) if !validate::is_valid_worker_name(&n) => {
                    d.error(
                        &p,
                        format!(
                            "expected lowercase letters, digits, \"-\" and \"_\", found {}",
                            Value::String(n.clone())
                        ),
                    );
                    n
                }
                Some(n) => match env_name {
                    Some(e) if !from_env => format!("{n}-{e}"),
                    _ => n,
                },
                None => String::new(),
            }
        }
        (None, _) => {
            if effective {
                d.error("name", "missing");
            }
            String::new()
        }
    }
}

fn scope_compatibility_date(d: &mut Diag, s: &mut Scope, effective: bool) -> Option<String> {
    match s.inherit("compatibility_date") {
        Some((p, v)) => as_str(d, &p, v).filter(|date| {
            let ok = validate::is_valid_date(date);
            if !ok {
                d.error(
                    &p,
                    format!(
                        "expected a date like \"2024-09-23\", found {}",
                        Value::String(date.clone())
                    ),
                );
            }
            ok
        }),
        None if !effective => None,
        None => {
            d.warn(
                "compatibility_date",
                "not set; Cloudflare requires one to deploy",
            );
            None
        }
    }
}

/// Every binding list of one scope, read in wrangler's order.
struct ScopeBindings {
    kv_namespaces: Vec<KvNamespaceBinding>,
    d1_databases: Vec<D1DatabaseBinding>,
    r2_buckets: Vec<R2BucketBinding>,
    durable_objects: DurableObjects,
    migrations: Vec<DurableObjectMigration>,
    queues: Queues,
    workflows: Vec<WorkflowBinding>,
    triggers: Triggers,
    vectorize: Vec<VectorizeBinding>,
    ai: Option<AiBinding>,
    analytics_engine_datasets: Vec<AnalyticsEngineDatasetBinding>,
    ratelimits: Vec<RateLimitBinding>,
    services: Vec<ServiceBinding>,
}

fn read_bindings(
    d: &mut Diag,
    s: &mut Scope,
    names: &mut Names,
    limits: &Limits,
) -> (ScopeBindings, Vec<String>) {
    let kv_namespaces = s
        .own(d, "kv_namespaces")
        .map(|(p, v)| read_kv(d, names, &p, v))
        .unwrap_or_default();
    let d1_databases = s
        .own(d, "d1_databases")
        .map(|(p, v)| read_d1(d, names, &p, v))
        .unwrap_or_default();
    let r2_buckets = s
        .own(d, "r2_buckets")
        .map(|(p, v)| read_r2(d, names, &p, v))
        .unwrap_or_default();
    let (durable_objects, do_class_paths) = s
        .own(d, "durable_objects")
        .map(|(p, v)| read_durable_objects(d, names, &p, v))
        .unwrap_or_default();
    let migrations = s
        .inherit("migrations")
        .map(|(p, v)| read_migrations(d, &p, v))
        .unwrap_or_default();
    let queues = s
        .own(d, "queues")
        .map(|(p, v)| read_queues(d, names, &p, v, limits))
        .unwrap_or_default();
    let workflows = s
        .own(d, "workflows")
        .map(|(p, v)| read_workflows(d, names, &p, v))
        .unwrap_or_default();
    let triggers = s
        .inherit("triggers")
        .map(|(p, v)| read_triggers(d, &p, v))
        .unwrap_or_default();
    let vectorize = s
        .own(d, "vectorize")
        .map(|(p, v)| read_vectorize(d, names, &p, v))
        .unwrap_or_default();
    let ai = s.own(d, "ai").and_then(|(p, v)| read_ai(d, names, &p, v));
    let analytics_engine_datasets = s
        .own(d, "analytics_engine_datasets")
        .map(|(p, v)| read_analytics(d, names, &p, v))
        .unwrap_or_default();
    let mut ratelimits: Vec<RateLimitBinding> = s
        .own(d, "ratelimits")
        .map(|(p, v)| {
            tables_of(d, &p, v)
                .into_iter()
                .filter_map(|t| read_ratelimit(d, names, t, false))
                .collect()
        })
        .unwrap_or_default();
    if let Some((p, v)) = s.own(d, "unsafe") {
        ratelimits.extend(read_unsafe(d, names, &p, v));
    }
    let services = s
        .own(d, "services")
        .map(|(p, v)| read_services(d, names, &p, v))
        .unwrap_or_default();
    for key in UNSUPPORTED_BINDINGS {
        if let Some((p, v)) = s.own(d, key)
            && !is_empty(Some(v))
        {
            d.warn(&p, "not supported by Hearth yet; ignored");
        }
    }

    let bindings = ScopeBindings {
        kv_namespaces,
        d1_databases,
        r2_buckets,
        durable_objects,
        migrations,
        queues,
        workflows,
        triggers,
        vectorize,
        ai,
        analytics_engine_datasets,
        ratelimits,
        services,
    };
    (bindings, do_class_paths)
}

fn read_vars(d: &mut Diag, names: &mut Names, path: &str, v: &Value) -> BTreeMap<String, Value> {
    let Some(map) = as_object(d, path, v) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        names.add(d, &child(path, k), k);
        out.insert(k.clone(), v.clone());
    }
    out
}

fn read_secrets(d: &mut Diag, path: &str, v: &Value) -> Option<Vec<String>> {
    let mut t = Table::from_value(d, path, v)?;
    let required = t.opt_str_list(d, "required");
    t.finish(d);
    Some(required)
}

fn read_kv(d: &mut Diag, names: &mut Names, path: &str, v: &Value) -> Vec<KvNamespaceBinding> {
    let mut out = Vec::new();
    for mut t in tables_of(d, path, v) {
        t.ignore(IGNORED_BINDING_KEYS);
        let binding = bound_name(d, names, &mut t, "binding");
        let id = t.opt_name(d, "id");
        let preview_id = t.opt_name(d, "preview_id");
        t.finish(d);
        if let Some(binding) = binding {
            out.push(KvNamespaceBinding {
                binding,
                id,
                preview_id,
            });
        }
    }
    out
}

/// A required binding-name field, registered for the uniqueness rule.
fn bound_name(d: &mut Diag, names: &mut Names, t: &mut Table, key: &str) -> Option<String> {
    let n = t.req_name(d, key)?;
    names.add(d, &t.path_of(key), &n);
    Some(n)
}

fn read_d1(d: &mut Diag, names: &mut Names, path: &str, v: &Value) -> Vec<D1DatabaseBinding> {
    let mut out = Vec::new();
    for mut t in tables_of(d, path, v) {
        t.ignore(IGNORED_BINDING_KEYS);
        t.ignore(&["migrations_pattern", "database_internal_env"]);
        let binding = bound_name(d, names, &mut t, "binding");
        let database_name = t.opt_name(d, "database_name");
        let database_id = t.opt_name(d, "database_id");
        let preview_database_id = t.opt_name(d, "preview_database_id");
        let migrations_dir = t
            .opt_name(d, "migrations_dir")
            .unwrap_or_else(|| DEFAULT_D1_MIGRATIONS_DIR.to_string());
        let migrations_table = t
            .opt_name(d, "migrations_table")
            .unwrap_or_else(|| DEFAULT_D1_MIGRATIONS_TABLE.to_string());
        t.finish(d);
        if let Some(binding) = binding {
            out.push(D1DatabaseBinding {
                binding,
                database_name,
                database_id,
                preview_database_id,
                migrations_dir,
                migrations_table,
            });
        }
    }
    out
}

fn read_r2(d: &mut Diag, names: &mut Names, path: &str, v: &Value) -> Vec<R2BucketBinding> {
    let mut out = Vec::new();
    for mut t in tables_of(d, path, v) {
        t.ignore(IGNORED_BINDING_KEYS);
        t.ignore(&["local_dev"]);
        let binding = bound_name(d, names, &mut t, "binding");
        let bucket_name = t.opt_name(d, "bucket_name");
        let preview_bucket_name = t.opt_name(d, "preview_bucket_name");
        let jurisdiction = t.opt_name(d, "jurisdiction");
        t.finish(d);
        if let Some(binding) = binding {
            out.push(R2BucketBinding {
                binding,
                bucket_name,
                preview_bucket_name,
                jurisdiction,
            });
        }
    }
    out
}

fn read_durable_objects(
    d: &mut Diag,
    names: &mut Names,
    path: &str,
    v: &Value,
) -> (DurableObjects, Vec<String>) {
    let mut out = DurableObjects::default();
    let mut class_paths = Vec::new();
    let Some(mut t) = Table::from_value(d, path, v) else {
        return (out, class_paths);
    };
    for mut b in t.opt_tables(d, "bindings") {
        let name = bound_name(d, names, &mut b, "name");
        let class_name = b.req_name(d, "class_name");
        let script_name = b.opt_name(d, "script_name");
        let environment = b.opt_name(d, "environment");
        let class_path = b.path_of("class_name");
        b.finish(d);
        if let (Some(name), Some(class_name)) = (name, class_name) {
            out.bindings.push(DurableObjectBinding {
                name,
                class_name,
                script_name,
                environment,
            });
            class_paths.push(class_path);
        }
    }
    t.finish(d);
    (out, class_paths)
}

fn read_migrations(d: &mut Diag, path: &str, v: &Value) -> Vec<DurableObjectMigration> {
    let mut out: Vec<DurableObjectMigration> = Vec::new();
    let mut tag_paths: Vec<(String, String)> = Vec::new();
    for mut t in tables_of(d, path, v) {
        let tag = t.req_name(d, "tag");
        let new_classes = t.opt_str_list(d, "new_classes");
        let new_sqlite_classes = t.opt_str_list(d, "new_sqlite_classes");
        let deleted_classes = t.opt_str_list(d, "deleted_classes");
        let renamed_classes = t
            .opt_tables(d, "renamed_classes")
            .into_iter()
            .filter_map(|mut r| {
                let from = r.req_name(d, "from");
                let to = r.req_name(d, "to");
                r.finish(d);
                Some(RenamedClass {
                    from: from?,
                    to: to?,
                })
            })
            .collect();
        let transferred_classes = t
            .opt_tables(d, "transferred_classes")
            .into_iter()
            .filter_map(|mut r| {
                let from = r.req_name(d, "from");
                let from_script = r.req_name(d, "from_script");
                let to = r.req_name(d, "to");
                r.finish(d);
                Some(TransferredClass {
                    from: from?,
                    from_script: from_script?,
                    to: to?,
                })
            })
            .collect();
        let tag_path = t.path_of("tag");
        t.finish(d);
        let Some(tag) = tag else { continue };
        if let Some((_, first)) = tag_paths.iter().find(|(existing, _)| *existing == tag) {
            d.error(
                &tag_path,
                format!("tag \"{tag}\" is already used by {first}"),
            );
            continue;
        }
        tag_paths.push((tag.clone(), tag_path));
        out.push(DurableObjectMigration {
            tag,
            new_classes,
            new_sqlite_classes,
            renamed_classes,
            deleted_classes,
            transferred_classes,
        });
    }
    out
}

/// A Durable Object class this Worker exports must have been created by a migration;
/// Cloudflare refuses the deploy otherwise. Locally it still runs, so warn.
fn check_durable_object_classes(d: &mut Diag, config: &Config, class_paths: &[String]) {
    let classes = config.durable_object_classes();
    for (b, path) in config.durable_objects.bindings.iter().zip(class_paths) {
        let local = match &b.script_name {
            None => true,
            Some(script) => *script == config.name,
        };
        if local && !classes.contains_key(&b.class_name) {
            d.warn(
                path,
                format!(
                    "class \"{}\" is not created by any entry in \"migrations\"; add it to \"new_sqlite_classes\" of a migration",
                    b.class_name
                ),
            );
        }
    }
}

fn read_queues(d: &mut Diag, names: &mut Names, path: &str, v: &Value, limits: &Limits) -> Queues {
    let mut out = Queues::default();
    let Some(mut t) = Table::from_value(d, path, v) else {
        return out;
    };
    for mut p in t.opt_tables(d, "producers") {
        p.ignore(IGNORED_BINDING_KEYS);
        let binding = bound_name(d, names, &mut p, "binding");
        let queue = p.req_name(d, "queue");
        let delivery_delay = p.opt_uint_in(d, "delivery_delay", 0, limits.max_delay_secs);
        p.finish(d);
        if let (Some(binding), Some(queue)) = (binding, queue) {
            out.producers.push(QueueProducerBinding {
                binding,
                queue,
                delivery_delay,
            });
        }
    }
    let mut consumer_paths: Vec<(String, String)> = Vec::new();
    for mut c in t.opt_tables(d, "consumers") {
        let queue = c.req_name(d, "queue");
        let consumer_type = match c.get("type") {
            None => QueueConsumerType::Worker,
            Some((p, v)) => match as_str(d, &p, v).as_deref() {
                Some("worker") | None => QueueConsumerType::Worker,
                Some("http_pull") => QueueConsumerType::HttpPull,
                Some(other) => {
                    d.error(
                        &p,
                        format!(
                            "expected one of \"worker\", \"http_pull\", found {}",
                            Value::String(other.to_string())
                        ),
                    );
                    QueueConsumerType::Worker
                }
            },
        };
        let max_batch_size = c
            .opt_uint_in(d, "max_batch_size", 1, limits.max_batch_size)
            .unwrap_or(u64::from(DEFAULT_MAX_BATCH_SIZE));
        let max_batch_timeout = c
            .opt_uint_in(d, "max_batch_timeout", 0, limits.max_batch_timeout_secs)
            .unwrap_or(u64::from(DEFAULT_MAX_BATCH_TIMEOUT_SECS));
        let max_retries = c
            .opt_uint_in(d, "max_retries", 0, limits.max_retries)
            .unwrap_or(u64::from(DEFAULT_MAX_RETRIES));
        let dead_letter_queue = c.opt_name(d, "dead_letter_queue");
        let max_concurrency = c.opt_uint_in(d, "max_concurrency", 1, limits.max_concurrency);
        let retry_delay = c.opt_uint_in(d, "retry_delay", 0, limits.max_delay_secs);
        let visibility_timeout_ms = c.opt_uint_in(
            d,
            "visibility_timeout_ms",
            0,
            limits.max_visibility_timeout_ms,
        );
        let queue_path = c.path_of("queue");
        let dlq_path = c.path_of("dead_letter_queue");
        c.finish(d);
        let Some(queue) = queue else { continue };
        if dead_letter_queue.as_deref() == Some(queue.as_str()) {
            d.error(&dlq_path, "must not be the queue it consumes");
        }
        if let Some((_, first)) = consumer_paths.iter().find(|(q, _)| *q == queue) {
            d.error(
                &queue_path,
                format!("queue \"{queue}\" already has a consumer at {first}"),
            );
            continue;
        }
        consumer_paths.push((queue.clone(), queue_path));
        out.consumers.push(QueueConsumer {
            queue,
            consumer_type,
            max_batch_size,
            max_batch_timeout,
            max_retries,
            dead_letter_queue,
            max_concurrency,
            retry_delay,
            visibility_timeout_ms,
        });
    }
    t.finish(d);
    out
}

fn read_workflows(d: &mut Diag, names: &mut Names, path: &str, v: &Value) -> Vec<WorkflowBinding> {
    let mut out: Vec<WorkflowBinding> = Vec::new();
    let mut name_paths: Vec<(String, String)> = Vec::new();
    for mut t in tables_of(d, path, v) {
        t.ignore(IGNORED_BINDING_KEYS);
        t.ignore(&["limits", "schedules"]);
        let name = t.req_name(d, "name");
        let binding = bound_name(d, names, &mut t, "binding");
        let class_name = t.req_name(d, "class_name");
        let script_name = t.opt_name(d, "script_name");
        let name_path = t.path_of("name");
        t.finish(d);
        let (Some(name), Some(binding), Some(class_name)) = (name, binding, class_name) else {
            continue;
        };
        if let Some((_, first)) = name_paths.iter().find(|(n, _)| *n == name) {
            d.error(
                &name_path,
                format!("workflow name \"{name}\" is already used by {first}"),
            );
            continue;
        }
        name_paths.push((name.clone(), name_path));
        out.push(WorkflowBinding {
            name,
            binding,
            class_name,
            script_name,
        });
    }
    out
}

fn read_triggers(d: &mut Diag, path: &str, v: &Value) -> Triggers {
    let mut out = Triggers::default();
    let Some(mut t) = Table::from_value(d, path, v) else {
        return out;
    };
    t.ignore(&["events"]);
    if let Some((p, v)) = t.get("crons")
        && let Some(crons) = as_str_list(d, &p, v)
    {
        for (i, cron) in crons.into_iter().enumerate() {
            match validate::cron_shape_error(&cron) {
                Some(message) => d.error(&item(&p, i), message),
                None => out.crons.push(cron),
            }
        }
    }
    t.finish(d);
    out
}

fn read_vectorize(d: &mut Diag, names: &mut Names, path: &str, v: &Value) -> Vec<VectorizeBinding> {
    let mut out = Vec::new();
    for mut t in tables_of(d, path, v) {
        t.ignore(IGNORED_BINDING_KEYS);
        let binding = bound_name(d, names, &mut t, "binding");
        let index_name = t.req_name(d, "index_name");
        t.finish(d);
        if let (Some(binding), Some(index_name)) = (binding, index_name) {
            out.push(VectorizeBinding {
                binding,
                index_name,
            });
        }
    }
    out
}

fn read_ai(d: &mut Diag, names: &mut Names, path: &str, v: &Value) -> Option<AiBinding> {
    let mut t = Table::from_value(d, path, v)?;
    t.ignore(IGNORED_BINDING_KEYS);
    t.ignore(&["staging"]);
    let binding = bound_name(d, names, &mut t, "binding");
    t.finish(d);
    binding.map(|binding| AiBinding { binding })
}

fn read_analytics(
    d: &mut Diag,
    names: &mut Names,
    path: &str,
    v: &Value,
) -> Vec<AnalyticsEngineDatasetBinding> {
    let mut out = Vec::new();
    for mut t in tables_of(d, path, v) {
        let binding = bound_name(d, names, &mut t, "binding");
        let dataset = t.opt_name(d, "dataset");
        t.finish(d);
        if let Some(binding) = binding {
            out.push(AnalyticsEngineDatasetBinding { binding, dataset });
        }
    }
    out
}

/// One rate limiter, from `ratelimits` or an `unsafe.bindings` entry (which also has `type`).
fn read_ratelimit(
    d: &mut Diag,
    names: &mut Names,
    mut t: Table,
    from_unsafe: bool,
) -> Option<RateLimitBinding> {
    if from_unsafe {
        t.mark("type");
    }
    let name = bound_name(d, names, &mut t, "name");
    let namespace_id = t.req_name(d, "namespace_id");
    let simple = match t.get("simple") {
        None => {
            d.error(&t.path_of("simple"), "missing");
            None
        }
        Some((p, v)) => Table::from_value(d, &p, v).and_then(|mut st| {
            let limit = match st.get("limit") {
                Some((lp, lv)) => as_uint(d, &lp, lv),
                None => {
                    d.error(&st.path_of("limit"), "missing");
                    None
                }
            };
            let period = match st.get("period") {
                Some((pp, pv)) => as_uint(d, &pp, pv).filter(|period| {
                    let ok = RATELIMIT_PERIODS.contains(period);
                    if !ok {
                        d.error(&pp, format!("must be either 10 or 60, found {period}"));
                    }
                    ok
                }),
                None => {
                    d.error(&st.path_of("period"), "missing");
                    None
                }
            };
            st.finish(d);
            Some(RateLimitSimple {
                limit: limit?,
                period: period?,
            })
        }),
    };
    t.finish(d);
    Some(RateLimitBinding {
        name: name?,
        namespace_id: namespace_id?,
        simple: simple?,
    })
}

fn read_unsafe(d: &mut Diag, names: &mut Names, path: &str, v: &Value) -> Vec<RateLimitBinding> {
    let mut out = Vec::new();
    let Some(mut t) = Table::from_value(d, path, v) else {
        return out;
    };
    t.ignore(&["metadata", "capnp"]);
    for b in t.opt_tables(d, "bindings") {
        let kind = b.map.get("type").and_then(Value::as_str);
        match kind {
            Some("ratelimit") => out.extend(read_ratelimit(d, names, b, true)),
            Some(other) => d.warn(
                &b.path,
                format!("unsafe binding type \"{other}\" is not supported by Hearth; ignored"),
            ),
            None => d.error(&child(&b.path, "type"), "missing"),
        }
    }
    t.finish(d);
    out
}

fn read_services(d: &mut Diag, names: &mut Names, path: &str, v: &Value) -> Vec<ServiceBinding> {
    let mut out = Vec::new();
    for mut t in tables_of(d, path, v) {
        t.ignore(IGNORED_BINDING_KEYS);
        t.ignore(&["props"]);
        let binding = bound_name(d, names, &mut t, "binding");
        let service = t.req_name(d, "service");
        let entrypoint = t.opt_name(d, "entrypoint");
        let environment = t.opt_name(d, "environment");
        t.finish(d);
        if let (Some(binding), Some(service)) = (binding, service) {
            out.push(ServiceBinding {
                binding,
                service,
                entrypoint,
                environment,
            });
        }
    }
    out
}

fn read_limits(d: &mut Diag, path: &str, v: &Value, limits: &Limits) -> WorkerLimits {
    let Some(mut t) = Table::from_value(d, path, v) else {
        return WorkerLimits::default();
    };
    let cpu_ms = t.opt_uint_in(d, "cpu_ms", 1, limits.max_cpu_ms);
    let subrequests = t.opt_uint(d, "subrequests");
    t.finish(d);
    WorkerLimits {
        cpu_ms,
        subrequests,
    }
}

fn read_routes(d: &mut Diag, s: &mut Scope) -> Vec<Route> {
    let routes = s.inherit("routes");
    let route = s.inherit("route");
    if let (Some(_), Some((rp, _))) = (&routes, &route) {
        d.error(
            rp,
            "cannot be used together with \"routes\"; use one or the other",
        );
        return Vec::new();
    }
    if let Some((p, v)) = routes {
        let Some(items) = crate::reader::as_array(d, &p, v) else {
            return Vec::new();
        };
        return items
            .iter()
            .enumerate()
            .filter_map(|(i, r)| read_route(d, &item(&p, i), r))
            .collect();
    }
    if let Some((p, v)) = route {
        return read_route(d, &p, v).into_iter().collect();
    }
    Vec::new()
}

fn read_route(d: &mut Diag, path: &str, v: &Value) -> Option<Route> {
    match v {
        Value::String(pattern) if !pattern.is_empty() => Some(Route {
            pattern: pattern.clone(),
            zone_name: None,
            zone_id: None,
            custom_domain: false,
        }),
        Value::Object(_) => {
            let mut t = Table::from_value(d, path, v)?;
            t.ignore(&["enabled", "previews_enabled"]);
            let pattern = t.req_name(d, "pattern");
            let zone_name = t.opt_name(d, "zone_name");
            let zone_id = t.opt_name(d, "zone_id");
            let custom_domain = t.opt_bool(d, "custom_domain").unwrap_or(false);
            t.finish(d);
            Some(Route {
                pattern: pattern?,
                zone_name,
                zone_id,
                custom_domain,
            })
        }
        other => {
            let expected = format!("a pattern string or {} with \"pattern\"", d.an_object());
            d.wrong_type(path, &expected, other);
            None
        }
    }
}

fn read_assets(d: &mut Diag, names: &mut Names, path: &str, v: &Value) -> Option<Assets> {
    let mut t = Table::from_value(d, path, v)?;
    let directory = t.req_name(d, "directory");
    let binding = match t.get("binding") {
        Some((p, v)) => crate::reader::as_name(d, &p, v).inspect(|b| names.add(d, &p, b)),
        None => None,
    };
    let html_handling = match t.get("html_handling") {
        None => HtmlHandling::AutoTrailingSlash,
        Some((p, v)) => one_of(d, &p, v, &HtmlHandling::ALL, |h| h.as_str())
            .unwrap_or(HtmlHandling::AutoTrailingSlash),
    };
    let not_found_handling = match t.get("not_found_handling") {
        None => NotFoundHandling::None,
        Some((p, v)) => one_of(d, &p, v, &NotFoundHandling::ALL, |h| h.as_str())
            .unwrap_or(NotFoundHandling::None),
    };
    let run_worker_first = match t.get("run_worker_first") {
        None => RunWorkerFirst::All(false),
        Some((_, Value::Bool(b))) => RunWorkerFirst::All(*b),
        Some((p, v @ Value::Array(_))) => {
            RunWorkerFirst::Patterns(as_str_list(d, &p, v).unwrap_or_default())
        }
        Some((p, other)) => {
            d.wrong_type(&p, "a boolean or an array of strings", other);
            RunWorkerFirst::All(false)
        }
    };
    t.finish(d);
    Some(Assets {
        directory: directory?,
        binding,
        html_handling,
        not_found_handling,
        run_worker_first,
    })
}

/// A string that must be one of a fixed set of Cloudflare's spellings.
fn one_of<T: Copy>(
    d: &mut Diag,
    path: &str,
    v: &Value,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Option<T> {
    let s = as_str(d, path, v)?;
    if let Some(found) = all.iter().copied().find(|x| name(*x) == s) {
        return Some(found);
    }
    let choices = all
        .iter()
        .map(|x| format!("\"{}\"", name(*x)))
        .collect::<Vec<_>>()
        .join(", ");
    d.error(
        path,
        format!("expected one of {choices}, found {}", Value::String(s)),
    );
    None
}

fn read_build(d: &mut Diag, path: &str, v: &Value) -> Build {
    let Some(mut t) = Table::from_value(d, path, v) else {
        return Build::default();
    };
    t.ignore(&["upload"]);
    let command = t.opt_str(d, "command");
    let cwd = t.opt_str(d, "cwd");
    let watch_dir = match t.get("watch_dir") {
        None => Vec::new(),
        Some((_, Value::String(s))) => vec![s.clone()],
        Some((p, v @ Value::Array(_))) => as_str_list(d, &p, v).unwrap_or_default(),
        Some((p, other)) => {
            d.wrong_type(&p, "a string or an array of strings", other);
            Vec::new()
        }
    };
    t.finish(d);
    Build {
        command,
        cwd,
        watch_dir,
    }
}

fn read_dev(d: &mut Diag, path: &str, v: &Value) -> Dev {
    let Some(mut t) = Table::from_value(d, path, v) else {
        return Dev::default();
    };
    t.ignore(&[
        "inspector_ip",
        "enable_containers",
        "container_engine",
        "generate_types",
    ]);
    let ip = t.opt_name(d, "ip");
    let port = read_port(d, &mut t, "port");
    let local_protocol = read_protocol(d, &mut t, "local_protocol");
    let upstream_protocol = read_protocol(d, &mut t, "upstream_protocol");
    let host = t.opt_name(d, "host");
    let inspector_port = read_port(d, &mut t, "inspector_port");
    t.finish(d);
    Dev {
        ip,
        port,
        local_protocol,
        upstream_protocol,
        host,
        inspector_port,
    }
}

fn read_protocol(d: &mut Diag, t: &mut Table, key: &str) -> Option<String> {
    let (p, v) = t.get(key)?;
    one_of(d, &p, v, &["http", "https"], |x| x).map(str::to_string)
}

fn read_port(d: &mut Diag, t: &mut Table, key: &str) -> Option<u16> {
    let (p, v) = t.get(key)?;
    let n = as_uint(d, &p, v)?;
    check_range(d, &p, n, 0, u64::from(u16::MAX)).and_then(|n| u16::try_from(n).ok())
}

fn read_observability(d: &mut Diag, path: &str, v: &Value) -> Option<Observability> {
    let mut t = Table::from_value(d, path, v)?;
    let enabled = t.opt_bool(d, "enabled");
    let head_sampling_rate = match t.opt_f64(d, "head_sampling_rate") {
        Some(r) if !(0.0..=1.0).contains(&r) => {
            d.error(
                &t.path_of("head_sampling_rate"),
                format!("must be between 0 and 1, found {r}"),
            );
            None
        }
        other => other,
    };
    let logs = t
        .get("logs")
        .and_then(|(p, v)| as_object(d, &p, v).map(|_| v.clone()));
    let traces = t
        .get("traces")
        .and_then(|(p, v)| as_object(d, &p, v).map(|_| v.clone()));
    t.finish(d);
    Some(Observability {
        enabled,
        head_sampling_rate,
        logs,
        traces,
    })
}
