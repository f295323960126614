// A metered JSON API. Each request names its caller with an `x-api-key`
// header; a key gets 5 requests a minute. Every request is recorded in the
// `api_usage` dataset: blob1 the path, blob2 the key, blob3 the outcome,
// double1 the time spent (ms), double2 the response size, index1 the key.

function record(env, request, key, outcome, started, body) {
  env.USAGE.writeDataPoint({
    blobs: [new URL(request.url).pathname, key, outcome],
    doubles: [Date.now() - started, body.length],
    indexes: [key],
  });
}

export default {
  async fetch(request, env) {
    const started = Date.now();
    const key = request.headers.get("x-api-key");
    if (!key) {
      const body = JSON.stringify({ error: "send your key in x-api-key" });
      record(env, request, "", "unauthenticated", started, body);
      return new Response(body, { status: 401, headers: { "content-type": "application/json" } });
    }
    const { success } = await env.PER_KEY.limit({ key });
    if (!success) {
      const body = JSON.stringify({ error: "rate limited: 5 requests a minute per key" });
      record(env, request, key, "limited", started, body);
      return new Response(body, {
        status: 429,
        headers: { "content-type": "application/json", "retry-after": "60" },
      });
    }
    const url = new URL(request.url);
    const body = JSON.stringify({ path: url.pathname, key, time: new Date().toISOString() });
    record(env, request, key, "ok", started, body);
    return new Response(body, { headers: { "content-type": "application/json" } });
  },
};
