// Event bus. Domain events arrive on the crystal-clear-events queue (each
// domain relays its outbox there; POST /api/domains/events publishes one
// by hand). The consumer stores each event once (by id), creates one
// delivery per matching subscription and tries it at once; failed
// deliveries are retried by the cron sweep after an exponential backoff,
// and after the last attempt go to the dead-letter queue. Deliveries are
// signed as the Standard Webhooks spec says: webhook-id (stable across
// retries), webhook-timestamp and webhook-signature "v1,<base64 HMAC-SHA256
// of id.timestamp.body>" keyed with the subscription's secret.
import {
  HttpError, Router, actor, auditStmt, domainEvent, flushOutbox, health, idempotent, json, newId, outboxStmt,
  pathId, readBody, str, type DomainEvent,
  purgeIdempotency,
} from "../../shared/lib.ts";
import { webhookUrlProblem } from "../../shared/ssrf.ts";

interface Env {
  DB: D1Database;
  EVENTS: Queue;
  DEAD_LETTERS: Queue;
  MONITOR: DurableObjectNamespace;
  WEBHOOK_ALLOW_HOSTS?: string;
  WEBHOOK_MAX_ATTEMPTS?: string;
  WEBHOOK_BACKOFF_BASE_SECONDS?: string;
  WEBHOOK_BACKOFF_MAX_SECONDS?: string;
  WEBHOOK_TIMEOUT_MS?: string;
  WEBHOOK_LEASE_SECONDS?: string;
}

const DOMAINS = ["collections", "distributions", "free-play", "balance", "adjustment", "coordinator"];
const TYPE_PATTERN = /^[A-Z][A-Z0-9_]{2,63}$/;

function num(env: Env, name: keyof Env, fallback: number): number {
  const v = Number(env[name] ?? fallback);
  return Number.isFinite(v) && v >= 0 ? v : fallback;
}

function allowHosts(env: Env): string[] {
  return (env.WEBHOOK_ALLOW_HOSTS ?? "").split(",").map((h) => h.trim().toLowerCase()).filter(Boolean);
}

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** "v1,<base64>" per the Standard Webhooks spec. */
async function sign(secret: string, msgId: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", unb64(secret.replace(/^whsec_/, "")), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${msgId}.${timestamp}.${body}`));
  return `v1,${b64(new Uint8Array(mac))}`;
}

function validEvent(v: unknown): v is DomainEvent {
  if (v === null || typeof v !== "object") return false;
  const e = v as Record<string, unknown>;
  return typeof e.id === "string" && typeof e.type === "string" && typeof e.domain === "string" &&
    typeof e.occurredAt === "string" && e.data !== null && typeof e.data === "object";
}

/** Stores an event and its deliveries (both idempotent), then tries them. */
async function ingest(env: Env, event: DomainEvent) {
  const now = new Date();
  const inserted = await env.DB.batch([
    env.DB.prepare("INSERT OR IGNORE INTO events (id, type, domain, body, occurred_at, received_at) VALUES (?, ?, ?, ?, ?, ?)")
      .bind(event.id, event.type, event.domain, JSON.stringify(event), event.occurredAt, now.toISOString()),
    env.DB.prepare(
      `INSERT OR IGNORE INTO deliveries (id, subscription_id, event_id, status, attempts, next_attempt_at, created_at, updated_at)
       SELECT 'dlv_' || lower(hex(randomblob(16))), s.id, ?1, 'pending', 0, ?2, ?3, ?3 FROM subscriptions s
       WHERE s.active = 1 AND (s.domain = ?4 OR s.domain = '*')
         AND EXISTS (SELECT 1 FROM json_each(s.event_types) WHERE value = ?5 OR value = '*')`,
    ).bind(event.id, now.getTime(), now.toISOString(), event.domain, event.type),
  ]);
  if ((inserted[0].meta?.changes ?? 0) > 0) {
    try {
      await env.MONITOR.get(env.MONITOR.idFromName("global")).broadcast({ kind: "event", event });
    } catch (err) {
      console.warn("monitor broadcast failed", String(err));
    }
  }
  const due = await env.DB.prepare("SELECT id FROM deliveries WHERE event_id = ? AND status IN ('pending', 'retrying') AND next_attempt_at <= ?")
    .bind(event.id, Date.now()).all<{ id: string }>();
  await Promise.all((due.results ?? []).map((d) => attempt(env, d.id)));
}

interface DeliveryRow {
  id: string;
  subscription_id: string;
  event_id: string;
  attempts: number;
  webhook_url: string;
  secret: string;
  event_body: string;
}

