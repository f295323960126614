//! How `triggers.crons` is served: the last fired slot of every worker's
//! triggers in one SQLite file, and the task that fires due ones (in
//! cluster mode, only the slots this node claims in PostgreSQL).

use std::sync::Arc;

use hearth_core::SharedClock;
use hearth_cron::{CronScheduler, SlotClaims};

use super::{CronOptions, spawn_cron};
use crate::bindings::registry::{
    BackgroundTask, BindingError, BindingKind, OpenContext, OpenedWorker, TaskHandle,
};
use crate::pool::IsolatePool;

pub struct CronKind;

impl BindingKind for CronKind {
    fn section(&self) -> &'static str {
        "triggers"
    }

    fn data_paths(&self) -> &'static [&'static str] {
        &["cron.sqlite"]
    }

    fn event_kinds(&self) -> &'static [&'static str] {
        &["scheduled"]
    }

    fn open(&self, cx: &mut OpenContext<'_>, out: &mut OpenedWorker) -> Result<(), BindingError> {
        let config = cx.config;
        out.crons = config.triggers.crons.clone();
        if config.triggers.crons.is_empty() {
            return Ok(());
        }
        let path = cx.data_dir.cron();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| BindingError::new(format!("creating {}: {e}", dir.display())))?;
        }
        let scheduler = CronScheduler::open(
            &path,
            &config.name,
            &config.triggers.crons,
            cx.clock.clone(),
        )
        .map_err(|e| {
            // A broken state file is not a mistake in the config.
            if e.is_storage() {
                BindingError::new(e.to_string())
            } else {
                BindingError::new(format!("{}: triggers.crons: {e}", config.path.display()))
            }
        })?;
        let claims = cx
            .settings
            .cluster
            .as_ref()
            .map(|node| node.cron_claims() as Arc<dyn SlotClaims>);
        out.tasks.push(Arc::new(CronTask {
            scheduler: Arc::new(scheduler),
            clock: cx.clock.clone(),
            claims,
        }));
        Ok(())
    }
}

/// The cron loop of one worker.
struct CronTask {
    scheduler: Arc<CronScheduler>,
    clock: SharedClock,
    /// Cluster mode: which node fires each slot.
    claims: Option<Arc<dyn SlotClaims>>,
}

impl BackgroundTask for CronTask {
    fn start(&self, pool: &IsolatePool) -> Result<TaskHandle, BindingError> {
        Ok(spawn_cron(
            pool.clone(),
            self.scheduler.clone(),
            self.clock.clone(),
            CronOptions {
                claims: self.claims.clone(),
                ..CronOptions::default()
            },
        ))
    }
}
