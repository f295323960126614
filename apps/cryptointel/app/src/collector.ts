// The collector (cron */15): fetches every configured source concurrently,
// validates, extracts entities and sentiment from news, and stores the whole
// run in one D1 batch (one transaction: a crash stores all of it or none).
// A source that fails or times out is recorded as degraded; the others
// are stored. When the batch commits, the detector is queued.
import { Env, iso, liveHub, log, now, num } from "./lib";
import { Entity, MarketRecord, NewsRecord, Parsed, TvlRecord, extractEntities, fetchSource, parseSourceConfig, sentiment } from "./sources";

export interface SourceOutcome {
  source: string;
  status: "healthy" | "degraded";
  records: number;
  rejected: number;
  latency_ms: number;
  error?: string;
}

export interface CollectionSummary {
  collection_id: string;
  records: number;
  rejected: number;
  sources: SourceOutcome[];
  processing_time_ms: number;
}

async function dictionary(env: Env): Promise<Entity[]> {
  const { results } = await env.DB.prepare("SELECT entity_type, entity_name, aliases, symbol FROM entities").all<{
    entity_type: string;
    entity_name: string;
    aliases: string;
    symbol: string | null;
  }>();
  return results.map((r) => ({ ...r, aliases: r.aliases.split(",").map((a) => a.trim().toLowerCase()).filter(Boolean) }));
}

export async function runCollection(env: Env): Promise<CollectionSummary> {
  const started = Date.now();
  const at = now();
  const stamp = iso(at);
  const collectionId = `c_${at}_${crypto.randomUUID().slice(0, 8)}`;
  const sources = parseSourceConfig(env.SOURCES);
  const timeout = num(env.SOURCE_TIMEOUT_MS, 10000);
  const maxBytes = num(env.SOURCE_MAX_BYTES, 2 * 1024 * 1024);

  const results = await Promise.all(
    sources.map(async (s) => {
      const t0 = Date.now();
      try {
        const parsed = await fetchSource(s, timeout, maxBytes);
        return { source: s, parsed, ms: Date.now() - t0 } as const;
      } catch (e) {
        return { source: s, error: String((e as Error)?.message ?? e), ms: Date.now() - t0 } as const;
      }
    }),
  );

  const dict = await dictionary(env);
  const stmts: D1PreparedStatement[] = [];
  const outcomes: SourceOutcome[] = [];
  let records = 0;
  let rejected = 0;
  // Multi-row inserts: D1 binds at most 100 parameters per statement and
  // counts every statement of a batch against the per-invocation query limit.
  const marketRows: unknown[][] = [];
  const tvlRows: unknown[][] = [];
  const newsInsert = env.DB.prepare(
    `INSERT INTO news (guid, title, link, published_at, source, sentiment, symbols, collected_at, collection_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guid) DO NOTHING`,
  );
  const mentionUpsert = env.DB.prepare(
    `INSERT INTO entity_mentions (entity_type, entity_name, source, mention_count, last_seen) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (entity_type, entity_name, source) DO UPDATE SET mention_count = mention_count + excluded.mention_count, last_seen = excluded.last_seen`,
  );
  // News already stored (by guid) is not counted again.
  const newsGuids: string[] = [];
  for (const r of results) {
    if ("parsed" in r && r.parsed?.kind === "news") newsGuids.push(...r.parsed.records.map((n) => n.guid));
  }
  const known = new Set<string>();
  for (let i = 0; i < newsGuids.length; i += 50) {
    const part = newsGuids.slice(i, i + 50);
    const { results: rows } = await env.DB.prepare(`SELECT guid FROM news WHERE guid IN (${part.map(() => "?").join(",")})`)
      .bind(...part)
      .all<{ guid: string }>();
    rows.forEach((r) => known.add(r.guid));
  }

  // A story carried by two feeds is stored once, by the first.
  const seen = new Set<string>();
  for (const r of results) {
    const name = r.source.name;
    if ("error" in r) {
      outcomes.push({ source: name, status: "degraded", records: 0, rejected: 0, latency_ms: r.ms, error: r.error });
      log("WARN", "data-collection", "Source degraded", { source: name, error: r.error, latency_ms: r.ms });
      continue;
    }
    const p: Parsed = r.parsed;
    let stored = 0;
    if (p.kind === "market") {
      for (const m of p.records as MarketRecord[]) {
        marketRows.push([m.symbol, m.price, m.volume_24h, m.market_cap, stamp, name, collectionId]);
        stored++;
      }
    } else if (p.kind === "tvl") {
      for (const t of p.records as TvlRecord[]) {
        tvlRows.push([t.protocol, t.symbol, t.chain, t.tvl, t.change_1d, stamp, name, collectionId]);
        stored++;
      }
    } else {
      for (const n of p.records as NewsRecord[]) {
        if (known.has(n.guid) || seen.has(n.guid)) continue;
        seen.add(n.guid);
        const text = `${n.title} ${n.description}`;
        const mentions = extractEntities(text, dict);
        const symbols = mentions.filter((m) => m.entity.symbol).map((m) => m.entity.symbol);
        stmts.push(newsInsert.bind(n.guid, n.title, n.link, n.published_at, name, sentiment(text), JSON.stringify(symbols), stamp, collectionId));
        for (const m of mentions) stmts.push(mentionUpsert.bind(m.entity.entity_type, m.entity.entity_name, name, m.count, stamp));
        stored++;
      }
    }
    if (p.rejected > 0) log("WARN", "data-collection", "Records rejected", { source: name, rejected: p.rejected });
    records += stored;
    rejected += p.rejected;
    outcomes.push({ source: name, status: "healthy", records: stored, rejected: p.rejected, latency_ms: r.ms });
  }

  stmts.push(...multiInsert(env, "market_data (symbol, price, volume_24h, market_cap, timestamp, source, collection_id)", marketRows));
  stmts.push(...multiInsert(env, "defi_tvl (protocol, symbol, chain, tvl, change_1d, timestamp, source, collection_id)", tvlRows));
  for (const o of outcomes) {
    stmts.push(
      env.DB.prepare(
        `INSERT INTO source_status (source, status, last_error, latency_ms, records, rejected, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (source) DO UPDATE SET status = excluded.status, last_error = excluded.last_error, latency_ms = excluded.latency_ms,
           records = excluded.records, rejected = excluded.rejected, checked_at = excluded.checked_at`,
      ).bind(o.source, o.status, o.error ?? null, o.latency_ms, o.records, o.rejected, stamp),
    );
  }
  stmts.push(
    env.DB.prepare("INSERT INTO collections (id, started_at, finished_at, records, rejected, sources) VALUES (?, ?, ?, ?, ?, ?)").bind(
      collectionId,
      stamp,
      iso(now()),
      records,
      rejected,
      JSON.stringify(outcomes),
    ),
  );
  // One transaction for the whole run.
  await env.DB.batch(stmts);

  const summary: CollectionSummary = {
    collection_id: collectionId,
    records,
    rejected,
    sources: outcomes,
    processing_time_ms: Date.now() - started,
  };
  log("INFO", "data-collection", "Data collection completed", {
    collection_id: collectionId,
    sources_processed: outcomes.length,
    sources_degraded: outcomes.filter((o) => o.status === "degraded").length,
    records_collected: records,
    records_rejected: rejected,
    processing_time_ms: summary.processing_time_ms,
  });
  await env.EVENTS.send({ kind: "collection", collection_id: collectionId });
  await notify(env, { kind: "collection", collection_id: collectionId, records, sources: outcomes });
  return summary;
}

