// GET /health in the seed's shape, from real checks: a D1 query, a KV read,
// the sources' last outcomes, the collector's recency and the detector's
// and webhooks' backlogs; metrics from the collection ledger and the last
// hour of API requests.
import { Env, iso, json, now, num } from "./lib";

type State = "healthy" | "degraded" | "unhealthy";

function pct(x: number): string {
  return `${(Math.round(x * 10000) / 100).toFixed(2)}%`;
}

export async function health(env: Env): Promise<Response> {
  const at = now();
  const services: Record<string, State> = { database: "healthy", cache: "healthy", external_apis: "healthy", workers: "healthy" };
  const metrics = { uptime: "0.00%", response_time_ms: 0, error_rate: "0.00%" };
  try {
    await env.DB.prepare("SELECT 1").first();
  } catch {
    services.database = "unhealthy";
  }
  try {
    await env.CACHE.get("config:health");
  } catch {
    services.cache = "unhealthy";
  }
  if (services.database === "healthy") {
    const { results: sources } = await env.DB.prepare("SELECT status FROM source_status").all<{ status: string }>();
    const degraded = sources.filter((s) => s.status !== "healthy").length;
    services.external_apis = sources.length === 0 ? "degraded" : degraded === 0 ? "healthy" : degraded === sources.length ? "unhealthy" : "degraded";

    const interval = num(env.COLLECTION_INTERVAL_MINUTES, 15) * 60_000;
    const last = await env.DB.prepare("SELECT finished_at FROM collections ORDER BY finished_at DESC LIMIT 1").first<{ finished_at: string }>();
    const backlog = await env.DB.prepare(
      `SELECT (SELECT COUNT(*) FROM collections WHERE signals_at IS NULL AND finished_at < ?1) AS signals,
              (SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending' AND updated_at < ?1) AS deliveries`,
    )
      .bind(iso(at - 10 * 60_000))
      .first<{ signals: number; deliveries: number }>();
    const fresh = last !== null && at - Date.parse(last.finished_at) <= 2 * interval;
    services.workers = fresh && (backlog?.signals ?? 0) === 0 && (backlog?.deliveries ?? 0) === 0 ? "healthy" : "degraded";

    // Uptime: collections completed over the slots expected in the last 24 h
    // (since the first collection, when that is more recent).
    const day = await env.DB.prepare("SELECT COUNT(*) AS n, MIN(started_at) AS first FROM collections WHERE started_at >= ?")
      .bind(iso(at - 86400_000))
      .first<{ n: number; first: string | null }>();
    if (day && day.n > 0 && day.first) {
      const expected = Math.max(1, Math.floor((at - Date.parse(day.first)) / interval) + 1);
      metrics.uptime = pct(Math.min(1, day.n / expected));
    }
    const hour = await env.DB.prepare(
      "SELECT COUNT(*) AS n, AVG(latency_ms) AS latency, SUM(CASE WHEN status >= 500 THEN 1 ELSE 0 END) AS errors FROM user_analytics WHERE timestamp >= ?",
    )
      .bind(iso(at - 3600_000))
      .first<{ n: number; latency: number | null; errors: number | null }>();
    if (hour && hour.n > 0) {
      metrics.response_time_ms = Math.round(hour.latency ?? 0);
      metrics.error_rate = pct((hour.errors ?? 0) / hour.n);
    }
  }
  const states = Object.values(services);
  const status: State = services.database === "unhealthy" ? "unhealthy" : states.every((s) => s === "healthy") ? "healthy" : "degraded";
  return json({ status, timestamp: iso(at), services, metrics }, status === "unhealthy" ? 503 : 200, { "cache-control": "no-store" });
}
