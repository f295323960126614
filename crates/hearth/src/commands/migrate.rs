//! `hearth migrate`: copies what an embedded data directory holds into the
//! backends a cluster file names, so nodes started afterwards with
//! `hearth serve --cluster` serve the same data.
//!
//! - KV namespaces → `kv_entries` in PostgreSQL, page by page, with their
//!   expirations and metadata (expired keys are not copied).
//! - R2 buckets → the `[s3]` store, object by object, bodies streamed,
//!   R2's own fields (version, upload time, etag, checksums, metadata)
//!   kept.
//! - Durable Objects and D1 databases → snapshot 0 of their log (chunks in
//!   the store with `[s3]`, else in PostgreSQL), made current with no
//!   change after it, so the first node to take the lease restores the
//!   file as it was; alarms go into `do_alarms`, where a node adopts them.
//!   The data directory's id secret becomes the cluster's, so
//!   `idFromName` gives the same ids.
//! - Workflows → the `wf_*` tables, rows as they are
//!   ([`hearth_workflows::copy_journal`]).
//!
//! Nothing here takes a lease, so the data directory must be unserved
//! (its lock) and no node live (heartbeats). Every target is checked
//! before anything is written: one already holding data stops the copy
//! unless `--force`. What is not copied is named in the report.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hearth_cluster::{ClusterConfig, KvBackend, Pg, PgChangeLog, Placement, R2Backend};
use hearth_core::{DataDir, SharedClock, SystemClock};
use hearth_do::DurableObjectHost;
use hearth_kv::{KvStore, PostgresStore, SqliteStore, StoredWrite};
use hearth_r2::{R2Bucket, R2GetOptions, R2Limits, R2ListInclude, R2ListOptions, S3Store};
use hearth_runtime::cluster::D1_NAMESPACE;
use hearth_workflows::{
    PgJournal, SqliteJournal, copy_journal, workflows_present, workflows_stored,
};

use crate::cli::{MigrateArgs, ProjectArgs};
use crate::project::Project;

/// Keys listed per page of a KV namespace.
const KV_PAGE: usize = 1000;
/// A batch of KV writes is sent once it holds this many bytes of values...
const KV_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// ...or this many keys.
const KV_BATCH_KEYS: usize = 256;

pub fn run(args: MigrateArgs) -> Result<()> {
    let mut all = Vec::new();
    if args.configs.is_empty() {
        all.push(args.project.clone());
    }
    for config in &args.configs {
        all.push(ProjectArgs {
            config: config.clone(),
            ..args.project.clone()
        });
    }
    let projects = Project::load_several(&all)?;
    // Held to the end: no server may start on a directory being copied.
    let mut locked: Vec<&DataDir> = Vec::new();
    let mut locks = Vec::new();
    for p in &projects {
        if !locked.contains(&&p.data_dir) {
            locks.push(p.data_dir.lock_exclusive()?);
            locked.push(&p.data_dir);
        }
    }
    let cluster = ClusterConfig::load(&args.cluster)?;
    let target = Target::connect(&args.cluster, &cluster)?;
    target.refuse_live_nodes()?;
    let plan = Plan::of(&projects, &target);
    if !args.force {
        let taken = plan.already_there(&target)?;
        if !taken.is_empty() {
            bail!(
                "the cluster already holds data for: {}; nothing was copied (--force replaces it)",
                taken.join(", ")
            );
        }
    }
    let mut report = Vec::new();
    plan.adopt_secrets(&target, &mut report)?;
    plan.copy(&target, &mut report)?;
    report.extend(plan.not_copied());
    drop(locks);
    super::print_stdout(&report.join("\n"))
}

/// The cluster's backends, opened as a node would, without joining.
struct Target {
    pg: Pg,
    config: ClusterConfig,
    /// `[s3]`, when configured.
    store: Option<Arc<S3Store>>,
    log: Arc<PgChangeLog>,
    clock: SharedClock,
}

