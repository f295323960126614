// The API under /api/v1: authentication (bearer key or dashboard session),
// RBAC per route, multi-layer rate limits, KV caching, x402 payments for
// premium routes, and usage recording into user_analytics.
import { Principal, Role, createUser, issueKey, principalForKey, revokeKey, rotateKey, sessionPrincipal } from "./auth";
import { restoreArchive, runArchival, listArchives } from "./archive";
import { Env, HttpError, clientIp, errorResponse, iso, json, log, now, num, readJson, sha256 } from "./lib";
import { SIGNAL_TYPES } from "./signals";
import { createSubscription } from "./webhooks";

interface Ctx {
  env: Env;
  request: Request;
  url: URL;
  at: number;
  principal: Principal;
  /** Endpoint pattern for limits and analytics ("/signals/{type}"). */
  endpoint: string;
  revenue: number;
  headers: Record<string, string>;
  waitUntil: (p: Promise<unknown>) => void;
}

const ANONYMOUS = (ip: string): Principal => ({ user_id: `anon:${ip}`, role: "viewer", via: "anonymous" });

// ------------------------------------------------------------ rate limits

/** Seconds to the end of the current fixed window of `period` seconds. */
function retryAfter(period: number): string {
  const s = Math.floor(Date.now() / 1000);
  return String(period - (s % period));
}

async function rateLimit(c: Ctx): Promise<void> {
  const period = num(c.env.RATE_LIMIT_PERIOD_SECONDS, 60);
  const deny = (layer: string) =>
    new HttpError(429, `rate limit exceeded (${layer})`, undefined, { "retry-after": retryAfter(period), "x-ratelimit-layer": layer });
  if (!(await c.env.RL_GLOBAL.limit({ key: "global" })).success) throw deny("global");
  if (c.principal.via === "anonymous") {
    if (!(await c.env.RL_ANON.limit({ key: `ip:${clientIp(c.request)}` })).success) throw deny("ip");
  } else if (!(await c.env.RL_KEY.limit({ key: `user:${c.principal.user_id}` })).success) {
    throw deny("key");
  }
  if (c.endpoint === "/signals/{type}") {
    const who = c.principal.via === "anonymous" ? `ip:${clientIp(c.request)}` : `user:${c.principal.user_id}`;
    if (!(await c.env.RL_SIGNALS.limit({ key: who })).success) throw deny("endpoint");
  }
}

// ------------------------------------------------------------------ cache

/** Serves `key` from KV when younger than `ttl` s (by the app clock), else computes and stores it. */
async function cached(c: Ctx, key: string, ttl: number, compute: () => Promise<unknown>): Promise<Response> {
  const hit = await c.env.CACHE.getWithMetadata<{ stored_at: number }>(key);
  if (hit.value !== null && hit.metadata && c.at - hit.metadata.stored_at < ttl * 1000) {
    const age = Math.max(0, Math.floor((c.at - hit.metadata.stored_at) / 1000));
    return new Response(hit.value, {
      headers: {
        "content-type": "application/json; charset=utf-8",
        "cache-status": `cryptointel-kv; hit; ttl=${ttl - age}`,
        "x-cache": "HIT",
        age: String(age),
        ...c.headers,
      },
    });
  }
  const body = JSON.stringify(await compute());
  // KV's own expiry (at least 60 s) only reclaims space; freshness is judged above.
  c.waitUntil(c.env.CACHE.put(key, body, { expirationTtl: Math.max(60, ttl * 2), metadata: { stored_at: c.at } }));
  return new Response(body, {
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-status": `cryptointel-kv; fwd=${hit.value === null ? "miss" : "stale"}; stored`,
      "x-cache": "MISS",
      ...c.headers,
    },
  });
}

// ------------------------------------------------------------------- x402

function paymentRequirements(env: Env, resource: string) {
  return {
    scheme: "exact",
    network: env.X402_NETWORK,
    maxAmountRequired: env.X402_PRICE,
    resource,
    description: "CryptoIntel premium signals feed",
    mimeType: "application/json",
    payTo: env.X402_PAY_TO,
    maxTimeoutSeconds: 60,
    asset: env.X402_ASSET,
    extra: { name: "USDC", version: "2" },
  };
}

