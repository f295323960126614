// Shared by every Crystal Clear worker: JSON responses, input validation
// (money as decimal numbers stored as integer minor units), idempotent
// writes on D1, the append-only audit log and the event outbox.
//
// Every worker's wrangler.toml sets base_dir = "..", so this file is part
// of each worker's module tree (wrangler bundles it; Hearth resolves it).

export interface Actor {
  subject: string;
  role: string;
}

export interface DomainEvent {
  id: string;
  type: string;
  domain: string;
  data: Record<string, unknown>;
  occurredAt: string;
}

export class HttpError extends Error {
  status: number;
  field?: string;
  extra?: Record<string, unknown>;
  constructor(status: number, message: string, field?: string, extra?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.field = field;
    this.extra = extra;
  }
}

export function json(data: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(data), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

export function errorResponse(err: unknown): Response {
  if (err instanceof HttpError) {
    const body: Record<string, unknown> = { error: err.message };
    if (err.field) body.field = err.field;
    if (err.extra) Object.assign(body, err.extra);
    return json(body, err.status);
  }
  console.error("unhandled error", err instanceof Error ? err.stack ?? err.message : String(err));
  return json({ error: "internal error" }, 500);
}

// ---------------------------------------------------------------- routing

export type Handler<E> = (
  req: Request,
  env: E,
  ctx: ExecutionContext,
  params: Record<string, string>,
) => Promise<Response> | Response;

interface Route<E> {
  method: string;
  parts: string[];
  handler: Handler<E>;
}

/** A small path router: `:name` segments become params. */
export class Router<E> {
  private routes: Route<E>[] = [];

  on(method: string, path: string, handler: Handler<E>): this {
    this.routes.push({ method, parts: path.split("/").filter(Boolean), handler });
    return this;
  }

  async handle(req: Request, env: E, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(req.url);
    const segs = url.pathname.split("/").filter(Boolean);
    let pathMatched = false;
    for (const r of this.routes) {
      const params = matchParts(r.parts, segs);
      if (!params) continue;
      pathMatched = true;
      if (r.method !== req.method) continue;
      try {
        return await r.handler(req, env, ctx, params);
      } catch (err) {
        return errorResponse(err);
      }
    }
    if (pathMatched) return json({ error: `method ${req.method} not allowed` }, 405);
    return json({ error: `no route for ${req.method} ${url.pathname}` }, 404);
  }
}

function matchParts(parts: string[], segs: string[]): Record<string, string> | null {
  if (parts.length !== segs.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    if (parts[i].startsWith(":")) {
      let v: string;
      try {
        v = decodeURIComponent(segs[i]);
      } catch {
        return null;
      }
      params[parts[i].slice(1)] = v;
    } else if (parts[i] !== segs[i]) {
      return null;
    }
  }
  return params;
}

// ------------------------------------------------------------- validation

const MAX_BODY_BYTES = 64 * 1024;

/** The request body as a JSON object, or a 400 saying what is wrong. */
export async function readBody(req: Request): Promise<{ body: Record<string, unknown>; raw: string }> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw new HttpError(413, `body: larger than ${MAX_BODY_BYTES} bytes`, "body");
  const raw = await req.text();
  if (raw.length > MAX_BODY_BYTES) throw new HttpError(413, `body: larger than ${MAX_BODY_BYTES} bytes`, "body");
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    throw new HttpError(400, "body: not valid JSON", "body");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, "body: must be a JSON object", "body");
  }
  return { body: body as Record<string, unknown>, raw };
}

/** Largest amount accepted anywhere: 10^12 minor units (ten billion). */
export const MAX_MINOR = 1_000_000_000_000;

/**
 * A positive decimal amount with at most two decimal places, as integer
 * minor units. Anything else is a 400 naming the field.
 */
export function money(body: Record<string, unknown>, field: string): number {
  const v = body[field];
  if (v === undefined || v === null) throw new HttpError(400, `${field}: required`, field);
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new HttpError(400, `${field}: must be a number`, field);
  }
  if (v <= 0) throw new HttpError(400, `${field}: must be greater than 0`, field);
  const minor = Math.round(v * 100);
  if (Math.abs(minor / 100 - v) > 1e-9 || !/^\d+(\.\d{1,2})?$/.test(String(v))) {
    throw new HttpError(400, `${field}: at most two decimal places`, field);
  }
  if (minor > MAX_MINOR) throw new HttpError(400, `${field}: at most ${MAX_MINOR / 100}`, field);
  return minor;
}

