// The Workflow binding a worker sees (`env.<BINDING>`) and the
// WorkflowInstance handles it returns. `native` runs the engine calls
// (hearth-workflows) and holds the structured-clone codec that params,
// outputs and event payloads travel in.
(function (native, util) {
  "use strict";
  const codec = native.codec;

  // No params means an empty object, as `event.payload` shows them.
  function encodeParams(params) {
    return params === undefined ? new Uint8Array(0) : codec.serialize(params);
  }

  function optionsOf(options, what) {
    if (options === undefined || options === null) return {};
    if (typeof options !== "object") throw new TypeError(what + " options must be an object");
    return options;
  }

  // On Cloudflare the binding is an RPC stub, so its errors arrive as they
  // cross RPC: built-in classes keep their class, any other name becomes an
  // `Error` whose message is "<name>: <message>".
  const RPC_CLASSES = new Set(["Error", "EvalError", "RangeError", "ReferenceError", "SyntaxError", "TypeError", "URIError"]);
  function call(f) {
    try {
      return f();
    } catch (e) {
      if (e === null || typeof e !== "object" || !(e instanceof Error) || RPC_CLASSES.has(String(e.name))) throw e;
      throw new Error(String(e.name) + ": " + String(e.message));
    }
  }

  function idOf(id) {
    return id === undefined || id === null ? undefined : String(id);
  }

  class WorkflowInstance {
    #id;
    constructor(id) { this.#id = id; }
    get id() { return this.#id; }
    async status() {
      const s = call(() => native.status(this.#id));
      const out = { status: s.status };
      if (s.error !== undefined) out.error = { name: s.error.name, message: s.error.message };
      if (s.output !== undefined) out.output = codec.deserialize(s.output);
      return out;
    }
    async pause() { call(() => native.pause(this.#id)); }
    async resume() { call(() => native.resume(this.#id)); }
    async terminate() { call(() => native.terminate(this.#id)); }
    async restart() { call(() => native.restart(this.#id)); }
    async sendEvent(event) {
      const e = optionsOf(event, "sendEvent");
      // Encoding fails here, in the caller, before anything crosses RPC.
      const payload = encodeParams(e.payload);
      call(() => native.sendEvent(this.#id, String(e.type), payload));
    }
  }

  class Workflow {
    async create(options) {
      const o = optionsOf(options, "create");
      const params = encodeParams(o.params);
      return new WorkflowInstance(call(() => native.create(idOf(o.id), params)));
    }
    async createBatch(batch) {
      if (!Array.isArray(batch)) throw new TypeError("createBatch expects an array of instance options");
      const ids = [];
      const params = [];
      for (const item of batch) {
        const o = optionsOf(item, "createBatch");
        ids.push(idOf(o.id));
        params.push(encodeParams(o.params));
      }
      return call(() => native.createBatch(ids, params)).map((id) => new WorkflowInstance(id));
    }
    async get(id) {
      return new WorkflowInstance(call(() => native.get(String(id))));
    }
  }

  void util;
  return new Workflow();
})
