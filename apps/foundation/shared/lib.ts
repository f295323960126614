// Shared by the Foundation workers: encodings, hashes, HS256 JWTs (user
// tokens and the short-lived context tokens the gateway hands to services),
// canonical JSON for the audit chain, Standard Webhooks signatures, the
// webhook SSRF guard and the planning phase list.

const enc = new TextEncoder();

export function hex(bytes: ArrayBuffer | Uint8Array): string {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let out = "";
  for (const x of b) out += x.toString(16).padStart(2, "0");
  return out;
}

export function b64(bytes: ArrayBuffer | Uint8Array): string {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

export function unb64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function b64url(bytes: ArrayBuffer | Uint8Array): string {
  return b64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function unb64url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error("not base64url");
  const pad = text.length % 4 === 0 ? "" : "=".repeat(4 - (text.length % 4));
  return unb64(text.replace(/-/g, "+").replace(/_/g, "/") + pad);
}

export async function sha256hex(text: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", enc.encode(text)));
}

export function randomId(prefix: string, bytes = 12): string {
  const b = new Uint8Array(bytes);
  crypto.getRandomValues(b);
  return prefix + "_" + hex(b);
}

export async function hmacKey(secret: Uint8Array | string): Promise<CryptoKey> {
  const raw = typeof secret === "string" ? enc.encode(secret) : secret;
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

export async function hmac(secret: Uint8Array | string, data: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret), enc.encode(data)));
}

/** Constant-time comparison of two strings. */
export function sameString(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

// ------------------------------------------------------------------ JSON

/**
 * Canonical JSON: object keys sorted by code unit, no whitespace, numbers
 * and strings as JSON.stringify writes them; `undefined` members dropped.
 * The audit chain hashes this form, so the same event always hashes alike.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) throw new TypeError("canonical JSON has no " + value);
    if (value === undefined) return "null";
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
  const keys = Object.keys(value as Record<string, unknown>)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalJson((value as Record<string, unknown>)[k])).join(",") + "}";
}

// ------------------------------------------------------------------ JWT

export interface Claims {
  sub: string;
  tid: string;
  role: string;
  iat: number;
  exp: number;
  iss?: string;
  aud?: string;
  cid?: string;
  [k: string]: unknown;
}

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenError";
  }
}

export async function signJwt(claims: Claims, secret: string): Promise<string> {
  const head = b64url(enc.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));
  const body = b64url(enc.encode(JSON.stringify(claims)));
  const sig = b64url(await hmac(secret, head + "." + body));
  return head + "." + body + "." + sig;
}

/**
 * Verifies an HS256 JWT: the header must say HS256 (no `none`, no other
 * algorithm), the signature must match, `exp` must be in the future and
 * `nbf` (when present) in the past, `aud` must match when asked for, and
 * the tenant and subject claims must be present.
 */
export async function verifyJwt(token: string, secret: string, nowSeconds: number, audience?: string): Promise<Claims> {
  const parts = token.split(".");
  if (parts.length !== 3) throw new TokenError("malformed token");
  let header: { alg?: string };
  let claims: Claims;
  try {
    header = JSON.parse(new TextDecoder().decode(unb64url(parts[0])));
    claims = JSON.parse(new TextDecoder().decode(unb64url(parts[1])));
  } catch {
    throw new TokenError("malformed token");
  }
  if (header.alg !== "HS256") throw new TokenError("unsupported token algorithm " + JSON.stringify(header.alg ?? null));
  let sig: Uint8Array;
  try {
    sig = unb64url(parts[2]);
  } catch {
    throw new TokenError("malformed token signature");
  }
  const ok = await crypto.subtle.verify("HMAC", await hmacKey(secret), sig, enc.encode(parts[0] + "." + parts[1]));
  if (!ok) throw new TokenError("invalid token signature");
  if (typeof claims !== "object" || claims === null) throw new TokenError("malformed token claims");
  if (typeof claims.exp !== "number") throw new TokenError("token has no exp");
  if (claims.exp <= nowSeconds) throw new TokenError("token expired");
  if (typeof claims.nbf === "number" && claims.nbf > nowSeconds) throw new TokenError("token not valid yet");
  if (audience !== undefined && claims.aud !== audience) throw new TokenError("token audience is not " + audience);
  if (typeof claims.tid !== "string" || claims.tid === "") throw new TokenError("token has no tenant");
  if (typeof claims.sub !== "string" || claims.sub === "") throw new TokenError("token has no subject");
  return claims;
}

/** The context token services accept from the gateway (`X-Context-Token`). */
export const CONTEXT_AUDIENCE = "foundation-services";
export const CONTEXT_HEADER = "x-context-token";

export interface Context {
  tenant: string;
  user: string;
  role: string;
  correlationId: string;
}

export async function contextFrom(request: Request, secret: string | undefined): Promise<Context> {
  if (!secret) throw new TokenError("CONTEXT_TOKEN_SECRET is not set");
  const token = request.headers.get(CONTEXT_HEADER);
  if (!token) throw new TokenError("missing context token");
  const c = await verifyJwt(token, secret, Math.floor(Date.now() / 1000), CONTEXT_AUDIENCE);
  return { tenant: c.tid, user: c.sub, role: c.role, correlationId: String(c.cid ?? "") };
}

// ------------------------------------------------------------------ webhooks

/** Standard Webhooks: `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>`, key = base64 part of `whsec_...`. */
export async function webhookSignature(secret: string, id: string, timestamp: number, body: string): Promise<string> {
  const key = unb64(secret.startsWith("whsec_") ? secret.slice(6) : secret);
  return "v1," + b64(await hmac(key, `${id}.${timestamp}.${body}`));
}

function ipv4Private(parts: number[]): boolean {
  const [a, b] = parts;
  return (
    a === 0 || a === 10 || a === 127 || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 192 && b === 0) ||
    (a === 198 && (b === 18 || b === 19)) || a >= 224
  );
}