/** Minor units back to a decimal number for JSON. */
export function decimal(minor: number): number {
  return Math.round(minor) / 100;
}

export function str(
  body: Record<string, unknown>,
  field: string,
  opts: { max?: number; min?: number; pattern?: RegExp; optional?: boolean } = {},
): string {
  const v = body[field];
  if (v === undefined || v === null) {
    if (opts.optional) return "";
    throw new HttpError(400, `${field}: required`, field);
  }
  if (typeof v !== "string") throw new HttpError(400, `${field}: must be a string`, field);
  const max = opts.max ?? 128;
  const min = opts.min ?? 1;
  if (v.length < min) throw new HttpError(400, `${field}: at least ${min} characters`, field);
  if (v.length > max) throw new HttpError(400, `${field}: at most ${max} characters`, field);
  if (opts.pattern && !opts.pattern.test(v)) {
    throw new HttpError(400, `${field}: has characters outside ${opts.pattern.source}`, field);
  }
  return v;
}

export const ID_PATTERN = /^[A-Za-z0-9_.:-]+$/;

export function id(body: Record<string, unknown>, field: string): string {
  return str(body, field, { max: 64, pattern: ID_PATTERN });
}

export function currency(body: Record<string, unknown>, field = "currency"): string {
  const v = str(body, field, { max: 3, min: 3 });
  if (!/^[A-Z]{3}$/.test(v)) throw new HttpError(400, `${field}: must be an ISO 4217 code such as USD`, field);
  return v;
}

export function oneOf<T extends string>(body: Record<string, unknown>, field: string, values: readonly T[]): T {
  const v = body[field];
  if (v === undefined || v === null) throw new HttpError(400, `${field}: required`, field);
  if (typeof v !== "string" || !(values as readonly string[]).includes(v)) {
    throw new HttpError(400, `${field}: must be one of ${values.join(", ")}`, field);
  }
  return v as T;
}

export function pathId(value: string, name: string): string {
  if (value.length === 0 || value.length > 64 || !ID_PATTERN.test(value)) {
    throw new HttpError(400, `${name}: must be 1-64 characters of letters, digits and _.:-`, name);
  }
  return value;
}

// ---------------------------------------------------------------- identity

/**
 * Who is calling, as the router established it from the bearer token. Domain
 * workers are reached only through service bindings (workers_dev = false,
 * no routes), so these headers come from the router, which strips any a
 * client sends.
 */
export function actor(req: Request): Actor {
  return {
    subject: req.headers.get("x-cc-subject") ?? "anonymous",
    role: req.headers.get("x-cc-role") ?? "none",
  };
}

