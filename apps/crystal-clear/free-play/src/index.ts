// Free Play domain: promotional credits (grants) with an expiry. A wager
// spends unexpired grants first, soonest expiry first, and debits only the
// rest from the player's cash balance.
import {
  HttpError, Router, actor, auditStmt, currency, decimal, domainEvent, findStored, flushOutbox, id,
  idempotencyKey, idempotent, json, money, newId, outboxStmt, pathId, readBody, replay, sha256Hex, storeStmts, str, purgeIdempotency,
  health,
} from "../../shared/lib.ts";
import { balanceOp } from "../../shared/balance-client.ts";

interface Env {
  DB: D1Database;
  EVENTS: Queue;
  BALANCE: Fetcher;
  MAX_GRANT_DAYS?: string;
}

interface Grant {
  id: string;
  player_id: string;
  currency: string;
  amount_minor: number;
  remaining_minor: number;
  campaign: string | null;
  expires_at: string;
  created_at: string;
}

function grantView(g: Grant) {
  return {
    id: g.id, playerId: g.player_id, currency: g.currency, amount: decimal(g.amount_minor),
    remaining: decimal(g.remaining_minor), campaign: g.campaign ?? undefined, expiresAt: g.expires_at, createdAt: g.created_at,
  };
}

/** expiresAt (ISO 8601) or expiresInDays (a whole number of days from now). */
function expiry(body: Record<string, unknown>, maxDays: number): string {
  if (body.expiresAt === undefined && body.expiresInDays !== undefined) {
    const days = body.expiresInDays;
    if (typeof days !== "number" || !Number.isInteger(days) || days < 1 || days > maxDays) {
      throw new HttpError(400, `expiresInDays: a whole number from 1 to ${maxDays}`, "expiresInDays");
    }
    return new Date(Date.now() + days * 86_400_000).toISOString();
  }
  const v = str(body, "expiresAt", { max: 40 });
  const t = Date.parse(v);
  if (!Number.isFinite(t) || !/^\d{4}-\d{2}-\d{2}T/.test(v)) throw new HttpError(400, "expiresAt: must be an ISO 8601 date-time", "expiresAt");
  const now = Date.now();
  if (t <= now) throw new HttpError(400, "expiresAt: must be in the future", "expiresAt");
  if (t > now + maxDays * 86_400_000) throw new HttpError(400, `expiresAt: at most ${maxDays} days ahead`, "expiresAt");
  return new Date(t).toISOString();
}

