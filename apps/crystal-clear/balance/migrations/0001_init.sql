-- Balance: the amounts themselves live in one Durable Object per player
-- (strongly consistent); this database keeps the player directory and an
-- append-only copy of every balance change for reporting and audit.
CREATE TABLE players (
  player_id TEXT PRIMARY KEY,
  first_seen TEXT NOT NULL,
  last_change TEXT NOT NULL
);

-- One row per applied operation, copied from the player's object by its
-- outbox relay (op_id makes the copy idempotent).
CREATE TABLE audit_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  op_id TEXT NOT NULL UNIQUE,
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
