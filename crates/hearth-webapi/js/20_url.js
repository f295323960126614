// URL and URLSearchParams over the `url` crate (native.urlParse / urlSet).
const kUrl = Symbol("url");
const kParams = Symbol("params");
// Component indexes of the array the natives return.
const U_HREF = 0, U_ORIGIN = 1, U_PROTOCOL = 2, U_USERNAME = 3, U_PASSWORD = 4, U_HOST = 5,
  U_HOSTNAME = 6, U_PORT = 7, U_PATHNAME = 8, U_SEARCH = 9, U_HASH = 10;

function toUSVString(v) { return typeof v === "string" ? v : String(v); }

class URL {
  constructor(url, base) {
    if (arguments.length === 0) throw new TypeError("Failed to construct 'URL': constructor parameter 1 is not of type 'USVString'.");
    url = toUSVString(url);
    const parts = base === undefined ? native.urlParse(url) : native.urlParse(url, toUSVString(base));
    if (parts === null) throw new TypeError(`Invalid URL string.`);
    this[kUrl] = parts;
    this[kParams] = null;
  }
  static canParse(url, base) {
    try {
      url = toUSVString(url);
      return (base === undefined ? native.urlParse(url) : native.urlParse(url, toUSVString(base))) !== null;
    } catch { return false; }
  }
  static parse(url, base) {
    try { return new URL(url, base); } catch { return null; }
  }
  get href() { return this[kUrl][U_HREF]; }
  set href(v) {
    const parts = native.urlSet(this[kUrl][U_HREF], "href", toUSVString(v));
    if (parts === null) throw new TypeError("Invalid URL string.");
    this[kUrl] = parts;
    if (this[kParams]) paramsReset(this[kParams], this[kUrl][U_SEARCH]);
  }
  get origin() { return this[kUrl][U_ORIGIN]; }
  get protocol() { return this[kUrl][U_PROTOCOL]; }
  set protocol(v) { urlSet(this, "protocol", v); }
  get username() { return this[kUrl][U_USERNAME]; }
  set username(v) { urlSet(this, "username", v); }
  get password() { return this[kUrl][U_PASSWORD]; }
  set password(v) { urlSet(this, "password", v); }
  get host() { return this[kUrl][U_HOST]; }
  set host(v) { urlSet(this, "host", v); }
  get hostname() { return this[kUrl][U_HOSTNAME]; }
  set hostname(v) { urlSet(this, "hostname", v); }
  get port() { return this[kUrl][U_PORT]; }
  set port(v) { urlSet(this, "port", v); }
  get pathname() { return this[kUrl][U_PATHNAME]; }
  set pathname(v) { urlSet(this, "pathname", v); }
  get search() { return this[kUrl][U_SEARCH]; }
  set search(v) {
    urlSet(this, "search", v);
    if (this[kParams]) paramsReset(this[kParams], this[kUrl][U_SEARCH]);
  }
  get searchParams() {
    if (!this[kParams]) {
      const p = new URLSearchParams(this[kUrl][U_SEARCH]);
      p[kUrl] = this;
      this[kParams] = p;
    }
    return this[kParams];
  }
  get hash() { return this[kUrl][U_HASH]; }
  set hash(v) { urlSet(this, "hash", v); }
  toString() { return this[kUrl][U_HREF]; }
  toJSON() { return this[kUrl][U_HREF]; }
}
tag(URL);

function urlSet(url, which, value) {
  const parts = native.urlSet(url[kUrl][U_HREF], which, toUSVString(value));
  if (parts !== null) url[kUrl] = parts;
}

function paramsReset(params, search) {
  const list = search ? native.formParse(search.charAt(0) === "?" ? search.slice(1) : search) : [];
  params[kParams] = list;
}

// After a URLSearchParams mutation, write the query back into its URL.
function paramsUpdate(params) {
  const url = params[kUrl];
  if (!url) return;
  const list = params[kParams];
  const query = list.length ? native.formSerialize(list) : "";
  // An empty query removes the "?" (and the spec's path-space rule is handled by the setter).
  const parts = native.urlSet(url[kUrl][U_HREF], "search", query);
  if (parts !== null) {
    if (query === "" && parts[U_SEARCH] === "" && parts[U_HREF].endsWith("?")) parts[U_HREF] = parts[U_HREF].slice(0, -1);
    url[kUrl] = parts;
  }
}

