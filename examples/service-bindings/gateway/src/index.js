function bearer(request) {
  return (request.headers.get("authorization") || "").replace(/^Bearer /, "");
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    switch (url.pathname) {
      case "/me": {
        // RPC: errors thrown by the auth worker are rethrown here.
        try {
          const who = await env.AUTH.check(bearer(request));
          return Response.json({
            user: who.user,
            roles: [...who.roles],
            rolesIsSet: who.roles instanceof Set,
            issued: who.issued instanceof Date ? who.issued.toISOString() : null,
          });
        } catch (e) {
          return Response.json({ error: e.name, message: e.message, isRangeError: e instanceof RangeError }, { status: 401 });
        }
      }
      case "/verify":
        // fetch() across, without a socket: the auth worker's own response.
        return env.AUTH_HTTP.fetch("https://auth.internal/verify", {
          method: "POST",
          headers: { authorization: request.headers.get("authorization") || "" },
          body: "from gateway",
        });
      case "/describe":
        return Response.json(await env.AUTH_HTTP.describe());
      case "/missing-method":
        try {
          await env.AUTH.nope();
          return new Response("unreachable");
        } catch (e) {
          return Response.json({ error: e.name, message: e.message }, { status: 500 });
        }
      default:
        return new Response(`gateway at ${url.host}${url.pathname}`);
    }
  },
};
