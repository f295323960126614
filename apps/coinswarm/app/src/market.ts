// Market data fast path. A quote is served from the Workers Cache API while
// it is younger than MARKET_CACHE_MS (sub-second; KV's 60 s minimum TTL rules
// KV out). On a miss, the MarketFeed Durable Object of the pair (one per
// pair, so one place per pair asks the upstream) answers from its memory if
// its quote is fresh enough, or fetches once for every caller waiting on it.
import { DurableObject } from "cloudflare:workers";
import { Env, HttpError, checkPair, fetchWithTimeout, intVar, segment } from "./lib";

export interface Quote {
  pair: string;
  price: number;
  bid: number;
  ask: number;
  volume: number;
  trade_id: number | null;
  time: string;
  fetched_at: number;
}

const CACHE_NAME = "coinswarm-market";

function cacheKey(pair: string): string {
  return `https://coinswarm.cache/market/${pair}`;
}

/** The current quote of a pair and where it came from ("cache" or "feed"). */
export async function getQuote(env: Env, pair: string): Promise<{ quote: Quote; source: string }> {
  const maxAge = intVar(env, "MARKET_CACHE_MS", 1000, 0, 60_000);
  const cache = await caches.open(CACHE_NAME);
  const key = cacheKey(pair);
  if (maxAge > 0) {
    const hit = await cache.match(key);
    if (hit) {
      const quote = (await hit.json()) as Quote;
      if (Date.now() - quote.fetched_at < maxAge) return { quote, source: "cache" };
    }
  }
  const stub = env.MARKET.get(env.MARKET.idFromName(pair)) as unknown as MarketFeed;
  const answer = await stub.quote(pair, maxAge, env.MARKET_URL, intVar(env, "MARKET_TIMEOUT_MS", 3000, 1, 60_000));
  if ("error" in answer) throw new HttpError(answer.status, answer.error);
  if (maxAge > 0) {
    const seconds = Math.max(1, Math.ceil(maxAge / 1000));
    await cache.put(
      key,
      new Response(JSON.stringify(answer.quote), {
        headers: { "content-type": "application/json", "cache-control": `public, max-age=${seconds}` },
      }),
    );
  }
  return { quote: answer.quote, source: answer.source };
}

export async function handleMarketData(env: Env, rawPair: string): Promise<Response> {
  const pair = checkPair(env, segment(rawPair, "pair"));
  const { quote, source } = await getQuote(env, pair);
  return new Response(JSON.stringify({ ...quote, source }), {
    headers: { "content-type": "application/json", "x-coinswarm-source": source, "cache-control": "no-store" },
  });
}

type FeedAnswer = { quote: Quote; source: string } | { error: string; status: number };

function num(raw: unknown, field: string, url: string): number {
  const n = typeof raw === "string" ? Number(raw) : raw;
  if (typeof n !== "number" || !Number.isFinite(n)) throw new Error(`${url}: field ${field} is not a number`);
  return n;
}

export class MarketFeed extends DurableObject<Env> {
  private last: Quote | null = null;
  private inflight: Promise<FeedAnswer> | null = null;
  /** Upstream calls made by this object since it started (for /api/market-data stats). */
  private calls = 0;

  async quote(pair: string, maxAge: number, base: string, timeoutMs: number): Promise<FeedAnswer> {
    if (this.last && Date.now() - this.last.fetched_at < maxAge) return { quote: this.last, source: "feed" };
    if (!this.inflight) {
      this.inflight = this.fetchUpstream(pair, base, timeoutMs).finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private async fetchUpstream(pair: string, base: string, timeoutMs: number): Promise<FeedAnswer> {
    const url = `${base.replace(/\/+$/, "")}/products/${encodeURIComponent(pair)}/ticker`;
    this.calls++;
    try {
      const res = await fetchWithTimeout(url, { headers: { accept: "application/json", "user-agent": "coinswarm" } }, timeoutMs);
      if (!res.ok) {
        const body = (await res.text()).slice(0, 200);
        return { error: `market upstream answered ${res.status} for ${pair}: ${body}`, status: 502 };
      }
      const t = (await res.json()) as Record<string, unknown>;
      const quote: Quote = {
        pair,
        price: num(t.price, "price", url),
        bid: num(t.bid, "bid", url),
        ask: num(t.ask, "ask", url),
        volume: num(t.volume, "volume", url),
        trade_id: typeof t.trade_id === "number" ? t.trade_id : null,
        time: typeof t.time === "string" ? t.time : new Date().toISOString(),
        fetched_at: Date.now(),
      };
      this.last = quote;
      return { quote, source: "upstream" };
    } catch (e) {
      return { error: `market upstream failed for ${pair}: ${e instanceof Error ? e.message : String(e)}`, status: 502 };
    }
  }
}
