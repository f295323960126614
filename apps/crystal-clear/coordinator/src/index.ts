// Domain coordinator: runs a cross-domain transaction as a saga in its own
// Durable Object. Two types:
//   PLAYER_WINNINGS: record the collection, compute the distribution,
//                    credit the player's balance;
//   AGENT_PAYOUT:    pay the agent out of earned commissions, debit the
//                    payout funding account, publish PAYOUT_SETTLED. Every step's state is stored before the next step starts;
// when a step fails for good, the completed steps are compensated in
// reverse order. An alarm stays armed while a saga is unfinished, so a saga
// cut short by a crash resumes after the restart. Each step and each
// compensation carries an Idempotency-Key derived from the transaction id,
// so a step repeated after a crash is not applied twice by its domain.
import { DurableObject } from "cloudflare:workers";
import {
  HttpError, Router, actor, currency, decimal, domainEvent, flushOutbox, id, idempotencyKey, json, money, oneOf, outboxStmt,
  readBody, sha256Hex, type Actor,
} from "../../shared/lib.ts";

interface Env {
  DB: D1Database;
  EVENTS: Queue;
  SAGAS: DurableObjectNamespace<Saga>;
  COLLECTIONS: Fetcher;
  DISTRIBUTIONS: Fetcher;
  BALANCE: Fetcher;
  EVENT_BUS: Fetcher;
  SAGA_STEP_MAX_ATTEMPTS?: string;
  SAGA_RETRY_BASE_MS?: string;
  SAGA_RESUME_MS?: string;
  SAGA_WAIT_MS?: string;
}

type StepState = "pending" | "running" | "done" | "failed" | "compensating" | "compensated" | "compensation_failed" | "skipped";
type SagaStatus = "RUNNING" | "COMPENSATING" | "COMPLETED" | "COMPENSATED" | "FAILED";

interface Step {
  name: string;
  domain: "collections" | "distributions" | "balance" | "events";
  state: StepState;
  attempts: number;
  result?: Record<string, unknown>;
  error?: string;
  compensationAttempts: number;
  compensationError?: string;
  updatedAt: string;
}

interface Winnings {
  playerId: string;
  amount: number;
  currency: string;
  gameId: string;
  merchantId: string;
  agentId: string;
}

interface Payout {
  agentId: string;
  amount: number;
  currency: string;
  method: string;
  fundingAccount: string;
}

type SagaType = "PLAYER_WINNINGS" | "AGENT_PAYOUT";

interface SagaState {
  id: string;
  type: SagaType;
  fingerprint: string;
  actor: Actor;
  payload: Winnings | Payout;
  status: SagaStatus;
  steps: Step[];
  error?: string;
  indexed: boolean;
  createdAt: string;
  updatedAt: string;
}

const TERMINAL: SagaStatus[] = ["COMPLETED", "COMPENSATED", "FAILED"];
/** Each saga type's steps in order, and the domains it runs across. */
const SAGAS: Record<SagaType, { steps: string[]; domains: string[] }> = {
  PLAYER_WINNINGS: {
    steps: ["collections.record", "distributions.commission", "balance.credit"],
    domains: ["collections", "distributions", "balance"],
  },
  AGENT_PAYOUT: {
    steps: ["distributions.payout", "balance.debit", "events.publish"],
    domains: ["distributions", "balance", "events"],
  },
};
const PAYOUT_METHODS = ["bank_transfer", "wire", "check", "wallet"];

function publicView(s: SagaState) {
  return {
    id: s.id, type: s.type, status: s.status, error: s.error, payload: s.payload,
    steps: s.steps.map((st) => ({
      name: st.name, domain: st.domain, state: st.state, attempts: st.attempts, result: st.result, error: st.error,
      compensationAttempts: st.compensationAttempts || undefined, compensationError: st.compensationError, updatedAt: st.updatedAt,
    })),
    createdAt: s.createdAt, updatedAt: s.updatedAt,
  };
}

interface CallResult {
  ok: boolean;
  permanent: boolean;
  status: number;
  body: Record<string, unknown>;
}

export class Saga extends DurableObject<Env> {
  private running: Promise<void> | null = null;
  private runningSince = 0;
  // Each run has a generation; a run superseded by a newer one (because it
  // stopped making progress) stores nothing more.
  private generation = 0;

  private num(name: keyof Env, fallback: number): number {
    const v = Number(this.env[name] ?? fallback);
    return Number.isFinite(v) && v >= 0 ? v : fallback;
  }

