// HS256 JWT bearer tokens: the header must say HS256 (nothing else is
// accepted, "none" least of all), the signature must verify under
// JWT_SECRET, and the claims must name a subject, a known role and an
// expiry in the future.

export const ROLES = ["operator", "service", "read-only"] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  subject: string;
  role: Role;
}

export class AuthError extends Error {}

function b64urlBytes(part: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(part)) throw new AuthError("token: not base64url");
  const padded = part.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((part.length + 3) % 4);
  const s = atob(padded);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function b64urlJson(part: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(b64urlBytes(part)));
  } catch (err) {
    if (err instanceof AuthError) throw err;
    throw new AuthError("token: a part is not JSON");
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new AuthError("token: a part is not a JSON object");
  return v as Record<string, unknown>;
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

export async function verifyBearer(header: string | null, secret: string | undefined, nowMs: number): Promise<Principal> {
  if (!secret || secret.length < 32) throw new Error("JWT_SECRET is not set or shorter than 32 characters");
  if (!header) throw new AuthError("Authorization: bearer token required");
  const m = /^Bearer ([^\s]+)$/i.exec(header);
  if (!m) throw new AuthError("Authorization: expected 'Bearer <token>'");
  return verifyToken(m[1], secret, nowMs);
}

export async function verifyToken(token: string, secret: string, nowMs: number): Promise<Principal> {
  if (token.length > 4096) throw new AuthError("token: too long");
  const parts = token.split(".");
  if (parts.length !== 3) throw new AuthError("token: not a JWS compact token");
  const header = b64urlJson(parts[0]);
  if (header.alg !== "HS256") throw new AuthError("token: alg must be HS256");
  const ok = await crypto.subtle.verify(
    "HMAC", await hmacKey(secret), b64urlBytes(parts[2]), new TextEncoder().encode(`${parts[0]}.${parts[1]}`),
  );
  if (!ok) throw new AuthError("token: bad signature");
  const claims = b64urlJson(parts[1]);
  const now = nowMs / 1000;
  if (typeof claims.exp !== "number") throw new AuthError("token: exp claim required");
  if (claims.exp <= now) throw new AuthError("token: expired");
  if (claims.nbf !== undefined && (typeof claims.nbf !== "number" || claims.nbf > now + 30)) throw new AuthError("token: not valid yet");
  if (typeof claims.sub !== "string" || claims.sub.length === 0 || claims.sub.length > 128) throw new AuthError("token: sub claim required");
  if (typeof claims.role !== "string" || !(ROLES as readonly string[]).includes(claims.role)) {
    throw new AuthError(`token: role claim must be one of ${ROLES.join(", ")}`);
  }
  return { subject: claims.sub, role: claims.role as Role };
}
