//! What `hearth serve` runs beside HTTP: the background tasks the binding
//! kinds opened (queue consumers, cron loops, Workflows runners), started on
//! a worker's isolates and restarted on the new ones after a `hearth dev`
//! reload. The kinds themselves live in `hearth_runtime::bindings`.

use std::sync::Arc;

use anyhow::Result;
use hearth_runtime::IsolatePool;
use hearth_runtime::bindings::registry::{BackgroundTask, KindSettings, TaskHandle};
use hearth_runtime::bindings::{configure_queue_broker, open_engine, open_queue_broker};
use hearth_workflows::WorkflowEngine;

use crate::project::Project;

/// One worker's background tasks and their running handles.
pub struct WorkerEvents {
    tasks: Vec<Arc<dyn BackgroundTask>>,
    running: tokio::sync::Mutex<Vec<TaskHandle>>,
}

impl WorkerEvents {
    pub fn new(tasks: Vec<Arc<dyn BackgroundTask>>) -> Self {
        Self {
            tasks,
            running: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// Stops the tasks (if running) and starts them on `pool`.
    pub async fn start(&self, pool: &IsolatePool) -> Result<()> {
        let mut running = self.running.lock().await;
        stop_all(&mut running).await;
        for task in &self.tasks {
            running.push(task.start(pool)?);
        }
        Ok(())
    }

    /// Stops the tasks; waits for the batches and runs in flight.
    pub async fn stop(&self) {
        stop_all(&mut *self.running.lock().await).await;
    }
}

/// Stops the latest started first, so a task never outlives one it feeds.
async fn stop_all(running: &mut Vec<TaskHandle>) {
    while let Some(task) = running.pop() {
        task.stop().await;
    }
}

/// How long a run may go silent before another runner may take it over;
/// a run whose server was killed resumes this long after its last step
/// call (plus the step's timeout if an attempt was running). Read from
/// `HEARTH_WORKFLOW_LEASE_MS` so tests and impatient operators can shorten it.
pub const WORKFLOW_LEASE_ENV: &str = "HEARTH_WORKFLOW_LEASE_MS";

/// The settings every binding kind reads, from the process environment.
pub fn kind_settings(project: &Project) -> Result<KindSettings> {
    let mut settings = KindSettings {
        r2_limits: project.r2_limits.clone(),
        ..KindSettings::default()
    };
    if let Ok(v) = std::env::var(WORKFLOW_LEASE_ENV) {
        settings.workflow_lease_ms = Some(v.parse().map_err(|_| {
            anyhow::anyhow!("{WORKFLOW_LEASE_ENV}={v:?} is not a number of milliseconds")
        })?);
    }
    if let Ok(v) = std::env::var(ANALYTICS_RETENTION_ENV) {
        let days: u64 = v.parse().ok().filter(|d| *d > 0).ok_or_else(|| {
            anyhow::anyhow!("{ANALYTICS_RETENTION_ENV}={v:?} is not a positive number of days")
        })?;
        settings.analytics_retention_ms = Some(days.saturating_mul(86_400_000));
    }
    if let Some(file) = &project.ai_config {
        settings.ai = Some(std::sync::Arc::new(hearth_ai::Ai::new(
            super::ai::load_config(file)?,
        )));
    }
    Ok(settings)
}

/// How many days Analytics Engine keeps points (default: Cloudflare's
/// three months, 92 days).
pub const ANALYTICS_RETENTION_ENV: &str = "HEARTH_ANALYTICS_RETENTION_DAYS";

/// Opens `<data>/workflows.sqlite` for the CLI, as `serve` does.
pub fn open_workflows(project: &Project) -> Result<WorkflowEngine> {
    let settings = kind_settings(project)?;
    Ok(open_engine(
        &project.data_dir,
        project.clock.clone(),
        settings.workflow_lease_ms,
    )?)
}

/// Opens `<data>/queues.sqlite` for the CLI with the config's producers
/// and consumers, as `serve` does.
pub fn open_broker(project: &Project) -> Result<hearth_queues::QueueBroker> {
    let broker = open_queue_broker(&project.data_dir, project.clock.clone())?;
    configure_queue_broker(&broker, &project.config)?;
    Ok(broker)
}
