// Foundation v2.5 API gateway. The middleware stack, in order:
//   1. CORS               preflights answered here; origins from ALLOWED_ORIGINS
//   2. correlation id     X-Correlation-Id kept (if well formed) or minted, echoed on every answer
//   3. rate limiting      per client IP (RL_IP); per tenant and per user after auth
//   4. Turnstile          on the public endpoints (signup, login), verified at TURNSTILE_VERIFY_URL
//   5. auth               Authorization: Bearer <HS256 JWT> or the httpOnly session cookie
//   6. tenant isolation   the tenant comes from the verified token only
//   7. context token      a 60 s JWT (tenant, user, role) for the services behind service bindings
//   8. audit              every successful mutation goes to the foundation-audit queue
import { Hono } from "hono";
import type { Context as HonoContext, Next } from "hono";
import { cors } from "hono/cors";
import { getCookie, setCookie, deleteCookie } from "hono/cookie";
import {
  CONTEXT_AUDIENCE,
  CONTEXT_HEADER,
  TokenError,
  b64,
  GENESIS,
  checkpointMessage,
  entryHash,
  listVar,
  randomId,
  sha256hex,
  signJwt,
  ssrfRefusal,
  unb64,
  verifyJwt,
} from "../../shared/lib.ts";

interface RateLimit {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

export interface Env {
  DB: D1Database;
  SESSIONS: KVNamespace;
  PLANNING: Fetcher;
  AGENTS: Fetcher;
  RUN_AGENT: DurableObjectNamespace;
  AUDIT_QUEUE: Queue;
  USAGE: AnalyticsEngineDataset;
  RL_IP: RateLimit;
  RL_TENANT: RateLimit;
  RL_USER: RateLimit;
  ALLOWED_ORIGINS: string;
  TURNSTILE_VERIFY_URL: string;
  TURNSTILE_SECRET?: string;
  JWT_SECRET?: string;
  CONTEXT_TOKEN_SECRET?: string;
  JWT_TTL_SECONDS: string;
  SESSION_TTL_SECONDS: string;
  CONTEXT_TOKEN_TTL_SECONDS: string;
  RATE_LIMIT_PERIOD_SECONDS: string;
  ANALYTICS_SQL_URL: string;
  ANALYTICS_API_TOKEN?: string;
  AUDIT_PUBLIC_KEY: string;
  WEBHOOK_ALLOW_HOSTS?: string;
}

interface Vars {
  correlationId: string;
  tenant: string;
  user: string;
  role: string;
  authVia: "bearer" | "cookie";
  contextToken: string;
}

type C = HonoContext<{ Bindings: Env; Variables: Vars }>;

const SESSION_COOKIE = "__Host-foundation_session";
const nowSeconds = () => Math.floor(Date.now() / 1000);

function fail(c: C, status: number, error: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return c.json({ error, correlation_id: c.get("correlationId"), ...extra }, status as 400, headers);
}

async function audit(env: Env, tenant: string, eventType: string, payload: Record<string, unknown>) {
  await env.AUDIT_QUEUE.send({ id: randomId("evt"), tenant_id: tenant, event_type: eventType, payload, at: Date.now() });
}

// ------------------------------------------------------------------ passwords

const PBKDF2_ITERATIONS = 100000;

async function pbkdf2(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256));
}

async function hashPassword(password: string): Promise<string> {
  const salt = new Uint8Array(16);
  crypto.getRandomValues(salt);
  return `pbkdf2-sha256$${PBKDF2_ITERATIONS}$${b64(salt)}$${b64(await pbkdf2(password, salt, PBKDF2_ITERATIONS))}`;
}

async function checkPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, iter, salt, hash] = stored.split("$");
  if (scheme !== "pbkdf2-sha256" || !iter || !salt || !hash) return false;
  const got = b64(await pbkdf2(password, unb64(salt), Number(iter)));
  return got.length === hash.length && got === hash;
}

// ------------------------------------------------------------------ app

const app = new Hono<{ Bindings: Env; Variables: Vars }>();

// 1. CORS
app.use("*", async (c, next) => {
  const allowed = listVar(c.env.ALLOWED_ORIGINS);
  return cors({
    origin: (origin) => (allowed.includes(origin.toLowerCase()) ? origin : null),
    allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    allowHeaders: ["Authorization", "Content-Type", "X-Correlation-Id", "CF-Turnstile-Response"],
    exposeHeaders: ["X-Correlation-Id", "Retry-After"],
    credentials: true,
    maxAge: 600,
  })(c, next);
});

