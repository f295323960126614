//! Cloudflare Queues: the [`QueueBroker`] every producer and consumer uses,
//! with its embedded SQLite backend.
//!
//! - Producers ([`QueueProducer`], or [`QueueBroker::send`] /
//!   [`QueueBroker::send_batch`]) mirror `send(body, {contentType,
//!   delaySeconds})` and `sendBatch(messages, {delaySeconds})`, with
//!   Cloudflare's limits ([`QueueLimits`]) and messages ([`QueueError`]).
//! - Push consumers: [`QueueBroker::next_push_batch`] hands out a leased
//!   batch once `max_batch_size` messages are ready or the oldest ready one
//!   has waited `max_batch_timeout`; [`QueueBroker::settle`] applies the
//!   handler's [`BatchOutcome`]. [`QueueBroker::next_due`] says when to look
//!   again; [`QueueBroker::tick`] drives it all for a synchronous handler.
//! - Pull consumers: [`QueueBroker::pull`] and [`QueueBroker::ack`], with
//!   lease ids and visibility timeouts as in Cloudflare's HTTP API.
//! - After `max_retries` failed deliveries a message moves to the consumer's
//!   `dead_letter_queue` (an ordinary queue; attempts start again) or is
//!   dropped with a warning.
//!
//! Guarantees:
//! - A send that returned `Ok` is committed (SQLite WAL, `synchronous=FULL`).
//!   An ack that returned `Ok` is a committed delete: never redelivered.
//! - Delivery is at least once. Leases are stored with their expiry; an
//!   expired lease counts as a failed attempt and the message returns.
//! - After a restart, push leases of the previous process can never be
//!   settled (their handler is gone), so [`QueueBroker::recover_push_leases`]
//!   expires them at once; pull leases are held by HTTP clients that outlive
//!   the server, so they keep their visibility timeout.
//! - All time comes from the injected [`SharedClock`].
//!
//! This crate knows nothing of JavaScript or HTTP.

mod backend;
mod error;
pub mod jetstream;
mod outcome;
mod sqlite;
pub mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use hearth_core::SharedClock;

pub use error::{QueueError, Result, SendOp};
pub use outcome::{BatchOutcome, MessageDecision};
pub use validate::QueueLimits;

use backend::Backend;
pub use jetstream::JetStreamOptions;
use sqlite::{Ctx, NewMessage, Store};

/// How a message body is encoded, as `contentType` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum QueueContentType {
    Text,
    Bytes,
    Json,
    /// The structured-clone encoding; the Workers default when no
    /// `contentType` is given.
    #[default]
    V8,
}

impl QueueContentType {
    /// Parses a `contentType` option; like Workers, case-insensitively.
    pub fn parse(value: &str) -> Result<Self> {
        match value.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "bytes" => Ok(Self::Bytes),
            "json" => Ok(Self::Json),
            "v8" => Ok(Self::V8),
            _ => Err(QueueError::UnsupportedContentType {
                value: value.to_owned(),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Bytes => "bytes",
            Self::Json => "json",
            Self::V8 => "v8",
        }
    }
}

impl fmt::Display for QueueContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of `send()`. `delay_seconds` is a JavaScript number.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueSendOptions {
    pub content_type: QueueContentType,
    pub delay_seconds: Option<f64>,
}

/// One entry of `sendBatch()`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageSendRequest {
    pub body: Vec<u8>,
    pub content_type: QueueContentType,
    /// Beats the batch's and the producer's delay.
    pub delay_seconds: Option<f64>,
}

impl MessageSendRequest {
    pub fn new(body: impl Into<Vec<u8>>, content_type: QueueContentType) -> Self {
        Self {
            body: body.into(),
            content_type,
            delay_seconds: None,
        }
    }
}

/// Options of `sendBatch()`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueSendBatchOptions {
    pub delay_seconds: Option<f64>,
}

/// Options of `retry()` / `retryAll()`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueRetryOptions {
    pub delay_seconds: Option<f64>,
}

