// The router's Durable Object: Monitor (request counters and latency
// histograms per domain, and the live event stream for the dashboard over
// hibernatable WebSockets).
import { DurableObject } from "cloudflare:workers";

/** Upper bounds (ms) of the latency histogram buckets; the last is open. */
export const BUCKETS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

export interface DomainMetrics {
  requests: number;
  clientErrors: number;
  serverErrors: number;
  errorRate: number;
  avgLatencyMs: number;
  p99LatencyMs: number;
  maxLatencyMs: number;
}

/** The bucket bound at or above the q-quantile; Infinity past the last bucket. */
export function quantile(buckets: number[], q: number): number {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  const rank = Math.ceil(total * q);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i];
    if (seen >= rank) return i < BUCKETS.length ? BUCKETS[i] : Infinity;
  }
  return Infinity;
}

interface Row {
  domain: string;
  requests: number;
  client_errors: number;
  server_errors: number;
  latency_sum: number;
  latency_max: number;
  buckets: string;
}

const RECENT_EVENTS = 50;
const MAX_SOCKETS = 200;

export class Monitor extends DurableObject {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env);
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS metrics (
      domain TEXT PRIMARY KEY, requests INTEGER NOT NULL, client_errors INTEGER NOT NULL, server_errors INTEGER NOT NULL,
      latency_sum INTEGER NOT NULL, latency_max INTEGER NOT NULL, buckets TEXT NOT NULL)`);
  }

  // Counts since the last write, per domain. Written at most once a second
  // (by the next record or the alarm armed for it, and before every
  // snapshot), so recording does not cost a disk sync per request; a crash
  // loses at most the last second of counts.
  private pending = new Map<string, { requests: number; client: number; server: number; sum: number; max: number; buckets: number[] }>();
  private lastFlush = 0;
  private recent: string[] = [];

  async record(domain: string, status: number, ms: number) {
    if (this.pending.size === 0) this.ctx.storage.setAlarm(Date.now() + 1000);
    let p = this.pending.get(domain);
    if (!p) {
      p = { requests: 0, client: 0, server: 0, sum: 0, max: 0, buckets: new Array(BUCKETS.length + 1).fill(0) };
      this.pending.set(domain, p);
    }
    let i = BUCKETS.findIndex((b) => ms <= b);
    if (i < 0) i = BUCKETS.length;
    p.buckets[i] += 1;
    p.requests += 1;
    if (status >= 400 && status < 500) p.client += 1;
    if (status >= 500) p.server += 1;
    p.sum += Math.round(ms);
    p.max = Math.max(p.max, Math.round(ms));
    if (Date.now() - this.lastFlush >= 1000) this.flush();
  }

  async alarm() {
    this.flush();
  }

  private flush() {
    this.lastFlush = Date.now();
    const sql = this.ctx.storage.sql;
    for (const [domain, p] of this.pending) {
      const rows = sql.exec<Row>("SELECT * FROM metrics WHERE domain = ?", domain).toArray();
      const r = rows[0];
      const buckets: number[] = r ? JSON.parse(r.buckets) : new Array(BUCKETS.length + 1).fill(0);
      p.buckets.forEach((n, i) => (buckets[i] = (buckets[i] ?? 0) + n));
      sql.exec(
        `INSERT INTO metrics (domain, requests, client_errors, server_errors, latency_sum, latency_max, buckets) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (domain) DO UPDATE SET requests = excluded.requests, client_errors = excluded.client_errors,
           server_errors = excluded.server_errors, latency_sum = excluded.latency_sum, latency_max = excluded.latency_max, buckets = excluded.buckets`,
        domain,
        (r?.requests ?? 0) + p.requests,
        (r?.client_errors ?? 0) + p.client,
        (r?.server_errors ?? 0) + p.server,
        (r?.latency_sum ?? 0) + p.sum,
        Math.max(r?.latency_max ?? 0, p.max),
        JSON.stringify(buckets),
      );
    }
    this.pending.clear();
  }

  async snapshot(): Promise<{ domains: Record<string, DomainMetrics>; total: DomainMetrics; sockets: number }> {
    this.flush();
    const rows = this.ctx.storage.sql.exec<Row>("SELECT * FROM metrics ORDER BY domain").toArray();
    const domains: Record<string, DomainMetrics> = {};
    const all = { requests: 0, client: 0, server: 0, sum: 0, max: 0, buckets: new Array(BUCKETS.length + 1).fill(0) };
    for (const r of rows) {
      const b: number[] = JSON.parse(r.buckets);
      domains[r.domain] = view(r.requests, r.client_errors, r.server_errors, r.latency_sum, r.latency_max, b);
      all.requests += r.requests;
      all.client += r.client_errors;
      all.server += r.server_errors;
      all.sum += r.latency_sum;
      all.max = Math.max(all.max, r.latency_max);
      b.forEach((n, i) => (all.buckets[i] += n));
    }
    return {
      domains,
      total: view(all.requests, all.client, all.server, all.sum, all.max, all.buckets),
      sockets: this.ctx.getWebSockets().length,
    };
  }

  /** Sends a message to every dashboard connected to the stream. */
  async broadcast(message: Record<string, unknown>) {
    const text = JSON.stringify({ ...message, at: new Date().toISOString() });
    // The last few, in memory only: a new dashboard starts from them.
    this.recent.push(text);
    if (this.recent.length > RECENT_EVENTS) this.recent.splice(0, this.recent.length - RECENT_EVENTS);
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.send(text);
      } catch {
        // A socket that is closing; its close handler tidies up.
      }
    }
  }

  async fetch(request: Request): Promise<Response> {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: "expected a WebSocket upgrade" }, { status: 426 });
    }
    if (this.ctx.getWebSockets().length >= MAX_SOCKETS) {
      return Response.json({ error: "too many dashboard connections" }, { status: 503 });
    }
    const pair = new WebSocketPair();
    const [client, server] = Object.values(pair);
    this.ctx.acceptWebSocket(server);
    server.send(JSON.stringify({ kind: "hello", recent: this.recent.map((r) => JSON.parse(r)) }));
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer) {
    if (message === "ping") ws.send(JSON.stringify({ kind: "pong", at: new Date().toISOString() }));
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string) {
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }
}

function view(requests: number, client: number, server: number, sum: number, max: number, buckets: number[]): DomainMetrics {
  const p99 = quantile(buckets, 0.99);
  return {
    requests,
    clientErrors: client,
    serverErrors: server,
    errorRate: requests ? Math.round((server / requests) * 10000) / 10000 : 0,
    avgLatencyMs: requests ? Math.round((sum / requests) * 10) / 10 : 0,
    p99LatencyMs: Number.isFinite(p99) ? p99 : max,
    maxLatencyMs: max,
  };
}
