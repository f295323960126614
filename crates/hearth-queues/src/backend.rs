//! The contract every Queues backend implements: the embedded SQLite
//! [`Store`] and the cluster's [`crate::jetstream::JetStreamStore`]. The
//! broker checks input and limits before it calls a backend, so a backend
//! sees only valid queues, sizes and delays.

use std::fmt;

use crate::error::Result;
use crate::outcome::BatchOutcome;
use crate::sqlite::{Ctx, NewMessage, Store};
use crate::{AckResponse, ConsumerConfig, LeasedBatch, PullResponse, QueueStats, SettleReport};

pub(crate) trait Backend: Send + Sync + fmt::Debug {
    /// `sqlite:<path>` or `jetstream:<url>`.
    fn describe(&self) -> String;
    /// Stores `messages` durably: returns only once all are committed.
    fn insert(&self, ctx: &Ctx<'_>, queue: &str, messages: Vec<NewMessage>) -> Result<()>;
    fn lease_push(
        &self,
        ctx: &Ctx<'_>,
        consumer: &ConsumerConfig,
        owner: &str,
    ) -> Result<Option<LeasedBatch>>;
    fn settle(
        &self,
        ctx: &Ctx<'_>,
        batch: &LeasedBatch,
        outcome: &BatchOutcome,
    ) -> Result<SettleReport>;
    fn pull(
        &self,
        ctx: &Ctx<'_>,
        queue: &str,
        batch_size: u32,
        visibility_ms: u64,
    ) -> Result<PullResponse>;
    fn ack(
        &self,
        ctx: &Ctx<'_>,
        queue: &str,
        acks: &[String],
        retries: &[(String, Option<u64>)],
    ) -> Result<AckResponse>;
    fn stats(&self, ctx: &Ctx<'_>, queue: &str, dlq: Option<&str>) -> Result<QueueStats>;
    fn next_due(&self, ctx: &Ctx<'_>, push: &[&ConsumerConfig]) -> Result<Option<u64>>;
    fn queues_with_messages(&self) -> Result<Vec<String>>;
    fn recover_push_leases(&self, ctx: &Ctx<'_>, owner: &str) -> Result<usize>;
    /// Removes the storage of `queues` (JetStream streams); tests only.
    fn delete_queues(&self, queues: &[String]) -> Result<()>;
}

impl Backend for Store {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path().display())
    }

    fn insert(&self, _ctx: &Ctx<'_>, queue: &str, messages: Vec<NewMessage>) -> Result<()> {
        Store::insert(self, queue, &messages)
    }

    fn lease_push(
        &self,
        ctx: &Ctx<'_>,
        consumer: &ConsumerConfig,
        owner: &str,
    ) -> Result<Option<LeasedBatch>> {
        Store::lease_push(self, ctx, consumer, owner)
    }

    fn settle(
        &self,
        ctx: &Ctx<'_>,
        batch: &LeasedBatch,
        outcome: &BatchOutcome,
    ) -> Result<SettleReport> {
        Store::settle(self, ctx, batch, outcome)
    }

    fn pull(
        &self,
        ctx: &Ctx<'_>,
        queue: &str,
        batch_size: u32,
        visibility_ms: u64,
    ) -> Result<PullResponse> {
        Store::pull(self, ctx, queue, batch_size, visibility_ms)
    }

    fn ack(
        &self,
        ctx: &Ctx<'_>,
        queue: &str,
        acks: &[String],
        retries: &[(String, Option<u64>)],
    ) -> Result<AckResponse> {
        Store::ack(self, ctx, queue, acks, retries)
    }

    fn stats(&self, ctx: &Ctx<'_>, queue: &str, dlq: Option<&str>) -> Result<QueueStats> {
        Store::stats(self, ctx, queue, dlq)
    }

    fn next_due(&self, ctx: &Ctx<'_>, push: &[&ConsumerConfig]) -> Result<Option<u64>> {
        Store::next_due(self, ctx, push)
    }

    fn queues_with_messages(&self) -> Result<Vec<String>> {
        Store::queues_with_messages(self)
    }

    fn recover_push_leases(&self, ctx: &Ctx<'_>, owner: &str) -> Result<usize> {
        Store::recover_push_leases(self, ctx, owner)
    }

    fn delete_queues(&self, _queues: &[String]) -> Result<()> {
        Ok(())
    }
}
