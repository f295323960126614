-- Distributions: agent commissions computed from a tiered rate table, and
-- payouts of earned commissions.

-- The rate applied to an agent's volume for a period: the row whose
-- [min_volume_minor, max_volume_minor) holds the volume (max NULL = no cap).
-- Rates are basis points (1/100 of a percent).
CREATE TABLE commission_rates (
  period TEXT NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly')),
  min_volume_minor INTEGER NOT NULL,
  max_volume_minor INTEGER,
  rate_bp INTEGER NOT NULL CHECK (rate_bp >= 0 AND rate_bp <= 10000),
  PRIMARY KEY (period, min_volume_minor)
);
INSERT INTO commission_rates VALUES
  ('daily',   0,           100000,   300),
  ('daily',   100000,      NULL,     400),
  ('weekly',  0,           1000000,  400),
  ('weekly',  1000000,     NULL,     500),
  ('monthly', 0,           1000000,  500),
  ('monthly', 1000000,     5000000,  750),
  ('monthly', 5000000,     NULL,    1000);

CREATE TABLE commissions (
  id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL,
  period TEXT NOT NULL,
  volume_minor INTEGER NOT NULL,
  rate_bp INTEGER NOT NULL,
  commission_minor INTEGER NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('EARNED', 'VOID')),
  source TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX commissions_agent ON commissions (agent_id, status);

CREATE TABLE payouts (
  id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL,
  amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
  currency TEXT NOT NULL,
  method TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('PROCESSED')),
  created_at TEXT NOT NULL
);
CREATE INDEX payouts_agent ON payouts (agent_id);

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