/// A producer binding's settings (`[[queues.producers]]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Seconds every message sent through this producer is delayed, unless
    /// the call gives its own `delaySeconds` (0 included).
    pub delivery_delay: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerType {
    /// The Worker's `queue()` handler receives batches.
    Worker,
    /// Messages are pulled over HTTP.
    HttpPull,
}

/// A queue's consumer (`[[queues.consumers]]`), Cloudflare's defaults from
/// [`ConsumerConfig::worker`] / [`ConsumerConfig::http_pull`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    pub queue: String,
    pub consumer_type: ConsumerType,
    pub max_batch_size: u32,
    pub max_batch_timeout_secs: u32,
    /// Failed deliveries after the first before the message is dead-lettered
    /// or dropped: a message is delivered at most `max_retries + 1` times.
    pub max_retries: u32,
    pub dead_letter_queue: Option<String>,
    /// Push batches in flight at once; `None`: up to
    /// [`QueueLimits::max_concurrency`].
    pub max_concurrency: Option<u32>,
    /// Seconds before a retried message is delivered again, unless the retry
    /// gives its own delay.
    pub retry_delay_secs: Option<u64>,
    /// Default visibility timeout of a pull.
    pub visibility_timeout_ms: Option<u64>,
}

impl ConsumerConfig {
    pub fn worker(queue: impl Into<String>) -> Self {
        Self {
            queue: queue.into(),
            consumer_type: ConsumerType::Worker,
            max_batch_size: validate::DEFAULT_MAX_BATCH_SIZE,
            max_batch_timeout_secs: validate::DEFAULT_MAX_BATCH_TIMEOUT_SECS,
            max_retries: validate::DEFAULT_MAX_RETRIES,
            dead_letter_queue: None,
            max_concurrency: None,
            retry_delay_secs: None,
            visibility_timeout_ms: None,
        }
    }

    pub fn http_pull(queue: impl Into<String>) -> Self {
        Self {
            consumer_type: ConsumerType::HttpPull,
            ..Self::worker(queue)
        }
    }
}

/// A message as a consumer receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// 32 lowercase hex characters; kept when moved to a dead-letter queue.
    pub id: String,
    /// When it was first sent, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    pub body: Vec<u8>,
    pub content_type: QueueContentType,
    /// Deliveries so far, this one included: 1 on the first.
    pub attempts: u32,
}

/// A batch leased to a push consumer until it is settled or
/// `lease_expires_at_ms` passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedBatch {
    pub queue: String,
    pub messages: Vec<Message>,
    pub lease_expires_at_ms: u64,
    lease_id: String,
    seqs: Vec<i64>,
    /// JetStream: each message's ack subject, in `messages` order.
    acks: Vec<String>,
    max_delay_secs: u64,
}

impl LeasedBatch {
    pub fn lease_id(&self) -> &str {
        &self.lease_id
    }

    /// An empty outcome for this batch (no calls, handler returned: ack all).
    pub fn outcome(&self) -> BatchOutcome {
        BatchOutcome::with_max_delay(self.max_delay_secs)
    }
}

/// What settling a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettleReport {
    pub acked: usize,
    pub retried: usize,
    pub dead_lettered: usize,
    pub dropped: usize,
    /// Messages to retry whose lease had already lapsed and been given back:
    /// the lapse counted as their failed attempt.
    pub stale: usize,
}

impl SettleReport {
    fn add(&mut self, o: &SettleReport) {
        self.acked += o.acked;
        self.retried += o.retried;
        self.dead_lettered += o.dead_lettered;
        self.dropped += o.dropped;
        self.stale += o.stale;
    }
}

/// What one [`QueueBroker::tick`] delivered and how it was settled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    pub batches: usize,
    pub messages: usize,
    pub settled: SettleReport,
}