impl Target {
    fn connect(path: &Path, config: &ClusterConfig) -> Result<Self> {
        let Some(pg_config) = &config.postgres else {
            bail!("{}: postgres: missing", path.display());
        };
        let pg = Pg::connect(&pg_config.url, &pg_config.schema)?;
        let store = match &config.s3 {
            Some(c) => {
                let store = S3Store::connect(&hearth_runtime::cluster::store_config(c))?;
                store.check()?;
                Some(store)
            }
            None => None,
        };
        // Placement's tables first: the log's refer to them.
        let lease = Duration::from_millis(config.durable_objects.lease_ms);
        pg.block({
            let pg = pg.clone();
            async move { Placement::status_of(&pg, lease).await.map(|_| ()) }
        })?;
        let after = config.durable_objects.snapshot_after_bytes;
        let log = match &store {
            Some(s) => PgChangeLog::open_with_store(pg.clone(), after, s.clone())?,
            None => PgChangeLog::open(pg.clone(), after)?,
        };
        Ok(Self {
            pg,
            config: config.clone(),
            store,
            log,
            clock: SystemClock::shared(),
        })
    }

    /// A live node runs objects from its own cache of the log and would
    /// not see a copy made under it.
    fn refuse_live_nodes(&self) -> Result<()> {
        let lease = Duration::from_millis(self.config.durable_objects.lease_ms);
        let nodes = self.pg.block({
            let pg = self.pg.clone();
            async move { Placement::status_of(&pg, lease).await }
        })?;
        let live: Vec<String> = nodes
            .into_iter()
            .filter(|n| n.live)
            .map(|n| n.node_id)
            .collect();
        if !live.is_empty() {
            bail!(
                "cluster nodes are running ({}); stop every node before migrating into the cluster",
                live.join(", ")
            );
        }
        Ok(())
    }

    fn kv_on_postgres(&self) -> bool {
        self.config.backends.kv == KvBackend::Postgres
    }

    /// The store R2 lives in, when the cluster keeps R2 there.
    fn r2_store(&self) -> Option<&Arc<S3Store>> {
        self.store
            .as_ref()
            .filter(|_| self.config.backends.r2 == R2Backend::S3)
    }
}

/// One thing to copy, from one data directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Kv {
        id: String,
    },
    R2 {
        bucket: String,
    },
    /// Every object of one class.
    Objects {
        class: String,
    },
    D1 {
        id: String,
    },
}

/// What to copy from one data directory, each item once even when several
/// workers bind it.
struct DirPlan {
    dir: DataDir,
    items: BTreeSet<Item>,
    /// Workflow names: their instances share one journal file.
    workflows: Vec<String>,
    /// Bindings the cluster does not keep in a shared backend.
    skipped: Vec<String>,
}

struct Plan {
    dirs: Vec<DirPlan>,
}

impl Plan {
    fn of(projects: &[Project], target: &Target) -> Self {
        let mut dirs: Vec<DirPlan> = Vec::new();
        for p in projects {
            let at = match dirs.iter().position(|d| d.dir == p.data_dir) {
                Some(i) => i,
                None => {
                    dirs.push(DirPlan {
                        dir: p.data_dir.clone(),
                        items: BTreeSet::new(),
                        workflows: Vec::new(),
                        skipped: Vec::new(),
                    });
                    dirs.len() - 1
                }
            };
            let DirPlan {
                items,
                workflows,
                skipped,
                ..
            } = &mut dirs[at];
            let c = &p.config;
            for w in &c.workflows {
                if w.script_name.as_deref().is_none_or(|s| s == c.name)
                    && !workflows.contains(&w.name)
                {
                    workflows.push(w.name.clone());
                }
            }
            for ns in &c.kv_namespaces {
                if target.kv_on_postgres() {
                    items.insert(Item::Kv {
                        id: ns.local_id().to_owned(),
                    });
                } else {
                    skipped.push(format!(
                        "not copied: KV namespace {} ({}): the cluster keeps KV embedded ([backends] kv = \"embedded\")",
                        ns.binding,
                        ns.local_id()
                    ));
                }
            }
            for b in &c.r2_buckets {
                if target.r2_store().is_some() {
                    items.insert(Item::R2 {
                        bucket: b.local_name().to_owned(),
                    });
                } else {
                    skipped.push(format!(
                        "not copied: R2 bucket {} ({}): the cluster file has no [s3] store (or [backends] r2 = \"embedded\"), so R2 stays in each node's own data directory",
                        b.binding,
                        b.local_name()
                    ));
                }
            }
            for class in c.durable_object_classes().into_keys() {
                items.insert(Item::Objects { class });
            }
            for db in &c.d1_databases {
                items.insert(Item::D1 {
                    id: db.local_id().to_owned(),
                });
            }
        }
        Self { dirs }
    }

