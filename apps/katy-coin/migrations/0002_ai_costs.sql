-- AI Gateway logs read back for cost metrics, one row per gateway log.
CREATE TABLE ai_costs (
  log_id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  model TEXT,
  cost REAL NOT NULL,
  tokens_in INTEGER NOT NULL,
  tokens_out INTEGER NOT NULL,
  cached INTEGER NOT NULL
);
CREATE INDEX ai_costs_created ON ai_costs(created_at);
