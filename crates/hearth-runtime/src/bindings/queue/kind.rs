//! How `queues` is served: every queue of a data directory in one SQLite
//! file (so a move to a dead-letter queue is one transaction), a producer
//! adapter per binding, the push consumer task, and the pull endpoints.

use std::sync::Arc;

use hearth_config::{QueueConsumer, QueueConsumerType};
use hearth_core::SharedClock;
use hearth_queues::{
    ConsumerConfig, ConsumerType, JetStreamOptions, ProducerConfig, QueueBroker, QueueLimits,
};
use std::time::Duration;

use super::QueueAdapter;
use super::consumer::{QueueConsumerOptions, spawn_queue_consumer};
use super::pull::PullEndpoints;
use crate::bindings::registry::{
    BackgroundTask, BindingError, BindingKind, OpenContext, OpenedWorker, ServedConfig, TaskHandle,
};
use crate::pool::IsolatePool;

pub struct QueueKind;

/// How often a node looks for messages other nodes sent, on JetStream.
const JETSTREAM_POLL_INTERVAL: Duration = Duration::from_millis(100);

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

/// Sets a config's consumers on `broker` and declares its producers' queues.
pub fn configure_broker(
    broker: &QueueBroker,
    config: &hearth_config::Config,
) -> Result<(), BindingError> {
    let at = |field: &str, e: &dyn std::fmt::Display| {
        BindingError::new(format!("{}: {field}: {e}", config.path.display()))
    };
    for c in &config.queues.consumers {
        broker
            .set_consumer(consumer_config(c))
            .map_err(|e| at("queues.consumers", &e))?;
    }
    for p in &config.queues.producers {
        broker
            .declare_queue(&p.queue)
            .map_err(|e| at("queues.producers", &e))?;
    }
    Ok(())
}

/// Opens `<data>/queues.sqlite`.
pub fn open_broker(
    data_dir: &hearth_core::DataDir,
    clock: SharedClock,
) -> Result<QueueBroker, BindingError> {
    let path = data_dir.queues();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| BindingError::new(format!("creating {}: {e}", dir.display())))?;
    }
    QueueBroker::open(&path, clock, QueueLimits::default())
        .map_err(|e| BindingError::new(format!("opening {}: {e}", path.display())))
}

impl BindingKind for QueueKind {
    fn section(&self) -> &'static str {
        "queues"
    }

    fn data_paths(&self) -> &'static [&'static str] {
        &["queues.sqlite"]
    }

    fn event_kinds(&self) -> &'static [&'static str] {
        &["queue"]
    }

    fn cli_verbs(&self) -> &'static [&'static str] {
        &["queues list", "queues send", "queues inspect"]
    }

    /// A queue has one consumer across every worker served (as in one
    /// Cloudflare account): two claiming it would fight over its messages.
    fn check(&self, served: &[ServedConfig<'_>]) -> Result<(), BindingError> {
        let mut seen: Vec<(&str, &hearth_config::Config)> = Vec::new();
        for s in served {
            for c in &s.config.queues.consumers {
                if let Some((_, first)) = seen.iter().find(|(q, _)| *q == c.queue) {
                    return Err(BindingError::new(format!(
                        "{}: queues.consumers: queue {:?} already has a consumer in {} (worker {:?}); a queue has exactly one consumer, so remove one of them",
                        s.config.path.display(),
                        c.queue,
                        first.path.display(),
                        first.name,
                    )));
                }
                seen.push((&c.queue, s.config));
            }
        }
        Ok(())
    }

    fn open(&self, cx: &mut OpenContext<'_>, out: &mut OpenedWorker) -> Result<(), BindingError> {
        let config = cx.config;
        if config.queues.producers.is_empty() && config.queues.consumers.is_empty() {
            return Ok(());
        }
        let (data_dir, clock) = (cx.data_dir, cx.clock.clone());
        let jetstream = cx
            .settings
            .cluster
            .as_ref()
            .and_then(|node| node.nats().cloned().zip(node.config().nats.clone()));
        let broker = match jetstream {
            Some((nats, config)) => cx.shared("queues:jetstream", || {
                let options = JetStreamOptions {
                    ack_wait_ms: config.ack_wait_ms,
                    replicas: config.replicas,
                    ..JetStreamOptions::default()
                };
                QueueBroker::open_jetstream(nats, options, clock, QueueLimits::default())
                    .map_err(|e| BindingError::new(format!("opening Queues on JetStream: {e}")))
            })?,
            None => {
                let key = data_dir.queues().display().to_string();
                cx.shared(&key, || open_broker(data_dir, clock))?
            }
        };
        let on_jetstream = broker.describe().starts_with("jetstream:");
        configure_broker(&broker, config)?;
        let push: Vec<String> = config
            .queues
            .consumers
            .iter()
            .filter(|c| c.consumer_type == QueueConsumerType::Worker)
            .map(|c| c.queue.clone())
            .collect();
        let mut options = QueueConsumerOptions::new(push);
        if on_jetstream {
            // Sends from other nodes wake nothing here; look often.
            options.poll_interval = JETSTREAM_POLL_INTERVAL;
        }
        let backend = broker.describe();
        for p in &config.queues.producers {
            let producer = broker
                .producer(
                    &p.queue,
                    ProducerConfig {
                        delivery_delay: p.delivery_delay,
                    },
                )
                .map_err(|e| cx.error("queues.producers", &p.binding, e))?;
            out.worker.bindings.push(Arc::new(
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
            out.tasks.push(Arc::new(PushConsumer {
                broker: broker.clone(),
                clock: cx.clock.clone(),
                options,
            }));
        }
        out.routes.push(Arc::new(PullEndpoints::new(broker)));
        Ok(())
    }
}

/// The push consumer of one worker's queues.
struct PushConsumer {
    broker: QueueBroker,
    clock: SharedClock,
    options: QueueConsumerOptions,
}

impl BackgroundTask for PushConsumer {
    fn start(&self, pool: &IsolatePool) -> Result<TaskHandle, BindingError> {
        spawn_queue_consumer(
            pool.clone(),
            self.broker.clone(),
            self.clock.clone(),
            self.options.clone(),
        )
        .map_err(|e| BindingError::new(format!("starting the queue consumer: {e}")))
    }
}
