-- Accounts, positions and trades (episodic memory), and backtest jobs.
CREATE TABLE accounts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  currency TEXT NOT NULL DEFAULT 'USD',
  balance REAL NOT NULL CHECK (balance >= 0),
  created_at INTEGER NOT NULL
);

CREATE TABLE positions (
  account_id TEXT NOT NULL REFERENCES accounts(id),
  symbol TEXT NOT NULL,
  quantity REAL NOT NULL CHECK (quantity >= 0),
  avg_price REAL NOT NULL,
  PRIMARY KEY (account_id, symbol)
);

CREATE TABLE trades (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL REFERENCES accounts(id),
  symbol TEXT NOT NULL,
  side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
  quantity REAL NOT NULL CHECK (quantity > 0),
  price REAL NOT NULL,
  fee REAL NOT NULL,
  pnl REAL NOT NULL DEFAULT 0,
  timestamp INTEGER NOT NULL,
  client_order_id TEXT,
  UNIQUE (account_id, client_order_id)
);
CREATE INDEX trades_by_symbol ON trades (symbol, timestamp DESC);
CREATE INDEX trades_by_account ON trades (account_id, timestamp DESC);

CREATE TABLE backtests (
  id TEXT PRIMARY KEY,
  symbol TEXT NOT NULL,
  strategy TEXT NOT NULL,
  params TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  result TEXT,
  error TEXT,
  created_at INTEGER NOT NULL,
  finished_at INTEGER
);