/// Options of a pull; JavaScript/JSON numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullOptions {
    /// 1..=100, default 5.
    pub batch_size: Option<f64>,
    /// Milliseconds, up to 12 hours; default the consumer's
    /// `visibility_timeout_ms`, else 30 s.
    pub visibility_timeout_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledMessage {
    /// Opaque; acknowledges or retries this delivery.
    pub lease_id: String,
    pub id: String,
    pub timestamp_ms: u64,
    pub body: Vec<u8>,
    pub content_type: QueueContentType,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullResponse {
    pub messages: Vec<PulledMessage>,
    /// Messages left in the queue and not leased (ready or delayed).
    pub message_backlog_count: u64,
}

/// One entry of `retries` in an ack request.
#[derive(Debug, Clone, PartialEq)]
pub struct PullRetry {
    pub lease_id: String,
    pub delay_seconds: Option<f64>,
}

/// The answer to an ack request: `ackCount`, `retryCount`, `warnings`.
/// Unknown or lapsed lease ids are not errors, as on Cloudflare; each one
/// not applied gets a warning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckResponse {
    pub ack_count: usize,
    pub retry_count: usize,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages waiting: `visible + delayed`.
    pub depth: u64,
    pub visible: u64,
    pub delayed: u64,
    /// Leased to a consumer and not yet settled.
    pub in_flight: u64,
    /// Age of the oldest message in the queue (any state).
    pub oldest_age_ms: Option<u64>,
    /// Every message in the consumer's dead-letter queue, if it has one.
    pub dlq_depth: Option<u64>,
}

/// The broker: one SQLite file holding every queue, or (cluster mode) one
/// JetStream stream per queue. Cheap to clone; all clones share one
/// connection. `Send + Sync`.
#[derive(Debug, Clone)]
pub struct QueueBroker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Box<dyn Backend>,
    clock: SharedClock,
    limits: QueueLimits,
    consumers: RwLock<BTreeMap<String, ConsumerConfig>>,
    declared: RwLock<BTreeSet<String>>,
    /// Marks this broker's push leases, to tell them from a previous
    /// process's in [`QueueBroker::recover_push_leases`].
    instance: String,
}

impl QueueBroker {
    /// Opens (creating if needed) the queues database at `path`, usually
    /// `DataDir::queues()`.
    pub fn open(path: &Path, clock: SharedClock, limits: QueueLimits) -> Result<Self> {
        let store = Store::open(path)?;
        Self::with_backend(Box::new(store), clock, limits)
    }

    /// Every queue as JetStream streams on `nats` (cluster mode); see
    /// [`jetstream`] for how Cloudflare's semantics map onto JetStream.
    pub fn open_jetstream(
        nats: hearth_cluster::Nats,
        options: JetStreamOptions,
        clock: SharedClock,
        limits: QueueLimits,
    ) -> Result<Self> {
        let store = jetstream::JetStreamStore::new(nats, options, clock.clone());
        Self::with_backend(Box::new(store), clock, limits)
    }

