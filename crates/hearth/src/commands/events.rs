//! What `hearth serve` runs beside HTTP: Queues (producer bindings, the push
//! consumer task, the broker behind the pull endpoints), cron triggers and
//! Workflows (their bindings and the runner task).
//!
//! Queues live in `<data>/queues.sqlite`, cron cursors in `<data>/cron.sqlite`,
//! Workflows in `<data>/workflows.sqlite`; all read the project's clock.

use std::sync::Arc;

use anyhow::{Context, Result};
use hearth_config::{QueueConsumer, QueueConsumerType};
use hearth_cron::CronScheduler;
use hearth_queues::{ConsumerConfig, ConsumerType, ProducerConfig, QueueBroker, QueueLimits};
use hearth_runtime::bindings::QueueAdapter;
use hearth_runtime::cron::{CronHandle, CronOptions, spawn_cron};
use hearth_runtime::queue_consumer::{
    QueueConsumerHandle, QueueConsumerOptions, spawn_queue_consumer,
};
use hearth_runtime::workflows::{
    WorkflowRunnerHandle, WorkflowRunnerOptions, Workflows, spawn_workflow_runner,
};
use hearth_runtime::{BindingAdapter, IsolatePool};
use hearth_workflows::{WorkflowEngine, WorkflowLimits};

use crate::project::Project;

/// The opened broker and scheduler, before the server starts.
pub struct EventSources {
    broker: Option<QueueBroker>,
    consumer: Option<QueueConsumerOptions>,
    adapters: Vec<Arc<dyn BindingAdapter>>,
    cron: Option<Arc<CronScheduler>>,
    workflows: Option<Arc<Workflows>>,
    project_clock: hearth_core::SharedClock,
}

/// The tasks started by [`EventSources::start`].
pub struct Running {
    consumer: Option<QueueConsumerHandle>,
    cron: Option<CronHandle>,
    workflows: Option<WorkflowRunnerHandle>,
}

impl Running {
    /// Stops leasing batches and firing crons; waits for batches in flight.
    pub async fn stop(self) {
        if let Some(w) = self.workflows {
            w.stop().await;
        }
        if let Some(c) = self.cron {
            c.stop().await;
        }
        if let Some(c) = self.consumer {
            c.stop().await;
        }
    }
}

/// Maps a configured consumer onto the broker's.
pub fn consumer_config(c: &QueueConsumer) -> ConsumerConfig {
    let narrow = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    ConsumerConfig {
        queue: c.queue.clone(),
        consumer_type: match c.consumer_type {
            QueueConsumerType::Worker => ConsumerType::Worker,
            QueueConsumerType::HttpPull => ConsumerType::HttpPull,
        },
        max_batch_size: narrow(c.max_batch_size),
        max_batch_timeout_secs: narrow(c.max_batch_timeout),
        max_retries: narrow(c.max_retries),
        dead_letter_queue: c.dead_letter_queue.clone(),
        max_concurrency: c.max_concurrency.map(narrow),
        retry_delay_secs: c.retry_delay,
        visibility_timeout_ms: c.visibility_timeout_ms,
    }
}

/// Opens the queues database with the config's producers and consumers.
pub fn open_broker(project: &Project) -> Result<QueueBroker> {
    let path = project.data_dir.queues();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let broker = QueueBroker::open(&path, project.clock.clone(), QueueLimits::default())
        .with_context(|| format!("opening {}", path.display()))?;
    let config = &project.config;
    for c in &config.queues.consumers {
        broker
            .set_consumer(consumer_config(c))
            .with_context(|| format!("{}: queues.consumers", config.path.display()))?;
    }
    for p in &config.queues.producers {
        broker
            .declare_queue(&p.queue)
            .with_context(|| format!("{}: queues.producers", config.path.display()))?;
    }
    Ok(broker)
}

