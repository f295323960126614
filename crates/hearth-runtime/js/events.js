// Non-HTTP events: `scheduled(controller, env, ctx)`, `queue(batch, env,
// ctx)`, a Workflow's `run(event, step)`, and any kind registered in
// `kinds`. Evaluated once per isolate as a function of the native `host`
// object, the structured-clone codec and the Workflows step natives (null
// without Workflows); the host calls `dispatch(rid, kind, payloadJson,
// buffers)` and receives the outcome as a JSON string through `host.respond`.
(function (host, codec, workflowNatives) {
  "use strict";
  let handler = null;
  let isClass = false;
  let env = {};
  let exports = {};

  function install(def, e, ns) {
    env = e;
    exports = ns;
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
      let stack = typeof e.stack === "string" ? e.stack : "";
      // Without the `Name: message` line that `stack` starts with.
      const own = name + (message === "" ? "" : ": " + message);
      if (stack === own) stack = "";
      else if (stack.startsWith(own + "\n")) stack = stack.slice(own.length + 1);
      const frames = stack
        ? stack.split("\n").filter((l) => l.trim() !== "" && !l.includes("hearth:internal")).join("\n")
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
  // As in workerd: `cron` and `scheduledTime` are read-only own properties
  // (so Object.keys lists them) and `noRetry()` the one method.
  class ScheduledController {
    #state;
    constructor(cron, time, state) {
      Object.defineProperty(this, "cron", { value: cron, enumerable: true });
      Object.defineProperty(this, "scheduledTime", { value: time, enumerable: true });
      this.#state = state;
    }
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

  // A retry delay as workerd reads it: a 32-bit integer (NaN and infinities
  // 0, fractions truncated; outside int32 a TypeError). The broker then
  // holds it to 0..max, so a negative delay retries at once.
  function retryDelay(options, max) {
    if (options === undefined || options === null || options.delaySeconds === undefined) return null;
    const n = Number(options.delaySeconds);
    const d = Number.isFinite(n) ? Math.trunc(n) : 0;
    if (d < -2147483648 || d > 2147483647) {
      throw new TypeError("Value out of range. Must be between -2147483648 and 2147483647 (inclusive).");
    }
    return Math.min(Math.max(d, 0), max);
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
        args: [new MessageBatch(p.queue, messages, state)],
        result: () => ({ calls: state.calls }),
      };
    },
  };

  // ---- workflow --------------------------------------------------------------
  // `run(event, step)` of a WorkflowEntrypoint class. Each step call asks
  // the engine (through `workflowNatives`) what to do. When the run must
  // stop (a sleep, retry delay or event wait is pending, or the instance was
  // paused, terminated or restarted) the step call returns a promise that
  // never settles, so no try/catch in `run` can swallow the stop, and the
  // event ends once no step callback is still running.
  const UNITS = {
    second: 1000, minute: 60000, hour: 3600000, day: 86400000,
    week: 604800000, month: 2592000000, year: 31536000000,
  };
  // A WorkflowSleepDuration: milliseconds, or "<n> <unit>[s]". NaN when
  // unreadable (the engine refuses it with its own message).
  function durationMs(d) {
    if (typeof d === "number") return d;
    const m = /^\s*(\d+(?:\.\d+)?)\s*(second|minute|hour|day|week|month|year)s?\s*$/i.exec(String(d));
    return m === null ? NaN : Number(m[1]) * UNITS[m[2].toLowerCase()];
  }

  function stepConfig(c) {
    const cfg = { limit: 5, delay: 10000, backoff: "exponential", timeout: 600000 };
    if (c === undefined || c === null) return cfg;
    if (typeof c !== "object") return { limit: NaN, delay: NaN, backoff: "", timeout: NaN };
    const r = c.retries;
    if (r !== undefined && r !== null) {
      if (r.limit !== undefined) cfg.limit = typeof r.limit === "number" && Number.isInteger(r.limit) ? r.limit : NaN;
      if (r.delay !== undefined) cfg.delay = durationMs(r.delay);
      if (r.backoff !== undefined) cfg.backoff = String(r.backoff);
    }
    if (c.timeout !== undefined) cfg.timeout = durationMs(c.timeout);
    return cfg;
  }

  function withName(name, message) {
    const e = new Error(message);
    if (name && name !== "Error") e.name = name;
    return e;
  }

  function errorInfo(e) {
    if (e !== null && typeof e === "object" && e[ORIGINAL] !== undefined) return Object.assign({}, e[ORIGINAL]);
    if (e !== null && typeof e === "object") {
      return { name: e.name ? String(e.name) : "Error", message: e.message === undefined ? "" : String(e.message) };
    }
    return { name: "Error", message: String(e) };
  }

  // NonRetryableError (whatever name it was given, or already carried as
  // "NonRetryableError: ..." text), or a value that cannot be stored: no
  // attempt can succeed.
  function nonRetryable(e) {
    if (e === null || typeof e !== "object") return false;
    return e[NON_RETRYABLE] === true || e.name === "NonRetryableError" || e.name === "DataCloneError" ||
      (typeof e.message === "string" && e.message.startsWith("NonRetryableError"));
  }
  const NON_RETRYABLE = Symbol.for("hearth.workflows.nonRetryable");

  // On Cloudflare `step` is an RPC stub of the engine, so an error it throws
  // into `run` has crossed RPC: the built-in classes keep their class, any
  // other name becomes an `Error` whose message is "<name>: <message>". The
  // original is kept so the instance's status still names it.
  const RPC_CLASSES = new Set(["Error", "EvalError", "RangeError", "ReferenceError", "SyntaxError", "TypeError", "URIError"]);
  const ORIGINAL = Symbol("workflow step error");
  function overRpc(e) {
    if (e === null || typeof e !== "object" || !(e instanceof Error)) return e;
    const name = String(e.name);
    if (RPC_CLASSES.has(name) || e[ORIGINAL] !== undefined) return e;
    const out = new Error(name + ": " + String(e.message));
    Object.defineProperty(out, ORIGINAL, { value: { name, message: String(e.message) } });
    return out;
  }

  const text = (bytes) => new TextDecoder().decode(bytes);

  class WorkflowRun {
    #resolve;
    constructor(id) {
      this.id = id;
      this.busy = 0;
      this.halt = null;
      this.halted = new Promise((r) => { this.#resolve = r; });
    }
    // Ends the run as `reason` ("suspend" or "stopped") once no callback
    // runs; the caller's promise never settles.
    stop(reason) {
      if (this.halt !== "stopped") this.halt = reason;
      this.settle();
      return new Promise(() => {});
    }
    settle() {
      if (this.halt !== null && this.busy === 0) this.#resolve({ kind: this.halt });
    }
    answer(a) {
      if (a.k === "suspend" || a.k === "stopped") return this.stop(a.k);
      return null;
    }
  }

  function timeoutAfter(ms) {
    let timer;
    const p = new Promise((_, reject) => {
      timer = setTimeout(() => reject(TIMED_OUT), ms);
    });
    return { p, cancel: () => clearTimeout(timer) };
  }
  const TIMED_OUT = Symbol("timed out");

  class WorkflowStep {
    #run;
    constructor(run) { this.#run = run; }

    async do(name, a, b) {
      try {
        return await this.#do(name, a, b);
      } catch (e) {
        throw overRpc(e);
      }
    }

    async #do(name, a, b) {
      const run = this.#run;
      if (run.halt !== null) return run.stop(run.halt);
      const [config, callback] = typeof a === "function" ? [undefined, a] : [a, b];
      if (typeof callback !== "function") throw new TypeError("step.do(\"" + String(name) + "\") needs a callback");
      name = String(name);
      const cfg = stepConfig(config);
      const d = workflowNatives.stepBegin(run.id, name, cfg.limit, cfg.delay, cfg.backoff, cfg.timeout);
      if (d.k === "cached") return codec.deserialize(d.value);
      if (d.k === "failed") throw withName(d.name, d.message);
      if (d.k !== "run") return run.answer(d);
      run.busy++;
      let bytes = null;
      let thrown = null;
      let failure = null;
      const limit = timeoutAfter(d.timeout);
      try {
        const value = await Promise.race([Promise.resolve().then(() => callback()), limit.p]);
        bytes = codec.serialize(value);
      } catch (e) {
        thrown = e;
        failure = e === TIMED_OUT
          ? { name: "", message: "", nonRetryable: false, timedOut: d.timeout }
          : Object.assign(errorInfo(e), { nonRetryable: nonRetryable(e) });
      } finally {
        limit.cancel();
      }
      let answer;
      try {
        if (failure === null) {
          answer = workflowNatives.stepSuccess(run.id, name, d.occurrence, bytes);
          if (answer.k === "ok") return codec.deserialize(bytes);
          if (answer.k === "tooLarge") {
            thrown = withName(answer.name, answer.message);
            failure = { name: answer.name, message: answer.message, nonRetryable: true };
          }
        }
        if (failure !== null) {
          answer = workflowNatives.stepFailure(run.id, name, d.occurrence, failure);
          if (answer.k === "failed") {
            throw thrown === TIMED_OUT || thrown === null || typeof thrown !== "object"
              ? withName(answer.name, answer.message)
              : thrown;
          }
        }
      } finally {
        run.busy--;
      }
      return run.answer(answer);
    }

    async sleep(name, duration) {
      const run = this.#run;
      if (run.halt !== null) return run.stop(run.halt);
      const a = workflowNatives.sleep(run.id, String(name), durationMs(duration));
      return a.k === "elapsed" ? undefined : run.answer(a);
    }

    async sleepUntil(name, timestamp) {
      const run = this.#run;
      if (run.halt !== null) return run.stop(run.halt);
      const at = timestamp instanceof Date ? timestamp.getTime() : Number(timestamp);
      const a = workflowNatives.sleepUntil(run.id, String(name), at);
      return a.k === "elapsed" ? undefined : run.answer(a);
    }

    async waitForEvent(name, options) {
      const run = this.#run;
      if (run.halt !== null) return run.stop(run.halt);
      const o = options === undefined || options === null ? {} : options;
      const timeout = o.timeout === undefined ? undefined : durationMs(o.timeout);
      const a = workflowNatives.waitForEvent(run.id, String(name), String(o.type), timeout);
      if (a.k === "event") {
        const payload = a.payload.byteLength === 0 ? undefined : codec.deserialize(a.payload);
        return { payload, timestamp: new Date(a.timestamp), type: a.type };
      }
      if (a.k === "timedOut") throw overRpc(withName(a.name, a.message));
      return run.answer(a);
    }
  }

  const workflow = {
    method: "run",
    prepare(p, buffers) {
      const state = { outcome: null };
      return {
        args: [],
        result: () => ({ workflow: state.outcome }),
        async start(ctx) {
          if (workflowNatives === null) throw new Error("Workflows are not configured for this worker.");
          const Class = exports[p.className];
          if (typeof Class !== "function") {
            throw new Error("The worker does not export a class named " + p.className + " for workflow " + p.workflow + ".");
          }
          const instance = new Class(ctx, env);
          if (typeof instance.run !== "function") throw new Error("Workflow class " + p.className + " has no run() method.");
          const params = buffers[0];
          const event = {
            payload: params.byteLength === 0 ? {} : codec.deserialize(params),
            timestamp: new Date(p.timestamp),
            instanceId: p.instanceId,
          };
          const run = new WorkflowRun(p.runId);
          const step = new WorkflowStep(run);
          const finished = Promise.resolve()
            .then(() => instance.run(event, step))
            .then(
              (v) => ({ kind: "complete", output: text(codec.serialize(v)) }),
              (e) => Object.assign({ kind: "errored" }, errorInfo(e)),
            );
          state.outcome = await Promise.race([finished, run.halted]);
          // A stop reported while `run` was ending wins: the engine no
          // longer records this run's outcome anyway.
          if (run.halt === "stopped") state.outcome = { kind: "stopped" };
        },
      };
    },
  };

  const kinds = new Map([["scheduled", scheduled], ["queue", queue], ["workflow", workflow]]);

  async function run(rid, kind, payload, buffers) {
    const ctx = new ExecutionContext();
    let error = null;
    let prepared = null;
    try {
      const k = kinds.get(kind);
      if (k === undefined) throw new Error("Unknown event kind " + kind + ".");
      prepared = k.prepare(JSON.parse(payload), buffers);
      if (prepared.start !== undefined) {
        // A kind with its own target (a Workflow's class).
        await prepared.start(ctx);
      } else {
        const target = isClass ? new handler(ctx, env) : handler;
        const fn = target === null ? undefined : target[k.method];
        if (typeof fn !== "function") throw new Error("Handler does not export a " + k.method + "() function.");
        if (isClass) await fn.apply(target, prepared.args);
        else await fn.apply(target, [...prepared.args, env, ctx]);
      }
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