    fn with_backend(
        store: Box<dyn Backend>,
        clock: SharedClock,
        limits: QueueLimits,
    ) -> Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                clock,
                limits,
                consumers: RwLock::new(BTreeMap::new()),
                declared: RwLock::new(BTreeSet::new()),
                instance: sqlite::random_hex()?,
            }),
        })
    }

    pub fn limits(&self) -> &QueueLimits {
        &self.inner.limits
    }

    /// Where the messages live, for health reports: `sqlite:<path>` or
    /// `jetstream:<url>`.
    pub fn describe(&self) -> String {
        self.inner.store.describe()
    }

    /// Deletes the streams of every queue this broker declared (JetStream
    /// only: tests clean up after themselves with it); a no-op on SQLite.
    pub fn delete_streams(&self) -> Result<()> {
        let queues: Vec<String> = read_lock(&self.inner.declared).iter().cloned().collect();
        self.inner.store.delete_queues(&queues)
    }

    /// Names a queue from the configuration, so it is listed while empty.
    pub fn declare_queue(&self, queue: &str) -> Result<()> {
        validate::queue_name(queue)?;
        write_lock(&self.inner.declared).insert(queue.to_owned());
        Ok(())
    }

    /// Sets (or replaces) the consumer of `config.queue`. Its dead-letter
    /// queue is declared too.
    pub fn set_consumer(&self, config: ConsumerConfig) -> Result<()> {
        validate::consumer(&config, &self.inner.limits)?;
        {
            let mut declared = write_lock(&self.inner.declared);
            declared.insert(config.queue.clone());
            if let Some(dlq) = &config.dead_letter_queue {
                declared.insert(dlq.clone());
            }
        }
        write_lock(&self.inner.consumers).insert(config.queue.clone(), config);
        Ok(())
    }

    pub fn consumer(&self, queue: &str) -> Option<ConsumerConfig> {
        read_lock(&self.inner.consumers).get(queue).cloned()
    }

    /// A producer bound to `queue`, as `env.<BINDING>` is.
    pub fn producer(&self, queue: &str, config: ProducerConfig) -> Result<QueueProducer> {
        validate::queue_name(queue)?;
        if let Some(d) = config.delivery_delay {
            validate::delivery_delay(queue, d, &self.inner.limits)?;
        }
        self.declare_queue(queue)?;
        Ok(QueueProducer {
            broker: self.clone(),
            queue: queue.to_owned(),
            delivery_delay: config.delivery_delay,
        })
    }

    /// `send()` without a producer delay. Returns the message id once the
    /// message is committed.
    pub fn send(&self, queue: &str, body: Vec<u8>, options: &QueueSendOptions) -> Result<String> {
        self.send_with(queue, None, body, options)
    }

    /// `sendBatch()` without a producer delay. All or nothing: returns the ids
    /// once every message is committed.
    pub fn send_batch(
        &self,
        queue: &str,
        messages: Vec<MessageSendRequest>,
        options: &QueueSendBatchOptions,
    ) -> Result<Vec<String>> {
        self.send_batch_with(queue, None, messages, options)
    }

    fn send_with(
        &self,
        queue: &str,
        delivery_delay: Option<u64>,
        body: Vec<u8>,
        options: &QueueSendOptions,
    ) -> Result<String> {
        let limits = &self.inner.limits;
        validate::queue_name(queue)?;
        validate::message_size(SendOp::Send, body.len(), limits)?;
        let delay = match options.delay_seconds {
            Some(d) => validate::send_delay(SendOp::Send, d, limits)?,
            None => delivery_delay.unwrap_or(0),
        };
        let now = self.now();
        let id = sqlite::random_hex()?;
        let message = NewMessage {
            id: id.clone(),
            timestamp_ms: now,
            content_type: options.content_type,
            body,
            visible_at: now.saturating_add(delay.saturating_mul(1000)),
        };
        self.inner
            .store
            .insert(&self.ctx_now(), queue, vec![message])?;
        Ok(id)
    }

    fn send_batch_with(
        &self,
        queue: &str,
        delivery_delay: Option<u64>,
        messages: Vec<MessageSendRequest>,
        options: &QueueSendBatchOptions,
    ) -> Result<Vec<String>> {
        let limits = &self.inner.limits;
        validate::queue_name(queue)?;
        let sizes: Vec<usize> = messages.iter().map(|m| m.body.len()).collect();
        validate::batch_sizes(&sizes, limits)?;
        let batch_delay = match options.delay_seconds {
            Some(d) => validate::send_delay(SendOp::SendBatch, d, limits)?,
            None => delivery_delay.unwrap_or(0),
        };
        let mut delays = Vec::with_capacity(messages.len());
        for m in &messages {
            delays.push(match m.delay_seconds {
                Some(d) => validate::send_delay(SendOp::SendBatch, d, limits)?,
                None => batch_delay,
            });
        }
        let now = self.now();
        let mut rows = Vec::with_capacity(messages.len());
        for (m, delay) in messages.into_iter().zip(delays) {
            rows.push(NewMessage {
                id: sqlite::random_hex()?,
                timestamp_ms: now,
                content_type: m.content_type,
                body: m.body,
                visible_at: now.saturating_add(delay.saturating_mul(1000)),
            });
        }
        let ids = rows.iter().map(|r| r.id.clone()).collect();
        self.inner.store.insert(&self.ctx_now(), queue, rows)?;
        Ok(ids)
    }

    /// The next batch for `queue`'s Worker consumer, leased to the caller, or
    /// `None` when no batch is due (too few ready messages and the oldest has
    /// not waited `max_batch_timeout`, or `max_concurrency` batches are out).
    pub fn next_push_batch(&self, queue: &str) -> Result<Option<LeasedBatch>> {
        let consumer = self.push_consumer(queue)?;
        let consumers = read_lock(&self.inner.consumers);
        let ctx = self.ctx(&consumers);
        self.inner
            .store
            .lease_push(&ctx, &consumer, &self.inner.instance)
    }

    /// Applies a handler's outcome to its batch, durably.
    pub fn settle(&self, batch: &LeasedBatch, outcome: &BatchOutcome) -> Result<SettleReport> {
        let consumers = read_lock(&self.inner.consumers);
        let ctx = self.ctx(&consumers);
        self.inner.store.settle(&ctx, batch, outcome)
    }

    /// When (ms since the epoch) a push batch may next be due or a lease
    /// lapses; `None` when nothing is pending. A value at or before now
    /// means "now".
    pub fn next_due(&self) -> Result<Option<u64>> {
        let consumers = read_lock(&self.inner.consumers);
        let ctx = self.ctx(&consumers);
        let push: Vec<&ConsumerConfig> = consumers
            .values()
            .filter(|c| c.consumer_type == ConsumerType::Worker)
            .collect();
        self.inner.store.next_due(&ctx, &push)
    }

    /// One round of push delivery for a synchronous handler: for every queue
    /// with a Worker consumer, leases at most one due batch, passes it to
    /// `handler` and settles it with the returned outcome. Call again (or at
    /// [`QueueBroker::next_due`]) for more.
    pub fn tick(
        &self,
        mut handler: impl FnMut(&LeasedBatch) -> BatchOutcome,
    ) -> Result<TickReport> {
        let queues: Vec<String> = read_lock(&self.inner.consumers)
            .values()
            .filter(|c| c.consumer_type == ConsumerType::Worker)
            .map(|c| c.queue.clone())
            .collect();
        let mut report = TickReport::default();
        for queue in queues {
            if let Some(batch) = self.next_push_batch(&queue)? {
                let outcome = handler(&batch);
                let settled = self.settle(&batch, &outcome)?;
                report.batches += 1;
                report.messages += batch.messages.len();
                report.settled.add(&settled);
            }
        }
        Ok(report)
    }

    /// Expires every push lease this broker did not take: after a restart
    /// their handlers are gone, so their messages are redelivered now (the
    /// lost delivery counts as a failed attempt) instead of after the push
    /// lease. Call once at start-up in the process that dispatches pushes.
    pub fn recover_push_leases(&self) -> Result<usize> {
        let consumers = read_lock(&self.inner.consumers);
        let ctx = self.ctx(&consumers);
        self.inner
            .store
            .recover_push_leases(&ctx, &self.inner.instance)
    }

    /// Pulls up to `batch_size` messages from a queue with an HTTP pull
    /// consumer, leasing each for the visibility timeout.
    pub fn pull(&self, queue: &str, options: &PullOptions) -> Result<PullResponse> {
        let consumer = self.consumer(queue);
        if consumer.as_ref().map(|c| c.consumer_type) != Some(ConsumerType::HttpPull) {
            return Err(QueueError::NotPullConsumer {
                queue: queue.to_owned(),
            });
        }
        let limits = &self.inner.limits;
        let batch_size = validate::pull_batch_size(options.batch_size, limits)?;
        let visibility_ms = match options.visibility_timeout_ms {
            Some(v) => validate::visibility_timeout(v, limits)?,
            None => consumer
                .and_then(|c| c.visibility_timeout_ms)
                .unwrap_or(validate::DEFAULT_VISIBILITY_TIMEOUT_MS),
        };
        let consumers = read_lock(&self.inner.consumers);
        let ctx = self.ctx(&consumers);
        self.inner
            .store
            .pull(&ctx, queue, batch_size, visibility_ms)
    }

    /// Acknowledges and/or retries pulled messages by lease id. Acks are
    /// applied even after the visibility timeout, as long as the message is
    /// still in the queue; a retry needs the lease to still be the message's
    /// current one.
    pub fn ack(&self, queue: &str, acks: &[String], retries: &[PullRetry]) -> Result<AckResponse> {
        let limits = &self.inner.limits;
        let mut checked = Vec::with_capacity(retries.len());
        for r in retries {
            let delay = r
                .delay_seconds
                .map(|d| validate::retry_delay(d, limits))
                .transpose()?;
            checked.push((r.lease_id.clone(), delay));
        }
        let consumers = read_lock(&self.inner.consumers);
        let ctx = self.ctx(&consumers);
        self.inner.store.ack(&ctx, queue, acks, &checked)
    }

    pub fn stats(&self, queue: &str) -> Result<QueueStats> {
        let consumers = read_lock(&self.inner.consumers);
        let dlq = consumers
            .get(queue)
            .and_then(|c| c.dead_letter_queue.clone());
        let ctx = self.ctx(&consumers);
        self.inner.store.stats(&ctx, queue, dlq.as_deref())
    }

    /// Queues named by the configuration plus any holding messages, sorted.
    pub fn list_queues(&self) -> Result<Vec<String>> {
        let mut all: BTreeSet<String> = read_lock(&self.inner.declared).clone();
        all.extend(self.inner.store.queues_with_messages()?);
        Ok(all.into_iter().collect())
    }

    fn push_consumer(&self, queue: &str) -> Result<ConsumerConfig> {
        match self.consumer(queue) {
            Some(c) if c.consumer_type == ConsumerType::Worker => Ok(c),
            _ => Err(QueueError::NotPushConsumer {
                queue: queue.to_owned(),
            }),
        }
    }

    fn now(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    fn ctx_now(&self) -> Ctx<'_> {
        static NONE: BTreeMap<String, ConsumerConfig> = BTreeMap::new();
        Ctx {
            now: self.now(),
            limits: &self.inner.limits,
            consumers: &NONE,
        }
    }

    fn ctx<'a>(&'a self, consumers: &'a BTreeMap<String, ConsumerConfig>) -> Ctx<'a> {
        Ctx {
            now: self.now(),
            limits: &self.inner.limits,
            consumers,
        }
    }
}

/// A producer binding: `env.<BINDING>.send()` / `sendBatch()` with the
/// binding's `delivery_delay`.
#[derive(Debug, Clone)]
pub struct QueueProducer {
    broker: QueueBroker,
    queue: String,
    delivery_delay: Option<u64>,
}

impl QueueProducer {
    pub fn queue(&self) -> &str {
        &self.queue
    }

    pub fn send(&self, body: impl Into<Vec<u8>>, options: &QueueSendOptions) -> Result<String> {
        self.broker
            .send_with(&self.queue, self.delivery_delay, body.into(), options)
    }

    pub fn send_batch(
        &self,
        messages: Vec<MessageSendRequest>,
        options: &QueueSendBatchOptions,
    ) -> Result<Vec<String>> {
        self.broker
            .send_batch_with(&self.queue, self.delivery_delay, messages, options)
    }
}

// A panic while a lock is held cannot leave these maps half-updated (each
// update is one insert), so a poisoned lock is still safe to use.
fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}
