// Crystal Clear router: the public entry point.
//
//   /api/domains/<domain>/...   forwarded to the domain worker (service binding)
//   /coordinator/health         the coordinator's health with activeTransactions
//   /monitoring/...             unified metrics, alerts, report, live stream
//   /                           the dashboard page (static assets)
//
// Every route but the health checks needs an HS256 bearer token whose role
// the route allows; each subject is rate limited; each forwarded request is
// counted and timed per domain.
import { json, newId, HttpError, errorResponse } from "../../shared/lib.ts";
import { AuthError, verifyBearer, verifyToken, type Principal, type Role } from "./auth.ts";
import { Monitor, type DomainMetrics } from "./monitor.ts";

export { Monitor };

interface Env {
  DB: D1Database;
  ASSETS: Fetcher;
  MONITOR: DurableObjectNamespace<Monitor>;
  // Rate Limiting bindings ([[ratelimits]] in wrangler.toml), one per role.
  LIMIT_OPERATOR: RateLimit;
  LIMIT_SERVICE: RateLimit;
  LIMIT_READ_ONLY: RateLimit;
  COLLECTIONS: Fetcher;
  DISTRIBUTIONS: Fetcher;
  FREE_PLAY: Fetcher;
  BALANCE: Fetcher;
  ADJUSTMENT: Fetcher;
  COORDINATOR: Fetcher;
  EVENTS: Fetcher;
  JWT_SECRET?: string;
  RATE_LIMIT_PERIOD_SECONDS?: string;
}

const DOMAINS = ["collections", "distributions", "free-play", "balance", "adjustment"] as const;
type Backend = (typeof DOMAINS)[number] | "coordinator" | "events";

function binding(env: Env, d: Backend): Fetcher {
  switch (d) {
    case "collections": return env.COLLECTIONS;
    case "distributions": return env.DISTRIBUTIONS;
    case "free-play": return env.FREE_PLAY;
    case "balance": return env.BALANCE;
    case "adjustment": return env.ADJUSTMENT;
    case "coordinator": return env.COORDINATOR;
    default: return env.EVENTS;
  }
}

const BACKENDS: Backend[] = [...DOMAINS, "coordinator", "events"];
const ALL_ROLES: Role[] = ["operator", "service", "read-only"];

/** The roles a route allows. */
function allowedRoles(method: string, path: string): Role[] {
  if (method === "GET" || method === "HEAD") return ALL_ROLES;
  if (path === "/api/domains/adjustment" || path.startsWith("/api/domains/adjustment/")) return ["operator"];
  if (path.startsWith("/api/domains/events/subscriptions")) return ["operator"];
  return ["operator", "service"];
}

function limiterFor(env: Env, role: Role): RateLimit {
  return role === "operator" ? env.LIMIT_OPERATOR : role === "service" ? env.LIMIT_SERVICE : env.LIMIT_READ_ONLY;
}

/**
 * Seconds until the current rate-limit period ends. The binding says only
 * whether a request fits; its periods are fixed windows (10 or 60 s), so
 * the end of the current one is when a refused subject may try again.
 */
function retryAfterSeconds(env: Env, now: number): number {
  const period = Number(env.RATE_LIMIT_PERIOD_SECONDS ?? "60") === 10 ? 10_000 : 60_000;
  return Math.max(1, Math.ceil((period - (now % period)) / 1000));
}

async function authenticate(req: Request, env: Env, path: string): Promise<Principal> {
  const who = await verifyBearer(req.headers.get("authorization"), env.JWT_SECRET, Date.now());
  if (!allowedRoles(req.method, path).includes(who.role)) {
    throw new HttpError(403, `role ${who.role} may not ${req.method} ${path}`);
  }
  // One budget per subject: the key is the token's subject (the role
  // picks the binding, so each role has its own limit).
  const { success } = await limiterFor(env, who.role).limit({ key: who.subject });
  if (!success) {
    throw new HttpError(429, `rate limit for role ${who.role} exceeded for ${who.subject}`, undefined, {
      retryAfterSeconds: retryAfterSeconds(env, Date.now()),
    });
  }
  return who;
}

function authFailure(err: unknown): Response {
  if (err instanceof AuthError) {
    return json({ error: err.message }, 401, { "www-authenticate": 'Bearer realm="crystal-clear"' });
  }
  const res = errorResponse(err);
  if (err instanceof HttpError && err.status === 429) {
    return new Response(res.body, { status: 429, headers: { ...Object.fromEntries(res.headers), "retry-after": String(err.extra?.retryAfterSeconds ?? 1) } });
  }
  return res;
}

