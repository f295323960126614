// Security in the app: HS256 JWTs (when the edge validates JWTs in front
// of the app, this check still holds), rate limits per IP and per user
// (Rate Limiting bindings), request screening for the seed's WAF patterns
// (the edge rules in README.md are the first line) and a Turnstile-style
// human check at a configured verifier URL.
import type { Env } from "./env";
import { AppError } from "./lib";

export interface Caller {
  user: string;
  admin: boolean;
}

function b64urlDecode(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new AppError("unauthorized", "token is not base64url");
  const pad = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  const bin = atob(pad);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const keys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let k = keys.get(secret);
  if (!k) {
    k = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    keys.set(secret, k);
  }
  return k;
}

export async function verifyJwt(env: Env, token: string): Promise<Caller> {
  if (!env.JWT_SECRET || env.JWT_SECRET.length < 32) throw new AppError("unavailable", "JWT_SECRET is not configured (32 characters or more)");
  const parts = token.split(".");
  if (parts.length !== 3) throw new AppError("unauthorized", "malformed token");
  let header: { alg?: string; typ?: string };
  let claims: { sub?: unknown; exp?: unknown; nbf?: unknown; iss?: unknown; aud?: unknown; role?: unknown };
  try {
    header = JSON.parse(new TextDecoder().decode(b64urlDecode(parts[0])));
    claims = JSON.parse(new TextDecoder().decode(b64urlDecode(parts[1])));
  } catch (e) {
    if (e instanceof AppError) throw e;
    throw new AppError("unauthorized", "malformed token");
  }
  if (header.alg !== "HS256") throw new AppError("unauthorized", "token algorithm must be HS256");
  const ok = await crypto.subtle.verify("HMAC", await hmacKey(env.JWT_SECRET), b64urlDecode(parts[2]), new TextEncoder().encode(`${parts[0]}.${parts[1]}`));
  if (!ok) throw new AppError("unauthorized", "bad token signature");
  const nowS = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== "number" || claims.exp <= nowS) throw new AppError("unauthorized", "token expired or without exp");
  if (typeof claims.nbf === "number" && claims.nbf > nowS + 60) throw new AppError("unauthorized", "token not valid yet");
  if (env.JWT_ISSUER && claims.iss !== env.JWT_ISSUER) throw new AppError("unauthorized", "wrong token issuer");
  if (env.JWT_AUDIENCE) {
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.includes(env.JWT_AUDIENCE)) throw new AppError("unauthorized", "wrong token audience");
  }
  if (typeof claims.sub !== "string" || !/^[A-Za-z0-9_.:-]{1,128}$/.test(claims.sub)) throw new AppError("unauthorized", "token sub is not a user id");
  const admins = (env.ADMIN_USERS ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  return { user: claims.sub, admin: claims.role === "admin" && admins.includes(claims.sub) };
}

export async function authenticate(env: Env, request: Request, url: URL): Promise<Caller> {
  const h = request.headers.get("authorization");
  let token = h?.startsWith("Bearer ") ? h.slice(7).trim() : null;
  // Browsers cannot set headers on a WebSocket: the token may ride in the query.
  if (!token && request.headers.get("upgrade")?.toLowerCase() === "websocket") token = url.searchParams.get("token");
  if (!token) throw new AppError("unauthorized", "missing bearer token");
  return verifyJwt(env, token);
}

export function clientIp(request: Request): string {
  return request.headers.get("cf-connecting-ip") ?? "unknown";
}

async function limited(rl: RateLimit | undefined, key: string): Promise<boolean> {
  if (!rl) return false;
  const { success } = await rl.limit({ key });
  return !success;
}

export async function limitIp(env: Env, request: Request): Promise<void> {
  if (await limited(env.RL_IP, clientIp(request))) throw new AppError("rate_limited", "too many requests from this address");
}

export async function limitUser(env: Env, caller: Caller): Promise<void> {
  if (await limited(env.RL_USER, caller.user)) throw new AppError("rate_limited", "too many requests for this user");
}

// The seed's WAF patterns, applied to the path and query (JSON bodies are
// validated field by field instead). The edge's managed rules run first.
const WAF: [RegExp, string][] = [
  [/(\bUNION\b\s+(ALL\s+)?SELECT\b|\bSELECT\b.+\bFROM\b|\bDROP\s+TABLE\b|\bDELETE\b\s+FROM\b)/i, "SQL injection pattern"],
  [/<\s*script\b/i, "script tag"],
  [/\.\.[/\\]/, "path traversal"],
];

export function screen(url: URL): void {
  let target = url.pathname + url.search;
  try {
    target = decodeURIComponent(target);
  } catch {
    throw new AppError("invalid", "malformed percent-encoding in the URL");
  }
  for (const [re, what] of WAF) {
    if (re.test(target)) throw new AppError("forbidden", `request blocked (${what})`);
  }
}

/** The human check: the token is posted to TURNSTILE_VERIFY_URL (Cloudflare's
 * siteverify on a deployment, a double in tests). Unset: not required. */
export async function humanCheck(env: Env, request: Request, token: unknown): Promise<void> {
  if (!env.TURNSTILE_VERIFY_URL) return;
  if (typeof token !== "string" || token.length === 0 || token.length > 2048) throw new AppError("forbidden", "human check token missing");
  const form = new URLSearchParams({ secret: env.TURNSTILE_SECRET ?? "", response: token, remoteip: clientIp(request) });
  let res: Response;
  try {
    res = await fetch(env.TURNSTILE_VERIFY_URL, { method: "POST", body: form });
  } catch (e) {
    throw new AppError("unavailable", `human check verifier unreachable: ${e instanceof Error ? e.message : e}`);
  }
  if (!res.ok) throw new AppError("unavailable", `human check verifier answered ${res.status}`);
  const body = (await res.json()) as { success?: boolean };
  if (body.success !== true) throw new AppError("forbidden", "human check failed");
}
