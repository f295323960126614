import { received } from 'hearth:node-internal';
// node:diagnostics_channel — named channels with synchronous subscribers.
const channels = new Map();

export class Channel {
  constructor(name) {
    this.name = name;
    this._subscribers = [];
    this._stores = new Map();
  }
  get hasSubscribers() {
    return this._subscribers.length > 0 || this._stores.size > 0;
  }
  subscribe(fn) {
    if (typeof fn !== 'function') {
      const e = new TypeError('The "subscription" argument must be of type function.' + received(fn));
      e.code = 'ERR_INVALID_ARG_TYPE';
      throw e;
    }
    this._subscribers = [...this._subscribers, fn];
  }
  unsubscribe(fn) {
    const i = this._subscribers.indexOf(fn);
    if (i < 0) return false;
    this._subscribers = [...this._subscribers.slice(0, i), ...this._subscribers.slice(i + 1)];
    return true;
  }
  publish(message) {
    for (const fn of this._subscribers) {
      try {
        fn(message, this.name);
      } catch (err) {
        // Node reports a subscriber's error asynchronously without stopping the others.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
  bindStore(store, transform) {
    this._stores.set(store, transform);
  }
  unbindStore(store) {
    return this._stores.delete(store);
  }
  runStores(data, fn, thisArg, ...args) {
    let run = () => {
      this.publish(data);
      return Reflect.apply(fn, thisArg, args);
    };
    for (const [store, transform] of this._stores) {
      const next = run;
      const value = transform ? transform(data) : data;
      run = () => store.run(value, next);
    }
    return run();
  }
}

export function channel(name) {
  if (typeof name !== 'string' && typeof name !== 'symbol') {
    const e = new TypeError('The "channel" argument must be one of type string or symbol.' + received(name));
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }
  let c = channels.get(name);
  if (!c) {
    c = new Channel(name);
    channels.set(name, c);
  }
  return c;
}

export function hasSubscribers(name) {
  const c = channels.get(name);
  return c ? c.hasSubscribers : false;
}

export function subscribe(name, fn) {
  channel(name).subscribe(fn);
}

export function unsubscribe(name, fn) {
  return channel(name).unsubscribe(fn);
}

const traceEvents = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'];

export class TracingChannel {
  constructor(nameOrChannels) {
    for (const ev of traceEvents) {
      this[ev] = typeof nameOrChannels === 'string' ? channel('tracing:' + nameOrChannels + ':' + ev) : nameOrChannels[ev];
    }
  }
  get hasSubscribers() {
    return traceEvents.some((ev) => this[ev].hasSubscribers);
  }
  subscribe(handlers) {
    for (const ev of traceEvents) if (handlers[ev]) this[ev].subscribe(handlers[ev]);
  }
  unsubscribe(handlers) {
    let ok = true;
    for (const ev of traceEvents) if (handlers[ev] && !this[ev].unsubscribe(handlers[ev])) ok = false;
    return ok;
  }
  traceSync(fn, context = {}, thisArg, ...args) {
    this.start.publish(context);
    try {
      const result = Reflect.apply(fn, thisArg, args);
      context.result = result;
      return result;
    } catch (err) {
      context.error = err;
      this.error.publish(context);
      throw err;
    } finally {
      this.end.publish(context);
    }
  }
  tracePromise(fn, context = {}, thisArg, ...args) {
    this.start.publish(context);
    try {
      const p = Reflect.apply(fn, thisArg, args);
      return Promise.resolve(p).then(
        (result) => {
          context.result = result;
          this.asyncStart.publish(context);
          this.asyncEnd.publish(context);
          return result;
        },
        (err) => {
          context.error = err;
          this.error.publish(context);
          this.asyncStart.publish(context);
          this.asyncEnd.publish(context);
          throw err;
        },
      );
    } catch (err) {
      context.error = err;
      this.error.publish(context);
      throw err;
    } finally {
      this.end.publish(context);
    }
  }
  traceCallback(fn, position = -1, context = {}, thisArg, ...args) {
    const cb = args.at(position);
    const self = this;
    args.splice(position < 0 ? args.length + position : position, 1, function (err, res) {
      if (err) {
        context.error = err;
        self.error.publish(context);
      } else {
        context.result = res;
      }
      self.asyncStart.publish(context);
      try {
        return Reflect.apply(cb, this, arguments);
      } finally {
        self.asyncEnd.publish(context);
      }
    });
    return this.traceSync(fn, context, thisArg, ...args);
  }
}

export function tracingChannel(nameOrChannels) {
  return new TracingChannel(nameOrChannels);
}

const dc = { channel, hasSubscribers, subscribe, unsubscribe, tracingChannel, Channel, TracingChannel };
export default dc;
export { dc as 'module.exports' };
