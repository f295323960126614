-- CryptoIntel schema: the seed's four tables (market_data, signals,
-- entity_mentions, user_analytics) with the columns and indexes the
-- collector, detector and API need, plus accounts, keys, webhooks and the
-- collection ledger. Times are ISO 8601 UTC text ("2026-01-01T00:00:00.000Z").

CREATE TABLE market_data (
  id INTEGER PRIMARY KEY,
  symbol TEXT NOT NULL,
  price REAL,
  volume_24h REAL,
  market_cap REAL,
  timestamp DATETIME DEFAULT CURRENT_TIMESTAMP,
  source TEXT NOT NULL,
  collection_id TEXT
);
-- Latest and history per symbol; detector windows per symbol and source.
CREATE INDEX idx_market_symbol_time ON market_data (symbol, timestamp DESC);
CREATE INDEX idx_market_symbol_source_time ON market_data (symbol, source, timestamp DESC);
-- Archival scans by age; collection audits.
CREATE INDEX idx_market_time ON market_data (timestamp);
CREATE INDEX idx_market_collection ON market_data (collection_id);

CREATE TABLE defi_tvl (
  id INTEGER PRIMARY KEY,
  protocol TEXT NOT NULL,
  symbol TEXT,
  chain TEXT,
  tvl REAL NOT NULL,
  change_1d REAL,
  timestamp TEXT NOT NULL,
  source TEXT NOT NULL,
  collection_id TEXT
);
CREATE INDEX idx_defi_protocol_time ON defi_tvl (protocol, timestamp DESC);

CREATE TABLE news (
  id INTEGER PRIMARY KEY,
  guid TEXT NOT NULL UNIQUE,
  title TEXT NOT NULL,
  link TEXT NOT NULL,
  published_at TEXT NOT NULL,
  source TEXT NOT NULL,
  sentiment REAL NOT NULL,
  symbols TEXT NOT NULL DEFAULT '[]',
  collected_at TEXT NOT NULL,
  collection_id TEXT
);
CREATE INDEX idx_news_collected ON news (collected_at DESC);
CREATE INDEX idx_news_collection ON news (collection_id);

CREATE TABLE signals (
  id INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  symbol TEXT NOT NULL,
  confidence_score REAL,
  metadata TEXT,
  created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
  window_start TEXT NOT NULL,
  collection_id TEXT
);
-- One signal per symbol, type and detection window.
CREATE UNIQUE INDEX idx_signals_dedup ON signals (type, symbol, window_start);
CREATE INDEX idx_signals_type_id ON signals (type, id DESC);
CREATE INDEX idx_signals_symbol_id ON signals (symbol, id DESC);
CREATE INDEX idx_signals_created ON signals (created_at);
-- The high-confidence feed (partial index).
CREATE INDEX idx_signals_confident ON signals (type, id DESC) WHERE confidence_score >= 0.8;

CREATE TABLE entities (
  entity_type TEXT NOT NULL CHECK (entity_type IN ('coin', 'exchange', 'person')),
  entity_name TEXT NOT NULL,
  -- Lower-case phrases that count as a mention, comma-separated.
  aliases TEXT NOT NULL,
  -- For coins: the market_data symbol (CoinGecko id) the mention refers to.
  symbol TEXT,
  PRIMARY KEY (entity_type, entity_name)
);

CREATE TABLE entity_mentions (
  id INTEGER PRIMARY KEY,
  entity_type TEXT NOT NULL,
  entity_name TEXT NOT NULL,
  source TEXT NOT NULL,
  mention_count INTEGER DEFAULT 1,
  last_seen DATETIME DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX idx_mentions_entity_source ON entity_mentions (entity_type, entity_name, source);
CREATE INDEX idx_mentions_last_seen ON entity_mentions (last_seen DESC);

CREATE TABLE user_analytics (
  id INTEGER PRIMARY KEY,
  user_id TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  revenue_generated REAL,
  timestamp DATETIME DEFAULT CURRENT_TIMESTAMP,
  status INTEGER,
  latency_ms REAL
);
CREATE INDEX idx_analytics_user_time ON user_analytics (user_id, timestamp);
CREATE INDEX idx_analytics_endpoint_time ON user_analytics (endpoint, timestamp);
CREATE INDEX idx_analytics_time ON user_analytics (timestamp);

-- One row per collector run, written in the same batch as its records.
CREATE TABLE collections (
  id TEXT PRIMARY KEY,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  records INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  sources TEXT NOT NULL,
  signals_at TEXT
);
CREATE INDEX idx_collections_finished ON collections (finished_at DESC);
CREATE INDEX idx_collections_pending ON collections (finished_at) WHERE signals_at IS NULL;

CREATE TABLE source_status (
  source TEXT PRIMARY KEY,
  status TEXT NOT NULL CHECK (status IN ('healthy', 'degraded')),
  last_error TEXT,
  latency_ms INTEGER,
  records INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  checked_at TEXT NOT NULL
);

CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('viewer', 'analyst', 'pro', 'admin')),
  password_hash TEXT,
  password_salt TEXT,
  totp_secret TEXT,
  created_at TEXT NOT NULL
);

CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id),
  -- SHA-256 of the key, hex; the key itself is shown once.
  key_hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  created_at TEXT NOT NULL,
  -- Set when the key is rotated (end of its grace period) or revoked.
  expires_at TEXT,
  replaced_by TEXT
);
CREATE INDEX idx_api_keys_user ON api_keys (user_id);

CREATE TABLE webhook_subscriptions (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  url TEXT NOT NULL,
  secret TEXT NOT NULL,
  types TEXT NOT NULL,
  created_at TEXT NOT NULL,
  active INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  subscription_id TEXT NOT NULL,
  signal_id INTEGER NOT NULL,
  payload TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
  last_error TEXT,
  next_attempt_at TEXT,
  updated_at TEXT NOT NULL,
  UNIQUE (subscription_id, signal_id)
);
CREATE INDEX idx_deliveries_status ON webhook_deliveries (status, next_attempt_at);

-- x402 payments accepted, one per payment payload (no replays).
CREATE TABLE payments (
  payload_hash TEXT PRIMARY KEY,
  payer TEXT,
  amount TEXT NOT NULL,
  resource TEXT NOT NULL,
  transaction_id TEXT,
  created_at TEXT NOT NULL
);

INSERT INTO entities (entity_type, entity_name, aliases, symbol) VALUES
  ('coin', 'Bitcoin', 'bitcoin,btc', 'bitcoin'),
  ('coin', 'Ethereum', 'ethereum,ether,eth', 'ethereum'),
  ('coin', 'Solana', 'solana,sol', 'solana'),
  ('exchange', 'Binance', 'binance', NULL),
  ('exchange', 'Coinbase', 'coinbase', NULL),
  ('exchange', 'Kraken', 'kraken', NULL),
  ('person', 'Vitalik Buterin', 'vitalik buterin,vitalik', NULL),
  ('person', 'Changpeng Zhao', 'changpeng zhao,cz', NULL),
  ('person', 'Michael Saylor', 'michael saylor,saylor', NULL);
