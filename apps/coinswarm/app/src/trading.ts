// Accounts, positions and trades in D1 (episodic memory); every trade also
// goes to Analytics Engine, whose SQL API answers the P&L query.
import { Env, HttpError, checkPair, finite, numVar } from "./lib";
import { getQuote } from "./market";
import type { TradingSession } from "./session";

export async function listAccounts(env: Env): Promise<unknown[]> {
  const accounts = await env.DB.prepare("SELECT id, name, currency, balance, created_at FROM accounts ORDER BY id").all();
  const positions = await env.DB.prepare(
    "SELECT account_id, symbol, quantity, avg_price FROM positions WHERE quantity > 0 ORDER BY account_id, symbol",
  ).all();
  return accounts.results.map((a) => ({
    ...a,
    positions: positions.results
      .filter((p) => p.account_id === a.id)
      .map((p) => ({ symbol: p.symbol, quantity: p.quantity, avg_price: p.avg_price })),
  }));
}

export async function createAccount(env: Env, body: Record<string, unknown>): Promise<unknown> {
  const id = body.id;
  if (typeof id !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new HttpError(400, "id must be 1-64 characters of A-Z, a-z, 0-9, _ or -");
  const name = typeof body.name === "string" && body.name.length > 0 ? body.name.slice(0, 200) : id;
  const balance = finite(body.balance ?? 10000, "balance", { min: 0 });
  const r = await env.DB.prepare("INSERT INTO accounts (id, name, balance, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING")
    .bind(id, name, balance, Date.now())
    .run();
  if (r.meta.changes === 0) throw new HttpError(409, `account ${id} exists already`);
  return { id, name, currency: "USD", balance, positions: [] };
}

export async function recentTrades(env: Env, symbol: string | null, account: string | null, rawLimit: string | number | null): Promise<unknown[]> {
  let limit = 100;
  if (rawLimit !== null && rawLimit !== "") {
    limit = Number(rawLimit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, "limit must be a whole number from 1 to 1000");
  }
  const where: string[] = [];
  const args: unknown[] = [];
  if (symbol) {
    where.push("symbol = ?");
    args.push(checkPair(env, symbol, "symbol"));
  }
  if (account) {
    where.push("account_id = ?");
    args.push(account);
  }
  const sql = `SELECT id, account_id, symbol, side, quantity, price, fee, pnl, timestamp, client_order_id FROM trades
     ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY timestamp DESC, rowid DESC LIMIT ?`;
  const { results } = await env.DB.prepare(sql)
    .bind(...args, limit)
    .all();
  return results;
}

export interface OrderResult {
  trade: Record<string, unknown>;
  balance: number;
  position: { symbol: string; quantity: number; avg_price: number };
  replayed: boolean;
}

/** A sandbox market order filled at the current quote (buy at the ask, sell at the bid). */
export async function placeOrder(env: Env, body: Record<string, unknown>): Promise<OrderResult> {
  const account = body.account_id;
  if (typeof account !== "string" || account.length === 0) throw new HttpError(400, "account_id is required");
  const symbol = checkPair(env, body.symbol, "symbol");
  const side = body.side;
  if (side !== "buy" && side !== "sell") throw new HttpError(400, 'side must be "buy" or "sell"');
  const quantity = finite(body.quantity, "quantity", { positive: true });
  const clientId = body.client_order_id;
  if (clientId !== undefined && (typeof clientId !== "string" || clientId.length === 0 || clientId.length > 64)) {
    throw new HttpError(400, "client_order_id must be a string of 1-64 characters");
  }
  const acct = await env.DB.prepare("SELECT balance FROM accounts WHERE id = ?").bind(account).first<{ balance: number }>();
  if (!acct) throw new HttpError(404, `no account ${account}`);
  if (clientId !== undefined) {
    const prior = await env.DB.prepare("SELECT * FROM trades WHERE account_id = ? AND client_order_id = ?").bind(account, clientId).first();
    if (prior) return { ...(await snapshot(env, account, symbol)), trade: prior, replayed: true };
  }
  const { quote } = await getQuote(env, symbol);
  const price = side === "buy" ? quote.ask : quote.bid;
  const notional = price * quantity;
  const fee = Math.round(notional * numVar(env, "FEE_RATE", 0.001) * 1e8) / 1e8;
  const id = crypto.randomUUID();
  const now = Date.now();
  const exists = "EXISTS (SELECT 1 FROM trades WHERE id = ?1)";
  // One batch, one transaction: the trade row is inserted only if the
  // account can pay (buy) or holds the quantity (sell); every other
  // statement applies only if that row exists.
  const insert =
    side === "buy"
      ? env.DB.prepare(
          `INSERT INTO trades (id, account_id, symbol, side, quantity, price, fee, pnl, timestamp, client_order_id)
           SELECT ?1, ?2, ?3, 'buy', ?4, ?5, ?6, -?6, ?7, ?8 WHERE (SELECT balance FROM accounts WHERE id = ?2) >= ?4 * ?5 + ?6`,
        ).bind(id, account, symbol, quantity, price, fee, now, clientId ?? null)
      : env.DB.prepare(
          `INSERT INTO trades (id, account_id, symbol, side, quantity, price, fee, pnl, timestamp, client_order_id)
           SELECT ?1, ?2, ?3, 'sell', ?4, ?5, ?6, (?5 - p.avg_price) * ?4 - ?6, ?7, ?8
           FROM positions p WHERE p.account_id = ?2 AND p.symbol = ?3 AND p.quantity >= ?4 - 1e-12`,
        ).bind(id, account, symbol, quantity, price, fee, now, clientId ?? null);
  const balance =
    side === "buy"
      ? env.DB.prepare(`UPDATE accounts SET balance = balance - (?2 * ?3 + ?4) WHERE id = ?5 AND ${exists}`).bind(id, quantity, price, fee, account)
      : env.DB.prepare(`UPDATE accounts SET balance = balance + (?2 * ?3 - ?4) WHERE id = ?5 AND ${exists}`).bind(id, quantity, price, fee, account);
  const position =
    side === "buy"
      ? env.DB.prepare(
          `INSERT INTO positions (account_id, symbol, quantity, avg_price) SELECT ?2, ?3, ?4, ?5 WHERE ${exists}
           ON CONFLICT (account_id, symbol) DO UPDATE SET
             avg_price = (quantity * avg_price + excluded.quantity * excluded.avg_price) / (quantity + excluded.quantity),
             quantity = quantity + excluded.quantity`,
        ).bind(id, account, symbol, quantity, price)
      : env.DB.prepare(`UPDATE positions SET quantity = MAX(0, quantity - ?4) WHERE account_id = ?2 AND symbol = ?3 AND ${exists}`).bind(
          id,
          account,
          symbol,
          quantity,
        );
  let results;
  try {
    results = await env.DB.batch([insert, balance, position]);
  } catch (e) {
    if (clientId !== undefined && String(e).includes("UNIQUE")) {
      const prior = await env.DB.prepare("SELECT * FROM trades WHERE account_id = ? AND client_order_id = ?").bind(account, clientId).first();
      if (prior) return { ...(await snapshot(env, account, symbol)), trade: prior, replayed: true };
    }
    throw e;
  }
  if (results[0].meta.changes !== 1) {
    throw new HttpError(
      422,
      side === "buy" ? `insufficient balance: ${account} cannot pay ${(notional + fee).toFixed(2)}` : `insufficient position: ${account} holds less than ${quantity} ${symbol}`,
    );
  }
  const trade = (await env.DB.prepare("SELECT * FROM trades WHERE id = ?").bind(id).first()) as Record<string, unknown>;
  env.TRADES.writeDataPoint({
    indexes: [account],
    blobs: [account, symbol, side, id],
    doubles: [quantity, price, fee, Number(trade.pnl), notional],
  });
  const snap = await snapshot(env, account, symbol);
  try {
    const session = env.SESSIONS.get(env.SESSIONS.idFromName(account)) as unknown as TradingSession;
    await session.publish({ type: "fill", trade, balance: snap.balance, position: snap.position });
  } catch (e) {
    // The trade is committed; a session that cannot be told is logged, not fatal.
    console.error("order update not broadcast", String(e));
  }
  return { trade, ...snap, replayed: false };
}

async function snapshot(env: Env, account: string, symbol: string) {
  const a = await env.DB.prepare("SELECT balance FROM accounts WHERE id = ?").bind(account).first<{ balance: number }>();
  const p = await env.DB.prepare("SELECT quantity, avg_price FROM positions WHERE account_id = ? AND symbol = ?")
    .bind(account, symbol)
    .first<{ quantity: number; avg_price: number }>();
  return { balance: a?.balance ?? 0, position: { symbol, quantity: p?.quantity ?? 0, avg_price: p?.avg_price ?? 0 } };
}

const WINDOW_UNITS: Record<string, number> = { m: 60, h: 3600, d: 86400 };

/** Realised P&L per symbol over a window ("15m", "24h", "7d", at most 92d), from Analytics Engine's SQL API. */
export async function pnl(env: Env, request: Request, window: string | null, account: string | null): Promise<unknown> {
  const w = window ?? "24h";
  const m = /^([1-9][0-9]{0,4})([mhd])$/.exec(w);
  if (!m) throw new HttpError(400, `window must be like 15m, 24h or 7d, got ${JSON.stringify(w)}`);
  const seconds = Number(m[1]) * WINDOW_UNITS[m[2]];
  if (seconds > 92 * 86400) throw new HttpError(400, "window must be at most 92d (Analytics Engine keeps three months)");
  if (account !== null && !/^[A-Za-z0-9_-]{1,64}$/.test(account)) throw new HttpError(400, "account must be an account id");
  const token = env.ANALYTICS_API_TOKEN;
  if (!token) throw new HttpError(503, "ANALYTICS_API_TOKEN is not configured");
  const base = (env.ANALYTICS_API_BASE || new URL(request.url).origin).replace(/\/+$/, "");
  const filter = account ? ` AND index1 = '${account}'` : "";
  const sql =
    `SELECT blob2 AS symbol, SUM(double4 * _sample_interval) AS pnl, SUM(double3 * _sample_interval) AS fees, ` +
    `SUM(double5 * _sample_interval) AS notional, SUM(_sample_interval) AS trades FROM coinswarm_trades ` +
    `WHERE timestamp > NOW() - INTERVAL '${seconds}' SECOND${filter} GROUP BY symbol ORDER BY symbol FORMAT JSON`;
  const res = await fetch(`${base}/client/v4/accounts/${env.ACCOUNT_ID}/analytics_engine/sql`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: sql,
  });
  const text = await res.text();
  if (!res.ok) throw new HttpError(502, `Analytics Engine SQL API answered ${res.status}: ${text.slice(0, 300)}`);
  let parsed: { data?: Array<Record<string, unknown>> };
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HttpError(502, "Analytics Engine SQL API answered something other than JSON");
  }
  const rows = (parsed.data ?? []).map((r) => ({
    symbol: String(r.symbol),
    pnl: Number(r.pnl),
    fees: Number(r.fees),
    notional: Number(r.notional),
    trades: Number(r.trades),
  }));
  return {
    window: w,
    account,
    total_pnl: rows.reduce((s, r) => s + r.pnl, 0),
    trades: rows.reduce((s, r) => s + r.trades, 0),
    by_symbol: rows,
  };
}