/** Forwards to a backend worker with the caller's identity; times and counts it. */
async function forward(req: Request, env: Env, ctx: ExecutionContext, backend: Backend, who: Principal | null, path = new URL(req.url).pathname) {
  const url = new URL(req.url);
  const headers = new Headers();
  for (const name of ["content-type", "idempotency-key", "accept"]) {
    const v = req.headers.get(name);
    if (v !== null) headers.set(name, v);
  }
  if (who) {
    headers.set("x-cc-subject", who.subject);
    headers.set("x-cc-role", who.role);
  }
  const started = Date.now();
  let res: Response;
  try {
    res = await binding(env, backend).fetch(new Request(`https://${backend}.internal${path}${url.search}`, {
      method: req.method,
      headers,
      body: req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer(),
    }));
  } catch (err) {
    console.error(`${backend} failed`, String(err));
    res = json({ error: `${backend} is unavailable` }, 502);
  }
  const ms = Date.now() - started;
  ctx.waitUntil(env.MONITOR.getByName("global").record(backend, res.status, ms).catch(() => undefined));
  return res;
}

// ------------------------------------------------------------- monitoring

interface Unified {
  generatedAt: string;
  dashboard: { metrics: Record<string, number>; status: string };
  domains: Record<string, { metrics: Record<string, number>; status: string; health: { ok: boolean; latencyMs: number; error?: string } }>;
  coordinator: { status: string; activeTransactions: number; completed: number; compensated: number; failed: number; metrics: DomainMetrics | null };
  eventBus: Record<string, unknown> & { status: string };
  system: { overallStatus: string; healthScore: number; errorRate: number; p99LatencyMs: number; failedSagas: number; stuckSagas: number; deadLetters: number; activeTransactions: number };
}

async function probe(env: Env, backend: Backend, path: string): Promise<{ ok: boolean; latencyMs: number; body: Record<string, unknown>; error?: string }> {
  const started = Date.now();
  try {
    const res = await binding(env, backend).fetch(`https://${backend}.internal${path}`);
    const body = (await res.json()) as Record<string, unknown>;
    return { ok: res.status === 200, latencyMs: Date.now() - started, body, error: res.status === 200 ? undefined : `answered ${res.status}` };
  } catch (err) {
    return { ok: false, latencyMs: Date.now() - started, body: {}, error: String(err) };
  }
}

const EMPTY: DomainMetrics = { requests: 0, clientErrors: 0, serverErrors: 0, errorRate: 0, avgLatencyMs: 0, p99LatencyMs: 0, maxLatencyMs: 0 };

function statusOf(ok: boolean, m: DomainMetrics): string {
  if (!ok) return "unhealthy";
  if (m.errorRate > 0.05 || m.p99LatencyMs > 1000) return "degraded";
  return "healthy";
}

async function unified(env: Env): Promise<Unified> {
  const [snap, coord, events, ...healths] = await Promise.all([
    env.MONITOR.getByName("global").snapshot(),
    probe(env, "coordinator", "/api/domains/coordinator/stats"),
    probe(env, "events", "/api/domains/events/stats"),
    ...DOMAINS.map((d) => probe(env, d, `/api/domains/${d}/health`)),
  ]);
  const domains: Unified["domains"] = {};
  let score = 100;
  DOMAINS.forEach((d, i) => {
    const h = healths[i];
    const m = snap.domains[d] ?? EMPTY;
    const status = statusOf(h.ok, m);
    if (status === "unhealthy") score -= 20;
    if (status === "degraded") score -= 10;
    domains[d] = { metrics: { ...m }, status, health: { ok: h.ok, latencyMs: h.latencyMs, error: h.error } };
  });
  const c = coord.body as Record<string, number>;
  const coordMetrics = snap.domains.coordinator ?? null;
  const failedSagas = (c.compensated ?? 0) + (c.failed ?? 0);
  const stuckSagas = c.failed ?? 0;
  const coordStatus = !coord.ok ? "unhealthy" : stuckSagas > 0 || (coordMetrics && statusOf(true, coordMetrics) !== "healthy") ? "degraded" : "healthy";
  if (coordStatus === "unhealthy") score -= 20;
  if (coordStatus === "degraded") score -= 10;
  const e = events.body as Record<string, unknown>;
  const deadLetters = Number(e.deadLetters ?? 0);
  const eventStatus = !events.ok ? "unhealthy" : deadLetters > 0 ? "degraded" : "healthy";
  if (eventStatus === "unhealthy") score -= 20;
  if (eventStatus === "degraded") score -= 5;
  const total = snap.total;
  score -= Math.min(30, Math.round(total.errorRate * 300));
  if (failedSagas > 0) score -= 5;
  score = Math.max(0, Math.min(100, score));
  const statuses = [...Object.values(domains).map((d) => d.status), coordStatus, eventStatus];
  const overall = statuses.includes("unhealthy") || score < 50 ? "unhealthy" : statuses.includes("degraded") || score < 90 ? "degraded" : "healthy";
  const deliveries = (e.deliveries ?? {}) as Record<string, number>;
  return {
    generatedAt: new Date().toISOString(),
    dashboard: {
      metrics: {
        requests: total.requests, clientErrors: total.clientErrors, serverErrors: total.serverErrors, errorRate: total.errorRate,
        avgLatencyMs: total.avgLatencyMs, p99LatencyMs: total.p99LatencyMs, eventsPublished: Number(e.eventsPublished ?? 0),
        webhooksDelivered: deliveries.delivered ?? 0, streamConnections: snap.sockets,
      },
      status: overall,
    },
    domains,
    coordinator: {
      status: coordStatus, activeTransactions: c.activeTransactions ?? 0, completed: c.completed ?? 0,
      compensated: c.compensated ?? 0, failed: c.failed ?? 0, metrics: coordMetrics,
    },
    eventBus: { status: eventStatus, ...e, metrics: snap.domains.events ?? null },
    system: {
      overallStatus: overall, healthScore: score, errorRate: total.errorRate, p99LatencyMs: total.p99LatencyMs,
      failedSagas, stuckSagas, deadLetters, activeTransactions: c.activeTransactions ?? 0,
    },
  };
}

