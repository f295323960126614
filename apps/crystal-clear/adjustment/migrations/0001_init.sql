-- Adjustment: manual corrections to a player's balance, each with a reason
-- and the operator who made it.
CREATE TABLE adjustments (
  id TEXT PRIMARY KEY,
  player_id TEXT NOT NULL,
  currency TEXT NOT NULL,
  amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
  direction TEXT NOT NULL CHECK (direction IN ('credit', 'debit')),
  reason TEXT NOT NULL,
  operator_id TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('APPLIED', 'REJECTED')),
  balance_after_minor INTEGER,
  created_at TEXT NOT NULL
);
CREATE INDEX adjustments_player ON adjustments (player_id, created_at);

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
