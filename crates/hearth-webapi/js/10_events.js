// Event, EventTarget, AbortController, AbortSignal.
const kEvent = Symbol("event");
const kListeners = Symbol("listeners");
const kAbort = Symbol("abort");

class Event {
  constructor(type, init = {}) {
    if (arguments.length === 0) throw new TypeError("Failed to construct 'Event': constructor parameter 1 is not of type 'string'.");
    init = init || {};
    this[kEvent] = {
      type: String(type), bubbles: !!init.bubbles, cancelable: !!init.cancelable, composed: !!init.composed,
      defaultPrevented: false, stop: false, stopImmediate: false, target: null, currentTarget: null,
      phase: 0, timeStamp: Date.now(), trusted: false, dispatching: false,
    };
  }
  get type() { return this[kEvent].type; }
  get bubbles() { return this[kEvent].bubbles; }
  get cancelable() { return this[kEvent].cancelable; }
  get composed() { return this[kEvent].composed; }
  get defaultPrevented() { return this[kEvent].defaultPrevented; }
  get returnValue() { return !this[kEvent].defaultPrevented; }
  get target() { return this[kEvent].target; }
  get srcElement() { return this[kEvent].target; }
  get currentTarget() { return this[kEvent].currentTarget; }
  get eventPhase() { return this[kEvent].phase; }
  get timeStamp() { return this[kEvent].timeStamp; }
  get isTrusted() { return this[kEvent].trusted; }
  get cancelBubble() { return this[kEvent].stop; }
  set cancelBubble(v) { if (v) this[kEvent].stop = true; }
  composedPath() { const s = this[kEvent]; return s.dispatching && s.currentTarget ? [s.currentTarget] : []; }
  preventDefault() { if (this[kEvent].cancelable) this[kEvent].defaultPrevented = true; }
  stopPropagation() { this[kEvent].stop = true; }
  stopImmediatePropagation() { this[kEvent].stop = true; this[kEvent].stopImmediate = true; }
}
Event.NONE = 0; Event.CAPTURING_PHASE = 1; Event.AT_TARGET = 2; Event.BUBBLING_PHASE = 3;
tag(Event);

class CustomEvent extends Event {
  constructor(type, init = {}) { super(type, init); this[kEvent].detail = init && init.detail !== undefined ? init.detail : null; }
  get detail() { return this[kEvent].detail; }
}
tag(CustomEvent);

function normalizeListenerOptions(options) {
  if (typeof options === "boolean") return { capture: options, once: false, passive: false, signal: undefined };
  options = options || {};
  return { capture: !!options.capture, once: !!options.once, passive: !!options.passive, signal: options.signal };
}

class EventTarget {
  constructor() { this[kListeners] = new Map(); }
  addEventListener(type, listener, options) {
    if (listener === null || listener === undefined) return;
    if (typeof listener !== "function" && !isObject(listener)) {
      throw new TypeError("The \"listener\" argument must be a function or an object with a handleEvent method.");
    }
    const opts = normalizeListenerOptions(options);
    if (opts.signal && opts.signal.aborted) return;
    if (!this[kListeners]) this[kListeners] = new Map();
    type = String(type);
    let list = this[kListeners].get(type);
    if (!list) { list = []; this[kListeners].set(type, list); }
    for (const l of list) if (l.listener === listener && l.capture === opts.capture) return;
    const entry = { listener, capture: opts.capture, once: opts.once, removed: false };
    list.push(entry);
    if (opts.signal) opts.signal.addEventListener("abort", () => this.removeEventListener(type, listener, opts));
  }
  removeEventListener(type, listener, options) {
    const map = this[kListeners];
    if (!map) return;
    const list = map.get(String(type));
    if (!list) return;
    const capture = normalizeListenerOptions(options).capture;
    const i = list.findIndex((l) => l.listener === listener && l.capture === capture);
    if (i >= 0) { list[i].removed = true; list.splice(i, 1); }
  }
  dispatchEvent(event) {
    if (!(event instanceof Event)) throw new TypeError("Failed to execute 'dispatchEvent' on 'EventTarget': parameter 1 is not of type 'Event'.");
    const s = event[kEvent];
    if (s.dispatching) throw domError("The event is already being dispatched.", "InvalidStateError");
    s.dispatching = true; s.target = this; s.currentTarget = this; s.phase = 2;
    const map = this[kListeners];
    const list = map && map.get(s.type);
    // workerd lets a listener's exception propagate out of dispatchEvent
    // (skipping the remaining listeners) instead of reporting it.
    try {
      if (list) {
        for (const l of list.slice()) {
          if (l.removed) continue;
          if (l.once) this.removeEventListener(s.type, l.listener, { capture: l.capture });
          if (typeof l.listener === "function") l.listener.call(this, event);
          else if (typeof l.listener.handleEvent === "function") l.listener.handleEvent(event);
          if (s.stopImmediate) break;
        }
      }
    } finally {
      s.dispatching = false; s.currentTarget = null; s.phase = 0;
    }
    return !s.defaultPrevented;
  }
}
tag(EventTarget);

