// Coinswarm's edge Worker: routes, auth, and the queue consumer.
import { Env, HttpError, checkAuth, errorResponse, json, readJson, segment } from "./lib";
import { handleMarketData } from "./market";
import { createAccount, listAccounts, placeOrder, pnl, recentTrades } from "./trading";
import { similarPatterns, upsertPatterns } from "./patterns";
import { breakerStatus, committee, getBacktest, predict, runBacktests, submitBacktest } from "./ml";
import { handleMcp } from "./mcp";

export { MarketFeed } from "./market";
export { TradingSession } from "./session";
export { MlGateway } from "./ml";
export { McpSession } from "./mcp";

async function route(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const url = new URL(request.url);
  const path = url.pathname;
  const method = request.method;
  if (path === "/health") return json({ ok: true });
  if (path === "/mcp") {
    checkAuth(env, request);
    return handleMcp(request, env, ctx);
  }
  if (!path.startsWith("/api/")) throw new HttpError(404, `no route for ${path}`);
  checkAuth(env, request);
  const parts = path.slice("/api/".length).split("/");
  const want = (m: string) => {
    if (method !== m) throw new HttpError(405, `${path} takes ${m}`);
  };
  switch (parts[0]) {
    case "market-data":
      if (parts.length !== 2 || !parts[1]) break;
      want("GET");
      return handleMarketData(env, parts[1]);
    case "accounts":
      if (parts.length !== 1) break;
      if (method === "POST") return json(await createAccount(env, await readJson(request)), 201);
      want("GET");
      return json({ accounts: await listAccounts(env) });
    case "trades":
      if (parts.length !== 1) break;
      want("GET");
      return json({
        trades: await recentTrades(env, url.searchParams.get("symbol"), url.searchParams.get("account"), url.searchParams.get("limit")),
      });
    case "orders":
      if (parts.length !== 1) break;
      want("POST");
      return json(await placeOrder(env, await readJson(request)), 201);
    case "analytics":
      if (parts.length !== 2 || parts[1] !== "pnl") break;
      want("GET");
      return json(await pnl(env, request, url.searchParams.get("window"), url.searchParams.get("account")));
    case "patterns":
      if (parts.length === 1) {
        want("POST");
        return json(await upsertPatterns(env, await readJson(request, 4 * 1024 * 1024)));
      }
      if (parts.length === 2 && parts[1] === "similar") {
        want("POST");
        return json(await similarPatterns(env, await readJson(request)));
      }
      break;
    case "predict": {
      if (parts.length !== 1) break;
      want("POST");
      const r = await predict(env, await readJson(request));
      return json(r.body, r.status, { "x-coinswarm-breaker": String(r.body.breaker) });
    }
    case "ml":
      if (parts.length === 2 && parts[1] === "breaker") {
        want("GET");
        return json(await breakerStatus(env));
      }
      break;
    case "committee": {
      if (parts.length !== 1) break;
      want("POST");
      const r = await committee(env, await readJson(request));
      return json(r.body, r.status);
    }
    case "backtests":
      if (parts.length === 1) {
        want("POST");
        return json(await submitBacktest(env, await readJson(request)), 202);
      }
      if (parts.length === 2) {
        want("GET");
        return json(await getBacktest(env, segment(parts[1], "backtest id")));
      }
      break;
    case "sessions":
      // /api/sessions/{account}/ws?since=N&pairs=BTC-USD,ETH-USD
      if (parts.length === 3 && parts[2] === "ws") {
        want("GET");
        const account = segment(parts[1], "account");
        if (!/^[A-Za-z0-9_-]{1,64}$/.test(account)) throw new HttpError(400, "account must be an account id");
        const exists = await env.DB.prepare("SELECT 1 FROM accounts WHERE id = ?").bind(account).first();
        if (!exists) throw new HttpError(404, `no account ${account}`);
        return env.SESSIONS.get(env.SESSIONS.idFromName(account)).fetch(request);
      }
      break;
  }
  throw new HttpError(404, `no route for ${method} ${path}`);
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    try {
      return await route(request, env, ctx);
    } catch (e) {
      return errorResponse(e);
    }
  },
  async queue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
    await runBacktests(batch as MessageBatch<{ id: string }>, env);
  },
} satisfies ExportedHandler<Env>;
