-- Foundation v2.5 schema (one D1 database shared by every service).
-- Every tenant-owned table carries tenant_id and every query filters on it.

CREATE TABLE tenants (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE users (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  email TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,   -- pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>
  role TEXT NOT NULL DEFAULT 'member',
  created_at INTEGER NOT NULL
);
CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE planning_runs (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  created_by TEXT NOT NULL,
  idea TEXT NOT NULL,
  refined_idea TEXT,
  status TEXT NOT NULL DEFAULT 'running',   -- running | awaiting_review | completed | killed | failed
  current_phase TEXT,
  mode TEXT DEFAULT 'cloud',
  review_phases TEXT NOT NULL DEFAULT '[]',
  quality_score REAL,
  revenue_potential TEXT,
  workflow_instance_id TEXT,
  kill_verdict TEXT,
  pivot_count INTEGER DEFAULT 0,
  pivot_history TEXT NOT NULL DEFAULT '[]',
  package_key TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER
);
CREATE INDEX planning_runs_tenant ON planning_runs (tenant_id, created_at);

-- One row per run, generation (pivot count) and phase.
CREATE TABLE planning_phases (
  run_id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  generation INTEGER NOT NULL,
  phase TEXT NOT NULL,
  position INTEGER NOT NULL,
  status TEXT NOT NULL,      -- running | awaiting_review | completed | killed
  iteration INTEGER NOT NULL DEFAULT 1,
  feedback TEXT,
  started_at INTEGER,
  completed_at INTEGER,
  PRIMARY KEY (run_id, generation, phase)
);

CREATE TABLE planning_artifacts (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  run_id TEXT NOT NULL,
  phase TEXT NOT NULL,
  version INTEGER NOT NULL DEFAULT 1,
  content TEXT NOT NULL,
  review_verdict TEXT,
  review_iterations INTEGER DEFAULT 1,
  overall_score REAL,
  created_at INTEGER NOT NULL,
  FOREIGN KEY (run_id) REFERENCES planning_runs(id)
);
CREATE INDEX planning_artifacts_run ON planning_artifacts (tenant_id, run_id);

CREATE TABLE planning_parked_ideas (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  idea TEXT NOT NULL,
  refined_idea TEXT,
  run_id TEXT,
  source_phase TEXT NOT NULL,
  reason TEXT NOT NULL,
  revisit_estimate_months INTEGER,
  revisit_estimate_note TEXT,
  artifact_summary TEXT,
  created_at INTEGER NOT NULL
);
CREATE INDEX planning_parked_ideas_tenant ON planning_parked_ideas (tenant_id);

CREATE TABLE audit_chain (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  seq INTEGER NOT NULL,
  tenant_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  payload TEXT NOT NULL,
  previous_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (tenant_id, seq),
  UNIQUE (tenant_id, event_id)
);

-- Signed heads of each tenant's chain (ECDSA P-256 over "tenant:seq:hash").
CREATE TABLE audit_checkpoints (
  tenant_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  head_hash TEXT NOT NULL,
  signature TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE webhook_destinations (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  name TEXT DEFAULT '',
  hostname TEXT NOT NULL,
  url TEXT NOT NULL,
  secret TEXT,
  active INTEGER DEFAULT 1,
  events TEXT DEFAULT '*',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX webhook_destinations_tenant ON webhook_destinations (tenant_id);

CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,            -- the webhook-id header: event id + destination
  tenant_id TEXT NOT NULL,
  destination_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  status TEXT NOT NULL,           -- pending | delivered | refused | dead
  attempts INTEGER NOT NULL DEFAULT 0,
  last_status INTEGER,
  last_error TEXT,
  updated_at INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant_id, event_type);

CREATE TABLE webhook_dead_letters (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE notifications (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  user_id TEXT,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX notifications_tenant ON notifications (tenant_id, created_at);
