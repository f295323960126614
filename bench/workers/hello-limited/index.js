// Hello world with one rate-limit check per request, over 1000 keys (the
// same worker as hearth-bench analytics' overhead case).
let n = 0;
export default {
  async fetch(request, env) {
    const { success } = await env.LIMITER.limit({ key: "client-" + (n++ % 1000) });
    return new Response(success ? "Hello World!" : "Too many");
  },
};
