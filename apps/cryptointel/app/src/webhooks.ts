// Webhooks: subscriptions per signal type, deliveries signed per the
// Standard Webhooks spec (webhook-id, webhook-timestamp, webhook-signature
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" with a "whsec_" secret),
// retried through the queue with exponential backoff, dead-lettered after
// the last attempt. URLs pass an SSRF guard when registered and again
// before each attempt; redirects are not followed.
import { Env, HttpError, b64, hmacSha256, iso, log, now, num, randomHex, unb64 } from "./lib";
import { SIGNAL_TYPES } from "./signals";

const enc = new TextEncoder();

function ipv4Private(host: string): boolean {
  const m = host.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return (
    a === 0 || a === 10 || a === 127 || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 198 && (b === 18 || b === 19)) || a >= 224
  );
}

/** Refuses URLs that would reach this network: private, loopback, link-local or local names. */
export function checkWebhookUrl(raw: string, allowHosts: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new HttpError(400, "url is not a valid URL", "url");
  }
  const allowed = allowHosts
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, "");
  if (allowed.includes(host)) {
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new HttpError(400, "url must be http(s)", "url");
    return url;
  }
  if (url.protocol !== "https:") throw new HttpError(400, "url must use https", "url");
  if (url.username || url.password) throw new HttpError(400, "url must not carry credentials", "url");
  const local =
    host === "localhost" || host.endsWith(".localhost") || host.endsWith(".local") || host.endsWith(".internal") ||
    !host.includes(".") && !host.includes(":");
  const v6 = host.includes(":");
  const v6Private =
    v6 && (host === "::" || host === "::1" || /^f[cd]/.test(host) || /^fe[89ab]/.test(host) || host.startsWith("::ffff:"));
  // Integer or octal forms of IPv4 ("2130706433", "0177.0.0.1") are refused outright.
  const oddV4 = /^[0-9.]+$/.test(host) && !/^\d{1,3}(\.\d{1,3}){3}$/.test(host);
  if (local || v6Private || ipv4Private(host) || oddV4) throw new HttpError(400, "url must not point at a private, loopback or local address", "url");
  return url;
}

export async function createSubscription(env: Env, userId: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  if (typeof body.url !== "string") throw new HttpError(400, "url is required", "url");
  checkWebhookUrl(body.url, env.WEBHOOK_ALLOW_HOSTS ?? "");
  const types = body.types;
  if (!Array.isArray(types) || types.length === 0 || !types.every((t) => (SIGNAL_TYPES as readonly string[]).includes(t))) {
    throw new HttpError(400, `types must be a non-empty list of ${SIGNAL_TYPES.join(", ")}`, "types");
  }
  const id = `wh_${randomHex(8)}`;
  const secret = `whsec_${b64(crypto.getRandomValues(new Uint8Array(24)))}`;
  const at = iso(now());
  await env.DB.prepare("INSERT INTO webhook_subscriptions (id, user_id, url, secret, types, created_at) VALUES (?, ?, ?, ?, ?, ?)")
    .bind(id, userId, body.url, secret, JSON.stringify(types), at)
    .run();
  return { id, url: body.url, types, secret, created_at: at };
}

export async function enqueueDeliveries(
  env: Env,
  signal: { id: number; type: string; symbol: string; confidence_score: number; metadata: string; created_at: string },
): Promise<void> {
  const { results } = await env.DB.prepare(
    "SELECT id FROM webhook_subscriptions WHERE active = 1 AND EXISTS (SELECT 1 FROM json_each(types) WHERE value = ?)",
  )
    .bind(signal.type)
    .all<{ id: string }>();
  const at = iso(now());
  const payload = JSON.stringify({
    type: `signal.${signal.type}`,
    timestamp: at,
    data: { id: signal.id, type: signal.type, symbol: signal.symbol, confidence_score: signal.confidence_score, metadata: JSON.parse(signal.metadata), created_at: signal.created_at },
  });
  for (const sub of results) {
    const id = `msg_${randomHex(12)}`;
    const row = await env.DB.prepare(
      `INSERT INTO webhook_deliveries (id, subscription_id, signal_id, payload, status, updated_at) VALUES (?, ?, ?, ?, 'pending', ?)
       ON CONFLICT (subscription_id, signal_id) DO NOTHING RETURNING id`,
    )
      .bind(id, sub.id, signal.id, payload, at)
      .first<{ id: string }>();
    if (row) await env.EVENTS.send({ kind: "deliver", delivery_id: row.id });
  }
}

