// Signal detection, run from the queue when a collection commits:
//  - price_anomaly: z-score of the new price against the previous
//    SIGNAL_WINDOW prices of the same symbol and source (sample standard
//    deviation); |z| >= PRICE_Z_THRESHOLD. confidence = |z| / (|z| + threshold),
//    so 0.5 at the threshold, rising towards 1.
//  - volume_spike: new 24 h volume over the window's mean volume >=
//    VOLUME_SPIKE_RATIO. confidence = 1 - 1 / ratio.
//  - sentiment_shift: mean lexicon sentiment of this collection's news
//    about a coin against the mean of its earlier news (up to SIGNAL_WINDOW
//    items); |shift| >= SENTIMENT_SHIFT_THRESHOLD. confidence = min(1, |shift| / 2).
// Confidences are rounded to 4 decimals. One signal per (type, symbol,
// window), the window being the collection interval the data falls in.
import { notify } from "./collector";
import { Env, iso, log, num } from "./lib";
import { enqueueDeliveries } from "./webhooks";

export const SIGNAL_TYPES = ["price_anomaly", "volume_spike", "sentiment_shift"] as const;
export type SignalType = (typeof SIGNAL_TYPES)[number];

interface Candidate {
  type: SignalType;
  symbol: string;
  confidence: number;
  metadata: Record<string, unknown>;
}

export function round4(x: number): number {
  return Math.round(x * 10000) / 10000;
}

export function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.length > 1 ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1) : 0;
  return { mean, std: Math.sqrt(variance) };
}

export async function detectSignals(env: Env, collectionId: string): Promise<number> {
  const col = await env.DB.prepare("SELECT id, started_at, signals_at FROM collections WHERE id = ?")
    .bind(collectionId)
    .first<{ id: string; started_at: string; signals_at: string | null }>();
  if (!col) {
    log("WARN", "signal-detection", "Unknown collection", { collection_id: collectionId });
    return 0;
  }
  const window = Math.max(2, num(env.SIGNAL_WINDOW, 20));
  const minPoints = Math.max(2, num(env.SIGNAL_MIN_POINTS, 5));
  const zThreshold = num(env.PRICE_Z_THRESHOLD, 3);
  const spikeRatio = num(env.VOLUME_SPIKE_RATIO, 3);
  const shiftThreshold = num(env.SENTIMENT_SHIFT_THRESHOLD, 0.5);
  const intervalMs = num(env.COLLECTION_INTERVAL_MINUTES, 15) * 60_000;
  const at = Date.parse(col.started_at);
  const windowStart = iso(Math.floor(at / intervalMs) * intervalMs);
  const candidates: Candidate[] = [];

  const { results: current } = await env.DB.prepare(
    "SELECT symbol, source, price, volume_24h, timestamp FROM market_data WHERE collection_id = ? ORDER BY id",
  )
    .bind(collectionId)
    .all<{ symbol: string; source: string; price: number; volume_24h: number; timestamp: string }>();
  for (const row of current) {
    const { results: prev } = await env.DB.prepare(
      `SELECT price, volume_24h FROM market_data WHERE symbol = ? AND source = ? AND timestamp < ?
       ORDER BY timestamp DESC LIMIT ?`,
    )
      .bind(row.symbol, row.source, row.timestamp, window)
      .all<{ price: number; volume_24h: number }>();
    if (prev.length < minPoints) continue;
    const prices = meanStd(prev.map((p) => p.price));
    if (prices.std > 0) {
      const z = (row.price - prices.mean) / prices.std;
      if (Math.abs(z) >= zThreshold) {
        candidates.push({
          type: "price_anomaly",
          symbol: row.symbol,
          confidence: round4(Math.abs(z) / (Math.abs(z) + zThreshold)),
          metadata: {
            source: row.source,
            price: row.price,
            window_mean: prices.mean,
            window_std: prices.std,
            z_score: round4(z),
            direction: z > 0 ? "up" : "down",
            points: prev.length,
          },
        });
      }
    }
    const volumes = meanStd(prev.map((p) => p.volume_24h));
    if (volumes.mean > 0) {
      const ratio = row.volume_24h / volumes.mean;
      if (ratio >= spikeRatio) {
        candidates.push({
          type: "volume_spike",
          symbol: row.symbol,
          confidence: round4(1 - 1 / ratio),
          metadata: { source: row.source, volume_24h: row.volume_24h, window_mean: volumes.mean, ratio: round4(ratio), points: prev.length },
        });
      }
    }
  }

  // Sentiment per coin: this collection's news against earlier news.
  const { results: news } = await env.DB.prepare("SELECT sentiment, symbols FROM news WHERE collection_id = ?")
    .bind(collectionId)
    .all<{ sentiment: number; symbols: string }>();
  const bySymbol = new Map<string, number[]>();
  for (const n of news) {
    for (const s of JSON.parse(n.symbols) as string[]) bySymbol.set(s, [...(bySymbol.get(s) ?? []), n.sentiment]);
  }
  for (const [symbol, scores] of bySymbol) {
    const { results: earlier } = await env.DB.prepare(
      `SELECT sentiment FROM news WHERE collection_id != ? AND collected_at <= ? AND EXISTS (SELECT 1 FROM json_each(news.symbols) WHERE value = ?)
       ORDER BY collected_at DESC LIMIT ?`,
    )
      .bind(collectionId, col.started_at, symbol, window)
      .all<{ sentiment: number }>();
    if (earlier.length === 0) continue;
    const before = meanStd(earlier.map((e) => e.sentiment)).mean;
    const nowMean = meanStd(scores).mean;
    const shift = nowMean - before;
    if (Math.abs(shift) >= shiftThreshold) {
      candidates.push({
        type: "sentiment_shift",
        symbol,
        confidence: round4(Math.min(1, Math.abs(shift) / 2)),
        metadata: { sentiment: round4(nowMean), previous: round4(before), shift: round4(shift), articles: scores.length, earlier: earlier.length },
      });
    }
  }

  const created = iso(Date.parse(col.started_at));
  const inserted: { id: number; type: string; symbol: string; confidence_score: number; metadata: string; created_at: string }[] = [];
  for (const c of candidates) {
    const row = await env.DB.prepare(
      `INSERT INTO signals (type, symbol, confidence_score, metadata, created_at, window_start, collection_id) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (type, symbol, window_start) DO NOTHING RETURNING id`,
    )
      .bind(c.type, c.symbol, c.confidence, JSON.stringify(c.metadata), created, windowStart, collectionId)
      .first<{ id: number }>();
    if (row) inserted.push({ id: row.id, type: c.type, symbol: c.symbol, confidence_score: c.confidence, metadata: JSON.stringify(c.metadata), created_at: created });
  }
  await env.DB.prepare("UPDATE collections SET signals_at = ? WHERE id = ?").bind(iso(Date.now()), collectionId).run();
  log("INFO", "signal-detection", "Signal detection completed", {
    collection_id: collectionId,
    candidates: candidates.length,
    signals_created: inserted.length,
  });
  for (const s of inserted) {
    await enqueueDeliveries(env, s);
    await notify(env, { kind: "signal", signal: { ...s, metadata: JSON.parse(s.metadata) } });
  }
  return inserted.length;
}
