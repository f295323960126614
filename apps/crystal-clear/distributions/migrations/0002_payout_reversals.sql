-- Payout reversals (the payout saga's compensation): a reversed payout no
-- longer counts against the agent's earned commissions. One row per payout
-- at most; rows are never changed.
CREATE TABLE payout_reversals (
  payout_id TEXT PRIMARY KEY REFERENCES payouts (id),
  reason TEXT NOT NULL,
  subject TEXT NOT NULL,
  created_at TEXT NOT NULL
);
