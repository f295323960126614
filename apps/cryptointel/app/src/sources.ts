// Pluggable sources, configured by URL in SOURCES (a JSON array of
// {name, kind, url}). Each kind parses one public response shape and
// validates every record: bad records are rejected and counted, never stored.

export type SourceKind = "coingecko_simple" | "coingecko_markets" | "defillama_protocols" | "rss" | "atom";

export interface SourceConfig {
  name: string;
  kind: SourceKind;
  url: string;
}

export interface MarketRecord {
  symbol: string;
  price: number;
  volume_24h: number;
  market_cap: number;
}

export interface TvlRecord {
  protocol: string;
  symbol: string | null;
  chain: string | null;
  tvl: number;
  change_1d: number | null;
}

export interface NewsRecord {
  guid: string;
  title: string;
  link: string;
  description: string;
  published_at: string;
}

export type Parsed =
  | { kind: "market"; records: MarketRecord[]; rejected: number }
  | { kind: "tvl"; records: TvlRecord[]; rejected: number }
  | { kind: "news"; records: NewsRecord[]; rejected: number };

const KINDS: SourceKind[] = ["coingecko_simple", "coingecko_markets", "defillama_protocols", "rss", "atom"];

export function parseSourceConfig(text: string): SourceConfig[] {
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    throw new Error("SOURCES is not valid JSON");
  }
  if (!Array.isArray(list)) throw new Error("SOURCES must be a JSON array");
  return list.map((s, i) => {
    if (typeof s !== "object" || s === null) throw new Error(`SOURCES[${i}] must be an object`);
    const { name, kind, url } = s as Record<string, unknown>;
    if (typeof name !== "string" || !/^[a-z0-9_-]{1,64}$/.test(name)) throw new Error(`SOURCES[${i}].name must match [a-z0-9_-]{1,64}`);
    if (!KINDS.includes(kind as SourceKind)) throw new Error(`SOURCES[${i}].kind must be one of ${KINDS.join(", ")}`);
    if (typeof url !== "string" || !/^https?:\/\//.test(url)) throw new Error(`SOURCES[${i}].url must be an http(s) URL`);
    return { name, kind: kind as SourceKind, url };
  });
}

const SYMBOL = /^[a-z0-9][a-z0-9-]{0,63}$/;

function finiteAtLeast(v: unknown, min: number): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= min;
}

function market(symbol: unknown, price: unknown, volume: unknown, cap: unknown): MarketRecord | null {
  if (typeof symbol !== "string" || !SYMBOL.test(symbol)) return null;
  if (!finiteAtLeast(price, 0) || price === 0) return null;
  if (!finiteAtLeast(volume, 0)) return null;
  const marketCap = cap === undefined || cap === null ? 0 : cap;
  if (!finiteAtLeast(marketCap, 0)) return null;
  return { symbol, price, volume_24h: volume, market_cap: marketCap };
}