    /// Items the cluster holds data for already, named for the error.
    fn already_there(&self, target: &Target) -> Result<Vec<String>> {
        let mut taken = Vec::new();
        for DirPlan {
            dir,
            items,
            workflows,
            ..
        } in &self.dirs
        {
            if !workflows.is_empty() {
                let journal = PgJournal::open(target.pg.clone())?;
                for name in workflows_present(&journal, workflows)? {
                    taken.push(format!("Workflow {name}"));
                }
            }
            for item in items {
                match item {
                    Item::Kv { id } => {
                        let store = PostgresStore::open(target.pg.clone(), id)?;
                        if store.stored_rows()? > 0 {
                            taken.push(format!("KV namespace {id}"));
                        }
                    }
                    Item::R2 { bucket } => {
                        let r2 = s3_bucket(target, bucket)?;
                        let page = r2.list(&R2ListOptions {
                            limit: Some(1),
                            ..R2ListOptions::default()
                        })?;
                        if !page.objects.is_empty() {
                            taken.push(format!("R2 bucket {bucket}"));
                        }
                    }
                    Item::Objects { class } => {
                        for id in object_ids(dir, class)? {
                            if target.log.holds(class, &id)? {
                                taken.push(format!("Durable Object {class} {id}"));
                            }
                        }
                    }
                    Item::D1 { id } => {
                        if target.log.holds(D1_NAMESPACE, id)? {
                            taken.push(format!("D1 database {id}"));
                        }
                    }
                }
            }
        }
        Ok(taken)
    }

    /// Ids first: a cluster that cannot take this directory's ids stops
    /// the copy before anything else is written.
    fn adopt_secrets(&self, target: &Target, report: &mut Vec<String>) -> Result<()> {
        for DirPlan { dir, items, .. } in &self.dirs {
            let mut objects = false;
            for item in items {
                if let Item::Objects { class } = item {
                    objects |= !object_ids(dir, class)?.is_empty();
                }
            }
            if objects {
                adopt_secret(dir, target, report)?;
            }
        }
        Ok(())
    }

    fn copy(&self, target: &Target, report: &mut Vec<String>) -> Result<()> {
        for DirPlan {
            dir,
            items,
            workflows,
            ..
        } in &self.dirs
        {
            for item in items {
                let line = match item {
                    Item::Kv { id } => copy_kv(dir, id, target)
                        .with_context(|| format!("copying KV namespace {id}"))?,
                    Item::R2 { bucket } => copy_r2(dir, bucket, target)
                        .with_context(|| format!("copying R2 bucket {bucket}"))?,
                    Item::Objects { class } => copy_objects(dir, class, target)
                        .with_context(|| format!("copying Durable Objects of {class}"))?,
                    Item::D1 { id } => copy_d1(dir, id, target)
                        .with_context(|| format!("copying D1 database {id}"))?,
                };
                report.push(line);
            }
            if !workflows.is_empty() {
                report.push(copy_workflows(dir, workflows, target).context("copying Workflows")?);
            }
        }
        Ok(())
    }

    /// What each data directory holds that was not copied, by name.
    fn not_copied(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for DirPlan {
            dir,
            items,
            workflows,
            skipped,
        } in &self.dirs
        {
            lines.extend(skipped.iter().cloned());
            let copied: Vec<_> = items
                .iter()
                .filter_map(|i| match i {
                    Item::Objects { class } => Some(dir.durable_object_namespace(class)),
                    _ => None,
                })
                .collect();
            if let Ok(entries) = std::fs::read_dir(dir.durable_objects()) {
                for e in entries.flatten() {
                    let path = e.path();
                    if path.is_dir() && !copied.contains(&path) {
                        lines.push(format!(
                            "not copied: {} (Durable Objects of a class no config here declares)",
                            path.display()
                        ));
                    }
                }
            }
            let root = dir.root();
            if workflows.is_empty() && dir.workflows().exists() {
                lines.push(format!(
                    "not copied: {} (Workflows: no given config declares a workflow)",
                    dir.workflows().display()
                ));
            }
            for (path, what) in [
                (
                    dir.queues(),
                    "Queues: undelivered messages stay in it (cluster mode's queues start empty)",
                ),
                (
                    root.join("analytics_engine.sqlite"),
                    "Analytics Engine data points",
                ),
                (root.join("vectorize"), "Vectorize indexes"),
            ] {
                if path.exists() {
                    lines.push(format!("not copied: {} ({what})", path.display()));
                }
            }
        }
        lines
    }
}

