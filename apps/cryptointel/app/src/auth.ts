// Identities: API keys (bearer, stored as SHA-256, with rotation grace),
// dashboard accounts (PBKDF2 passwords, optional TOTP) and sessions in KV.
import { Env, HttpError, b64, hex, iso, now, num, randomHex, safeEqual, sha256, unb64 } from "./lib";

export type Role = "viewer" | "analyst" | "pro" | "admin";
export const ROLES: Role[] = ["viewer", "analyst", "pro", "admin"];

export interface Principal {
  user_id: string;
  role: Role;
  via: "key" | "session" | "anonymous";
  key_id?: string;
  session_id?: string;
}

// ---------------------------------------------------------------- API keys

export async function issueKey(env: Env, userId: string): Promise<{ id: string; key: string; created_at: string }> {
  const key = `ci_${randomHex(24)}`;
  const id = `key_${randomHex(8)}`;
  const at = iso(now());
  await env.DB.prepare("INSERT INTO api_keys (id, user_id, key_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?)")
    .bind(id, userId, await sha256(key), key.slice(0, 8), at)
    .run();
  return { id, key, created_at: at };
}

/** The principal for a bearer key, or a 401. A rotated key works until its expires_at. */
export async function principalForKey(env: Env, key: string, at: number): Promise<Principal> {
  const row = await env.DB.prepare(
    "SELECT k.id, k.user_id, k.expires_at, u.role FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?",
  )
    .bind(await sha256(key))
    .first<{ id: string; user_id: string; expires_at: string | null; role: Role }>();
  if (!row) throw new HttpError(401, "invalid API key", "Authorization", { "www-authenticate": 'Bearer error="invalid_token"' });
  if (row.expires_at !== null && Date.parse(row.expires_at) <= at) {
    throw new HttpError(401, "API key expired (rotated or revoked)", "Authorization", { "www-authenticate": 'Bearer error="invalid_token"' });
  }
  return { user_id: row.user_id, role: row.role, via: "key", key_id: row.id };
}

/** Replaces a key: the new one is returned once; the old one keeps working for the grace period. */
export async function rotateKey(env: Env, keyId: string, actor: Principal, graceOverride?: unknown): Promise<Record<string, unknown>> {
  const row = await env.DB.prepare("SELECT id, user_id, expires_at FROM api_keys WHERE id = ?").bind(keyId).first<{
    id: string;
    user_id: string;
    expires_at: string | null;
  }>();
  if (!row || (actor.role !== "admin" && row.user_id !== actor.user_id)) throw new HttpError(404, "no such key", "id");
  const at = now();
  if (row.expires_at !== null && Date.parse(row.expires_at) <= at) throw new HttpError(409, "key already expired", "id");
  let grace = num(env.KEY_ROTATION_GRACE_SECONDS, 86400);
  if (graceOverride !== undefined) {
    if (typeof graceOverride !== "number" || !Number.isInteger(graceOverride) || graceOverride < 0 || graceOverride > grace) {
      throw new HttpError(400, `grace_seconds must be an integer from 0 to ${grace}`, "grace_seconds");
    }
    grace = graceOverride;
  }
  const fresh = await issueKey(env, row.user_id);
  const expires = iso(at + grace * 1000);
  await env.DB.prepare("UPDATE api_keys SET expires_at = ?, replaced_by = ? WHERE id = ?").bind(expires, fresh.id, row.id).run();
  return { ...fresh, replaces: row.id, previous_key_expires_at: expires };
}

export async function revokeKey(env: Env, keyId: string, actor: Principal): Promise<void> {
  const row = await env.DB.prepare("SELECT user_id FROM api_keys WHERE id = ?").bind(keyId).first<{ user_id: string }>();
  if (!row || (actor.role !== "admin" && row.user_id !== actor.user_id)) throw new HttpError(404, "no such key", "id");
  await env.DB.prepare("UPDATE api_keys SET expires_at = ? WHERE id = ?").bind(iso(now()), keyId).run();
}

// -------------------------------------------------------------- passwords

const PBKDF2_ITERATIONS = 100_000;

async function derive(password: string, salt: Uint8Array): Promise<string> {
  const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations: PBKDF2_ITERATIONS }, base, 256);
  return hex(bits);
}

export async function createUser(env: Env, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const { email, password, role, totp } = body;
  if (typeof email !== "string" || !/^[^\s@]{1,64}@[^\s@]{1,190}$/.test(email)) throw new HttpError(400, "email must be an email address", "email");
  if (!ROLES.includes(role as Role)) throw new HttpError(400, `role must be one of ${ROLES.join(", ")}`, "role");
  if (password !== undefined && (typeof password !== "string" || password.length < 12 || password.length > 256)) {
    throw new HttpError(400, "password must be 12 to 256 characters", "password");
  }
  if (totp !== undefined && typeof totp !== "boolean") throw new HttpError(400, "totp must be a boolean", "totp");
  const id = `usr_${randomHex(8)}`;
  let hash: string | null = null;
  let salt: string | null = null;
  if (typeof password === "string") {
    const s = crypto.getRandomValues(new Uint8Array(16));
    salt = b64(s);
    hash = await derive(password, s);
  }
  const secret = totp ? base32(crypto.getRandomValues(new Uint8Array(20))) : null;
  const res = await env.DB.prepare(
    "INSERT INTO users (id, email, role, password_hash, password_salt, totp_secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING",
  )
    .bind(id, email.toLowerCase(), role, hash, salt, secret, iso(now()))
    .run();
  if (res.meta.changes === 0) throw new HttpError(409, "a user with this email exists", "email");
  return {
    id,
    email: email.toLowerCase(),
    role,
    ...(secret ? { totp_secret: secret, otpauth_uri: `otpauth://totp/CryptoIntel:${encodeURIComponent(email)}?secret=${secret}&issuer=CryptoIntel` } : {}),
  };
}

