// Shared types and helpers: the Env, typed HTTP errors, config parsing.

export interface Env {
  DB: D1Database;
  PATTERNS: Vectorize;
  TRADES: AnalyticsEngineDataset;
  BACKTESTS: Queue<{ id: string }>;
  MCP_SESSIONS: DurableObjectNamespace;
  SESSIONS: DurableObjectNamespace;
  MARKET: DurableObjectNamespace;
  ML: DurableObjectNamespace;
  API_TOKEN?: string;
  ANALYTICS_API_TOKEN?: string;
  MARKET_URL: string;
  PAIRS: string;
  MARKET_CACHE_MS: string;
  MARKET_TIMEOUT_MS: string;
  FEE_RATE: string;
  PATTERN_LENGTH: string;
  ANALYTICS_API_BASE: string;
  ACCOUNT_ID: string;
  ML_AGENT_URL: string;
  COMMITTEE_AGENTS: string;
  AGENT_TIMEOUT_MS: string;
  PREDICT_CACHE_MS: string;
  BREAKER_FAILURES: string;
  BREAKER_COOLDOWN_MS: string;
  COMMITTEE_QUORUM: string;
  COMMITTEE_DEADLINE_MS: string;
  BACKTEST_TIMEOUT_MS: string;
  TICK_INTERVAL_MS: string;
  SESSION_RETAIN_EVENTS: string;
  MCP_SESSION_IDLE_MS: string;
}

/** An error with the HTTP status it should be answered with. */
export class HttpError extends Error {
  constructor(
    public status: number,
    message: string,
    public extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export function errorResponse(e: unknown): Response {
  if (e instanceof HttpError) return json({ error: e.message, ...e.extra }, e.status);
  console.error("unhandled", e instanceof Error ? e.stack ?? e.message : String(e));
  return json({ error: "internal error" }, 500);
}

/** A whole number from a var, within [min, max]; a bad value is a config error. */
export function intVar(env: Env, name: keyof Env, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name] as unknown;
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new HttpError(500, `config: ${String(name)} must be a whole number in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  }
  return n;
}

export function numVar(env: Env, name: keyof Env, fallback: number): number {
  const raw = env[name] as unknown;
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new HttpError(500, `config: ${String(name)} must be a non-negative number`);
  return n;
}

export function listVar(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function pairs(env: Env): string[] {
  return listVar(env.PAIRS).map((p) => p.toUpperCase());
}

/** A pair the config lists, upper-cased; anything else is a 400/404. */
export function checkPair(env: Env, raw: unknown, field = "pair"): string {
  if (typeof raw !== "string" || !/^[A-Za-z0-9]{2,10}-[A-Za-z0-9]{2,10}$/.test(raw)) {
    throw new HttpError(400, `${field} must look like BTC-USD, got ${JSON.stringify(raw)}`);
  }
  const pair = raw.toUpperCase();
  if (!pairs(env).includes(pair)) throw new HttpError(404, `${field} ${pair} is not traded here (PAIRS: ${pairs(env).join(", ")})`);
  return pair;
}

/** A path segment, percent-decoded; a malformed escape is a 400. */
export function segment(raw: string, field: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, `${field} is not a valid percent-encoded path segment`);
  }
}

export async function readJson(request: Request, maxBytes = 256 * 1024): Promise<Record<string, unknown>> {
  const text = await request.text();
  if (text.length > maxBytes) throw new HttpError(413, `body larger than ${maxBytes} bytes`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, "body is not valid JSON");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw new HttpError(400, "body must be a JSON object");
  return body as Record<string, unknown>;
}

/** Constant-time comparison of two strings. */
export function safeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

export function checkAuth(env: Env, request: Request): void {
  const token = env.API_TOKEN;
  if (!token) throw new HttpError(503, "API_TOKEN is not configured");
  const header = request.headers.get("authorization") ?? "";
  const given = header.startsWith("Bearer ") ? header.slice(7).trim() : "";
  if (!given || !safeEqual(given, token)) throw new HttpError(401, "missing or wrong bearer token");
}

/** fetch with a deadline; a timeout becomes an Error naming the URL. */
export async function fetchWithTimeout(url: string, init: RequestInit, ms: number): Promise<Response> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    return await fetch(url, { ...init, signal: controller.signal });
  } catch (e) {
    if (controller.signal.aborted) throw new Error(`${url}: no answer within ${ms} ms`);
    throw new Error(`${url}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    clearTimeout(timer);
  }
}

export function finite(raw: unknown, field: string, { min = -Infinity, positive = false } = {}): number {
  if (typeof raw !== "number" || !Number.isFinite(raw)) throw new HttpError(400, `${field} must be a finite number`);
  if (positive && raw <= 0) throw new HttpError(400, `${field} must be greater than 0`);
  if (raw < min) throw new HttpError(400, `${field} must be at least ${min}`);
  return raw;
}
