// The smallest worker: the cost of the HTTP front and one JS call.
export default {
  fetch() {
    return new Response("Hello World!");
  },
};
