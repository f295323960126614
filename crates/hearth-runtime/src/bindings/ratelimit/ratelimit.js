// The rate limiter a worker sees (`env.<NAME>`): `limit(options)` resolves
// to `{ success }`. `native.check` checks the options (throwing Workers'
// messages) and counts in the namespace shared by every binding with the
// same namespace_id. Not an async method: this runs on every request that
// calls it, and a settled promise is the cheaper way to the same result.
(function (native, util) {
  "use strict";
  const check = native.check;

  class RateLimit {
    limit(options) {
      try {
        return Promise.resolve({ success: check(options) });
      } catch (e) {
        return Promise.reject(e);
      }
    }
  }
  return new RateLimit();
})
