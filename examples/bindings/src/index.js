// Routes:
//   GET  /                    greeting from vars
//   PUT  /kv/:key  (body)     KV put;  GET /kv/:key  KV get;  GET /kv  list
//   POST /notes    (JSON)     D1 insert; GET /notes  D1 select
//   PUT  /files/:key (body)   R2 put;  GET /files/:key  R2 get with ETag
import { json, notFound } from "./respond.js";

const SCHEMA = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, created INTEGER NOT NULL)";

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const [, area, ...rest] = url.pathname.split("/");
    const key = decodeURIComponent(rest.join("/"));

    if (url.pathname === "/") {
      return new Response(`${env.GREETING}\n`);
    }

    if (area === "kv") {
      if (!key) {
        const list = await env.CACHE.list({ prefix: url.searchParams.get("prefix") ?? undefined });
        return json(list.keys.map((k) => k.name));
      }
      if (request.method === "PUT") {
        await env.CACHE.put(key, await request.text(), { metadata: { at: Date.now() } });
        return new Response(null, { status: 204 });
      }
      if (request.method === "DELETE") {
        await env.CACHE.delete(key);
        return new Response(null, { status: 204 });
      }
      const value = await env.CACHE.get(key);
      return value === null ? notFound(key) : new Response(value);
    }

    if (area === "notes") {
      await env.DB.exec(SCHEMA);
      if (request.method === "POST") {
        const { text } = await request.json();
        if (typeof text !== "string" || text === "") {
          return json({ error: "text must be a non-empty string" }, 400);
        }
        const result = await env.DB.prepare("INSERT INTO notes (text, created) VALUES (?1, ?2)")
          .bind(text, Date.now())
          .run();
        return json({ id: result.meta.last_row_id }, 201);
      }
      const { results } = await env.DB.prepare("SELECT id, text FROM notes ORDER BY id").all();
      return json(results);
    }

    if (area === "files" && key) {
      if (request.method === "PUT") {
        const object = await env.FILES.put(key, await request.arrayBuffer(), {
          httpMetadata: { contentType: request.headers.get("content-type") ?? "application/octet-stream" },
        });
        return json({ key: object.key, size: object.size, etag: object.etag }, 201);
      }
      const object = await env.FILES.get(key, { onlyIf: request.headers });
      if (object === null) return notFound(key);
      const headers = new Headers();
      object.writeHttpMetadata(headers);
      headers.set("etag", object.httpEtag);
      if (!("body" in object)) return new Response(null, { status: 304, headers });
      return new Response(object.body, { headers });
    }

    return notFound(url.pathname);
  },
};