/** One delivery attempt, if the delivery is still due and not held by another. */
async function attempt(env: Env, deliveryId: string) {
  const now = Date.now();
  const lease = num(env, "WEBHOOK_LEASE_SECONDS", 60) * 1000;
  const claim = await env.DB.prepare(
    "UPDATE deliveries SET next_attempt_at = ?, updated_at = ? WHERE id = ? AND status IN ('pending', 'retrying') AND next_attempt_at <= ?",
  ).bind(now + lease, new Date(now).toISOString(), deliveryId, now).run();
  if ((claim.meta?.changes ?? 0) === 0) return;
  const d = await env.DB.prepare(
    `SELECT d.id, d.subscription_id, d.event_id, d.attempts, s.webhook_url, s.secret, e.body AS event_body
     FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id JOIN events e ON e.id = d.event_id WHERE d.id = ?`,
  ).bind(deliveryId).first<DeliveryRow>();
  if (!d) return;
  const event = JSON.parse(d.event_body) as DomainEvent;
  const n = d.attempts + 1;
  let httpStatus: number | null = null;
  let error: string | null = null;
  const started = Date.now();
  const problem = webhookUrlProblem(d.webhook_url, allowHosts(env));
  if (problem) {
    error = `webhookUrl refused: ${problem}`;
  } else {
    const body = JSON.stringify({ type: event.type, timestamp: event.occurredAt, data: event });
    const ts = Math.floor(Date.now() / 1000);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), num(env, "WEBHOOK_TIMEOUT_MS", 10000));
    try {
      const res = await fetch(d.webhook_url, {
        method: "POST",
        redirect: "manual",
        signal: controller.signal,
        headers: {
          "content-type": "application/json",
          "user-agent": "crystal-clear-webhooks/1",
          "webhook-id": d.id,
          "webhook-timestamp": String(ts),
          "webhook-signature": await sign(d.secret, d.id, ts, body),
        },
        body,
      });
      httpStatus = res.status;
      await res.body?.cancel();
      if (res.status < 200 || res.status >= 300) error = `receiver answered ${res.status}`;
    } catch (err) {
      error = controller.signal.aborted ? "timed out" : `request failed: ${err instanceof Error ? err.message : String(err)}`;
    } finally {
      clearTimeout(timer);
    }
  }
  const finished = new Date();
  const duration = finished.getTime() - started;
  if (error === null) {
    await env.DB.batch([
      env.DB.prepare("INSERT OR REPLACE INTO attempts (delivery_id, n, at, http_status, error, duration_ms, next_attempt_at) VALUES (?, ?, ?, ?, NULL, ?, NULL)")
        .bind(d.id, n, finished.toISOString(), httpStatus, duration),
      env.DB.prepare("UPDATE deliveries SET status = 'delivered', attempts = ?, last_status = ?, last_error = NULL, delivered_at = ?, updated_at = ? WHERE id = ?")
        .bind(n, httpStatus, finished.toISOString(), finished.toISOString(), d.id),
    ]);
    return;
  }
  const maxAttempts = Math.max(1, num(env, "WEBHOOK_MAX_ATTEMPTS", 6));
  if (n >= maxAttempts) {
    // Dead-lettered before it is marked dead: a crash in between repeats
    // the message, which the dead-letter consumer stores once.
    await env.DEAD_LETTERS.send({ kind: "webhook", deliveryId: d.id, subscriptionId: d.subscription_id, eventId: d.event_id, attempts: n, lastError: error });
    await env.DB.batch([
      env.DB.prepare("INSERT OR REPLACE INTO attempts (delivery_id, n, at, http_status, error, duration_ms, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, NULL)")
        .bind(d.id, n, finished.toISOString(), httpStatus, error, duration),
      env.DB.prepare("UPDATE deliveries SET status = 'dead', attempts = ?, last_status = ?, last_error = ?, updated_at = ? WHERE id = ?")
        .bind(n, httpStatus, error, finished.toISOString(), d.id),
    ]);
    return;
  }
  const base = num(env, "WEBHOOK_BACKOFF_BASE_SECONDS", 30);
  const cap = num(env, "WEBHOOK_BACKOFF_MAX_SECONDS", 3600);
  const next = finished.getTime() + Math.min(base * 2 ** (n - 1), cap) * 1000;
  await env.DB.batch([
    env.DB.prepare("INSERT OR REPLACE INTO attempts (delivery_id, n, at, http_status, error, duration_ms, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .bind(d.id, n, finished.toISOString(), httpStatus, error, duration, next),
    env.DB.prepare("UPDATE deliveries SET status = 'retrying', attempts = ?, last_status = ?, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?")
      .bind(n, httpStatus, error, next, finished.toISOString(), d.id),
  ]);
}

