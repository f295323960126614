// Foundation v2.5 planning machine: the run API behind the gateway and the
// PlanningWorkflow that walks PHASE_ORDER (see ../../shared/lib.ts and the
// app README for what each phase produces).
import { WorkflowEntrypoint } from "cloudflare:workers";
import type { WorkflowEvent, WorkflowStep } from "cloudflare:workers";
import { PHASE_ORDER, TokenError, contextFrom, json } from "../../shared/lib.ts";
import type { Context, Phase } from "../../shared/lib.ts";

export interface Env {
  DB: D1Database;
  FILES: R2Bucket;
  VECTOR_INDEX: VectorizeIndex;
  PLANNING_WORKFLOW: Workflow;
  RUN_AGENT: DurableObjectNamespace;
  AUDIT_QUEUE: Queue;
  WEBHOOK_QUEUE: Queue;
  NOTIFY_QUEUE: Queue;
  ANALYTICS_QUEUE: Queue;
  CONTEXT_TOKEN_SECRET?: string;
  OPENAI_API_KEY?: string;
  AI_GATEWAY_BASE: string;
  AI_MODEL: string;
  EMBEDDING_MODEL: string;
  EMBEDDING_DIMENSIONS: string;
  REVIEW_PHASES: string;
  MAX_REVIEW_ITERATIONS: string;
  MAX_PIVOTS: string;
  REVIEW_TIMEOUT: string;
  AGENT_STEP_TIMEOUT: string;
  RAG_TOP_K: string;
}

interface RunParams {
  run_id: string;
  tenant_id: string;
  user_id: string;
  idea: string;
  review_phases: string[];
}

interface Verdict {
  verdict: "GO" | "KILL" | "PIVOT";
  reason: string;
  pivot_idea?: string;
  revisit_months?: number;
}

const REQUIRES_REVIEW_NOTE = "Answer in plain prose.";

/**
 * The bookkeeping steps (D1 writes, embeddings, queue sends) are short: a
 * one-minute timeout also bounds how long a run whose process died keeps
 * its lease before another runner resumes it.
 */
const STEP = { retries: { limit: 5, delay: "1 second", backoff: "exponential" }, timeout: "1 minute" } as const;

// ------------------------------------------------------------------ AI Gateway

class ModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelError";
  }
}

function gatewayHeaders(env: Env, tenant: string, run: string): Record<string, string> {
  if (!env.OPENAI_API_KEY) throw new ModelError("OPENAI_API_KEY is not set");
  return {
    "content-type": "application/json",
    authorization: "Bearer " + env.OPENAI_API_KEY,
    "cf-aig-metadata": JSON.stringify({ tenant, run }),
  };
}

async function chat(env: Env, tenant: string, run: string, system: string, user: string): Promise<{ text: string; tokens: number }> {
  const r = await fetch(env.AI_GATEWAY_BASE.replace(/\/$/, "") + "/openai/chat/completions", {
    method: "POST",
    headers: gatewayHeaders(env, tenant, run),
    body: JSON.stringify({ model: env.AI_MODEL, messages: [{ role: "system", content: system }, { role: "user", content: user }] }),
  });
  if (!r.ok) throw new ModelError(`AI Gateway answered ${r.status}: ${(await r.text()).slice(0, 300)}`);
  const body = (await r.json()) as { choices?: { message?: { content?: string } }[]; usage?: { total_tokens?: number } };
  const text = body.choices?.[0]?.message?.content;
  if (typeof text !== "string" || text.trim() === "") throw new ModelError("the model answered without content");
  return { text, tokens: body.usage?.total_tokens ?? 0 };
}

async function embed(env: Env, tenant: string, run: string, text: string): Promise<number[]> {
  const r = await fetch(env.AI_GATEWAY_BASE.replace(/\/$/, "") + "/openai/embeddings", {
    method: "POST",
    headers: gatewayHeaders(env, tenant, run),
    body: JSON.stringify({ model: env.EMBEDDING_MODEL, input: text.slice(0, 8000), dimensions: Number(env.EMBEDDING_DIMENSIONS) }),
  });
  if (!r.ok) throw new ModelError(`AI Gateway embeddings answered ${r.status}: ${(await r.text()).slice(0, 300)}`);
  const body = (await r.json()) as { data?: { embedding?: number[] }[] };
  const v = body.data?.[0]?.embedding;
  if (!Array.isArray(v) || v.length !== Number(env.EMBEDDING_DIMENSIONS)) {
    throw new ModelError(`expected an embedding of ${env.EMBEDDING_DIMENSIONS} dimensions, got ${Array.isArray(v) ? v.length : "none"}`);
  }
  return v;
}

