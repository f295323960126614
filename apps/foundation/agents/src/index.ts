// Foundation v2.5 agents: run progress over WebSockets, the MCP endpoint,
// and the per-tenant limiter for tool calls.
import { DurableObject } from "cloudflare:workers";
import { CONTEXT_HEADER, PHASE_ORDER, TokenError, contextFrom, json } from "../../shared/lib.ts";
import type { Context } from "../../shared/lib.ts";

export interface Env {
  RUN_AGENT: DurableObjectNamespace<RunAgent>;
  TENANT_LIMITER: DurableObjectNamespace<TenantLimiter>;
  PLANNING: Fetcher;
  CONTEXT_TOKEN_SECRET?: string;
  MCP_CALLS_PER_MINUTE: string;
  PROGRESS_BACKLOG: string;
}

/** One per run (name `<tenant>:<run>`): keeps the run's progress events and fans them out. */
export class RunAgent extends DurableObject<Env> {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/connect") {
      if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return json({ error: "expected a WebSocket upgrade" }, 426);
      const pair = new WebSocketPair();
      const [client, server] = Object.values(pair);
      this.ctx.acceptWebSocket(server);
      const backlog = ((await this.ctx.storage.get<unknown[]>("events")) ?? []) as unknown[];
      for (const e of backlog) server.send(JSON.stringify(e));
      return new Response(null, { status: 101, webSocket: client });
    }
    if (url.pathname === "/publish" && request.method === "POST") {
      const event = await request.json();
      const max = Number(this.env.PROGRESS_BACKLOG) || 200;
      const events = ((await this.ctx.storage.get<unknown[]>("events")) ?? []) as unknown[];
      events.push(event);
      while (events.length > max) events.shift();
      await this.ctx.storage.put("events", events);
      const text = JSON.stringify(event);
      for (const ws of this.ctx.getWebSockets()) {
        try {
          ws.send(text);
        } catch {
          // A closing socket; the runtime drops it.
        }
      }
      return json({ delivered: this.ctx.getWebSockets().length });
    }
    if (url.pathname === "/events" && request.method === "GET") {
      return json({ events: (await this.ctx.storage.get("events")) ?? [] });
    }
    return json({ error: "not found" }, 404);
  }

  async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer) {
    if (message === "ping") ws.send("pong");
  }

  async webSocketClose(ws: WebSocket, code: number) {
    try {
      ws.close(code === 1005 ? 1000 : code, "bye");
    } catch {
      // Already closed.
    }
  }
}

/** A token bucket per tenant (name = tenant id) for MCP tool calls. */
export class TenantLimiter extends DurableObject<Env> {
  async take(now: number): Promise<{ ok: boolean; retryAfter: number }> {
    const rate = Math.max(1, Number(this.env.MCP_CALLS_PER_MINUTE) || 60);
    const state = (await this.ctx.storage.get<{ tokens: number; at: number }>("bucket")) ?? { tokens: rate, at: now };
    const tokens = Math.min(rate, state.tokens + ((now - state.at) / 60000) * rate);
    if (tokens < 1) {
      await this.ctx.storage.put("bucket", { tokens, at: now });
      return { ok: false, retryAfter: Math.ceil(((1 - tokens) * 60) / rate) };
    }
    await this.ctx.storage.put("bucket", { tokens: tokens - 1, at: now });
    return { ok: true, retryAfter: 0 };
  }
}

// ------------------------------------------------------------------ MCP

const TOOLS = [
  {
    name: "create_run",
    description: "Start a planning run for an idea. Phases: " + PHASE_ORDER.join(", "),
    inputSchema: {
      type: "object",
      properties: { idea: { type: "string" }, review_phases: { type: "array", items: { type: "string", enum: [...PHASE_ORDER] } } },
      required: ["idea"],
    },
  },
  { name: "get_run", description: "A run with its phases and artifacts.", inputSchema: { type: "object", properties: { run_id: { type: "string" } }, required: ["run_id"] } },
  { name: "list_runs", description: "The tenant's latest runs.", inputSchema: { type: "object", properties: {} } },
  {
    name: "review_phase",
    description: "Approve a phase waiting for review, or send it back with feedback.",
    inputSchema: {
      type: "object",
      properties: { run_id: { type: "string" }, phase: { type: "string" }, verdict: { type: "string", enum: ["approve", "revise"] }, feedback: { type: "string" } },
      required: ["run_id", "phase", "verdict"],
    },
  },
];

