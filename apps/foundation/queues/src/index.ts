// Foundation v2.5 queue consumers. One worker, one handler per queue.
import { GENESIS, b64, checkpointMessage, entryHash, json, listVar, ssrfRefusal, webhookSignature } from "../../shared/lib.ts";

export interface Env {
  DB: D1Database;
  USAGE: AnalyticsEngineDataset;
  WEBHOOK_QUEUE: Queue;
  WEBHOOK_DLQ: Queue;
  AUDIT_SIGNING_KEY?: string;
  WEBHOOK_MAX_ATTEMPTS: string;
  WEBHOOK_BACKOFF_BASE_SECONDS: string;
  WEBHOOK_TIMEOUT_MS: string;
  WEBHOOK_ALLOW_HOSTS: string;
}

interface AuditMessage {
  id: string;
  tenant_id: string;
  event_type: string;
  payload: unknown;
  at: number;
}

// ------------------------------------------------------------------ audit

let signingKey: Promise<CryptoKey | null> | null = null;

function auditKey(env: Env): Promise<CryptoKey | null> {
  if (!signingKey) {
    signingKey = env.AUDIT_SIGNING_KEY
      ? crypto.subtle.importKey("jwk", JSON.parse(env.AUDIT_SIGNING_KEY), { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"])
      : Promise.resolve(null);
  }
  return signingKey;
}

function validAudit(body: unknown): body is AuditMessage {
  const m = body as AuditMessage;
  return (
    m !== null && typeof m === "object" && typeof m.id === "string" && typeof m.tenant_id === "string" &&
    typeof m.event_type === "string" && typeof m.at === "number"
  );
}

/**
 * Appends a batch to the tenants' chains, in message order per tenant. Each
 * tenant's new entries and a signed checkpoint of its new head commit in one
 * D1 batch; a concurrent writer that took the same seq makes the batch fail
 * on UNIQUE(tenant_id, seq) and the tenant's messages are retried against
 * the new head. A redelivered event (same id) is not appended twice.
 */
async function appendAudit(batch: MessageBatch<unknown>, env: Env) {
  const byTenant = new Map<string, Message<unknown>[]>();
  for (const m of batch.messages) {
    if (!validAudit(m.body)) {
      console.error("audit: dropping malformed message", m.id);
      m.ack();
      continue;
    }
    const list = byTenant.get(m.body.tenant_id) ?? [];
    list.push(m);
    byTenant.set(m.body.tenant_id, list);
  }
  const key = await auditKey(env);
  for (const [tenant, messages] of byTenant) {
    try {
      const head = await env.DB.prepare("SELECT seq, hash FROM audit_chain WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1")
        .bind(tenant)
        .first<{ seq: number; hash: string }>();
      let seq = head?.seq ?? 0;
      let previous = head?.hash ?? GENESIS;
      const ids = messages.map((m) => (m.body as AuditMessage).id);
      const known = new Set(
        (
          await env.DB.prepare(`SELECT event_id FROM audit_chain WHERE tenant_id = ? AND event_id IN (${ids.map(() => "?").join(",")})`)
            .bind(tenant, ...ids)
            .all<{ event_id: string }>()
        ).results.map((r) => r.event_id),
      );
      const statements: D1PreparedStatement[] = [];
      for (const m of messages) {
        const e = m.body as AuditMessage;
        if (known.has(e.id)) continue;
        known.add(e.id);
        seq += 1;
        const event = { seq, tenant_id: tenant, event_id: e.id, event_type: e.event_type, payload: e.payload ?? null, created_at: e.at };
        const hash = await entryHash(previous, event);
        statements.push(
          env.DB.prepare(
            "INSERT INTO audit_chain (seq, tenant_id, event_id, event_type, payload, previous_hash, hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
          ).bind(seq, tenant, e.id, e.event_type, JSON.stringify(e.payload ?? null), previous, hash, e.at),
        );
        previous = hash;
        env.USAGE.writeDataPoint({ indexes: [tenant], blobs: [tenant, "audit", e.event_type], doubles: [1, 0] });
      }
      if (statements.length > 0 && key) {
        const signature = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, checkpointMessage(tenant, seq, previous)));
        statements.push(
          env.DB.prepare("INSERT INTO audit_checkpoints (tenant_id, seq, head_hash, signature, created_at) VALUES (?, ?, ?, ?, ?)").bind(
            tenant, seq, previous, b64(signature), Date.now(),
          ),
        );
      }
      if (statements.length > 0) await env.DB.batch(statements);
      for (const m of messages) m.ack();
    } catch (e) {
      console.error("audit: tenant", tenant, "retrying:", String((e as Error).message ?? e));
      for (const m of messages) m.retry({ delaySeconds: 1 });
    }
  }
}

