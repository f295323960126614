//! The cluster backend: every queue as JetStream streams shared by all
//! nodes, with the same contract as the embedded one.
//!
//! Layout, per queue (`<p>` the cluster's prefix, `<q>` the queue name
//! as a subject token):
//! - stream `<p>_Q_<q>` (subject `<p>.q.<q>`, work-queue retention): the
//!   messages that are visible now;
//! - stream `<p>_D_<q>` (subject `<p>.d.<q>`): delayed messages, moved to
//!   the first stream once the injected clock passes their time;
//! - one durable pull consumer `hearth` on each, shared by every node, so a
//!   message is delivered to exactly one node at a time.
//!
//! A message carries its id, first timestamp, content type, visible time
//! and the failed deliveries of its earlier copies in headers. Its attempts
//! are those plus JetStream's delivery count, so a node that dies holding a
//! batch costs each message one attempt, as a lapsed lease does.
//!
//! - send / sendBatch return after JetStream's publish acknowledgement
//!   (the stream is on file storage).
//! - ack: `+ACK` as a request (double ack), so an `Ok` ack is applied.
//! - retry without delay: `-NAK`; with a delay: the message is published
//!   again to the delay stream (with its attempts so far), then acked.
//!   JetStream 2.9 has no per-message schedule, and a nak's own delay runs
//!   on the server's clock rather than the injected one.
//! - retries used up: published to the dead-letter queue's stream, then
//!   acked; or terminated (`+TERM`) when there is none.
//! - a node keeps the messages it leased alive (`+WPI`) until their lease
//!   ends by the injected clock, then gives them back (`-NAK`); if the node
//!   dies, JetStream redelivers them after `ack_wait`.
//! - a push batch is assembled on the node that fetched its messages:
//!   fetched messages are held (and kept alive) until `max_batch_size` are
//!   there or the oldest has waited `max_batch_timeout`.
//!
//! Limits that differ from the embedded backend: `max_concurrency` counts
//! the batches of this node; a `sendBatch` that fails part-way may have
//! stored the messages before the failure (each is published on its own).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use bytes::Bytes;
use futures::StreamExt;
use hearth_cluster::{Nats, NatsError};
use hearth_core::SharedClock;

use crate::backend::Backend;
use crate::error::{QueueError, Result};
use crate::outcome::{BatchOutcome, MessageDecision};
use crate::sqlite::{Ctx, NewMessage, random_hex};
use crate::validate::DEFAULT_MAX_RETRIES;
use crate::{
    AckResponse, ConsumerConfig, LeasedBatch, Message, PullResponse, PulledMessage,
    QueueContentType, QueueStats, SettleReport,
};

const H_ID: &str = "Hearth-Id";
const H_TIMESTAMP: &str = "Hearth-Timestamp";
const H_CONTENT_TYPE: &str = "Hearth-Content-Type";
const H_VISIBLE_AT: &str = "Hearth-Visible-At";
/// Failed deliveries of the message before this copy was published.
const H_ATTEMPTS: &str = "Hearth-Attempts";
const CONSUMER: &str = "hearth";
/// Deliveries a consumer may have unacknowledged at once, across nodes.
const MAX_ACK_PENDING: i64 = 10_000;
/// Delayed messages looked at per queue per call.
const PROMOTE_BATCH: usize = 100;

/// Settings of the JetStream backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamOptions {
    /// JetStream's `ack_wait`: how long the leases of a node that went
    /// silent last before their messages go to another node.
    pub ack_wait_ms: u64,
    /// The longest real time before a delayed message is looked at again.
    pub delay_recheck_ms: u64,
    /// Replicas of every stream (at most the NATS cluster's size).
    pub replicas: usize,
}

impl Default for JetStreamOptions {
    fn default() -> Self {
        Self {
            ack_wait_ms: 30_000,
            delay_recheck_ms: 1_000,
            replicas: 1,
        }
    }
}

/// A fetched message this node holds for a push batch not yet due.
#[derive(Debug)]
struct Held {
    message: Message,
    ack: String,
    ready_at: u64,
}

/// A delivery this node keeps alive until `deadline` (injected clock).
#[derive(Debug)]
struct Lease {
    deadline: u64,
    progressed: Instant,
}

