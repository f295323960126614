// Blob, File, FormData and the multipart/form-data codec.
const kBlob = Symbol("blob");

function blobPartBytes(part) {
  if (part instanceof Blob) return part[kBlob].bytes;
  const b = asBytes(part);
  if (b !== null) return b;
  return native.utf8Encode(String(part));
}

function normalizeType(type) {
  if (type === undefined) return "";
  type = String(type);
  // Types with characters outside U+0020..U+007E are dropped, as the File API says.
  for (let i = 0; i < type.length; i++) { const c = type.charCodeAt(i); if (c < 0x20 || c > 0x7e) return ""; }
  return type.toLowerCase();
}

function makeBlob(proto, bytes, type) {
  const b = Object.create(proto);
  b[kBlob] = { bytes, type };
  return b;
}

class Blob {
  constructor(parts = [], options = {}) {
    if (parts === null || typeof parts !== "object" || typeof parts[Symbol.iterator] !== "function") {
      if (parts !== undefined) throw new TypeError("Failed to construct 'Blob': constructor parameter 1 is not of type 'Array'.");
      parts = [];
    }
    const chunks = [];
    let total = 0;
    for (const p of parts) {
      const b = blobPartBytes(p);
      chunks.push(b); total += b.byteLength;
    }
    const bytes = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) { bytes.set(c, off); off += c.byteLength; }
    this[kBlob] = { bytes, type: normalizeType(options && options.type) };
  }
  get size() { return this[kBlob].bytes.byteLength; }
  get type() { return this[kBlob].type; }
  slice(start, end, contentType) {
    const size = this.size;
    const rel = (v, d) => {
      if (v === undefined) return d;
      v = Math.trunc(Number(v)) || 0;
      return v < 0 ? Math.max(size + v, 0) : Math.min(v, size);
    };
    const s = rel(start, 0), e = rel(end, size);
    return makeBlob(Blob.prototype, this[kBlob].bytes.subarray(s, Math.max(s, e)), normalizeType(contentType));
  }
  text() { return Promise.resolve(utf8Decode(this[kBlob].bytes)); }
  arrayBuffer() { return Promise.resolve(this[kBlob].bytes.slice().buffer); }
  bytes() { return Promise.resolve(this[kBlob].bytes.slice()); }
  stream() { return readableFromBytes(this[kBlob].bytes.slice()); }
}
tag(Blob);

class File extends Blob {
  constructor(parts, name, options = {}) {
    if (arguments.length < 2) throw new TypeError("Failed to construct 'File': constructor parameter 2 is not of type 'string'.");
    super(parts, options);
    const lm = options && options.lastModified !== undefined ? Number(options.lastModified) : Date.now();
    this[kBlob].name = String(name);
    this[kBlob].lastModified = Number.isFinite(lm) ? Math.trunc(lm) : 0;
  }
  get name() { return this[kBlob].name; }
  get lastModified() { return this[kBlob].lastModified; }
}
tag(File);

function makeFile(bytes, name, type, lastModified) {
  const f = makeBlob(File.prototype, bytes, type);
  f[kBlob].name = name;
  f[kBlob].lastModified = lastModified === undefined ? Date.now() : lastModified;
  return f;
}

const kForm = Symbol("form");

function formEntryValue(value, filename) {
  if (value instanceof Blob) {
    if (value instanceof File && filename === undefined) return value;
    const name = filename !== undefined ? String(filename) : value instanceof File ? value.name : "blob";
    return makeFile(value[kBlob].bytes, name, value.type, value instanceof File ? value.lastModified : undefined);
  }
  return String(value);
}

class FormData {
  constructor(form) {
    if (form !== undefined) throw new TypeError("Failed to construct 'FormData': HTML forms are not supported.");
    this[kForm] = [];
  }
  append(name, value, filename) {
    if (arguments.length < 2) throw new TypeError(arguments.length === 0 ? "Failed to execute 'append' on 'FormData': parameter 1 is not of type 'string'." : "Failed to execute 'append' on 'FormData': parameter 2 is not of type 'File or Blob or string'.");
    this[kForm].push([String(name), formEntryValue(value, filename)]);
  }
  delete(name) { name = String(name); this[kForm] = this[kForm].filter((e) => e[0] !== name); }
  get(name) { name = String(name); const e = this[kForm].find((e) => e[0] === name); return e ? e[1] : null; }
  getAll(name) { name = String(name); return this[kForm].filter((e) => e[0] === name).map((e) => e[1]); }
  has(name) { name = String(name); return this[kForm].some((e) => e[0] === name); }
  set(name, value, filename) {
    if (arguments.length < 2) throw new TypeError(arguments.length === 0 ? "Failed to execute 'set' on 'FormData': parameter 1 is not of type 'string'." : "Failed to execute 'set' on 'FormData': parameter 2 is not of type 'File or Blob or string'.");
    name = String(name);
    const entry = [name, formEntryValue(value, filename)];
    const out = [];
    let done = false;
    for (const e of this[kForm]) {
      if (e[0] !== name) out.push(e);
      else if (!done) { out.push(entry); done = true; }
    }
    if (!done) out.push(entry);
    this[kForm] = out;
  }
  forEach(cb, thisArg) { for (const [k, v] of this[kForm].slice()) cb.call(thisArg, v, k, this); }
  *entries() { for (const e of this[kForm]) yield [e[0], e[1]]; }
  *keys() { for (const e of this[kForm]) yield e[0]; }
  *values() { for (const e of this[kForm]) yield e[1]; }
  [Symbol.iterator]() { return this.entries(); }
}
tag(FormData);

