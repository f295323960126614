// Counters (trades started/completed/cancelled, payments, settlements) in
// D1 for the admin endpoint, and every event as a data point in Analytics
// Engine when the METRICS binding exists.
import type { Env } from "./env";

export async function count(env: Env, name: string, value = 1, extra: { blob?: string; double?: number } = {}): Promise<void> {
  await counterStatement(env, name, value).run();
  dataPoint(env, name, value, extra);
}

/** The D1 statement that adds `value` to counter `name`, for a caller that
 * runs it in a batch with the write it counts. */
export function counterStatement(env: Env, name: string, value = 1): D1PreparedStatement {
  return env.DB.prepare("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value").bind(name, value);
}

/** The event as an Analytics Engine data point, when METRICS is bound (best effort). */
export function dataPoint(env: Env, name: string, value = 1, extra: { blob?: string; double?: number } = {}): void {
  try {
    env.METRICS?.writeDataPoint({ blobs: [name, extra.blob ?? ""], doubles: [value, extra.double ?? 0], indexes: [name] });
  } catch (e) {
    console.error("metrics data point dropped:", e instanceof Error ? e.message : e);
  }
}

export async function counters(env: Env): Promise<Record<string, number>> {
  const rows = (await env.DB.prepare("SELECT name, value FROM counters ORDER BY name").all<{ name: string; value: number }>()).results ?? [];
  return Object.fromEntries(rows.map((r) => [r.name, r.value]));
}

interface GatewayLog {
  id?: unknown;
  created_at?: unknown;
  model?: unknown;
  cost?: unknown;
  tokens_in?: unknown;
  tokens_out?: unknown;
  cached?: unknown;
}

const PER_PAGE = 50;
const MAX_PAGES = 20;

/** Reads the AI Gateway's logs (Cloudflare's "List Gateway Logs" API at
 * AI_GATEWAY_LOGS_URL, newest first) and keeps each log's cost once, for
 * the AI cost metrics. Stops at the first page it has fully seen. */
export async function collectAiCosts(env: Env): Promise<{ added: number; reason?: string }> {
  if (!env.AI_GATEWAY_LOGS_URL) return { added: 0, reason: "AI_GATEWAY_LOGS_URL is not set" };
  let added = 0;
  for (let page = 1; page <= MAX_PAGES; page++) {
    const url = new URL(env.AI_GATEWAY_LOGS_URL);
    url.searchParams.set("page", String(page));
    url.searchParams.set("per_page", String(PER_PAGE));
    url.searchParams.set("order_by", "created_at");
    url.searchParams.set("order_by_direction", "desc");
    const headers: Record<string, string> = {};
    if (env.CF_API_TOKEN) headers.authorization = `Bearer ${env.CF_API_TOKEN}`;
    const res = await fetch(url.toString(), { headers });
    if (!res.ok) throw new Error(`gateway logs answered ${res.status}`);
    const body = (await res.json()) as { success?: boolean; result?: GatewayLog[] };
    if (body.success === false || !Array.isArray(body.result)) throw new Error("gateway logs answer has no result list");
    let fresh = 0;
    for (const log of body.result) {
      if (typeof log.id !== "string") continue;
      const created = typeof log.created_at === "number" ? log.created_at : Date.parse(String(log.created_at));
      const r = await env.DB.prepare("INSERT OR IGNORE INTO ai_costs (log_id, created_at, model, cost, tokens_in, tokens_out, cached) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(log.id, Number.isFinite(created) ? created : Date.now(), typeof log.model === "string" ? log.model : null,
          Number(log.cost) || 0, Number(log.tokens_in) || 0, Number(log.tokens_out) || 0, log.cached === true ? 1 : 0)
        .run();
      if (r.meta.changes > 0) {
        fresh++;
        try {
          env.METRICS?.writeDataPoint({ blobs: ["ai_cost", typeof log.model === "string" ? log.model : ""], doubles: [Number(log.cost) || 0, Number(log.tokens_in) || 0, Number(log.tokens_out) || 0], indexes: ["ai_cost"] });
        } catch (e) {
          console.error("metrics data point dropped:", e instanceof Error ? e.message : e);
        }
      }
    }
    added += fresh;
    if (fresh === 0 || body.result.length < PER_PAGE) break;
  }
  return { added };
}

export async function aiCosts(env: Env): Promise<unknown> {
  const total = await env.DB.prepare("SELECT COUNT(*) AS requests, COALESCE(SUM(cost), 0) AS cost, COALESCE(SUM(tokens_in), 0) AS tokens_in, COALESCE(SUM(tokens_out), 0) AS tokens_out, COALESCE(SUM(cached), 0) AS cached FROM ai_costs").first();
  const byModel = (await env.DB.prepare("SELECT model, COUNT(*) AS requests, SUM(cost) AS cost FROM ai_costs GROUP BY model ORDER BY cost DESC").all()).results ?? [];
  return { ...total, by_model: byModel };
}
