import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventEmitter } from 'node:events';

const als = new AsyncLocalStorage();
const other = new AsyncLocalStorage();
const tick = () => new Promise((r) => setTimeout(r, 0));

async function deep(n) {
  if (n === 0) return als.getStore();
  await tick();
  return deep(n - 1);
}

async function run() {
  eq('no store outside run', als.getStore(), undefined);
  eq('run returns the callback result and passes arguments', als.run(1, (a, b) => [als.getStore(), a + b], 2, 3), [1, 5]);
  eq('store gone after run', als.getStore(), undefined);

  // Awaits: promises, timers, plain values, nested async calls.
  const seen = await als.run('req-1', async () => {
    const out = [als.getStore()];
    await null;
    out.push(als.getStore());
    await tick();
    out.push(als.getStore());
    await sleep(1);
    out.push(als.getStore());
    out.push(await deep(3));
    await Promise.all([tick(), tick()]);
    out.push(als.getStore());
    return out;
  });
  eq('store survives awaits', seen, ['req-1', 'req-1', 'req-1', 'req-1', 'req-1', 'req-1']);
  eq('store not left behind after the awaited run', als.getStore(), undefined);

  // Two interleaved contexts keep their own stores.
  const both = await Promise.all(['a', 'b'].map((id) => als.run(id, async () => {
    const got = [];
    for (let i = 0; i < 3; i++) {
      await tick();
      got.push(als.getStore());
    }
    return got;
  })));
  eq('interleaved runs', both, [['a', 'a', 'a'], ['b', 'b', 'b']]);

  // Promise chains, timers, queueMicrotask, setInterval, process.nextTick.
  const chained = await als.run('chain', () => new Promise((resolve) => {
    const got = [];
    Promise.resolve()
      .then(() => got.push(als.getStore()))
      .then(() => Promise.reject(new Error('x')))
      .catch(() => got.push(als.getStore()))
      .finally(() => got.push(als.getStore()));
    setTimeout(() => got.push(als.getStore()), 0);
    queueMicrotask(() => got.push(als.getStore()));
    process.nextTick(() => got.push(als.getStore()));
    let n = 0;
    const id = setInterval(() => {
      got.push(als.getStore());
      if (++n === 2) {
        clearInterval(id);
        setTimeout(() => resolve(got), 0);
      }
    }, 1);
  }));
  eq('callbacks run in the context they were registered in', [chained.length, chained.every((s) => s === 'chain')], [8, true]);

  // A rejected await resumes in catch/finally with the store.
  const caught = await als.run('err', async () => {
    const got = [];
    try {
      await tick();
      await Promise.reject(new Error('fail'));
    } catch {
      got.push(als.getStore());
    } finally {
      got.push(als.getStore());
    }
    for await (const x of (async function* () {
      yield 1;
      await tick();
      yield 2;
    })()) {
      got.push(als.getStore() + x);
    }
    return got;
  });
  eq('catch, finally and for await keep the store', caught, ['err', 'err', 'err1', 'err2']);

  // Nested runs, exit, two storages, enterWith.
  const nested = await als.run('outer', async () => {
    const got = [];
    await other.run('o', async () => {
      await als.run('inner', async () => {
        await tick();
        got.push([als.getStore(), other.getStore()]);
      });
      got.push([als.getStore(), other.getStore()]);
      als.exit(() => got.push(['exit', als.getStore(), other.getStore()]));
    });
    got.push([als.getStore(), other.getStore()]);
    return got;
  });
  eq('nesting', nested, [['inner', 'o'], ['outer', 'o'], ['exit', undefined, 'o'], ['outer', undefined]]);
  const entered = await (async () => {
    als.enterWith('entered');
    await tick();
    return als.getStore();
  })();
  eq('enterWith lasts across awaits', entered, 'entered');
  als.disable();
  eq('disable clears', als.getStore(), undefined);

  // snapshot, AsyncResource, bind.
  const snap = als.run('snap', () => AsyncLocalStorage.snapshot());
  const bound = als.run('bound', () => AsyncLocalStorage.bind(() => als.getStore()));
  const resource = als.run('res', () => new AsyncResource('Thing'));
  eq('snapshot, bind, AsyncResource', [snap(() => als.getStore()), bound(), resource.runInAsyncScope(() => als.getStore()), resource.bind(function () { return [this.k, als.getStore()]; }).call({ k: 1 })], ['snap', 'bound', 'res', [1, 'res']]);
  throwsLike('AsyncResource needs a type', () => new AsyncResource(), { code: 'ERR_INVALID_ARG_TYPE' });

  // As in Node, EventEmitter listeners run in the emitter's caller context.
  const ee = new EventEmitter();
  let heard;
  ee.on('x', () => (heard = als.getStore()));
  als.run('emit', () => ee.emit('x'));
  eq('listeners see the emitting context', heard, 'emit');

  // An async function started in a context and awaited outside it.
  let later;
  als.run('started', () => {
    later = (async () => {
      await tick();
      await tick();
      return als.getStore();
    })();
  });
  eq('the continuation keeps the starting context', await later, 'started');
  eq('the caller stays outside', als.getStore(), undefined);
}
