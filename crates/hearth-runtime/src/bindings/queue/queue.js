// The Queue producer object a worker sees (`env.<BINDING>`). `native` runs
// the broker calls (hearth-queues) and holds the structured-clone codec used
// for the `v8` content type; this file turns bodies into bytes by content
// type, with Workers' messages for bodies that do not fit the type.
(function (native, util) {
  "use strict";
  const codec = native.codec;
  // workerd's default content type: `json` from compatibility date
  // 2024-03-18 (flag queues_json_messages), `v8` before.
  const defaultType = native.jsonByDefault ? "json" : "v8";

  // Only an absent contentType means the default; anything else, null
  // included, is read as a string and must name a type.
  function contentTypeOf(value) {
    if (value === undefined) return defaultType;
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

  // delaySeconds is a 32-bit integer to workerd: any value is converted
  // (NaN and infinities to 0, fractions truncated) and only one outside the
  // int32 range is refused here; the broker checks the allowed range.
  function int32(value) {
    const n = Number(value);
    if (!Number.isFinite(n)) return 0;
    const t = Math.trunc(n);
    if (t < -2147483648 || t > 2147483647) {
      throw new TypeError("Value out of range. Must be between -2147483648 and 2147483647 (inclusive).");
    }
    return t;
  }

  function delayOf(options) {
    if (options === undefined || options === null || options.delaySeconds === undefined) return undefined;
    return int32(options.delaySeconds);
  }

  // Options must be an object (or absent): workerd's dictionary conversion.
  function optionsOf(options, method, type) {
    if (options === undefined || options === null) return undefined;
    if (typeof options !== "object" && typeof options !== "function") {
      throw new TypeError("Failed to execute '" + method + "' on 'WorkerQueue': parameter 2 is not of type '" + type + "'.");
    }
    return options;
  }

  class WorkerQueue {
    async send(body, options) {
      if (arguments.length === 0) {
        throw new TypeError("Failed to execute 'send' on 'WorkerQueue': parameter 1 is not of type 'JsValue'.");
      }
      options = optionsOf(options, "send", "SendOptions");
      const delay = delayOf(options);
      if (body === undefined) throw new TypeError("Message body cannot be undefined");
      const type = contentTypeOf(options === undefined ? undefined : options.contentType);
      native.send(serialize(body, type), type, delay);
    }

    async sendBatch(messages, options) {
      // A sequence: any iterable object, but not a string.
      if (messages === null || typeof messages !== "object" || typeof messages[Symbol.iterator] !== "function") {
        throw new TypeError("Failed to execute 'sendBatch' on 'WorkerQueue': parameter 1 is not of type 'Sequence'.");
      }
      options = optionsOf(options, "sendBatch", "SendBatchOptions");
      // Every entry is converted (delays included) before any is checked
      // or serialized, as workerd converts its arguments first.
      const list = [];
      for (const m of messages) {
        if (m === null || m === undefined) {
          throw new TypeError("Cannot initialize N7workerd3api11WorkerQueue18MessageSendRequestE with required members from an undefined or null value.");
        }
        if (typeof m !== "object" && typeof m !== "function") {
          throw new TypeError("Incorrect type: the provided value is not of type 'MessageSendRequest'.");
        }
        list.push({ body: m.body, contentType: m.contentType, delay: delayOf(m) });
      }
      const batchDelay = delayOf(options);
      if (list.length === 0) throw new TypeError("sendBatch() requires at least one message");
      const bodies = [], types = [], delays = [];
      for (const m of list) {
        if (m.body === undefined) throw new TypeError("Message body cannot be undefined");
        const type = contentTypeOf(m.contentType);
        bodies.push(serialize(m.body, type));
        types.push(type);
        delays.push(m.delay === undefined ? null : m.delay);
      }
      native.sendBatch(bodies, types, delays, batchDelay);
    }
  }

  return new WorkerQueue();
})
