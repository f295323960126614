// The rate limiter a worker sees (`env.<NAME>`): `limit(options)` resolves
// to `{ success }`. Options are checked here with the messages Workers
// gives; `native.count` counts in the namespace shared by every binding
// with the same namespace_id.
(function (native, util) {
  "use strict";
  const allowed = ["key", "limit", "period"];

  // Messages are built only when a check fails: this runs on every request.
  function fail(message) {
    throw new Error(message);
  }

  class RateLimit {
    async limit(options) {
      if (typeof options !== "object" || options === null) fail("invalid rate limit options");
      const names = Object.keys(options);
      for (let i = 0; i < names.length; i++) {
        if (!allowed.includes(names[i])) {
          const unknown = names.filter((k) => !allowed.includes(k));
          fail("bad rate limit options: [" + unknown.join(",") + "]");
        }
      }
      const key = options.key === undefined ? "" : options.key;
      const limit = options.limit === undefined ? native.limit : options.limit;
      const period = options.period === undefined ? native.period : options.period;
      if (typeof key !== "string") fail("invalid key: " + String(key));
      if (typeof limit !== "number" || !Number.isFinite(limit) || limit < 0) {
        fail("limit must be a number: " + String(limit));
      }
      if (typeof period !== "number") fail("period must be a number: " + String(period));
      if (period !== 10 && period !== 60) fail("unsupported period: " + String(period));
      return { success: native.count(key, Math.floor(limit), period) };
    }
  }
  return new RateLimit();
})
