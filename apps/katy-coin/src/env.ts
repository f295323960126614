// The bindings and vars of wrangler.toml.
/* eslint-disable @typescript-eslint/no-explicit-any */
export interface Env {
  DB: D1Database;
  VALUATIONS: KVNamespace;
  PHOTOS: R2Bucket;
  WALLET: DurableObjectNamespace<any>;
  SESSION: DurableObjectNamespace<any>;
  TRADES: Workflow;
  PAYMENTS: Workflow;
  SETTLEMENT: Queue;
  RL_IP?: RateLimit;
  RL_USER?: RateLimit;
  METRICS?: AnalyticsEngineDataset;
  AI?: Ai;
  LISTINGS_INDEX?: VectorizeIndex;

  CURRENCIES?: string;
  JWT_SECRET?: string;
  JWT_ISSUER?: string;
  JWT_AUDIENCE?: string;
  ADMIN_USERS?: string;
  TURNSTILE_VERIFY_URL?: string;
  TURNSTILE_SECRET?: string;
  AI_GATEWAY_URL?: string;
  AI_GATEWAY_TOKEN?: string;
  PROVIDER_API_KEY?: string;
  VALUATION_MODEL?: string;
  TRANSLATION_MODEL?: string;
  VALUATION_CACHE_SECONDS?: string;
  FRAUD_MODEL?: string;
  EMBEDDING_MODEL?: string;
  REVIEW_THRESHOLD?: string;
  REVIEW_TIMEOUT?: string;
  FRAUD_AMOUNT_HIGH?: string;
  FRAUD_VELOCITY_PER_HOUR?: string;
  MIN_REPUTATION?: string;
  TRADE_TOLERANCE_PERCENT?: string;
  TRADE_TOLERANCE_MIN?: string;
  MAX_ADJUSTMENT?: string;
  CONFIRM_TIMEOUT_SECONDS?: string;
  HOLD_GRACE_SECONDS?: string;
  SESSION_IDLE_SECONDS?: string;
  OUTBOX_RETRY_MS?: string;
  ANCHOR_URL?: string;
  AI_GATEWAY_LOGS_URL?: string;
  CF_API_TOKEN?: string;
  ANCHOR_TOKEN?: string;
  STEP_DELAY_MS?: string;
  SETTLEMENT_DELAY_MS?: string;
  MAX_PHOTO_BYTES?: string;
}