/**
 * Why a webhook URL may not be fetched, or null. Checked when a destination
 * is saved and again right before every delivery: only http(s), no
 * credentials, no loopback/private/link-local/multicast literal addresses
 * (IPv4 in any spelling the URL parser normalises, IPv6 incl. mapped v4),
 * no `localhost`, `.local`, `.internal` or single-label names. `allowHosts`
 * (exact host[:port]) exempts receivers an operator trusts.
 */
export function ssrfRefusal(raw: string, allowHosts: string[], requireHttps: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "not a valid URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "scheme " + url.protocol + " is not allowed";
  if (url.username || url.password) return "URLs with credentials are not allowed";
  const host = url.hostname.toLowerCase().replace(/\.+$/, "");
  if (allowHosts.includes(url.host.toLowerCase()) || allowHosts.includes(host)) return null;
  const refusal = hostRefusal(host);
  if (refusal) return refusal;
  if (requireHttps && url.protocol !== "https:") return "only https URLs are allowed";
  return null;
}

function hostRefusal(host: string): string | null {
  if (host === "localhost" || host.endsWith(".localhost")) return "host " + host + " is loopback";
  if (host.endsWith(".local") || host.endsWith(".internal") || host.endsWith(".lan") || host.endsWith(".home.arpa")) {
    return "host " + host + " is a private name";
  }
  const v4 = host.match(/^(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (v4) {
    if (ipv4Private(v4.slice(1).map(Number))) return "address " + host + " is private, loopback or reserved";
    return null;
  }
  if (host.startsWith("[")) {
    const ip = host.slice(1, -1);
    if (ip === "::" || ip === "::1") return "address " + host + " is loopback or unspecified";
    const mapped = ip.match(/^::ffff:(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
    if (mapped && ipv4Private(mapped.slice(1).map(Number))) return "address " + host + " maps a private IPv4 address";
    const mappedHex = ip.match(/^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/);
    if (mappedHex) {
      const hi = parseInt(mappedHex[1], 16);
      const lo = parseInt(mappedHex[2], 16);
      if (ipv4Private([hi >> 8, hi & 255, lo >> 8, lo & 255])) return "address " + host + " maps a private IPv4 address";
    }
    if (/^f[cd]/.test(ip) || /^fe[89ab]/.test(ip) || /^ff/.test(ip)) return "address " + host + " is private, link-local or multicast";
    return null;
  }
  if (!host.includes(".")) return "single-label host " + host + " is not allowed";
  return null;
}

export function listVar(v: string | undefined): string[] {
  return (v ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
}

// ------------------------------------------------------------------ planning

/**
 * The planning phases, in order. `kill-test` decides GO / KILL / PIVOT;
 * phases named in a run's review list wait for a human review.
 */
export const PHASE_ORDER = [
  "opportunity",
  "customer-intel",
  "market-research",
  "competitive-intel",
  "kill-test",
  "revenue-expansion",
  "strategy",
  "business-model",
  "product-design",
  "gtm-marketing",
  "content-engine",
  "tech-arch",
  "analytics",
  "launch-execution",
  "synthesis",
] as const;

export type Phase = (typeof PHASE_ORDER)[number];

export function json(value: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

// ------------------------------------------------------------------ audit chain

/** The previous hash of a tenant's first audit entry. */
export const GENESIS = "0".repeat(64);

export interface AuditEvent {
  seq: number;
  tenant_id: string;
  event_id: string;
  event_type: string;
  payload: unknown;
  created_at: number;
}

/** An entry's hash: SHA-256 (hex) over the previous hash followed by the event's canonical JSON. */
export async function entryHash(previous: string, e: AuditEvent): Promise<string> {
  return sha256hex(
    previous +
      canonicalJson({ seq: e.seq, tenant_id: e.tenant_id, event_id: e.event_id, event_type: e.event_type, payload: e.payload, created_at: e.created_at }),
  );
}

/** What a checkpoint signs (ECDSA P-256, SHA-256). */
export function checkpointMessage(tenant: string, seq: number, headHash: string): Uint8Array {
  return enc.encode(`${tenant}:${seq}:${headHash}`);
}
