// The package corpus: GET /<check> imports one npm package (dynamically, so
// a package that cannot load fails its own check only) and exercises it the
// way a Worker would, answering {"ok": true, "detail": ...} or
// {"ok": false, "error": ...}. GET / lists the checks.

function expect(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

function truthy(value, what) {
  if (!value) throw new Error(`${what}: expected a true value, got ${JSON.stringify(value)}`);
}

async function rejects(promise, what) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error(`${what}: expected a rejection`);
}

// A stand-in for Upstash's REST API, served by this worker itself so the
// client's real fetch() path runs without the internet.
const upstash = new Map();
function upstashCommand([command, key, value]) {
  switch (String(command).toUpperCase()) {
    case "SET":
      upstash.set(key, value);
      return { result: "OK" };
    case "GET":
      return { result: upstash.has(key) ? upstash.get(key) : null };
    default:
      return { error: `unknown command ${command}` };
  }
}

async function fakeUpstash(request, path) {
  const body = await request.json();
  if (path.endsWith("/pipeline")) return Response.json(body.map(upstashCommand));
  const out = upstashCommand(body);
  return Response.json(out, { status: out.error ? 400 : 200 });
}

// A stand-in for OpenAI's chat completions endpoint.
async function fakeOpenAI(request) {
  const body = await request.json();
  if (request.headers.get("authorization") !== "Bearer sk-corpus") {
    return Response.json({ error: { message: "bad key", type: "invalid_request_error" } }, { status: 401 });
  }
  const last = body.messages[body.messages.length - 1].content;
  return Response.json({
    id: "chatcmpl-corpus",
    object: "chat.completion",
    created: 0,
    model: body.model,
    choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: `echo: ${last}` } }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });
}