function rpc(id: unknown, result: unknown) {
  return json({ jsonrpc: "2.0", id, result });
}

function rpcError(id: unknown, code: number, message: string) {
  return json({ jsonrpc: "2.0", id: id ?? null, error: { code, message } });
}

async function callTool(env: Env, token: string, name: string, args: Record<string, unknown>) {
  const headers = { [CONTEXT_HEADER]: token, "content-type": "application/json" };
  const seg = (v: unknown) => encodeURIComponent(String(v ?? ""));
  let r: Response;
  switch (name) {
    case "create_run":
      r = await env.PLANNING.fetch("https://planning.internal/runs", { method: "POST", headers, body: JSON.stringify({ idea: args.idea, review_phases: args.review_phases }) });
      break;
    case "get_run":
      r = await env.PLANNING.fetch(`https://planning.internal/runs/${seg(args.run_id)}`, { headers });
      break;
    case "list_runs":
      r = await env.PLANNING.fetch("https://planning.internal/runs", { headers });
      break;
    case "review_phase":
      r = await env.PLANNING.fetch(`https://planning.internal/runs/${seg(args.run_id)}/phases/${seg(args.phase)}/review`, {
        method: "POST",
        headers,
        body: JSON.stringify({ verdict: args.verdict, feedback: args.feedback }),
      });
      break;
    default:
      return null;
  }
  const text = await r.text();
  return { content: [{ type: "text", text }], isError: !r.ok };
}

async function mcp(request: Request, env: Env, ctx: Context): Promise<Response> {
  let msg: { jsonrpc?: string; id?: unknown; method?: string; params?: Record<string, unknown> };
  try {
    msg = await request.json();
  } catch {
    return rpcError(null, -32700, "parse error");
  }
  if (msg?.jsonrpc !== "2.0" || typeof msg.method !== "string") return rpcError(msg?.id, -32600, "invalid request");
  if (msg.id === undefined) return new Response(null, { status: 202 }); // a notification
  switch (msg.method) {
    case "initialize":
      return rpc(msg.id, { protocolVersion: "2025-03-26", capabilities: { tools: {} }, serverInfo: { name: "foundation-planning", version: "2.5.0" } });
    case "ping":
      return rpc(msg.id, {});
    case "tools/list":
      return rpc(msg.id, { tools: TOOLS });
    case "tools/call": {
      const name = String(msg.params?.name ?? "");
      const args = (msg.params?.arguments ?? {}) as Record<string, unknown>;
      const limiter = env.TENANT_LIMITER.get(env.TENANT_LIMITER.idFromName(ctx.tenant));
      const slot = await limiter.take(Date.now());
      if (!slot.ok) return rpcError(msg.id, -32000, `tool call rate limit for this tenant reached; retry in ${slot.retryAfter} s`);
      const out = await callTool(env, request.headers.get(CONTEXT_HEADER) ?? "", name, args);
      return out ? rpc(msg.id, out) : rpcError(msg.id, -32602, "unknown tool " + name);
    }
    default:
      return rpcError(msg.id, -32601, "method not found: " + msg.method);
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    let ctx: Context;
    try {
      ctx = await contextFrom(request, env.CONTEXT_TOKEN_SECRET);
    } catch (e) {
      if (e instanceof TokenError) return json({ error: "context token refused: " + e.message }, 401);
      throw e;
    }
    const url = new URL(request.url);
    if (url.pathname === "/mcp" && request.method === "POST") return mcp(request, env, ctx);
    return json({ error: "not found" }, 404);
  },
};
