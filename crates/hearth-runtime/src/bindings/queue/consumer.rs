//! The push consumer: a task that hands due batches of the worker's
//! consumed queues to its `queue()` handler and settles them.
//!
//! The loop leases every batch the broker says is due (the broker enforces
//! `max_batch_size`, `max_batch_timeout` and `max_concurrency`), runs each
//! in the isolate pool concurrently, and settles it with the handler's
//! outcome. Then it sleeps until [`QueueBroker::next_due`], a wake-up (a
//! producer committed a send, or a batch was settled), or the poll interval
//! (a send from another process, e.g. `hearth queues send`). All deadlines
//! come from the injected clock; the poll interval bounds how late a
//! deadline on a clock that jumps (a test clock) is noticed.

use std::sync::Arc;
use std::time::Duration;

use hearth_core::SharedClock;
use hearth_queues::{LeasedBatch, QueueBroker, QueueError};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::bindings::registry::TaskHandle;
use crate::pool::IsolatePool;

/// Longest sleep between looks at the queues when nothing is due.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest sleep while a batch is due but cannot be leased yet (all
/// `max_concurrency` batches are out), so the loop never spins.
const MIN_WAIT: Duration = Duration::from_millis(20);

/// What the consumer task needs.
#[derive(Debug, Clone)]
pub struct QueueConsumerOptions {
    /// Queues whose Worker consumer is this worker (set on the broker with
    /// [`QueueBroker::set_consumer`]).
    pub queues: Vec<String>,
    /// Shared with the producer adapters ([`crate::bindings::QueueAdapter::notify_on_send`]).
    pub wake: Arc<Notify>,
    pub poll_interval: Duration,
}

impl QueueConsumerOptions {
    pub fn new(queues: Vec<String>) -> Self {
        Self {
            queues,
            wake: Arc::new(Notify::new()),
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }
}

/// Expires push leases a previous process left behind, then starts the
/// consumer loop on the current tokio runtime.
pub fn spawn_queue_consumer(
    pool: IsolatePool,
    broker: QueueBroker,
    clock: SharedClock,
    options: QueueConsumerOptions,
) -> Result<TaskHandle, QueueError> {
    let recovered = broker.recover_push_leases()?;
    if recovered > 0 {
        tracing::warn!(target: "hearth::queues", "redelivering {recovered} message(s) whose handler was interrupted by a restart");
    }
    let wake = options.wake.clone();
    crate::bindings::registry::wake_on_jump(&clock, &wake);
    Ok(TaskHandle::spawn(wake, |stop| {
        run(pool, broker, clock, options, stop)
    }))
}

async fn run(
    pool: IsolatePool,
    broker: QueueBroker,
    clock: SharedClock,
    options: QueueConsumerOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut in_flight: JoinSet<()> = JoinSet::new();
    let mut next_id: u64 = 0;
    loop {
        if *stop.borrow() {
            break;
        }
        let mut leased = 0usize;
        for queue in &options.queues {
            loop {
                let b = broker.clone();
                let q = queue.clone();
                let next = tokio::task::spawn_blocking(move || b.next_push_batch(&q)).await;
                let batch = match next {
                    Ok(Ok(Some(batch))) => batch,
                    Ok(Ok(None)) => break,
                    Ok(Err(e)) => {
                        tracing::error!(target: "hearth::queues", queue = %queue, "cannot lease a batch: {e}");
                        break;
                    }
                    Err(e) => {
                        tracing::error!(target: "hearth::queues", queue = %queue, "lease task failed: {e}");
                        break;
                    }
                };
                leased += 1;
                next_id += 1;
                let id = format!("queue-{}-{next_id}", batch.queue);
                let pool = pool.clone();
                let broker = broker.clone();
                let wake = options.wake.clone();
                in_flight.spawn(async move {
                    deliver(&pool, &broker, id, batch).await;
                    wake.notify_one();
                });
            }
        }
        while in_flight.try_join_next().is_some() {}
        if leased > 0 {
            continue;
        }
        let wait = {
            let b = broker.clone();
            let due = tokio::task::spawn_blocking(move || b.next_due())
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            let now = clock.now_ms();
            match due {
                Some(at) => Duration::from_millis(at.saturating_sub(now)).max(MIN_WAIT),
                None => options.poll_interval,
            }
            .min(options.poll_interval)
        };
        tokio::select! {
            _ = options.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// Runs one batch through `queue()` and settles it durably.
async fn deliver(pool: &IsolatePool, broker: &QueueBroker, id: String, batch: LeasedBatch) {
    let result = pool.queue(id.clone(), &batch).await;
    let count = batch.messages.len();
    let queue = batch.queue.clone();
    let b = broker.clone();
    let outcome = result.outcome;
    let settled = tokio::task::spawn_blocking(move || b.settle(&batch, &outcome)).await;
    match settled {
        Ok(Ok(r)) => {
            tracing::info!(
                target: "hearth::queues",
                request_id = %id,
                queue = %queue,
                "delivered {count} message(s): {} acked, {} retried, {} dead-lettered, {} dropped{}",
                r.acked,
                r.retried,
                r.dead_lettered,
                r.dropped,
                match &result.error {
                    Some(_) => " (the handler threw)",
                    None => "",
                }
            );
            if r.dropped > 0 {
                tracing::warn!(target: "hearth::queues", queue = %queue, "{} message(s) exhausted their retries and were dropped (no dead_letter_queue)", r.dropped);
            }
        }
        Ok(Err(e)) => {
            tracing::error!(target: "hearth::queues", request_id = %id, queue = %queue, "cannot settle batch: {e}; its messages return when the lease lapses")
        }
        Err(e) => {
            tracing::error!(target: "hearth::queues", request_id = %id, "settle task failed: {e}")
        }
    }
}