/** `INSERT INTO <table> VALUES (...), (...)` statements of at most 100 bound parameters each. */
export function multiInsert(env: Env, table: string, rows: unknown[][]): D1PreparedStatement[] {
  if (rows.length === 0) return [];
  const width = rows[0].length;
  const per = Math.max(1, Math.floor(100 / width));
  const out: D1PreparedStatement[] = [];
  const tuple = `(${new Array(width).fill("?").join(", ")})`;
  for (let i = 0; i < rows.length; i += per) {
    const part = rows.slice(i, i + per);
    out.push(env.DB.prepare(`INSERT INTO ${table} VALUES ${part.map(() => tuple).join(", ")}`).bind(...part.flat()));
  }
  return out;
}

/** Collections whose detector message may have been lost (a crash after the commit): queue them again. */
export async function requeuePending(env: Env): Promise<number> {
  const cutoff = iso(now() - 60_000);
  const { results } = await env.DB.prepare("SELECT id FROM collections WHERE signals_at IS NULL AND finished_at < ? LIMIT 20")
    .bind(cutoff)
    .all<{ id: string }>();
  for (const r of results) await env.EVENTS.send({ kind: "collection", collection_id: r.id });
  return results.length;
}

/** Tells connected dashboards; a failure here never fails the caller. */
export async function notify(env: Env, message: Record<string, unknown>): Promise<void> {
  try {
    await liveHub(env).broadcast(message);
  } catch (e) {
    log("WARN", "live", "Live update failed", { error: String(e) });
  }
}
