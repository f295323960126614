// Balance domain: one Durable Object per player holds every currency's
// balance, so credits and debits on a player are applied one at a time and
// a balance can never go below zero. Each operation is recorded with its
// Idempotency-Key inside the object, in the same transaction as the change.
import { DurableObject } from "cloudflare:workers";
import {
  HttpError, Router, actor, currency, decimal, domainEvent, idempotencyKey, json, money, oneOf, pathId,
  readBody, sha256Hex, id, IDEMPOTENCY_TTL_MS, type Actor, type Stored,
} from "../../shared/lib.ts";

interface Env {
  DB: D1Database;
  EVENTS: Queue;
  PLAYERS: DurableObjectNamespace<PlayerBalance>;
  SUPPORTED_CURRENCIES?: string;
}

export interface BalanceOp {
  key: string;
  fingerprint: string;
  playerId: string;
  type: "credit" | "debit";
  currency: string;
  amountMinor: number;
  actor: Actor;
  reason?: string;
}

export class PlayerBalance extends DurableObject<Env> {
  private sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS balances (currency TEXT PRIMARY KEY, amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0))`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)`);
    // Answers by Idempotency-Key; created_at (ms) lets them expire after
    // IDEMPOTENCY_TTL_MS like the D1 domains' records.
    this.sql.exec(`CREATE TABLE IF NOT EXISTS ops (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL)`);
    this.sql.exec(`CREATE INDEX IF NOT EXISTS ops_created ON ops (created_at)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS ledger (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, op_id TEXT NOT NULL, at TEXT NOT NULL, subject TEXT NOT NULL, role TEXT NOT NULL,
      type TEXT NOT NULL, currency TEXT NOT NULL, amount_minor INTEGER NOT NULL, balance_after INTEGER NOT NULL, reason TEXT)`);
    this.sql.exec(`CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END`);
    this.sql.exec(`CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL, audit TEXT NOT NULL)`);
  }

  private meta(k: string): string | null {
    const rows = this.sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = ?", k).toArray();
    return rows.length ? rows[0].v : null;
  }

  private setMeta(k: string, v: string) {
    this.sql.exec("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", k, v);
  }

  /** Applies one credit or debit, or replays the answer its key got before. */
  async apply(op: BalanceOp): Promise<Stored & { replayed: boolean }> {
    const result = this.ctx.storage.transactionSync(() => {
      const now = Date.now();
      // Expired answers go first, so an expired key counts as new.
      this.sql.exec("DELETE FROM ops WHERE created_at < ?", now - IDEMPOTENCY_TTL_MS);
      const earlier = this.sql.exec<{ fingerprint: string; status: number; body: string }>(
        "SELECT fingerprint, status, body FROM ops WHERE key = ?", op.key).toArray();
      if (earlier.length) {
        if (earlier[0].fingerprint !== op.fingerprint) {
          return { status: 422, body: { error: "Idempotency-Key: already used with a different request", field: "Idempotency-Key" }, replayed: false, store: false };
        }
        return { status: earlier[0].status, body: JSON.parse(earlier[0].body), replayed: true, store: false };
      }
      if (this.meta("playerId") === null) this.setMeta("playerId", op.playerId);
      const row = this.sql.exec<{ amount_minor: number }>("SELECT amount_minor FROM balances WHERE currency = ?", op.currency).toArray();
      const before = row.length ? row[0].amount_minor : 0;
      const version = Number(this.meta("version") ?? "0");
      if (op.type === "debit" && op.amountMinor > before) {
        const body = {
          error: `insufficient funds: a debit of ${decimal(op.amountMinor)} ${op.currency} exceeds the balance of ${decimal(before)}`,
          field: "amount", playerId: op.playerId, balance: decimal(before), currency: op.currency, version,
        };
        this.sql.exec("INSERT INTO ops (key, fingerprint, status, body, created_at) VALUES (?, ?, ?, ?, ?)", op.key, op.fingerprint, 409, JSON.stringify(body), now);
        return { status: 409, body, replayed: false, store: true };
      }
      const after = op.type === "credit" ? before + op.amountMinor : before - op.amountMinor;
      const at = new Date(now).toISOString();
      const opId = `bal_${crypto.randomUUID().replace(/-/g, "")}`;
      this.sql.exec("INSERT INTO balances (currency, amount_minor) VALUES (?, ?) ON CONFLICT (currency) DO UPDATE SET amount_minor = excluded.amount_minor", op.currency, after);
      this.setMeta("version", String(version + 1));
      this.sql.exec(
        "INSERT INTO ledger (op_id, at, subject, role, type, currency, amount_minor, balance_after, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        opId, at, op.actor.subject, op.actor.role, op.type, op.currency, op.amountMinor, after, op.reason ?? null);
      const body = {
        operationId: opId, playerId: op.playerId, type: op.type, amount: decimal(op.amountMinor), currency: op.currency,
        balance: decimal(after), version: version + 1,
      };
      const event = domainEvent("BALANCE_UPDATED", "balance", body, `evt_${opId}`);
      const audit = { opId, at, subject: op.actor.subject, role: op.actor.role, action: `balance.${op.type}`, detail: { ...body, reason: op.reason } };
      this.sql.exec("INSERT INTO outbox (event, audit) VALUES (?, ?)", JSON.stringify(event), JSON.stringify(audit));
      this.sql.exec("INSERT INTO ops (key, fingerprint, status, body, created_at) VALUES (?, ?, ?, ?, ?)", op.key, op.fingerprint, 200, JSON.stringify(body), now);
      return { status: 200, body, replayed: false, store: true };
    });
    if (result.status === 200 && !result.replayed) {
      // The relay runs from the alarm: it survives a crash, and batches
      // the events of a burst of operations.
      if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now());
    }
    return { status: result.status, body: result.body, replayed: result.replayed };
  }

  async snapshot() {
    const rows = this.sql.exec<{ currency: string; amount_minor: number }>("SELECT currency, amount_minor FROM balances ORDER BY currency").toArray();
    const balances: Record<string, number> = {};
    for (const r of rows) balances[r.currency] = decimal(r.amount_minor);
    return { balances, version: Number(this.meta("version") ?? "0") };
  }

  /** Relays outbox rows: events to the queue, audit copies to D1. */
  async alarm() {
    const rows = this.sql.exec<{ seq: number; event: string; audit: string }>("SELECT seq, event, audit FROM outbox ORDER BY seq LIMIT 100").toArray();
    if (rows.length === 0) return;
    const playerId = this.meta("playerId") ?? "unknown";
    const now = new Date().toISOString();
    const stmts = [
      this.env.DB.prepare(
        "INSERT INTO players (player_id, first_seen, last_change) VALUES (?, ?, ?) ON CONFLICT (player_id) DO UPDATE SET last_change = excluded.last_change",
      ).bind(playerId, now, now),
      ...rows.map((r) => {
        const a = JSON.parse(r.audit);
        return this.env.DB.prepare(
          "INSERT OR IGNORE INTO audit_log (op_id, at, subject, role, action, entity, entity_id, detail) VALUES (?, ?, ?, ?, ?, 'balance', ?, ?)",
        ).bind(a.opId, a.at, a.subject, a.role, a.action, playerId, JSON.stringify(a.detail));
      }),
    ];
    await this.env.DB.batch(stmts);
    await this.env.EVENTS.sendBatch(rows.map((r) => ({ body: JSON.parse(r.event) })));
    this.sql.exec("DELETE FROM outbox WHERE seq <= ?", rows[rows.length - 1].seq);
    const left = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox").one().n;
    if (left > 0) await this.ctx.storage.setAlarm(Date.now());
  }
}

