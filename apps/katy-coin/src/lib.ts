// Shared helpers: typed application errors, JSON answers, input checks,
// hashing and the clock.

export type Kind = "invalid" | "unauthorized" | "forbidden" | "not_found" | "conflict" | "insufficient_funds" | "rate_limited" | "unavailable";

const STATUS: Record<Kind, number> = {
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  insufficient_funds: 409,
  rate_limited: 429,
  unavailable: 503,
};

/** An error with a kind that maps to an HTTP status. Its message starts
 * with the kind so it keeps its meaning across Durable Object RPC, where
 * only the message survives. */
export class AppError extends Error {
  kind: Kind;
  constructor(kind: Kind, message: string) {
    super(`${kind}: ${message}`);
    this.kind = kind;
  }
}

export function kindOf(e: unknown): Kind | null {
  const msg = e instanceof Error ? e.message : String(e);
  const k = msg.split(":")[0] as Kind;
  return k in STATUS ? k : null;
}

export function json(value: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export function errorResponse(e: unknown): Response {
  const kind = kindOf(e);
  if (kind) {
    const msg = (e as Error).message.slice(kind.length + 2);
    return json({ error: kind, message: msg }, STATUS[kind]);
  }
  console.error("internal error", e instanceof Error ? e.stack ?? e.message : String(e));
  return json({ error: "internal", message: "internal error" }, 500);
}

export const MAX_JSON_BYTES = 64 * 1024;

export async function readJson(request: Request): Promise<Record<string, unknown>> {
  const type = request.headers.get("content-type") ?? "";
  if (!type.toLowerCase().startsWith("application/json")) {
    throw new AppError("invalid", "content-type must be application/json");
  }
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_JSON_BYTES) throw new AppError("invalid", `body larger than ${MAX_JSON_BYTES} bytes`);
  const text = await request.text();
  if (text.length > MAX_JSON_BYTES) throw new AppError("invalid", `body larger than ${MAX_JSON_BYTES} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new AppError("invalid", "body is not valid JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new AppError("invalid", "body must be a JSON object");
  return v as Record<string, unknown>;
}

const ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

export function idField(obj: Record<string, unknown>, name: string, optional = false): string {
  const v = obj[name];
  if (v === undefined && optional) return "";
  if (typeof v !== "string" || !ID_RE.test(v)) {
    throw new AppError("invalid", `${name} must be 1-128 characters of letters, digits, '_', '.', ':' or '-'`);
  }
  return v;
}

export function checkId(value: string, name: string): string {
  if (!ID_RE.test(value)) throw new AppError("invalid", `${name} must be 1-128 characters of letters, digits, '_', '.', ':' or '-'`);
  return value;
}

/** A positive amount in integer minor units, at most 2^53-1. */
export function amountField(obj: Record<string, unknown>, name: string): number {
  const v = obj[name];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
    throw new AppError("invalid", `${name} must be a positive integer number of minor units`);
  }
  return v;
}

export function textField(obj: Record<string, unknown>, name: string, max: number, optional = false): string {
  const v = obj[name];
  if (v === undefined && optional) return "";
  if (typeof v !== "string" || v.length === 0 || v.length > max) {
    throw new AppError("invalid", `${name} must be a string of 1 to ${max} characters`);
  }
  return v;
}

export function currencies(env: { CURRENCIES?: string }): string[] {
  return (env.CURRENCIES ?? "KATY,KC").split(",").map((s) => s.trim()).filter(Boolean);
}

export function currencyField(env: { CURRENCIES?: string }, obj: Record<string, unknown>, name = "currency"): string {
  const v = obj[name] ?? "KATY";
  const list = currencies(env);
  if (typeof v !== "string" || !list.includes(v)) {
    throw new AppError("invalid", `${name} must be one of ${list.join(", ")}`);
  }
  return v;
}

export function intVar(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isFinite(n) && value !== undefined && value !== "" ? n : fallback;
}

export async function sha256hex(data: string | ArrayBuffer | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export const now = () => Date.now();

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