#[derive(Debug, Default)]
struct State {
    held: HashMap<String, Vec<Held>>,
    batches: HashMap<String, u32>,
    leases: HashMap<String, Lease>,
}

#[derive(Debug, Clone)]
struct Streams {
    main: PullConsumer,
    delayed: PullConsumer,
}

#[derive(Debug)]
pub(crate) struct JetStreamStore {
    nats: Nats,
    options: JetStreamOptions,
    state: Arc<Mutex<State>>,
    streams: Mutex<HashMap<String, Streams>>,
}

/// What one failed delivery leads to.
enum Fate {
    Retried,
    DeadLettered,
    Dropped,
}

impl JetStreamStore {
    pub(crate) fn new(nats: Nats, options: JetStreamOptions, clock: SharedClock) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let keeper = KeepAlive {
            state: Arc::downgrade(&state),
            client: nats.client().clone(),
            clock,
            progress_every: Duration::from_millis(options.ack_wait_ms / 3),
        };
        // Often enough that a lease is touched well within ack_wait.
        let tick = Duration::from_millis(
            options
                .delay_recheck_ms
                .min(options.ack_wait_ms / 4)
                .clamp(50, 5_000),
        );
        nats.handle().spawn(keeper.run(tick));
        Self {
            nats,
            options,
            state,
            streams: Mutex::new(HashMap::new()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn names(&self, queue: &str) -> Names {
        Names::new(self.nats.prefix(), queue)
    }

    /// The queue's consumers, creating its streams the first time.
    fn streams(&self, ctx: &Ctx<'_>, queue: &str) -> Result<Streams> {
        if let Some(s) = lock(&self.streams).get(queue) {
            return Ok(s.clone());
        }
        let names = self.names(queue);
        let js = self.nats.jetstream().clone();
        let max_age = Duration::from_secs(ctx.limits.message_retention_secs);
        let ack_wait = Duration::from_millis(self.options.ack_wait_ms);
        let replicas = self.options.replicas;
        let streams = self.nats.block(async move {
            let mut made = Vec::with_capacity(2);
            for (stream, subject) in [
                (&names.main_stream, &names.main_subject),
                (&names.delay_stream, &names.delay_subject),
            ] {
                let s = js
                    .get_or_create_stream(StreamConfig {
                        name: stream.clone(),
                        subjects: vec![subject.clone()],
                        retention: RetentionPolicy::WorkQueue,
                        storage: StorageType::File,
                        num_replicas: replicas,
                        max_age,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| NatsError::op(&format!("creating stream {stream}"), e))?;
                let c: PullConsumer = s
                    .get_or_create_consumer(
                        CONSUMER,
                        pull::Config {
                            durable_name: Some(CONSUMER.to_owned()),
                            ack_policy: AckPolicy::Explicit,
                            ack_wait,
                            max_deliver: -1,
                            max_ack_pending: MAX_ACK_PENDING,
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(|e| NatsError::op(&format!("creating consumer of {stream}"), e))?;
                made.push(c);
            }
            let delayed = made.pop();
            let main = made.pop();
            match (main, delayed) {
                (Some(main), Some(delayed)) => Ok::<_, QueueError>(Streams { main, delayed }),
                _ => Err(NatsError::Op("stream set-up returned nothing".into()).into()),
            }
        })?;
        lock(&self.streams).insert(queue.to_owned(), streams.clone());
        Ok(streams)
    }

    /// Publishes `messages` to `subject` and waits for every acknowledgement.
    fn publish(&self, subject: String, messages: Vec<(HeaderMap, Bytes)>) -> Result<()> {
        let js = self.nats.jetstream().clone();
        self.nats.block(async move {
            let mut acks = Vec::with_capacity(messages.len());
            for (headers, body) in messages {
                let ack = js
                    .publish_with_headers(subject.clone(), headers, body)
                    .await
                    .map_err(|e| NatsError::op(&format!("publishing to {subject}"), e))?;
                acks.push(ack);
            }
            for ack in acks {
                ack.await
                    .map_err(|e| NatsError::op(&format!("publishing to {subject}"), e))?;
            }
            Ok::<_, QueueError>(())
        })
    }

    /// Up to `max` deliveries from `consumer`, without waiting for more.
    fn fetch(&self, consumer: &PullConsumer, max: usize) -> Result<Vec<Fetched>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let consumer = consumer.clone();
        self.nats.block(async move {
            let mut out = Vec::new();
            let mut batch = consumer
                .fetch()
                .max_messages(max)
                .messages()
                .await
                .map_err(|e| NatsError::op("fetching", e))?;
            while let Some(m) = batch.next().await {
                let m = m.map_err(|e| NatsError::op("fetching", e))?;
                out.push(Fetched::read(m)?);
            }
            Ok::<_, QueueError>(out)
        })
    }

    /// Sends `payload` to an ack subject and waits for JetStream's answer.
    fn reply(&self, ack: &str, payload: &'static str) -> Result<()> {
        let client = self.nats.client().clone();
        let subject = ack.to_owned();
        self.nats.block(async move {
            client
                .request(subject, Bytes::from_static(payload.as_bytes()))
                .await
                .map_err(|e| NatsError::op("acknowledging", e))?;
            Ok::<_, QueueError>(())
        })?;
        self.state().leases.remove(ack);
        Ok(())
    }

    /// Moves delayed messages whose time has come into the queue; the rest
    /// are looked at again after at most `delay_recheck_ms`.
    fn promote(&self, ctx: &Ctx<'_>, queue: &str, streams: &Streams) -> Result<()> {
        let names = self.names(queue);
        for f in self.fetch(&streams.delayed, PROMOTE_BATCH)? {
            if f.visible_at <= ctx.now {
                let headers = headers(&f.message, f.visible_at, f.prior_attempts)?;
                self.publish(names.main_subject.clone(), vec![(headers, f.body())])?;
                self.reply(&f.ack, "+ACK")?;
            } else {
                let wait = (f.visible_at - ctx.now).min(self.options.delay_recheck_ms);
                let nak = format!("-NAK {{\"delay\":{}}}", wait.saturating_mul(1_000_000));
                let client = self.nats.client().clone();
                let subject = f.ack.clone();
                self.nats.block(async move {
                    client
                        .publish(subject, Bytes::from(nak))
                        .await
                        .map_err(|e| NatsError::op("deferring a delayed message", e))?;
                    Ok::<_, QueueError>(())
                })?;
            }
        }
        Ok(())
    }

    /// Fetches up to `max` deliveries of `queue`, settling at once those whose
    /// retries a lapse used up.
    fn take(
        &self,
        ctx: &Ctx<'_>,
        queue: &str,
        streams: &Streams,
        max: usize,
    ) -> Result<Vec<Fetched>> {
        let max_retries = max_retries(ctx, queue);
        let mut out = Vec::new();
        for f in self.fetch(&streams.main, max)? {
            if f.message.attempts > max_retries.saturating_add(1) {
                self.exhausted(ctx, queue, &f.message, &f.ack)?;
            } else {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// A delivery failed: deliver again after `delay_secs`, or with its
    /// retries used up move it to the dead-letter queue or drop it.
    fn fail(
        &self,
        ctx: &Ctx<'_>,
        queue: &str,
        message: &Message,
        ack: &str,
        delay_secs: u64,
    ) -> Result<Fate> {
        if message.attempts > max_retries(ctx, queue) {
            return self.exhausted(ctx, queue, message, ack);
        }
        if delay_secs == 0 {
            self.reply(ack, "-NAK")?;
        } else {
            let visible_at = ctx.now.saturating_add(delay_secs.saturating_mul(1000));
            let headers = headers(message, visible_at, message.attempts)?;
            self.publish(
                self.names(queue).delay_subject,
                vec![(headers, Bytes::from(message.body.clone()))],
            )?;
            self.reply(ack, "+ACK")?;
        }
        Ok(Fate::Retried)
    }

    fn exhausted(&self, ctx: &Ctx<'_>, queue: &str, message: &Message, ack: &str) -> Result<Fate> {
        let dlq = ctx
            .consumers
            .get(queue)
            .and_then(|c| c.dead_letter_queue.clone());
        let attempts = message.attempts.saturating_sub(1);
        match dlq {
            Some(dlq) => {
                self.streams(ctx, &dlq)?;
                // Same id and timestamp, attempts from scratch, deliverable now.
                let headers = headers(message, ctx.now, 0)?;
                self.publish(
                    self.names(&dlq).main_subject,
                    vec![(headers, Bytes::from(message.body.clone()))],
                )?;
                self.reply(ack, "+ACK")?;
                tracing::warn!(queue = %queue, message_id = %message.id, attempts, dead_letter_queue = %dlq,
                    "queue message failed on every attempt; moved to its dead-letter queue");
                Ok(Fate::DeadLettered)
            }
            None => {
                self.reply(ack, "+TERM")?;
                tracing::warn!(queue = %queue, message_id = %message.id, attempts,
                    "queue message failed on every attempt and has no dead-letter queue; dropped");
                Ok(Fate::Dropped)
            }
        }
    }

    fn lease(&self, ack: &str, deadline: u64) {
        self.state().leases.insert(
            ack.to_owned(),
            Lease {
                deadline,
                progressed: Instant::now(),
            },
        );
    }

    fn stream_counts(&self, queue: &str) -> Result<Counts> {
        let names = self.names(queue);
        let js = self.nats.jetstream().clone();
        self.nats.block(async move {
            let mut counts = Counts::default();
            let mut main = match js.get_stream(&names.main_stream).await {
                Ok(s) => s,
                Err(_) => return Ok::<_, QueueError>(counts),
            };
            let info = main
                .info()
                .await
                .map_err(|e| NatsError::op("reading stream info", e))?;
            counts.messages = info.state.messages;
            let first = info.state.first_sequence;
            if counts.messages > 0
                && let Ok(m) = main.get_raw_message(first).await
            {
                counts.oldest_ms = header_u64(&m.headers, H_TIMESTAMP);
            }
            if let Ok(mut c) = main.get_consumer::<pull::Config>(CONSUMER).await
                && let Ok(i) = c.info().await
            {
                counts.in_flight = u64::try_from(i.num_ack_pending).unwrap_or(0);
            }
            if let Ok(mut d) = js.get_stream(&names.delay_stream).await
                && let Ok(i) = d.info().await
            {
                counts.delayed = i.state.messages;
            }
            Ok(counts)
        })
    }
}

#[derive(Debug, Default)]
struct Counts {
    messages: u64,
    in_flight: u64,
    delayed: u64,
    oldest_ms: Option<u64>,
}

impl Backend for JetStreamStore {
    fn describe(&self) -> String {
        format!("jetstream:{} ({})", self.nats.url(), self.nats.prefix())
    }

    fn insert(&self, ctx: &Ctx<'_>, queue: &str, messages: Vec<NewMessage>) -> Result<()> {
        self.streams(ctx, queue)?;
        let names = self.names(queue);
        let (mut now, mut later) = (Vec::new(), Vec::new());
        for m in messages {
            let message = Message {
                id: m.id,
                timestamp_ms: m.timestamp_ms,
                body: Vec::new(),
                content_type: m.content_type,
                attempts: 0,
            };
            let entry = (headers(&message, m.visible_at, 0)?, Bytes::from(m.body));
            if m.visible_at <= ctx.now {
                now.push(entry);
            } else {
                later.push(entry);
            }
        }
        if !now.is_empty() {
            self.publish(names.main_subject, now)?;
        }
        if !later.is_empty() {
            self.publish(names.delay_subject, later)?;
        }
        Ok(())
    }

    fn lease_push(
        &self,
        ctx: &Ctx<'_>,
        consumer: &ConsumerConfig,
        _owner: &str,
    ) -> Result<Option<LeasedBatch>> {
        let queue = consumer.queue.as_str();
        let streams = self.streams(ctx, queue)?;
        self.promote(ctx, queue, &streams)?;
        let concurrency = consumer
            .max_concurrency
            .unwrap_or(ctx.limits.max_concurrency);
        if self.state().batches.get(queue).copied().unwrap_or(0) >= concurrency {
            return Ok(None);
        }
        let size = usize::try_from(consumer.max_batch_size).unwrap_or(usize::MAX);
        let holding = self.state().held.get(queue).map_or(0, Vec::len);
        let fetched = self.take(ctx, queue, &streams, size.saturating_sub(holding))?;
        let hold_until = ctx.now.saturating_add(ctx.limits.push_lease_ms);
        let mut state = self.state();
        let held = state.held.entry(queue.to_owned()).or_default();
        for f in fetched {
            held.push(Held {
                ready_at: f.visible_at,
                message: f.message,
                ack: f.ack,
            });
        }
        let timeout_ms = u64::from(consumer.max_batch_timeout_secs) * 1000;
        let oldest = held.iter().map(|h| h.ready_at).min();
        let due =
            held.len() >= size || oldest.is_some_and(|o| o.saturating_add(timeout_ms) <= ctx.now);
        if held.is_empty() || !due {
            let acks: Vec<String> = held.iter().map(|h| h.ack.clone()).collect();
            for ack in acks {
                state.leases.entry(ack).or_insert(Lease {
                    deadline: hold_until,
                    progressed: Instant::now(),
                });
            }
            return Ok(None);
        }
        let taken: Vec<Held> = std::mem::take(held);
        *state.batches.entry(queue.to_owned()).or_default() += 1;
        let expires = ctx.now.saturating_add(ctx.limits.push_lease_ms);
        let mut messages = Vec::with_capacity(taken.len());
        let mut acks = Vec::with_capacity(taken.len());
        for h in taken {
            state.leases.insert(
                h.ack.clone(),
                Lease {
                    deadline: expires,
                    progressed: Instant::now(),
                },
            );
            messages.push(h.message);
            acks.push(h.ack);
        }
        Ok(Some(LeasedBatch {
            queue: queue.to_owned(),
            messages,
            lease_expires_at_ms: expires,
            lease_id: random_hex()?,
            seqs: Vec::new(),
            acks,
            max_delay_secs: ctx.limits.max_delay_secs,
        }))
    }

    fn settle(
        &self,
        ctx: &Ctx<'_>,
        batch: &LeasedBatch,
        outcome: &BatchOutcome,
    ) -> Result<SettleReport> {
        {
            let mut state = self.state();
            if let Some(n) = state.batches.get_mut(&batch.queue) {
                *n = n.saturating_sub(1);
            }
        }
        let mut report = SettleReport::default();
        for (message, ack) in batch.messages.iter().zip(&batch.acks) {
            if !self.state().leases.contains_key(ack) {
                // Given back when its lease ended; that counted as its attempt.
                report.stale += 1;
                continue;
            }
            match outcome.decision(&message.id) {
                MessageDecision::Ack => {
                    self.reply(ack, "+ACK")?;
                    report.acked += 1;
                }
                MessageDecision::Retry { delay_seconds } => {
                    let delay = retry_delay(ctx, &batch.queue, delay_seconds);
                    match self.fail(ctx, &batch.queue, message, ack, delay)? {
                        Fate::Retried => report.retried += 1,
                        Fate::DeadLettered => report.dead_lettered += 1,
                        Fate::Dropped => report.dropped += 1,
                    }
                }
            }
        }
        Ok(report)
    }

    fn pull(
        &self,
        ctx: &Ctx<'_>,
        queue: &str,
        batch_size: u32,
        visibility_ms: u64,
    ) -> Result<PullResponse> {
        let streams = self.streams(ctx, queue)?;
        self.promote(ctx, queue, &streams)?;
        let max = usize::try_from(batch_size).unwrap_or(usize::MAX);
        let deadline = ctx.now.saturating_add(visibility_ms);
        let mut messages = Vec::new();
        for f in self.take(ctx, queue, &streams, max)? {
            self.lease(&f.ack, deadline);
            messages.push(PulledMessage {
                lease_id: hex::encode(f.ack.as_bytes()),
                id: f.message.id,
                timestamp_ms: f.message.timestamp_ms,
                body: f.message.body,
                content_type: f.message.content_type,
                attempts: f.message.attempts,
            });
        }
        let counts = self.stream_counts(queue)?;
        Ok(PullResponse {
            messages,
            message_backlog_count: counts
                .messages
                .saturating_sub(counts.in_flight)
                .saturating_add(counts.delayed),
        })
    }

    fn ack(
        &self,
        ctx: &Ctx<'_>,
        queue: &str,
        acks: &[String],
        retries: &[(String, Option<u64>)],
    ) -> Result<AckResponse> {
        let names = self.names(queue);
        let mut out = AckResponse::default();
        for lease in acks {
            let Some(ack) = names.ack_subject(lease) else {
                out.warnings.push(unknown_lease(lease));
                continue;
            };
            // Work-queue streams delete what was acked: a message no longer
            // there was acked (or moved) already.
            if self.read(queue, &ack)?.is_none() {
                out.warnings.push(gone(lease));
                continue;
            }
            self.reply(&ack.subject, "+ACK")?;
            out.ack_count += 1;
        }
        for (lease, delay) in retries {
            let Some(ack) = names.ack_subject(lease) else {
                out.warnings.push(unknown_lease(lease));
                continue;
            };
            let Some(message) = self.read(queue, &ack)? else {
                out.warnings.push(gone(lease));
                continue;
            };
            let delay = retry_delay(ctx, queue, *delay);
            self.fail(ctx, queue, &message, &ack.subject, delay)?;
            out.retry_count += 1;
        }
        Ok(out)
    }

    fn stats(&self, ctx: &Ctx<'_>, queue: &str, dlq: Option<&str>) -> Result<QueueStats> {
        let c = self.stream_counts(queue)?;
        let visible = c.messages.saturating_sub(c.in_flight);
        let dlq_depth = match dlq {
            Some(dlq) => {
                let d = self.stream_counts(dlq)?;
                Some(d.messages + d.delayed)
            }
            None => None,
        };
        Ok(QueueStats {
            depth: visible + c.delayed,
            visible,
            delayed: c.delayed,
            in_flight: c.in_flight,
            oldest_age_ms: c.oldest_ms.map(|t| ctx.now.saturating_sub(t)),
            dlq_depth,
        })
    }

    fn next_due(&self, ctx: &Ctx<'_>, push: &[&ConsumerConfig]) -> Result<Option<u64>> {
        let state = self.state();
        let mut due: Option<u64> = None;
        for c in push {
            if let Some(oldest) = state
                .held
                .get(&c.queue)
                .and_then(|h| h.iter().map(|h| h.ready_at).min())
            {
                let at = oldest.saturating_add(u64::from(c.max_batch_timeout_secs) * 1000);
                due = Some(due.map_or(at, |d| d.min(at)));
            }
        }
        // Messages sent from other nodes and delayed ones are only seen by
        // looking, so look again soon.
        if !push.is_empty() {
            let at = ctx.now.saturating_add(self.options.delay_recheck_ms);
            due = Some(due.map_or(at, |d| d.min(at)));
        }
        Ok(due)
    }

    fn queues_with_messages(&self) -> Result<Vec<String>> {
        let js = self.nats.jetstream().clone();
        let start = format!("{}_Q_", self.nats.prefix());
        let names: Vec<String> = self.nats.block(async move {
            let mut out = Vec::new();
            let mut list = js.stream_names();
            while let Some(name) = list.next().await {
                let name = name.map_err(|e| NatsError::op("listing streams", e))?;
                if let Some(q) = name.strip_prefix(&start) {
                    out.push(q.to_owned());
                }
            }
            Ok::<_, QueueError>(out)
        })?;
        Ok(names.iter().filter_map(|n| decode_queue(n)).collect())
    }

    fn recover_push_leases(&self, _ctx: &Ctx<'_>, _owner: &str) -> Result<usize> {
        // A dead node's deliveries come back from JetStream after ack_wait.
        Ok(0)
    }

    fn delete_queues(&self, queues: &[String]) -> Result<()> {
        let js = self.nats.jetstream().clone();
        let mut streams = Vec::new();
        for q in queues {
            let n = self.names(q);
            streams.push(n.main_stream);
            streams.push(n.delay_stream);
            lock(&self.streams).remove(q);
        }
        self.nats.block(async move {
            for s in streams {
                // Absent already is fine.
                let _ = js.delete_stream(&s).await;
            }
            Ok::<_, QueueError>(())
        })
    }
}

impl JetStreamStore {
    /// The message an ack subject points at, with the attempts of that
    /// delivery; `None` once it is gone from the stream.
    fn read(&self, queue: &str, ack: &AckSubject) -> Result<Option<Message>> {
        let stream_name = self.names(queue).main_stream;
        let js = self.nats.jetstream().clone();
        let seq = ack.stream_seq;
        let raw = self.nats.block(async move {
            let stream = js
                .get_stream(&stream_name)
                .await
                .map_err(|e| NatsError::op("opening stream", e))?;
            Ok::<_, QueueError>(stream.get_raw_message(seq).await.ok())
        })?;
        let Some(raw) = raw else {
            return Ok(None);
        };
        let stream = self.names(queue).main_stream;
        let mut m = message_of(&stream, seq, &raw.headers, raw.payload.to_vec())?;
        let prior = header_u64(&raw.headers, H_ATTEMPTS).unwrap_or(0);
        m.attempts = u32::try_from(prior.saturating_add(ack.delivered)).unwrap_or(u32::MAX);
        Ok(Some(m))
    }
}

/// A delivery as fetched.
struct Fetched {
    message: Message,
    ack: String,
    visible_at: u64,
    prior_attempts: u32,
}

impl Fetched {
    fn read(m: async_nats::jetstream::Message) -> Result<Self> {
        let info = m
            .info()
            .map_err(|e| NatsError::op("reading a delivery", e))?;
        let (stream, seq, delivered) = (
            info.stream.to_owned(),
            info.stream_sequence,
            u64::try_from(info.delivered).unwrap_or(0),
        );
        let ack =
            m.message
                .reply
                .as_ref()
                .map(|r| r.to_string())
                .ok_or(QueueError::CorruptMessage {
                    stream: stream.clone(),
                    seq,
                    header: "reply subject",
                })?;
        let empty = HeaderMap::new();
        let headers = m.message.headers.as_ref().unwrap_or(&empty);
        let mut message = message_of(&stream, seq, headers, m.message.payload.to_vec())?;
        let prior = header_u64(headers, H_ATTEMPTS).unwrap_or(0);
        message.attempts = u32::try_from(prior.saturating_add(delivered)).unwrap_or(u32::MAX);
        let visible_at = header_u64(headers, H_VISIBLE_AT).unwrap_or(0);
        Ok(Self {
            message,
            ack,
            visible_at,
            prior_attempts: u32::try_from(prior).unwrap_or(u32::MAX),
        })
    }

    fn body(&self) -> Bytes {
        Bytes::from(self.message.body.clone())
    }
}

fn message_of(stream: &str, seq: u64, headers: &HeaderMap, body: Vec<u8>) -> Result<Message> {
    let missing = |header: &'static str| QueueError::CorruptMessage {
        stream: stream.to_owned(),
        seq,
        header,
    };
    let id = headers
        .get(H_ID)
        .map(|v| v.as_str().to_owned())
        .ok_or_else(|| missing(H_ID))?;
    let timestamp_ms = header_u64(headers, H_TIMESTAMP).ok_or_else(|| missing(H_TIMESTAMP))?;
    let ct = headers
        .get(H_CONTENT_TYPE)
        .map(|v| v.as_str().to_owned())
        .ok_or_else(|| missing(H_CONTENT_TYPE))?;
    let content_type =
        QueueContentType::parse(&ct).map_err(|_| QueueError::CorruptContentType {
            id: id.clone(),
            value: ct,
        })?;
    Ok(Message {
        id,
        timestamp_ms,
        body,
        content_type,
        attempts: 0,
    })
}

/// The headers of a copy of `message` visible at `visible_at`, whose earlier
/// copies failed `attempts` times. The dedup id makes a publish repeated by
/// a retrying node land once.
fn headers(message: &Message, visible_at: u64, attempts: u32) -> Result<HeaderMap> {
    let mut h = HeaderMap::new();
    h.insert(H_ID, message.id.as_str());
    h.insert(H_TIMESTAMP, message.timestamp_ms.to_string().as_str());
    h.insert(H_CONTENT_TYPE, message.content_type.as_str());
    h.insert(H_VISIBLE_AT, visible_at.to_string().as_str());
    h.insert(H_ATTEMPTS, attempts.to_string().as_str());
    h.insert(
        async_nats::header::NATS_MESSAGE_ID,
        format!("{}-{attempts}-{visible_at}", message.id).as_str(),
    );
    Ok(h)
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name).and_then(|v| v.as_str().parse().ok())
}

fn max_retries(ctx: &Ctx<'_>, queue: &str) -> u32 {
    ctx.consumers
        .get(queue)
        .map_or(DEFAULT_MAX_RETRIES, |c| c.max_retries)
}

/// The delay of a retry: its own, else the consumer's `retry_delay`, else 0.
fn retry_delay(ctx: &Ctx<'_>, queue: &str, own: Option<u64>) -> u64 {
    own.or_else(|| ctx.consumers.get(queue).and_then(|c| c.retry_delay_secs))
        .unwrap_or(0)
}

fn unknown_lease(lease: &str) -> String {
    format!("lease {lease} is not a lease id of this queue; ignored")
}

fn gone(lease: &str) -> String {
    format!("lease {lease}: its message is no longer in the queue; ignored")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stream names and subjects of one queue.
#[derive(Debug, Clone)]
struct Names {
    main_stream: String,
    delay_stream: String,
    main_subject: String,
    delay_subject: String,
}

impl Names {
    fn new(prefix: &str, queue: &str) -> Self {
        let q = encode_queue(queue);
        Self {
            main_stream: format!("{prefix}_Q_{q}"),
            delay_stream: format!("{prefix}_D_{q}"),
            main_subject: format!("{prefix}.q.{q}"),
            delay_subject: format!("{prefix}.d.{q}"),
        }
    }

    /// The ack subject a pull lease id stands for, if it is one of this
    /// queue's.
    fn ack_subject(&self, lease: &str) -> Option<AckSubject> {
        let subject = String::from_utf8(hex::decode(lease).ok()?).ok()?;
        let tokens: Vec<&str> = subject.split('.').collect();
        // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
        if tokens.len() != 9
            || tokens[0] != "$JS"
            || tokens[1] != "ACK"
            || tokens[2] != self.main_stream
            || tokens[3] != CONSUMER
        {
            return None;
        }
        Some(AckSubject {
            delivered: tokens[4].parse().ok()?,
            stream_seq: tokens[5].parse().ok()?,
            subject,
        })
    }
}

struct AckSubject {
    subject: String,
    delivered: u64,
    stream_seq: u64,
}

/// Queue names may hold any character; a name of only letters, digits and
/// '-' is used as it is, any other is hex after a '_' (which plain names
/// never contain), so two queues never share a stream.
fn encode_queue(queue: &str) -> String {
    if queue.len() <= 64
        && queue
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        queue.to_owned()
    } else {
        format!("_{}", hex::encode(queue.as_bytes()))
    }
}

fn decode_queue(encoded: &str) -> Option<String> {
    match encoded.strip_prefix('_') {
        Some(h) => String::from_utf8(hex::decode(h).ok()?).ok(),
        None => Some(encoded.to_owned()),
    }
}

/// Keeps this node's leased and held deliveries from being redelivered
/// (`+WPI` every third of `ack_wait`) and gives back the ones whose lease
/// ended by the injected clock (`-NAK`, which counts as their attempt).
struct KeepAlive {
    state: Weak<Mutex<State>>,
    client: async_nats::Client,
    clock: SharedClock,
    progress_every: Duration,
}

impl KeepAlive {
    async fn run(self, tick: Duration) {
        let mut interval = tokio::time::interval(tick);
        loop {
            interval.tick().await;
            let Some(state) = self.state.upgrade() else {
                return;
            };
            let (progress, lapsed) = self.sweep(&state);
            drop(state);
            for subject in progress {
                let _ = self
                    .client
                    .publish(subject, Bytes::from_static(b"+WPI"))
                    .await;
            }
            for subject in lapsed {
                let _ = self
                    .client
                    .publish(subject, Bytes::from_static(b"-NAK"))
                    .await;
            }
        }
    }

    fn sweep(&self, state: &Mutex<State>) -> (Vec<String>, Vec<String>) {
        let now = self.clock.now_ms();
        let mut state = lock(state);
        let held: HashSet<String> = state
            .held
            .values()
            .flatten()
            .map(|h| h.ack.clone())
            .collect();
        let mut progress = Vec::new();
        let mut lapsed = Vec::new();
        for (subject, lease) in state.leases.iter_mut() {
            if lease.deadline <= now && !held.contains(subject) {
                lapsed.push(subject.clone());
            } else if lease.progressed.elapsed() >= self.progress_every {
                lease.progressed = Instant::now();
                progress.push(subject.clone());
            }
        }
        for subject in &lapsed {
            state.leases.remove(subject);
        }
        (progress, lapsed)
    }
}