// ------------------------------------------------------------------ analytics

interface Metric {
  tenant_id: string;
  kind: string;
  name: string;
  value?: number;
}

function recordMetrics(batch: MessageBatch<unknown>, env: Env) {
  for (const m of batch.messages) {
    const x = m.body as Metric;
    if (x && typeof x.tenant_id === "string" && typeof x.kind === "string" && typeof x.name === "string") {
      env.USAGE.writeDataPoint({ indexes: [x.tenant_id], blobs: [x.tenant_id, x.kind, x.name], doubles: [1, Number(x.value) || 0] });
    }
    m.ack();
  }
}

// ------------------------------------------------------------------ webhooks

interface WebhookEvent {
  kind: "event";
  id: string;
  tenant_id: string;
  type: string;
  data: unknown;
  at: number;
}

interface Delivery {
  kind: "delivery";
  delivery_id: string;
  tenant_id: string;
}

function wants(filter: string, type: string): boolean {
  return filter.split(",").some((f) => f === "*" || f === type || (f.endsWith(".*") && type.startsWith(f.slice(0, -1))));
}

async function fanOut(e: WebhookEvent, env: Env) {
  const { results } = await env.DB.prepare("SELECT id, events FROM webhook_destinations WHERE tenant_id = ? AND active = 1")
    .bind(e.tenant_id)
    .all<{ id: string; events: string }>();
  const now = Date.now();
  for (const d of results) {
    if (!wants(d.events ?? "*", e.type)) continue;
    const id = `msg_${e.id}_${d.id}`;
    const inserted = await env.DB.prepare(
      "INSERT OR IGNORE INTO webhook_deliveries (id, tenant_id, destination_id, event_id, event_type, status, attempts, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?)",
    ).bind(id, e.tenant_id, d.id, e.id, e.type, now).run();
    if (inserted.meta.changes) {
      await env.WEBHOOK_QUEUE.send({ kind: "delivery", delivery_id: id, tenant_id: e.tenant_id, event: { type: e.type, timestamp: new Date(e.at).toISOString(), data: e.data } });
    }
  }
}