// 2. Correlation id
app.use("*", async (c, next) => {
  const given = c.req.header("x-correlation-id");
  const id = given && /^[A-Za-z0-9._:-]{8,128}$/.test(given) ? given : crypto.randomUUID();
  c.set("correlationId", id);
  await next();
  c.res.headers.set("X-Correlation-Id", id);
});

// 3. Rate limiting, per client IP (per tenant and user follow auth below).
app.use("*", async (c, next) => {
  const ip = c.req.header("cf-connecting-ip") ?? "unknown";
  const { success } = await c.env.RL_IP.limit({ key: "ip:" + ip });
  if (!success) {
    return fail(c, 429, "rate limit exceeded for this client address", { scope: "ip" }, { "Retry-After": c.env.RATE_LIMIT_PERIOD_SECONDS });
  }
  await next();
});

// Usage metrics for every answered request (Analytics Engine, non-blocking).
app.use("*", async (c, next) => {
  const start = Date.now();
  await next();
  try {
    const tenant = c.get("tenant") ?? "anonymous";
    c.env.USAGE.writeDataPoint({
      indexes: [tenant],
      blobs: [tenant, "request", c.req.method + " " + (c.req.routePath ?? c.req.path), String(c.res.status)],
      doubles: [1, Date.now() - start],
    });
  } catch {
    // Metrics never fail a request.
  }
});

app.get("/health", (c) => c.json({ ok: true, service: "foundation-gateway" }));

// 4. Turnstile on the public endpoints.
async function turnstile(c: C, next: Next) {
  const token = c.req.header("cf-turnstile-response");
  if (!token) return fail(c, 403, "Turnstile token missing (send it as CF-Turnstile-Response)");
  if (!c.env.TURNSTILE_SECRET) return fail(c, 500, "TURNSTILE_SECRET is not set");
  const form = new FormData();
  form.append("secret", c.env.TURNSTILE_SECRET);
  form.append("response", token);
  const ip = c.req.header("cf-connecting-ip");
  if (ip) form.append("remoteip", ip);
  let outcome: { success?: boolean; "error-codes"?: string[] };
  try {
    const r = await fetch(c.env.TURNSTILE_VERIFY_URL, { method: "POST", body: form });
    if (!r.ok) return fail(c, 503, `Turnstile verifier answered ${r.status}`);
    outcome = await r.json();
  } catch (e) {
    return fail(c, 503, "Turnstile verifier unreachable: " + String((e as Error).message ?? e));
  }
  if (outcome.success !== true) {
    return fail(c, 403, "Turnstile verification failed", { codes: outcome["error-codes"] ?? [] });
  }
  await next();
}

interface Credentials {
  email?: unknown;
  password?: unknown;
  tenant_name?: unknown;
}

async function readJson<T>(c: C): Promise<T | null> {
  try {
    const v = await c.req.json();
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as T) : null;
  } catch {
    return null;
  }
}

async function issueSession(c: C, tenant: string, user: string, role: string) {
  if (!c.env.JWT_SECRET) throw new TokenError("JWT_SECRET is not set");
  const now = nowSeconds();
  const ttl = Number(c.env.JWT_TTL_SECONDS) || 3600;
  const token = await signJwt({ sub: user, tid: tenant, role, iat: now, exp: now + ttl, iss: "foundation-gateway", aud: "foundation-api" }, c.env.JWT_SECRET);
  const sessionTtl = Number(c.env.SESSION_TTL_SECONDS) || 86400;
  const session = randomId("ses", 24);
  await c.env.SESSIONS.put("session:" + (await sha256hex(session)), JSON.stringify({ tenant, user, role }), { expirationTtl: sessionTtl });
  setCookie(c, SESSION_COOKIE, session, { httpOnly: true, secure: true, sameSite: "Strict", path: "/", maxAge: sessionTtl });
  return { token, token_type: "Bearer", expires_in: ttl, tenant_id: tenant, user_id: user, role };
}

const EMAIL = /^[^@\s]{1,64}@[^@\s]{1,255}$/;

