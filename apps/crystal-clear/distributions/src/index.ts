// Distributions domain: commissions computed from the tiered rate table in
// D1 (see migrations/0001_init.sql), and payouts that never exceed an
// agent's earned and unpaid commissions.
import {
  HttpError, Router, actor, auditStmt, currency, decimal, domainEvent, findStored, flushOutbox, health, id,
  idempotencyKey, idempotent, json, money, newId, oneOf, outboxStmt, pathId, readBody, replay, sha256Hex, str,
  purgeIdempotency, expiredKeyStmt,
} from "../../shared/lib.ts";

interface Env {
  DB: D1Database;
  EVENTS: Queue;
}

const PERIODS = ["daily", "weekly", "monthly"] as const;

interface Commission {
  id: string;
  agent_id: string;
  period: string;
  volume_minor: number;
  rate_bp: number;
  commission_minor: number;
  currency: string;
  status: string;
  source: string | null;
  created_at: string;
  updated_at: string;
}

function commissionView(c: Commission) {
  return {
    id: c.id,
    agentId: c.agent_id,
    period: c.period,
    amount: decimal(c.volume_minor),
    rate: c.rate_bp / 10000,
    commission: decimal(c.commission_minor),
    currency: c.currency,
    status: c.status,
    source: c.source ?? undefined,
    createdAt: c.created_at,
  };
}

/** Commission in minor units, rounded half up to the cent. */
function commissionOf(volumeMinor: number, rateBp: number): number {
  return Math.floor((volumeMinor * rateBp + 5000) / 10000);
}

async function standing(db: D1Database, agentId: string) {
  const rows = await db.prepare(
    `SELECT currency,
            SUM(CASE WHEN kind = 'earned' THEN amount ELSE 0 END) AS earned,
            SUM(CASE WHEN kind = 'paid' THEN amount ELSE 0 END) AS paid
     FROM (SELECT currency, commission_minor AS amount, 'earned' AS kind FROM commissions WHERE agent_id = ?1 AND status = 'EARNED'
           UNION ALL SELECT currency, amount_minor, 'paid' FROM payouts WHERE agent_id = ?1 AND ${NOT_REVERSED})
     GROUP BY currency`,
  ).bind(agentId).all<{ currency: string; earned: number; paid: number }>();
  const out: Record<string, { earned: number; paid: number; available: number }> = {};
  for (const r of rows.results ?? []) {
    out[r.currency] = { earned: decimal(r.earned), paid: decimal(r.paid), available: decimal(r.earned - r.paid) };
  }
  return out;
}

// A reversed payout (the payout saga's compensation) no longer counts as paid.
const NOT_REVERSED = "id NOT IN (SELECT payout_id FROM payout_reversals)";

const AVAILABLE_SQL = `(SELECT COALESCE(SUM(commission_minor), 0) FROM commissions WHERE agent_id = ?2 AND currency = ?4 AND status = 'EARNED')
  - (SELECT COALESCE(SUM(amount_minor), 0) FROM payouts WHERE agent_id = ?2 AND currency = ?4 AND ${NOT_REVERSED})`;

interface Payout {
  id: string;
  agent_id: string;
  amount_minor: number;
  currency: string;
  method: string;
  created_at: string;
  reversed_at: string | null;
  reversal_reason: string | null;
}

function payoutView(p: Payout) {
  return {
    id: p.id, agentId: p.agent_id, amount: decimal(p.amount_minor), currency: p.currency, method: p.method,
    status: p.reversed_at ? "REVERSED" : "PROCESSED", createdAt: p.created_at,
    reversedAt: p.reversed_at ?? undefined, reversalReason: p.reversal_reason ?? undefined,
  };
}

async function payoutRow(db: D1Database, payoutId: string): Promise<Payout | null> {
  return db.prepare(
    `SELECT p.*, r.created_at AS reversed_at, r.reason AS reversal_reason
     FROM payouts p LEFT JOIN payout_reversals r ON r.payout_id = p.id WHERE p.id = ?`,
  ).bind(payoutId).first<Payout>();
}