export async function sign(secret: string, id: string, timestamp: number, body: string): Promise<string> {
  const key = unb64(secret.replace(/^whsec_/, ""));
  return `v1,${b64(await hmacSha256(key, enc.encode(`${id}.${timestamp}.${body}`)))}`;
}

export function backoffSeconds(env: Env, attempt: number): number {
  return num(env.WEBHOOK_BACKOFF_BASE_SECONDS, 30) * 2 ** (attempt - 1);
}

/**
 * One attempt. Returns the delay before the next attempt, or null when the
 * delivery is finished (delivered, dead, or gone).
 */
export async function deliver(env: Env, deliveryId: string): Promise<number | null> {
  const d = await env.DB.prepare(
    `SELECT d.id, d.payload, d.attempts, d.status, s.url, s.secret, s.active FROM webhook_deliveries d
     JOIN webhook_subscriptions s ON s.id = d.subscription_id WHERE d.id = ?`,
  )
    .bind(deliveryId)
    .first<{ id: string; payload: string; attempts: number; status: string; url: string; secret: string; active: number }>();
  if (!d || d.status !== "pending") return null;
  const maxAttempts = Math.max(1, num(env.WEBHOOK_MAX_ATTEMPTS, 6));
  const attempt = d.attempts + 1;
  const at = now();
  let error: string | null = null;
  try {
    checkWebhookUrl(d.url, env.WEBHOOK_ALLOW_HOSTS ?? "");
    if (!d.active) throw new Error("subscription inactive");
    const ts = Math.floor(at / 1000);
    const response = await fetch(d.url, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(num(env.WEBHOOK_TIMEOUT_MS, 10000)),
      headers: {
        "content-type": "application/json",
        "webhook-id": d.id,
        "webhook-timestamp": String(ts),
        "webhook-signature": await sign(d.secret, d.id, ts, d.payload),
      },
      body: d.payload,
    });
    await response.body?.cancel();
    if (response.status < 200 || response.status >= 300) error = `HTTP ${response.status}`;
  } catch (e) {
    error = String((e as Error)?.message ?? e);
  }
  if (error === null) {
    await env.DB.prepare("UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, last_error = NULL, next_attempt_at = NULL, updated_at = ? WHERE id = ?")
      .bind(attempt, iso(at), d.id)
      .run();
    log("INFO", "webhooks", "Webhook delivered", { delivery_id: d.id, attempt });
    return null;
  }
  if (attempt >= maxAttempts) {
    await env.DB.prepare("UPDATE webhook_deliveries SET status = 'dead', attempts = ?, last_error = ?, next_attempt_at = NULL, updated_at = ? WHERE id = ?")
      .bind(attempt, error, iso(at), d.id)
      .run();
    await env.WEBHOOK_DLQ.send({ delivery_id: d.id, url: d.url, attempts: attempt, last_error: error });
    log("ERROR", "webhooks", "Webhook dead-lettered", { delivery_id: d.id, attempts: attempt, error });
    return null;
  }
  const delay = backoffSeconds(env, attempt);
  await env.DB.prepare("UPDATE webhook_deliveries SET attempts = ?, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?")
    .bind(attempt, error, iso(at + delay * 1000), iso(at), d.id)
    .run();
  log("WARN", "webhooks", "Webhook attempt failed", { delivery_id: d.id, attempt, error, retry_in_s: delay });
  return delay;
}