/** Reads at most `max` bytes of a body; a longer body is an error. */
async function boundedText(response: Response, max: number): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > max) throw new Error(`response larger than ${max} bytes`);
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw new Error(`response larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** Fetches and parses one source; throws on transport, status, timeout or shape errors. */
export async function fetchSource(source: SourceConfig, timeoutMs: number, maxBytes: number): Promise<Parsed> {
  let response: Response;
  try {
    response = await fetch(source.url, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: source.kind === "rss" || source.kind === "atom" ? "application/xml" : "application/json" },
    });
  } catch (e) {
    const name = (e as Error)?.name;
    if (name === "TimeoutError" || name === "AbortError") throw new Error(`timed out after ${timeoutMs} ms`);
    throw new Error(`fetch failed: ${(e as Error)?.message ?? e}`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`HTTP ${response.status}`);
  }
  const text = await Promise.race([
    boundedText(response, maxBytes),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)),
  ]);
  return parseBody(source.kind, text);
}

export function parseBody(kind: SourceKind, text: string): Parsed {
  if (kind === "rss" || kind === "atom") return { kind: "news", ...parseFeed(kind, text) };
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error("response is not valid JSON");
  }
  let rejected = 0;
  if (kind === "coingecko_simple") {
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("expected an object of coin ids");
    const records: MarketRecord[] = [];
    for (const [id, v] of Object.entries(body as Record<string, unknown>)) {
      const q = (v ?? {}) as Record<string, unknown>;
      const r = typeof v === "object" ? market(id, q.usd, q.usd_24h_vol ?? 0, q.usd_market_cap) : null;
      if (r) records.push(r);
      else rejected++;
    }
    return { kind: "market", records, rejected };
  }
  if (kind === "coingecko_markets") {
    if (!Array.isArray(body)) throw new Error("expected an array of markets");
    const records: MarketRecord[] = [];
    for (const v of body) {
      const q = (v ?? {}) as Record<string, unknown>;
      const r = typeof v === "object" ? market(q.id, q.current_price, q.total_volume, q.market_cap) : null;
      if (r) records.push(r);
      else rejected++;
    }
    return { kind: "market", records, rejected };
  }
  // defillama_protocols
  if (!Array.isArray(body)) throw new Error("expected an array of protocols");
  const records: TvlRecord[] = [];
  for (const v of body) {
    const q = (v ?? {}) as Record<string, unknown>;
    const slug = q.slug ?? q.name;
    const ok =
      typeof slug === "string" &&
      slug.length > 0 &&
      slug.length <= 128 &&
      finiteAtLeast(q.tvl, 0) &&
      (q.change_1d === undefined || q.change_1d === null || (typeof q.change_1d === "number" && Number.isFinite(q.change_1d)));
    if (!ok) {
      rejected++;
      continue;
    }
    records.push({
      protocol: slug as string,
      symbol: typeof q.symbol === "string" ? q.symbol : null,
      chain: typeof q.chain === "string" ? q.chain : null,
      tvl: q.tvl as number,
      change_1d: typeof q.change_1d === "number" ? q.change_1d : null,
    });
  }
  return { kind: "tvl", records, rejected };
}

// ------------------------------------------------------------------ feeds

function decodeXml(s: string): string {
  return s
    .replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, "$1")
    .replace(/<[^>]+>/g, " ")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ")
    .trim();
}

function tag(block: string, name: string): string | null {
  const m = block.match(new RegExp(`<${name}(?:\\s[^>]*)?>([\\s\\S]*?)</${name}>`, "i"));
  return m ? decodeXml(m[1]) : null;
}

function feedItem(guid: string | null, title: string | null, link: string | null, description: string | null, date: string | null): NewsRecord | null {
  if (!title || title.length > 500) return null;
  if (!link || !/^https?:\/\/\S+$/.test(link) || link.length > 2048) return null;
  const when = date ? Date.parse(date) : NaN;
  if (!Number.isFinite(when)) return null;
  return {
    guid: (guid || link).slice(0, 512),
    title,
    link,
    description: (description ?? "").slice(0, 4000),
    published_at: new Date(when).toISOString(),
  };
}

function parseFeed(kind: "rss" | "atom", text: string): { records: NewsRecord[]; rejected: number } {
  const records: NewsRecord[] = [];
  let rejected = 0;
  if (kind === "rss") {
    if (!/<rss[\s>]/i.test(text)) throw new Error("not an RSS 2.0 document");
    for (const m of text.matchAll(/<item(?:\s[^>]*)?>([\s\S]*?)<\/item>/gi)) {
      const b = m[1];
      const r = feedItem(tag(b, "guid"), tag(b, "title"), tag(b, "link"), tag(b, "description"), tag(b, "pubDate"));
      if (r) records.push(r);
      else rejected++;
    }
  } else {
    if (!/<feed[\s>]/i.test(text)) throw new Error("not an Atom document");
    for (const m of text.matchAll(/<entry(?:\s[^>]*)?>([\s\S]*?)<\/entry>/gi)) {
      const b = m[1];
      const href = b.match(/<link\b[^>]*\bhref="([^"]*)"/i);
      const link = href ? decodeXml(href[1]) : null;
      const r = feedItem(tag(b, "id"), tag(b, "title"), link, tag(b, "summary") ?? tag(b, "content"), tag(b, "updated") ?? tag(b, "published"));
      if (r) records.push(r);
      else rejected++;
    }
  }
  return { records, rejected };
}

// ------------------------------------------------------- entities, sentiment

export interface Entity {
  entity_type: string;
  entity_name: string;
  aliases: string[];
  symbol: string | null;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Entity names mentioned in `text`, each with its mention count. */
export function extractEntities(text: string, dictionary: Entity[]): { entity: Entity; count: number }[] {
  const lower = text.toLowerCase();
  const out: { entity: Entity; count: number }[] = [];
  for (const e of dictionary) {
    let count = 0;
    for (const alias of e.aliases) {
      const re = new RegExp(`(^|[^a-z0-9])${escapeRe(alias)}(?![a-z0-9])`, "g");
      count += [...lower.matchAll(re)].length;
    }
    if (count > 0) out.push({ entity: e, count });
  }
  return out;
}

const POSITIVE = new Set([
  "surge", "surges", "rally", "rallies", "gain", "gains", "bullish", "soar", "soars", "record", "approve", "approved",
  "approval", "adoption", "rise", "rises", "partnership", "upgrade", "growth", "breakout", "inflows", "recover", "recovers",
]);
const NEGATIVE = new Set([
  "crash", "crashes", "plunge", "plunges", "hack", "hacked", "bearish", "lawsuit", "ban", "banned", "drop", "drops", "fall",
  "falls", "exploit", "fraud", "selloff", "sell-off", "outflows", "liquidation", "liquidations", "collapse", "fears",
]);

/** Lexicon sentiment in [-1, 1]: (positive - negative) / (positive + negative). */
export function sentiment(text: string): number {
  let pos = 0;
  let neg = 0;
  for (const w of text.toLowerCase().split(/[^a-z-]+/)) {
    if (POSITIVE.has(w)) pos++;
    else if (NEGATIVE.has(w)) neg++;
  }
  return pos + neg === 0 ? 0 : (pos - neg) / (pos + neg);
}