  async start(init: { id: string; type: SagaType; fingerprint: string; actor: Actor; payload: Winnings | Payout }): Promise<{ state: ReturnType<typeof publicView>; created: boolean; conflict?: boolean }> {
    let s = await this.ctx.storage.get<SagaState>("saga");
    let created = false;
    if (s) {
      if (s.fingerprint !== init.fingerprint) return { state: publicView(s), created: false, conflict: true };
    } else {
      const now = new Date().toISOString();
      s = {
        id: init.id, type: init.type, fingerprint: init.fingerprint, actor: init.actor, payload: init.payload,
        status: "RUNNING", indexed: false, createdAt: now, updatedAt: now,
        steps: SAGAS[init.type].steps.map((name) => ({
          name, domain: name.split(".")[0] as Step["domain"], state: "pending" as StepState, attempts: 0, compensationAttempts: 0, updatedAt: now,
        })),
      };
      // Stored with its resume alarm before any step runs.
      await this.ctx.storage.put("saga", s);
      await this.ctx.storage.setAlarm(Date.now() + this.num("SAGA_RESUME_MS", 3000));
      // On disk before anything outside the object hears of the saga.
      await this.ctx.storage.sync();
      await this.env.DB.prepare(
        "INSERT OR IGNORE INTO sagas (id, type, status, subject, created_at, updated_at) VALUES (?, ?, 'RUNNING', ?, ?, ?)",
      ).bind(s.id, s.type, s.actor.subject, now, now).run();
      created = true;
    }
    const wait = this.num("SAGA_WAIT_MS", 15000);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.drive(),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, wait); }),
    ]);
    clearTimeout(timer);
    const now = await this.ctx.storage.get<SagaState>("saga");
    return { state: publicView(now ?? s), created };
  }

  async view(): Promise<ReturnType<typeof publicView> | null> {
    const s = await this.ctx.storage.get<SagaState>("saga");
    return s ? publicView(s) : null;
  }

  async alarm() {
    const s = await this.ctx.storage.get<SagaState>("saga");
    if (!s) return;
    if (this.running && !this.stale()) {
      // A run is in progress in this instance; check again later.
      await this.ctx.storage.setAlarm(Date.now() + this.num("SAGA_RESUME_MS", 3000));
      return;
    }
    await this.drive();
  }

  /** A run that has stored nothing for longer than a step may take is stuck. */
  private stale(): boolean {
    return Date.now() - this.runningSince > this.num("SAGA_STEP_TIMEOUT_MS", 10000) + 5000;
  }

  /** One run at a time per saga, however many callers ask. */
  private drive(): Promise<void> {
    if (!this.running || this.stale()) {
      const g = ++this.generation;
      this.runningSince = Date.now();
      this.running = this.run(g).finally(() => {
        if (this.generation === g) this.running = null;
      });
    }
    return this.running;
  }

  /** Stores the saga unless this run was superseded; false if it was. */
  private async saveIf(g: number, s: SagaState): Promise<boolean> {
    if (g !== this.generation) return false;
    this.runningSince = Date.now();
    await this.save(s);
    return true;
  }

  /** Stores the saga and waits until it is on disk, before the next call out. */
  private async save(s: SagaState) {
    s.updatedAt = new Date().toISOString();
    await this.ctx.storage.put("saga", s);
    await this.ctx.storage.sync();
  }

  private async run(g: number): Promise<void> {
    for (;;) {
      if (g !== this.generation) return;
      const s = await this.ctx.storage.get<SagaState>("saga");
      if (!s) return;
      if (TERMINAL.includes(s.status)) {
        if (!s.indexed) await this.finish(s);
        await this.ctx.storage.deleteAlarm();
        return;
      }
      // Keep the resume alarm ahead of the work in progress.
      await this.ctx.storage.setAlarm(Date.now() + this.num("SAGA_RESUME_MS", 3000));
      const maxAttempts = Math.max(1, this.num("SAGA_STEP_MAX_ATTEMPTS", 4));
      if (s.status === "RUNNING") {
        const step = s.steps.find((st) => st.state !== "done");
        if (!step) {
          s.status = "COMPLETED";
          if (!(await this.saveIf(g, s))) return;
          continue;
        }
        step.state = "running";
        step.attempts += 1;
        step.updatedAt = new Date().toISOString();
        if (!(await this.saveIf(g, s))) return;
        const r = await this.forward(s, step);
        step.updatedAt = new Date().toISOString();
        if (r.ok) {
          step.state = "done";
          step.result = r.body;
          step.error = undefined;
        } else if (r.permanent || step.attempts >= maxAttempts) {
          step.state = "failed";
          step.error = `${r.status}: ${String(r.body.error ?? "failed")}`;
          s.error = `${step.name} failed: ${step.error}`;
          s.status = "COMPENSATING";
        } else {
          step.error = `${r.status}: ${String(r.body.error ?? "failed")}`;
          if (!(await this.saveIf(g, s))) return;
          await this.retryLater(step.attempts);
          return;
        }
        if (!(await this.saveIf(g, s))) return;
        continue;
      }
      // COMPENSATING: undo completed steps, last first.
      const step = [...s.steps].reverse().find((st) => st.state === "done" || st.state === "compensating");
      if (!step) {
        for (const st of s.steps) if (st.state === "pending") st.state = "skipped";
        s.status = "COMPENSATED";
        if (!(await this.saveIf(g, s))) return;
        continue;
      }
      step.state = "compensating";
      step.compensationAttempts += 1;
      if (!(await this.saveIf(g, s))) return;
      const r = await this.compensate(s, step);
      if (r.ok) {
        step.state = "compensated";
        step.compensationError = undefined;
      } else if (r.permanent || step.compensationAttempts >= maxAttempts) {
        step.state = "compensation_failed";
        step.compensationError = `${r.status}: ${String(r.body.error ?? "failed")}`;
        s.status = "FAILED";
        s.error = `${s.error ?? ""}; compensation of ${step.name} failed: ${step.compensationError} (needs manual action)`;
      } else {
        step.compensationError = `${r.status}: ${String(r.body.error ?? "failed")}`;
        if (!(await this.saveIf(g, s))) return;
        await this.retryLater(step.compensationAttempts);
        return;
      }
      if (!(await this.saveIf(g, s))) return;
    }
  }

  private async retryLater(attempt: number) {
    const base = this.num("SAGA_RETRY_BASE_MS", 500);
    await this.ctx.storage.setAlarm(Date.now() + Math.min(base * 2 ** (attempt - 1), 300_000));
  }

  /** Records the outcome in the index and publishes it, then disarms. */
  private async finish(s: SagaState) {
    const now = new Date().toISOString();
    const type = s.status === "COMPLETED" ? "SAGA_COMPLETED" : s.status === "COMPENSATED" ? "SAGA_COMPENSATED" : "SAGA_FAILED";
    await this.env.DB.batch([
      this.env.DB.prepare(
        "INSERT INTO sagas (id, type, status, subject, error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status, error = excluded.error, updated_at = excluded.updated_at",
      ).bind(s.id, s.type, s.status, s.actor.subject, s.error ?? null, s.createdAt, now),
      this.env.DB.prepare(
        "INSERT INTO audit_log (at, subject, role, action, entity, entity_id, detail) VALUES (?, ?, ?, ?, 'saga', ?, ?)",
      ).bind(now, s.actor.subject, s.actor.role, `saga.${s.status.toLowerCase()}`, s.id, JSON.stringify({ error: s.error })),
      outboxStmt(this.env.DB, domainEvent(type, "coordinator", { transactionId: s.id, type: s.type, status: s.status, error: s.error, ...subjectOf(s), amount: s.payload.amount }, `evt_${s.id}`)),
    ]);
    s.indexed = true;
    await this.save(s);
    this.ctx.waitUntil(flushOutbox(this.env.DB, this.env.EVENTS).catch(() => 0));
  }

  private async call(binding: Fetcher, path: string, key: string, who: Actor, body: unknown): Promise<CallResult> {
    let res: Response;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      // A step that does not answer in time is a transient failure: it is
      // retried with the same key, which the domain deduplicates.
      res = await Promise.race([
        binding.fetch(`https://internal${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": key, "x-cc-subject": who.subject, "x-cc-role": who.role },
          body: JSON.stringify(body),
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("step timed out")), this.num("SAGA_STEP_TIMEOUT_MS", 10000));
        }),
      ]);
    } catch (err) {
      return { ok: false, permanent: false, status: 0, body: { error: err instanceof Error ? err.message : String(err) } };
    } finally {
      clearTimeout(timer);
    }
    let parsed: Record<string, unknown> = {};
    try {
      parsed = (await res.json()) as Record<string, unknown>;
    } catch {
      parsed = { error: `answered ${res.status} without JSON` };
    }
    const transient = res.status >= 500 || res.status === 408 || res.status === 429;
    return { ok: res.status >= 200 && res.status < 300, permanent: !transient, status: res.status, body: parsed };
  }

  private forward(s: SagaState, step: Step): Promise<CallResult> {
    const key = `${s.id}:${step.name}`;
    if (s.type === "AGENT_PAYOUT") {
      const p = s.payload as Payout;
      switch (step.name) {
        case "distributions.payout":
          return this.call(this.env.DISTRIBUTIONS, "/api/domains/distributions/payouts", key, s.actor, {
            agentId: p.agentId, amount: p.amount, method: p.method, currency: p.currency,
          });
        case "balance.debit":
          return this.call(this.env.BALANCE, "/api/domains/balance", key, s.actor, {
            playerId: p.fundingAccount, amount: p.amount, currency: p.currency, type: "debit", reason: `payout to agent ${p.agentId} (${s.id})`,
          });
        default:
          return this.call(this.env.EVENT_BUS, "/api/domains/events", key, s.actor, {
            type: "PAYOUT_SETTLED", domain: "coordinator",
            data: { transactionId: s.id, payoutId: s.steps[0].result?.id, agentId: p.agentId, amount: p.amount, currency: p.currency, method: p.method, fundingAccount: p.fundingAccount },
          });
      }
    }
    const p = s.payload as Winnings;
    switch (step.name) {
      case "collections.record":
        return this.call(this.env.COLLECTIONS, "/api/domains/collections", key, s.actor, {
          merchantId: p.merchantId, amount: p.amount, currency: p.currency, paymentMethod: "game_winnings", reference: `${s.id}:${p.gameId}`,
        });
      case "distributions.commission":
        return this.call(this.env.DISTRIBUTIONS, "/api/domains/distributions/commissions", key, s.actor, {
          agentId: p.agentId, amount: p.amount, period: "daily", currency: p.currency, source: s.id,
        });
      default:
        return this.call(this.env.BALANCE, "/api/domains/balance", key, s.actor, {
          playerId: p.playerId, amount: p.amount, currency: p.currency, type: "credit", reason: `winnings ${p.gameId} (${s.id})`,
        });
    }
  }

  private async compensate(s: SagaState, step: Step): Promise<CallResult> {
    const key = `${s.id}:${step.name}:undo`;
    const reason = `compensation of ${s.id}: ${s.error ?? "a later step failed"}`.slice(0, 256);
    const resultId = String(step.result?.id ?? "");
    if (s.type === "AGENT_PAYOUT") {
      const p = s.payload as Payout;
      switch (step.name) {
        case "distributions.payout":
          return this.call(this.env.DISTRIBUTIONS, `/api/domains/distributions/payouts/${encodeURIComponent(resultId)}/reverse`, key, s.actor, { reason });
        case "balance.debit":
          return this.call(this.env.BALANCE, "/api/domains/balance", key, s.actor, {
            playerId: p.fundingAccount, amount: p.amount, currency: p.currency, type: "credit", reason,
          });
        default:
          // The last step: once it is done the saga is complete, so it is
          // never compensated. Nothing to undo.
          return Promise.resolve({ ok: true, permanent: false, status: 200, body: {} });
      }
    }
    const w = s.payload as Winnings;
    switch (step.name) {
      case "collections.record":
        return this.call(this.env.COLLECTIONS, `/api/domains/collections/${encodeURIComponent(resultId)}/reverse`, key, s.actor, { reason });
      case "distributions.commission":
        return this.call(this.env.DISTRIBUTIONS, `/api/domains/distributions/commissions/${encodeURIComponent(resultId)}/void`, key, s.actor, { reason });
      default:
        return this.call(this.env.BALANCE, "/api/domains/balance", key, s.actor, {
          playerId: w.playerId, amount: w.amount, currency: w.currency, type: "debit", reason,
        });
    }
  }
}

/** Who a saga is about, for its final event. */
function subjectOf(s: SagaState): Record<string, string> {
  return s.type === "AGENT_PAYOUT" ? { agentId: (s.payload as Payout).agentId } : { playerId: (s.payload as Winnings).playerId };
}

/** Runs `f`, turning a 400 about `field` into one about `payload.field`. */
function inPayload<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof HttpError && err.field) throw new HttpError(400, `payload.${err.message}`, `payload.${err.field}`);
    throw err;
  }
}

function winningsPayload(pl: Record<string, unknown>): Winnings {
  return {
    playerId: inPayload(() => id(pl, "playerId")),
    amount: decimal(inPayload(() => money(pl, "amount"))),
    currency: pl.currency === undefined ? "USD" : inPayload(() => currency(pl)),
    gameId: inPayload(() => id(pl, "gameId")),
    merchantId: pl.merchantId === undefined ? "HOUSE" : inPayload(() => id(pl, "merchantId")),
    agentId: pl.agentId === undefined ? "HOUSE" : inPayload(() => id(pl, "agentId")),
  };
}

function payoutPayload(pl: Record<string, unknown>): Payout {
  return {
    agentId: inPayload(() => id(pl, "agentId")),
    amount: decimal(inPayload(() => money(pl, "amount"))),
    currency: pl.currency === undefined ? "USD" : inPayload(() => currency(pl)),
    method: inPayload(() => oneOf(pl, "method", PAYOUT_METHODS)),
    fundingAccount: pl.fundingAccount === undefined ? "HOUSE-PAYOUTS" : inPayload(() => id(pl, "fundingAccount")),
  };
}

function txIdFor(key: string): Promise<string> {
  return sha256Hex(`coordinate:${key}`).then((h) => `tx_${h.slice(0, 32)}`);
}

async function stats(db: D1Database) {
  const rows = await db.prepare("SELECT status, COUNT(*) AS n FROM sagas GROUP BY status").all<{ status: string; n: number }>();
  const by: Record<string, number> = {};
  for (const r of rows.results ?? []) by[r.status] = r.n;
  return {
    activeTransactions: (by.RUNNING ?? 0) + (by.COMPENSATING ?? 0),
    completed: by.COMPLETED ?? 0,
    compensated: by.COMPENSATED ?? 0,
    failed: by.FAILED ?? 0,
  };
}

const router = new Router<Env>()
  .on("GET", "/api/domains/coordinator/health", async (_r, env) => {
    const s = await stats(env.DB);
    return json({ domain: "coordinator", status: s.failed > 0 ? "degraded" : "healthy", ...s });
  })
  .on("GET", "/api/domains/coordinator/stats", async (_r, env) => json(await stats(env.DB)))
  .on("POST", "/api/domains/coordinator/coordinate", async (req, env, ctx) => {
    const { body, raw } = await readBody(req);
    const key = idempotencyKey(req);
    const type = body.type;
    if (type !== "PLAYER_WINNINGS" && type !== "AGENT_PAYOUT") throw new HttpError(400, "type: must be one of PLAYER_WINNINGS, AGENT_PAYOUT", "type");
    const want = SAGAS[type].domains;
    const domains = body.domains;
    if (!Array.isArray(domains) || domains.length !== want.length || want.some((d) => !domains.includes(d))) {
      throw new HttpError(400, `domains: ${type} runs across exactly ${want.join(", ")}`, "domains");
    }
    const p = body.payload;
    if (p === null || typeof p !== "object" || Array.isArray(p)) throw new HttpError(400, "payload: must be a JSON object", "payload");
    const pl = p as Record<string, unknown>;
    const payload = type === "PLAYER_WINNINGS" ? winningsPayload(pl) : payoutPayload(pl);
    const txId = await txIdFor(key);
    const fingerprint = await sha256Hex(raw);
    const r = await env.SAGAS.getByName(txId).start({ id: txId, type, fingerprint, actor: actor(req), payload });
    if (r.conflict) throw new HttpError(422, "Idempotency-Key: already used with a different request", "Idempotency-Key");
    ctx.waitUntil(flushOutbox(env.DB, env.EVENTS).catch(() => 0));
    const finished = TERMINAL.includes(r.state.status);
    const headers: Record<string, string> = { location: `/api/domains/coordinator/transactions/${txId}` };
    if (!r.created) headers["idempotent-replayed"] = "true";
    return json(r.state, finished ? 201 : 202, headers);
  })
  .on("GET", "/api/domains/coordinator/transactions", async (req, env) => {
    const url = new URL(req.url);
    const status = url.searchParams.get("status");
    const limit = Math.min(Math.max(Number(url.searchParams.get("limit") ?? "50") || 50, 1), 500);
    const rows = status
      ? await env.DB.prepare("SELECT * FROM sagas WHERE status = ? ORDER BY updated_at DESC LIMIT ?").bind(status, limit).all()
      : await env.DB.prepare("SELECT * FROM sagas ORDER BY updated_at DESC LIMIT ?").bind(limit).all();
    return json({ transactions: rows.results ?? [] });
  })
  .on("GET", "/api/domains/coordinator/transactions/:id", async (_r, env, _c, p) => {
    if (!/^tx_[0-9a-f]{32}$/.test(p.id)) throw new HttpError(400, "id: not a transaction id (tx_ and 32 hex digits)", "id");
    const view = await env.SAGAS.getByName(p.id).view();
    if (!view) throw new HttpError(404, `transaction ${p.id} not found`, "id");
    return json(view);
  });

export default {
  fetch: (req: Request, env: Env, ctx: ExecutionContext) => router.handle(req, env, ctx),
  async scheduled(_c: ScheduledController, env: Env) {
    await flushOutbox(env.DB, env.EVENTS);
  },
};