function escapeMultipartName(s) {
  return s.replace(/\r\n|\r|\n/g, "\r\n").replace(/\n/g, "%0A").replace(/\r/g, "%0D").replace(/"/g, "%22");
}

// -> { bytes, contentType }
function encodeMultipart(form) {
  const rnd = native.random(12);
  let boundary = "----HearthFormBoundary";
  for (const b of rnd) boundary += (b & 0x3f).toString(36);
  const chunks = [];
  let total = 0;
  const push = (b) => { chunks.push(b); total += b.byteLength; };
  for (const [name, value] of form[kForm]) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${escapeMultipartName(name)}"`;
    if (typeof value === "string") {
      push(native.utf8Encode(head + "\r\n\r\n" + value.replace(/\r(?!\n)|(?<!\r)\n/g, "\r\n") + "\r\n"));
    } else {
      head += `; filename="${escapeMultipartName(value.name)}"\r\nContent-Type: ${value.type || "application/octet-stream"}\r\n\r\n`;
      push(native.utf8Encode(head));
      push(value[kBlob].bytes);
      push(native.utf8Encode("\r\n"));
    }
  }
  push(native.utf8Encode(`--${boundary}--\r\n`));
  return { bytes: concatBytes(chunks, total), contentType: `multipart/form-data; boundary=${boundary}` };
}

// Parameters of a Content-Type header value: "a/b; x=1; y=\"2\"".
function contentTypeParam(ct, name) {
  const parts = ct.split(";");
  for (let i = 1; i < parts.length; i++) {
    const eq = parts[i].indexOf("=");
    if (eq < 0) continue;
    if (parts[i].slice(0, eq).trim().toLowerCase() !== name) continue;
    let v = parts[i].slice(eq + 1).trim();
    if (v.length >= 2 && v[0] === '"' && v[v.length - 1] === '"') v = v.slice(1, -1);
    return v;
  }
  return null;
}
function essence(ct) { return ct.split(";")[0].trim().toLowerCase(); }

function indexOfBytes(hay, needle, from) {
  const n = needle.length, first = needle[0];
  outer: for (let i = hay.indexOf(first, from); i !== -1 && i + n <= hay.length; i = hay.indexOf(first, i + 1)) {
    for (let j = 1; j < n; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function decodeMultipart(bytes, boundary) {
  const fail = () => new TypeError("Failed to parse body as FormData.");
  const form = new FormData();
  const delim = native.utf8Encode("--" + boundary);
  let pos = indexOfBytes(bytes, delim, 0);
  if (pos < 0) throw fail();
  for (;;) {
    pos += delim.length;
    if (bytes[pos] === 0x2d && bytes[pos + 1] === 0x2d) break; // closing delimiter
    // Skip transport padding and the CRLF after the delimiter.
    while (bytes[pos] === 0x20 || bytes[pos] === 0x09) pos++;
    if (bytes[pos] === 0x0d && bytes[pos + 1] === 0x0a) pos += 2; else throw fail();
    const headEnd = indexOfBytes(bytes, [0x0d, 0x0a, 0x0d, 0x0a], pos);
    if (headEnd < 0) throw fail();
    const headText = utf8Decode(bytes.subarray(pos, headEnd));
    const next = indexOfBytes(bytes, concatBytes([native.utf8Encode("\r\n"), delim]), headEnd + 4);
    if (next < 0) throw fail();
    const body = bytes.subarray(headEnd + 4, next);
    let name = null, filename = null, type = "";
    for (const line of headText.split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon < 0) continue;
      const hname = line.slice(0, colon).trim().toLowerCase();
      const hval = line.slice(colon + 1).trim();
      if (hname === "content-disposition") {
        name = contentTypeParam(hval, "name");
        filename = contentTypeParam(hval, "filename");
      } else if (hname === "content-type") type = hval;
    }
    if (name === null) throw fail();
    const unescape = (s) => s.replace(/%0A/g, "\n").replace(/%0D/g, "\r").replace(/%22/g, '"');
    name = unescape(name);
    if (filename !== null) form.append(name, makeFile(body.slice(), unescape(filename), normalizeType(type)));
    else form.append(name, utf8Decode(body));
    pos = next + 2;
  }
  return form;
}

defineGlobal("Blob", Blob);
defineGlobal("File", File);
defineGlobal("FormData", FormData);
