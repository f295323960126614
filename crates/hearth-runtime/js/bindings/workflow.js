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

  function idOf(id) {
    return id === undefined || id === null ? undefined : String(id);
  }

  class WorkflowInstance {
    #id;
    constructor(id) { this.#id = id; }
    get id() { return this.#id; }
    async status() {
      const s = native.status(this.#id);
      const out = { status: s.status };
      if (s.error !== undefined) out.error = { name: s.error.name, message: s.error.message };
      if (s.output !== undefined) out.output = codec.deserialize(s.output);
      return out;
    }
    async pause() { native.pause(this.#id); }
    async resume() { native.resume(this.#id); }
    async terminate() { native.terminate(this.#id); }
    async restart() { native.restart(this.#id); }
    async sendEvent(event) {
      const e = optionsOf(event, "sendEvent");
      native.sendEvent(this.#id, String(e.type), encodeParams(e.payload));
    }
  }

  class Workflow {
    async create(options) {
      const o = optionsOf(options, "create");
      return new WorkflowInstance(native.create(idOf(o.id), encodeParams(o.params)));
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
      return native.createBatch(ids, params).map((id) => new WorkflowInstance(id));
    }
    async get(id) {
      return new WorkflowInstance(native.get(String(id)));
    }
  }

  void util;
  return new Workflow();
})