async function sweep(env: Env) {
  const due = await env.DB.prepare(
    "SELECT id FROM deliveries WHERE status IN ('pending', 'retrying') AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT 100",
  ).bind(Date.now()).all<{ id: string }>();
  const ids = (due.results ?? []).map((r) => r.id);
  // A few at a time, so one slow receiver does not hold up the sweep.
  for (let i = 0; i < ids.length; i += 10) {
    await Promise.all(ids.slice(i, i + 10).map((id) => attempt(env, id)));
  }
}

async function stats(env: Env) {
  const [events, deliveries, attemptsRow, dead, subs] = await env.DB.batch([
    env.DB.prepare("SELECT COUNT(*) AS n FROM events"),
    env.DB.prepare("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status"),
    env.DB.prepare("SELECT COUNT(*) AS total, SUM(CASE WHEN error IS NULL THEN 0 ELSE 1 END) AS failed FROM attempts"),
    env.DB.prepare("SELECT COUNT(*) AS n FROM dead_letters"),
    env.DB.prepare("SELECT COUNT(*) AS n FROM subscriptions WHERE active = 1"),
  ]);
  const by: Record<string, number> = {};
  for (const r of (deliveries.results ?? []) as { status: string; n: number }[]) by[r.status] = r.n;
  const a = (attemptsRow.results?.[0] ?? {}) as { total?: number; failed?: number };
  return {
    eventsPublished: (events.results?.[0] as { n: number }).n,
    subscriptions: (subs.results?.[0] as { n: number }).n,
    deliveries: { pending: by.pending ?? 0, retrying: by.retrying ?? 0, delivered: by.delivered ?? 0, dead: by.dead ?? 0 },
    attempts: { total: a.total ?? 0, failed: a.failed ?? 0 },
    deadLetters: (dead.results?.[0] as { n: number }).n,
  };
}

