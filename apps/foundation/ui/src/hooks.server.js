// Every /api/* request goes to the gateway over the GATEWAY service
// binding, unchanged (auth header, body, WebSocket upgrade).
export async function handle({ event, resolve }) {
  if (event.url.pathname.startsWith("/api/")) {
    const gateway = event.platform?.env?.GATEWAY;
    if (!gateway) return new Response(JSON.stringify({ error: "GATEWAY service binding missing" }), { status: 502 });
    return gateway.fetch(event.request);
  }
  return resolve(event);
}