// ------------------------------------------------------------------- TOTP

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

export function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

function unbase32(text: string): Uint8Array {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of text.replace(/=+$/, "").toUpperCase()) {
    const i = B32.indexOf(c);
    if (i < 0) continue;
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return new Uint8Array(out);
}

/** RFC 6238 TOTP (HMAC-SHA-1, 30 s steps, 6 digits) for step `counter`. */
export async function totpAt(secret: string, counter: number): Promise<string> {
  const msg = new Uint8Array(8);
  let c = counter;
  for (let i = 7; i >= 0; i--) {
    msg[i] = c & 255;
    c = Math.floor(c / 256);
  }
  const key = await crypto.subtle.importKey("raw", unbase32(secret), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, msg));
  const off = mac[19] & 15;
  const code = (((mac[off] & 127) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3]) % 1_000_000;
  return String(code).padStart(6, "0");
}

/** Accepts the current step and one either side (clock drift). */
async function totpValid(secret: string, code: string, at: number): Promise<boolean> {
  if (!/^\d{6}$/.test(code)) return false;
  const step = Math.floor(at / 30_000);
  for (const s of [step - 1, step, step + 1]) if (safeEqual(await totpAt(secret, s), code)) return true;
  return false;
}

// --------------------------------------------------------------- sessions

interface Session {
  user_id: string;
  role: Role;
  created: number;
  last_seen: number;
}

export const SESSION_COOKIE = "ci_session";

export function sessionCookie(id: string, maxAge: number): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=${maxAge}`;
}

export async function login(env: Env, body: Record<string, unknown>): Promise<{ session_id: string; user: Record<string, unknown>; max_age: number }> {
  const { email, password, totp } = body;
  if (typeof email !== "string") throw new HttpError(400, "email is required", "email");
  if (typeof password !== "string") throw new HttpError(400, "password is required", "password");
  const user = await env.DB.prepare("SELECT id, email, role, password_hash, password_salt, totp_secret FROM users WHERE email = ?")
    .bind(email.toLowerCase())
    .first<{ id: string; email: string; role: Role; password_hash: string | null; password_salt: string | null; totp_secret: string | null }>();
  // The same answer for an unknown user and a wrong password.
  const hash = user?.password_salt ? await derive(password, unb64(user.password_salt)) : await derive(password, new Uint8Array(16));
  if (!user || !user.password_hash || !safeEqual(hash, user.password_hash)) throw new HttpError(401, "invalid email or password");
  const at = now();
  if (user.totp_secret) {
    if (totp === undefined) throw new HttpError(401, "totp code required", "totp");
    if (typeof totp !== "string" || !(await totpValid(user.totp_secret, totp, at))) throw new HttpError(401, "invalid totp code", "totp");
  }
  const id = randomHex(32);
  const session: Session = { user_id: user.id, role: user.role, created: at, last_seen: at };
  const maxAge = num(env.SESSION_IDLE_SECONDS, 1800);
  await env.SESSIONS.put(`session:${id}`, JSON.stringify(session), { expirationTtl: Math.max(60, num(env.SESSION_MAX_SECONDS, 43200)) });
  return { session_id: id, user: { id: user.id, email: user.email, role: user.role, totp: !!user.totp_secret }, max_age: maxAge };
}

/**
 * The session named by the cookie, refreshed (idle timer restarted) when it
 * is past half its idle timeout. Null when absent, idle too long or past its
 * absolute lifetime.
 */
export async function sessionPrincipal(env: Env, request: Request, at: number): Promise<{ principal: Principal; refresh?: string } | null> {
  const cookie = request.headers.get("cookie") ?? "";
  const m = cookie.match(new RegExp(`(?:^|;\\s*)${SESSION_COOKIE}=([0-9a-f]{64})(?:;|$)`));
  if (!m) return null;
  const key = `session:${m[1]}`;
  const raw = await env.SESSIONS.get(key);
  if (!raw) return null;
  const s = JSON.parse(raw) as Session;
  const idle = num(env.SESSION_IDLE_SECONDS, 1800) * 1000;
  const max = num(env.SESSION_MAX_SECONDS, 43200) * 1000;
  if (at - s.last_seen > idle || at - s.created > max) {
    await env.SESSIONS.delete(key);
    return null;
  }
  let refresh: string | undefined;
  if (at - s.last_seen > idle / 2) {
    s.last_seen = at;
    const left = Math.ceil((max - (at - s.created)) / 1000);
    await env.SESSIONS.put(key, JSON.stringify(s), { expirationTtl: Math.max(60, left) });
    refresh = sessionCookie(m[1], Math.min(idle / 1000, left));
  }
  return { principal: { user_id: s.user_id, role: s.role, via: "session", session_id: m[1] }, refresh };
}

export async function logout(env: Env, principal: Principal): Promise<void> {
  if (principal.session_id) await env.SESSIONS.delete(`session:${principal.session_id}`);
}