// on<event> attribute handlers (signal.onabort).
// With `direct`, the handler is not a listener: the owner calls it itself
// (workerd runs signal.onabort before every abort listener).
function defineEventHandler(proto, name, direct = false) {
  const key = Symbol("on" + name);
  ObjectDefineProperty(proto, "on" + name, {
    get() { return this[key] ? this[key].fn : null; },
    set(fn) {
      if (this[key]) { if (!direct) this.removeEventListener(name, this[key].wrapper); this[key] = null; }
      if (typeof fn === "function" && direct) {
        this[key] = { fn };
      } else if (typeof fn === "function") {
        const wrapper = (e) => fn.call(this, e);
        this[key] = { fn, wrapper };
        this.addEventListener(name, wrapper);
      }
    },
    configurable: true, enumerable: true,
  });
}

let allowSignalConstruct = false;
class AbortSignal extends EventTarget {
  constructor() {
    if (!allowSignalConstruct) throw new TypeError("Illegal constructor");
    super();
    this[kAbort] = { aborted: false, reason: undefined, followers: null };
  }
  get aborted() { return this[kAbort].aborted; }
  get reason() { return this[kAbort].reason; }
  throwIfAborted() { if (this[kAbort].aborted) throw this[kAbort].reason; }
  static abort(reason) {
    const s = newSignal();
    s[kAbort].aborted = true;
    s[kAbort].reason = reason === undefined ? domError("The operation was aborted", "AbortError") : reason;
    return s;
  }
  static timeout(ms) {
    ms = Number(ms);
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new TypeError("AbortSignal.timeout() requires a non-negative finite number of milliseconds.");
    const s = newSignal();
    if (typeof global.setTimeout !== "function") throw new TypeError("AbortSignal.timeout() needs a timer (setTimeout) in this context.");
    global.setTimeout(() => signalAbort(s, domError("The operation was aborted due to timeout", "TimeoutError")), ms);
    return s;
  }
  static any(signals) {
    const s = newSignal();
    for (const src of signals) {
      if (!(src instanceof AbortSignal)) throw new TypeError("AbortSignal.any() requires an iterable of AbortSignal.");
      if (src.aborted) { s[kAbort].aborted = true; s[kAbort].reason = src.reason; return s; }
    }
    for (const src of signals) {
      src.addEventListener("abort", () => signalAbort(s, src.reason), { once: true });
    }
    return s;
  }
}
defineEventHandler(AbortSignal.prototype, "abort", true);
tag(AbortSignal);

function newSignal() {
  allowSignalConstruct = true;
  try { return new AbortSignal(); } finally { allowSignalConstruct = false; }
}
function signalAbort(signal, reason) {
  const st = signal[kAbort];
  if (st.aborted) return;
  st.aborted = true;
  st.reason = reason === undefined ? domError("The operation was aborted", "AbortError") : reason;
  const event = new Event("abort");
  const handler = signal.onabort;
  if (typeof handler === "function") handler.call(signal, event);
  signal.dispatchEvent(event);
}

class AbortController {
  constructor() { this[kAbort] = newSignal(); }
  get signal() { return this[kAbort]; }
  abort(reason) { signalAbort(this[kAbort], reason); }
}
tag(AbortController);

defineGlobal("Event", Event);
defineGlobal("CustomEvent", CustomEvent);
defineGlobal("EventTarget", EventTarget);
defineGlobal("AbortSignal", AbortSignal);
defineGlobal("AbortController", AbortController);