app.post("/api/auth/signup", turnstile, async (c) => {
  const body = await readJson<Credentials>(c);
  if (!body) return fail(c, 400, "body must be a JSON object");
  const { email, password, tenant_name } = body;
  if (typeof email !== "string" || !EMAIL.test(email)) return fail(c, 400, "email is missing or not an address");
  if (typeof password !== "string" || password.length < 10 || password.length > 256) return fail(c, 400, "password must be 10 to 256 characters");
  if (typeof tenant_name !== "string" || tenant_name.trim() === "" || tenant_name.length > 100) return fail(c, 400, "tenant_name must be 1 to 100 characters");
  const tenant = randomId("ten");
  const user = randomId("usr");
  const now = Date.now();
  try {
    await c.env.DB.batch([
      c.env.DB.prepare("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)").bind(tenant, tenant_name.trim(), now),
      c.env.DB.prepare("INSERT INTO users (id, tenant_id, email, password_hash, role, created_at) VALUES (?, ?, ?, ?, 'admin', ?)").bind(
        user, tenant, email.toLowerCase(), await hashPassword(password), now,
      ),
    ]);
  } catch (e) {
    if (String((e as Error).message).includes("UNIQUE")) return fail(c, 409, "an account with this email exists");
    throw e;
  }
  await audit(c.env, tenant, "tenant.created", { user_id: user, email: email.toLowerCase(), correlation_id: c.get("correlationId") });
  return c.json(await issueSession(c, tenant, user, "admin"), 201);
});

app.post("/api/auth/login", turnstile, async (c) => {
  const body = await readJson<Credentials>(c);
  if (!body || typeof body.email !== "string" || typeof body.password !== "string") return fail(c, 400, "email and password are required");
  const row = await c.env.DB.prepare("SELECT id, tenant_id, password_hash, role FROM users WHERE email = ?")
    .bind(body.email.toLowerCase())
    .first<{ id: string; tenant_id: string; password_hash: string; role: string }>();
  if (!row || !(await checkPassword(body.password, row.password_hash))) return fail(c, 401, "wrong email or password");
  await audit(c.env, row.tenant_id, "user.login", { user_id: row.id, correlation_id: c.get("correlationId") });
  return c.json(await issueSession(c, row.tenant_id, row.id, row.role));
});

// 5. Auth, 6. tenant isolation, rate limits per tenant and user, 7. context token, 8. audit.
app.use("/api/*", async (c, next) => {
  if (c.req.path === "/api/auth/signup" || c.req.path === "/api/auth/login") return next();
  if (!c.env.JWT_SECRET || !c.env.CONTEXT_TOKEN_SECRET) return fail(c, 500, "JWT_SECRET and CONTEXT_TOKEN_SECRET must be set");
  const header = c.req.header("authorization");
  let tenant: string;
  let user: string;
  let role: string;
  const ticket = c.req.query("ticket");
  if (header === undefined && ticket !== undefined && /^\/api\/runs\/[^/]+\/live$/.test(c.req.path)) {
    // Browsers cannot send headers on a WebSocket: a one-time ticket from
    // POST /api/runs/:id/live-ticket (60 s) stands in for the token.
    const key = "ticket:" + (await sha256hex(ticket));
    const held = await c.env.SESSIONS.get<{ tenant: string; user: string; role: string; run: string }>(key, "json");
    if (!held || "/api/runs/" + held.run + "/live" !== c.req.path) return fail(c, 401, "live ticket unknown, used or for another run");
    await c.env.SESSIONS.delete(key);
    tenant = held.tenant;
    user = held.user;
    role = held.role;
    c.set("authVia", "bearer");
  } else if (header !== undefined) {
    const m = header.match(/^Bearer\s+(\S+)$/i);
    if (!m) return fail(c, 401, "Authorization must be 'Bearer <token>'", {}, { "WWW-Authenticate": 'Bearer realm="foundation"' });
    try {
      const claims = await verifyJwt(m[1], c.env.JWT_SECRET, nowSeconds(), "foundation-api");
      tenant = claims.tid;
      user = claims.sub;
      role = claims.role;
    } catch (e) {
      if (e instanceof TokenError) {
        return fail(c, 401, e.message, {}, { "WWW-Authenticate": `Bearer realm="foundation", error="invalid_token"` });
      }
      throw e;
    }
    c.set("authVia", "bearer");
  } else {
    const session = getCookie(c, SESSION_COOKIE);
    if (!session) return fail(c, 401, "authentication required (Bearer token or session cookie)", {}, { "WWW-Authenticate": 'Bearer realm="foundation"' });
    const stored = await c.env.SESSIONS.get<{ tenant: string; user: string; role: string }>("session:" + (await sha256hex(session)), "json");
    if (!stored) return fail(c, 401, "session expired or unknown");
    tenant = stored.tenant;
    user = stored.user;
    role = stored.role;
    c.set("authVia", "cookie");
  }
  // Tenant isolation: a tenant named by the client must be the token's.
  const claimed = c.req.header("x-tenant-id");
  if (claimed !== undefined && claimed !== tenant) return fail(c, 403, "X-Tenant-Id does not match the authenticated tenant");
  c.set("tenant", tenant);
  c.set("user", user);
  c.set("role", role);

  const retry = { "Retry-After": c.env.RATE_LIMIT_PERIOD_SECONDS };
  if (!(await c.env.RL_TENANT.limit({ key: tenant })).success) return fail(c, 429, "rate limit exceeded for this tenant", { scope: "tenant" }, retry);
  if (!(await c.env.RL_USER.limit({ key: tenant + ":" + user })).success) return fail(c, 429, "rate limit exceeded for this user", { scope: "user" }, retry);

  const now = nowSeconds();
  const ttl = Number(c.env.CONTEXT_TOKEN_TTL_SECONDS) || 60;
  c.set(
    "contextToken",
    await signJwt({ sub: user, tid: tenant, role, iat: now, exp: now + ttl, aud: CONTEXT_AUDIENCE, iss: "foundation-gateway", cid: c.get("correlationId") }, c.env.CONTEXT_TOKEN_SECRET),
  );

  await next();

  const method = c.req.method;
  if (method !== "GET" && method !== "HEAD" && method !== "OPTIONS" && c.res.status < 400) {
    c.executionCtx.waitUntil(
      audit(c.env, tenant, method + " " + (c.req.routePath ?? c.req.path), {
        path: c.req.path,
        status: c.res.status,
        user_id: user,
        correlation_id: c.get("correlationId"),
      }),
    );
  }
});

