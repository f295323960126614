// The Model Context Protocol over Streamable HTTP (JSON-RPC 2.0 on POST /mcp;
// DELETE /mcp ends a session; GET /mcp answers 405: this server sends no
// unsolicited messages). Each session lives in an McpSession Durable
// Object named by its Mcp-Session-Id. A tools/call that carries a
// progressToken, from a client that accepts text/event-stream, is answered
// as an SSE stream: notifications/progress first, then the result.
import { DurableObject } from "cloudflare:workers";
import { Env, HttpError, checkPair, intVar, pairs } from "./lib";
import { getQuote } from "./market";
import { listAccounts, placeOrder, recentTrades } from "./trading";
import { similarPatterns } from "./patterns";
import { committee } from "./ml";

const PROTOCOL_VERSIONS = ["2025-06-18", "2025-03-26", "2024-11-05"];
const SERVER_INFO = { name: "coinswarm", version: "0.1.0" };
const MAX_BODY = 1024 * 1024;

interface Session {
  protocolVersion: string;
  clientInfo: unknown;
  initialized: boolean;
  created_at: number;
  last_used: number;
  calls: number;
}

export class McpSession extends DurableObject<Env> {
  async open(protocolVersion: string, clientInfo: unknown): Promise<void> {
    const now = Date.now();
    await this.ctx.storage.put<Session>("session", { protocolVersion, clientInfo, initialized: false, created_at: now, last_used: now, calls: 0 });
    await this.ctx.storage.setAlarm(now + this.idle());
  }

  private idle(): number {
    return intVar(this.env, "MCP_SESSION_IDLE_MS", 3_600_000, 1000, 30 * 86_400_000);
  }

  /** The session after marking it used; null when unknown, ended or idle too long. */
  async touch(method: string): Promise<Session | null> {
    const s = await this.ctx.storage.get<Session>("session");
    const now = Date.now();
    if (!s) return null;
    if (now - s.last_used > this.idle()) {
      await this.ctx.storage.deleteAll();
      return null;
    }
    s.last_used = now;
    if (method === "notifications/initialized") s.initialized = true;
    if (method === "tools/call") s.calls++;
    await this.ctx.storage.put("session", s);
    await this.ctx.storage.setAlarm(now + this.idle());
    return s;
  }

  async end(): Promise<boolean> {
    const had = (await this.ctx.storage.get("session")) !== undefined;
    await this.ctx.storage.deleteAll();
    return had;
  }

  async alarm(): Promise<void> {
    const s = await this.ctx.storage.get<Session>("session");
    if (s && Date.now() - s.last_used >= this.idle()) await this.ctx.storage.deleteAll();
  }
}

// ---------------------------------------------------------------- tools

const pairSchema = { type: "string", description: "a traded pair such as BTC-USD" };

export const TOOLS = [
  {
    name: "get_accounts",
    description: "Sandbox accounts with their balances and open positions.",
    inputSchema: { type: "object", properties: {}, additionalProperties: false },
  },
  {
    name: "get_market_data",
    description: "The current quote of a pair (price, bid, ask, volume), cached for under a second.",
    inputSchema: { type: "object", properties: { pair: pairSchema }, required: ["pair"], additionalProperties: false },
  },
  {
    name: "get_recent_trades",
    description: "Most recent trades first, optionally for one symbol or account.",
    inputSchema: {
      type: "object",
      properties: { symbol: pairSchema, account_id: { type: "string" }, limit: { type: "integer", minimum: 1, maximum: 1000 } },
      additionalProperties: false,
    },
  },
  {
    name: "find_similar_patterns",
    description: "Stored market patterns most similar to a price window, with symbol/regime/outcome filters.",
    inputSchema: {
      type: "object",
      properties: {
        prices: { type: "array", items: { type: "number" }, minItems: 2 },
        top_k: { type: "integer", minimum: 1, maximum: 50 },
        symbol: pairSchema,
        regime: { type: "string", enum: ["trending_up", "trending_down", "ranging", "volatile"] },
        outcome: { type: "string", enum: ["up", "down", "flat"] },
      },
      required: ["prices"],
      additionalProperties: false,
    },
  },
  {
    name: "place_order",
    description: "Places a sandbox market order (filled at the current ask for a buy, bid for a sell).",
    inputSchema: {
      type: "object",
      properties: {
        account_id: { type: "string" },
        symbol: pairSchema,
        side: { type: "string", enum: ["buy", "sell"] },
        quantity: { type: "number", exclusiveMinimum: 0 },
        client_order_id: { type: "string", description: "makes a retried order idempotent" },
      },
      required: ["account_id", "symbol", "side", "quantity"],
      additionalProperties: false,
    },
  },
  {
    name: "ask_committee",
    description: "Gathers buy/sell/hold votes from the committee of ML agents, with a quorum and a deadline.",
    inputSchema: { type: "object", properties: { symbol: pairSchema }, required: ["symbol"], additionalProperties: false },
  },
];

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean;
  enum?: string[];
  items?: Schema;
  minItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
}

