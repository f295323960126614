// Shared by every part of the worker: the environment, the clock, JSON
// logs, hashing and small HTTP helpers.
import type { LiveHub } from "./live";

export interface RateLimit {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

/**
 * Every binding and var of the three workers (dashboard `app/`, `api/`,
 * `collector/`); each worker's config declares the part its code uses.
 */
export interface Env {
  DB: D1Database;
  CACHE: KVNamespace;
  SESSIONS: KVNamespace;
  ARCHIVE: R2Bucket;
  EVENTS: Queue<EventMessage>;
  WEBHOOK_DLQ: Queue<unknown>;
  LIVE: DurableObjectNamespace<LiveHub>;
  ASSETS: Fetcher;
  /** The dashboard's way to the API worker (service binding). */
  API: Fetcher;
  USAGE?: AnalyticsEngineDataset;
  RL_ANON: RateLimit;
  RL_KEY: RateLimit;
  RL_SIGNALS: RateLimit;
  RL_GLOBAL: RateLimit;

  SOURCES: string;
  SOURCE_TIMEOUT_MS: string;
  SOURCE_MAX_BYTES: string;
  SIGNAL_WINDOW: string;
  SIGNAL_MIN_POINTS: string;
  PRICE_Z_THRESHOLD: string;
  VOLUME_SPIKE_RATIO: string;
  SENTIMENT_SHIFT_THRESHOLD: string;
  COLLECTION_INTERVAL_MINUTES: string;
  CACHE_TTL_MARKET_SECONDS: string;
  CACHE_TTL_NEWS_SECONDS: string;
  CACHE_TTL_API_SECONDS: string;
  KEY_ROTATION_GRACE_SECONDS: string;
  SESSION_IDLE_SECONDS: string;
  SESSION_MAX_SECONDS: string;
  RETENTION_DAYS: string;
  RATE_LIMIT_PERIOD_SECONDS: string;
  X402_PRICE: string;
  X402_NETWORK: string;
  X402_ASSET: string;
  X402_PAY_TO: string;
  FACILITATOR_URL: string;
  WEBHOOK_ALLOW_HOSTS: string;
  WEBHOOK_MAX_ATTEMPTS: string;
  WEBHOOK_BACKOFF_BASE_SECONDS: string;
  WEBHOOK_TIMEOUT_MS: string;
}

export type EventMessage =
  | { kind: "collection"; collection_id: string }
  | { kind: "deliver"; delivery_id: string }
  | { kind: "collect" };

export function num(v: string | undefined, fallback: number): number {
  const n = Number(v);
  return v !== undefined && v !== "" && Number.isFinite(n) ? n : fallback;
}

// ------------------------------------------------------------------ clock

/**
 * Milliseconds since the epoch: the platform's clock. Tests move it with
 * `hearth serve --test-clock` (TTLs, grace periods, session timeouts and
 * webhook backoff without waiting); the app has no clock of its own.
 */
export function now(): number {
  return Date.now();
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

// ------------------------------------------------------------------- logs

export type Level = "DEBUG" | "INFO" | "WARN" | "ERROR";

/** One structured log line in the seed's shape. */
export function log(level: Level, service: string, message: string, metadata: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ timestamp: new Date().toISOString(), level, service, message, metadata });
  if (level === "ERROR") console.error(line);
  else if (level === "WARN") console.warn(line);
  else console.log(line);
}

// ----------------------------------------------------------------- crypto

const enc = new TextEncoder();

export function hex(buf: ArrayBuffer | Uint8Array): string {
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function sha256(text: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", enc.encode(text)));
}

export function randomHex(bytes: number): string {
  return hex(crypto.getRandomValues(new Uint8Array(bytes)));
}

export function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function unb64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export async function hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data));
}

/** Constant-time comparison of two strings of any length. */
export function safeEqual(a: string, b: string): boolean {
  const x = enc.encode(a);
  const y = enc.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

// ------------------------------------------------------------------- http

export class HttpError extends Error {
  constructor(
    public status: number,
    message: string,
    public field?: string,
    public headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

export function errorResponse(e: HttpError): Response {
  return json({ error: e.message, ...(e.field ? { field: e.field } : {}) }, e.status, e.headers);
}

export async function readJson(request: Request, maxBytes = 64 * 1024): Promise<Record<string, unknown>> {
  const text = await request.text();
  if (text.length > maxBytes) throw new HttpError(413, `body larger than ${maxBytes} bytes`, "body");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, "body is not valid JSON", "body");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, "body must be a JSON object", "body");
  return body as Record<string, unknown>;
}

export function clientIp(request: Request): string {
  return request.headers.get("cf-connecting-ip") ?? "unknown";
}

/** The live hub every part notifies. */
export function liveHub(env: Env) {
  return env.LIVE.get(env.LIVE.idFromName("global"));
}
