// TradeSession: one Durable Object per trade. Two parties join, state what
// they offer (listings they own and KATY) and want, negotiate, and accept;
// when every party has accepted, a TradeWorkflow starts. After the
// workflow's escrow, each party confirms; when all have, the workflow gets
// its event. Live updates go over hibernating WebSockets; every message is
// stored in SQL; an alarm expires sessions left idle.
import { DurableObject } from "cloudflare:workers";
import type { Env } from "./env";
import { AppError, errorResponse, json } from "./lib";

type Row = Record<string, string | number | null>;
export interface Offer { items: string[]; coins: number }
export interface Party { user: string; offers: Offer; wants: { items: string[] } }

const MAX_PARTIES = 2;
const MAX_ITEMS = 20;
const WS_TYPES = ["OFFER", "WANT", "NEGOTIATE", "ACCEPT", "CONFIRM", "CHAT"];

export class TradeSession extends DurableObject<Env> {
  private sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS participants (
        user_id TEXT PRIMARY KEY,
        joined_at INTEGER NOT NULL,
        status TEXT NOT NULL,
        offers TEXT NOT NULL DEFAULT '{"items":[],"coins":0}',
        wants TEXT NOT NULL DEFAULT '{"items":[]}');
      CREATE TABLE IF NOT EXISTS messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT,
        type TEXT NOT NULL,
        content TEXT NOT NULL,
        at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS trade_state (k TEXT PRIMARY KEY, v TEXT NOT NULL);
    `);
  }

  private get(k: string): string | null {
    const r = this.sql.exec("SELECT v FROM trade_state WHERE k = ?", k).toArray()[0] as Row | undefined;
    return r ? String(r.v) : null;
  }

  private set(k: string, v: string) {
    this.sql.exec("INSERT INTO trade_state (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", k, v);
  }

  private parties(): (Party & { status: string; joined_at: number })[] {
    return (this.sql.exec("SELECT * FROM participants ORDER BY joined_at, user_id").toArray() as Row[]).map((r) => ({
      user: String(r.user_id),
      status: String(r.status),
      joined_at: Number(r.joined_at),
      offers: JSON.parse(String(r.offers)),
      wants: JSON.parse(String(r.wants)),
    }));
  }

  state() {
    const messages = this.sql.exec("SELECT id, user_id, type, content, at FROM messages ORDER BY id DESC LIMIT 50").toArray() as Row[];
    return {
      tradeId: this.get("trade_id"),
      phase: this.get("phase") ?? "new",
      creator: this.get("creator"),
      participants: this.parties(),
      escrow: JSON.parse(this.get("escrow") ?? "null"),
      outcome: JSON.parse(this.get("outcome") ?? "null"),
      messages: messages.reverse().map((m) => ({ ...m, content: JSON.parse(String(m.content)) })),
    };
  }

  private record(user: string | null, type: string, content: unknown) {
    this.sql.exec("INSERT INTO messages (user_id, type, content, at) VALUES (?, ?, ?, ?)", user, type, JSON.stringify(content), Date.now());
  }

  private broadcast(msg: Record<string, unknown>, except?: WebSocket) {
    const text = JSON.stringify({ ...msg, timestamp: Date.now() });
    for (const ws of this.ctx.getWebSockets()) {
      if (ws === except) continue;
      try {
        ws.send(text);
      } catch {
        // A socket closing under us: its close event cleans up.
      }
    }
  }

  private async touch() {
    this.set("last_activity", String(Date.now()));
    const idle = (Number(this.env.SESSION_IDLE_SECONDS ?? "1800") || 1800) * 1000;
    await this.ctx.storage.setAlarm(Date.now() + idle);
  }

  private phase(): string {
    return this.get("phase") ?? "new";
  }

  private requireParty(user: string) {
    const r = this.sql.exec("SELECT status FROM participants WHERE user_id = ?", user).toArray()[0];
    if (!r) throw new AppError("forbidden", `${user} is not a party to this trade`);
  }

  private requireOpen(what: string) {
    const p = this.phase();
    if (p !== "open") throw new AppError("conflict", `cannot ${what}: the trade is ${p}`);
  }

  async init(tradeId: string, creator: string): Promise<unknown> {
    if (this.get("trade_id") === null) {
      this.set("trade_id", tradeId);
      this.set("creator", creator);
      this.set("phase", "open");
      await this.join(creator);
    }
    return this.state();
  }

  async join(user: string): Promise<void> {
    const existing = this.sql.exec("SELECT 1 FROM participants WHERE user_id = ?", user).toArray()[0];
    if (existing) return;
    this.requireOpen("join");
    const n = Number((this.sql.exec("SELECT COUNT(*) AS n FROM participants").one() as Row).n);
    if (n >= MAX_PARTIES) throw new AppError("conflict", `a trade has at most ${MAX_PARTIES} parties`);
    this.sql.exec("INSERT INTO participants (user_id, joined_at, status) VALUES (?, ?, 'joined')", user, Date.now());
    this.record(user, "USER_JOINED", {});
    this.broadcast({ type: "USER_JOINED", userId: user });
    await this.touch();
  }

  /** One message from HTTP or a WebSocket, already authenticated as `user`. */
  async act(user: string, type: string, data: Record<string, unknown>): Promise<unknown> {
    if (type === "JOIN") {
      await this.join(user);
      return this.state();
    }
    this.requireParty(user);
    switch (type) {
      case "OFFER": {
        this.requireOpen("change offers");
        const offers = await this.checkOffer(user, data);
        this.sql.exec("UPDATE participants SET offers = ? WHERE user_id = ?", JSON.stringify(offers), user);
        this.resetAcceptance();
        this.record(user, type, offers);
        this.broadcast({ type, userId: user, data: offers });
        break;
      }
      case "WANT": {
        this.requireOpen("change wants");
        const items = listOf(data.items, "items");
        this.sql.exec("UPDATE participants SET wants = ? WHERE user_id = ?", JSON.stringify({ items }), user);
        this.resetAcceptance();
        this.record(user, type, { items });
        this.broadcast({ type, userId: user, data: { items } });
        break;
      }
      case "NEGOTIATE": {
        this.requireOpen("negotiate");
        const message = typeof data.message === "string" ? data.message.slice(0, 2000) : "";
        this.resetAcceptance();
        this.record(user, type, { message, proposal: data.proposal ?? null });
        this.broadcast({ type, userId: user, data: { message, proposal: data.proposal ?? null } });
        break;
      }
      case "CHAT": {
        const text = typeof data.text === "string" ? data.text.slice(0, 2000) : "";
        if (!text) throw new AppError("invalid", "CHAT needs text");
        this.record(user, type, { text });
        this.broadcast({ type, userId: user, message: text });
        break;
      }
      case "ACCEPT":
        await this.accept(user);
        break;
      case "CONFIRM":
        // Before escrow, confirming the terms is accepting them.
        if (this.phase() === "open") await this.accept(user);
        else await this.confirm(user);
        break;
      default:
        throw new AppError("invalid", `unknown message type ${type}; expected one of ${WS_TYPES.join(", ")}`);
    }
    await this.touch();
    return this.state();
  }

  private async checkOffer(user: string, data: Record<string, unknown>): Promise<Offer> {
    const items = listOf(data.items ?? [], "items");
    const coins = data.coins ?? 0;
    if (typeof coins !== "number" || !Number.isSafeInteger(coins) || coins < 0) throw new AppError("invalid", "coins must be a non-negative integer of KATY minor units");
    for (const id of items) {
      const l = await this.env.DB.prepare("SELECT owner_id, status FROM listings WHERE id = ?").bind(id).first<{ owner_id: string; status: string }>();
      if (!l) throw new AppError("invalid", `no listing ${id}`);
      if (l.owner_id !== user || l.status !== "active") throw new AppError("forbidden", `listing ${id} is not an active listing of ${user}`);
    }
    if (items.length === 0 && coins === 0) throw new AppError("invalid", "an offer needs items or coins");
    return { items, coins };
  }

  private resetAcceptance() {
    this.sql.exec("UPDATE participants SET status = 'joined' WHERE status = 'accepted'");
  }

  private async accept(user: string) {
    this.requireOpen("accept");
    this.sql.exec("UPDATE participants SET status = 'accepted' WHERE user_id = ?", user);
    this.record(user, "ACCEPT", {});
    this.broadcast({ type: "ACCEPT", userId: user });
    const parties = this.parties();
    const ready = parties.length === MAX_PARTIES && parties.every((p) => p.status === "accepted");
    if (!ready) return;
    if (parties.every((p) => p.offers.items.length === 0 && p.offers.coins === 0)) return;
    const tradeId = this.get("trade_id")!;
    const params = { tradeId, participants: parties.map(({ user, offers, wants }) => ({ user, offers, wants })) };
    try {
      await this.env.TRADES.create({ id: tradeId, params });
    } catch (e) {
      // Created already (an earlier attempt crashed after creating it).
      const existing = await this.env.TRADES.get(tradeId).catch(() => null);
      if (!existing) throw e;
    }
    this.set("phase", "accepted");
    this.record(null, "TRADE_ACCEPTED", { workflow: tradeId });
    this.broadcast({ type: "TRADE_ACCEPTED", tradeId, participants: params.participants });
  }

  private async confirm(user: string) {
    if (this.phase() !== "escrowed") throw new AppError("conflict", `cannot confirm: the trade is ${this.phase()}, not escrowed`);
    this.sql.exec("UPDATE participants SET status = 'confirmed' WHERE user_id = ?", user);
    this.record(user, "CONFIRM", {});
    this.broadcast({ type: "CONFIRM", userId: user });
    const parties = this.parties();
    if (parties.every((p) => p.status === "confirmed")) {
      const tradeId = this.get("trade_id")!;
      const instance = await this.env.TRADES.get(tradeId);
      await instance.sendEvent({ type: "trade-confirmed", payload: { confirmedBy: parties.map((p) => p.user) } });
      this.set("phase", "confirmed");
    }
  }

  /** From the TradeWorkflow: escrow made, trade completed, cancelled, failed. */
  async notify(ev: { type: string; [k: string]: unknown }): Promise<void> {
    const phases: Record<string, string> = { TRADE_READY: "escrowed", TRADE_COMPLETED: "completed", TRADE_CANCELLED: "cancelled", TRADE_FAILED: "failed" };
    const next = phases[ev.type];
    if (!next) throw new AppError("invalid", `unknown notification ${ev.type}`);
    const cur = this.phase();
    if (cur === next || ["completed", "cancelled", "failed"].includes(cur)) return; // replayed step
    this.set("phase", next);
    if (ev.type === "TRADE_READY") this.set("escrow", JSON.stringify(ev));
    else this.set("outcome", JSON.stringify(ev));
    this.record(null, ev.type, ev);
    this.broadcast({ ...ev });
    await this.touch();
  }

  async fetch(request: Request): Promise<Response> {
    try {
      const user = request.headers.get("x-katy-user");
      if (!user) throw new AppError("unauthorized", "no user");
      if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
        // Joining after the trade left "open" is refused, but a party
        // may watch its trade in any phase.
        await this.join(user).catch(() => this.requireParty(user));
        const [client, server] = Object.values(new WebSocketPair());
        const sessionId = crypto.randomUUID();
        this.ctx.acceptWebSocket(server, [user]);
        server.serializeAttachment({ user, sessionId });
        server.send(JSON.stringify({ type: "INIT", sessionId, state: this.state(), timestamp: Date.now() }));
        return new Response(null, { status: 101, webSocket: client });
      }
      return json(this.state());
    } catch (e) {
      return errorResponse(e);
    }
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const { user } = ws.deserializeAttachment() as { user: string };
    let msg: { type?: unknown; data?: unknown; text?: unknown };
    try {
      if (typeof message !== "string" || message.length > 16384) throw new AppError("invalid", "messages are JSON text up to 16 KiB");
      msg = JSON.parse(message);
      if (typeof msg !== "object" || msg === null || typeof msg.type !== "string" || !WS_TYPES.includes(msg.type)) {
        throw new AppError("invalid", `type must be one of ${WS_TYPES.join(", ")}`);
      }
      const data = (typeof msg.data === "object" && msg.data !== null ? msg.data : {}) as Record<string, unknown>;
      if (msg.type === "CHAT" && typeof msg.text === "string") data.text = msg.text;
      await this.act(user, msg.type, data);
    } catch (e) {
      const m = e instanceof Error ? e.message : String(e);
      ws.send(JSON.stringify({ type: "ERROR", message: m, timestamp: Date.now() }));
    }
  }

  async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    const { user } = ws.deserializeAttachment() as { user: string };
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
    const still = this.ctx.getWebSockets(user).filter((w) => w !== ws).length;
    if (still === 0) {
      this.record(user, "USER_LEFT", {});
      this.broadcast({ type: "USER_LEFT", userId: user }, ws);
    }
  }

  async alarm(): Promise<void> {
    const idle = (Number(this.env.SESSION_IDLE_SECONDS ?? "1800") || 1800) * 1000;
    const last = Number(this.get("last_activity") ?? "0");
    const phase = this.phase();
    if (Date.now() - last < idle) {
      await this.ctx.storage.setAlarm(last + idle);
      return;
    }
    if (phase === "open") {
      this.set("phase", "expired");
      this.record(null, "SESSION_EXPIRED", {});
      this.broadcast({ type: "SESSION_EXPIRED" });
      const tradeId = this.get("trade_id");
      if (tradeId) await this.env.DB.prepare("UPDATE trades SET status = 'expired', updated_at = ? WHERE id = ? AND status = 'open'").bind(Date.now(), tradeId).run();
    }
    if (phase === "open" || ["completed", "cancelled", "failed", "expired"].includes(phase)) {
      for (const ws of this.ctx.getWebSockets()) {
        try {
          ws.close(1000, "session expired");
        } catch {
          // already closed
        }
      }
    }
  }
}

function listOf(v: unknown, name: string): string[] {
  if (!Array.isArray(v) || v.length > MAX_ITEMS || !v.every((x) => typeof x === "string" && /^[A-Za-z0-9_.:-]{1,128}$/.test(x))) {
    throw new AppError("invalid", `${name} must be a list of at most ${MAX_ITEMS} ids`);
  }
  return [...new Set(v as string[])];
}
