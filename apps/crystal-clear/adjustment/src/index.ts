// Adjustment domain: manual corrections to a player's balance. Each one
// carries a reason and the operator who made it (the token's subject), is
// applied through the Balance domain, and is audited whether it was applied
// or refused.
import {
  HttpError, Router, actor, auditStmt, currency, decimal, domainEvent, findStored, flushOutbox, health, id,
  idempotencyKey, json, money, newId, oneOf, outboxStmt, pathId, readBody, replay, sha256Hex, storeStmts, str, purgeIdempotency,
} from "../../shared/lib.ts";
import { balanceOp } from "../../shared/balance-client.ts";

interface Env {
  DB: D1Database;
  EVENTS: Queue;
  BALANCE: Fetcher;
}

interface Row {
  id: string;
  player_id: string;
  currency: string;
  amount_minor: number;
  direction: string;
  reason: string;
  operator_id: string;
  status: string;
  balance_after_minor: number | null;
  created_at: string;
}

function view(r: Row) {
  return {
    id: r.id, playerId: r.player_id, amount: decimal(r.amount_minor), currency: r.currency, direction: r.direction,
    reason: r.reason, operatorId: r.operator_id, status: r.status,
    balanceAfter: r.balance_after_minor === null ? undefined : decimal(r.balance_after_minor), createdAt: r.created_at,
  };
}

const router = new Router<Env>()
  .on("GET", "/api/domains/adjustment/health", (_r, env) => health(env.DB, "adjustment"))
  .on("POST", "/api/domains/adjustment", async (req, env, ctx) => {
    const { body, raw } = await readBody(req);
    const playerId = id(body, "playerId");
    const amount = money(body, "amount");
    const cur = currency(body);
    const direction = oneOf(body, "direction", ["credit", "debit"] as const);
    const reason = str(body, "reason", { min: 10, max: 500 });
    const who = actor(req);
    if (body.operatorId !== undefined && body.operatorId !== who.subject) {
      throw new HttpError(403, "operatorId: must be the authenticated operator", "operatorId");
    }
    const clientKey = idempotencyKey(req);
    const key = `adjustment:${clientKey}`;
    const fingerprint = await sha256Hex(`POST adjustment\n${raw}`);
    const earlier = await findStored(env.DB, key, fingerprint);
    if (earlier) return replay(earlier);
    // The balance change is keyed by this request's key: a retry after a
    // crash between the two writes replays it instead of applying it again.
    const applied = await balanceOp(env.BALANCE, `adjustment:${clientKey}`, who, {
      playerId, amount: decimal(amount), currency: cur, type: direction, reason,
    });
    if (applied.status !== 200 && applied.status !== 409) {
      throw new HttpError(applied.status >= 500 ? 502 : applied.status, `balance: ${String(applied.body.error ?? "failed")}`, applied.body.field as string | undefined);
    }
    const ok = applied.status === 200;
    const now = new Date().toISOString();
    const row: Row = {
      id: newId("adj"), player_id: playerId, currency: cur, amount_minor: amount, direction, reason,
      operator_id: who.subject, status: ok ? "APPLIED" : "REJECTED",
      balance_after_minor: ok ? Math.round(Number(applied.body.balance) * 100) : null, created_at: now,
    };
    const answer = ok ? view(row) : { ...view(row), error: applied.body.error, field: "amount" };
    const status = ok ? 201 : 409;
    const stmts = [
      env.DB.prepare(
        `INSERT INTO adjustments (id, player_id, currency, amount_minor, direction, reason, operator_id, status, balance_after_minor, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).bind(row.id, row.player_id, row.currency, row.amount_minor, row.direction, row.reason, row.operator_id, row.status, row.balance_after_minor, now),
      auditStmt(env.DB, who, ok ? "adjustment.applied" : "adjustment.rejected", "adjustment", row.id, view(row)),
      ...storeStmts(env.DB, key, fingerprint, { status, body: answer }),
    ];
    if (ok) stmts.push(outboxStmt(env.DB, domainEvent("ADJUSTMENT_APPLIED", "adjustment", view(row))));
    try {
      await env.DB.batch(stmts);
    } catch (err) {
      const again = await findStored(env.DB, key, fingerprint);
      if (again) return replay(again);
      throw err;
    }
    ctx.waitUntil(flushOutbox(env.DB, env.EVENTS));
    return json(answer, status);
  })
  .on("GET", "/api/domains/adjustment", async (req, env) => {
    const playerId = new URL(req.url).searchParams.get("playerId");
    if (playerId === null) throw new HttpError(400, "playerId: query parameter required", "playerId");
    const rows = await env.DB.prepare("SELECT * FROM adjustments WHERE player_id = ? ORDER BY created_at DESC LIMIT 100")
      .bind(pathId(playerId, "playerId")).all<Row>();
    return json({ adjustments: (rows.results ?? []).map(view) });
  })
  .on("GET", "/api/domains/adjustment/:id", async (_r, env, _c, p) => {
    const row = await env.DB.prepare("SELECT * FROM adjustments WHERE id = ?").bind(pathId(p.id, "id")).first<Row>();
    if (!row) throw new HttpError(404, `adjustment ${p.id} not found`, "id");
    return json(view(row));
  })
  .on("GET", "/api/domains/adjustment/audit/:entityId", async (_r, env, _c, p) => {
    const rows = await env.DB.prepare("SELECT * FROM audit_log WHERE entity_id = ? ORDER BY seq").bind(pathId(p.entityId, "entityId")).all();
    return json({ entries: rows.results ?? [] });
  });

export default {
  fetch: (req: Request, env: Env, ctx: ExecutionContext) => router.handle(req, env, ctx),
  async scheduled(_c: ScheduledController, env: Env) {
    await flushOutbox(env.DB, env.EVENTS);
    await purgeIdempotency(env.DB);
  },
};
