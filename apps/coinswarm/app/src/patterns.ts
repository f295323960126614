// Pattern cache: fixed-length, z-normalised price windows in Vectorize
// (namespace "patterns") with symbol, regime and outcome as metadata.
import { Env, HttpError, checkPair, intVar } from "./lib";

const NAMESPACE = "patterns";
const REGIMES = ["trending_up", "trending_down", "ranging", "volatile"];
const OUTCOMES = ["up", "down", "flat"];
const MAX_BATCH = 100;
const MAX_POINTS = 10_000;

/** Resamples a price window to `length` points (linear interpolation) and z-normalises it. */
export function normalise(raw: unknown, length: number, field = "prices"): number[] {
  if (!Array.isArray(raw) || raw.length < 2 || raw.length > MAX_POINTS) {
    throw new HttpError(400, `${field} must be an array of 2 to ${MAX_POINTS} prices`);
  }
  raw.forEach((p, i) => {
    if (typeof p !== "number" || !Number.isFinite(p)) throw new HttpError(400, `${field}[${i}] must be a finite number`);
  });
  const prices = raw as number[];
  const out: number[] = [];
  for (let i = 0; i < length; i++) {
    const x = (i * (prices.length - 1)) / (length - 1);
    const lo = Math.floor(x);
    const hi = Math.min(lo + 1, prices.length - 1);
    out.push(prices[lo] + (prices[hi] - prices[lo]) * (x - lo));
  }
  const mean = out.reduce((s, v) => s + v, 0) / length;
  const sd = Math.sqrt(out.reduce((s, v) => s + (v - mean) ** 2, 0) / length);
  if (sd < 1e-12 * Math.max(1, Math.abs(mean))) throw new HttpError(400, `${field} is flat: a window with no movement has no shape to match`);
  return out.map((v) => (v - mean) / sd);
}

function oneOf(raw: unknown, allowed: string[], field: string): string {
  if (typeof raw !== "string" || !allowed.includes(raw)) throw new HttpError(400, `${field} must be one of ${allowed.join(", ")}`);
  return raw;
}

export async function upsertPatterns(env: Env, body: Record<string, unknown>): Promise<unknown> {
  const length = intVar(env, "PATTERN_LENGTH", 16, 4, 1536);
  const list = Array.isArray(body.patterns) ? body.patterns : [body];
  if (list.length === 0 || list.length > MAX_BATCH) throw new HttpError(400, `patterns must hold 1 to ${MAX_BATCH} entries`);
  const vectors: VectorizeVector[] = list.map((p, i) => {
    if (p === null || typeof p !== "object") throw new HttpError(400, `patterns[${i}] must be an object`);
    const e = p as Record<string, unknown>;
    const id = e.id;
    if (typeof id !== "string" || id.length === 0 || new TextEncoder().encode(id).length > 64) {
      throw new HttpError(400, `patterns[${i}].id must be a string of 1 to 64 bytes`);
    }
    return {
      id,
      namespace: NAMESPACE,
      values: normalise(e.prices, length, `patterns[${i}].prices`),
      metadata: {
        symbol: checkPair(env, e.symbol, `patterns[${i}].symbol`),
        regime: oneOf(e.regime, REGIMES, `patterns[${i}].regime`),
        outcome: oneOf(e.outcome, OUTCOMES, `patterns[${i}].outcome`),
        return_pct: typeof e.return_pct === "number" && Number.isFinite(e.return_pct) ? e.return_pct : 0,
      },
    };
  });
  const r = await env.PATTERNS.upsert(vectors);
  return { upserted: vectors.length, ids: vectors.map((v) => v.id), mutationId: r.mutationId };
}

export async function similarPatterns(env: Env, body: Record<string, unknown>): Promise<unknown> {
  const length = intVar(env, "PATTERN_LENGTH", 16, 4, 1536);
  const vector = normalise(body.prices, length);
  const topK = body.top_k ?? 10;
  if (typeof topK !== "number" || !Number.isInteger(topK) || topK < 1 || topK > 50) throw new HttpError(400, "top_k must be a whole number from 1 to 50");
  const filter: VectorizeVectorMetadataFilter = {};
  if (body.symbol !== undefined) filter.symbol = { $eq: checkPair(env, body.symbol, "symbol") };
  if (body.regime !== undefined) {
    filter.regime = Array.isArray(body.regime)
      ? { $in: body.regime.map((r, i) => oneOf(r, REGIMES, `regime[${i}]`)) }
      : { $eq: oneOf(body.regime, REGIMES, "regime") };
  }
  if (body.outcome !== undefined) filter.outcome = { $eq: oneOf(body.outcome, OUTCOMES, "outcome") };
  const result = await env.PATTERNS.query(vector, {
    topK,
    namespace: NAMESPACE,
    returnMetadata: "all",
    ...(Object.keys(filter).length ? { filter } : {}),
  });
  const matches: Array<Record<string, unknown>> = result.matches.map((m) => ({ id: m.id, score: m.score, ...(m.metadata ?? {}) }));
  const outcomes: Record<string, number> = {};
  for (const m of matches) outcomes[String(m.outcome)] = (outcomes[String(m.outcome)] ?? 0) + 1;
  return { count: matches.length, matches, outcomes };
}