app.get("/api/me", (c) => c.json({ tenant_id: c.get("tenant"), user_id: c.get("user"), role: c.get("role"), auth: c.get("authVia") }));

app.post("/api/auth/logout", async (c) => {
  const session = getCookie(c, SESSION_COOKIE);
  if (session) await c.env.SESSIONS.delete("session:" + (await sha256hex(session)));
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: true });
  return c.json({ ok: true });
});

// ------------------------------------------------------------------ services

async function forward(c: C, service: Fetcher, path: string) {
  const url = new URL(c.req.url);
  const headers = new Headers();
  const type = c.req.header("content-type");
  if (type) headers.set("content-type", type);
  headers.set(CONTEXT_HEADER, c.get("contextToken"));
  headers.set("x-correlation-id", c.get("correlationId"));
  const body = c.req.method === "GET" || c.req.method === "HEAD" ? undefined : await c.req.arrayBuffer();
  const r = await service.fetch(new Request("https://service.internal" + path + url.search, { method: c.req.method, headers, body }));
  return new Response(r.body, { status: r.status, headers: r.headers });
}

app.all("/api/planning/*", (c) => forward(c, c.env.PLANNING, c.req.path.slice("/api/planning".length)));
app.post("/api/mcp", (c) => forward(c, c.env.AGENTS, "/mcp"));

// A one-time ticket for the run's WebSocket (browsers cannot send Authorization on one).
app.post("/api/runs/:id/live-ticket", async (c) => {
  const id = c.req.param("id");
  const run = await c.env.DB.prepare("SELECT id FROM planning_runs WHERE id = ? AND tenant_id = ?").bind(id, c.get("tenant")).first();
  if (!run) return fail(c, 404, "no run " + id);
  const ticket = randomId("tkt", 24);
  await c.env.SESSIONS.put("ticket:" + (await sha256hex(ticket)), JSON.stringify({ tenant: c.get("tenant"), user: c.get("user"), role: c.get("role"), run: id }), {
    expirationTtl: 60,
  });
  return c.json({ ticket, expires_in: 60 }, 201);
});

// Live progress of a run over a WebSocket, from the run's agent.
app.get("/api/runs/:id/live", async (c) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") return fail(c, 426, "expected a WebSocket upgrade");
  const id = c.req.param("id");
  const run = await c.env.DB.prepare("SELECT id FROM planning_runs WHERE id = ? AND tenant_id = ?").bind(id, c.get("tenant")).first();
  if (!run) return fail(c, 404, "no run " + id);
  const stub = c.env.RUN_AGENT.get(c.env.RUN_AGENT.idFromName(c.get("tenant") + ":" + id));
  return stub.fetch(new Request("https://agent.internal/connect", { headers: c.req.raw.headers }));
});

