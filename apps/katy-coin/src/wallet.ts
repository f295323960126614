// UserWallet: one Durable Object per user, keyed by the user id.
//
// Balances are integer minor units per currency. `balances.amount` is what
// the owner can spend; money in an open hold is counted in `holds` and not
// in `balances`, so the conserved total is sum(balances) + sum(open holds)
// + sum(outbox), where the outbox holds debits on their way to another
// wallet (delivered by the caller at once and by the alarm if that fails).
// Every operation takes a transaction id and is idempotent: a repeat with
// the same id returns the first answer; the same id with other parameters
// is refused. Each operation runs in one storage transaction.
import { DurableObject } from "cloudflare:workers";
import { AppError } from "./lib";
import type { Env } from "./env";

export interface Delivery {
  id: string;
  from: string;
  to: string;
  currency: string;
  amount: number;
  memo: string;
}

export interface OpResult {
  txId: string;
  type: string;
  currency: string;
  amount: number;
  balance: number;
  delivery?: Delivery;
  holdId?: string;
  status?: string;
}

type Row = Record<string, string | number | null>;

export class UserWallet extends DurableObject<Env> {
  private sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS balances (
        currency TEXT PRIMARY KEY,
        amount INTEGER NOT NULL CHECK (amount >= 0),
        updated_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS holds (
        id TEXT PRIMARY KEY,
        currency TEXT NOT NULL,
        amount INTEGER NOT NULL CHECK (amount > 0),
        reason TEXT NOT NULL,
        status TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        closed_at INTEGER,
        captured_to TEXT);
      CREATE TABLE IF NOT EXISTS transactions (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        currency TEXT NOT NULL,
        amount INTEGER NOT NULL,
        counterparty TEXT,
        hold_id TEXT,
        fingerprint TEXT NOT NULL,
        result TEXT NOT NULL,
        created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS outbox (
        id TEXT PRIMARY KEY,
        to_wallet TEXT NOT NULL,
        currency TEXT NOT NULL,
        amount INTEGER NOT NULL CHECK (amount > 0),
        memo TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL);
    `);
  }

  private owner(claimed: string): string {
    const row = this.sql.exec("SELECT v FROM meta WHERE k = 'owner'").toArray()[0] as Row | undefined;
    if (!row) {
      this.sql.exec("INSERT INTO meta (k, v) VALUES ('owner', ?)", claimed);
      return claimed;
    }
    if (row.v !== claimed) throw new AppError("conflict", `wallet belongs to ${row.v}, not ${claimed}`);
    return claimed;
  }

  private available(currency: string): number {
    const row = this.sql.exec("SELECT amount FROM balances WHERE currency = ?", currency).toArray()[0] as Row | undefined;
    return row ? Number(row.amount) : 0;
  }

  private adjust(currency: string, delta: number, at: number) {
    const next = this.available(currency) + delta;
    if (next < 0) throw new AppError("insufficient_funds", `available ${currency} is ${next - delta}, ${-delta} needed`);
    if (!Number.isSafeInteger(next)) throw new AppError("invalid", "balance would overflow");
    this.sql.exec(
      "INSERT INTO balances (currency, amount, updated_at) VALUES (?, ?, ?) ON CONFLICT(currency) DO UPDATE SET amount = excluded.amount, updated_at = excluded.updated_at",
      currency, next, at);
  }

  /** Runs `op` once per transaction id inside one storage transaction. */
  private once(txId: string, fingerprint: unknown, op: (at: number) => OpResult): OpResult {
    const fp = JSON.stringify(fingerprint);
    return this.ctx.storage.transactionSync(() => {
      const seen = this.sql.exec("SELECT fingerprint, result FROM transactions WHERE id = ?", txId).toArray()[0] as Row | undefined;
      if (seen) {
        if (seen.fingerprint !== fp) throw new AppError("conflict", `transaction id ${txId} was used with other parameters`);
        return JSON.parse(String(seen.result)) as OpResult;
      }
      const at = Date.now();
      const result = op(at);
      this.sql.exec(
        "INSERT INTO transactions (id, type, currency, amount, counterparty, hold_id, fingerprint, result, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        txId, result.type, result.currency, result.amount,
        result.delivery?.to ?? (fingerprint as { from?: string }).from ?? null,
        result.holdId ?? null, fp, JSON.stringify(result), at);
      return result;
    });
  }

  /** Money in: a mint by an operator or an incoming transfer. */
  async credit(a: { owner: string; txId: string; currency: string; amount: number; from?: string; memo?: string }): Promise<OpResult> {
    const r = this.once(a.txId, { op: "credit", currency: a.currency, amount: a.amount, from: a.from ?? null }, (at) => {
      this.owner(a.owner);
      this.adjust(a.currency, a.amount, at);
      return { txId: a.txId, type: a.from ? "transfer_in" : "mint", currency: a.currency, amount: a.amount, balance: this.available(a.currency) };
    });
    return r;
  }

  /** Money out to another wallet: debited here and put in the outbox in
   * one transaction; the caller delivers it and calls `delivered`. */
  async transfer(a: { owner: string; txId: string; to: string; currency: string; amount: number; memo?: string }): Promise<OpResult> {
    if (a.to === a.owner) throw new AppError("invalid", "cannot transfer to the same wallet");
    const r = this.once(a.txId, { op: "transfer", to: a.to, currency: a.currency, amount: a.amount }, (at) => {
      this.owner(a.owner);
      this.adjust(a.currency, -a.amount, at);
      const delivery = this.enqueue(a.owner, a.txId, a.to, a.currency, a.amount, a.memo ?? "", at);
      return { txId: a.txId, type: "transfer_out", currency: a.currency, amount: a.amount, balance: this.available(a.currency), delivery };
    });
    await this.schedule();
    return r;
  }

  private enqueue(owner: string, id: string, to: string, currency: string, amount: number, memo: string, at: number): Delivery {
    this.sql.exec(
      "INSERT INTO outbox (id, to_wallet, currency, amount, memo, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      id, to, currency, amount, memo, at + this.retryMs(), at);
    return { id, from: owner, to, currency, amount, memo };
  }

  private retryMs(): number {
    return Number(this.env.OUTBOX_RETRY_MS ?? "2000") || 2000;
  }

  /** The recipient has credited `id`: it leaves the outbox. */
  async delivered(id: string): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      this.sql.exec("DELETE FROM outbox WHERE id = ?", id);
    });
  }

  /** Escrow: moves `amount` out of the available balance into a hold that
   * expires at `expiresAt` (released by the alarm). */
  async hold(a: { owner: string; holdId: string; currency: string; amount: number; expiresAt: number; reason: string }): Promise<OpResult> {
    const r = this.once("hold:" + a.holdId, { op: "hold", currency: a.currency, amount: a.amount, reason: a.reason }, (at) => {
      this.owner(a.owner);
      if (a.expiresAt <= at) throw new AppError("invalid", "hold expiry must be in the future");
      this.adjust(a.currency, -a.amount, at);
      this.sql.exec(
        "INSERT INTO holds (id, currency, amount, reason, status, expires_at, created_at) VALUES (?, ?, ?, ?, 'open', ?, ?)",
        a.holdId, a.currency, a.amount, a.reason, a.expiresAt, at);
      return { txId: "hold:" + a.holdId, type: "hold", currency: a.currency, amount: a.amount, balance: this.available(a.currency), holdId: a.holdId, status: "open" };
    });
    await this.schedule();
    return r;
  }

  private openHold(holdId: string): Row {
    const h = this.sql.exec("SELECT * FROM holds WHERE id = ?", holdId).toArray()[0] as Row | undefined;
    if (!h) throw new AppError("not_found", `no hold ${holdId}`);
    if (h.status !== "open") throw new AppError("conflict", `hold ${holdId} is already ${h.status}`);
    return h;
  }

  /** Gives a hold back to the available balance, once. Releasing a hold
   * that expired (and so was released by the alarm) answers its state. */
  async release(a: { holdId: string }): Promise<OpResult> {
    const h0 = this.sql.exec("SELECT status, currency, amount FROM holds WHERE id = ?", a.holdId).toArray()[0] as Row | undefined;
    if (h0 && h0.status === "expired") {
      return { txId: "release:" + a.holdId, type: "release", currency: String(h0.currency), amount: Number(h0.amount), balance: this.available(String(h0.currency)), holdId: a.holdId, status: "expired" };
    }
    const r = this.once("release:" + a.holdId, { op: "release" }, (at) => {
      const h = this.openHold(a.holdId);
      this.closeHold(h, "released", at);
      return { txId: "release:" + a.holdId, type: "release", currency: String(h.currency), amount: Number(h.amount), balance: this.available(String(h.currency)), holdId: a.holdId, status: "released" };
    });
    await this.schedule();
    return r;
  }

  private closeHold(h: Row, status: string, at: number) {
    this.sql.exec("UPDATE holds SET status = ?, closed_at = ? WHERE id = ? AND status = 'open'", status, at, h.id);
    this.adjust(String(h.currency), Number(h.amount), at);
  }

  /** Pays a hold to another wallet, once: the hold closes and its amount
   * goes to the outbox for `to`. */
  async capture(a: { owner: string; holdId: string; to: string; memo?: string }): Promise<OpResult> {
    if (a.to === a.owner) throw new AppError("invalid", "cannot capture a hold to the same wallet");
    const r = this.once("capture:" + a.holdId, { op: "capture", to: a.to }, (at) => {
      const h = this.openHold(a.holdId);
      this.sql.exec("UPDATE holds SET status = 'captured', closed_at = ?, captured_to = ? WHERE id = ?", at, a.to, a.holdId);
      const delivery = this.enqueue(a.owner, "capture:" + a.holdId, a.to, String(h.currency), Number(h.amount), a.memo ?? "", at);
      return { txId: "capture:" + a.holdId, type: "capture", currency: String(h.currency), amount: Number(h.amount), balance: this.available(String(h.currency)), holdId: a.holdId, status: "captured", delivery };
    });
    await this.schedule();
    return r;
  }

  async balance(): Promise<{ owner: string | null; currencies: Record<string, { available: number; held: number; in_flight: number; balance: number }>; open_holds: number }> {
    const out: Record<string, { available: number; held: number; in_flight: number; balance: number }> = {};
    const slot = (c: string) => (out[c] ??= { available: 0, held: 0, in_flight: 0, balance: 0 });
    for (const r of this.sql.exec("SELECT currency, amount FROM balances").toArray() as Row[]) slot(String(r.currency)).available = Number(r.amount);
    for (const r of this.sql.exec("SELECT currency, SUM(amount) AS s FROM holds WHERE status = 'open' GROUP BY currency").toArray() as Row[]) slot(String(r.currency)).held = Number(r.s);
    for (const r of this.sql.exec("SELECT currency, SUM(amount) AS s FROM outbox GROUP BY currency").toArray() as Row[]) slot(String(r.currency)).in_flight = Number(r.s);
    for (const c of Object.values(out)) c.balance = c.available + c.held;
    const open = this.sql.exec("SELECT COUNT(*) AS n FROM holds WHERE status = 'open'").one() as Row;
    const owner = this.sql.exec("SELECT v FROM meta WHERE k = 'owner'").toArray()[0] as Row | undefined;
    return { owner: owner ? String(owner.v) : null, currencies: out, open_holds: Number(open.n) };
  }

  async holds(): Promise<Row[]> {
    return this.sql.exec("SELECT id, currency, amount, reason, status, expires_at, created_at, closed_at, captured_to FROM holds ORDER BY created_at").toArray() as Row[];
  }

  async history(a: { limit: number; before?: number }): Promise<Row[]> {
    const before = a.before ?? Number.MAX_SAFE_INTEGER;
    return (this.sql.exec(
      "SELECT id, type, currency, amount, counterparty, hold_id, created_at FROM transactions WHERE created_at < ? ORDER BY created_at DESC, id LIMIT ?",
      before, a.limit).toArray() as Row[]);
  }

  /** The next alarm: the earliest open hold expiry or outbox retry. */
  private async schedule() {
    const row = this.sql.exec(
      "SELECT MIN(t) AS t FROM (SELECT MIN(expires_at) AS t FROM holds WHERE status = 'open' UNION ALL SELECT MIN(next_at) FROM outbox)").one() as Row;
    const t = row.t === null ? null : Number(row.t);
    const current = await this.ctx.storage.getAlarm();
    if (t === null) {
      if (current !== null) await this.ctx.storage.deleteAlarm();
    } else if (current === null || current > t) {
      await this.ctx.storage.setAlarm(t);
    }
  }

  async alarm(): Promise<void> {
    const at = Date.now();
    // Expired holds go back to the available balance, each exactly once.
    this.ctx.storage.transactionSync(() => {
      for (const h of this.sql.exec("SELECT * FROM holds WHERE status = 'open' AND expires_at <= ?", at).toArray() as Row[]) {
        this.closeHold(h, "expired", at);
      }
    });
    // Deliveries the caller did not finish.
    const owner = this.sql.exec("SELECT v FROM meta WHERE k = 'owner'").toArray()[0] as Row | undefined;
    for (const o of this.sql.exec("SELECT * FROM outbox WHERE next_at <= ?", at).toArray() as Row[]) {
      const d: Delivery = { id: String(o.id), from: String(owner?.v), to: String(o.to_wallet), currency: String(o.currency), amount: Number(o.amount), memo: String(o.memo) };
      try {
        await deliverCredit(this.env, d);
        this.sql.exec("DELETE FROM outbox WHERE id = ?", d.id);
      } catch (e) {
        const attempts = Number(o.attempts) + 1;
        const wait = Math.min(this.retryMs() * 2 ** Math.min(attempts, 10), 3600_000);
        this.sql.exec("UPDATE outbox SET attempts = ?, next_at = ? WHERE id = ?", attempts, at + wait, d.id);
        console.error(`wallet delivery ${d.id} to ${d.to} failed (attempt ${attempts}): ${e instanceof Error ? e.message : e}`);
      }
    }
    await this.schedule();
  }
}

export function wallet(env: Env, user: string): DurableObjectStub<UserWallet> {
  return env.WALLET.get(env.WALLET.idFromName(user));
}

/** Credits the recipient of a delivery (idempotent by its id). */
export async function deliverCredit(env: Env, d: Delivery): Promise<void> {
  await wallet(env, d.to).credit({ owner: d.to, txId: `in:${d.from}:${d.id}`, currency: d.currency, amount: d.amount, from: d.from, memo: d.memo });
}

/** Delivers a debit now and clears it from the sender's outbox; if this
 * fails, the sender's alarm delivers it later. */
export async function deliver(env: Env, d: Delivery | undefined): Promise<void> {
  if (!d) return;
  await deliverCredit(env, d);
  await wallet(env, d.from).delivered(d.id);
}
