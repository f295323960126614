// The cron area's scheduled() handler. It records what it saw in KV under
// "<scheduledTime>:<cron>" (the runner fires events at fixed times, one set
// of times per scenario); what it does besides depends on the cron.
export async function scheduled(controller, env, ctx) {
  const c = controller;
  const seen = {
    cron: c.cron,
    scheduledTime: c.scheduledTime,
    scheduledTimeType: typeof c.scheduledTime,
    iso: new Date(c.scheduledTime).toISOString(),
    type: c.type,
    noRetryType: typeof c.noRetry,
    ownKeys: Object.keys(c),
    argCount: arguments.length,
    ctxWaitUntil: typeof ctx.waitUntil,
  };
  const key = `${c.scheduledTime}:${c.cron}`;
  switch (c.cron) {
    // Throws after recording.
    case "30 2 29 2 *":
      await env.KV.put(key, JSON.stringify(seen));
      throw new Error("cron failed on purpose");
    // Calls noRetry() and then throws.
    case "15 3 1 7 *":
      c.noRetry();
      await env.KV.put(key, JSON.stringify({ ...seen, noRetryCalled: true }));
      throw new TypeError("failed after noRetry()");
    // Leaves its record to ctx.waitUntil(), after a timer.
    case "45 4 2 8 *":
      ctx.waitUntil(
        new Promise((r) => setTimeout(r, 200)).then(() => env.KV.put(key, JSON.stringify({ ...seen, via: "waitUntil" }))),
      );
      return;
    // A waitUntil() promise that rejects, the handler itself returning.
    case "50 5 * * *":
      ctx.waitUntil(Promise.reject(new Error("waitUntil rejected")));
      await env.KV.put(key, JSON.stringify(seen));
      return;
    default:
      await env.KV.put(key, JSON.stringify(seen));
  }
}
