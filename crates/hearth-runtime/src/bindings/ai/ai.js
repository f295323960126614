// Workers AI as a worker sees it (`env.<NAME>`): `run(model, inputs,
// options)` resolves to the model's result, or to a ReadableStream of
// server-sent events with `stream: true`. Failures reject with the error
// the native raises: name `AiError`, message `"<code>: <description>"`.
(function (native, util) {
  "use strict";

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

  class Ai {
    constructor() {
      this.lastRequestId = null;
    }

    // `options.gateway` is accepted and the model is called directly:
    // Hearth routes to the providers its AI config names.
    async run(model, inputs, options = {}) {
      if (options !== null && typeof options === "object" && options.websocket) {
        throw new AiInternalError("WebSocket inference is not supported by this binding");
      }
      const text = JSON.stringify(inputs === undefined ? null : inputs);
      const out = native.run(String(model), text === undefined ? "null" : text);
      this.lastRequestId = crypto.randomUUID();
      const raw = options !== null && typeof options === "object" && options.returnRawResponse;
      if (typeof out === "string") {
        if (raw) return new Response(out, { headers: { "content-type": "application/json" } });
        return JSON.parse(out);
      }
      const stream = eventStream(out);
      if (raw) return new Response(stream, { headers: { "content-type": "text/event-stream" } });
      return stream;
    }
  }

  return new Ai();
})
