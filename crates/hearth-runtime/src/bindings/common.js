// Helpers shared by the binding objects (KV, D1, R2). Evaluated once per
// binding per isolate; returns a plain object of functions.
(function () {
  "use strict";

  // A view's bytes as a Uint8Array over the same memory (no copy).
  function viewBytes(v) {
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }

  function concat(chunks, total) {
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) { out.set(c, off); off += c.byteLength; }
    return out;
  }

  // Reads a ReadableStream to its end. Chunks may be bytes or strings.
  async function readStream(stream) {
    if (stream.locked) throw new TypeError("This ReadableStream is currently locked to a reader.");
    const reader = stream.getReader();
    const chunks = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let bytes;
      if (typeof value === "string") bytes = new TextEncoder().encode(value);
      else if (value instanceof ArrayBuffer) bytes = new Uint8Array(value);
      else if (ArrayBuffer.isView(value)) bytes = viewBytes(value);
      else throw new TypeError("This TransformStream is being used as a byte stream, but received an object of non-ArrayBuffer/ArrayBufferView type on its writable side.");
      chunks.push(bytes);
      total += bytes.byteLength;
    }
    return concat(chunks, total);
  }

  // A one-chunk byte stream over `buffer`.
  function streamOf(buffer) {
    return new ReadableStream({
      type: "bytes",
      start(c) {
        if (buffer.byteLength > 0) c.enqueue(new Uint8Array(buffer));
        c.close();
      },
    });
  }

  function isStream(v) {
    return typeof ReadableStream === "function" && v instanceof ReadableStream;
  }

  function isBlob(v) {
    return typeof Blob === "function" && v instanceof Blob;
  }

  function isHeaders(v) {
    return typeof Headers === "function" && v instanceof Headers;
  }

  return { viewBytes, concat, readStream, streamOf, isStream, isBlob, isHeaders };
})
