// Runs env.AI.run with what the test posts, and answers with the result,
// the event stream, or the error's name and message.
export default {
  async fetch(request, env) {
    const { model, inputs, options } = await request.json();
    try {
      const out = await env.AI.run(model, inputs, options);
      if (out instanceof ReadableStream) {
        return new Response(out, { headers: { "content-type": "text/event-stream" } });
      }
      if (out instanceof Response) return out;
      return Response.json(out);
    } catch (e) {
      return Response.json(
        { name: e.name, message: e.message, isError: e instanceof Error },
        { status: 500 },
      );
    }
  },
};
