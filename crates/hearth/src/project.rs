//! A loaded project: its config with the environment applied, and its data
//! directory; opens the storage behind each binding by the names a user types.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};
use hearth_config::{Config, D1DatabaseBinding, LoadOptions, R2BucketBinding};
use hearth_core::{DataDir, SharedClock, SystemClock};
use hearth_d1::D1Database;
use hearth_kv::KvNamespace;
use hearth_r2::{R2Bucket, R2Limits};

use crate::cli::{KvTarget, ProjectArgs};

pub struct Project {
    pub config: Config,
    pub data_dir: DataDir,
    pub clock: SharedClock,
    /// R2's limits, with `--r2-multipart-expiry` applied.
    pub r2_limits: R2Limits,
    /// `--ai-config`: Workers AI's models and providers.
    pub ai_config: Option<std::path::PathBuf>,
}

impl Project {
    /// Loads the config named by `args`, printing its warnings to stderr.
    pub fn load(args: &ProjectArgs) -> Result<Self> {
        Self::load_among(args, &[])
    }

    /// Loads the configs of workers served together by one process. With
    /// more than one, process secrets must be scoped to a worker
    /// (`HEARTH_SECRET_<WORKER>__<NAME>`), so each config is read once
    /// first for the worker names.
    pub fn load_several(all: &[ProjectArgs]) -> Result<Vec<Self>> {
        if all.len() < 2 {
            return all.iter().map(Self::load).collect();
        }
        let mut names = Vec::new();
        for args in all {
            let opts = LoadOptions {
                env: args.env.as_deref(),
                ..LoadOptions::default()
            };
            match hearth_config::load(&args.config, &opts) {
                Ok(loaded) => names.push(loaded.config.name),
                // Reported with its context by the load below.
                Err(_) => {
                    return Err(Self::load(args)
                        .err()
                        .unwrap_or_else(|| anyhow!("{}: cannot be read", args.config.display())));
                }
            }
        }
        let mut projects = all
            .iter()
            .map(|args| Self::load_among(args, &names))
            .collect::<Result<Vec<_>>>()?;
        // The default worker (the one answering requests no route matches)
        // is the first that Cloudflare would expose: a worker with
        // `workers_dev = false` and no routes answers only through service
        // bindings, so it moves behind the others (stable, so the command
        // line's order holds otherwise).
        projects.sort_by_key(|p| p.config.workers_dev == Some(false) && p.config.routes.is_empty());
        Ok(projects)
    }

    fn load_among(args: &ProjectArgs, served_workers: &[String]) -> Result<Self> {
        if args.remote {
            bail!(
                "--remote is not supported: Hearth keeps every binding's data on this machine. Drop the flag to use the local data."
            );
        }
        let process_env: BTreeMap<String, String> = std::env::vars().collect();
        let opts = LoadOptions {
            env: args.env.as_deref(),
            process_env,
            served_workers: served_workers.to_vec(),
            ..LoadOptions::default()
        };
        let loaded = hearth_config::load(&args.config, &opts)?;
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        if let Some(redirect) = &loaded.redirected_from {
            tracing::info!(
                "using the config {} that {} points to (written by a build); name a config file to use another",
                loaded.path.display(),
                redirect.display()
            );
        }
        // State stays beside the user's own config, not in a build's output.
        let user_dir = loaded.user_dir().to_path_buf();
        let mut config = loaded.config;
        if let Some(script) = &args.script {
            if let Some(main) = &config.main {
                tracing::info!(
                    "entry {} from the command line, in place of main = {main:?}",
                    script.display()
                );
            }
            config.main = Some(script.display().to_string());
        }
        let data_dir = match &args.data_dir {
            Some(dir) => DataDir::new(dir),
            None => DataDir::beside_config(&user_dir),
        };
        let mut r2_limits = R2Limits::default();
        if let Some(age) = args.r2_multipart_expiry {
            r2_limits.abort_multipart_uploads_after = age;
        }
        Ok(Self {
            config,
            data_dir,
            clock: SystemClock::shared(),
            r2_limits,
            ai_config: args.ai_config.clone(),
        })
    }