function paymentRequired(env: Env, resource: string, error: string): HttpError & { body?: unknown } {
  const e = new HttpError(402, error) as HttpError & { body?: unknown };
  e.body = { x402Version: 1, error, accepts: [paymentRequirements(env, resource)] };
  return e;
}

async function facilitator(env: Env, path: "verify" | "settle", body: unknown): Promise<Record<string, unknown>> {
  let r: Response;
  try {
    r = await fetch(new URL(path, env.FACILITATOR_URL.endsWith("/") ? env.FACILITATOR_URL : env.FACILITATOR_URL + "/"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (e) {
    throw new HttpError(503, `payment facilitator unavailable: ${(e as Error)?.message ?? e}`);
  }
  const text = await r.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(503, `payment facilitator answered ${r.status} without JSON`);
  }
}

/**
 * Premium access: pro and admin roles pass; anyone else pays per request
 * with an x402 X-PAYMENT header, verified (and after the response is built,
 * settled) by the facilitator. Returns a settle step to run before answering.
 */
async function requirePremium(c: Ctx): Promise<null | (() => Promise<void>)> {
  if (c.principal.role === "pro" || c.principal.role === "admin") return null;
  const resource = c.url.origin + c.url.pathname;
  const header = c.request.headers.get("x-payment");
  if (!header) throw paymentRequired(c.env, resource, "X-PAYMENT header is required");
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(atob(header));
  } catch {
    throw paymentRequired(c.env, resource, "X-PAYMENT is not base64-encoded JSON");
  }
  if (payload?.x402Version !== 1 || payload.scheme !== "exact" || payload.network !== c.env.X402_NETWORK || typeof payload.payload !== "object") {
    throw paymentRequired(c.env, resource, "X-PAYMENT does not match the payment requirements (x402Version 1, scheme exact, network)");
  }
  const requirements = paymentRequirements(c.env, resource);
  const verified = await facilitator(c.env, "verify", { x402Version: 1, paymentPayload: payload, paymentRequirements: requirements });
  if (verified.isValid !== true) throw paymentRequired(c.env, resource, `payment invalid: ${verified.invalidReason ?? "unknown reason"}`);
  const hash = await sha256(header);
  const claimed = await c.env.DB.prepare(
    "INSERT INTO payments (payload_hash, payer, amount, resource, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (payload_hash) DO NOTHING",
  )
    .bind(hash, typeof verified.payer === "string" ? verified.payer : null, c.env.X402_PRICE, resource, iso(c.at))
    .run();
  if (claimed.meta.changes === 0) throw paymentRequired(c.env, resource, "payment already used");
  if (c.principal.via === "anonymous" && typeof verified.payer === "string") c.principal = { ...c.principal, user_id: `x402:${verified.payer}` };
  return async () => {
    const settled = await facilitator(c.env, "settle", { x402Version: 1, paymentPayload: payload, paymentRequirements: requirements });
    if (settled.success !== true) {
      await c.env.DB.prepare("DELETE FROM payments WHERE payload_hash = ?").bind(hash).run();
      throw paymentRequired(c.env, resource, `payment not settled: ${settled.errorReason ?? "unknown reason"}`);
    }
    await c.env.DB.prepare("UPDATE payments SET transaction_id = ? WHERE payload_hash = ?").bind(String(settled.transaction ?? ""), hash).run();
    c.revenue = Number(c.env.X402_PRICE) / 1e6;
    c.headers["x-payment-response"] = btoa(JSON.stringify(settled));
  };
}

// ----------------------------------------------------------------- helpers

function requireRole(c: Ctx, roles: Role[]): void {
  if (c.principal.via === "anonymous") {
    throw new HttpError(401, "authentication required", "Authorization", { "www-authenticate": 'Bearer realm="cryptointel"' });
  }
  if (!roles.includes(c.principal.role)) throw new HttpError(403, `requires role ${roles.join(" or ")}`);
}

function symbolParam(raw: string): string {
  const s = decodeURIComponent(raw).toLowerCase();
  if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(s)) throw new HttpError(400, "symbol must be a coin id like bitcoin", "symbol");
  return s;
}

function timeParam(url: URL, name: string): number | null {
  const v = url.searchParams.get(name);
  if (v === null) return null;
  const n = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v);
  if (!Number.isFinite(n)) throw new HttpError(400, `${name} must be an ISO 8601 time or epoch seconds`, name);
  return n;
}

