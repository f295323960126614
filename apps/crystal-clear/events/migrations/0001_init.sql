-- Event bus: every domain event, webhook subscriptions, and each delivery
-- of an event to a subscription with its attempts.
CREATE TABLE events (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  domain TEXT NOT NULL,
  body TEXT NOT NULL,
  occurred_at TEXT NOT NULL,
  received_at TEXT NOT NULL
);
CREATE INDEX events_type ON events (domain, type, received_at);

CREATE TABLE subscriptions (
  id TEXT PRIMARY KEY,
  domain TEXT NOT NULL,
  event_types TEXT NOT NULL,   -- JSON array; "*" matches every type
  webhook_url TEXT NOT NULL,
  secret TEXT NOT NULL,        -- whsec_<base64>, shown once at creation
  active INTEGER NOT NULL DEFAULT 1,
  created_by TEXT NOT NULL,
  created_at TEXT NOT NULL
);

CREATE TABLE deliveries (
  id TEXT PRIMARY KEY,
  subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
  event_id TEXT NOT NULL REFERENCES events (id),
  status TEXT NOT NULL CHECK (status IN ('pending', 'retrying', 'delivered', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,   -- ms since the epoch
  last_status INTEGER,
  last_error TEXT,
  delivered_at TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (subscription_id, event_id)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, created_at);

CREATE TABLE attempts (
  delivery_id TEXT NOT NULL REFERENCES deliveries (id),
  n INTEGER NOT NULL,
  at TEXT NOT NULL,
  http_status INTEGER,
  error TEXT,
  duration_ms INTEGER NOT NULL,
  next_attempt_at INTEGER,
  PRIMARY KEY (delivery_id, n)
);

-- Whatever reached the dead-letter queue: webhook deliveries that ran out
-- of attempts, and events the consumer could not process.
CREATE TABLE dead_letters (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  received_at TEXT NOT NULL
);

-- ==== shared/migrations/common.sql (copied by shared/sync-migrations.sh: edit that file, not this copy) ====
-- The tables every Crystal Clear D1 database has: idempotency records,
-- the append-only audit log and the event outbox (used by shared/lib.ts).
-- Each D1 database needs its own copy, so this file is the one source:
-- shared/sync-migrations.sh copies it into the end of each worker's first
-- migration, and the app's test fails when a copy differs.

-- Answers to mutating requests by Idempotency-Key (scoped by route).
CREATE TABLE idempotency (
  key TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  status INTEGER NOT NULL,
  body TEXT NOT NULL,
  created_at TEXT NOT NULL
);
-- Records expire after 24 hours (IDEMPOTENCY_TTL_MS in shared/lib.ts);
-- the cron trigger deletes them by age.
CREATE INDEX idempotency_created ON idempotency (created_at);

-- Every mutation, append-only: the triggers refuse UPDATE and DELETE.
CREATE TABLE audit_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  subject TEXT NOT NULL,
  role TEXT NOT NULL,
  action TEXT NOT NULL,
  entity TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- Domain events written with the change they report, sent to the event
-- queue after commit (and by the cron trigger if a send was cut short).
CREATE TABLE outbox (
  id TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  created_at TEXT NOT NULL,
  sent_at TEXT
);
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL;
