// CryptoIntel's dashboard worker, the public front: the static dashboard,
// sign-in (/auth/*), the live stream (/live, Durable Object LiveHub, which
// the collector worker notifies), and /api/v1/* and /health handed to the
// API worker (api/) over its service binding.
import { login, logout, sessionCookie, sessionPrincipal } from "./auth";
import { Env, HttpError, clientIp, errorResponse, json, liveHub, log, now, readJson } from "./lib";

export { LiveHub } from "./live";

async function route(request: Request, env: Env): Promise<Response> {
  const url = new URL(request.url);
  const path = url.pathname;
  if (path === "/api/v1" || path.startsWith("/api/v1/") || path === "/health") return env.API.fetch(request);
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
  async fetch(request, env): Promise<Response> {
    try {
      return await route(request, env);
    } catch (e) {
      if (e instanceof HttpError) return errorResponse(e);
      log("ERROR", "dashboard", "Unhandled error", { path: new URL(request.url).pathname, error: String((e as Error)?.stack ?? e) });
      return json({ error: "internal error" }, 500);
    }
  },
} satisfies ExportedHandler<Env>;