const router = new Router<Env>()
  .on("GET", "/api/domains/distributions/health", (_r, env) => health(env.DB, "distributions"))
  .on("GET", "/api/domains/distributions/rates", async (_r, env) => {
    const rows = await env.DB.prepare("SELECT * FROM commission_rates ORDER BY period, min_volume_minor")
      .all<{ period: string; min_volume_minor: number; max_volume_minor: number | null; rate_bp: number }>();
    return json({
      rates: (rows.results ?? []).map((r) => ({
        period: r.period,
        minVolume: decimal(r.min_volume_minor),
        maxVolume: r.max_volume_minor === null ? null : decimal(r.max_volume_minor),
        rate: r.rate_bp / 10000,
      })),
    });
  })
  .on("POST", "/api/domains/distributions/commissions", async (req, env, ctx) => {
    const { body, raw } = await readBody(req);
    const agentId = id(body, "agentId");
    const volume = money(body, "amount");
    const period = oneOf(body, "period", PERIODS);
    const cur = body.currency === undefined ? "USD" : currency(body);
    const source = str(body, "source", { max: 128, optional: true });
    const who = actor(req);
    const res = await idempotent(env.DB, req, "distributions.commission", raw, async () => {
      const rate = await env.DB.prepare(
        `SELECT rate_bp FROM commission_rates WHERE period = ? AND min_volume_minor <= ?
         AND (max_volume_minor IS NULL OR max_volume_minor > ?) ORDER BY min_volume_minor DESC LIMIT 1`,
      ).bind(period, volume, volume).first<{ rate_bp: number }>();
      if (!rate) throw new HttpError(409, `no commission rate covers ${decimal(volume)} for period ${period}`, "amount");
      const now = new Date().toISOString();
      const c: Commission = {
        id: newId("com"), agent_id: agentId, period, volume_minor: volume, rate_bp: rate.rate_bp,
        commission_minor: commissionOf(volume, rate.rate_bp), currency: cur, status: "EARNED",
        source: source || null, created_at: now, updated_at: now,
      };
      return {
        answer: { status: 201, body: commissionView(c) },
        statements: [
          env.DB.prepare(
            `INSERT INTO commissions (id, agent_id, period, volume_minor, rate_bp, commission_minor, currency, status, source, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          ).bind(c.id, c.agent_id, c.period, c.volume_minor, c.rate_bp, c.commission_minor, c.currency, c.status, c.source, now, now),
          auditStmt(env.DB, who, "commission.calculated", "commission", c.id, commissionView(c)),
          outboxStmt(env.DB, domainEvent("COMMISSION_CALCULATED", "distributions", commissionView(c))),
        ],
      };
    });
    ctx.waitUntil(flushOutbox(env.DB, env.EVENTS));
    return res;
  })
  .on("GET", "/api/domains/distributions/commissions/:id", async (_r, env, _c, p) => {
    const row = await env.DB.prepare("SELECT * FROM commissions WHERE id = ?").bind(pathId(p.id, "id")).first<Commission>();
    if (!row) throw new HttpError(404, `commission ${p.id} not found`, "id");
    return json(commissionView(row));
  })
  .on("POST", "/api/domains/distributions/commissions/:id/void", async (req, env, ctx, p) => {
    const comId = pathId(p.id, "id");
    const { body, raw } = await readBody(req);
    const reason = str(body, "reason", { max: 256 });
    const who = actor(req);
    const res = await idempotent(env.DB, req, "distributions.void", raw, async () => {
      const row = await env.DB.prepare("SELECT * FROM commissions WHERE id = ?").bind(comId).first<Commission>();
      if (!row) throw new HttpError(404, `commission ${comId} not found`, "id");
      if (row.status !== "EARNED") throw new HttpError(409, `commission ${comId} is ${row.status}`, "id");
      const left = await standing(env.DB, row.agent_id);
      const available = Math.round((left[row.currency]?.available ?? 0) * 100);
      if (available < row.commission_minor) {
        throw new HttpError(409, `commission ${comId} has already been paid out`, "id");
      }
      const now = new Date().toISOString();
      return {
        answer: { status: 200, body: commissionView({ ...row, status: "VOID", updated_at: now }) },
        statements: [
          env.DB.prepare("UPDATE commissions SET status = 'VOID', updated_at = ? WHERE id = ? AND status = 'EARNED'").bind(now, comId),
          auditStmt(env.DB, who, "commission.voided", "commission", comId, { reason }),
          outboxStmt(env.DB, domainEvent("COMMISSION_VOIDED", "distributions", { commissionId: comId, agentId: row.agent_id, reason })),
        ],
      };
    });
    ctx.waitUntil(flushOutbox(env.DB, env.EVENTS));
    return res;
  })
  .on("POST", "/api/domains/distributions/payouts", async (req, env, ctx) => {
    const { body, raw } = await readBody(req);
    const agentId = id(body, "agentId");
    const amount = money(body, "amount");
    const method = oneOf(body, "method", ["bank_transfer", "wire", "check", "wallet"] as const);
    const cur = body.currency === undefined ? "USD" : currency(body);
    const who = actor(req);
    const key = `distributions.payout:${idempotencyKey(req)}`;
    const fingerprint = await sha256Hex(`POST payouts\n${raw}`);
    const earlier = await findStored(env.DB, key, fingerprint);
    if (earlier) return replay(earlier);
    const payoutId = newId("pay");
    const now = new Date().toISOString();
    const payout = { id: payoutId, agentId, amount: decimal(amount), currency: cur, method, status: "PROCESSED", createdAt: now };
    const refused = { error: "payout exceeds the agent's earned and unpaid commissions", field: "amount" };
    const event = domainEvent("PAYOUT_PROCESSED", "distributions", payout);
    const exists = "EXISTS (SELECT 1 FROM payouts WHERE id = ?1)";
    // One batch is one transaction: the balance check, the payout and
    // everything recorded with it happen together or not at all, so two
    // concurrent payouts cannot both spend the same commission.
    try {
      await env.DB.batch([
        expiredKeyStmt(env.DB, key),
        env.DB.prepare(
          `INSERT INTO payouts (id, agent_id, amount_minor, currency, method, status, created_at)
           SELECT ?1, ?2, ?3, ?4, ?5, 'PROCESSED', ?6 WHERE ${AVAILABLE_SQL} >= ?3`,
        ).bind(payoutId, agentId, amount, cur, method, now),
        env.DB.prepare(
          `INSERT INTO audit_log (at, subject, role, action, entity, entity_id, detail)
           SELECT ?2, ?3, ?4, CASE WHEN ${exists} THEN 'payout.processed' ELSE 'payout.refused' END, 'payout', ?1, ?5`,
        ).bind(payoutId, now, who.subject, who.role, JSON.stringify(payout)),
        env.DB.prepare(`INSERT INTO outbox (id, body, created_at, sent_at) SELECT ?2, ?3, ?4, NULL WHERE ${exists}`)
          .bind(payoutId, event.id, JSON.stringify(event), now),
        env.DB.prepare(
          `INSERT INTO idempotency (key, fingerprint, status, body, created_at)
           SELECT ?2, ?3, CASE WHEN ${exists} THEN 201 ELSE 409 END, CASE WHEN ${exists} THEN ?4 ELSE ?5 END, ?6`,
        ).bind(payoutId, key, fingerprint, JSON.stringify(payout), JSON.stringify(refused), now),
      ]);
    } catch (err) {
      const again = await findStored(env.DB, key, fingerprint);
      if (again) return replay(again);
      throw err;
    }
    const stored = await findStored(env.DB, key, fingerprint);
    ctx.waitUntil(flushOutbox(env.DB, env.EVENTS));
    if (!stored) throw new Error("payout answer missing after commit");
    return json(stored.body, stored.status);
  })
  .on("GET", "/api/domains/distributions/payouts/:id", async (_r, env, _c, p) => {
    const row = await payoutRow(env.DB, pathId(p.id, "id"));
    if (!row) throw new HttpError(404, `payout ${p.id} not found`, "id");
    return json(payoutView(row));
  })
  .on("POST", "/api/domains/distributions/payouts/:id/reverse", async (req, env, ctx, p) => {
    const payoutId = pathId(p.id, "id");
    const { body, raw } = await readBody(req);
    const reason = str(body, "reason", { max: 256 });
    const who = actor(req);
    const res = await idempotent(env.DB, req, "distributions.payout-reverse", raw, async () => {
      const row = await payoutRow(env.DB, payoutId);
      if (!row) throw new HttpError(404, `payout ${payoutId} not found`, "id");
      if (row.reversed_at) throw new HttpError(409, `payout ${payoutId} is already reversed`, "id");
      const now = new Date().toISOString();
      const view = payoutView({ ...row, reversed_at: now, reversal_reason: reason });
      return {
        answer: { status: 200, body: view },
        statements: [
          // The primary key makes a concurrent second reversal fail the batch.
          env.DB.prepare("INSERT INTO payout_reversals (payout_id, reason, subject, created_at) VALUES (?, ?, ?, ?)")
            .bind(payoutId, reason, who.subject, now),
          auditStmt(env.DB, who, "payout.reversed", "payout", payoutId, { reason }),
          outboxStmt(env.DB, domainEvent("PAYOUT_REVERSED", "distributions", view)),
        ],
      };
    });
    ctx.waitUntil(flushOutbox(env.DB, env.EVENTS));
    return res;
  })
  .on("GET", "/api/domains/distributions/agents/:agentId", async (_r, env, _c, p) => {
    const agentId = pathId(p.agentId, "agentId");
    return json({ agentId, balances: await standing(env.DB, agentId) });
  });

export default {
  fetch: (req: Request, env: Env, ctx: ExecutionContext) => router.handle(req, env, ctx),
  async scheduled(_c: ScheduledController, env: Env) {
    await flushOutbox(env.DB, env.EVENTS);
    await purgeIdempotency(env.DB);
  },
};