function parseVerdict(text: string): Verdict {
  const m = text.match(/\{[\s\S]*\}/);
  if (!m) throw new ModelError("kill-test answer holds no JSON verdict");
  let v: Verdict;
  try {
    v = JSON.parse(m[0]);
  } catch {
    throw new ModelError("kill-test verdict is not valid JSON");
  }
  if (v.verdict !== "GO" && v.verdict !== "KILL" && v.verdict !== "PIVOT") throw new ModelError("kill-test verdict must be GO, KILL or PIVOT");
  if (v.verdict === "PIVOT" && (typeof v.pivot_idea !== "string" || v.pivot_idea.trim() === "")) throw new ModelError("a PIVOT verdict needs pivot_idea");
  return { verdict: v.verdict, reason: String(v.reason ?? ""), pivot_idea: v.pivot_idea, revisit_months: typeof v.revisit_months === "number" ? v.revisit_months : undefined };
}

function systemPrompt(phase: Phase): string {
  const task =
    phase === "kill-test"
      ? 'Decide whether to pursue the idea. Answer with JSON only: {"verdict": "GO" | "KILL" | "PIVOT", "reason": "...", "pivot_idea": "... (for PIVOT)", "revisit_months": N (for KILL)}.'
      : REQUIRES_REVIEW_NOTE;
  return `You are the ${phase} agent of a startup planning pipeline.\nPHASE: ${phase}\n${task}`;
}

// ------------------------------------------------------------------ side effects

async function publish(env: Env, tenant: string, run: string, event: Record<string, unknown>) {
  try {
    const stub = env.RUN_AGENT.get(env.RUN_AGENT.idFromName(tenant + ":" + run));
    await stub.fetch("https://agent.internal/publish", { method: "POST", body: JSON.stringify({ ...event, run_id: run, at: Date.now() }) });
  } catch (e) {
    console.warn("progress publish failed", run, String((e as Error).message ?? e));
  }
}

async function emit(env: Env, id: string, tenant: string, type: string, data: Record<string, unknown>) {
  await env.WEBHOOK_QUEUE.send({ kind: "event", id, tenant_id: tenant, type, data, at: Date.now() });
  await env.AUDIT_QUEUE.send({ id, tenant_id: tenant, event_type: "planning." + type, payload: data, at: Date.now() });
}

// ------------------------------------------------------------------ the workflow

