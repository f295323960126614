// TradingSession: one Durable Object per account. Clients connect over
// hibernatable WebSockets; an alarm loop polls the market fast path every
// TICK_INTERVAL_MS (at least 100 ms: at most 10 updates/s) while anyone is
// connected, and every tick or order update gets the next sequence number
// and is kept in the object's SQLite, so a client that reconnects with
// ?since=<last seq> gets everything after it before any live update.
import { DurableObject } from "cloudflare:workers";
import { Env, intVar, pairs } from "./lib";
import { getQuote } from "./market";

const MAX_SOCKETS = 100;

interface Attachment {
  pairs: string[];
}

export class TradingSession extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, at INTEGER NOT NULL)",
    );
    // The last quote sent per pair, kept in storage so that an object woken
    // from hibernation does not send the same quote again.
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS last_tick (pair TEXT PRIMARY KEY, mark TEXT NOT NULL)");
  }

  /** Appends an event (it gets the next sequence number) and sends it to every socket. */
  private append(event: Record<string, unknown>, pair?: string): number {
    const at = Date.now();
    const seq = this.ctx.storage.sql.exec("INSERT INTO events (body, at) VALUES ('', ?) RETURNING seq", at).one().seq as number;
    const text = JSON.stringify({ seq, at, ...event });
    this.ctx.storage.sql.exec("UPDATE events SET body = ? WHERE seq = ?", text, seq);
    const keep = intVar(this.env, "SESSION_RETAIN_EVENTS", 10000, 100, 1_000_000);
    if (seq % 100 === 0) this.ctx.storage.sql.exec("DELETE FROM events WHERE seq <= ?", seq - keep);
    for (const ws of this.ctx.getWebSockets()) {
      const att = ws.deserializeAttachment() as Attachment | null;
      if (pair && att && !att.pairs.includes(pair)) continue;
      try {
        ws.send(text);
      } catch {
        // closing; webSocketClose tidies up
      }
    }
    return seq;
  }

  /** Order updates from the API (fills), broadcast to every socket. */
  async publish(event: Record<string, unknown>): Promise<number> {
    return this.append(event);
  }

  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const sinceRaw = url.searchParams.get("since");
    let since = 0;
    if (sinceRaw !== null) {
      since = Number(sinceRaw);
      if (!Number.isInteger(since) || since < 0) return Response.json({ error: "since must be a whole number >= 0" }, { status: 400 });
    }
    const allowed = pairs(this.env);
    const wanted = (url.searchParams.get("pairs") ?? allowed.join(","))
      .split(",")
      .map((p) => p.trim().toUpperCase())
      .filter((p) => p);
    const unknown = wanted.filter((p) => !allowed.includes(p));
    if (wanted.length === 0 || unknown.length) {
      return Response.json({ error: `pairs must be some of ${allowed.join(", ")}; unknown: ${unknown.join(", ") || "(none given)"}` }, { status: 400 });
    }
    if (this.ctx.getWebSockets().length >= MAX_SOCKETS) return Response.json({ error: "too many connections to this session" }, { status: 503 });
    const last = (this.ctx.storage.sql.exec("SELECT COALESCE(MAX(seq), 0) AS s FROM events").one().s as number) ?? 0;
    if (since > last) return Response.json({ error: `since ${since} is ahead of the session (last seq ${last})` }, { status: 400 });

    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return Response.json({ error: "expected a WebSocket upgrade" }, { status: 426 });
    }
    const pair = new WebSocketPair();
    const [client, server] = Object.values(pair);
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment({ pairs: wanted } satisfies Attachment);
    // Replay and hello are sent before this handler returns, with no await
    // in between, so no live event can slip in ahead of them.
    const oldest = (this.ctx.storage.sql.exec("SELECT COALESCE(MIN(seq), 0) AS s FROM events").one().s as number) ?? 0;
    if (sinceRaw !== null && oldest > since + 1) {
      server.send(JSON.stringify({ type: "gap", since, oldest, note: "events before oldest were dropped (SESSION_RETAIN_EVENTS)" }));
    }
    let replayed = 0;
    if (sinceRaw !== null) {
      for (const row of this.ctx.storage.sql.exec("SELECT body FROM events WHERE seq > ? ORDER BY seq", since)) {
        const body = row.body as string;
        const ev = JSON.parse(body) as { pair?: string };
        if (ev.pair && !wanted.includes(ev.pair)) continue;
        server.send(body);
        replayed++;
      }
    }
    server.send(JSON.stringify({ type: "hello", last_seq: last, replayed, pairs: wanted }));
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + this.interval());
    return new Response(null, { status: 101, webSocket: client });
  }

  private interval(): number {
    return intVar(this.env, "TICK_INTERVAL_MS", 100, 100, 60_000);
  }

  async alarm(): Promise<void> {
    const sockets = this.ctx.getWebSockets();
    if (sockets.length === 0) return; // nobody listening: the loop stops until the next connection
    const wanted = new Set<string>();
    for (const ws of sockets) for (const p of (ws.deserializeAttachment() as Attachment | null)?.pairs ?? []) wanted.add(p);
    await Promise.all(
      [...wanted].map(async (pair) => {
        try {
          const { quote } = await getQuote(this.env, pair);
          const mark = `${quote.trade_id}:${quote.price}:${quote.fetched_at}`;
          const prev = this.ctx.storage.sql.exec("SELECT mark FROM last_tick WHERE pair = ?", pair).toArray()[0]?.mark;
          if (prev === mark) return;
          this.ctx.storage.sql.exec("INSERT OR REPLACE INTO last_tick (pair, mark) VALUES (?, ?)", pair, mark);
          this.append({ type: "tick", pair, price: quote.price, bid: quote.bid, ask: quote.ask, time: quote.time }, pair);
        } catch (e) {
          console.error("tick failed", pair, String(e));
        }
      }),
    );
    await this.ctx.storage.setAlarm(Date.now() + this.interval());
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (message === "ping") ws.send(JSON.stringify({ type: "pong", at: Date.now() }));
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  async webSocketError(ws: WebSocket): Promise<void> {
    try {
      ws.close(1011, "error");
    } catch {
      // already closed
    }
  }
}
