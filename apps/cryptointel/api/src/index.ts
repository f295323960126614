// CryptoIntel's API worker: /api/v1/* (api.ts: keys and sessions, roles,
// rate limits, KV caching, x402) and /health. Reached through the dashboard
// worker's service binding; an admin's on-demand collection is a message
// on the cryptointel-events queue, which the collector worker consumes.
import { handleApi } from "../../app/src/api";
import { health } from "../../app/src/health";
import { Env, HttpError, errorResponse, json, log } from "../../app/src/lib";

export default {
  async fetch(request, env, ctx): Promise<Response> {
    const path = new URL(request.url).pathname;
    try {
      if (path === "/health" && request.method === "GET") return await health(env);
      if (path === "/api/v1" || path.startsWith("/api/v1/")) return await handleApi(request, env, (p) => ctx.waitUntil(p));
      throw new HttpError(404, "no such route");
    } catch (e) {
      if (e instanceof HttpError) return errorResponse(e);
      log("ERROR", "api", "Unhandled error", { path, error: String((e as Error)?.stack ?? e) });
      return json({ error: "internal error" }, 500);
    }
  },
} satisfies ExportedHandler<Env>;