// ------------------------------------------------------------------ audit

interface AuditRow {
  seq: number;
  tenant_id: string;
  event_id: string;
  event_type: string;
  payload: string;
  previous_hash: string;
  hash: string;
  created_at: number;
}

app.get("/api/audit", async (c) => {
  const limit = Math.min(Math.max(Number(c.req.query("limit") ?? 100) || 100, 1), 1000);
  const { results } = await c.env.DB.prepare(
    "SELECT seq, event_id, event_type, payload, previous_hash, hash, created_at FROM audit_chain WHERE tenant_id = ? ORDER BY seq DESC LIMIT ?",
  ).bind(c.get("tenant"), limit).all<AuditRow>();
  return c.json({ entries: results.map((r) => ({ ...r, payload: JSON.parse(r.payload) })) });
});

app.get("/api/audit/verify", async (c) => {
  const tenant = c.get("tenant");
  // One batch, one snapshot: entries appended between two separate reads
  // would otherwise look like a truncated tail.
  const [chain, signed] = await c.env.DB.batch([
    c.env.DB.prepare(
      "SELECT seq, tenant_id, event_id, event_type, payload, previous_hash, hash, created_at FROM audit_chain WHERE tenant_id = ? ORDER BY seq",
    ).bind(tenant),
    c.env.DB.prepare("SELECT seq, head_hash, signature FROM audit_checkpoints WHERE tenant_id = ? ORDER BY seq").bind(tenant),
  ]);
  const results = chain.results as unknown as AuditRow[];
  const checkpoints = signed.results as unknown as { seq: number; head_hash: string; signature: string }[];
  let previous = GENESIS;
  let expectSeq = 1;
  const hashes = new Map<number, string>();
  for (const row of results) {
    const broken = (reason: string) => c.json({ ok: false, tenant_id: tenant, entries: results.length, first_broken: { seq: row.seq, event_id: row.event_id, reason } });
    if (row.seq !== expectSeq) return broken(`expected seq ${expectSeq}, found ${row.seq} (entries missing)`);
    if (row.previous_hash !== previous) return broken("previous_hash does not match the hash of the entry before");
    let payload: unknown;
    try {
      payload = JSON.parse(row.payload);
    } catch {
      return broken("payload is not JSON");
    }
    const computed = await entryHash(previous, { ...row, payload });
    if (computed !== row.hash) return broken("hash does not match the entry's content");
    hashes.set(row.seq, row.hash);
    previous = row.hash;
    expectSeq++;
  }
  const head = { seq: expectSeq - 1, hash: previous };
  // Checkpoints: each must be signed by the audit key and match the chain;
  // one beyond the head means the tail was cut off.
  let key: CryptoKey | null = null;
  if (c.env.AUDIT_PUBLIC_KEY) {
    try {
      key = await crypto.subtle.importKey("jwk", JSON.parse(c.env.AUDIT_PUBLIC_KEY), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    } catch (e) {
      return fail(c, 500, "AUDIT_PUBLIC_KEY is not a P-256 public JWK: " + String((e as Error).message));
    }
  }
  let verifiedCheckpoint: number | null = null;
  for (const cp of checkpoints) {
    const checkpointFailure = (reason: string) =>
      c.json({ ok: false, tenant_id: tenant, entries: results.length, head, first_broken: { seq: cp.seq, checkpoint: true, reason } });
    if (key) {
      let sig: Uint8Array;
      try {
        sig = unb64(cp.signature);
      } catch {
        return checkpointFailure("checkpoint signature is not base64");
      }
      const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, sig, checkpointMessage(tenant, cp.seq, cp.head_hash));
      if (!ok) return checkpointFailure("checkpoint signature does not verify");
    }
    if (cp.seq > head.seq) {
      return checkpointFailure(`signed checkpoint at seq ${cp.seq} but the chain ends at seq ${head.seq}: the tail was truncated`);
    }
    if (hashes.get(cp.seq) !== cp.head_hash) return checkpointFailure(`entry ${cp.seq} differs from the signed checkpoint`);
    verifiedCheckpoint = cp.seq;
  }
  return c.json({ ok: true, tenant_id: tenant, entries: results.length, head, checkpoints: checkpoints.length, last_checkpoint: verifiedCheckpoint, signatures_checked: key !== null });
});