const router = new Router<Env>()
  .on("GET", "/api/domains/events/health", (_r, env) => health(env.DB, "events"))
  .on("GET", "/api/domains/events/stats", async (_r, env) => json(await stats(env)))
  .on("POST", "/api/domains/events", async (req, env, ctx) => {
    const { body, raw } = await readBody(req);
    const type = str(body, "type", { max: 64 });
    if (!TYPE_PATTERN.test(type)) throw new HttpError(400, "type: upper-case letters, digits and _ (3-64), such as COLLECTION_COMPLETED", "type");
    const domain = str(body, "domain", { max: 32 });
    if (!DOMAINS.includes(domain)) throw new HttpError(400, `domain: must be one of ${DOMAINS.join(", ")}`, "domain");
    const data = body.data;
    if (data === null || typeof data !== "object" || Array.isArray(data)) throw new HttpError(400, "data: must be a JSON object", "data");
    const who = actor(req);
    const res = await idempotent(env.DB, req, "events.publish", raw, async () => {
      const event = domainEvent(type, domain, { ...(data as Record<string, unknown>), publishedBy: who.subject });
      return {
        answer: { status: 202, body: { id: event.id, type, domain, status: "queued", occurredAt: event.occurredAt } },
        statements: [auditStmt(env.DB, who, "event.published", "event", event.id, { type, domain }), outboxStmt(env.DB, event)],
      };
    });
    ctx.waitUntil(flushOutbox(env.DB, env.EVENTS));
    return res;
  })
  .on("POST", "/api/domains/events/subscriptions", async (req, env) => {
    const { body, raw } = await readBody(req);
    const domain = str(body, "domain", { max: 32 });
    if (domain !== "*" && !DOMAINS.includes(domain)) throw new HttpError(400, `domain: must be * or one of ${DOMAINS.join(", ")}`, "domain");
    const types = body.eventTypes;
    if (!Array.isArray(types) || types.length === 0 || types.length > 50) {
      throw new HttpError(400, "eventTypes: must be an array of 1-50 event types", "eventTypes");
    }
    for (const t of types) {
      if (typeof t !== "string" || (t !== "*" && !TYPE_PATTERN.test(t))) {
        throw new HttpError(400, `eventTypes: ${JSON.stringify(t)} is not an event type`, "eventTypes");
      }
    }
    const webhookUrl = str(body, "webhookUrl", { max: 2048 });
    const problem = webhookUrlProblem(webhookUrl, allowHosts(env));
    if (problem) throw new HttpError(400, `webhookUrl: ${problem}`, "webhookUrl");
    const who = actor(req);
    return idempotent(env.DB, req, "events.subscribe", raw, async () => {
      const secret = `whsec_${b64(crypto.getRandomValues(new Uint8Array(32)))}`;
      const sub = { id: newId("sub"), domain, eventTypes: [...new Set(types as string[])], webhookUrl, createdAt: new Date().toISOString() };
      return {
        // The secret is in this answer only (and in an exact retry of it).
        answer: { status: 201, body: { ...sub, secret } },
        statements: [
          env.DB.prepare("INSERT INTO subscriptions (id, domain, event_types, webhook_url, secret, active, created_by, created_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)")
            .bind(sub.id, domain, JSON.stringify(sub.eventTypes), webhookUrl, secret, who.subject, sub.createdAt),
          auditStmt(env.DB, who, "subscription.created", "subscription", sub.id, sub),
        ],
      };
    });
  })
  .on("GET", "/api/domains/events/subscriptions", async (_r, env) => {
    const rows = await env.DB.prepare("SELECT id, domain, event_types, webhook_url, active, created_at FROM subscriptions ORDER BY created_at")
      .all<{ id: string; domain: string; event_types: string; webhook_url: string; active: number; created_at: string }>();
    return json({
      subscriptions: (rows.results ?? []).map((s) => ({
        id: s.id, domain: s.domain, eventTypes: JSON.parse(s.event_types), webhookUrl: s.webhook_url, active: s.active === 1, createdAt: s.created_at,
      })),
    });
  })
  .on("GET", "/api/domains/events/deliveries", async (req, env) => {
    const sub = new URL(req.url).searchParams.get("subscription");
    if (sub === null) throw new HttpError(400, "subscription: query parameter required", "subscription");
    pathId(sub, "subscription");
    const [deliveries, attempts] = await env.DB.batch([
      env.DB.prepare(
        `SELECT d.*, e.type AS event_type FROM deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.subscription_id = ? ORDER BY d.created_at, d.id LIMIT 500`,
      ).bind(sub),
      env.DB.prepare(
        `SELECT a.* FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.subscription_id = ? ORDER BY a.delivery_id, a.n`,
      ).bind(sub),
    ]);
    const byDelivery: Record<string, unknown[]> = {};
    for (const a of (attempts.results ?? []) as Record<string, unknown>[]) {
      (byDelivery[a.delivery_id as string] ??= []).push({
        n: a.n, at: a.at, httpStatus: a.http_status, error: a.error ?? undefined, durationMs: a.duration_ms,
        nextAttemptAt: a.next_attempt_at === null ? undefined : new Date(a.next_attempt_at as number).toISOString(),
      });
    }
    return json({
      subscription: sub,
      deliveries: ((deliveries.results ?? []) as Record<string, unknown>[]).map((d) => ({
        id: d.id, eventId: d.event_id, eventType: d.event_type, status: d.status, attempts: d.attempts,
        nextAttemptAt: d.status === "pending" || d.status === "retrying" ? new Date(d.next_attempt_at as number).toISOString() : undefined,
        lastStatus: d.last_status ?? undefined, lastError: d.last_error ?? undefined, deliveredAt: d.delivered_at ?? undefined,
        attemptLog: byDelivery[d.id as string] ?? [],
      })),
    });
  })
  .on("GET", "/api/domains/events/:id", async (_r, env, _c, p) => {
    const row = await env.DB.prepare("SELECT body FROM events WHERE id = ?").bind(pathId(p.id, "id")).first<{ body: string }>();
    if (!row) throw new HttpError(404, `event ${p.id} not found`, "id");
    return json(JSON.parse(row.body));
  });

export default {
  fetch: (req: Request, env: Env, ctx: ExecutionContext) => router.handle(req, env, ctx),

  async queue(batch: MessageBatch<unknown>, env: Env) {
    if (batch.queue === "crystal-clear-events-dlq") {
      const now = new Date().toISOString();
      await env.DB.batch(batch.messages.map((m) => {
        const b = m.body as Record<string, unknown>;
        const kind = b && b.kind === "webhook" ? "webhook" : "event";
        const dlqId = kind === "webhook" ? `webhook:${String(b.deliveryId)}` : `event:${String((b as { id?: unknown })?.id ?? m.id)}`;
        return env.DB.prepare("INSERT OR IGNORE INTO dead_letters (id, kind, body, received_at) VALUES (?, ?, ?, ?)")
          .bind(dlqId, kind, JSON.stringify(b), now);
      }));
      return;
    }
    for (const m of batch.messages) {
      if (!validEvent(m.body)) {
        // Not an event: nothing to retry; keep it for inspection.
        await env.DEAD_LETTERS.send({ kind: "malformed", id: m.id, body: m.body });
        m.ack();
        continue;
      }
      try {
        await ingest(env, m.body);
        m.ack();
      } catch (err) {
        console.error("event ingest failed", m.body.id, String(err));
        m.retry({ delaySeconds: Math.min(2 ** m.attempts, 60) });
      }
    }
  },

  async scheduled(_c: ScheduledController, env: Env) {
    await flushOutbox(env.DB, env.EVENTS);
    await purgeIdempotency(env.DB);
    await sweep(env);
  },
};

