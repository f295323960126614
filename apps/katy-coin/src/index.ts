// Katy Coin: the worker. A Hono app routes the marketplace API through its
// middleware (request screening and the per-IP limit on every /api/ path,
// then authentication and the per-user limit on each route, JSON bodies
// validated before a handler runs); trade sessions go to their Durable
// Object; the settlement queue is consumed into the ledger and the ledger
// is anchored on a cron.
import { Hono, type MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { methodNotAllowed } from "hono/method-not-allowed";
import type { Env } from "./env";
import { AppError, amountField, checkId, currencyField, errorResponse, idField, json, readJson, sha256hex, textField, intVar, sleep } from "./lib";
import { authenticate, humanCheck, limitIp, limitUser, screen, type Caller } from "./auth";
import { deliver, wallet } from "./wallet";
import { anchor, settle, verify, type Settlement } from "./ledger";
import { translate, valueProduct } from "./ai";
import { aiCosts, collectAiCosts, count, counters, dataPoint } from "./metrics";

export { UserWallet } from "./wallet";
export { TradeSession } from "./session";
export { TradeWorkflow, PaymentWorkflow } from "./workflows";

type App = { Bindings: Env; Variables: { caller: Caller; body: Record<string, unknown> } };

const app = new Hono<App>();

// Every answer that is not a route's own is JSON: errors by kind, 404 for
// an unknown path, 405 (with Allow) for a known path and another method.
app.onError((e) => errorResponse(e));
app.notFound(() => errorResponse(new AppError("not_found", "no such route")));
app.use(
  methodNotAllowed({
    app,
    onMethodNotAllowed: (c, methods) => json({ error: "method_not_allowed", message: `${c.req.method} is not allowed here` }, 405, { allow: methods.join(", ") }),
  }),
);

app.get("/health", () => json({ ok: true }));

// Before any route: the seed's WAF patterns and the per-IP limit.
app.use("/api/*", async (c, next) => {
  screen(new URL(c.req.url));
  await limitIp(c.env, c.req.raw);
  await next();
});

/** A route's caller: a valid JWT, then the per-user limit. */
const auth = createMiddleware<App>(async (c, next) => {
  const caller = await authenticate(c.env, c.req.raw, new URL(c.req.url));
  await limitUser(c.env, caller);
  c.set("caller", caller);
  await next();
});

/** A JSON object body (content-type, size, syntax), checked before the handler. */
const body = createMiddleware<App>(async (c, next) => {
  c.set("body", await readJson(c.req.raw));
  await next();
});

type Ctx = { req: Request; env: Env; caller: Caller; body: Record<string, unknown>; url: URL; param: (name: string) => string };
type Handler = (x: Ctx) => Promise<Response>;

/** Operator endpoints: an admin caller (checked before the body is read). */
const admin = createMiddleware<App>(async (c, next) => {
  requireAdmin(c.get("caller"));
  await next();
});

/** A route behind `auth`, then `admin` and `body` when asked for. */
function route(method: "GET" | "POST" | "PUT", path: string, h: Handler, opts: { admin?: boolean; json?: boolean } = {}) {
  const chain: MiddlewareHandler<App>[] = [auth, ...(opts.admin ? [admin] : []), ...(opts.json ? [body] : [])];
  const last: MiddlewareHandler<App> = (c) =>
    h({ req: c.req.raw, env: c.env, caller: c.get("caller"), body: c.get("body") ?? {}, url: new URL(c.req.url), param: (n) => c.req.param(n) ?? "" });
  app.on(method, [path], ...chain, last);
}

function requireAdmin(c: Caller) {
  if (!c.admin) throw new AppError("forbidden", "operator endpoint");
}

async function requireUser(env: Env, id: string) {
  const u = await env.DB.prepare("SELECT id FROM users WHERE id = ? AND banned = 0").bind(id).first();
  if (!u) throw new AppError("not_found", `no user ${id}`);
}

async function workflowStatus(w: Workflow, id: string): Promise<unknown> {
  try {
    return await (await w.get(id)).status();
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- users

route("POST", "/api/users", async ({ req, env, caller: c, body }) => {
  const handle = textField(body, "handle", 40);
  if (!/^[A-Za-z0-9_-]{2,40}$/.test(handle)) throw new AppError("invalid", "handle must be 2-40 letters, digits, '_' or '-'");
  await humanCheck(env, req, body.turnstileToken);
  const existing = await env.DB.prepare("SELECT * FROM users WHERE id = ?").bind(c.user).first();
  if (existing) return json(existing);
  try {
    await env.DB.prepare("INSERT INTO users (id, handle, created_at) VALUES (?, ?, ?)").bind(c.user, handle, Date.now()).run();
  } catch (e) {
    if (/UNIQUE/i.test(String(e))) throw new AppError("conflict", `handle ${handle} is taken`);
    throw e;
  }
  return json(await env.DB.prepare("SELECT * FROM users WHERE id = ?").bind(c.user).first(), 201);
}, { json: true });

route("GET", "/api/users/:id", async ({ env, param }) => {
  const id = param("id");
  const u = await env.DB.prepare("SELECT id, handle, reputation, trades_completed, created_at FROM users WHERE id = ?").bind(checkId(id, "user id")).first();
  if (!u) throw new AppError("not_found", `no user ${id}`);
  return json(u);
});

// ---------------------------------------------------------------- wallet

route("GET", "/api/wallet", async ({ env, caller: c }) => json(await wallet(env, c.user).balance()));
route("GET", "/api/wallet/holds", async ({ env, caller: c }) => json(await wallet(env, c.user).holds()));
route("GET", "/api/wallet/history", async ({ env, caller: c, url }) => {
  const limit = Math.min(200, Math.max(1, intVar(url.searchParams.get("limit") ?? undefined, 50)));
  const before = url.searchParams.get("before");
  return json(await wallet(env, c.user).history({ limit, before: before ? Number(before) : undefined }));
});

route("POST", "/api/wallet/transfer", async ({ env, caller: c, body: b }) => {
  const to = idField(b, "to");
  const txId = idField(b, "txId");
  const amount = amountField(b, "amount");
  const currency = currencyField(env, b);
  if (to === c.user) throw new AppError("invalid", "cannot transfer to yourself");
  await requireUser(env, to);
  const r = await wallet(env, c.user).transfer({ owner: c.user, txId, to, currency, amount, memo: typeof b.memo === "string" ? b.memo.slice(0, 200) : "" });
  await deliver(env, r.delivery);
  return json({ ...r, delivery: undefined, status: "completed" });
}, { json: true });

route("POST", "/api/wallet/holds", async ({ env, caller: c, body: b }) => {
  const holdId = idField(b, "holdId");
  const amount = amountField(b, "amount");
  const currency = currencyField(env, b);
  const ttl = b.ttlSeconds ?? 86400;
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0 || ttl > 30 * 86400) throw new AppError("invalid", "ttlSeconds must be a number of seconds, at most 30 days");
  const reason = typeof b.reason === "string" ? b.reason.slice(0, 200) : "user hold";
  return json(await wallet(env, c.user).hold({ owner: c.user, holdId: `user:${holdId}`, currency, amount, expiresAt: Date.now() + ttl * 1000, reason }), 201);
}, { json: true });

route("POST", "/api/wallet/holds/:id/release", async ({ env, caller: c, param }) => {
  const id = param("id");
  return json(await wallet(env, c.user).release({ holdId: `user:${checkId(id, "hold id")}` }));
});

route("POST", "/api/wallet/holds/:id/capture", async ({ env, caller: c, param, body: b }) => {
  const id = param("id");
  const to = idField(b, "to");
  await requireUser(env, to);
  const r = await wallet(env, c.user).capture({ owner: c.user, holdId: `user:${checkId(id, "hold id")}`, to });
  await deliver(env, r.delivery);
  return json({ ...r, delivery: undefined });
}, { json: true });

route("POST", "/api/admin/mint", async ({ env, caller: c, body: b }) => {
  const user = idField(b, "user");
  await requireUser(env, user);
  const r = await wallet(env, user).credit({ owner: user, txId: `mint:${idField(b, "txId")}`, currency: currencyField(env, b), amount: amountField(b, "amount") });
  await count(env, "minted", r.amount);
  return json(r);
}, { admin: true, json: true });

// ---------------------------------------------------------------- listings

async function listing(env: Env, id: string) {
  const l = await env.DB.prepare("SELECT * FROM listings WHERE id = ?").bind(checkId(id, "listing id")).first<Record<string, unknown> & {
    id: string; owner_id: string; title: string; description: string; asking_value: number; photo_key: string | null; photo_type: string | null; photo_sha256: string | null;
  }>();
  if (!l) throw new AppError("not_found", `no listing ${id}`);
  return l;
}

async function embed(env: Env, text: string): Promise<number[] | null> {
  if (!env.AI || !env.EMBEDDING_MODEL || !env.LISTINGS_INDEX) return null;
  const out = (await env.AI.run(env.EMBEDDING_MODEL as never, { text: [text] } as never)) as unknown as { data: number[][] };
  return out.data[0];
}

route("POST", "/api/listings", async ({ env, caller: c, body: b }) => {
  await requireUser(env, c.user);
  const title = textField(b, "title", 120);
  const description = textField(b, "description", 4000);
  const asking = b.asking_value ?? 0;
  if (typeof asking !== "number" || !Number.isSafeInteger(asking) || asking < 0) throw new AppError("invalid", "asking_value must be a non-negative integer of KATY minor units");
  const id = "lst_" + crypto.randomUUID().replace(/-/g, "").slice(0, 20);
  const at = Date.now();
  await env.DB.prepare("INSERT INTO listings (id, owner_id, title, description, asking_value, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
    .bind(id, c.user, title, description, asking, at, at).run();
  // The listing stands without its search entry: a failure to index is
  // logged, and POST /api/listings/:id/reindex adds it later.
  try {
    const vector = await embed(env, `${title}\n${description}`);
    if (vector) await env.LISTINGS_INDEX!.upsert([{ id, values: vector, metadata: { owner: c.user } }]);
  } catch (e) {
    console.error(`listing ${id} not indexed for search: ${e instanceof Error ? e.message : e}`);
  }
  return json(await listing(env, id), 201);
}, { json: true });

route("POST", "/api/listings/:id/reindex", async ({ env, caller: c, param }) => {
  const id = param("id");
  const l = await listing(env, id);
  if (l.owner_id !== c.user && !c.admin) throw new AppError("forbidden", "not your listing");
  const vector = await embed(env, `${l.title}\n${l.description}`);
  if (!vector) throw new AppError("unavailable", "search needs the AI binding, EMBEDDING_MODEL and the LISTINGS_INDEX Vectorize index");
  await env.LISTINGS_INDEX!.upsert([{ id: l.id, values: vector, metadata: { owner: l.owner_id } }]);
  return json({ listing: l.id, indexed: true });
});

route("GET", "/api/listings/:id", async ({ env, param }) => {
  const id = param("id");
  return json(await listing(env, id));
});

route("PUT", "/api/listings/:id/photo", async ({ req, env, caller: c, param }) => {
  const id = param("id");
  const l = await listing(env, id);
  if (l.owner_id !== c.user) throw new AppError("forbidden", "not your listing");
  const type = (req.headers.get("content-type") ?? "").toLowerCase();
  if (!/^image\/(jpeg|png|webp|gif)$/.test(type)) throw new AppError("invalid", "photo content-type must be image/jpeg, png, webp or gif");
  const max = intVar(env.MAX_PHOTO_BYTES, 5 * 1024 * 1024);
  const bytes = new Uint8Array(await req.arrayBuffer());
  if (bytes.length === 0 || bytes.length > max) throw new AppError("invalid", `photo must be 1 to ${max} bytes`);
  const key = `listings/${l.id}/photo`;
  await env.PHOTOS.put(key, bytes, { httpMetadata: { contentType: type } });
  await env.DB.prepare("UPDATE listings SET photo_key = ?, photo_type = ?, photo_sha256 = ?, updated_at = ? WHERE id = ?")
    .bind(key, type, await sha256hex(bytes), Date.now(), l.id).run();
  return json(await listing(env, id));
});

route("GET", "/api/listings/:id/photo", async ({ env, param }) => {
  const id = param("id");
  const l = await listing(env, id);
  const obj = l.photo_key ? await env.PHOTOS.get(l.photo_key) : null;
  if (!obj) throw new AppError("not_found", "no photo");
  return new Response(obj.body, { headers: { "content-type": l.photo_type ?? "application/octet-stream" } });
});

route("POST", "/api/listings/:id/valuation", async ({ env, param }) => {
  const id = param("id");
  const l = await listing(env, id);
  const v = await valueProduct(env, l);
  await env.DB.prepare("UPDATE listings SET ai_value = ?, ai_source = ?, updated_at = ? WHERE id = ?").bind(v.value, v.source, Date.now(), l.id).run();
  return json({ listing: l.id, ...v });
});

route("POST", "/api/listings/:id/translate", async ({ env, param, body: b }) => {
  const id = param("id");
  const lang = textField(b, "lang", 35);
  if (!/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(lang)) throw new AppError("invalid", "lang must be a BCP 47 tag such as fr or pt-BR");
  const l = await listing(env, id);
  const [title, description] = await Promise.all([translate(env, l.title, lang), translate(env, l.description, lang)]);
  return json({ listing: l.id, lang, title, description });
}, { json: true });

route("GET", "/api/search", async ({ env, url }) => {
  const q = url.searchParams.get("q") ?? "";
  if (q.length < 2 || q.length > 500) throw new AppError("invalid", "q must be 2 to 500 characters");
  const vector = await embed(env, q);
  if (!vector) throw new AppError("unavailable", "search needs the AI binding, EMBEDDING_MODEL and the LISTINGS_INDEX Vectorize index");
  const topK = Math.min(20, Math.max(1, intVar(url.searchParams.get("limit") ?? undefined, 10)));
  const res = await env.LISTINGS_INDEX!.query(vector, { topK });
  const out = [];
  for (const m of res.matches) {
    const l = await env.DB.prepare("SELECT id, owner_id, title, description, asking_value, ai_value, status FROM listings WHERE id = ?").bind(m.id).first();
    if (l) out.push({ score: m.score, listing: l });
  }
  return json({ query: q, results: out });
});

// ---------------------------------------------------------------- trades

function tradeStub(env: Env, id: string) {
  return env.SESSION.get(env.SESSION.idFromName(checkId(id, "trade id")));
}

route("POST", "/api/trades", async ({ env, caller: c }) => {
  await requireUser(env, c.user);
  const id = "trd_" + crypto.randomUUID().replace(/-/g, "").slice(0, 20);
  const at = Date.now();
  await env.DB.prepare("INSERT INTO trades (id, created_by, status, created_at, updated_at) VALUES (?, ?, 'open', ?, ?)").bind(id, c.user, at, at).run();
  return json(await tradeStub(env, id).init(id, c.user), 201);
});

route("GET", "/api/trades/:id", async ({ env, caller: c, param }) => {
  const id = param("id");
  const row = await env.DB.prepare("SELECT * FROM trades WHERE id = ?").bind(checkId(id, "trade id")).first<Record<string, unknown>>();
  if (!row) throw new AppError("not_found", `no trade ${id}`);
  const state = (await tradeStub(env, id).state()) as { participants: { user: string }[] };
  if (!c.admin && !state.participants.some((p) => p.user === c.user)) throw new AppError("forbidden", "not a party to this trade");
  return json({ ...row, detail: row.detail ? JSON.parse(String(row.detail)) : null, session: state, workflow: await workflowStatus(env.TRADES, id) });
});

const ACTIONS: Record<string, string> = { join: "JOIN", offer: "OFFER", want: "WANT", negotiate: "NEGOTIATE", accept: "ACCEPT", confirm: "CONFIRM", chat: "CHAT" };

route("POST", "/api/trades/:id/:action", async ({ req, env, caller: c, param }) => {
  const id = param("id"); const action = param("action");
  const type = ACTIONS[action];
  if (!type) throw new AppError("not_found", `no trade action ${action}`);
  const row = await env.DB.prepare("SELECT id FROM trades WHERE id = ?").bind(checkId(id, "trade id")).first();
  if (!row) throw new AppError("not_found", `no trade ${id}`);
  await requireUser(env, c.user);
  const data = req.headers.get("content-length") && req.headers.get("content-length") !== "0" ? await readJson(req) : {};
  return json(await tradeStub(env, id).act(c.user, type, data));
});

route("GET", "/api/trades/:id/ws", async ({ req, env, caller: c, param }) => {
  const id = param("id");
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") throw new AppError("invalid", "expected a WebSocket upgrade");
  const row = await env.DB.prepare("SELECT id FROM trades WHERE id = ?").bind(checkId(id, "trade id")).first();
  if (!row) throw new AppError("not_found", `no trade ${id}`);
  const headers = new Headers(req.headers);
  headers.set("x-katy-user", c.user);
  return tradeStub(env, id).fetch(new Request(req.url, { headers }));
});

// ---------------------------------------------------------------- payments

route("POST", "/api/payments", async ({ env, caller: c, body: b }) => {
  const to = idField(b, "to");
  const amount = amountField(b, "amount");
  const currency = currencyField(env, b);
  const paymentId = "pay_" + (b.paymentId === undefined ? crypto.randomUUID().replace(/-/g, "").slice(0, 20) : idField(b, "paymentId"));
  if (to === c.user) throw new AppError("invalid", "cannot pay yourself");
  await requireUser(env, c.user);
  await requireUser(env, to);
  const existing = await env.DB.prepare("SELECT * FROM payments WHERE id = ?").bind(paymentId).first<Record<string, unknown>>();
  if (existing) {
    if (existing.from_user !== c.user || existing.to_user !== to || existing.amount !== amount || existing.currency !== currency) {
      throw new AppError("conflict", `payment id ${paymentId} was used with other parameters`);
    }
    return json(existing);
  }
  const at = Date.now();
  await env.DB.prepare("INSERT INTO payments (id, from_user, to_user, currency, amount, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)")
    .bind(paymentId, c.user, to, currency, amount, at, at).run();
  await env.PAYMENTS.create({ id: paymentId, params: { paymentId, from: c.user, to, currency, amount } });
  await count(env, "payments_started");
  return json(await env.DB.prepare("SELECT * FROM payments WHERE id = ?").bind(paymentId).first(), 202);
}, { json: true });

route("GET", "/api/payments/:id", async ({ env, caller: c, param }) => {
  const id = param("id");
  const p = await env.DB.prepare("SELECT * FROM payments WHERE id = ?").bind(checkId(id, "payment id")).first<Record<string, unknown>>();
  if (!p) throw new AppError("not_found", `no payment ${id}`);
  if (!c.admin && p.from_user !== c.user && p.to_user !== c.user) throw new AppError("forbidden", "not your payment");
  return json({ ...p, workflow: await workflowStatus(env.PAYMENTS, id) });
});

route("POST", "/api/admin/payments/:id/review", async ({ env, caller: c, param, body: b }) => {
  const id = param("id");
  if (typeof b.approved !== "boolean") throw new AppError("invalid", "approved must be true or false");
  const p = await env.DB.prepare("SELECT status FROM payments WHERE id = ?").bind(checkId(id, "payment id")).first<{ status: string }>();
  if (!p) throw new AppError("not_found", `no payment ${id}`);
  if (p.status !== "review") throw new AppError("conflict", `payment ${id} is ${p.status}, not waiting for review`);
  await (await env.PAYMENTS.get(id)).sendEvent({ type: "review", payload: { approved: b.approved, note: typeof b.note === "string" ? b.note.slice(0, 500) : "", by: c.user } });
  return json({ payment: id, approved: b.approved });
}, { admin: true, json: true });

// ---------------------------------------------------------------- settlement

route("GET", "/api/settlements/verify", async ({ env }) => json(await verify(env)));

route("GET", "/api/settlements/:id", async ({ env, param }) => {
  const id = param("id");
  const e = await env.DB.prepare("SELECT * FROM ledger WHERE entry_id = ?").bind(checkId(decodeURIComponent(id), "settlement id")).first<Record<string, unknown>>();
  if (!e) throw new AppError("not_found", `no settlement ${id}`);
  return json({ ...e, body: JSON.parse(String(e.body)) });
});

route("POST", "/api/admin/anchor", async ({ env }) => {
  return json(await anchor(env));
}, { admin: true });

route("GET", "/api/admin/metrics", async ({ env }) => {
  const lag = await env.DB.prepare("SELECT COUNT(*) AS n, AVG(created_at - json_extract(body, '$.completed_at')) AS avg_ms, MAX(created_at - json_extract(body, '$.completed_at')) AS max_ms FROM ledger").first();
  return json({ counters: await counters(env), settlement_lag: lag, ai: await aiCosts(env) });
}, { admin: true });

export default {
  fetch: app.fetch,

  async queue(batch: MessageBatch<Settlement>, env: Env): Promise<void> {
    for (const msg of batch.messages) {
      try {
        const s = msg.body;
        const { entry, appended } = await settle(env, s);
        if (appended) dataPoint(env, "settlements", 1, { blob: s.kind, double: entry.created_at - s.completed_at });
        const pause = intVar(env.SETTLEMENT_DELAY_MS, 0);
        if (pause) await sleep(pause);
        msg.ack();
      } catch (e) {
        console.error("settlement failed, retrying:", e instanceof Error ? e.message : e);
        msg.retry();
      }
    }
  },

  async scheduled(_ev: ScheduledController, env: Env): Promise<void> {
    const [a, c] = await Promise.allSettled([anchor(env), collectAiCosts(env)]);
    console.log("anchor:", a.status === "fulfilled" ? JSON.stringify(a.value) : String(a.reason));
    console.log("ai costs:", c.status === "fulfilled" ? JSON.stringify(c.value) : String(c.reason));
    if (a.status === "rejected") throw a.reason;
    if (c.status === "rejected") throw c.reason;
  },
};