const router = new Router<Env>()
  .on("GET", "/api/domains/free-play/health", (_r, env) => health(env.DB, "free-play"))
  .on("POST", "/api/domains/free-play/grants", async (req, env, ctx) => {
    const { body, raw } = await readBody(req);
    const playerId = id(body, "playerId");
    const amount = money(body, "amount");
    const cur = currency(body);
    const expiresAt = expiry(body, Number(env.MAX_GRANT_DAYS ?? "365"));
    const campaign = str(body, "campaign", { max: 64, optional: true });
    const who = actor(req);
    const res = await idempotent(env.DB, req, "free-play.grant", raw, async () => {
      const now = new Date().toISOString();
      const g: Grant = {
        id: newId("fpg"), player_id: playerId, currency: cur, amount_minor: amount, remaining_minor: amount,
        campaign: campaign || null, expires_at: expiresAt, created_at: now,
      };
      return {
        answer: { status: 201, body: grantView(g) },
        statements: [
          env.DB.prepare(
            "INSERT INTO grants (id, player_id, currency, amount_minor, remaining_minor, campaign, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
          ).bind(g.id, g.player_id, g.currency, g.amount_minor, g.remaining_minor, g.campaign, g.expires_at, now),
          auditStmt(env.DB, who, "free-play.granted", "grant", g.id, grantView(g)),
          outboxStmt(env.DB, domainEvent("FREE_PLAY_GRANTED", "free-play", grantView(g))),
        ],
      };
    });
    ctx.waitUntil(flushOutbox(env.DB, env.EVENTS));
    return res;
  })
  .on("POST", "/api/domains/free-play/wagers", async (req, env, ctx) => {
    const { body, raw } = await readBody(req);
    const playerId = id(body, "playerId");
    const amount = money(body, "amount");
    const cur = currency(body);
    const gameId = str(body, "gameId", { max: 64, optional: true });
    const who = actor(req);
    const clientKey = idempotencyKey(req);
    const key = `free-play.wager:${clientKey}`;
    const fingerprint = await sha256Hex(`POST wagers\n${raw}`);
    const earlier = await findStored(env.DB, key, fingerprint);
    if (earlier) return replay(earlier);

    const now = new Date().toISOString();
    const active = await env.DB.prepare(
      `SELECT * FROM grants WHERE player_id = ? AND currency = ? AND remaining_minor > 0 AND expires_at > ?
       ORDER BY expires_at, id`,
    ).bind(playerId, cur, now).all<Grant>();
    const uses: { grantId: string; used: number }[] = [];
    let left = amount;
    for (const g of active.results ?? []) {
      if (left === 0) break;
      const used = Math.min(left, g.remaining_minor);
      uses.push({ grantId: g.id, used });
      left -= used;
    }
    const freePlay = amount - left;
    const cash = left;
    const wagerId = newId("wag");
    const store = async (status: number, answer: unknown, extra: D1PreparedStatement[]) => {
      await env.DB.batch([...extra, ...storeStmts(env.DB, key, fingerprint, { status, body: answer })]);
      return json(answer, status);
    };
    if (cash > 0) {
      const debit = await balanceOp(env.BALANCE, `free-play:${clientKey}:cash`, who, {
        playerId, amount: decimal(cash), currency: cur, type: "debit", reason: `wager ${wagerId}`,
      });
      if (debit.status === 409) {
        return store(409, {
          error: `insufficient funds: ${decimal(freePlay)} free play and the cash balance do not cover ${decimal(amount)}`,
          field: "amount", freePlayAvailable: decimal(freePlay),
        }, [auditStmt(env.DB, who, "free-play.wager-refused", "wager", wagerId, { playerId, amount: decimal(amount), currency: cur })]);
      }
      if (debit.status !== 200) {
        throw new HttpError(debit.status >= 500 ? 502 : debit.status, `balance: ${String(debit.body.error ?? "failed")}`, debit.body.field as string | undefined);
      }
    }
    const detail = {
      id: wagerId, playerId, amount: decimal(amount), currency: cur, freePlayUsed: decimal(freePlay), cashUsed: decimal(cash),
      grants: uses.map((u) => ({ grantId: u.grantId, used: decimal(u.used) })), gameId: gameId || undefined, createdAt: now,
    };
    try {
      // The CHECK on remaining_minor fails the whole batch if a concurrent
      // wager spent the same credits first.
      return await store(201, detail, [
        ...uses.map((u) => env.DB.prepare("UPDATE grants SET remaining_minor = remaining_minor - ? WHERE id = ?").bind(u.used, u.grantId)),
        env.DB.prepare(
          "INSERT INTO wagers (id, player_id, currency, amount_minor, free_play_minor, cash_minor, game_id, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ).bind(wagerId, playerId, cur, amount, freePlay, cash, gameId || null, JSON.stringify(detail), now),
        auditStmt(env.DB, who, "free-play.wagered", "wager", wagerId, detail),
        outboxStmt(env.DB, domainEvent("FREE_PLAY_CONSUMED", "free-play", detail)),
      ]);
    } catch (err) {
      const again = await findStored(env.DB, key, fingerprint);
      if (again) return replay(again);
      // Lost the race for the credits: give the cash back and refuse; the
      // refusal is this key's answer, so a retry cannot wager for free.
      if (cash > 0) {
        const refund = await balanceOp(env.BALANCE, `free-play:${clientKey}:refund`, who, {
          playerId, amount: decimal(cash), currency: cur, type: "credit", reason: `refund of wager ${wagerId}`,
        });
        if (refund.status !== 200) throw err;
      }
      return store(409, { error: "free-play credits changed during the wager; retry with a new Idempotency-Key", field: "amount" }, []);
    } finally {
      ctx.waitUntil(flushOutbox(env.DB, env.EVENTS));
    }
  })
  .on("GET", "/api/domains/free-play/players/:playerId", async (_r, env, _c, p) => {
    const playerId = pathId(p.playerId, "playerId");
    const now = new Date().toISOString();
    const rows = await env.DB.prepare("SELECT * FROM grants WHERE player_id = ? ORDER BY expires_at, id").bind(playerId).all<Grant>();
    const credits: Record<string, number> = {};
    const grants = (rows.results ?? []).map((g) => {
      const active = g.expires_at > now && g.remaining_minor > 0;
      if (active) credits[g.currency] = decimal(Math.round((credits[g.currency] ?? 0) * 100) + g.remaining_minor);
      return { ...grantView(g), status: g.remaining_minor === 0 ? "USED" : g.expires_at <= now ? "EXPIRED" : "ACTIVE" };
    });
    return json({ playerId, credits, grants });
  });

export default {
  fetch: (req: Request, env: Env, ctx: ExecutionContext) => router.handle(req, env, ctx),
  async scheduled(_c: ScheduledController, env: Env) {
    await flushOutbox(env.DB, env.EVENTS);
    await purgeIdempotency(env.DB);
  },
};
