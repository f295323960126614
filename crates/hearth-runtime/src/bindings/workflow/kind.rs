//! How `workflows` is served: every Workflow of a data directory in one
//! SQLite file (instances keyed by workflow name; in cluster mode, tables in
//! PostgreSQL shared by every node), a binding per entry, and the runner
//! task that runs due steps on the worker's isolates.

use std::sync::Arc;

use hearth_core::{DataDir, SharedClock};
use hearth_workflows::{PgJournal, WorkflowEngine, WorkflowLimits};

use super::runner::{WorkflowRunnerOptions, Workflows, spawn_workflow_runner};
use crate::bindings::registry::{
    BackgroundTask, BindingError, BindingKind, OpenContext, OpenedWorker, ServedConfig, TaskHandle,
};
use crate::cluster::ClusterNode;
use crate::pool::IsolatePool;

pub struct WorkflowKind;

/// Opens `<data>/workflows.sqlite`, which `serve` and the CLI share;
/// `lease_ms` overrides how long a silent run keeps its claim.
pub fn open_engine(
    data_dir: &DataDir,
    clock: SharedClock,
    lease_ms: Option<u64>,
) -> Result<WorkflowEngine, BindingError> {
    let path = data_dir.workflows();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| BindingError::new(format!("creating {}: {e}", dir.display())))?;
    }
    let mut limits = WorkflowLimits::default();
    if let Some(ms) = lease_ms {
        limits.lease_ms = ms;
    }
    WorkflowEngine::open(&path, clock, limits)
        .map_err(|e| BindingError::new(format!("opening {}: {e}", path.display())))
}

/// Cluster mode: the journal in PostgreSQL, shared by every node. Runs are
/// leased for the cluster's `lease_ms` and renewed by this node's
/// heartbeat, so a dead node's runs move to another within about a lease.
fn open_cluster_engine(
    node: &Arc<ClusterNode>,
    clock: SharedClock,
) -> Result<WorkflowEngine, BindingError> {
    let journal = PgJournal::open(node.pg().clone())
        .map_err(|e| BindingError::new(format!("opening Workflows in PostgreSQL: {e}")))?;
    let limits = WorkflowLimits {
        lease_ms: node.config().durable_objects.lease_ms,
        ..WorkflowLimits::default()
    };
    Ok(WorkflowEngine::with_store(Box::new(journal), clock, limits).with_heartbeat(node.node_id()))
}

impl BindingKind for WorkflowKind {
    fn section(&self) -> &'static str {
        "workflows"
    }

    fn data_paths(&self) -> &'static [&'static str] {
        &["workflows.sqlite"]
    }

    fn event_kinds(&self) -> &'static [&'static str] {
        &["workflow"]
    }

    fn cli_verbs(&self) -> &'static [&'static str] {
        &["workflows list", "workflows instances"]
    }

    /// A workflow name has one class across every worker served.
    fn check(&self, served: &[ServedConfig<'_>]) -> Result<(), BindingError> {
        let mut seen: Vec<(&str, &hearth_config::Config)> = Vec::new();
        for s in served {
            for w in &s.config.workflows {
                if let Some((_, first)) = seen.iter().find(|(n, _)| *n == w.name) {
                    return Err(BindingError::new(format!(
                        "{}: workflows: {}: the workflow name {:?} is already used by {} (worker {:?}); workflow names are unique across workers, so rename one of them",
                        s.config.path.display(),
                        w.binding,
                        w.name,
                        first.path.display(),
                        first.name,
                    )));
                }
                seen.push((&w.name, s.config));
            }
        }
        Ok(())
    }

    fn open(&self, cx: &mut OpenContext<'_>, out: &mut OpenedWorker) -> Result<(), BindingError> {
        let config = cx.config;
        if config.workflows.is_empty() {
            return Ok(());
        }
        for w in &config.workflows {
            if let Some(script) = &w.script_name {
                return Err(cx.error(
                    self.section(),
                    &w.binding,
                    format!(
                        "script_name = {script:?} names another worker, but a Workflow's class must be exported by this worker; export class {} here and remove script_name",
                        w.class_name
                    ),
                ));
            }
        }
        let (data_dir, clock, lease) =
            (cx.data_dir, cx.clock.clone(), cx.settings.workflow_lease_ms);
        let engine = match cx.settings.cluster.clone() {
            Some(node) => cx.shared("postgres:workflows", || {
                open_cluster_engine(&node, clock).map(Arc::new)
            })?,
            None => {
                let key = data_dir.workflows().display().to_string();
                cx.shared(&key, || open_engine(data_dir, clock, lease).map(Arc::new))?
            }
        };
        let workflows = Workflows::new(
            engine,
            config
                .workflows
                .iter()
                .map(|w| (w.name.clone(), w.class_name.clone())),
        );
        for w in &config.workflows {
            if let Some(adapter) = workflows.adapter(&w.binding, &w.name) {
                out.worker.bindings.push(Arc::new(adapter));
            }
        }
        out.worker.workflows = Some(workflows.clone());
        out.tasks.push(Arc::new(Runner {
            workflows,
            clock: cx.clock.clone(),
        }));
        Ok(())
    }
}

/// The runner of one worker's Workflows.
struct Runner {
    workflows: Arc<Workflows>,
    clock: SharedClock,
}

impl BackgroundTask for Runner {
    fn start(&self, pool: &IsolatePool) -> Result<TaskHandle, BindingError> {
        Ok(spawn_workflow_runner(
            pool.clone(),
            self.workflows.clone(),
            self.clock.clone(),
            WorkflowRunnerOptions::default(),
        ))
    }
}
