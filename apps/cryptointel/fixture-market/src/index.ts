// Fixture market server: the response shapes of CoinGecko (/api/v3/simple/price,
// /api/v3/coins/markets), DeFi Llama (/protocols) and news feeds (RSS 2.0 at
// /feeds/rss.xml, Atom at /feeds/atom.xml), driven by a script kept in one
// Durable Object so every request sees the same state.
//
// PUT /__fixture merges a script (see Script below); GET /__fixture shows it;
// POST /__fixture/reset restores the defaults.
import { DurableObject } from "cloudflare:workers";

interface Coin {
  id: string;
  symbol: string;
  name: string;
  price: number;
  volume: number;
  market_cap: number;
}

interface Protocol {
  name: string;
  slug: string;
  symbol: string;
  chain: string;
  tvl: number;
  change_1d: number;
}

interface NewsItem {
  guid: string;
  title: string;
  link: string;
  description: string;
  published: string;
}

type Route = "simple_price" | "coins_markets" | "protocols" | "rss" | "atom";

interface Script {
  /** Advanced by every /simple/price request: the wobble's phase. */
  tick: number;
  /** Relative amplitude of the deterministic price wobble around `price`. */
  wobble: number;
  coins: Coin[];
  protocols: Protocol[];
  news: NewsItem[];
  /** Per route: answer with this HTTP status instead of data (0 = off). */
  fail: Partial<Record<Route, number>>;
  /** Per route: wait this long before answering. */
  delay_ms: Partial<Record<Route, number>>;
  /** Per route: add records that a validator must reject. */
  invalid: Partial<Record<Route, boolean>>;
}

function defaults(): Script {
  return {
    tick: 0,
    wobble: 0.01,
    coins: [
      { id: "bitcoin", symbol: "btc", name: "Bitcoin", price: 60000, volume: 30e9, market_cap: 1.2e12 },
      { id: "ethereum", symbol: "eth", name: "Ethereum", price: 3000, volume: 15e9, market_cap: 3.6e11 },
      { id: "solana", symbol: "sol", name: "Solana", price: 150, volume: 3e9, market_cap: 7e10 },
    ],
    protocols: [
      { name: "Lido", slug: "lido", symbol: "LDO", chain: "Ethereum", tvl: 3.1e10, change_1d: 0.4 },
      { name: "Aave", slug: "aave", symbol: "AAVE", chain: "Multi-Chain", tvl: 1.2e10, change_1d: -0.8 },
    ],
    news: [
      {
        guid: "n-1",
        title: "Bitcoin steady as Coinbase volumes hold",
        link: "https://news.example/n-1",
        description: "Markets were calm.",
        published: "2026-01-01T00:00:00Z",
      },
    ],
    fail: {},
    delay_ms: {},
    invalid: {},
  };
}

export class MarketScript extends DurableObject {
  private async load(): Promise<Script> {
    return (await this.ctx.storage.get<Script>("script")) ?? defaults();
  }

  async get(advance: boolean): Promise<Script> {
    const s = await this.load();
    if (advance) {
      s.tick += 1;
      await this.ctx.storage.put("script", s);
    }
    return s;
  }

  async merge(patch: Partial<Script>): Promise<Script> {
    const s = await this.load();
    for (const k of ["wobble", "coins", "protocols", "news"] as const) {
      if (patch[k] !== undefined) (s as any)[k] = patch[k];
    }
    for (const k of ["fail", "delay_ms", "invalid"] as const) {
      if (patch[k] !== undefined) s[k] = { ...s[k], ...(patch[k] as object) } as any;
    }
    await this.ctx.storage.put("script", s);
    return s;
  }

  async reset(): Promise<Script> {
    const s = defaults();
    await this.ctx.storage.put("script", s);
    return s;
  }
}

interface Env {
  SCRIPT: DurableObjectNamespace<MarketScript>;
}

function priceAt(s: Script, c: Coin, i: number): number {
  return Math.round(c.price * (1 + s.wobble * Math.sin(s.tick * 1.3 + i)) * 100) / 100;
}