const INTERVALS: Record<string, number> = { "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400 };

// ------------------------------------------------------------------ routes

async function marketData(c: Ctx, symbol: string): Promise<Response> {
  const from = timeParam(c.url, "from");
  const to = timeParam(c.url, "to");
  const interval = c.url.searchParams.get("interval");
  if (from === null && to === null && interval === null) {
    return cached(c, `cache:market_data:${symbol}`, num(c.env.CACHE_TTL_MARKET_SECONDS, 300), async () => {
      const row = await c.env.DB.prepare(
        "SELECT symbol, price, volume_24h, market_cap, timestamp, source FROM market_data WHERE symbol = ? ORDER BY timestamp DESC, id DESC LIMIT 1",
      )
        .bind(symbol)
        .first();
      if (!row) throw new HttpError(404, `no market data for ${symbol}`, "symbol");
      return { data: row };
    });
  }
  const end = to ?? c.at;
  const start = from ?? end - 86400_000;
  if (start > end) throw new HttpError(400, "from must not be after to", "from");
  if (end - start > 90 * 86400_000) throw new HttpError(400, "the range from..to is at most 90 days", "to");
  const step = interval ?? "1h";
  if (step !== "raw" && !(step in INTERVALS)) throw new HttpError(400, `interval must be one of raw, ${Object.keys(INTERVALS).join(", ")}`, "interval");
  const key = `cache:api:market-history:${symbol}:${start}:${end}:${step}`;
  return cached(c, key, num(c.env.CACHE_TTL_API_SECONDS, 60), async () => {
    if (step === "raw") {
      const { results } = await c.env.DB.prepare(
        `SELECT price, volume_24h, market_cap, timestamp, source FROM market_data WHERE symbol = ? AND timestamp >= ? AND timestamp <= ?
         ORDER BY timestamp, id LIMIT 1000`,
      )
        .bind(symbol, iso(start), iso(end))
        .all();
      return { symbol, from: iso(start), to: iso(end), interval: step, data: results };
    }
    const secs = INTERVALS[step];
    const { results } = await c.env.DB.prepare(
      `SELECT (CAST(strftime('%s', timestamp) AS INTEGER) / ?1) * ?1 AS bucket, AVG(price) AS price_avg, MIN(price) AS price_min,
              MAX(price) AS price_max, AVG(volume_24h) AS volume_24h_avg, COUNT(*) AS points
       FROM market_data WHERE symbol = ?2 AND timestamp >= ?3 AND timestamp <= ?4 GROUP BY bucket ORDER BY bucket LIMIT 2000`,
    )
      .bind(secs, symbol, iso(start), iso(end))
      .all<{ bucket: number }>();
    return {
      symbol,
      from: iso(start),
      to: iso(end),
      interval: step,
      data: results.map(({ bucket, ...r }) => ({ time: iso(bucket * 1000), ...r })),
    };
  });
}

function encodeCursor(id: number): string {
  return btoa(`s:${id}`).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

function decodeCursor(raw: string): number {
  try {
    const m = atob(raw.replace(/-/g, "+").replace(/_/g, "/")).match(/^s:(\d+)$/);
    if (m) return Number(m[1]);
  } catch {
    // falls through
  }
  throw new HttpError(400, "cursor is not one this API issued", "cursor");
}

async function signals(c: Ctx, type: string): Promise<Response> {
  if (type !== "all" && !(SIGNAL_TYPES as readonly string[]).includes(type)) {
    throw new HttpError(404, `unknown signal type ${type}; one of all, ${SIGNAL_TYPES.join(", ")}`, "type");
  }
  const p = c.url.searchParams;
  const symbol = p.get("symbol") !== null ? symbolParam(p.get("symbol") as string) : null;
  const minRaw = p.get("min_confidence");
  const min = minRaw === null ? null : Number(minRaw);
  if (min !== null && (!Number.isFinite(min) || min < 0 || min > 1)) throw new HttpError(400, "min_confidence must be a number from 0 to 1", "min_confidence");
  const since = timeParam(c.url, "since");
  const limitRaw = p.get("limit") ?? "20";
  const limit = Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new HttpError(400, "limit must be an integer from 1 to 100", "limit");
  const cursor = p.get("cursor") !== null ? decodeCursor(p.get("cursor") as string) : null;
  const settle = await requirePremium(c);
  const key = `cache:api:signals:${type}:${symbol}:${min}:${since}:${limit}:${cursor}`;
  const response = await cached(c, key, num(c.env.CACHE_TTL_API_SECONDS, 60), async () => {
    const where: string[] = [];
    const args: unknown[] = [];
    if (type !== "all") (where.push("type = ?"), args.push(type));
    if (symbol !== null) (where.push("symbol = ?"), args.push(symbol));
    if (min !== null) (where.push("confidence_score >= ?"), args.push(min));
    if (since !== null) (where.push("created_at >= ?"), args.push(iso(since)));
    if (cursor !== null) (where.push("id < ?"), args.push(cursor));
    const { results } = await c.env.DB.prepare(
      `SELECT id, type, symbol, confidence_score, metadata, created_at FROM signals ${where.length ? "WHERE " + where.join(" AND ") : ""}
       ORDER BY id DESC LIMIT ?`,
    )
      .bind(...args, limit + 1)
      .all<{ id: number; metadata: string }>();
    const page = results.slice(0, limit).map((r) => ({ ...r, metadata: JSON.parse(r.metadata) }));
    return { data: page, next_cursor: results.length > limit ? encodeCursor(page[page.length - 1].id) : null };
  });
  if (settle) await settle();
  // Headers set by the settle step (X-PAYMENT-RESPONSE).
  for (const [k, v] of Object.entries(c.headers)) response.headers.set(k, v);
  return response;
}

async function analytics(c: Ctx, metric: string): Promise<Response> {
  requireRole(c, ["analyst", "admin"]);
  const since = timeParam(c.url, "since") ?? c.at - 86400_000;
  const asked = c.url.searchParams.get("user_id");
  if (asked !== null && c.principal.role !== "admin" && asked !== c.principal.user_id) throw new HttpError(403, "analysts see only their own usage", "user_id");
  const user = asked ?? (c.principal.role === "admin" ? null : c.principal.user_id);
  const filter = user === null ? "" : "AND user_id = ?";
  const args = user === null ? [iso(since)] : [iso(since), user];
  let sql: string;
  if (metric === "usage") {
    sql = `SELECT user_id, endpoint, COUNT(*) AS requests, SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors,
             ROUND(AVG(latency_ms), 1) AS avg_latency_ms
           FROM user_analytics WHERE timestamp >= ? ${filter} GROUP BY user_id, endpoint ORDER BY requests DESC LIMIT 500`;
  } else if (metric === "revenue") {
    sql = `SELECT user_id, endpoint, COUNT(*) AS paid_requests, ROUND(SUM(revenue_generated), 6) AS revenue
           FROM user_analytics WHERE timestamp >= ? AND revenue_generated > 0 ${filter} GROUP BY user_id, endpoint ORDER BY revenue DESC LIMIT 500`;
  } else if (metric === "endpoints") {
    sql = `SELECT endpoint, COUNT(*) AS requests, COUNT(DISTINCT user_id) AS users, ROUND(AVG(latency_ms), 1) AS avg_latency_ms
           FROM user_analytics WHERE timestamp >= ? ${filter} GROUP BY endpoint ORDER BY requests DESC LIMIT 500`;
  } else {
    throw new HttpError(404, "unknown metric; one of usage, revenue, endpoints", "metric");
  }
  const { results } = await c.env.DB.prepare(sql).bind(...args).all();
  return json({ metric, since: iso(since), user_id: user, data: results });
}

async function dashboardView(c: Ctx, view: string): Promise<Response> {
  requireRole(c, ["viewer", "analyst", "pro", "admin"]);
  const db = c.env.DB;
  if (view === "overview") {
    return cached(c, "cache:api:dashboard:overview", num(c.env.CACHE_TTL_API_SECONDS, 60), async () => {
      const prices = await db
        .prepare(
          `SELECT m.symbol, m.price, m.volume_24h, m.market_cap, m.timestamp, m.source FROM market_data m
           WHERE m.id = (SELECT id FROM market_data WHERE symbol = m.symbol ORDER BY timestamp DESC, id DESC LIMIT 1) ORDER BY m.symbol`,
        )
        .all();
      const recent = await db.prepare("SELECT id, type, symbol, confidence_score, created_at FROM signals ORDER BY id DESC LIMIT 20").all();
      const last = await db.prepare("SELECT id, finished_at, records, rejected FROM collections ORDER BY finished_at DESC LIMIT 1").first();
      const sources = await db.prepare("SELECT source, status, last_error, checked_at FROM source_status ORDER BY source").all();
      return { prices: prices.results, signals: recent.results, last_collection: last, sources: sources.results };
    });
  }
  if (view === "news") {
    return cached(c, "cache:news:latest", num(c.env.CACHE_TTL_NEWS_SECONDS, 900), async () => {
      const { results } = await db
        .prepare("SELECT guid, title, link, published_at, source, sentiment, symbols FROM news ORDER BY published_at DESC LIMIT 50")
        .all<{ symbols: string }>();
      return { data: results.map((r) => ({ ...r, symbols: JSON.parse(r.symbols) })) };
    });
  }
  if (view === "sources") {
    const { results } = await db.prepare("SELECT * FROM source_status ORDER BY source").all();
    return json({ data: results });
  }
  if (view === "entities") {
    const { results } = await db
      .prepare("SELECT entity_type, entity_name, SUM(mention_count) AS mentions, MAX(last_seen) AS last_seen FROM entity_mentions GROUP BY entity_type, entity_name ORDER BY mentions DESC LIMIT 100")
      .all();
    return json({ data: results });
  }
  if (view === "chart") {
    const symbol = symbolParam(c.url.searchParams.get("symbol") ?? "bitcoin");
    const { results } = await db
      .prepare("SELECT price, timestamp FROM (SELECT price, timestamp FROM market_data WHERE symbol = ? ORDER BY timestamp DESC LIMIT 200) ORDER BY timestamp")
      .bind(symbol)
      .all();
    const sig = await db.prepare("SELECT id, type, confidence_score, created_at FROM signals WHERE symbol = ? ORDER BY id DESC LIMIT 50").bind(symbol).all();
    return json({ symbol, prices: results, signals: sig.results });
  }
  throw new HttpError(404, "unknown view; one of overview, news, sources, entities, chart", "view");
}

async function admin(c: Ctx, parts: string[], method: string): Promise<Response> {
  const [what, id, action] = parts;
  if (what === "users" && method === "POST" && !id) {
    requireRole(c, ["admin"]);
    return json(await createUser(c.env, await readJson(c.request)), 201);
  }
  if (what === "keys" && method === "POST" && !id) {
    requireRole(c, ["admin"]);
    const body = await readJson(c.request);
    if (typeof body.user_id !== "string") throw new HttpError(400, "user_id is required", "user_id");
    const user = await c.env.DB.prepare("SELECT id FROM users WHERE id = ?").bind(body.user_id).first();
    if (!user) throw new HttpError(404, "no such user", "user_id");
    return json(await issueKey(c.env, body.user_id), 201);
  }
  if (what === "keys" && id && action === "rotate" && method === "POST") {
    requireRole(c, ["viewer", "analyst", "pro", "admin"]);
    const body = c.request.headers.get("content-length") === "0" || !c.request.body ? {} : await readJson(c.request);
    return json(await rotateKey(c.env, id, c.principal, body.grace_seconds), 201);
  }
  if (what === "keys" && id && !action && method === "DELETE") {
    requireRole(c, ["viewer", "analyst", "pro", "admin"]);
    await revokeKey(c.env, id, c.principal);
    return new Response(null, { status: 204 });
  }
  if (what === "webhooks" && method === "POST" && !id) {
    requireRole(c, ["analyst", "pro", "admin"]);
    return json(await createSubscription(c.env, c.principal.user_id, await readJson(c.request)), 201);
  }
  if (what === "webhooks" && id === "deliveries" && method === "GET") {
    requireRole(c, ["admin"]);
    const { results } = await c.env.DB.prepare(
      "SELECT id, subscription_id, signal_id, attempts, status, last_error, next_attempt_at, updated_at FROM webhook_deliveries ORDER BY updated_at DESC LIMIT 200",
    ).all();
    return json({ data: results });
  }
  if (what === "admin") {
    requireRole(c, ["admin"]);
    if (id === "collect" && method === "POST") {
      // The collector worker runs it, from its queue.
      await c.env.EVENTS.send({ kind: "collect" });
      return json({ queued: true }, 202);
    }
    if (id === "archive" && !action && method === "GET") return json(await listArchives(c.env));
    if (id === "archive" && action === "run" && method === "POST") return json(await runArchival(c.env));
    if (id === "archive" && action === "restore" && method === "POST") {
      const body = await readJson(c.request);
      if (typeof body.key !== "string") throw new HttpError(400, "key (an R2 object key from GET /api/v1/admin/archive) is required", "key");
      return json(await restoreArchive(c.env, body.key));
    }
  }
  throw new HttpError(404, "no such route");
}

export async function handleApi(request: Request, env: Env, waitUntil: (p: Promise<unknown>) => void): Promise<Response> {
  const started = Date.now();
  const url = new URL(request.url);
  const parts = url.pathname.replace(/^\/api\/v1\/?/, "").split("/").filter(Boolean);
  const at = now();
  const c: Ctx = {
    env,
    request,
    url,
    at,
    principal: ANONYMOUS(clientIp(request)),
    endpoint: "/" + (parts[0] ?? ""),
    revenue: 0,
    headers: {},
    waitUntil,
  };
  let response: Response;
  try {
    const auth = request.headers.get("authorization");
    if (auth !== null) {
      const m = auth.match(/^Bearer\s+(\S+)$/i);
      if (!m) throw new HttpError(401, "Authorization must be 'Bearer <API key>'", "Authorization");
      c.principal = await principalForKey(env, m[1], at);
    } else {
      const s = await sessionPrincipal(env, request, at);
      if (s) {
        c.principal = s.principal;
        if (s.refresh) c.headers["set-cookie"] = s.refresh;
      }
    }
    const [head, arg] = parts;
    const method = request.method;
    const get = method === "GET" || method === "HEAD";
    if (head === "market-data" && arg && parts.length === 2 && get) c.endpoint = "/market-data/{symbol}";
    else if (head === "signals" && arg && parts.length === 2 && get) c.endpoint = "/signals/{type}";
    else if (head === "analytics" && arg && parts.length === 2 && get) c.endpoint = "/analytics/{metric}";
    else if (head === "dashboard" && arg && parts.length === 2 && get) c.endpoint = "/dashboard/{view}";
    else c.endpoint = `/${head ?? ""}`;
    await rateLimit(c);
    switch (c.endpoint) {
      case "/market-data/{symbol}":
        response = await marketData(c, symbolParam(arg));
        break;
      case "/signals/{type}":
        response = await signals(c, decodeURIComponent(arg));
        break;
      case "/analytics/{metric}":
        response = await analytics(c, decodeURIComponent(arg));
        break;
      case "/dashboard/{view}":
        response = await dashboardView(c, decodeURIComponent(arg));
        break;
      default:
        response = await admin(c, parts, method);
    }
  } catch (e) {
    if (e instanceof HttpError) {
      const body = (e as HttpError & { body?: unknown }).body;
      response = body !== undefined ? json(body, e.status, e.headers) : errorResponse(e);
    } else {
      log("ERROR", "api", "Unhandled error", { path: url.pathname, error: String((e as Error)?.stack ?? e) });
      response = json({ error: "internal error" }, 500);
    }
  }
  for (const [k, v] of Object.entries(c.headers)) if (!response.headers.has(k)) response.headers.set(k, v);
  const latency = Date.now() - started;
  // Refused requests are counted in Analytics Engine only: a flood of 429s
  // must not turn into a flood of D1 writes.
  if (response.status !== 429) {
    waitUntil(
      env.DB.prepare("INSERT INTO user_analytics (user_id, endpoint, revenue_generated, timestamp, status, latency_ms) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(c.principal.user_id, c.endpoint, c.revenue, iso(at), response.status, latency)
        .run()
        .catch((e) => log("WARN", "api", "Usage not recorded", { error: String(e) })),
    );
  }
  try {
    env.USAGE?.writeDataPoint({ blobs: [c.endpoint, c.principal.role, String(response.status)], doubles: [latency, c.revenue], indexes: [c.principal.user_id.slice(0, 96)] });
  } catch {
    // Usage points are best effort.
  }
  return response;
}
