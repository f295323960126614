// The Queue producer object a worker sees (`env.<BINDING>`). `native` runs
// the broker calls (hearth-queues) and holds the structured-clone codec used
// for the `v8` content type; this file turns bodies into bytes by content
// type, with Workers' messages for bodies that do not fit the type.
(function (native, util) {
  "use strict";
  const codec = native.codec;

  function contentTypeOf(value) {
    if (value === undefined || value === null) return "v8";
    const t = String(value).toLowerCase();
    if (t === "text" || t === "bytes" || t === "json" || t === "v8") return t;
    throw new TypeError("Unsupported queue message content type: " + String(value));
  }

  function serialize(body, type) {
    if (body === undefined) throw new TypeError("Message body cannot be undefined");
    switch (type) {
      case "text":
        if (typeof body !== "string") {
          throw new TypeError('Content Type "text" requires a value of type string, but received: ' + typeof body);
        }
        return body;
      case "bytes":
        if (!ArrayBuffer.isView(body)) {
          throw new TypeError('Content Type "bytes" requires a value of type ArrayBufferView, but received: ' + typeof body);
        }
        return util.viewBytes(body).slice();
      case "json": {
        const text = JSON.stringify(body);
        if (text === undefined) {
          throw new TypeError('Content Type "json" requires a value that JSON.stringify() can serialize, but received: ' + typeof body);
        }
        return text;
      }
      default:
        return codec.serialize(body);
    }
  }

  function delayOf(options) {
    if (options === undefined || options === null || options.delaySeconds === undefined) return undefined;
    return Number(options.delaySeconds);
  }

  class WorkerQueue {
    async send(body, options) {
      const type = contentTypeOf(options === undefined || options === null ? undefined : options.contentType);
      native.send(serialize(body, type), type, delayOf(options));
    }

    async sendBatch(messages, options) {
      if (messages === null || messages === undefined || typeof messages[Symbol.iterator] !== "function") {
        throw new TypeError("Failed to execute 'sendBatch' on 'WorkerQueue': parameter 1 is not of type 'Iterable'.");
      }
      const bodies = [], types = [], delays = [];
      for (const m of messages) {
        if (m === null || typeof m !== "object") {
          throw new TypeError("Failed to execute 'sendBatch' on 'WorkerQueue': every message must be an object with a body.");
        }
        const type = contentTypeOf(m.contentType);
        bodies.push(serialize(m.body, type));
        types.push(type);
        const d = delayOf(m);
        delays.push(d === undefined ? null : d);
      }
      native.sendBatch(bodies, types, delays, delayOf(options));
    }
  }

  return new WorkerQueue();
})