async function deliver(m: Message<unknown>, env: Env) {
  const d = m.body as Delivery & { event: unknown };
  const row = await env.DB.prepare(
    `SELECT w.status, w.attempts, w.event_type, x.url, x.secret FROM webhook_deliveries w JOIN webhook_destinations x ON x.id = w.destination_id AND x.tenant_id = w.tenant_id
     WHERE w.id = ? AND w.tenant_id = ?`,
  ).bind(d.delivery_id, d.tenant_id).first<{ status: string; attempts: number; event_type: string; url: string; secret: string }>();
  if (!row || row.status !== "pending") return m.ack();
  const now = Date.now();
  // SSRF guard at connect time: the URL is checked again before every attempt.
  const refusal = ssrfRefusal(row.url, listVar(env.WEBHOOK_ALLOW_HOSTS), true);
  if (refusal) {
    await env.DB.prepare("UPDATE webhook_deliveries SET status = 'refused', last_error = ?, updated_at = ? WHERE id = ? AND tenant_id = ?")
      .bind("refused: " + refusal, now, d.delivery_id, d.tenant_id).run();
    return m.ack();
  }
  const body = JSON.stringify(d.event);
  const timestamp = Math.floor(now / 1000);
  const attempts = row.attempts + 1;
  let status: number | null = null;
  let error: string | null = null;
  try {
    const r = await fetch(row.url, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(Number(env.WEBHOOK_TIMEOUT_MS) || 10000),
      headers: {
        "content-type": "application/json",
        "webhook-id": d.delivery_id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": await webhookSignature(row.secret, d.delivery_id, timestamp, body),
        "user-agent": "foundation-webhooks/2.5",
      },
      body,
    });
    status = r.status;
    await r.body?.cancel();
    if (r.status >= 200 && r.status < 300) {
      await env.DB.prepare("UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, last_status = ?, last_error = NULL, updated_at = ? WHERE id = ? AND tenant_id = ?")
        .bind(attempts, status, Date.now(), d.delivery_id, d.tenant_id).run();
      return m.ack();
    }
    error = `receiver answered ${r.status}`;
  } catch (e) {
    error = "delivery failed: " + String((e as Error).message ?? e);
  }
  const max = Number(env.WEBHOOK_MAX_ATTEMPTS) || 5;
  if (attempts >= max) {
    await env.DB.prepare("UPDATE webhook_deliveries SET status = 'dead', attempts = ?, last_status = ?, last_error = ?, updated_at = ? WHERE id = ? AND tenant_id = ?")
      .bind(attempts, status, error, Date.now(), d.delivery_id, d.tenant_id).run();
    await env.WEBHOOK_DLQ.send(d);
    return m.ack();
  }
  await env.DB.prepare("UPDATE webhook_deliveries SET attempts = ?, last_status = ?, last_error = ?, updated_at = ? WHERE id = ? AND tenant_id = ?")
    .bind(attempts, status, error, Date.now(), d.delivery_id, d.tenant_id).run();
  const base = Number(env.WEBHOOK_BACKOFF_BASE_SECONDS);
  m.retry({ delaySeconds: Math.min(3600, Math.max(0, Number.isFinite(base) ? base : 30) * 2 ** (attempts - 1)) });
}

async function webhooks(batch: MessageBatch<unknown>, env: Env) {
  for (const m of batch.messages) {
    const body = m.body as { kind?: string };
    if (body?.kind === "event") {
      await fanOut(body as WebhookEvent, env);
      m.ack();
    } else if (body?.kind === "delivery") {
      await deliver(m, env);
    } else {
      console.error("webhooks: dropping malformed message", m.id);
      m.ack();
    }
  }
}

async function deadLetters(batch: MessageBatch<unknown>, env: Env) {
  for (const m of batch.messages) {
    const d = m.body as { delivery_id?: string; tenant_id?: string };
    await env.DB.prepare("INSERT OR IGNORE INTO webhook_dead_letters (id, tenant_id, body, created_at) VALUES (?, ?, ?, ?)")
      .bind(d?.delivery_id ?? m.id, d?.tenant_id ?? "unknown", JSON.stringify(m.body), Date.now()).run();
    m.ack();
  }
}

// ------------------------------------------------------------------ notifications

async function notifications(batch: MessageBatch<unknown>, env: Env) {
  for (const m of batch.messages) {
    const n = m.body as { id?: string; tenant_id?: string; user_id?: string; kind?: string; body?: unknown };
    if (n && typeof n.tenant_id === "string" && typeof n.kind === "string") {
      await env.DB.prepare("INSERT OR IGNORE INTO notifications (id, tenant_id, user_id, kind, body, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(n.id ?? m.id, n.tenant_id, n.user_id ?? null, n.kind, JSON.stringify(n.body ?? null), Date.now()).run();
    }
    m.ack();
  }
}

export default {
  async fetch() {
    return json({ error: "foundation-queues has no HTTP API" }, 404);
  },
  async queue(batch: MessageBatch<unknown>, env: Env) {
    switch (batch.queue) {
      case "foundation-audit":
        return appendAudit(batch, env);
      case "foundation-analytics":
        return recordMetrics(batch, env);
      case "foundation-webhooks":
        return webhooks(batch, env);
      case "foundation-webhooks-dlq":
        return deadLetters(batch, env);
      case "foundation-notifications":
        return notifications(batch, env);
      default:
        console.error("no consumer for queue", batch.queue);
        batch.retryAll();
    }
  },
};
