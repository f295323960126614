// D1 point reads and single-row inserts. POST /seed?rows=N creates the
// table with rows 1..N; GET /select?id=N returns one row as JSON;
// POST /insert adds one row.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/seed" && request.method === "POST") {
      const rows = Number(url.searchParams.get("rows") ?? 0);
      await env.DB.prepare(
        "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price INTEGER NOT NULL)",
      ).run();
      await env.DB.prepare(
        "INSERT INTO items (id, name, price) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) SELECT i, 'item-' || i, i * 7 % 1000 FROM n",
      )
        .bind(rows)
        .run();
      return new Response("ok");
    }
    if (url.pathname === "/select") {
      const id = Number(url.searchParams.get("id"));
      const row = await env.DB.prepare("SELECT id, name, price FROM items WHERE id = ?1")
        .bind(id)
        .first();
      if (row === null) {
        return new Response("not found", { status: 404 });
      }
      return Response.json(row);
    }
    if (url.pathname === "/insert" && request.method === "POST") {
      const { name, price } = await request.json();
      await env.DB.prepare("INSERT INTO items (name, price) VALUES (?1, ?2)")
        .bind(name, price)
        .run();
      return new Response("ok");
    }
    return new Response("not found", { status: 404 });
  },
};
