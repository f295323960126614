// Collections domain: records payments from merchants, declines those above
// the configured limit, reverses them (saga compensation), and reports
// totals by merchant, currency and status.
import {
  HttpError, Router, actor, auditStmt, currency, decimal, domainEvent, flushOutbox, health, id,
  idempotent, json, money, newId, outboxStmt, pathId, readBody, str,
  purgeIdempotency,
} from "../../shared/lib.ts";

interface Env {
  DB: D1Database;
  EVENTS: Queue;
  COLLECTION_LIMIT?: string;
}

interface Row {
  id: string;
  merchant_id: string;
  amount_minor: number;
  currency: string;
  payment_method: string;
  status: string;
  failure_reason: string | null;
  reference: string | null;
  created_at: string;
  updated_at: string;
}

function view(r: Row) {
  return {
    id: r.id,
    merchantId: r.merchant_id,
    amount: decimal(r.amount_minor),
    currency: r.currency,
    paymentMethod: r.payment_method,
    status: r.status,
    failureReason: r.failure_reason ?? undefined,
    reference: r.reference ?? undefined,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

const router = new Router<Env>()
  .on("GET", "/api/domains/collections/health", (_r, env) => health(env.DB, "collections"))
  .on("GET", "/api/domains/collections/dashboard", async (_r, env) => {
    const rows = await env.DB.prepare(
      `SELECT merchant_id, currency, status, COUNT(*) AS count, SUM(amount_minor) AS total
       FROM collections GROUP BY merchant_id, currency, status ORDER BY merchant_id, currency, status`,
    ).all<{ merchant_id: string; currency: string; status: string; count: number; total: number }>();
    const byMerchant: Record<string, Record<string, Record<string, { count: number; amount: number }>>> = {};
    const byStatus: Record<string, { count: number; amounts: Record<string, number> }> = {};
    const byCurrency: Record<string, { count: number; amount: number }> = {};
    for (const r of rows.results ?? []) {
      ((byMerchant[r.merchant_id] ??= {})[r.currency] ??= {})[r.status] = { count: r.count, amount: decimal(r.total) };
      const s = (byStatus[r.status] ??= { count: 0, amounts: {} });
      s.count += r.count;
      s.amounts[r.currency] = decimal(Math.round((s.amounts[r.currency] ?? 0) * 100) + r.total);
      if (r.status === "COMPLETED") {
        const c = (byCurrency[r.currency] ??= { count: 0, amount: 0 });
        c.count += r.count;
        c.amount = decimal(Math.round(c.amount * 100) + r.total);
      }
    }
    return json({ byMerchant, byStatus, completedByCurrency: byCurrency });
  })
  .on("POST", "/api/domains/collections", async (req, env, ctx) => {
    const { body, raw } = await readBody(req);
    const merchantId = id(body, "merchantId");
    const amount = money(body, "amount");
    const cur = currency(body);
    const paymentMethod = str(body, "paymentMethod", { max: 32, pattern: /^[a-z][a-z0-9_]*$/ });
    const reference = str(body, "reference", { max: 128, optional: true });
    const who = actor(req);
    const limit = Math.round(Number(env.COLLECTION_LIMIT ?? "250000") * 100);
    const res = await idempotent(env.DB, req, "collections.create", raw, async () => {
      const now = new Date().toISOString();
      const declined = amount > limit;
      const row: Row = {
        id: newId("col"),
        merchant_id: merchantId,
        amount_minor: amount,
        currency: cur,
        payment_method: paymentMethod,
        status: declined ? "FAILED" : "COMPLETED",
        failure_reason: declined ? `amount above the collection limit of ${decimal(limit)}` : null,
        reference: reference || null,
        created_at: now,
        updated_at: now,
      };
      const event = declined
        ? domainEvent("PAYMENT_FAILED", "collections", { collectionId: row.id, merchantId, amount: decimal(amount), currency: cur, reason: row.failure_reason })
        : domainEvent("COLLECTION_COMPLETED", "collections", { collectionId: row.id, merchantId, amount: decimal(amount), currency: cur, paymentMethod });
      return {
        answer: { status: declined ? 422 : 201, body: declined ? { ...view(row), error: row.failure_reason, field: "amount" } : view(row) },
        statements: [
          env.DB.prepare(
            `INSERT INTO collections (id, merchant_id, amount_minor, currency, payment_method, status, failure_reason, reference, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          ).bind(row.id, row.merchant_id, row.amount_minor, row.currency, row.payment_method, row.status, row.failure_reason, row.reference, now, now),
          auditStmt(env.DB, who, declined ? "collection.declined" : "collection.created", "collection", row.id, view(row)),
          outboxStmt(env.DB, event),
        ],
      };
    });
    ctx.waitUntil(flushOutbox(env.DB, env.EVENTS));
    return res;
  })
  .on("POST", "/api/domains/collections/:id/reverse", async (req, env, ctx, p) => {
    const colId = pathId(p.id, "id");
    const { body, raw } = await readBody(req);
    const reason = str(body, "reason", { max: 256 });
    const who = actor(req);
    const res = await idempotent(env.DB, req, "collections.reverse", raw, async () => {
      const row = await env.DB.prepare("SELECT * FROM collections WHERE id = ?").bind(colId).first<Row>();
      if (!row) throw new HttpError(404, `collection ${colId} not found`, "id");
      if (row.status !== "COMPLETED") throw new HttpError(409, `collection ${colId} is ${row.status}, only COMPLETED can be reversed`, "id");
      const now = new Date().toISOString();
      const after = { ...row, status: "REVERSED", failure_reason: reason, updated_at: now };
      return {
        answer: { status: 200, body: view(after) },
        statements: [
          // The status guard makes a concurrent second reversal change nothing.
          env.DB.prepare("UPDATE collections SET status = 'REVERSED', failure_reason = ?, updated_at = ? WHERE id = ? AND status = 'COMPLETED'")
            .bind(reason, now, colId),
          auditStmt(env.DB, who, "collection.reversed", "collection", colId, { reason }),
          outboxStmt(env.DB, domainEvent("COLLECTION_REVERSED", "collections", { collectionId: colId, merchantId: row.merchant_id, amount: decimal(row.amount_minor), currency: row.currency, reason })),
        ],
      };
    });
    ctx.waitUntil(flushOutbox(env.DB, env.EVENTS));
    return res;
  })
  .on("GET", "/api/domains/collections/:id", async (_r, env, _c, p) => {
    const colId = pathId(p.id, "id");
    const row = await env.DB.prepare("SELECT * FROM collections WHERE id = ?").bind(colId).first<Row>();
    if (!row) throw new HttpError(404, `collection ${colId} not found`, "id");
    return json(view(row));
  });

export default {
  fetch: (req: Request, env: Env, ctx: ExecutionContext) => router.handle(req, env, ctx),
  async scheduled(_c: ScheduledController, env: Env) {
    await flushOutbox(env.DB, env.EVENTS);
    await purgeIdempotency(env.DB);
  },
};
