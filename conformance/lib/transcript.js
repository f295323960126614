// Shared by every scenario. A scenario records what it observes as plain
// JSON; anything that legitimately differs between two correct runs
// (timings, dates, opaque ids) is masked here, inside the worker, so the
// reference runtime and Hearth mask with the very same code.

// Keys whose values are nondeterministic or opaque. The value is replaced by
// "<masked TYPE>" so a change of type or presence still shows.
const MASKED_KEYS = new Set([
  "duration",
  "sql_duration_ms",
  "served_by",
  "size_after",
  "uploaded",
  "version",
  "uploadId",
  "cursor",
  "bookmark",
]);

// Keys that say where or how fast a request was served; whether they are
// present at all depends on the deployment, so they are dropped.
const DROPPED_KEYS = new Set(["timings", "served_by_region", "served_by_primary", "served_by_colo"]);

export function masked(value) {
  if (value === null) return "<masked null>";
  if (value instanceof Date) return "<masked date>";
  return `<masked ${typeof value}>`;
}

function hex(bytes) {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

// Turns any observed value into JSON that says what it was.
export function describe(value, seen = new Set()) {
  if (value === undefined) return "<undefined>";
  if (value === null) return null;
  const type = typeof value;
  if (type === "string" || type === "boolean") return value;
  if (type === "number") {
    if (Number.isNaN(value)) return "<NaN>";
    if (!Number.isFinite(value)) return value > 0 ? "<Infinity>" : "<-Infinity>";
    if (Object.is(value, -0)) return "<-0>";
    return value;
  }
  if (type === "bigint") return `<bigint ${value}>`;
  if (type === "function") return "<function>";
  if (type === "symbol") return `<symbol ${value.description}>`;
  if (seen.has(value)) return "<cycle>";
  seen.add(value);
  try {
    if (value instanceof Error) return error(value);
    if (value instanceof ArrayBuffer) return { $arrayBuffer: hex(new Uint8Array(value)) };
    if (ArrayBuffer.isView(value)) {
      const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      return { [`$${value.constructor.name}`]: hex(bytes) };
    }
    if (value instanceof Date) return { $date: Number.isNaN(value.getTime()) ? "<invalid>" : value.toISOString() };
    if (value instanceof Map) {
      return { $map: [...value.entries()].map(([k, v]) => [describe(k, seen), describe(v, seen)]) };
    }
    if (value instanceof Set) return { $set: [...value].map((v) => describe(v, seen)) };
    if (typeof Headers !== "undefined" && value instanceof Headers) return { $headers: [...value] };
    if (value instanceof RegExp) return { $regexp: String(value) };
    if (Array.isArray(value)) return value.map((v) => describe(v, seen));
    const out = {};
    for (const key of Object.keys(value)) {
      if (DROPPED_KEYS.has(key)) continue;
      const v = value[key];
      out[key] = MASKED_KEYS.has(key) && v !== undefined ? masked(v) : describe(v, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

// An error as a transcript entry: its class name and message only (stacks
// and engine-specific extras are not part of the contract).
export function error(e) {
  if (e instanceof Error || (e && typeof e === "object" && "message" in e)) {
    return { name: String(e.name), message: String(e.message) };
  }
  return { thrown: describe(e) };
}

// Runs one step and records either its value or what it threw.
export async function attempt(fn) {
  try {
    return { ok: describe(await fn()) };
  } catch (e) {
    return { threw: error(e) };
  }
}

// A transcript: an ordered list of named steps.
// `omit` names keys left out of every recorded value (a scenario about one
// thing need not trip over a field compared elsewhere).
export class Transcript {
  #omit;

  constructor({ omit = [] } = {}) {
    this.steps = [];
    this.#omit = new Set(omit);
  }

  #strip(v) {
    if (this.#omit.size === 0 || v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) return v.map((x) => this.#strip(x));
    const out = {};
    for (const [k, x] of Object.entries(v)) if (!this.#omit.has(k)) out[k] = this.#strip(x);
    return out;
  }

  // Records the outcome of `fn` (value or thrown error) under `label`.
  async step(label, fn) {
    const outcome = await attempt(fn);
    this.steps.push(this.#strip({ step: label, ...outcome }));
    return outcome.ok;
  }

  // Records a value observed directly.
  note(label, value) {
    this.steps.push(this.#strip({ step: label, ok: describe(value) }));
  }

  toJSON() {
    return { steps: this.steps };
  }
}

// The fields of a Response worth comparing; the body is read as text.
export async function response(res) {
  return {
    status: res.status,
    statusText: res.statusText,
    headers: [...res.headers],
    body: await res.text(),
  };
}

// An R2Object / R2ObjectBody reduced to its documented fields.
export function r2object(o) {
  if (o === null || o === undefined) return o === null ? null : "<undefined>";
  const out = {
    key: o.key,
    size: o.size,
    etag: o.etag,
    httpEtag: o.httpEtag,
    uploaded: o.uploaded instanceof Date ? "<masked date>" : describe(o.uploaded),
    version: typeof o.version === "string" && o.version.length > 0 ? "<masked string>" : describe(o.version),
    httpMetadata: describe(o.httpMetadata),
    customMetadata: describe(o.customMetadata),
    range: describe(o.range),
    hasBody: "body" in o,
  };
  if (o.checksums) out.checksums = describe(o.checksums.toJSON ? o.checksums.toJSON() : o.checksums);
  return out;
}

// Serialises with sorted keys so a transcript reads the same on every run.
export function stableStringify(value) {
  return JSON.stringify(sortKeys(value), null, 2);
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    const out = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys(value[k]);
    return out;
  }
  return value;
}

// The area worker: `GET /` lists the scenarios, `GET|POST /<name>` runs one.
// `handlers` adds the area's other event handlers (queue, scheduled).
export function areaWorker(scenarios, handlers = {}) {
  return {
    ...handlers,
    async fetch(request, env, ctx) {
      const name = decodeURIComponent(new URL(request.url).pathname.slice(1));
      if (name === "") {
        return new Response(stableStringify(Object.keys(scenarios).sort()), {
          headers: { "content-type": "application/json" },
        });
      }
      const scenario = scenarios[name];
      if (!scenario) return new Response(`no scenario ${name}`, { status: 404 });
      let result;
      try {
        result = describe(await scenario({ env, ctx, request }));
      } catch (e) {
        result = { scenario_threw: error(e) };
      }
      return new Response(stableStringify(result), {
        headers: { "content-type": "application/json" },
      });
    },
  };
}