    /// Resolves a KV target the way wrangler does, returning the namespace
    /// id whose storage to open:
    /// - `--namespace-id ID`: an `id` or `preview_id` of `kv_namespaces`;
    /// - `--binding B --preview`: B's `preview_id` (an error when it has none);
    /// - `--binding B`: the namespace a served Worker sees as B.
    pub fn kv_namespace_id(&self, target: &KvTarget) -> Result<String> {
        let namespaces = &self.config.kv_namespaces;
        if let Some(id) = &target.namespace.namespace_id {
            let known = namespaces.iter().any(|ns| {
                ns.id.as_deref() == Some(id.as_str())
                    || ns.preview_id.as_deref() == Some(id.as_str())
            });
            if !known {
                bail!(
                    "No namespace with id \"{id}\" in the configured \"kv_namespaces\" of {}; configured ids: {}",
                    self.config.path.display(),
                    names(namespaces.iter().filter_map(|ns| ns.id.as_deref()))
                );
            }
            return Ok(id.clone());
        }
        let binding = target.namespace.binding.as_deref().unwrap_or_default();
        let Some(ns) = self.config.kv_namespace(binding) else {
            bail!(
                "A namespace with binding name \"{binding}\" was not found in the configured \"kv_namespaces\" of {}; configured bindings: {}",
                self.config.path.display(),
                names(namespaces.iter().map(|ns| ns.binding.as_str()))
            );
        };
        if target.preview {
            return ns.preview_id.clone().ok_or_else(|| {
                anyhow!(
                    "No preview ID found for {binding}. Add one to your wrangler config file to use a separate namespace for previewing your worker."
                )
            });
        }
        Ok(ns.local_id().to_string())
    }

    pub fn kv_namespace(&self, target: &KvTarget) -> Result<KvNamespace> {
        self.open_kv_id(&self.kv_namespace_id(target)?)
    }

    fn open_kv_id(&self, id: &str) -> Result<KvNamespace> {
        let path = self.data_dir.kv_namespace(id);
        hearth_runtime::bindings::open_namespace(&self.data_dir, id, self.clock.clone())
            .with_context(|| format!("opening KV namespace {id} at {}", path.display()))
    }

    pub fn d1_binding(&self, database: &str) -> Result<&D1DatabaseBinding> {
        self.config.d1_database(database).ok_or_else(|| {
            anyhow!(
                "Couldn't find a D1 DB with the name or binding '{database}' in {}; configured: {}",
                self.config.path.display(),
                names(
                    self.config
                        .d1_databases
                        .iter()
                        .map(|db| db.database_name.as_deref().unwrap_or(&db.binding))
                )
            )
        })
    }

    pub fn d1_database(&self, binding: &D1DatabaseBinding) -> Result<D1Database> {
        let path = self.data_dir.d1_database(binding.local_id());
        D1Database::open(&path).with_context(|| format!("opening D1 database {}", binding.binding))
    }

    fn r2_binding(&self, bucket: &str) -> Result<&R2BucketBinding> {
        self.config.r2_bucket(bucket).ok_or_else(|| {
            anyhow!(
                "No R2 bucket named \"{bucket}\" in the configured \"r2_buckets\" of {}; configured buckets: {}",
                self.config.path.display(),
                names(self.config.r2_buckets.iter().map(|b| b.local_name()))
            )
        })
    }

    pub fn r2_bucket(&self, bucket: &str) -> Result<R2Bucket> {
        let binding = self.r2_binding(bucket)?;
        hearth_runtime::bindings::open_bucket(
            &self.data_dir,
            binding.local_name(),
            self.clock.clone(),
            self.r2_limits.clone(),
        )
        .with_context(|| format!("opening R2 bucket {}", binding.local_name()))
    }
}

/// Splits wrangler's `<bucket>/<key>` object path.
pub fn split_object_path(path: &str) -> Result<(&str, &str)> {
    match path.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok((bucket, key)),
        _ => bail!("The object path must be in the form of {{bucket}}/{{key}}, got \"{path}\"."),
    }
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = it.collect();
    if all.is_empty() {
        "(none)".to_string()
    } else {
        all.join(", ")
    }
}
