// TextEncoder, TextDecoder, atob, btoa.
const kDecoder = Symbol("decoder");

class TextEncoder {
  get encoding() { return "utf-8"; }
  encode(input = "") { return native.utf8Encode(typeof input === "string" ? input : String(input)); }
  encodeInto(source, destination) {
    if (!(destination instanceof Uint8Array)) throw new TypeError("Failed to execute 'encodeInto' on 'TextEncoder': parameter 2 is not of type 'Uint8Array'.");
    const r = native.utf8EncodeInto(String(source), destination);
    return { read: r[0], written: r[1] };
  }
}
tag(TextEncoder);

class TextDecoder {
  constructor(label = "utf-8", options = {}) {
    label = String(label);
    const name = native.encodingName(label);
    if (name == null) throw new RangeError(`"${label}" is not a valid encoding.`);
    options = options || {};
    this[kDecoder] = { name, fatal: !!options.fatal, ignoreBOM: !!options.ignoreBOM, native: null };
  }
  get encoding() { return this[kDecoder].name; }
  get fatal() { return this[kDecoder].fatal; }
  get ignoreBOM() { return this[kDecoder].ignoreBOM; }
  decode(input, options) {
    const st = this[kDecoder];
    let bytes;
    if (input === undefined || input === null) bytes = undefined;
    else {
      bytes = asBytes(input);
      if (bytes === null) throw new TypeError("Failed to execute 'decode' on 'TextDecoder': parameter 1 is not of type 'ArrayBuffer or ArrayBufferView'.");
    }
    const stream = !!(options && options.stream);
    if (!stream && st.native === null) return native.decode(st.name, bytes, st.fatal, st.ignoreBOM);
    if (st.native === null) st.native = native.decoderNew(st.name, st.ignoreBOM);
    try {
      return native.decoderDecode(st.native, bytes, stream, st.fatal);
    } finally {
      if (!stream) st.native = null;
    }
  }
}
tag(TextDecoder);

defineGlobal("TextEncoder", TextEncoder);
defineGlobal("TextDecoder", TextDecoder);
defineGlobal("atob", function atob(data) {
  if (arguments.length === 0) throw new TypeError("Failed to execute 'atob' on 'ServiceWorkerGlobalScope': parameter 1 is not of type 'string'.");
  return native.atob(String(data));
});
defineGlobal("btoa", function btoa(data) {
  if (arguments.length === 0) throw new TypeError("Failed to execute 'btoa' on 'ServiceWorkerGlobalScope': parameter 1 is not of type 'JsString'.");
  return native.btoa(String(data));
});