/** Checks arguments against the subset of JSON Schema the tools declare; the first problem, or null. */
export function checkArgs(schema: Schema, value: unknown, at = "arguments"): string | null {
  switch (schema.type) {
    case "object": {
      if (value === null || typeof value !== "object" || Array.isArray(value)) return `${at} must be an object`;
      const obj = value as Record<string, unknown>;
      for (const key of schema.required ?? []) if (obj[key] === undefined) return `${at}.${key} is required`;
      for (const [key, v] of Object.entries(obj)) {
        const sub = schema.properties?.[key];
        if (!sub) {
          if (schema.additionalProperties === false) return `${at}.${key} is not an argument of this tool`;
          continue;
        }
        const problem = checkArgs(sub, v, `${at}.${key}`);
        if (problem) return problem;
      }
      return null;
    }
    case "array": {
      if (!Array.isArray(value)) return `${at} must be an array`;
      if (schema.minItems !== undefined && value.length < schema.minItems) return `${at} must have at least ${schema.minItems} items`;
      for (let i = 0; i < value.length; i++) {
        const problem = schema.items ? checkArgs(schema.items, value[i], `${at}[${i}]`) : null;
        if (problem) return problem;
      }
      return null;
    }
    case "string":
      if (typeof value !== "string") return `${at} must be a string`;
      if (schema.enum && !schema.enum.includes(value)) return `${at} must be one of ${schema.enum.join(", ")}`;
      return null;
    case "number":
    case "integer":
      if (typeof value !== "number" || !Number.isFinite(value)) return `${at} must be a number`;
      if (schema.type === "integer" && !Number.isInteger(value)) return `${at} must be a whole number`;
      if (schema.minimum !== undefined && value < schema.minimum) return `${at} must be at least ${schema.minimum}`;
      if (schema.maximum !== undefined && value > schema.maximum) return `${at} must be at most ${schema.maximum}`;
      if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) return `${at} must be greater than ${schema.exclusiveMinimum}`;
      return null;
    default:
      return null;
  }
}

async function callTool(env: Env, name: string, args: Record<string, unknown>): Promise<unknown> {
  switch (name) {
    case "get_accounts":
      return { accounts: await listAccounts(env) };
    case "get_market_data": {
      if (typeof args.pair !== "string") throw new HttpError(400, "pair is required");
      const { quote, source } = await getQuote(env, checkPair(env, args.pair));
      return { ...quote, source };
    }
    case "get_recent_trades":
      return {
        trades: await recentTrades(
          env,
          typeof args.symbol === "string" ? args.symbol : null,
          typeof args.account_id === "string" ? args.account_id : null,
          typeof args.limit === "number" ? args.limit : null,
        ),
      };
    case "find_similar_patterns":
      return similarPatterns(env, args);
    case "place_order":
      return placeOrder(env, args);
    case "ask_committee": {
      const r = await committee(env, args);
      if (r.status !== 200) throw new HttpError(r.status, `committee quorum not met: ${(r.body.votes as unknown[]).length} of ${r.body.quorum} votes`, r.body);
      return r.body;
    }
    default:
      throw new RpcError(-32602, `unknown tool: ${name}`);
  }
}

// ---------------------------------------------------------------- JSON-RPC

class RpcError extends Error {
  constructor(
    public code: number,
    message: string,
    public data?: unknown,
  ) {
    super(message);
  }
}

type Id = string | number | null;
interface RpcMessage {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: unknown;
  result?: unknown;
  error?: unknown;
}

function rpcError(id: Id, code: number, message: string, data?: unknown) {
  return { jsonrpc: "2.0", id, error: { code, message, ...(data === undefined ? {} : { data }) } };
}

function resources(env: Env) {
  return [
    { uri: "coinswarm://accounts", name: "accounts", title: "Sandbox accounts", mimeType: "application/json" },
    ...pairs(env).map((p) => ({ uri: `coinswarm://market/${p}`, name: `market-${p}`, title: `${p} quote`, mimeType: "application/json" })),
  ];
}