function supported(env: Env): string[] {
  return (env.SUPPORTED_CURRENCIES ?? "USD").split(",").map((c) => c.trim()).filter(Boolean);
}

const router = new Router<Env>()
  .on("GET", "/api/domains/balance/health", async (_r, env) => {
    const started = Date.now();
    await env.DB.prepare("SELECT 1").first();
    const players = await env.DB.prepare("SELECT COUNT(*) AS n FROM players").first<{ n: number }>();
    return json({ domain: "balance", status: "healthy", database: { ok: true, latencyMs: Date.now() - started }, players: players?.n ?? 0 });
  })
  .on("POST", "/api/domains/balance", async (req, env) => {
    const { body, raw } = await readBody(req);
    const playerId = id(body, "playerId");
    const amountMinor = money(body, "amount");
    const cur = currency(body);
    if (!supported(env).includes(cur)) {
      throw new HttpError(400, `currency: ${cur} is not supported (supported: ${supported(env).join(", ")})`, "currency");
    }
    const type = oneOf(body, "type", ["credit", "debit"] as const);
    const reason = typeof body.reason === "string" ? body.reason.slice(0, 256) : undefined;
    const key = idempotencyKey(req);
    const fingerprint = await sha256Hex(`POST /api/domains/balance\n${raw}`);
    const stub = env.PLAYERS.getByName(playerId);
    const r = await stub.apply({ key, fingerprint, playerId, type, currency: cur, amountMinor, actor: actor(req), reason });
    return json(r.body, r.status, r.replayed ? { "idempotent-replayed": "true" } : {});
  })
  .on("GET", "/api/domains/balance/:playerId", async (_r, env, _c, p) => {
    const playerId = pathId(p.playerId, "playerId");
    const snap = await env.PLAYERS.getByName(playerId).snapshot();
    return json({ playerId, ...snap });
  });

export default {
  fetch: (req: Request, env: Env, ctx: ExecutionContext) => router.handle(req, env, ctx),
};
