// CryptoIntel: market-intelligence collector, signal detector, keyed API
// and live dashboard in one Worker.
//   fetch     /api/v1/* (api.ts), /health, /auth/*, /live, static dashboard
//   scheduled */15 * * * * collect (collector.ts); 0 3 * * * archive (archive.ts)
//   queue     cryptointel-events: detection after each collection, webhook
//             deliveries; cryptointel-webhooks-dlq: dead letters (logged)
import { handleApi } from "./api";
import { login, logout, sessionCookie, sessionPrincipal } from "./auth";
import { requeuePending, runCollection } from "./collector";
import { runArchival } from "./archive";
import { health } from "./health";
import { Env, EventMessage, HttpError, clientIp, errorResponse, json, liveHub, log, now, readJson } from "./lib";
import { detectSignals } from "./signals";
import { deliver } from "./webhooks";

export { LiveHub } from "./live";

const COLLECT_CRON = "*/15 * * * *";
const ARCHIVE_CRON = "0 3 * * *";

async function route(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const url = new URL(request.url);
  const path = url.pathname;
  if (path === "/api/v1" || path.startsWith("/api/v1/")) return handleApi(request, env, (p) => ctx.waitUntil(p));
  if (path === "/health" && request.method === "GET") return health(env);
  if (path === "/auth/login" && request.method === "POST") {
    // Password guessing counts against the anonymous per-IP limit.
    if (!(await env.RL_ANON.limit({ key: `login:${clientIp(request)}` })).success) {
      throw new HttpError(429, "too many sign-in attempts", undefined, { "retry-after": "60" });
    }
    const s = await login(env, await readJson(request));
    return json({ user: s.user }, 200, { "set-cookie": sessionCookie(s.session_id, s.max_age), "cache-control": "no-store" });
  }
  if (path === "/auth/logout" && request.method === "POST") {
    const s = await sessionPrincipal(env, request, now());
    if (s) await logout(env, s.principal);
    return new Response(null, { status: 204, headers: { "set-cookie": sessionCookie("", 0) } });
  }
  if (path === "/auth/me" && request.method === "GET") {
    const s = await sessionPrincipal(env, request, now());
    if (!s) throw new HttpError(401, "not signed in");
    return json({ user_id: s.principal.user_id, role: s.principal.role }, 200, s.refresh ? { "set-cookie": s.refresh } : {});
  }
  if (path === "/live") {
    const s = await sessionPrincipal(env, request, now());
    if (!s) throw new HttpError(401, "sign in first: the live stream needs a session cookie");
    return liveHub(env).fetch(request);
  }
  return env.ASSETS.fetch(request);
}

export default {
  async fetch(request, env, ctx): Promise<Response> {
    try {
      return await route(request, env, ctx);
    } catch (e) {
      if (e instanceof HttpError) return errorResponse(e);
      log("ERROR", "dashboard", "Unhandled error", { path: new URL(request.url).pathname, error: String((e as Error)?.stack ?? e) });
      return json({ error: "internal error" }, 500);
    }
  },

  async scheduled(controller, env, ctx): Promise<void> {
    if (controller.cron === ARCHIVE_CRON) {
      await runArchival(env);
      return;
    }
    if (controller.cron !== COLLECT_CRON) log("WARN", "scheduler", "Unknown cron; collecting", { cron: controller.cron });
    await requeuePending(env);
    await runCollection(env);
  },

  async queue(batch, env): Promise<void> {
    if (batch.queue.endsWith("-dlq")) {
      for (const m of batch.messages) {
        log("ERROR", "webhooks", "Dead letter", { message: m.body as Record<string, unknown> });
        m.ack();
      }
      return;
    }
    for (const m of batch.messages) {
      const body = m.body as EventMessage;
      try {
        if (body.kind === "collection") {
          await detectSignals(env, body.collection_id);
          m.ack();
        } else if (body.kind === "deliver") {
          const delay = await deliver(env, body.delivery_id);
          if (delay === null) m.ack();
          else m.retry({ delaySeconds: Math.max(0, Math.round(delay)) });
        } else {
          log("WARN", "queue", "Unknown message", { body: body as unknown as Record<string, unknown> });
          m.ack();
        }
      } catch (e) {
        log("ERROR", "queue", "Message failed; retrying", { error: String((e as Error)?.stack ?? e) });
        m.retry({ delaySeconds: 5 });
      }
    }
  },
} satisfies ExportedHandler<Env, EventMessage>;
