// The ML path to the Python agents: predictions through one MlGateway
// Durable Object (result cache, timeout, circuit breaker with a half-open
// probe, stale fallback), committee votes with a quorum and a deadline,
// and backtest jobs over Queues with their results written back to D1.
import { DurableObject } from "cloudflare:workers";
import { Env, HttpError, checkPair, fetchWithTimeout, intVar, listVar } from "./lib";
import { getQuote } from "./market";

type BreakerState = "closed" | "open" | "half_open";

interface Breaker {
  state: BreakerState;
  failures: number;
  opened_at: number;
  last_error: string | null;
}

interface Cached {
  prediction: Record<string, unknown>;
  at: number;
}

export type PredictAnswer =
  | { status: 200; body: Record<string, unknown> }
  | { status: number; body: { error: string; breaker: BreakerState } };

export class MlGateway extends DurableObject<Env> {
  private breaker: Breaker | null = null;
  private probing = false;

  private async load(): Promise<Breaker> {
    if (!this.breaker) {
      this.breaker = (await this.ctx.storage.get<Breaker>("breaker")) ?? { state: "closed", failures: 0, opened_at: 0, last_error: null };
    }
    return this.breaker;
  }

  private async save(b: Breaker): Promise<void> {
    this.breaker = b;
    await this.ctx.storage.put("breaker", b);
  }

  async status(): Promise<Breaker & { cooldown_ms: number; threshold: number }> {
    const b = await this.load();
    return { ...b, state: this.effective(b), cooldown_ms: this.cooldown(), threshold: this.threshold() };
  }

  private cooldown(): number {
    return intVar(this.env, "BREAKER_COOLDOWN_MS", 30000, 1, 3_600_000);
  }
  private threshold(): number {
    return intVar(this.env, "BREAKER_FAILURES", 3, 1, 1000);
  }
  /** Open turns half-open once the cool-down has passed. */
  private effective(b: Breaker): BreakerState {
    return b.state === "open" && Date.now() - b.opened_at >= this.cooldown() ? "half_open" : b.state;
  }

  /** `maxAgeMs`: the oldest cached prediction the caller accepts (at most PREDICT_CACHE_MS). */
  async predict(symbol: string, maxAgeMs: number | null = null): Promise<PredictAnswer> {
    const configured = intVar(this.env, "PREDICT_CACHE_MS", 5000, 0, 3_600_000);
    const cacheMs = maxAgeMs === null ? configured : Math.min(configured, maxAgeMs);
    const cached = await this.ctx.storage.get<Cached>(`pred:${symbol}`);
    const now = Date.now();
    if (cached && now - cached.at < cacheMs) {
      return { status: 200, body: { ...cached.prediction, symbol, cached: true, stale: false, age_ms: now - cached.at, breaker: (await this.status()).state } };
    }
    const b = await this.load();
    const state = this.effective(b);
    const stale = (why: string): PredictAnswer =>
      cached
        ? { status: 200, body: { ...cached.prediction, symbol, cached: true, stale: true, age_ms: now - cached.at, breaker: state, reason: why } }
        : { status: 503, body: { error: `no prediction for ${symbol}: ${why}`, breaker: state } };
    if (state === "open") return stale("circuit open: the ML agent failed repeatedly");
    if (state === "half_open" && this.probing) return stale("circuit half-open: a probe is in flight");
    const probe = state === "half_open";
    if (probe) this.probing = true;
    try {
      const prediction = await this.callAgent(symbol);
      await this.ctx.storage.put(`pred:${symbol}`, { prediction, at: Date.now() } satisfies Cached);
      await this.save({ state: "closed", failures: 0, opened_at: 0, last_error: null });
      return { status: 200, body: { ...prediction, symbol, cached: false, stale: false, age_ms: 0, breaker: "closed" } };
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const failures = b.failures + 1;
      const open = probe || failures >= this.threshold();
      const next: Breaker = open
        ? { state: "open", failures, opened_at: Date.now(), last_error: msg }
        : { state: "closed", failures, opened_at: 0, last_error: msg };
      await this.save(next);
      const answer = stale(`ML agent failed: ${msg}`);
      if (answer.status !== 200) answer.body.breaker = next.state;
      else (answer.body as Record<string, unknown>).breaker = next.state;
      return answer;
    } finally {
      if (probe) this.probing = false;
    }
  }

