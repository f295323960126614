//! What `hearth serve` runs beside HTTP: Queues (producer bindings, the push
//! consumer task, the broker behind the pull endpoints), cron triggers and
//! Workflows (their bindings and the runner task).
//!
//! Queues live in `<data>/queues.sqlite`, cron cursors in `<data>/cron.sqlite`,
//! Workflows in `<data>/workflows.sqlite`; all read the project's clock.
//!
//! Every served worker opens its own sources. Workers sharing a data
//! directory share one broker and one Workflows engine ([`Stores`]): each
//! consumes only the queues whose consumer it declares, claims only its own
//! workflows' runs, and keeps its cron cursors under its name.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
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

/// One worker's event sources and the tasks running them, which follow the
/// worker's isolates: `hearth dev` restarts them on the new isolates after a
/// reload, since the old ones are stopped.
pub struct WorkerEvents {
    sources: EventSources,
    running: tokio::sync::Mutex<Option<Running>>,
}

impl WorkerEvents {
    pub fn new(sources: EventSources) -> Self {
        Self {
            sources,
            running: tokio::sync::Mutex::new(None),
        }
    }

    /// Stops the tasks (if running) and starts them on `pool`.
    pub async fn start(&self, pool: &IsolatePool) -> Result<()> {
        let mut running = self.running.lock().await;
        if let Some(old) = running.take() {
            old.stop().await;
        }
        *running = Some(self.sources.start(pool)?);
        Ok(())
    }

    /// Stops the tasks; waits for batches and runs in flight.
    pub async fn stop(&self) {
        if let Some(r) = self.running.lock().await.take() {
            r.stop().await;
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

/// The queue brokers and Workflows engines opened so far, one per data
/// directory, so workers that share a directory share them: a broker
/// recovers at start only the leases it did not take itself, and one
/// connection per file keeps writers from waiting on each other.
#[derive(Default)]
pub struct Stores {
    brokers: Vec<(PathBuf, QueueBroker)>,
    engines: Vec<(PathBuf, Arc<WorkflowEngine>)>,
}

impl Stores {
    fn broker(&mut self, project: &Project) -> Result<QueueBroker> {
        let path = project.data_dir.queues();
        if let Some((_, b)) = self.brokers.iter().find(|(p, _)| *p == path) {
            configure_broker(b, project)?;
            return Ok(b.clone());
        }
        let broker = open_broker(project)?;
        self.brokers.push((path, broker.clone()));
        Ok(broker)
    }

    fn engine(&mut self, project: &Project) -> Result<Arc<WorkflowEngine>> {
        let path = project.data_dir.workflows();
        if let Some((_, e)) = self.engines.iter().find(|(p, _)| *p == path) {
            return Ok(e.clone());
        }
        let engine = Arc::new(open_workflows(project)?);
        self.engines.push((path, engine.clone()));
        Ok(engine)
    }
}

/// A queue has one consumer and a workflow name one class, across every
/// worker served (as in one Cloudflare account): two configs claiming the
/// same would fight over its messages or runs.
pub fn check_owners(projects: &[Project]) -> Result<()> {
    let mut consumers: Vec<(&str, &Project)> = Vec::new();
    let mut workflows: Vec<(&str, &Project)> = Vec::new();
    for p in projects {
        for c in &p.config.queues.consumers {
            if let Some((_, first)) = consumers.iter().find(|(q, _)| *q == c.queue) {
                bail!(
                    "{}: queues.consumers: queue {:?} already has a consumer in {} (worker {:?}); a queue has exactly one consumer, so remove one of them",
                    p.config.path.display(),
                    c.queue,
                    first.config.path.display(),
                    first.config.name,
                );
            }
            consumers.push((&c.queue, p));
        }
        for w in &p.config.workflows {
            if let Some((_, first)) = workflows.iter().find(|(n, _)| *n == w.name) {
                bail!(
                    "{}: workflows: {}: the workflow name {:?} is already used by {} (worker {:?}); workflow names are unique across workers, so rename one of them",
                    p.config.path.display(),
                    w.binding,
                    w.name,
                    first.config.path.display(),
                    first.config.name,
                );
            }
            workflows.push((&w.name, p));
        }
    }
    Ok(())
}

/// Opens the queues database with the config's producers and consumers.
pub fn open_broker(project: &Project) -> Result<QueueBroker> {
    let path = project.data_dir.queues();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let broker = QueueBroker::open(&path, project.clock.clone(), QueueLimits::default())
        .with_context(|| format!("opening {}", path.display()))?;
    configure_broker(&broker, project)?;
    Ok(broker)
}

/// Sets the config's consumers and declares its producers' queues.
fn configure_broker(broker: &QueueBroker, project: &Project) -> Result<()> {
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
    Ok(())
}

/// Opens what the config asks for; nothing when it has no queues or crons.
/// Brokers and engines come from `stores`, shared by the workers of one
/// data directory.
pub fn open(project: &Project, stores: &mut Stores) -> Result<EventSources> {
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
        let broker = stores.broker(project)?;
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
        let engine = stores.engine(project)?;
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
