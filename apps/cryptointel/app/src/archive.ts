// Archival (daily cron): market data older than RETENTION_DAYS moves to R2
// as gzip-compressed NDJSON, one object per day of data per run, and is
// deleted from D1 only after its object is written. Restoring an object
// inserts its rows again (by id, so restoring twice changes nothing).
import { Env, HttpError, iso, log, now, num } from "./lib";

const PREFIX = "archive/market_data/";
const MAX_ROWS_PER_RUN = 50_000;
const PAGE = 1000;

interface Row {
  id: number;
  symbol: string;
  price: number | null;
  volume_24h: number | null;
  market_cap: number | null;
  timestamp: string;
  source: string;
  collection_id: string | null;
}

async function gzip(text: string): Promise<ArrayBuffer> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).arrayBuffer();
}

async function gunzip(body: ReadableStream): Promise<string> {
  return new Response(body.pipeThrough(new DecompressionStream("gzip"))).text();
}

export async function runArchival(env: Env): Promise<{ cutoff: string; archived: number; objects: string[] }> {
  const at = now();
  const cutoff = iso(at - num(env.RETENTION_DAYS, 30) * 86400_000);
  const runId = iso(at).replace(/[:.]/g, "-");
  const byDay = new Map<string, Row[]>();
  let total = 0;
  let lastId = 0;
  while (total < MAX_ROWS_PER_RUN) {
    const { results } = await env.DB.prepare(
      `SELECT id, symbol, price, volume_24h, market_cap, timestamp, source, collection_id FROM market_data
       WHERE timestamp < ? AND id > ? ORDER BY id LIMIT ?`,
    )
      .bind(cutoff, lastId, PAGE)
      .all<Row>();
    if (results.length === 0) break;
    for (const r of results) {
      const day = r.timestamp.slice(0, 10);
      byDay.set(day, [...(byDay.get(day) ?? []), r]);
    }
    total += results.length;
    lastId = results[results.length - 1].id;
  }
  const objects: string[] = [];
  for (const [day, rows] of [...byDay].sort()) {
    const key = `${PREFIX}${day}/${runId}.ndjson.gz`;
    const body = rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
    await env.ARCHIVE.put(key, await gzip(body), {
      httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" },
      customMetadata: { rows: String(rows.length), first_id: String(rows[0].id), last_id: String(rows[rows.length - 1].id) },
    });
    // Delete exactly the rows written to the object.
    const ids = rows.map((r) => r.id);
    const deletes: D1PreparedStatement[] = [];
    for (let i = 0; i < ids.length; i += 90) {
      const part = ids.slice(i, i + 90);
      deletes.push(env.DB.prepare(`DELETE FROM market_data WHERE id IN (${part.map(() => "?").join(",")})`).bind(...part));
    }
    await env.DB.batch(deletes);
    objects.push(key);
  }
  log("INFO", "archival", "Archival completed", { cutoff, rows_archived: total, objects: objects.length });
  return { cutoff, archived: total, objects };
}

export async function listArchives(env: Env): Promise<{ objects: { key: string; size: number; rows: number }[] }> {
  const out: { key: string; size: number; rows: number }[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.ARCHIVE.list({ prefix: PREFIX, cursor, include: ["customMetadata"] });
    for (const o of page.objects) out.push({ key: o.key, size: o.size, rows: Number(o.customMetadata?.rows ?? 0) });
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor && out.length < 10_000);
  return { objects: out };
}

export async function restoreArchive(env: Env, key: string): Promise<{ key: string; rows: number; restored: number }> {
  if (!key.startsWith(PREFIX)) throw new HttpError(400, `key must start with ${PREFIX}`, "key");
  const obj = await env.ARCHIVE.get(key);
  if (!obj) throw new HttpError(404, "no such archive object", "key");
  const lines = (await gunzip(obj.body)).split("\n").filter(Boolean);
  const rows = lines.map((l) => {
    const r = JSON.parse(l) as Row;
    return [r.id, r.symbol, r.price, r.volume_24h, r.market_cap, r.timestamp, r.source, r.collection_id];
  });
  // 12 rows of 8 parameters per statement (D1 binds at most 100), 50 statements per batch.
  let restored = 0;
  for (let i = 0; i < rows.length; i += 600) {
    const stmts: D1PreparedStatement[] = [];
    for (let j = i; j < Math.min(rows.length, i + 600); j += 12) {
      const part = rows.slice(j, Math.min(j + 12, i + 600));
      stmts.push(
        env.DB.prepare(
          `INSERT INTO market_data (id, symbol, price, volume_24h, market_cap, timestamp, source, collection_id) VALUES
           ${part.map(() => "(?, ?, ?, ?, ?, ?, ?, ?)").join(", ")} ON CONFLICT (id) DO NOTHING`,
        ).bind(...part.flat()),
      );
    }
    const res = await env.DB.batch(stmts);
    restored += res.reduce((n, x) => n + (x.meta.changes ?? 0), 0);
  }
  log("INFO", "archival", "Archive restored", { key, rows: lines.length, restored });
  return { key, rows: lines.length, restored };
}