class URLSearchParams {
  constructor(init = "") {
    this[kUrl] = null;
    const list = [];
    this[kParams] = list;
    if (init === undefined || init === null) {
      if (init === null) this[kParams] = native.formParse("null");
      return;
    }
    if (typeof init === "object" || typeof init === "function") {
      if (init instanceof URLSearchParams) { this[kParams] = init[kParams].slice(); return; }
      if (typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const arr = typeof pair === "string" ? null : Array.from(pair);
          if (arr === null || arr.length !== 2) throw new TypeError("Invalid URL search params sequence.");
          list.push(toUSVString(arr[0]), toUSVString(arr[1]));
        }
        return;
      }
      for (const key of Reflect.ownKeys(init)) {
        if (typeof key !== "string") continue;
        const desc = Reflect.getOwnPropertyDescriptor(init, key);
        if (desc && desc.enumerable) list.push(toUSVString(key), toUSVString(init[key]));
      }
      return;
    }
    init = toUSVString(init);
    if (init.charAt(0) === "?") init = init.slice(1);
    this[kParams] = native.formParse(init);
  }
  get size() { return this[kParams].length / 2; }
  append(name, value) {
    if (arguments.length < 2) throw new TypeError(`Failed to execute 'append' on 'URLSearchParams': parameter ${arguments.length + 1} is not of type 'USVString'.`);
    this[kParams].push(toUSVString(name), toUSVString(value));
    paramsUpdate(this);
  }
  delete(name, value) {
    name = toUSVString(name);
    const list = this[kParams];
    const out = [];
    const checkValue = value !== undefined;
    if (checkValue) value = toUSVString(value);
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === name && (!checkValue || list[i + 1] === value)) continue;
      out.push(list[i], list[i + 1]);
    }
    this[kParams] = out;
    paramsUpdate(this);
  }
  get(name) {
    name = toUSVString(name);
    const list = this[kParams];
    for (let i = 0; i < list.length; i += 2) if (list[i] === name) return list[i + 1];
    return null;
  }
  getAll(name) {
    name = toUSVString(name);
    const list = this[kParams], out = [];
    for (let i = 0; i < list.length; i += 2) if (list[i] === name) out.push(list[i + 1]);
    return out;
  }
  has(name, value) {
    name = toUSVString(name);
    const list = this[kParams];
    const checkValue = value !== undefined;
    if (checkValue) value = toUSVString(value);
    for (let i = 0; i < list.length; i += 2) if (list[i] === name && (!checkValue || list[i + 1] === value)) return true;
    return false;
  }
  set(name, value) {
    name = toUSVString(name); value = toUSVString(value);
    const list = this[kParams], out = [];
    let found = false;
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] === name) {
        if (!found) { out.push(name, value); found = true; }
      } else out.push(list[i], list[i + 1]);
    }
    if (!found) out.push(name, value);
    this[kParams] = out;
    paramsUpdate(this);
  }
  sort() {
    const list = this[kParams], pairs = [];
    for (let i = 0; i < list.length; i += 2) pairs.push([list[i], list[i + 1], i]);
    // Stable sort by UTF-16 code units, as the spec asks.
    pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[2] - b[2]));
    this[kParams] = pairs.flatMap((p) => [p[0], p[1]]);
    paramsUpdate(this);
  }
  forEach(cb, thisArg) {
    if (typeof cb !== "function") throw new TypeError("The \"callback\" argument must be of type function.");
    for (let i = 0; i < this[kParams].length; i += 2) cb.call(thisArg, this[kParams][i + 1], this[kParams][i], this);
  }
  *entries() { for (let i = 0; i < this[kParams].length; i += 2) yield [this[kParams][i], this[kParams][i + 1]]; }
  *keys() { for (let i = 0; i < this[kParams].length; i += 2) yield this[kParams][i]; }
  *values() { for (let i = 0; i < this[kParams].length; i += 2) yield this[kParams][i + 1]; }
  [Symbol.iterator]() { return this.entries(); }
  toString() { return native.formSerialize(this[kParams]); }
}
tag(URLSearchParams);

defineGlobal("URL", URL);
defineGlobal("URLSearchParams", URLSearchParams);
