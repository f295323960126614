// Workers AI as a worker sees it (`env.<NAME>`): `run(model, inputs,
// options)` resolves to the model's result, or to a ReadableStream of
// server-sent events with `stream: true`. Failures reject with the error
// the native raises: name `AiError`, message `"<code>: <description>"`.
// With `options.gateway`, and through `gateway(id)`, calls go to the AI
// Gateway as tasks on the loop (`hearth.localFetch`), not on this thread.
(function (native, util) {
  "use strict";

  const localFetch = globalThis[Symbol.for("hearth.localFetch")];
  const service = native.service();
  // Without --ai-gateway, `options.gateway` is accepted and the provider
  // called directly (a project written for Cloudflare runs unchanged).
  const hasGateways = native.hasGateways();

  class AiInternalError extends Error {
    constructor(message, name = "AiInternalError") {
      super(message);
      this.name = name;
    }
  }

  function eventStream(events) {
    const encoder = new TextEncoder();
    return new ReadableStream({
      pull(controller) {
        let text;
        try {
          text = events.next();
        } catch (e) {
          controller.error(e);
          return;
        }
        if (text === null || text === undefined) controller.close();
        else controller.enqueue(encoder.encode(text));
      },
      cancel() {
        events.close();
      },
    });
  }

  function isObject(v) {
    return v !== null && typeof v === "object";
  }

  // One call to the gateway service; a failure answer becomes the Error it
  // names.
  async function call(method, path, headers, body) {
    const flat = [];
    for (const [k, v] of headers) flat.push(String(k), String(v));
    const res = await localFetch(service, method, path, flat, body === undefined ? null : body);
    if (res.headers.get("x-hearth-ai-failure") !== null) {
      let err = { name: "AiGatewayError", message: "AI Gateway call failed with " + res.status };
      try { err = await res.json(); } catch (_) { /* keep the generic one */ }
      const e = new Error(err.message);
      e.name = err.name;
      e.logId = res.headers.get("cf-aig-log-id");
      throw e;
    }
    return res;
  }

  function headerPairs(h) {
    if (h === undefined || h === null) return [];
    if (h instanceof Headers) return [...h];
    if (Array.isArray(h)) return h;
    if (typeof h === "object") return Object.entries(h);
    throw new TypeError("extraHeaders must be an object or Headers");
  }

  // `options.gateway` of gateway.run(), as cf-aig-* headers.
  function optionHeaders(g) {
    const out = [];
    if (!isObject(g)) return out;
    if (g.skipCache === true) out.push(["cf-aig-skip-cache", "true"]);
    if (g.cacheTtl !== undefined) out.push(["cf-aig-cache-ttl", String(g.cacheTtl)]);
    if (g.cacheKey !== undefined) out.push(["cf-aig-cache-key", String(g.cacheKey)]);
    if (g.metadata !== undefined) out.push(["cf-aig-metadata", JSON.stringify(g.metadata)]);
    if (g.collectLog !== undefined) out.push(["cf-aig-collect-log", String(g.collectLog)]);
    if (g.requestTimeoutMs !== undefined) out.push(["cf-aig-request-timeout", String(g.requestTimeoutMs)]);
    return out;
  }

  class AiGateway {
    #id;
    constructor(id) {
      this.#id = id;
    }

    #path(rest) {
      return "gateway/" + encodeURIComponent(this.#id) + "/" + rest;
    }

    async getLog(logId) {
      const res = await call("GET", this.#path("log/" + encodeURIComponent(String(logId))), []);
      return res.json();
    }

    async patchLog(logId, data) {
      if (!isObject(data)) throw new TypeError("patchLog(logId, data): data must be an object");
      await call("PATCH", this.#path("log/" + encodeURIComponent(String(logId))), [], JSON.stringify(data));
    }

    async getUrl(provider) {
      const rest = provider === undefined ? "url" : "url/" + encodeURIComponent(String(provider));
      const res = await call("GET", this.#path(rest), []);
      return res.json();
    }

    // The universal endpoint: one request or an array tried in order.
    async run(data, options = {}) {
      if (!isObject(data)) {
        throw new TypeError("gateway.run(data): data must be a request object or an array of them");
      }
      const opts = isObject(options) ? options : {};
      const headers = [
        ["content-type", "application/json"],
        ...optionHeaders(opts.gateway),
        ...headerPairs(opts.extraHeaders),
      ];
      return call("POST", this.#path("run"), headers, JSON.stringify(data));
    }
  }

  class Ai {
    constructor() {
      this.lastRequestId = null;
      this.aiGatewayLogId = null;
    }

    gateway(id) {
      if (typeof id !== "string" || id === "") {
        throw new TypeError("gateway(id): id must be a non-empty string");
      }
      return new AiGateway(id);
    }

    async run(model, inputs, options = {}) {
      if (options !== null && typeof options === "object" && options.websocket) {
        throw new AiInternalError("WebSocket inference is not supported by this binding");
      }
      const raw = isObject(options) && options.returnRawResponse;
      if (hasGateways && isObject(options) && options.gateway !== undefined && options.gateway !== null) {
        return this.#runGateway(model, inputs, options.gateway, raw);
      }
      const text = JSON.stringify(inputs === undefined ? null : inputs);
      const out = native.run(String(model), text === undefined ? "null" : text);
      this.lastRequestId = crypto.randomUUID();
      if (typeof out === "string") {
        if (raw) return new Response(out, { headers: { "content-type": "application/json" } });
        return JSON.parse(out);
      }
      const stream = eventStream(out);
      if (raw) return new Response(stream, { headers: { "content-type": "text/event-stream" } });
      return stream;
    }

    async #runGateway(model, inputs, gateway, raw) {
      const body = JSON.stringify({
        model: String(model),
        inputs: inputs === undefined ? null : inputs,
        gateway,
      });
      this.lastRequestId = crypto.randomUUID();
      let res;
      try {
        res = await call("POST", "run", [["content-type", "application/json"]], body);
      } catch (e) {
        if (e.logId) this.aiGatewayLogId = e.logId;
        delete e.logId;
        throw e;
      }
      const logId = res.headers.get("cf-aig-log-id");
      if (logId) this.aiGatewayLogId = logId;
      if (raw) return res;
      if ((res.headers.get("content-type") || "").startsWith("text/event-stream")) return res.body;
      return res.json();
    }
  }

  return new Ai();
})
