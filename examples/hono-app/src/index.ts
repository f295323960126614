// A Hono API behind a static front end (public/):
//   GET  /api/health             no auth
//   POST /api/login              {"user": "..."} -> {"token"} (HS256 JWT, 1 hour)
//   GET  /api/notes              list the caller's notes      (Bearer token)
//   POST /api/notes              {"text": "..."} -> 201         (Bearer token)
//   GET  /api/whoami             the token's claims           (Bearer token)
// Everything else is served from public/, with the SPA shell for unknown pages.
import { Hono } from "hono";
import { cors } from "hono/cors";
import { logger } from "hono/logger";
import { HTTPException } from "hono/http-exception";
import { jwt, sign } from "hono/jwt";

type Bindings = {
  JWT_SECRET: string;
  NOTES: KVNamespace;
  ASSETS: Fetcher;
};

type Claims = { sub: string; exp: number };

interface Note {
  text: string;
  at: number;
}

const app = new Hono<{ Bindings: Bindings; Variables: { jwtPayload: Claims } }>();

app.use("*", logger());
app.use("/api/*", cors({ origin: "*", allowHeaders: ["Authorization", "Content-Type"] }));

// Requests reaching the worker stamp their route, so tests can tell the
// worker's answers from the assets'.
app.use("*", async (c, next) => {
  await next();
  c.res.headers.set("x-served-by", "hono");
});

app.get("/api/health", (c) => c.json({ ok: true }));

app.post("/api/login", async (c) => {
  const body = await c.req.json<{ user?: unknown }>().catch(() => ({}) as { user?: unknown });
  if (typeof body.user !== "string" || body.user === "") {
    throw new HTTPException(400, { message: "user must be a non-empty string" });
  }
  const claims: Claims = { sub: body.user, exp: Math.floor(Date.now() / 1000) + 3600 };
  return c.json({ token: await sign(claims, c.env.JWT_SECRET, "HS256") });
});

app.use("/api/notes/*", (c, next) => jwt({ secret: c.env.JWT_SECRET, alg: "HS256" })(c, next));
app.use("/api/notes", (c, next) => jwt({ secret: c.env.JWT_SECRET, alg: "HS256" })(c, next));
app.use("/api/whoami", (c, next) => jwt({ secret: c.env.JWT_SECRET, alg: "HS256" })(c, next));

app.get("/api/whoami", (c) => c.json(c.get("jwtPayload")));

app.get("/api/notes", async (c) => {
  const user = c.get("jwtPayload").sub;
  const notes = (await c.env.NOTES.get<Note[]>(`notes:${user}`, "json")) ?? [];
  return c.json(notes);
});

app.post("/api/notes", async (c) => {
  const user = c.get("jwtPayload").sub;
  const { text } = await c.req.json<{ text?: unknown }>();
  if (typeof text !== "string" || text === "") {
    return c.json({ error: "text must be a non-empty string" }, 400);
  }
  const notes = (await c.env.NOTES.get<Note[]>(`notes:${user}`, "json")) ?? [];
  notes.push({ text, at: Date.now() });
  await c.env.NOTES.put(`notes:${user}`, JSON.stringify(notes));
  return c.json({ count: notes.length }, 201);
});

app.notFound((c) => {
  if (c.req.path.startsWith("/api/")) return c.json({ error: "no such API route" }, 404);
  // Anything else is the front end's: let the assets answer (SPA shell).
  return c.env.ASSETS.fetch(c.req.raw);
});

app.onError((err, c) => {
  if (err instanceof HTTPException) return c.json({ error: err.message }, err.status);
  console.error(err);
  return c.json({ error: "internal error" }, 500);
});

export default app;