export class PlanningWorkflow extends WorkflowEntrypoint<Env, RunParams> {
  async run(event: WorkflowEvent<RunParams>, step: WorkflowStep) {
    const env = this.env;
    const p = event.payload;
    const run = p.run_id;
    const tenant = p.tenant_id;
    const maxIterations = Math.max(1, Number(env.MAX_REVIEW_ITERATIONS) || 3);
    const maxPivots = Math.max(0, Number(env.MAX_PIVOTS) || 0);
    let idea = p.idea;
    let generation = 0;

    for (;;) {
      let pivoted = false;
      const done: { phase: string; text: string }[] = [];
      for (let i = 0; i < PHASE_ORDER.length; i++) {
        const phase = PHASE_ORDER[i];
        const tag = `g${generation}:${phase}`;

        await step.do(`${tag}:start`, STEP, async () => {
          const now = Date.now();
          await env.DB.batch([
            env.DB.prepare(
              "INSERT OR IGNORE INTO planning_phases (run_id, tenant_id, generation, phase, position, status, iteration, started_at) VALUES (?, ?, ?, ?, ?, 'running', 1, ?)",
            ).bind(run, tenant, generation, phase, i + 1, now),
            env.DB.prepare("UPDATE planning_runs SET status = 'running', current_phase = ?, updated_at = ? WHERE id = ? AND tenant_id = ?").bind(phase, now, run, tenant),
          ]);
          await publish(env, tenant, run, { type: "phase_started", phase, generation });
        });

        // 1. RAG context: the tenant's earlier artifacts nearest to this phase and idea.
        const context = await step.do(`${tag}:context`, STEP, async () => {
          const vector = await embed(env, tenant, run, `${phase}: ${idea}`);
          const found = await env.VECTOR_INDEX.query(vector, { topK: Number(env.RAG_TOP_K) || 3, namespace: tenant, returnMetadata: "all" });
          const ids = found.matches.map((m) => String(m.metadata?.artifact_id ?? "")).filter(Boolean);
          if (ids.length === 0) return [] as string[];
          const { results } = await env.DB.prepare(
            `SELECT phase, content FROM planning_artifacts WHERE tenant_id = ? AND id IN (${ids.map(() => "?").join(",")})`,
          ).bind(tenant, ...ids).all<{ phase: string; content: string }>();
          return results.map((r) => `[${r.phase}] ${r.content.slice(0, 1500)}`);
        });

        // 2-3. The phase agent, and the review loop where the run asks for one.
        let iteration = 1;
        let feedback: string | null = null;
        let answer: { text: string; tokens: number };
        let reviewVerdict: string | null = null;
        for (;;) {
          const prompt =
            `Idea: ${idea}\n\n` +
            (context.length ? `Related earlier work:\n${context.join("\n")}\n\n` : "") +
            (done.length ? `Earlier phases of this run:\n${done.map((d) => `[${d.phase}] ${d.text.slice(0, 800)}`).join("\n")}\n\n` : "") +
            (feedback ? `Reviewer feedback on your previous draft: ${feedback}\n` : "");
          answer = await step.do(
            `${tag}:agent:${iteration}`,
            { retries: { limit: 3, delay: "2 seconds", backoff: "exponential" }, timeout: env.AGENT_STEP_TIMEOUT || "2 minutes" },
            () => chat(env, tenant, run, systemPrompt(phase), prompt),
          );
          if (!p.review_phases.includes(phase)) break;

          await step.do(`${tag}:await-review:${iteration}`, STEP, async () => {
            const now = Date.now();
            await env.DB.batch([
              env.DB.prepare("UPDATE planning_phases SET status = 'awaiting_review', iteration = ? WHERE run_id = ? AND tenant_id = ? AND generation = ? AND phase = ?")
                .bind(iteration, run, tenant, generation, phase),
              env.DB.prepare("UPDATE planning_runs SET status = 'awaiting_review', updated_at = ? WHERE id = ? AND tenant_id = ?").bind(now, run, tenant),
            ]);
            await env.NOTIFY_QUEUE.send({ id: `ntf_${run}_${generation}_${phase}_${iteration}`, tenant_id: tenant, user_id: p.user_id, kind: "review_requested", body: { run_id: run, phase, iteration } });
            await emit(env, `evt_${run}_${generation}_${phase}_review_${iteration}`, tenant, "review_requested", { run_id: run, phase, iteration });
            await publish(env, tenant, run, { type: "review_requested", phase, generation, iteration, draft: answer.text });
          });
          const review = await step.waitForEvent<{ verdict: string; feedback?: string }>(`${tag}:review:${iteration}`, {
            type: `review-${generation}-${phase}-${iteration}`,
            timeout: env.REVIEW_TIMEOUT || "7 days",
          });
          if (review.payload.verdict === "approve") {
            reviewVerdict = "approved";
            break;
          }
          if (iteration >= maxIterations) {
            reviewVerdict = "revise_limit_reached";
            break;
          }
          feedback = String(review.payload.feedback ?? "");
          iteration++;
          await step.do(`${tag}:revise:${iteration}`, STEP, async () => {
            await env.DB.prepare("UPDATE planning_phases SET status = 'running', iteration = ?, feedback = ? WHERE run_id = ? AND tenant_id = ? AND generation = ? AND phase = ?")
              .bind(iteration, feedback, run, tenant, generation, phase).run();
            await env.DB.prepare("UPDATE planning_runs SET status = 'running', updated_at = ? WHERE id = ? AND tenant_id = ?").bind(Date.now(), run, tenant).run();
            await publish(env, tenant, run, { type: "revision_started", phase, generation, iteration });
          });
        }

        // 4-6. Artifact in D1, its embedding in Vectorize, the webhook event.
        const artifactId = `art_${run}_${generation}_${phase}`;
        await step.do(`${tag}:save`, STEP, async () => {
          const now = Date.now();
          await env.DB.batch([
            env.DB.prepare(
              "INSERT OR REPLACE INTO planning_artifacts (id, tenant_id, run_id, phase, version, content, review_verdict, review_iterations, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ).bind(artifactId, tenant, run, phase, generation + 1, answer.text, reviewVerdict, iteration, now),
            env.DB.prepare("UPDATE planning_phases SET status = 'completed', completed_at = ? WHERE run_id = ? AND tenant_id = ? AND generation = ? AND phase = ?")
              .bind(now, run, tenant, generation, phase),
          ]);
          const vector = await embed(env, tenant, run, answer.text);
          await env.VECTOR_INDEX.upsert([
            { id: `${run}:${generation}:${phase}`, values: vector, namespace: tenant, metadata: { artifact_id: artifactId, run_id: run, phase } },
          ]);
          await emit(env, `evt_${run}_${generation}_${phase}_done`, tenant, "phase_completed", { run_id: run, phase, generation, artifact_id: artifactId });
          await env.ANALYTICS_QUEUE.send({ tenant_id: tenant, kind: "planning", name: "phase:" + phase, value: answer.tokens });
          await publish(env, tenant, run, { type: "phase_completed", phase, generation, iteration });
        });
        done.push({ phase, text: answer.text });

        if (phase !== "kill-test") continue;
        const decision = await step.do(`${tag}:decide`, STEP, async () => parseVerdict(answer.text));
        if (decision.verdict === "KILL" || (decision.verdict === "PIVOT" && generation >= maxPivots)) {
          const reason = decision.verdict === "KILL" ? decision.reason : `pivot limit (${maxPivots}) reached: ${decision.reason}`;
          await step.do(`${tag}:kill`, STEP, async () => {
            const now = Date.now();
            await env.DB.batch([
              env.DB.prepare(
                "INSERT OR IGNORE INTO planning_parked_ideas (id, tenant_id, idea, refined_idea, run_id, source_phase, reason, revisit_estimate_months, artifact_summary, created_at) VALUES (?, ?, ?, ?, ?, 'kill-test', ?, ?, ?, ?)",
              ).bind(`prk_${run}`, tenant, p.idea, idea, run, reason, decision.revisit_months ?? null, answer.text.slice(0, 2000), now),
              env.DB.prepare("UPDATE planning_phases SET status = 'killed' WHERE run_id = ? AND tenant_id = ? AND generation = ? AND phase = 'kill-test'").bind(run, tenant, generation),
              env.DB.prepare("UPDATE planning_runs SET status = 'killed', kill_verdict = ?, updated_at = ? WHERE id = ? AND tenant_id = ?").bind(
                JSON.stringify({ verdict: "KILL", reason }), now, run, tenant,
              ),
            ]);
            await emit(env, `evt_${run}_killed`, tenant, "run_killed", { run_id: run, reason });
            await env.NOTIFY_QUEUE.send({ id: `ntf_${run}_killed`, tenant_id: tenant, user_id: p.user_id, kind: "run_killed", body: { run_id: run, reason } });
            await publish(env, tenant, run, { type: "run_killed", reason });
          });
          return { status: "killed", reason };
        }
        if (decision.verdict === "PIVOT") {
          const next = String(decision.pivot_idea);
          await step.do(`${tag}:pivot`, STEP, async () => {
            const row = await env.DB.prepare("SELECT pivot_history FROM planning_runs WHERE id = ? AND tenant_id = ?").bind(run, tenant).first<{ pivot_history: string }>();
            const history = JSON.parse(row?.pivot_history ?? "[]") as unknown[];
            if (history.length <= generation) history.push({ generation, from: idea, to: next, reason: decision.reason, at: Date.now() });
            await env.DB.prepare(
              "UPDATE planning_runs SET pivot_count = ?, pivot_history = ?, refined_idea = ?, kill_verdict = ?, updated_at = ? WHERE id = ? AND tenant_id = ?",
            ).bind(generation + 1, JSON.stringify(history), next, JSON.stringify({ verdict: "PIVOT", reason: decision.reason }), Date.now(), run, tenant).run();
            await emit(env, `evt_${run}_pivot_${generation}`, tenant, "run_pivoted", { run_id: run, from: idea, to: next, generation: generation + 1 });
            await publish(env, tenant, run, { type: "run_pivoted", from: idea, to: next, generation: generation + 1 });
          });
          idea = next;
          generation++;
          pivoted = true;
          break;
        }
        await step.do(`${tag}:go`, STEP, async () => {
          await env.DB.prepare("UPDATE planning_runs SET kill_verdict = ?, updated_at = ? WHERE id = ? AND tenant_id = ?")
            .bind(JSON.stringify({ verdict: "GO", reason: decision.reason }), Date.now(), run, tenant).run();
        });
      }
      if (!pivoted) break;
    }

    // The package: every artifact of the final generation, to R2.
    const key = await step.do("package", STEP, async () => {
      const { results } = await env.DB.prepare(
        "SELECT phase, version, content, review_verdict, review_iterations FROM planning_artifacts WHERE tenant_id = ? AND run_id = ? AND version = ?",
      ).bind(tenant, run, generation + 1).all<{ phase: string }>();
      const order = new Map(PHASE_ORDER.map((ph, i) => [ph as string, i]));
      results.sort((a, b) => (order.get(a.phase) ?? 0) - (order.get(b.phase) ?? 0));
      const runRow = await env.DB.prepare("SELECT idea, refined_idea, pivot_count, pivot_history, kill_verdict FROM planning_runs WHERE id = ? AND tenant_id = ?")
        .bind(run, tenant).first<Record<string, unknown>>();
      const pkg = {
        run_id: run,
        tenant_id: tenant,
        idea: p.idea,
        final_idea: idea,
        pivot_count: runRow?.pivot_count ?? generation,
        pivot_history: JSON.parse(String(runRow?.pivot_history ?? "[]")),
        phase_order: PHASE_ORDER,
        artifacts: results,
        created_at: new Date().toISOString(),
      };
      const objectKey = `packages/${tenant}/${run}.json`;
      await env.FILES.put(objectKey, JSON.stringify(pkg, null, 2), {
        httpMetadata: { contentType: "application/json" },
        customMetadata: { tenant_id: tenant, run_id: run },
      });
      await env.DB.prepare("UPDATE planning_runs SET status = 'completed', current_phase = NULL, package_key = ?, updated_at = ? WHERE id = ? AND tenant_id = ?")
        .bind(objectKey, Date.now(), run, tenant).run();
      await emit(env, `evt_${run}_completed`, tenant, "run_completed", { run_id: run, package_key: objectKey, artifacts: results.length });
      await env.NOTIFY_QUEUE.send({ id: `ntf_${run}_completed`, tenant_id: tenant, user_id: p.user_id, kind: "run_completed", body: { run_id: run } });
      await publish(env, tenant, run, { type: "run_completed", package_key: objectKey });
      return objectKey;
    });
    return { status: "completed", package_key: key };
  }
}

// ------------------------------------------------------------------ the run API

const RUN_ID = /^run_[0-9a-f]{24}$/;

function newRunId(): string {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return "run_" + [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

function error(status: number, message: string, ctx?: Context) {
  return json({ error: message, correlation_id: ctx?.correlationId }, status);
}

async function createRun(request: Request, env: Env, ctx: Context) {
  let body: { idea?: unknown; review_phases?: unknown };
  try {
    body = await request.json();
  } catch {
    return error(400, "body must be JSON", ctx);
  }
  if (body === null || typeof body !== "object") return error(400, "body must be a JSON object", ctx);
  if (typeof body.idea !== "string" || body.idea.trim().length < 3 || body.idea.length > 5000) return error(400, "idea must be 3 to 5000 characters", ctx);
  let review = env.REVIEW_PHASES.split(",").map((s) => s.trim()).filter(Boolean);
  if (body.review_phases !== undefined) {
    if (!Array.isArray(body.review_phases) || !body.review_phases.every((x) => typeof x === "string")) return error(400, "review_phases must be an array of phase names", ctx);
    review = body.review_phases as string[];
  }
  const unknown = review.filter((x) => !(PHASE_ORDER as readonly string[]).includes(x));
  if (unknown.length) return error(400, `unknown phase(s) in review_phases: ${unknown.join(", ")}; phases are ${PHASE_ORDER.join(", ")}`, ctx);
  const id = newRunId();
  const now = Date.now();
  await env.DB.prepare(
    "INSERT INTO planning_runs (id, tenant_id, created_by, idea, status, review_phases, workflow_instance_id, created_at, updated_at) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?)",
  ).bind(id, ctx.tenant, ctx.user, body.idea.trim(), JSON.stringify(review), id, now, now).run();
  await env.PLANNING_WORKFLOW.create({ id, params: { run_id: id, tenant_id: ctx.tenant, user_id: ctx.user, idea: body.idea.trim(), review_phases: review } });
  return json({ id, status: "running", review_phases: review, phase_order: PHASE_ORDER }, 201);
}

async function getRun(env: Env, ctx: Context, id: string) {
  const run = await env.DB.prepare("SELECT * FROM planning_runs WHERE id = ? AND tenant_id = ?").bind(id, ctx.tenant).first<Record<string, unknown>>();
  if (!run) return null;
  const { results: phases } = await env.DB.prepare(
    "SELECT generation, phase, position, status, iteration, started_at, completed_at FROM planning_phases WHERE run_id = ? AND tenant_id = ? ORDER BY generation, position",
  ).bind(id, ctx.tenant).all<{ generation: number; phase: string; status: string }>();
  const generation = Number(run.pivot_count ?? 0);
  const current = new Map(phases.filter((p) => p.generation === generation).map((p) => [p.phase, p]));
  const { results: artifacts } = await env.DB.prepare(
    "SELECT id, phase, version, review_verdict, review_iterations, created_at FROM planning_artifacts WHERE run_id = ? AND tenant_id = ? ORDER BY version, created_at",
  ).bind(id, ctx.tenant).all();
  let workflowStatus = "unknown";
  try {
    workflowStatus = (await (await env.PLANNING_WORKFLOW.get(id)).status()).status;
  } catch {
    // An instance that was never created (or was removed) reads as unknown.
  }
  return {
    ...run,
    workflow_status: workflowStatus,
    review_phases: JSON.parse(String(run.review_phases ?? "[]")),
    pivot_history: JSON.parse(String(run.pivot_history ?? "[]")),
    kill_verdict: run.kill_verdict ? JSON.parse(String(run.kill_verdict)) : null,
    phases: PHASE_ORDER.map((phase, i) => {
      const p = current.get(phase) as Record<string, unknown> | undefined;
      return { phase, position: i + 1, status: p?.status ?? "pending", iteration: p?.iteration ?? null, started_at: p?.started_at ?? null, completed_at: p?.completed_at ?? null };
    }),
    phase_history: phases,
    artifacts,
  };
}

async function review(request: Request, env: Env, ctx: Context, id: string, phase: string) {
  let body: { verdict?: unknown; feedback?: unknown };
  try {
    body = await request.json();
  } catch {
    return error(400, "body must be JSON", ctx);
  }
  if (body?.verdict !== "approve" && body?.verdict !== "revise") return error(400, "verdict must be 'approve' or 'revise'", ctx);
  if (body.verdict === "revise" && (typeof body.feedback !== "string" || body.feedback.trim() === "")) return error(400, "a revise verdict needs feedback", ctx);
  const run = await env.DB.prepare("SELECT pivot_count FROM planning_runs WHERE id = ? AND tenant_id = ?").bind(id, ctx.tenant).first<{ pivot_count: number }>();
  if (!run) return error(404, "no run " + id, ctx);
  const generation = run.pivot_count ?? 0;
  const row = await env.DB.prepare("SELECT status, iteration FROM planning_phases WHERE run_id = ? AND tenant_id = ? AND generation = ? AND phase = ?")
    .bind(id, ctx.tenant, generation, phase).first<{ status: string; iteration: number }>();
  if (!row || row.status !== "awaiting_review") return error(409, `phase ${phase} of run ${id} is not awaiting review`, ctx);
  // Claim the review (one per iteration), then wake the workflow.
  const claimed = await env.DB.prepare(
    "UPDATE planning_phases SET status = 'reviewed' WHERE run_id = ? AND tenant_id = ? AND generation = ? AND phase = ? AND status = 'awaiting_review' AND iteration = ?",
  ).bind(id, ctx.tenant, generation, phase, row.iteration).run();
  if (!claimed.meta.changes) return error(409, `phase ${phase} of run ${id} was reviewed already`, ctx);
  const instance = await env.PLANNING_WORKFLOW.get(id);
  await instance.sendEvent({ type: `review-${generation}-${phase}-${row.iteration}`, payload: { verdict: body.verdict, feedback: body.feedback ?? null, by: ctx.user } });
  return json({ run_id: id, phase, iteration: row.iteration, verdict: body.verdict }, 202);
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    let ctx: Context;
    try {
      ctx = await contextFrom(request, env.CONTEXT_TOKEN_SECRET);
    } catch (e) {
      if (e instanceof TokenError) return error(401, "context token refused: " + e.message);
      throw e;
    }
    const url = new URL(request.url);
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    try {
      if (parts[0] === "runs" && parts.length === 1) {
        if (request.method === "POST") return await createRun(request, env, ctx);
        if (request.method === "GET") {
          const { results } = await env.DB.prepare(
            "SELECT id, idea, status, current_phase, pivot_count, package_key, created_at FROM planning_runs WHERE tenant_id = ? ORDER BY created_at DESC LIMIT 100",
          ).bind(ctx.tenant).all();
          return json({ runs: results });
        }
      }
      if (parts[0] === "runs" && parts.length >= 2) {
        const id = parts[1];
        if (!RUN_ID.test(id)) return error(404, "no run " + id, ctx);
        if (parts.length === 2 && request.method === "GET") {
          const run = await getRun(env, ctx, id);
          return run ? json(run) : error(404, "no run " + id, ctx);
        }
        if (parts.length === 5 && parts[2] === "phases" && parts[4] === "review" && request.method === "POST") return await review(request, env, ctx, id, parts[3]);
        if (parts.length === 4 && parts[2] === "artifacts" && request.method === "GET") {
          const a = await env.DB.prepare("SELECT id, phase, version, content, review_verdict FROM planning_artifacts WHERE run_id = ? AND tenant_id = ? AND phase = ? ORDER BY version DESC LIMIT 1")
            .bind(id, ctx.tenant, parts[3]).first();
          return a ? json(a) : error(404, `no artifact for phase ${parts[3]} of run ${id}`, ctx);
        }
        if (parts.length === 3 && parts[2] === "package" && request.method === "GET") {
          const run = await env.DB.prepare("SELECT package_key FROM planning_runs WHERE id = ? AND tenant_id = ?").bind(id, ctx.tenant).first<{ package_key: string | null }>();
          if (!run) return error(404, "no run " + id, ctx);
          if (!run.package_key) return error(409, `run ${id} has no package yet`, ctx);
          const obj = await env.FILES.get(run.package_key);
          if (!obj) return error(404, "package object missing", ctx);
          return new Response(obj.body, {
            headers: { "content-type": "application/json", "content-disposition": `attachment; filename="${id}.json"`, etag: obj.httpEtag },
          });
        }
      }
      if (parts[0] === "parked" && parts.length === 1 && request.method === "GET") {
        const { results } = await env.DB.prepare("SELECT * FROM planning_parked_ideas WHERE tenant_id = ? ORDER BY created_at DESC").bind(ctx.tenant).all();
        return json({ parked: results });
      }
      return error(404, `no route for ${request.method} ${url.pathname}`, ctx);
    } catch (e) {
      console.error("planning error", ctx.correlationId, (e as Error).stack ?? String(e));
      return error(500, "internal error", ctx);
    }
  },
};