  private async callAgent(symbol: string): Promise<Record<string, unknown>> {
    const url = `${this.env.ML_AGENT_URL.replace(/\/+$/, "")}/predict`;
    const res = await fetchWithTimeout(
      url,
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ symbol }) },
      intVar(this.env, "AGENT_TIMEOUT_MS", 2000, 1, 120_000),
    );
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    const body = (await res.json()) as Record<string, unknown>;
    if (body === null || typeof body !== "object" || typeof body.direction !== "string" || typeof body.confidence !== "number") {
      throw new Error(`${url} answered without direction and confidence`);
    }
    return { direction: body.direction, confidence: body.confidence, model: typeof body.model === "string" ? body.model : null };
  }
}

function gateway(env: Env): MlGateway {
  return env.ML.get(env.ML.idFromName("agents")) as unknown as MlGateway;
}

export async function predict(env: Env, body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const symbol = checkPair(env, body.symbol, "symbol");
  const maxAge = body.max_age_ms;
  if (maxAge !== undefined && (typeof maxAge !== "number" || !Number.isInteger(maxAge) || maxAge < 0)) {
    throw new HttpError(400, "max_age_ms must be a whole number >= 0");
  }
  return gateway(env).predict(symbol, maxAge ?? null);
}

export async function breakerStatus(env: Env): Promise<unknown> {
  return gateway(env).status();
}

interface Vote {
  agent: string;
  vote: "buy" | "sell" | "hold";
  confidence: number;
  latency_ms: number;
}

/** Asks every committee agent; votes that arrive within the deadline count. */
export async function committee(env: Env, body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const symbol = checkPair(env, body.symbol, "symbol");
  const agents = listVar(env.COMMITTEE_AGENTS);
  if (agents.length === 0) throw new HttpError(503, "COMMITTEE_AGENTS is empty");
  const quorum = intVar(env, "COMMITTEE_QUORUM", 2, 1, 100);
  const deadline = intVar(env, "COMMITTEE_DEADLINE_MS", 1500, 1, 60_000);
  let quote: unknown = null;
  try {
    quote = (await getQuote(env, symbol)).quote;
  } catch {
    // the agents can vote without the edge's quote
  }
  const started = Date.now();
  const votes: Vote[] = [];
  const failed: Array<{ agent: string; error: string }> = [];
  const controller = new AbortController();
  const asks = agents.map(async (agent) => {
    const url = `${agent.replace(/\/+$/, "")}/vote`;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ symbol, quote }),
        signal: controller.signal,
      });
      if (!res.ok) throw new Error(`answered ${res.status}`);
      const v = (await res.json()) as Record<string, unknown>;
      if ((v.vote !== "buy" && v.vote !== "sell" && v.vote !== "hold") || typeof v.confidence !== "number") throw new Error("answered without vote and confidence");
      votes.push({ agent, vote: v.vote, confidence: Math.max(0, Math.min(1, v.confidence)), latency_ms: Date.now() - started });
    } catch (e) {
      if (!controller.signal.aborted) failed.push({ agent, error: e instanceof Error ? e.message : String(e) });
    }
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([Promise.all(asks), new Promise((resolve) => (timer = setTimeout(resolve, deadline)))]);
  clearTimeout(timer ?? null);
  controller.abort();
  const counted = votes.slice();
  const late = agents.filter((a) => !counted.some((v) => v.agent === a) && !failed.some((f) => f.agent === a));
  const tally: Record<string, number> = { buy: 0, sell: 0, hold: 0 };
  for (const v of counted) tally[v.vote] += v.confidence;
  const decision = counted.length >= quorum ? (Object.entries(tally).sort((a, b) => b[1] - a[1])[0][0] as string) : null;
  const result = {
    symbol,
    decision,
    quorum,
    quorum_met: counted.length >= quorum,
    votes: counted,
    tally,
    failed,
    late,
    deadline_ms: deadline,
    elapsed_ms: Date.now() - started,
  };
  return { status: result.quorum_met ? 200 : 503, body: result };
}

