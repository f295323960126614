// Counters (trades started/completed/cancelled, payments, settlements) in
// D1 for the admin endpoint, and every event as a data point in Analytics
// Engine when the METRICS binding exists.
import type { Env } from "./env";

export async function count(env: Env, name: string, value = 1, extra: { blob?: string; double?: number } = {}): Promise<void> {
  await env.DB.prepare("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value")
    .bind(name, value).run();
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
