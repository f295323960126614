// The queues area's consumer. Every delivery is recorded in KV under
// "<scenario>:<tag>:<attempts>" (or "<queue>:untagged:<body>" for a body
// that carries no tag) so a scenario can poll for what its messages saw.
// What the handler does with a message is decided by its scenario.
import { describe } from "../lib/transcript.js";

// The scenario and tag a body carries: "scenario|tag|..." for text and
// bytes, {s, tag} for objects, a Map with "s" and "tag" entries.
function route(body) {
  if (typeof body === "string") {
    const [s, tag] = body.split("|");
    return tag === undefined ? null : { s, tag };
  }
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
    const view = body instanceof ArrayBuffer ? new Uint8Array(body) : new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    const [s, tag] = new TextDecoder().decode(view.subarray(0, 64)).split("|");
    return tag === undefined ? null : { s, tag };
  }
  if (body instanceof Map) return body.has("tag") ? { s: body.get("s"), tag: body.get("tag") } : null;
  if (body !== null && typeof body === "object" && typeof body.tag === "string") return { s: body.s, tag: body.tag };
  return null;
}

// Per-message plans: called with (message, batch); the default acks nothing
// explicitly (the batch is acknowledged when the handler returns).
const plans = {
  // Retried once with an explicit zero delay, acknowledged on the second attempt.
  "retry-ack:once": (m) => (m.attempts === 1 ? m.retry({ delaySeconds: 0 }) : m.ack()),
  "retry-ack:acked": (m) => m.ack(),
  // Always retried: exhausts max_retries and moves to the dead-letter queue.
  "dead-letter:doomed": (m) => m.retry({ delaySeconds: 0 }),
  "dead-letter:fine": (m) => m.ack(),
};

// Per-batch plans, run once per batch holding a message of the scenario,
// after the per-message plans. `ms` are that scenario's messages.
const batchPlans = {
  // An explicit ack() before retryAll(), retry() after ackAll(), ...
  "precedence-ack-then-retryall": (batch, ms) => {
    if (ms[0].attempts !== 1) return;
    ms.find((m) => route(m.body).tag === "acked")?.ack();
    batch.retryAll({ delaySeconds: 0 });
    ms.find((m) => route(m.body).tag === "late-ack")?.ack();
  },
  "precedence-ackall-then-retry": (batch, ms) => {
    if (ms[0].attempts !== 1) return;
    ms.find((m) => route(m.body).tag === "retried")?.retry({ delaySeconds: 0 });
    batch.ackAll();
    ms.find((m) => route(m.body).tag === "late-retry")?.retry({ delaySeconds: 0 });
    batch.retryAll({ delaySeconds: 0 });
  },
  "precedence-retry-then-ack": (batch, ms) => {
    if (ms[0].attempts !== 1) return;
    for (const m of ms) {
      m.retry({ delaySeconds: 0 });
      m.ack();
    }
  },
  "retry-all": (batch, ms) => {
    if (ms[0].attempts === 1) batch.retryAll({ delaySeconds: 0 });
  },
  // Throws on the first attempt: every message of the batch comes back.
  throws: (batch, ms) => {
    if (ms[0].attempts === 1) throw new Error("throws: first attempt fails");
  },
  "retry-errors": (batch, ms) => {
    if (ms[0].attempts !== 1) return;
    const out = {};
    const tryIt = (label, fn) => {
      try {
        fn();
        out[label] = "ok";
      } catch (e) {
        out[label] = { name: e.name, message: e.message };
      }
    };
    tryIt("retry string", () => ms[0].retry({ delaySeconds: "5" }));
    tryIt("retry negative", () => ms[0].retry({ delaySeconds: -1 }));
    tryIt("retry too long", () => ms[0].retry({ delaySeconds: 86401 }));
    tryIt("retry fraction", () => ms[0].retry({ delaySeconds: 1.5 }));
    tryIt("retry NaN", () => ms[0].retry({ delaySeconds: NaN }));
    tryIt("retry outside int32", () => ms[0].retry({ delaySeconds: 2 ** 31 }));
    tryIt("retryAll negative", () => batch.retryAll({ delaySeconds: -1 }));
    tryIt("retryAll outside int32", () => batch.retryAll({ delaySeconds: -(2 ** 31) - 1 }));
    // The last delay given wins: the message comes back at once.
    tryIt("retry zero", () => ms[0].retry({ delaySeconds: 0 }));
    return out;
  },
};

// Large bodies are recorded by size only.
function summary(body) {
  if (typeof body === "string" && body.length > 100) return `<string of ${body.length} chars>`;
  if (body instanceof ArrayBuffer && body.byteLength > 100) return `<ArrayBuffer of ${body.byteLength} bytes>`;
  if (ArrayBuffer.isView(body) && body.byteLength > 100) return `<${body.constructor.name} of ${body.byteLength} bytes>`;
  return describe(body);
}

export async function queue(batch, env, ctx) {
  const groups = new Map();
  const records = [];
  for (const m of batch.messages) {
    const r = route(m.body);
    const ts = m.timestamp;
    const seen = {
      queue: batch.queue,
      body: summary(m.body),
      attempts: m.attempts,
      id: m.id,
      idShape: typeof m.id === "string" && /^[0-9a-f]{32}$/.test(m.id),
      timestampIsDate: ts instanceof Date,
      timestampMs: ts instanceof Date ? ts.getTime() : null,
      frozen: Object.isFrozen(batch.messages),
    };
    if (r === null) {
      records.push([`${batch.queue}:untagged:${JSON.stringify(seen.body)}`, seen]);
      continue;
    }
    records.push([`${r.s}:${r.tag}:${batch.queue === "conformance-dlq" ? "dlq" : m.attempts}`, seen]);
    if (batch.queue !== "conformance-main") continue;
    plans[`${r.s}:${r.tag}`]?.(m, batch);
    if (!groups.has(r.s)) groups.set(r.s, []);
    groups.get(r.s).push(m);
  }
  let thrown = null;
  for (const [s, ms] of groups) {
    try {
      const extra = batchPlans[s]?.(batch, ms);
      if (extra !== undefined) records.push([`${s}:observed`, extra]);
    } catch (e) {
      thrown = e;
    }
  }
  await Promise.all(records.map(([k, v]) => env.KV.put(k, JSON.stringify(v))));
  if (thrown) throw thrown;
}

// Polls KV until at least `count` records under `prefix` exist, then keeps
// polling until none has appeared for `quietMs` (so a redelivery that should
// not happen has had its chance), all within `deadlineMs`. Returns the
// records by key with the scenario prefix removed.
export async function records(env, prefix, count, { quietMs = 2500, deadlineMs = 11000 } = {}) {
  const start = Date.now();
  let keys = [];
  let changed = Date.now();
  while (Date.now() - start < deadlineMs) {
    const now = (await env.KV.list({ prefix })).keys.map((k) => k.name);
    if (now.length !== keys.length) changed = Date.now();
    keys = now;
    if (keys.length >= count && Date.now() - changed >= quietMs) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const out = {};
  for (const k of keys) out[k.slice(prefix.length)] = JSON.parse(await env.KV.get(k));
  return out;
}
