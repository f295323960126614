// The Analytics Engine dataset a worker sees (`env.<BINDING>`):
// `writeDataPoint(event)` hands the usual event to `native.writePlain`;
// other shapes are checked and converted here and go to `native.write`.
// Either queues the point (Workers returns nothing and does not wait for
// the write).
(function (native, util) {
  "use strict";

  const none = [];

  // The array itself goes to native when every value passes as it is (the
  // usual point: strings and numbers); a copy only when one is converted.
  function list(event, field, check) {
    const value = event[field];
    if (value === undefined || value === null) return none;
    if (!Array.isArray(value)) throw new TypeError("writeDataPoint(): " + field + " must be an array");
    let out = value;
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      const checked = check(v, field, i);
      if (checked !== v) {
        if (out === value) out = value.slice();
        out[i] = checked;
      }
    }
    return out;
  }

  function text(v, field, i) {
    if (typeof v === "string" || v === null) return v;
    if (v === undefined) return null;
    if (v instanceof ArrayBuffer || v instanceof Uint8Array) return v;
    if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    throw new TypeError("writeDataPoint(): " + field + "[" + i + "] must be a string, an ArrayBuffer or null");
  }

  function number(v, field, i) {
    if (typeof v !== "number") throw new TypeError("writeDataPoint(): " + field + "[" + i + "] must be a number");
    return v;
  }

  class AnalyticsEngineDataset {
    writeDataPoint(event) {
      // The usual point (strings, nulls, numbers) is read natively in one
      // call; any other shape is checked here, value by value.
      if (native.writePlain(event)) return;
      if (event === undefined) event = {};
      if (typeof event !== "object" || event === null) {
        throw new TypeError("writeDataPoint(): the data point must be an object");
      }
      native.write(list(event, "blobs", text), list(event, "doubles", number), list(event, "indexes", text));
    }
  }
  return new AnalyticsEngineDataset();
})
