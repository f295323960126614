import { WorkerEntrypoint } from "cloudflare:workers";

const TOKENS = {
  "token-alice": { user: "alice", roles: ["admin", "reader"] },
  "token-bob": { user: "bob", roles: ["reader"] },
};

// Bound by the gateway with `entrypoint = "AuthService"`.
export class AuthService extends WorkerEntrypoint {
  async check(token) {
    if (typeof token !== "string" || token === "") {
      throw new TypeError("token must be a non-empty string");
    }
    const found = TOKENS[token];
    if (found === undefined) throw new RangeError("unknown token");
    // Set and Date survive the call (structured clone).
    return { user: found.user, roles: new Set(found.roles), issued: new Date(0) };
  }
}

// The default entrypoint: HTTP, plus one RPC method.
export default class extends WorkerEntrypoint {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/verify") {
      const token = (request.headers.get("authorization") || "").replace(/^Bearer /, "");
      const found = TOKENS[token];
      if (found === undefined) return Response.json({ ok: false }, { status: 401 });
      return Response.json({ ok: true, user: found.user, method: request.method, body: await request.text() });
    }
    return new Response(`auth worker at ${url.host}${url.pathname}`);
  }

  async describe() {
    return { service: this.env.SERVICE_NAME, tokens: Object.keys(TOKENS).length };
  }
}