function xml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function rss(s: Script): string {
  const items = s.news.map(
    (n) =>
      `<item><title>${xml(n.title)}</title><link>${xml(n.link)}</link><guid>${xml(n.guid)}</guid>` +
      `<description>${xml(n.description)}</description><pubDate>${new Date(n.published).toUTCString()}</pubDate></item>`,
  );
  if (s.invalid.rss) items.push("<item><title></title><link>not a url</link></item>");
  return `<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Fixture news</title>` + items.join("") + `</channel></rss>`;
}

function atom(s: Script): string {
  const entries = s.news.map(
    (n) =>
      `<entry><title>${xml(n.title)}</title><link href="${xml(n.link)}"/><id>${xml(n.guid)}</id>` +
      `<summary>${xml(n.description)}</summary><updated>${n.published}</updated></entry>`,
  );
  if (s.invalid.atom) entries.push("<entry><id>x</id></entry>");
  return `<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Fixture news</title>` + entries.join("") + `</feed>`;
}

function routeOf(path: string): Route | null {
  if (path === "/api/v3/simple/price") return "simple_price";
  if (path === "/api/v3/coins/markets") return "coins_markets";
  if (path === "/protocols") return "protocols";
  if (path === "/feeds/rss.xml") return "rss";
  if (path === "/feeds/atom.xml") return "atom";
  return null;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const script = env.SCRIPT.get(env.SCRIPT.idFromName("market"));
    if (url.pathname === "/__fixture") {
      if (request.method === "PUT") return Response.json(await script.merge(await request.json()));
      return Response.json(await script.get(false));
    }
    if (url.pathname === "/__fixture/reset" && request.method === "POST") return Response.json(await script.reset());

    const route = routeOf(url.pathname);
    if (!route) return Response.json({ error: "not found" }, { status: 404 });
    const s = await script.get(route === "simple_price");
    const delay = s.delay_ms[route] ?? 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const fail = s.fail[route] ?? 0;
    if (fail) return Response.json({ error: "scripted failure" }, { status: fail });

    const wanted = (url.searchParams.get("ids") ?? "").split(",").filter(Boolean);
    const coins = s.coins.filter((c) => wanted.length === 0 || wanted.includes(c.id));
    switch (route) {
      case "simple_price": {
        const out: Record<string, Record<string, number | string>> = {};
        s.coins.forEach((c, i) => {
          if (!coins.includes(c)) return;
          out[c.id] = { usd: priceAt(s, c, i), usd_24h_vol: c.volume, usd_market_cap: c.market_cap, last_updated_at: 0 };
        });
        if (s.invalid.simple_price) {
          out["negcoin"] = { usd: -5, usd_24h_vol: 1, usd_market_cap: 1 };
          out["textcoin"] = { usd: "lots", usd_24h_vol: 1, usd_market_cap: 1 };
        }
        return Response.json(out);
      }
      case "coins_markets": {
        const out: Record<string, unknown>[] = s.coins
          .map((c, i) => ({
            id: c.id,
            symbol: c.symbol,
            name: c.name,
            current_price: priceAt(s, c, i),
            market_cap: c.market_cap,
            total_volume: c.volume,
            last_updated: new Date().toISOString(),
          }))
          .filter((r) => wanted.length === 0 || wanted.includes(r.id));
        if (s.invalid.coins_markets) out.push({ id: "badcoin", symbol: "bad", current_price: null, total_volume: -1 });
        return Response.json(out);
      }
      case "protocols": {
        const out: Record<string, unknown>[] = s.protocols.map((p) => ({ ...p }));
        if (s.invalid.protocols) out.push({ name: "Broken", slug: "broken", tvl: "n/a" });
        return Response.json(out);
      }
      case "rss":
        return new Response(rss(s), { headers: { "content-type": "application/rss+xml" } });
      case "atom":
        return new Response(atom(s), { headers: { "content-type": "application/atom+xml" } });
    }
  },
} satisfies ExportedHandler<Env>;