async function readResource(env: Env, uri: string): Promise<unknown> {
  if (uri === "coinswarm://accounts") return { accounts: await listAccounts(env) };
  const m = /^coinswarm:\/\/market\/([A-Z0-9]+-[A-Z0-9]+)$/.exec(uri);
  if (m && pairs(env).includes(m[1])) {
    const { quote, source } = await getQuote(env, m[1]);
    return { ...quote, source };
  }
  throw new RpcError(-32002, `resource not found: ${uri}`, { uri });
}

type Progress = (progress: number, total: number, message: string) => void;

async function dispatch(env: Env, msg: RpcMessage, progress: Progress | null): Promise<unknown> {
  const id = msg.id as Id;
  const params = (msg.params ?? {}) as Record<string, unknown>;
  if (typeof params !== "object" || params === null || Array.isArray(params)) return rpcError(id, -32602, "params must be an object");
  try {
    switch (msg.method) {
      case "ping":
        return { jsonrpc: "2.0", id, result: {} };
      case "tools/list":
        return { jsonrpc: "2.0", id, result: { tools: TOOLS } };
      case "tools/call": {
        const name = params.name;
        if (typeof name !== "string") throw new RpcError(-32602, "params.name must be a tool name");
        const tool = TOOLS.find((t) => t.name === name);
        if (!tool) throw new RpcError(-32602, `unknown tool: ${name}`);
        const args = (params.arguments ?? {}) as Record<string, unknown>;
        const problem = checkArgs(tool.inputSchema as Schema, args);
        if (problem) throw new RpcError(-32602, `invalid arguments for ${name}: ${problem}`);
        progress?.(0, 1, `calling ${name}`);
        try {
          const out = await callTool(env, name, args);
          progress?.(1, 1, `${name} done`);
          return {
            jsonrpc: "2.0",
            id,
            result: { content: [{ type: "text", text: JSON.stringify(out) }], structuredContent: out, isError: false },
          };
        } catch (e) {
          if (e instanceof RpcError) throw e;
          // Tool failures are results with isError, so the model can see them.
          const message = e instanceof HttpError ? e.message : "internal error";
          if (!(e instanceof HttpError)) console.error("tool failed", name, String(e));
          return { jsonrpc: "2.0", id, result: { content: [{ type: "text", text: message }], isError: true } };
        }
      }
      case "resources/list":
        return { jsonrpc: "2.0", id, result: { resources: resources(env) } };
      case "resources/templates/list":
        return {
          jsonrpc: "2.0",
          id,
          result: { resourceTemplates: [{ uriTemplate: "coinswarm://market/{pair}", name: "market", mimeType: "application/json" }] },
        };
      case "resources/read": {
        if (typeof params.uri !== "string") throw new RpcError(-32602, "params.uri must be a string");
        const body = await readResource(env, params.uri);
        return { jsonrpc: "2.0", id, result: { contents: [{ uri: params.uri, mimeType: "application/json", text: JSON.stringify(body) }] } };
      }
      default:
        throw new RpcError(-32601, `method not found: ${String(msg.method)}`);
    }
  } catch (e) {
    if (e instanceof RpcError) return rpcError(id, e.code, e.message, e.data);
    if (e instanceof HttpError) return rpcError(id, -32602, e.message);
    console.error("mcp", String(e));
    return rpcError(id, -32603, "internal error");
  }
}

function isRequest(m: RpcMessage): boolean {
  return typeof m.method === "string" && m.id !== undefined;
}

function validMessage(m: unknown): m is RpcMessage {
  if (m === null || typeof m !== "object" || Array.isArray(m)) return false;
  const r = m as RpcMessage;
  if (r.jsonrpc !== "2.0") return false;
  if (r.id !== undefined && r.id !== null && typeof r.id !== "string" && typeof r.id !== "number") return false;
  return typeof r.method === "string" || r.result !== undefined || r.error !== undefined;
}

function sessionStub(env: Env, id: string): McpSession {
  return env.MCP_SESSIONS.get(env.MCP_SESSIONS.idFromName(id)) as unknown as McpSession;
}

