// Non-HTTP events: `scheduled(controller, env, ctx)`, `queue(batch, env,
// ctx)`, and any kind registered in `kinds`. Evaluated once per isolate as a
// function of the native `host` object and the structured-clone codec; the
// host calls `dispatch(rid, kind, payloadJson, buffers)` and receives the
// outcome as a JSON string through `host.respond`.
(function (host, codec) {
  "use strict";
  let handler = null;
  let isClass = false;
  let env = {};

  function install(def, e) {
    env = e;
    if (typeof def === "function" && def.prototype) {
      handler = def;
      isClass = true;
    } else if (def !== null && typeof def === "object") {
      handler = def;
    }
  }

  // `name: message` plus the worker's own stack frames.
  function describe(e) {
    if (e !== null && typeof e === "object") {
      const name = e.name ? String(e.name) : "Error";
      const message = e.message === undefined ? "" : String(e.message);
      const head = name + ": " + message;
      const frames = typeof e.stack === "string"
        ? e.stack.split("\n").filter((l) => l.trim() !== "" && !l.includes("hearth:internal")).join("\n")
        : "";
      return { message, stack: frames ? head + "\n" + frames : head };
    }
    const text = String(e);
    return { message: text, stack: "Uncaught " + text };
  }

  // ctx for an event: waitUntil promises are awaited before the outcome is
  // reported, and the first rejection among them is part of the outcome.
  class ExecutionContext {
    #waits = [];
    #failed = null;
    constructor() { this.props = {}; }
    waitUntil(p) {
      this.#waits.push(Promise.resolve(p).catch((e) => {
        if (this.#failed === null) this.#failed = describe(e);
      }));
    }
    passThroughOnException() {}
    async __drain() {
      while (this.#waits.length) await Promise.allSettled(this.#waits.splice(0));
      return this.#failed;
    }
  }

  // ---- scheduled -------------------------------------------------------------
  class ScheduledController {
    #cron; #time; #state;
    constructor(cron, time, state) { this.#cron = cron; this.#time = time; this.#state = state; }
    get cron() { return this.#cron; }
    get scheduledTime() { return this.#time; }
    get type() { return "scheduled"; }
    noRetry() { this.#state.noRetry = true; }
  }

  const scheduled = {
    method: "scheduled",
    prepare(p) {
      const state = { noRetry: false };
      return {
        args: [new ScheduledController(String(p.cron), Number(p.scheduledTime), state)],
        result: () => ({ noRetry: state.noRetry }),
      };
    },
  };

  // ---- queue -----------------------------------------------------------------
  function decodeBody(type, buf) {
    switch (type) {
      case "text": return new TextDecoder().decode(buf);
      case "bytes": return buf;
      case "json": return JSON.parse(new TextDecoder().decode(buf));
      case "v8": return codec.deserialize(buf);
      default: throw new TypeError("Unsupported queue message content type: " + type);
    }
  }

  function retryDelay(options, max) {
    if (options === undefined || options === null || options.delaySeconds === undefined) return null;
    const d = options.delaySeconds;
    if (typeof d !== "number" || !Number.isInteger(d) || d < 0 || d > max) {
      throw new Error("retry delay " + String(d) + " is invalid: delaySeconds must be an integer from 0 to " + max);
    }
    return d;
  }

  // Records the calls in order for the host, which applies Cloudflare's
  // precedence rules; the same rules here only decide which calls get the
  // "has no effect" warning Workers logs.
  class BatchState {
    constructor(max) { this.max = max; this.calls = []; this.ackAll = false; this.retryAll = false; this.acked = new Set(); this.retried = new Set(); }
  }

  class Message {
    #id; #timestamp; #body; #attempts; #state;
    constructor(m, body, state) {
      this.#id = m.id; this.#timestamp = new Date(m.timestamp_ms); this.#body = body;
      this.#attempts = m.attempts; this.#state = state;
    }
    get id() { return this.#id; }
    get timestamp() { return this.#timestamp; }
    get body() { return this.#body; }
    get attempts() { return this.#attempts; }
    ack() {
      const s = this.#state, id = this.#id;
      if (s.ackAll) return;
      if (s.retryAll) console.warn("Received a call to ack() on message " + id + " after retryAll() was already called. Calling ack() on a message after calling retryAll() has no effect.");
      else if (s.retried.has(id)) console.warn("Received a call to ack() on message " + id + " after retry() was already called. Calling ack() on a message after calling retry() has no effect.");
      else s.acked.add(id);
      s.calls.push(["ack", id]);
    }
    retry(options) {
      const s = this.#state, id = this.#id;
      const delay = retryDelay(options, s.max);
      if (s.ackAll) console.warn("Received a call to retry() on message " + id + " after ackAll() was already called. Calling retry() on a message after calling ackAll() has no effect.");
      else if (s.acked.has(id)) console.warn("Received a call to retry() on message " + id + " after ack() was already called. Calling retry() on a message after calling ack() has no effect.");
      else s.retried.add(id);
      s.calls.push(["retry", id, delay]);
    }
  }

  class MessageBatch {
    #queue; #messages; #state;
    constructor(queue, messages, state) { this.#queue = queue; this.#messages = messages; this.#state = state; }
    get queue() { return this.#queue; }
    get messages() { return this.#messages; }
    ackAll() {
      const s = this.#state;
      if (s.retryAll) console.warn("Received a call to ackAll() after retryAll() was already called. Calling ackAll() after calling retryAll() has no effect.");
      else s.ackAll = true;
      s.calls.push(["ackAll"]);
    }
    retryAll(options) {
      const s = this.#state;
      const delay = retryDelay(options, s.max);
      if (s.ackAll) console.warn("Received a call to retryAll() after ackAll() was already called. Calling retryAll() after calling ackAll() has no effect.");
      else s.retryAll = true;
      s.calls.push(["retryAll", delay]);
    }
  }

  const queue = {
    method: "queue",
    prepare(p, buffers) {
      const state = new BatchState(p.maxDelaySecs);
      const messages = p.messages.map((m, i) => new Message(m, decodeBody(m.content_type, buffers[i]), state));
      return {
        args: [new MessageBatch(p.queue, Object.freeze(messages), state)],
        result: () => ({ calls: state.calls }),
      };
    },
  };

  const kinds = new Map([["scheduled", scheduled], ["queue", queue]]);

  async function run(rid, kind, payload, buffers) {
    const ctx = new ExecutionContext();
    let error = null;
    let prepared = null;
    try {
      const k = kinds.get(kind);
      if (k === undefined) throw new Error("Unknown event kind " + kind + ".");
      prepared = k.prepare(JSON.parse(payload), buffers);
      const target = isClass ? new handler(ctx, env) : handler;
      const fn = target === null ? undefined : target[k.method];
      if (typeof fn !== "function") throw new Error("Handler does not export a " + k.method + "() function.");
      if (isClass) await fn.apply(target, prepared.args);
      else await fn.apply(target, [...prepared.args, env, ctx]);
    } catch (e) {
      error = describe(e);
    }
    const waitUntilError = await ctx.__drain();
    const out = Object.assign({ error, waitUntilError }, prepared === null ? {} : prepared.result());
    host.respond(rid, [200, "", [], JSON.stringify(out)]);
  }

  function dispatch(rid, kind, payload, buffers) {
    run(rid, kind, payload, buffers).then(
      () => host.done(rid),
      (e) => { host.fail(rid, e); host.done(rid); },
    );
  }

  return { install, dispatch };
})