fn s3_bucket(target: &Target, name: &str) -> Result<R2Bucket> {
    let Some(store) = target.r2_store() else {
        bail!("the cluster has no S3 store for R2");
    };
    Ok(R2Bucket::open_s3(
        store.clone(),
        name,
        target.clock.clone(),
        R2Limits::default(),
    )?)
}

fn copy_kv(dir: &DataDir, id: &str, target: &Target) -> Result<String> {
    let path = dir.kv_namespace(id);
    if !path.exists() {
        return Ok(format!("KV namespace {id}: nothing stored"));
    }
    let src = SqliteStore::open(&path)?;
    let dst = PostgresStore::open(target.pg.clone(), id)?;
    let now = target.clock.now_ms() / 1000;
    let (mut keys, mut bytes) = (0u64, 0u64);
    let mut after: Option<String> = None;
    let mut batch: Vec<(String, hearth_kv::StoredEntry)> = Vec::new();
    let mut batch_bytes = 0usize;
    loop {
        let page = src.list("", after.as_deref(), KV_PAGE, now)?;
        let Some(last) = page.last() else { break };
        after = Some(last.name.clone());
        for key in page {
            // Expired since it was listed: not copied, as it is not there.
            let Some(entry) = src.get(&key.name, now)? else {
                continue;
            };
            batch_bytes += entry.value.len();
            batch.push((key.name, entry));
            if batch_bytes >= KV_BATCH_BYTES || batch.len() >= KV_BATCH_KEYS {
                (keys, bytes) = flush_kv(&dst, &mut batch, (keys, bytes))?;
                batch_bytes = 0;
            }
        }
    }
    (keys, bytes) = flush_kv(&dst, &mut batch, (keys, bytes))?;
    Ok(format!(
        "KV namespace {id}: {keys} keys, {bytes} bytes -> postgres:{}.kv_entries",
        target.pg.schema()
    ))
}

fn flush_kv(
    dst: &PostgresStore,
    batch: &mut Vec<(String, hearth_kv::StoredEntry)>,
    (keys, bytes): (u64, u64),
) -> Result<(u64, u64)> {
    if batch.is_empty() {
        return Ok((keys, bytes));
    }
    let writes: Vec<StoredWrite<'_>> = batch
        .iter()
        .map(|(key, e)| StoredWrite {
            key,
            value: &e.value,
            expiration: e.expiration,
            metadata: e.metadata.as_deref(),
        })
        .collect();
    dst.put_many(&writes)?;
    let added: u64 = batch.iter().map(|(_, e)| e.value.len() as u64).sum();
    let n = batch.len() as u64;
    batch.clear();
    Ok((keys + n, bytes + added))
}

fn copy_r2(dir: &DataDir, name: &str, target: &Target) -> Result<String> {
    let path = dir.r2_bucket(name);
    if !path.exists() {
        return Ok(format!("R2 bucket {name}: nothing stored"));
    }
    let src = R2Bucket::open(&path, target.clock.clone(), R2Limits::default())?;
    let dst = s3_bucket(target, name)?;
    let (mut objects, mut bytes) = (0u64, 0u64);
    let mut cursor = None;
    loop {
        let page = src.list(&R2ListOptions {
            cursor: cursor.take(),
            include: vec![R2ListInclude::HttpMetadata, R2ListInclude::CustomMetadata],
            ..R2ListOptions::default()
        })?;
        for listed in &page.objects {
            let Some(body) = src
                .get(&listed.key, &R2GetOptions::default())?
                .and_then(|g| g.into_body())
            else {
                continue;
            };
            dst.import(&body.object, body.body)
                .with_context(|| format!("object {:?}", listed.key))?;
            objects += 1;
            bytes += body.object.size;
        }
        match page.cursor {
            Some(c) if page.truncated => cursor = Some(c),
            _ => break,
        }
    }
    let mut text = format!(
        "R2 bucket {name}: {objects} objects, {bytes} bytes -> {}",
        dst.describe()
    );
    let uploads = src.list_multipart_uploads("", None, 1000)?.len();
    if uploads > 0 {
        let more = if uploads == 1000 { " or more" } else { "" };
        text.push_str(&format!(
            "\nnot copied: {uploads}{more} unfinished multipart uploads of R2 bucket {name} (start them again on the cluster)"
        ));
    }
    Ok(text)
}

