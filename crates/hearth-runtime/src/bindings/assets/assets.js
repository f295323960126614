// env.ASSETS: the Fetcher over the worker's static assets.
(function (native, util) {
  "use strict";

  function bodyOf(handle) {
    if (handle === null) return null;
    return new ReadableStream({
      type: "bytes",
      pull(c) {
        const chunk = native.read(handle);
        if (chunk === null) c.close();
        else c.enqueue(new Uint8Array(chunk));
      },
      cancel() { native.cancel(handle); },
    });
  }

  class Fetcher {
    async fetch(input, init) {
      const request = input instanceof Request && init === undefined ? input : new Request(input, init);
      const url = new URL(request.url);
      const headers = [];
      for (const [name, value] of request.headers) headers.push([name, value]);
      const query = url.search.length > 1 ? url.search.slice(1) : null;
      const [status, responseHeaders, handle] = native.fetch(request.method, url.pathname, query, headers);
      const body = bodyOf(handle);
      return new Response(body, { status, headers: responseHeaders });
    }
    connect() {
      throw new TypeError("connect() is not supported on the assets binding.");
    }
  }
  void util;

  return new Fetcher();
})