export async function handleMcp(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const sessionId = request.headers.get("mcp-session-id");
  if (request.method === "DELETE") {
    if (!sessionId) return Response.json(rpcError(null, -32000, "Mcp-Session-Id header is required"), { status: 400 });
    const had = await sessionStub(env, sessionId).end();
    return new Response(null, { status: had ? 204 : 404 });
  }
  if (request.method === "GET") {
    return new Response(null, { status: 405, headers: { allow: "POST, DELETE" } });
  }
  if (request.method !== "POST") return new Response(null, { status: 405, headers: { allow: "POST, DELETE" } });
  const accept = request.headers.get("accept") ?? "";
  const ctype = request.headers.get("content-type") ?? "";
  if (!ctype.toLowerCase().startsWith("application/json")) {
    return Response.json(rpcError(null, -32700, "Content-Type must be application/json"), { status: 415 });
  }
  const text = await request.text();
  if (text.length > MAX_BODY) return Response.json(rpcError(null, -32600, `message larger than ${MAX_BODY} bytes`), { status: 413 });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return Response.json(rpcError(null, -32700, "parse error: body is not JSON"), { status: 400 });
  }
  const batch = Array.isArray(parsed);
  const messages = batch ? (parsed as unknown[]) : [parsed];
  if (messages.length === 0 || messages.length > 50) return Response.json(rpcError(null, -32600, "a batch must hold 1 to 50 messages"), { status: 400 });
  if (!messages.every(validMessage)) return Response.json(rpcError(null, -32600, "invalid JSON-RPC 2.0 message"), { status: 400 });
  const msgs = messages as RpcMessage[];

  // initialize: a new session, alone in its message.
  const init = msgs.find((m) => m.method === "initialize");
  if (init) {
    if (msgs.length !== 1) return Response.json(rpcError(null, -32600, "initialize must be sent alone"), { status: 400 });
    if (!isRequest(init)) return Response.json(rpcError(null, -32600, "initialize must be a request with an id"), { status: 400 });
    const p = (init.params ?? {}) as Record<string, unknown>;
    const asked = typeof p.protocolVersion === "string" ? p.protocolVersion : "";
    if (!asked) return Response.json(rpcError(init.id as Id, -32602, "params.protocolVersion is required"));
    const version = PROTOCOL_VERSIONS.includes(asked) ? asked : PROTOCOL_VERSIONS[0];
    const id = crypto.randomUUID();
    await sessionStub(env, id).open(version, p.clientInfo ?? null);
    return Response.json(
      {
        jsonrpc: "2.0",
        id: init.id,
        result: {
          protocolVersion: version,
          capabilities: { tools: { listChanged: false }, resources: { listChanged: false, subscribe: false } },
          serverInfo: SERVER_INFO,
          instructions: "Coinswarm's edge: accounts, market data, trades, similar patterns, sandbox orders and the agent committee.",
        },
      },
      { headers: { "mcp-session-id": id } },
    );
  }

  if (!sessionId) return Response.json(rpcError(null, -32000, "Mcp-Session-Id header is required (send initialize first)"), { status: 400 });
  const first = msgs[0].method;
  const session = await sessionStub(env, sessionId).touch(typeof first === "string" ? first : "");
  if (!session) return Response.json(rpcError(null, -32001, "session not found: initialize a new one"), { status: 404 });
  const version = request.headers.get("mcp-protocol-version");
  if (version !== null && !PROTOCOL_VERSIONS.includes(version)) {
    return Response.json(rpcError(null, -32000, `unsupported MCP-Protocol-Version: ${version}`), { status: 400 });
  }
  if (msgs.length > 1 && msgs.some((m) => m.method === "notifications/initialized")) await sessionStub(env, sessionId).touch("notifications/initialized");

  const requests = msgs.filter(isRequest);
  if (requests.length === 0) return new Response(null, { status: 202 }); // notifications and responses only

  const token = requests.length === 1 ? ((requests[0].params as Record<string, unknown> | undefined)?._meta as Record<string, unknown> | undefined)?.progressToken : undefined;
  const wantsStream = accept.includes("text/event-stream") && requests.length === 1 && requests[0].method === "tools/call" && token !== undefined;
  if (!wantsStream) {
    const answers = [];
    for (const m of requests) answers.push(await dispatch(env, m, null));
    return Response.json(batch ? answers : answers[0], { headers: { "mcp-session-id": sessionId } });
  }
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const enc = new TextEncoder();
  let eventId = 0;
  const send = (data: unknown) => writer.write(enc.encode(`id: ${++eventId}\nevent: message\ndata: ${JSON.stringify(data)}\n\n`));
  const progress: Progress = (p, total, message) => {
    void send({ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: token, progress: p, total, message } });
  };
  const work = (async () => {
    try {
      await send(await dispatch(env, requests[0], progress));
    } finally {
      await writer.close();
    }
  })();
  ctx.waitUntil(work);
  return new Response(readable, {
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache", "mcp-session-id": sessionId },
  });
}
