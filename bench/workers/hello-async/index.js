// Hello world from an async fetch(): the baseline hello-limited is
// measured against (the same shape as hearth-bench analytics' HELLO).
export default {
  async fetch() {
    return new Response("Hello World!");
  },
};