/// The ids of the objects of `class` stored in `dir`.
fn object_ids(dir: &DataDir, class: &str) -> Result<Vec<String>> {
    let folder = dir.durable_object_namespace(class);
    let entries = match std::fs::read_dir(&folder) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", folder.display())),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let name = entry
            .with_context(|| format!("reading {}", folder.display()))?
            .file_name();
        let name = name.to_string_lossy();
        if let Some(id) = name.strip_suffix(".sqlite")
            && id.len() == 64
            && id.bytes().all(|b| b.is_ascii_hexdigit())
        {
            ids.push(id.to_owned());
        }
    }
    ids.sort();
    Ok(ids)
}

/// The data directory's id secret becomes the cluster's.
fn adopt_secret(dir: &DataDir, target: &Target, report: &mut Vec<String>) -> Result<()> {
    let Some(secret) = DurableObjectHost::stored_secret(dir)? else {
        bail!(
            "{} is missing while Durable Objects are stored: every object's id derives from it",
            dir.durable_objects().join("secret").display()
        );
    };
    let outcome = target.log.adopt_id_secret(secret)?;
    if outcome != hearth_cluster::SecretAdopted::Same {
        report.push(format!(
            "Durable Object ids: the cluster now uses the secret of {}",
            dir.durable_objects().join("secret").display()
        ));
    }
    Ok(())
}

/// Copies one database file as snapshot 0 of `namespace/id`; returns its
/// bytes and whether it holds an alarm.
fn copy_file(path: &Path, namespace: &str, id: &str, target: &Target) -> Result<(u64, bool)> {
    let export = hearth_do::ship::prepare_export(path)?;
    let chunks = hearth_do::ship::upload_snapshot(target.log.as_ref(), namespace, id, 0, path)?;
    target
        .log
        .import_snapshot(namespace, id, chunks, export.alarm_ms)?;
    Ok((export.bytes, export.alarm_ms.is_some()))
}

fn copy_objects(dir: &DataDir, class: &str, target: &Target) -> Result<String> {
    let (mut objects, mut bytes, mut alarms) = (0u64, 0u64, 0u64);
    for id in object_ids(dir, class)? {
        let (b, alarm) = copy_file(&dir.durable_object(class, &id), class, &id, target)
            .with_context(|| format!("object {id}"))?;
        objects += 1;
        bytes += b;
        alarms += u64::from(alarm);
    }
    Ok(format!(
        "Durable Objects {class}: {objects} objects, {bytes} bytes, {alarms} alarms -> {}",
        snapshot_place(target)
    ))
}

fn copy_d1(dir: &DataDir, id: &str, target: &Target) -> Result<String> {
    let path = dir.d1_database(id);
    if !path.exists() {
        return Ok(format!("D1 database {id}: nothing stored"));
    }
    let (bytes, _) = copy_file(&path, D1_NAMESPACE, id, target)?;
    Ok(format!(
        "D1 database {id}: {bytes} bytes -> {}",
        snapshot_place(target)
    ))
}

fn copy_workflows(dir: &DataDir, names: &[String], target: &Target) -> Result<String> {
    let path = dir.workflows();
    let list = names.join(", ");
    if !path.exists() {
        return Ok(format!("Workflows {list}: nothing stored"));
    }
    let from = SqliteJournal::open(&path)?;
    let to = PgJournal::open(target.pg.clone())?;
    let copied = copy_journal(&from, &to, names)?;
    let mut text = format!(
        "Workflows {list}: {} instances, {} steps, attempts and events -> postgres:{}.wf_*",
        copied.instances,
        copied.records,
        target.pg.schema()
    );
    for other in workflows_stored(&from)? {
        if !names.contains(&other) {
            text.push_str(&format!(
                "\nnot copied: the instances of workflow {other:?} in {} (no given config declares it)",
                path.display()
            ));
        }
    }
    Ok(text)
}

fn snapshot_place(target: &Target) -> String {
    match &target.store {
        Some(s) => format!("snapshots in {}", s.describe()),
        None => format!(
            "snapshots in postgres:{}.do_snapshot_chunks",
            target.pg.schema()
        ),
    }
}
