// The rate limiter a worker sees (`env.<NAME>`): `limit(options)` resolves
// to `{ success }`. Options are checked here with the messages Workers
// gives; `native.count` counts in the namespace shared by every binding
// with the same namespace_id.
(function (native, util) {
  "use strict";
  const allowed = ["key", "limit", "period"];

  function check(ok, message) {
    if (!ok) throw new Error(message);
  }

  class RateLimit {
    async limit(options) {
      check(typeof options === "object" && options !== null, "invalid rate limit options");
      const unknown = Object.keys(options).filter((k) => !allowed.includes(k));
      check(unknown.length === 0, "bad rate limit options: [" + unknown.join(",") + "]");
      const key = options.key === undefined ? "" : options.key;
      const limit = options.limit === undefined ? native.limit : options.limit;
      const period = options.period === undefined ? native.period : options.period;
      check(typeof key === "string", "invalid key: " + String(key));
      check(typeof limit === "number" && Number.isFinite(limit) && limit >= 0, "limit must be a number: " + String(limit));
      check(typeof period === "number", "period must be a number: " + String(period));
      check(period === 10 || period === 60, "unsupported period: " + String(period));
      return { success: native.count(key, Math.floor(limit), period) };
    }
  }
  return new RateLimit();
})