interface Rule {
  id: string;
  metric: string;
  comparator: string;
  threshold: number;
  severity: string;
  description: string;
}

function fires(value: number, cmp: string, threshold: number): boolean {
  switch (cmp) {
    case ">": return value > threshold;
    case ">=": return value >= threshold;
    case "<": return value < threshold;
    default: return value <= threshold;
  }
}

async function checkAlerts(env: Env, ctx: ExecutionContext, who: Principal) {
  const u = await unified(env);
  const values = u.system as unknown as Record<string, number>;
  const rules = (await env.DB.prepare("SELECT * FROM alert_rules WHERE enabled = 1 ORDER BY id").all<Rule>()).results ?? [];
  const now = new Date().toISOString();
  const stmts: D1PreparedStatement[] = [];
  const plan: { rule: Rule; value: number; firing: boolean; alertId: string }[] = [];
  for (const rule of rules) {
    const value = Number(values[rule.metric]);
    if (!Number.isFinite(value)) continue;
    const firing = fires(value, rule.comparator, rule.threshold);
    const alertId = newId("alr");
    plan.push({ rule, value, firing, alertId });
    if (firing) {
      stmts.push(env.DB.prepare(
        "INSERT OR IGNORE INTO alerts (id, rule_id, severity, status, value, message, triggered_at) VALUES (?, ?, ?, 'ACTIVE', ?, ?, ?)",
      ).bind(alertId, rule.id, rule.severity, value, `${rule.description} (${rule.metric} = ${value})`, now));
    } else {
      stmts.push(env.DB.prepare("UPDATE alerts SET status = 'RESOLVED', resolved_at = ? WHERE rule_id = ? AND status = 'ACTIVE'").bind(now, rule.id));
    }
  }
  const results = stmts.length ? await env.DB.batch(stmts) : [];
  const triggered: unknown[] = [];
  const resolved: string[] = [];
  const audit: D1PreparedStatement[] = [];
  plan.forEach((p, i) => {
    if ((results[i]?.meta?.changes ?? 0) === 0) return;
    if (p.firing) {
      const alert = { id: p.alertId, ruleId: p.rule.id, severity: p.rule.severity, value: p.value, message: `${p.rule.description} (${p.rule.metric} = ${p.value})` };
      triggered.push(alert);
      ctx.waitUntil(env.MONITOR.getByName("global").broadcast({ kind: "alert", alert }).catch(() => undefined));
    } else {
      resolved.push(p.rule.id);
    }
    audit.push(env.DB.prepare("INSERT INTO audit_log (at, subject, role, action, entity, entity_id, detail) VALUES (?, ?, ?, ?, 'alert-rule', ?, ?)")
      .bind(now, who.subject, who.role, p.firing ? "alert.triggered" : "alert.resolved", p.rule.id, JSON.stringify({ value: p.value })));
  });
  if (audit.length) await env.DB.batch(audit);
  return {
    evaluatedAt: now,
    rulesEvaluated: plan.length,
    firing: plan.filter((p) => p.firing).map((p) => ({ ruleId: p.rule.id, severity: p.rule.severity, value: p.value })),
    triggered,
    resolved,
    system: u.system,
  };
}