// ------------------------------------------------------------------ webhooks

app.post("/api/webhooks", async (c) => {
  const body = await readJson<{ url?: unknown; events?: unknown; name?: unknown }>(c);
  if (!body || typeof body.url !== "string") return fail(c, 400, "url is required");
  const refusal = ssrfRefusal(body.url, listVar(c.env.WEBHOOK_ALLOW_HOSTS), true);
  if (refusal) return fail(c, 400, "webhook url refused: " + refusal);
  let events = "*";
  if (body.events !== undefined) {
    if (!Array.isArray(body.events) || body.events.length === 0 || !body.events.every((e) => typeof e === "string" && /^[a-z_.*]{1,64}$/.test(e))) {
      return fail(c, 400, "events must be a non-empty array of event names (or omit it for all events)");
    }
    events = body.events.join(",");
  }
  const name = typeof body.name === "string" ? body.name.slice(0, 100) : "";
  const key = new Uint8Array(24);
  crypto.getRandomValues(key);
  const secret = "whsec_" + b64(key);
  const id = randomId("whd");
  const now = Date.now();
  await c.env.DB.prepare(
    "INSERT INTO webhook_destinations (id, tenant_id, name, hostname, url, secret, active, events, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
  ).bind(id, c.get("tenant"), name, new URL(body.url).hostname, body.url, secret, events, now, now).run();
  return c.json({ id, url: body.url, events: events.split(","), secret }, 201);
});

app.get("/api/webhooks", async (c) => {
  const { results } = await c.env.DB.prepare("SELECT id, name, url, events, active, created_at FROM webhook_destinations WHERE tenant_id = ? ORDER BY created_at").bind(c.get("tenant")).all();
  return c.json({ destinations: results });
});

app.delete("/api/webhooks/:id", async (c) => {
  const r = await c.env.DB.prepare("DELETE FROM webhook_destinations WHERE id = ? AND tenant_id = ?").bind(c.req.param("id"), c.get("tenant")).run();
  if (!r.meta.changes) return fail(c, 404, "no webhook destination " + c.req.param("id"));
  return c.json({ deleted: c.req.param("id") });
});

app.get("/api/webhooks/deliveries", async (c) => {
  const { results } = await c.env.DB.prepare(
    "SELECT id, destination_id, event_id, event_type, status, attempts, last_status, last_error FROM webhook_deliveries WHERE tenant_id = ? ORDER BY updated_at",
  ).bind(c.get("tenant")).all();
  return c.json({ deliveries: results });
});

app.get("/api/notifications", async (c) => {
  const { results } = await c.env.DB.prepare("SELECT id, user_id, kind, body, created_at FROM notifications WHERE tenant_id = ? ORDER BY created_at").bind(c.get("tenant")).all<{ body: string }>();
  return c.json({ notifications: results.map((n) => ({ ...n, body: JSON.parse(n.body) })) });
});

// ------------------------------------------------------------------ observability

app.get("/api/admin/usage", async (c) => {
  if (c.get("role") !== "admin") return fail(c, 403, "admin role required");
  if (!c.env.ANALYTICS_API_TOKEN) return fail(c, 500, "ANALYTICS_API_TOKEN is not set");
  const tenant = c.get("tenant");
  if (!/^[A-Za-z0-9_]+$/.test(tenant)) return fail(c, 400, "tenant id cannot be queried");
  const sql = `SELECT blob2 AS kind, blob3 AS name, SUM(_sample_interval * double1) AS count, SUM(_sample_interval * double2) AS total FROM foundation_usage WHERE index1 = '${tenant}' GROUP BY kind, name ORDER BY kind, name FORMAT JSON`;
  const r = await fetch(c.env.ANALYTICS_SQL_URL, { method: "POST", headers: { authorization: "Bearer " + c.env.ANALYTICS_API_TOKEN }, body: sql });
  if (!r.ok) return fail(c, 502, `Analytics Engine SQL API answered ${r.status}: ${(await r.text()).slice(0, 200)}`);
  const out = (await r.json()) as { data?: unknown[] };
  return c.json({ tenant_id: tenant, usage: out.data ?? [] });
});

app.notFound((c) => fail(c, 404, "no route for " + c.req.method + " " + c.req.path));
app.onError((e, c) => {
  console.error("gateway error", c.get("correlationId"), (e as Error).stack ?? String(e));
  return fail(c, 500, "internal error");
});

export default app;