export function newId(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().replace(/-/g, "")}`;
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// ------------------------------------------------------------- idempotency

export interface Stored {
  status: number;
  body: unknown;
}

/**
 * How long an answer is kept for its Idempotency-Key: 24 hours, as payment
 * APIs commonly keep them. After that the key is free again: a retry is
 * treated as a new request.
 */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/** Records created before this instant (ISO 8601) have expired. */
export function idempotencyCutoff(now = Date.now()): string {
  return new Date(now - IDEMPOTENCY_TTL_MS).toISOString();
}

/** The Idempotency-Key header, required on every mutating request. */
export function idempotencyKey(req: Request): string {
  const key = req.headers.get("idempotency-key");
  if (key === null || key === "") throw new HttpError(400, "Idempotency-Key: header required on mutating requests", "Idempotency-Key");
  if (key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
    throw new HttpError(400, "Idempotency-Key: 1-255 visible ASCII characters", "Idempotency-Key");
  }
  return key;
}

export function replay(stored: Stored): Response {
  return json(stored.body, stored.status, { "idempotent-replayed": "true" });
}

/**
 * Looks up an earlier answer for this key. A key reused with a different
 * request is a 422, as the IETF Idempotency-Key draft says.
 */
export async function findStored(db: D1Database, key: string, fingerprint: string): Promise<Stored | null> {
  const row = await db
    .prepare("SELECT fingerprint, status, body FROM idempotency WHERE key = ? AND created_at >= ?")
    .bind(key, idempotencyCutoff())
    .first<{ fingerprint: string; status: number; body: string }>();
  if (!row) return null;
  if (row.fingerprint !== fingerprint) {
    throw new HttpError(422, "Idempotency-Key: already used with a different request", "Idempotency-Key");
  }
  return { status: row.status, body: JSON.parse(row.body) };
}

/**
 * Stores an answer under its key. An expired record of the key is removed
 * first; an unexpired one makes the insert fail, which fails the batch, so
 * a concurrent request with the same key never commits its change twice.
 */
export function storeStmts(db: D1Database, key: string, fingerprint: string, answer: Stored): D1PreparedStatement[] {
  return [
    expiredKeyStmt(db, key),
    db
      .prepare("INSERT INTO idempotency (key, fingerprint, status, body, created_at) VALUES (?, ?, ?, ?, ?)")
      .bind(key, fingerprint, answer.status, JSON.stringify(answer.body), new Date().toISOString()),
  ];
}

/** Removes the key's record if it has expired (a no-op otherwise). */
export function expiredKeyStmt(db: D1Database, key: string): D1PreparedStatement {
  return db.prepare("DELETE FROM idempotency WHERE key = ? AND created_at < ?").bind(key, idempotencyCutoff());
}

/** Deletes every expired record; each worker's cron trigger runs it. */
export async function purgeIdempotency(db: D1Database): Promise<number> {
  const r = await db.prepare("DELETE FROM idempotency WHERE created_at < ?").bind(idempotencyCutoff()).run();
  return r.meta?.changes ?? 0;
}

/**
 * Runs a write idempotently: `work` returns the answer and the statements
 * that make it true; they commit in one D1 batch with the stored answer, so
 * either both exist or neither. A concurrent request with the same key
 * loses the insert race and replays the winner's answer.
 */
export async function idempotent(
  db: D1Database,
  req: Request,
  scope: string,
  raw: string,
  work: () => Promise<{ answer: Stored; statements: D1PreparedStatement[] }>,
): Promise<Response> {
  const key = `${scope}:${idempotencyKey(req)}`;
  const fingerprint = await sha256Hex(`${req.method} ${new URL(req.url).pathname}\n${raw}`);
  const earlier = await findStored(db, key, fingerprint);
  if (earlier) return replay(earlier);
  const { answer, statements } = await work();
  try {
    await db.batch([...statements, ...storeStmts(db, key, fingerprint, answer)]);
  } catch (err) {
    const again = await findStored(db, key, fingerprint);
    if (again) return replay(again);
    throw err;
  }
  return json(answer.body, answer.status);
}

// ------------------------------------------------------------------- audit

export function auditStmt(
  db: D1Database,
  who: Actor,
  action: string,
  entity: string,
  entityId: string,
  detail: unknown,
): D1PreparedStatement {
  return db
    .prepare(
      "INSERT INTO audit_log (at, subject, role, action, entity, entity_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(new Date().toISOString(), who.subject, who.role, action, entity, entityId, JSON.stringify(detail));
}

// ------------------------------------------------------------------ events

export function domainEvent(type: string, domain: string, data: Record<string, unknown>, eventId?: string): DomainEvent {
  return { id: eventId ?? newId("evt"), type, domain, data, occurredAt: new Date().toISOString() };
}

/** Writes the event to the outbox in the same batch as the change it reports. */
export function outboxStmt(db: D1Database, event: DomainEvent): D1PreparedStatement {
  return db
    .prepare("INSERT INTO outbox (id, body, created_at, sent_at) VALUES (?, ?, ?, NULL)")
    .bind(event.id, JSON.stringify(event), event.occurredAt);
}

/**
 * Sends unsent outbox rows to the event queue and marks them sent. Runs
 * after each commit and from the cron trigger, so an event whose send was
 * cut short by a crash goes out later (at least once; the event id lets
 * consumers drop a repeat).
 */
export async function flushOutbox(db: D1Database, queue: Queue): Promise<number> {
  const rows = await db
    .prepare("SELECT id, body FROM outbox WHERE sent_at IS NULL ORDER BY created_at LIMIT 100")
    .all<{ id: string; body: string }>();
  const pending = rows.results ?? [];
  if (pending.length === 0) return 0;
  await queue.sendBatch(pending.map((r) => ({ body: JSON.parse(r.body) })));
  const now = new Date().toISOString();
  await db.batch(pending.map((r) => db.prepare("UPDATE outbox SET sent_at = ? WHERE id = ?").bind(now, r.id)));
  return pending.length;
}

export async function health(db: D1Database, domain: string): Promise<Response> {
  const started = Date.now();
  await db.prepare("SELECT 1").first();
  const unsent = await db.prepare("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL").first<{ n: number }>();
  return json({
    domain,
    status: "healthy",
    database: { ok: true, latencyMs: Date.now() - started },
    outbox: { unsent: unsent?.n ?? 0 },
  });
}