async function alerts(env: Env, status: string) {
  const rows = status === "all"
    ? await env.DB.prepare("SELECT * FROM alerts ORDER BY triggered_at DESC LIMIT 200").all()
    : await env.DB.prepare("SELECT * FROM alerts WHERE status = ? ORDER BY triggered_at DESC LIMIT 200").bind(status).all();
  return (rows.results ?? []).map((a) => ({
    id: a.id, ruleId: a.rule_id, severity: a.severity, status: a.status, value: a.value, message: a.message,
    triggeredAt: a.triggered_at, resolvedAt: a.resolved_at ?? undefined,
  }));
}

async function report(env: Env) {
  const u = await unified(env);
  const active = await alerts(env, "ACTIVE");
  const dayAgo = new Date(Date.now() - 86_400_000).toISOString();
  const recent = await env.DB.prepare("SELECT COUNT(*) AS n FROM alerts WHERE triggered_at >= ?").bind(dayAgo).first<{ n: number }>();
  const rows = Object.entries(u.domains).map(([name, d]) => ({ domain: name, status: d.status, ...d.metrics }));
  const busiest = [...rows].sort((a, b) => (b.requests as number) - (a.requests as number))[0];
  const slowest = [...rows].sort((a, b) => (b.p99LatencyMs as number) - (a.p99LatencyMs as number))[0];
  const findings: string[] = [];
  for (const r of rows) if (r.status !== "healthy") findings.push(`${r.domain} is ${r.status}`);
  if (u.system.stuckSagas > 0) findings.push(`${u.system.stuckSagas} saga(s) need manual compensation`);
  if (u.system.deadLetters > 0) findings.push(`${u.system.deadLetters} message(s) in the dead-letter store`);
  return {
    generatedAt: u.generatedAt,
    summary: { overallStatus: u.system.overallStatus, healthScore: u.system.healthScore, requests: u.dashboard.metrics.requests, errorRate: u.system.errorRate, p99LatencyMs: u.system.p99LatencyMs },
    domains: rows,
    busiestDomain: busiest?.requests ? busiest.domain : null,
    slowestDomain: slowest?.requests ? slowest.domain : null,
    coordinator: u.coordinator,
    eventBus: u.eventBus,
    alerts: { active, triggeredLast24h: recent?.n ?? 0 },
    findings,
  };
}

// ------------------------------------------------------------------ fetch

export default {
  async fetch(req: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname;
    try {
      // Health checks answer without a token (load balancers, probes).
      const health = /^\/api\/domains\/([a-z-]+)\/health$/.exec(path);
      if (req.method === "GET" && health && (BACKENDS as string[]).includes(health[1])) {
        return await forward(req, env, ctx, health[1] as Backend, null);
      }
      if (req.method === "GET" && path === "/coordinator/health") {
        return await forward(req, env, ctx, "coordinator", null, "/api/domains/coordinator/health");
      }
      if (path === "/monitoring/stream") {
        // Browsers cannot set headers on a WebSocket: the token rides in the query.
        const token = url.searchParams.get("access_token");
        if (!token) throw new AuthError("access_token: query parameter required");
        if (!env.JWT_SECRET) throw new Error("JWT_SECRET is not set");
        await verifyToken(token, env.JWT_SECRET, Date.now());
        return await env.MONITOR.getByName("global").fetch(req);
      }
      const api = /^\/api\/domains\/([a-z-]+)(\/.*)?$/.exec(path);
      if (api || path.startsWith("/monitoring/") || path.startsWith("/coordinator/")) {
        const who = await authenticate(req, env, path);
        if (api) {
          if (!(BACKENDS as string[]).includes(api[1])) return json({ error: `no domain ${api[1]}` }, 404);
          return await forward(req, env, ctx, api[1] as Backend, who);
        }
        if (path.startsWith("/coordinator/")) {
          return await forward(req, env, ctx, "coordinator", who, `/api/domains${path}`);
        }
        if (req.method === "GET" && path === "/monitoring/unified-metrics") return json(await unified(env));
        if (req.method === "POST" && path === "/monitoring/check-alerts") return json(await checkAlerts(env, ctx, who));
        if (req.method === "GET" && path === "/monitoring/alerts") {
          const status = url.searchParams.get("status") ?? "ACTIVE";
          if (!["ACTIVE", "RESOLVED", "all"].includes(status)) throw new HttpError(400, "status: must be ACTIVE, RESOLVED or all", "status");
          return json({ alerts: await alerts(env, status) });
        }
        if (req.method === "GET" && path === "/monitoring/report") return json(await report(env));
        return json({ error: `no route for ${req.method} ${path}` }, 404);
      }
      return await env.ASSETS.fetch(req);
    } catch (err) {
      return authFailure(err);
    }
  },
};
