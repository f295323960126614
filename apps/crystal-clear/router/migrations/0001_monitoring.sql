-- Monitoring: alert rules evaluated by POST /monitoring/check-alerts, and
-- the alerts they raised.
--
-- metric names a number from GET /monitoring/unified-metrics:
--   errorRate           server errors / requests, all domains (0..1)
--   p99LatencyMs        99th percentile request latency, all domains
--   failedSagas         sagas COMPENSATED or FAILED
--   stuckSagas          sagas FAILED (compensation needs manual action)
--   deadLetters         messages in the dead-letter store
--   activeTransactions  sagas still running
--   healthScore         0..100
CREATE TABLE alert_rules (
  id TEXT PRIMARY KEY,
  metric TEXT NOT NULL,
  comparator TEXT NOT NULL CHECK (comparator IN ('>', '>=', '<', '<=')),
  threshold REAL NOT NULL,
  severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  description TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1
);
INSERT INTO alert_rules (id, metric, comparator, threshold, severity, description) VALUES
  ('high-error-rate', 'errorRate', '>', 0.05, 'critical', 'More than 5% of domain requests fail with a server error'),
  ('high-latency', 'p99LatencyMs', '>', 1000, 'warning', 'p99 latency above one second'),
  ('failed-sagas', 'failedSagas', '>', 0, 'warning', 'A cross-domain transaction was compensated or failed'),
  ('stuck-sagas', 'stuckSagas', '>', 0, 'critical', 'A saga could not be compensated and needs manual action'),
  ('dead-letters', 'deadLetters', '>', 0, 'critical', 'Messages reached the dead-letter queue'),
  ('low-health', 'healthScore', '<', 80, 'warning', 'System health score below 80');

CREATE TABLE alerts (
  id TEXT PRIMARY KEY,
  rule_id TEXT NOT NULL REFERENCES alert_rules (id),
  severity TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'RESOLVED')),
  value REAL NOT NULL,
  message TEXT NOT NULL,
  triggered_at TEXT NOT NULL,
  resolved_at TEXT
);
-- At most one active alert per rule.
CREATE UNIQUE INDEX alerts_one_active ON alerts (rule_id) WHERE status = 'ACTIVE';

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