// ------------------------------------------------------------ backtests

export async function submitBacktest(env: Env, body: Record<string, unknown>): Promise<unknown> {
  const symbol = checkPair(env, body.symbol, "symbol");
  const strategy = body.strategy;
  if (typeof strategy !== "string" || !/^[a-z0-9_]{1,64}$/.test(strategy)) throw new HttpError(400, "strategy must be 1-64 characters of a-z, 0-9 or _");
  const params = body.params ?? {};
  if (params === null || typeof params !== "object" || Array.isArray(params)) throw new HttpError(400, "params must be an object");
  const text = JSON.stringify(params);
  if (text.length > 16 * 1024) throw new HttpError(400, "params larger than 16 KiB");
  const id = crypto.randomUUID();
  // The row first, then the message: a job is acknowledged only when both are durable.
  await env.DB.prepare("INSERT INTO backtests (id, symbol, strategy, params, status, created_at) VALUES (?, ?, ?, ?, 'queued', ?)")
    .bind(id, symbol, strategy, text, Date.now())
    .run();
  await env.BACKTESTS.send({ id });
  return { id, status: "queued" };
}

export async function getBacktest(env: Env, id: string): Promise<unknown> {
  const row = await env.DB.prepare("SELECT * FROM backtests WHERE id = ?").bind(id).first();
  if (!row) throw new HttpError(404, `no backtest ${id}`);
  return { ...row, params: JSON.parse(String(row.params)), result: row.result ? JSON.parse(String(row.result)) : null };
}

/** Queue consumer: runs each job on the ML agent and writes the result to D1; a failure retries. */
export async function runBacktests(batch: MessageBatch<{ id: string }>, env: Env): Promise<void> {
  for (const msg of batch.messages) {
    const id = msg.body?.id;
    const row = typeof id === "string" ? await env.DB.prepare("SELECT * FROM backtests WHERE id = ?").bind(id).first<Record<string, unknown>>() : null;
    if (!row || row.status === "done" || row.status === "failed") {
      msg.ack(); // unknown or finished already (a redelivery): nothing to do
      continue;
    }
    await env.DB.prepare("UPDATE backtests SET status = 'running', attempts = attempts + 1 WHERE id = ?").bind(id).run();
    const url = `${env.ML_AGENT_URL.replace(/\/+$/, "")}/backtest`;
    try {
      const res = await fetchWithTimeout(
        url,
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ id, symbol: row.symbol, strategy: row.strategy, params: JSON.parse(String(row.params)) }),
        },
        intVar(env, "BACKTEST_TIMEOUT_MS", 30000, 1, 900_000),
      );
      if (!res.ok) throw new Error(`${url} answered ${res.status}`);
      const result = await res.json();
      await env.DB.prepare("UPDATE backtests SET status = 'done', result = ?, error = NULL, finished_at = ? WHERE id = ?")
        .bind(JSON.stringify(result), Date.now(), id)
        .run();
      msg.ack();
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      if (msg.attempts >= 10) {
        await env.DB.prepare("UPDATE backtests SET status = 'failed', error = ?, finished_at = ? WHERE id = ?").bind(error, Date.now(), id).run();
        msg.ack();
      } else {
        await env.DB.prepare("UPDATE backtests SET status = 'queued', error = ? WHERE id = ?").bind(error, id).run();
        msg.retry({ delaySeconds: Math.min(60, 2 ** msg.attempts) });
      }
    }
  }
}
