//! A loaded project: its config with the environment applied, and its data
//! directory; opens the storage behind each binding by the names a user types.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};
use hearth_config::{Config, D1DatabaseBinding, KvNamespaceBinding, LoadOptions, R2BucketBinding};
use hearth_core::{DataDir, SharedClock, SystemClock};
use hearth_d1::D1Database;
use hearth_kv::{KvLimits, KvNamespace};
use hearth_r2::{R2Bucket, R2Limits};

use crate::cli::{KvTarget, ProjectArgs};

pub struct Project {
    pub config: Config,
    pub data_dir: DataDir,
    pub clock: SharedClock,
}

impl Project {
    /// Loads the config named by `args`, printing its warnings to stderr.
    pub fn load(args: &ProjectArgs) -> Result<Self> {
        let process_env: BTreeMap<String, String> = std::env::vars().collect();
        let opts = LoadOptions {
            env: args.env.as_deref(),
            process_env,
            ..LoadOptions::default()
        };
        let loaded = hearth_config::load(&args.config, &opts)?;
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        let config = loaded.config;
        let data_dir = match &args.data_dir {
            Some(dir) => DataDir::new(dir),
            None => DataDir::beside_config(config.dir()),
        };
        Ok(Self {
            config,
            data_dir,
            clock: SystemClock::shared(),
        })
    }

    fn kv_binding(&self, target: &KvTarget) -> Result<&KvNamespaceBinding> {
        let found = match (&target.binding, &target.namespace_id) {
            (Some(binding), _) => self.config.kv_namespace(binding),
            (None, Some(id)) => self
                .config
                .kv_namespaces
                .iter()
                .find(|ns| ns.id.as_deref() == Some(id.as_str())),
            (None, None) => None,
        };
        found.ok_or_else(|| {
            let wanted = target
                .binding
                .as_deref()
                .or(target.namespace_id.as_deref())
                .unwrap_or_default();
            anyhow!(
                "no KV namespace {wanted:?} in {}; kv_namespaces has: {}",
                self.config.path.display(),
                names(
                    self.config
                        .kv_namespaces
                        .iter()
                        .map(|ns| ns.binding.as_str())
                )
            )
        })
    }

    pub fn kv_namespace(&self, target: &KvTarget) -> Result<KvNamespace> {
        let binding = self.kv_binding(target)?;
        let path = self.data_dir.kv_namespace(binding.local_id());
        KvNamespace::open(&path, self.clock.clone(), KvLimits::default())
            .with_context(|| format!("opening KV namespace {}", binding.binding))
    }

    pub fn d1_binding(&self, database: &str) -> Result<&D1DatabaseBinding> {
        self.config.d1_database(database).ok_or_else(|| {
            anyhow!(
                "no D1 database {database:?} in {}; d1_databases has: {}",
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
                "no R2 bucket {bucket:?} in {}; r2_buckets has: {}",
                self.config.path.display(),
                names(self.config.r2_buckets.iter().map(|b| b.local_name()))
            )
        })
    }

    pub fn r2_bucket(&self, bucket: &str) -> Result<R2Bucket> {
        let binding = self.r2_binding(bucket)?;
        let dir = self.data_dir.r2_bucket(binding.local_name());
        R2Bucket::open(&dir, self.clock.clone(), R2Limits::default())
            .with_context(|| format!("opening R2 bucket {}", binding.local_name()))
    }
}

/// Splits wrangler's `<bucket>/<key>` object path.
pub fn split_object_path(path: &str) -> Result<(&str, &str)> {
    match path.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok((bucket, key)),
        _ => bail!("object path {path:?} must be <bucket>/<key>"),
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
