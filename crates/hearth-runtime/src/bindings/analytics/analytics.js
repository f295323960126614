// The Analytics Engine dataset a worker sees (`env.<BINDING>`):
// `writeDataPoint(event)` checks the event's shape and hands it to
// `native.write`, which queues it without waiting (Workers returns nothing
// and never blocks on the write).
(function (native, util) {
  "use strict";

  function list(event, field, check) {
    const value = event[field];
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) throw new TypeError("writeDataPoint(): " + field + " must be an array");
    return value.map((v, i) => check(v, field + "[" + i + "]"));
  }

  function text(v, where) {
    if (v === null || v === undefined) return null;
    if (typeof v === "string") return v;
    if (v instanceof ArrayBuffer) return v;
    if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    throw new TypeError("writeDataPoint(): " + where + " must be a string, an ArrayBuffer or null");
  }

  function number(v, where) {
    if (typeof v !== "number") throw new TypeError("writeDataPoint(): " + where + " must be a number");
    return v;
  }

  class AnalyticsEngineDataset {
    writeDataPoint(event) {
      if (event === undefined) event = {};
      if (typeof event !== "object" || event === null) {
        throw new TypeError("writeDataPoint(): the data point must be an object");
      }
      native.write(list(event, "blobs", text), list(event, "doubles", number), list(event, "indexes", text));
    }
  }
  return new AnalyticsEngineDataset();
})