/// Opens what the config asks for; nothing when it has no queues or crons.
pub fn open(project: &Project) -> Result<EventSources> {
    let config = &project.config;
    let uses_queues = !config.queues.producers.is_empty() || !config.queues.consumers.is_empty();
    let mut sources = EventSources {
        broker: None,
        consumer: None,
        adapters: Vec::new(),
        cron: None,
        workflows: None,
        project_clock: project.clock.clone(),
    };
    if uses_queues {
        let broker = open_broker(project)?;
        let push: Vec<String> = config
            .queues
            .consumers
            .iter()
            .filter(|c| c.consumer_type == QueueConsumerType::Worker)
            .map(|c| c.queue.clone())
            .collect();
        let options = QueueConsumerOptions::new(push);
        let backend = format!("sqlite:{}", broker.path().display());
        for p in &config.queues.producers {
            let producer = broker
                .producer(
                    &p.queue,
                    ProducerConfig {
                        delivery_delay: p.delivery_delay,
                    },
                )
                .with_context(|| {
                    format!("{}: queues.producers: {}", config.path.display(), p.binding)
                })?;
            sources.adapters.push(Arc::new(
                QueueAdapter::new(&p.binding, producer)
                    .with_compatibility(
                        config.compatibility_date.as_deref(),
                        &config.compatibility_flags,
                    )
                    .with_backend(backend.clone())
                    .notify_on_send(options.wake.clone()),
            ));
        }
        if !options.queues.is_empty() {
            sources.consumer = Some(options);
        }
        sources.broker = Some(broker);
    }
    if !config.triggers.crons.is_empty() {
        let path = project.data_dir.cron();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let scheduler = CronScheduler::open(
            &path,
            &config.name,
            &config.triggers.crons,
            project.clock.clone(),
        )
        .map_err(|e| {
            // A broken state file is not a mistake in the config.
            if e.is_storage() {
                anyhow::Error::new(e)
            } else {
                anyhow::Error::new(e).context(format!("{}: triggers.crons", config.path.display()))
            }
        })?;
        sources.cron = Some(Arc::new(scheduler));
    }
    if !config.workflows.is_empty() {
        let engine = Arc::new(open_workflows(project)?);
        let workflows = Workflows::new(
            engine,
            config
                .workflows
                .iter()
                .map(|w| (w.name.clone(), w.class_name.clone())),
        );
        for w in &config.workflows {
            if let Some(script) = &w.script_name {
                anyhow::bail!(
                    "{}: workflows: {}: script_name = {script:?} names another worker, but a Workflow's class must be exported by this worker; export class {} here and remove script_name",
                    config.path.display(),
                    w.binding,
                    w.class_name
                );
            }
            if let Some(adapter) = workflows.adapter(&w.binding, &w.name) {
                sources.adapters.push(Arc::new(adapter));
            }
        }
        sources.workflows = Some(workflows);
    }
    Ok(sources)
}

/// How long a run may go silent before another runner may take it over;
/// a run whose server was killed resumes this long after its last step
/// call (plus the step's timeout if an attempt was running). Read from
/// `HEARTH_WORKFLOW_LEASE_MS` so tests and impatient operators can shorten it.
pub const WORKFLOW_LEASE_ENV: &str = "HEARTH_WORKFLOW_LEASE_MS";

/// Opens `<data>/workflows.sqlite`, which `serve` and the CLI share.
pub fn open_workflows(project: &Project) -> Result<WorkflowEngine> {
    let path = project.data_dir.workflows();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut limits = WorkflowLimits::default();
    if let Ok(v) = std::env::var(WORKFLOW_LEASE_ENV) {
        limits.lease_ms = v.parse().with_context(|| {
            format!("{WORKFLOW_LEASE_ENV}={v:?} is not a number of milliseconds")
        })?;
    }
    WorkflowEngine::open(&path, project.clock.clone(), limits)
        .with_context(|| format!("opening {}", path.display()))
}

impl EventSources {
    /// The producer bindings, to add to the worker's `env`.
    pub fn adapters(&self) -> Vec<Arc<dyn BindingAdapter>> {
        self.adapters.clone()
    }

    /// The Workflows the worker runs, for its `WorkerConfig`.
    pub fn workflows(&self) -> Option<Arc<Workflows>> {
        self.workflows.clone()
    }

    /// The broker, for the pull-consumer endpoints.
    pub fn broker(&self) -> Option<QueueBroker> {
        self.broker.clone()
    }

    /// Starts the push consumer (after expiring leases a previous process
    /// left), the cron loop and the Workflows runner. Call inside the tokio
    /// runtime.
    pub fn start(&self, pool: &IsolatePool) -> Result<Running> {
        let consumer = match (&self.broker, &self.consumer) {
            (Some(broker), Some(options)) => Some(
                spawn_queue_consumer(
                    pool.clone(),
                    broker.clone(),
                    self.project_clock.clone(),
                    options.clone(),
                )
                .context("starting the queue consumer")?,
            ),
            _ => None,
        };
        let cron = self.cron.as_ref().map(|scheduler| {
            spawn_cron(
                pool.clone(),
                scheduler.clone(),
                self.project_clock.clone(),
                CronOptions::default(),
            )
        });
        let workflows = self.workflows.as_ref().map(|w| {
            spawn_workflow_runner(
                pool.clone(),
                w.clone(),
                self.project_clock.clone(),
                WorkflowRunnerOptions::default(),
            )
        });
        Ok(Running {
            consumer,
            cron,
            workflows,
        })
    }
}