const checks = {
  async hono() {
    const { Hono } = await import("hono");
    const app = new Hono();
    app.get("/hi/:name", (c) => c.json({ hi: c.req.param("name") }));
    app.notFound((c) => c.text("nope", 404));
    const r = await app.request("/hi/ann");
    expect(await r.json(), { hi: "ann" }, "route");
    expect((await app.request("/missing")).status, 404, "notFound");
    return "routing, params, json, notFound";
  },

  async "hono-jsx"() {
    const { jsx } = await import("hono/jsx");
    const { html } = await import("hono/html");
    const el = jsx("ul", { class: "list" }, jsx("li", null, "a & b"));
    expect(el.toString(), '<ul class="list"><li>a &amp; b</li></ul>', "jsx");
    expect((await html`<p>${"<b>"}</p>`).toString(), "<p>&lt;b&gt;</p>", "html");
    return "hono/jsx and hono/html render escaped markup";
  },

  // Hono's cache middleware over the Cache API: the second request is
  // answered from caches.open(cacheName) without running the handler.
  async "hono/cache"() {
    const { Hono } = await import("hono");
    const { cache } = await import("hono/cache");
    let runs = 0;
    const app = new Hono();
    app.get("/cached/*", cache({ cacheName: "corpus", cacheControl: "max-age=60", wait: true }), (c) => {
      runs += 1;
      return c.text(`run ${runs}`);
    });
    const path = `/cached/${crypto.randomUUID()}`;
    const first = await app.request(`https://corpus.test${path}`);
    expect(await first.text(), "run 1", "first");
    const second = await app.request(`https://corpus.test${path}`);
    expect([await second.text(), runs], ["run 1", 1], "second from cache");
    return "cache middleware serves the second request from caches.open()";
  },

  async "hono/streaming"() {
    const { Hono } = await import("hono");
    const { streamSSE } = await import("hono/streaming");
    const app = new Hono();
    app.get("/sse", (c) =>
      streamSSE(c, async (stream) => {
        for (let i = 1; i <= 2; i++) await stream.writeSSE({ event: "tick", data: String(i), id: String(i) });
      }),
    );
    const r = await app.request("/sse");
    expect(r.headers.get("content-type"), "text/event-stream", "content-type");
    expect(await r.text(), "event: tick\ndata: 1\nid: 1\n\nevent: tick\ndata: 2\nid: 2\n\n", "events");
    return "streamSSE";
  },

  async "hono-jwt"() {
    const { sign, verify } = await import("hono/jwt");
    const token = await sign({ sub: "ann", exp: Math.floor(Date.now() / 1000) + 60 }, "secret", "HS256");
    expect((await verify(token, "secret", "HS256")).sub, "ann", "verify");
    await rejects(verify(token, "other", "HS256"), "wrong secret");
    return "HS256 sign/verify";
  },

  async "@hono/zod-validator"() {
    const { Hono } = await import("hono");
    const { zValidator } = await import("@hono/zod-validator");
    const { z } = await import("zod");
    const app = new Hono();
    app.post("/n", zValidator("json", z.object({ n: z.number() })), (c) => c.json({ twice: c.req.valid("json").n * 2 }));
    const post = (body) => app.request("/n", { method: "POST", body, headers: { "content-type": "application/json" } });
    expect(await (await post('{"n":21}')).json(), { twice: 42 }, "valid");
    expect((await post('{"n":"x"}')).status, 400, "invalid");
    return "valid body 200, invalid 400";
  },

  async "itty-router"() {
    const { Router, json, error } = await import("itty-router");
    const router = Router({ catch: error, finally: [] });
    router.get("/items/:id", ({ params }) => json({ id: params.id }));
    router.all("*", () => error(404));
    const r = await router.fetch(new Request("https://corpus.test/items/7"));
    expect(await r.json(), { id: "7" }, "route");
    expect((await router.fetch(new Request("https://corpus.test/else"))).status, 404, "fallback");
    return "Router, params, json, error";
  },

  async chanfana() {
    const { fromHono, OpenAPIRoute } = await import("chanfana");
    const { Hono } = await import("hono");
    const { z } = await import("zod");
    class GetTask extends OpenAPIRoute {
      schema = {
        request: { params: z.object({ id: z.string() }) },
        responses: { 200: { description: "the task" } },
      };
      async handle() {
        const data = await this.getValidatedData();
        return { id: data.params.id };
      }
    }
    const app = fromHono(new Hono());
    app.get("/tasks/:id", GetTask);
    expect(await (await app.request("/tasks/9")).json(), { id: "9" }, "handler");
    const spec = await (await app.request("/openapi.json")).json();
    truthy(spec.paths["/tasks/{id}"], "openapi path");
    return "OpenAPIRoute on Hono, /openapi.json";
  },

  async zod() {
    const { z } = await import("zod");
    const User = z.object({ name: z.string().min(1), age: z.number().int().positive() });
    expect(User.parse({ name: "ann", age: 3 }), { name: "ann", age: 3 }, "parse");
    const bad = User.safeParse({ name: "", age: -1 });
    expect(bad.success, false, "safeParse");
    expect(bad.error.issues.length, 2, "issues");
    return "parse, safeParse with issues";
  },

  async valibot() {
    const v = await import("valibot");
    const Schema = v.object({ email: v.pipe(v.string(), v.email()) });
    expect(v.safeParse(Schema, { email: "a@b.co" }).success, true, "valid");
    expect(v.safeParse(Schema, { email: "nope" }).success, false, "invalid");
    return "object, pipe, email";
  },

  async jose() {
    const jose = await import("jose");
    const secret = new TextEncoder().encode("a-string-secret-at-least-256-bits-long");
    const jwt = await new jose.SignJWT({ role: "admin" })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("ann")
      .setExpirationTime("2h")
      .sign(secret);
    const { payload } = await jose.jwtVerify(jwt, secret);
    expect([payload.sub, payload.role], ["ann", "admin"], "HS256");
    const { publicKey, privateKey } = await jose.generateKeyPair("ES256");
    const es = await new jose.SignJWT({}).setProtectedHeader({ alg: "ES256" }).sign(privateKey);
    await jose.jwtVerify(es, publicKey);
    const jwk = await jose.exportJWK(publicKey);
    expect(jwk.kty, "EC", "exportJWK");
    return "HS256 and ES256 JWTs, JWK export";
  },

  async "@openauthjs/openauth"() {
    const { createSubjects } = await import("@openauthjs/openauth/subject");
    const { createClient } = await import("@openauthjs/openauth/client");
    const v = await import("valibot");
    const subjects = createSubjects({ user: v.object({ id: v.string() }) });
    truthy(subjects.user, "subjects");
    const client = createClient({ clientID: "corpus", issuer: "https://auth.corpus.test" });
    const { url } = await client.authorize("https://corpus.test/callback", "code");
    const u = new URL(url);
    expect([u.origin, u.pathname, u.searchParams.get("client_id"), u.searchParams.get("response_type")],
      ["https://auth.corpus.test", "/authorize", "corpus", "code"], "authorize url");
    return "subjects, client.authorize";
  },

  async "drizzle-orm"(env) {
    const { drizzle } = await import("drizzle-orm/d1");
    const { sqliteTable, text, integer } = await import("drizzle-orm/sqlite-core");
    const { eq } = await import("drizzle-orm");
    await env.DB.exec("DROP TABLE IF EXISTS drizzle_users; CREATE TABLE drizzle_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
    const users = sqliteTable("drizzle_users", { id: integer("id").primaryKey(), name: text("name").notNull() });
    const db = drizzle(env.DB);
    await db.insert(users).values([{ name: "ann" }, { name: "bob" }]);
    const rows = await db.select().from(users).where(eq(users.name, "bob"));
    expect(rows, [{ id: 2, name: "bob" }], "select");
    await db.update(users).set({ name: "cy" }).where(eq(users.id, 1));
    const all = await db.select({ name: users.name }).from(users).orderBy(users.id);
    expect(all, [{ name: "cy" }, { name: "bob" }], "update");
    return "insert, select where, update over D1";
  },

  async kysely(env) {
    const { Kysely } = await import("kysely");
    const { D1Dialect } = await import("kysely-d1");
    await env.DB.exec("DROP TABLE IF EXISTS kysely_pets; CREATE TABLE kysely_pets (id INTEGER PRIMARY KEY, name TEXT, legs INTEGER)");
    const db = new Kysely({ dialect: new D1Dialect({ database: env.DB }) });
    await db.insertInto("kysely_pets").values([{ name: "cat", legs: 4 }, { name: "bird", legs: 2 }]).execute();
    const rows = await db.selectFrom("kysely_pets").select(["name"]).where("legs", ">", 3).execute();
    expect(rows, [{ name: "cat" }], "select");
    return "insertInto, selectFrom where over D1";
  },

  async "react-dom/server"() {
    const React = await import("react");
    const { renderToString, renderToReadableStream } = await import("react-dom/server");
    const h = React.createElement;
    function Greeting({ name }) {
      const [n] = React.useState(2);
      return h("p", { className: "g" }, `hi ${name} x${n}`);
    }
    expect(renderToString(h(Greeting, { name: "ann" })), '<p class="g">hi ann x2</p>', "renderToString");
    const stream = await renderToReadableStream(h("main", null, h(Greeting, { name: "bob" })));
    await stream.allReady;
    const text = await new Response(stream).text();
    expect(text, '<main><p class="g">hi bob x2</p></main>', "renderToReadableStream");
    return "renderToString, renderToReadableStream with hooks";
  },

  async "preact-render-to-string"() {
    const { h } = await import("preact");
    const { render } = await import("preact-render-to-string");
    const { useState } = await import("preact/hooks");
    function Item({ label }) {
      const [count] = useState(3);
      return h("li", { class: "item" }, `${label}: ${count}`);
    }
    expect(render(h("ul", null, h(Item, { label: "a<b" }))), '<ul><li class="item">a&lt;b: 3</li></ul>', "render");
    return "render with hooks and escaping";
  },

  async aws4fetch() {
    const { AwsClient } = await import("aws4fetch");
    const aws = new AwsClient({ accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", service: "s3", region: "us-east-1" });
    const signed = await aws.sign("https://bucket.s3.amazonaws.com/key.txt", { method: "GET", aws: { datetime: "20240101T000000Z" } });
    const auth = signed.headers.get("authorization");
    expect(auth, AWS4FETCH_EXPECTED, "authorization");
    return "SigV4 signature matches Node's";
  },

  async nanoid() {
    const { nanoid, customAlphabet } = await import("nanoid");
    const id = nanoid();
    expect([id.length, /^[A-Za-z0-9_-]+$/.test(id)], [21, true], "nanoid");
    const hex = customAlphabet("0123456789abcdef", 8)();
    expect(/^[0-9a-f]{8}$/.test(hex), true, "customAlphabet");
    truthy(nanoid() !== id, "unique");
    return "nanoid, customAlphabet";
  },

  async uuid() {
    const uuid = await import("uuid");
    const v4 = uuid.v4();
    expect([uuid.validate(v4), uuid.version(v4)], [true, 4], "v4");
    expect(uuid.v5("hearth", uuid.v5.DNS), UUID_V5_EXPECTED, "v5");
    const v7 = uuid.v7();
    expect(uuid.version(v7), 7, "v7");
    return "v4, v5 (matches Node), v7";
  },

  async "date-fns"() {
    const { format, addDays, differenceInCalendarDays, parseISO } = await import("date-fns");
    const d = parseISO("2024-02-28T12:00:00Z");
    expect(format(addDays(new Date(2024, 1, 28), 2), "yyyy-MM-dd"), "2024-03-01", "leap year");
    expect(differenceInCalendarDays(new Date(2024, 11, 25), new Date(2024, 0, 1)), 359, "difference");
    truthy(!Number.isNaN(d.getTime()), "parseISO");
    return "format, addDays, differenceInCalendarDays";
  },

  async dayjs() {
    const dayjs = (await import("dayjs")).default;
    expect(dayjs("2024-01-31").add(1, "month").format("YYYY-MM-DD"), "2024-02-29", "add month");
    return "add, format";
  },

  async superjson() {
    const superjson = (await import("superjson")).default;
    const value = { at: new Date(0), tags: new Set(["a"]), big: 10n, m: new Map([["k", 1]]) };
    const back = superjson.parse(superjson.stringify(value));
    expect([back.at instanceof Date, back.at.getTime(), [...back.tags], typeof back.big, back.m.get("k")],
      [true, 0, ["a"], "bigint", 1], "roundtrip");
    return "Date, Set, BigInt, Map round trip";
  },

  async cookie() {
    const cookie = await import("cookie");
    const parse = cookie.parse ?? cookie.default.parse;
    const serialize = cookie.serialize ?? cookie.default.serialize;
    expect(parse("a=1; b=hello%20world"), { a: "1", b: "hello world" }, "parse");
    expect(serialize("sid", "x y", { httpOnly: true, path: "/", maxAge: 60 }), "sid=x%20y; Max-Age=60; Path=/; HttpOnly", "serialize");
    return "parse, serialize";
  },

  async marked() {
    const { marked } = await import("marked");
    expect(await marked.parse("# Title\n\nSome *text* and `code`."),
      '<h1>Title</h1>\n<p>Some <em>text</em> and <code>code</code>.</p>\n', "parse");
    return "headings, emphasis, code";
  },

  async stripe() {
    const Stripe = (await import("stripe")).default;
    const stripe = new Stripe("sk_test_corpus", { httpClient: Stripe.createFetchHttpClient() });
    const payload = JSON.stringify({ id: "evt_corpus", object: "event", type: "ping" });
    const secret = "whsec_corpus";
    const header = await stripe.webhooks.generateTestHeaderStringAsync({ payload, secret });
    const provider = Stripe.createSubtleCryptoProvider();
    const event = await stripe.webhooks.constructEventAsync(payload, header, secret, undefined, provider);
    expect(event.id, "evt_corpus", "constructEventAsync");
    await rejects(stripe.webhooks.constructEventAsync(payload, header, "whsec_other", undefined, provider), "wrong secret");
    return "webhook signatures through SubtleCrypto";
  },

  async postgres() {
    const postgres = (await import("postgres")).default;
    // Nothing listens on port 1: the driver must reach the socket layer and
    // report the refusal, as it does on Workers.
    const sql = postgres("postgres://u:p@127.0.0.1:1/db", { max: 1, connect_timeout: 2, idle_timeout: 1 });
    const err = await rejects(sql`select 1`, "connect");
    await sql.end({ timeout: 0 }).catch(() => {});
    const text = `${err.code ?? ""} ${err.message}`;
    truthy(/ECONNREFUSED|refused|connect/i.test(text), `connection error (${text})`);
    return `reached the socket layer: ${text.trim()}`;
  },

  async "toucan-js"(env, ctx, request) {
    const { Toucan } = await import("toucan-js");
    let sent = null;
    const sentry = new Toucan({
      dsn: "https://public@o0.ingest.sentry.io/0",
      context: ctx,
      request,
      beforeSend(event) {
        sent = event;
        return null;
      },
    });
    sentry.setTag("corpus", "yes");
    sentry.captureException(new Error("boom"));
    // Events are processed asynchronously; give them a few turns.
    for (let i = 0; i < 50 && sent === null; i++) await new Promise((r) => setTimeout(r, 1));
    truthy(sent, "beforeSend saw the event");
    expect([sent.exception.values[0].value, sent.tags.corpus], ["boom", "yes"], "event");
    return "captureException with tags";
  },

  async "@upstash/redis"(env, ctx, request) {
    const { Redis } = await import("@upstash/redis");
    const redis = new Redis({ url: new URL("/__fake/upstash", request.url).href, token: "t", automaticDeserialization: false });
    expect(await redis.set("k", "v"), "OK", "set");
    expect(await redis.get("k"), "v", "get");
    return "set/get over fetch to a local stand-in";
  },

  async fflate() {
    const { gzipSync, gunzipSync, strToU8, strFromU8 } = await import("fflate");
    const input = "hearth ".repeat(200);
    const packed = gzipSync(strToU8(input));
    truthy(packed.length < input.length / 5, "compressed");
    expect(strFromU8(gunzipSync(packed)), input, "roundtrip");
    return `gzip ${input.length} -> ${packed.length} bytes and back`;
  },

  async yaml() {
    const YAML = await import("yaml");
    const doc = YAML.parse("a: 1\nlist:\n  - x\n  - y\n");
    expect(doc, { a: 1, list: ["x", "y"] }, "parse");
    expect(YAML.stringify({ b: [1, 2] }), "b:\n  - 1\n  - 2\n", "stringify");
    return "parse, stringify";
  },

  async bcryptjs() {
    const bcrypt = (await import("bcryptjs")).default;
    const hash = bcrypt.hashSync("pw", 4);
    expect([bcrypt.compareSync("pw", hash), bcrypt.compareSync("nope", hash)], [true, false], "compare");
    return "hashSync, compareSync";
  },

  async openai(env, ctx, request) {
    const OpenAI = (await import("openai")).default;
    const client = new OpenAI({ apiKey: "sk-corpus", baseURL: new URL("/__fake/openai", request.url).href, maxRetries: 0 });
    const done = await client.chat.completions.create({ model: "gpt-corpus", messages: [{ role: "user", content: "hi" }] });
    expect(done.choices[0].message.content, "echo: hi", "completion");
    const bad = new OpenAI({ apiKey: "sk-wrong", baseURL: new URL("/__fake/openai", request.url).href, maxRetries: 0 });
    const err = await rejects(bad.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] }), "401");
    expect(err.status, 401, "error status");
    return "chat.completions.create and a 401 over fetch to a local stand-in";
  },

  async jsonwebtoken() {
    const jwt = (await import("jsonwebtoken")).default;
    const token = jwt.sign({ sub: "ann" }, "secret", { algorithm: "HS256", expiresIn: "1h" });
    expect(jwt.verify(token, "secret").sub, "ann", "verify");
    let threw = null;
    try {
      jwt.verify(token, "wrong");
    } catch (e) {
      threw = e.name;
    }
    expect(threw, "JsonWebTokenError", "wrong secret");
    return "HS256 sign/verify through node:crypto";
  },

  async pg() {
    const pg = (await import("pg")).default;
    const client = new pg.Client({ host: "127.0.0.1", port: 1, user: "u", password: "p", database: "d", connectionTimeoutMillis: 2000 });
    const err = await rejects(client.connect(), "connect");
    const text = `${err.code ?? ""} ${err.message}`;
    truthy(/ECONNREFUSED|refused|connect/i.test(text), `connection error (${text})`);
    return `reached the socket layer: ${text.trim()}`;
  },

  async linkedom() {
    const { parseHTML } = await import("linkedom");
    const { document } = parseHTML("<html><body><ul><li class=a>1</li><li class=a>2</li></ul></body></html>");
    const items = [...document.querySelectorAll("li.a")].map((li) => li.textContent);
    expect(items, ["1", "2"], "querySelectorAll");
    document.querySelector("ul").appendChild(document.createElement("li")).textContent = "3";
    expect(document.querySelectorAll("li").length, 3, "appendChild");
    return "parseHTML, querySelectorAll, appendChild";
  },

  async "@noble/hashes"() {
    const { sha256 } = await import("@noble/hashes/sha2.js");
    const { bytesToHex } = await import("@noble/hashes/utils.js");
    expect(bytesToHex(sha256(new TextEncoder().encode("abc"))),
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256");
    return "sha256 test vector";
  },

  async handlebars() {
    const Handlebars = (await import("handlebars")).default;
    Handlebars.registerHelper("upper", (s) => String(s).toUpperCase());
    const template = Handlebars.compile("Hi {{upper name}}: {{#each items}}[{{this}}]{{/each}} {{raw}} {{{raw}}}");
    expect(template({ name: "ann", items: [1, 2], raw: "<b>" }), "Hi ANN: [1][2] &lt;b&gt; <b>", "render");
    return "compile (new Function), helpers, escaping";
  },

  async cheerio() {
    const cheerio = await import("cheerio");
    const $ = cheerio.load('<ul id="l"><li class="x">a</li><li>b</li></ul>');
    expect($("li").map((i, el) => $(el).text()).get(), ["a", "b"], "select");
    $("#l").append("<li>c</li>");
    expect([$("li").length, $("li.x").text()], [3, "a"], "append");
    return "load, select, append";
  },

  async "@sentry/cloudflare"(env, ctx, request) {
    const Sentry = await import("@sentry/cloudflare");
    let sent = null;
    const handler = Sentry.withSentry(
      () => ({ dsn: "https://public@o0.ingest.sentry.io/0", beforeSend(event) { sent = event; return null; } }),
      { async fetch() { throw new Error("sentry boom"); } },
    );
    await rejects(handler.fetch(request, env, ctx), "handler throws");
    for (let i = 0; i < 50 && sent === null; i++) await new Promise((r) => setTimeout(r, 1));
    truthy(sent, "beforeSend saw the event");
    expect(sent.exception.values[0].value, "sentry boom", "event");
    return "withSentry reports a thrown error";
  },

  async qs() {
    const qs = (await import("qs")).default;
    expect(qs.parse("a[b][c]=1&list[]=x&list[]=y"), { a: { b: { c: "1" } }, list: ["x", "y"] }, "parse");
    expect(qs.stringify({ a: { b: 1 } }, { encode: false }), "a[b]=1", "stringify");
    return "nested parse, stringify";
  },
};

// Deterministic results computed with the same packages under Node.js.
const AWS4FETCH_EXPECTED = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/s3/aws4_request, " +
  "SignedHeaders=host;x-amz-content-sha256;x-amz-date, " +
  "Signature=416d01e23709c6b68282862d0a7550b909217a917512e85b08abedb6510af3e5";
const UUID_V5_EXPECTED = "67ce3c53-6ce4-58c7-80b1-4354b75643f5";

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/__fake/upstash")) return fakeUpstash(request, url.pathname);
    if (url.pathname === "/__fake/openai/chat/completions") return fakeOpenAI(request);
    const name = decodeURIComponent(url.pathname.slice(1));
    if (name === "") return Response.json(Object.keys(checks));
    const check = checks[name];
    if (!check) return Response.json({ ok: false, error: `no check ${name}` }, { status: 404 });
    try {
      const detail = await check(env, ctx, request);
      return Response.json({ ok: true, detail });
    } catch (e) {
      return Response.json({ ok: false, error: `${e?.name ?? "Error"}: ${e?.message ?? e}` });
    }
  },
};
