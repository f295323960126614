// Durable Object classes of the `do` area. `SqlObject` is SQLite-backed
// (new_sqlite_classes), `KvObject` key-value-backed (new_classes). Each
// method runs its checks inside the object and returns the steps it
// observed, so storage behaviour is compared without depending on how the
// result travels back over RPC.
import { DurableObject } from "cloudflare:workers";
import { Transcript, describe } from "../lib/transcript.js";

// Values that storage and RPC must carry through structured clone.
export function sampleValues() {
  const shared = { s: 1 };
  return {
    string: "héllo",
    number: 1.5,
    negativeZero: -0,
    nan: NaN,
    bigint: 12345678901234567890n,
    boolean: false,
    null: null,
    undefined: undefined,
    date: new Date(Date.UTC(2024, 1, 29, 12, 0, 0)),
    map: new Map([["a", 1], [2, { b: true }]]),
    set: new Set(["x", 3]),
    bytes: new Uint8Array([1, 2, 255]),
    floats: new Float64Array([0.5, -2]),
    buffer: new Uint8Array([9, 8]).buffer,
    regexp: /ab+c/gi,
    nested: { list: [1, [2, [3]], { deep: "yes" }], empty: {} },
    error: new RangeError("kept as a value"),
    shared: [shared, shared],
  };
}

class Base extends DurableObject {
  // A plain field: calling it over RPC is not calling a method.
  notAMethod = 42;

  #secret() {
    return "private";
  }

  // ---- identity ----
  whoami(hex) {
    return {
      sameId: this.ctx.id.toString() === hex,
      name: describe(this.ctx.id.name),
      idType: typeof this.ctx.id,
    };
  }

  // ---- RPC ----
  echo(...args) {
    return args;
  }

  inspect(value) {
    return describe(value);
  }

  throws(kind) {
    if (kind === "type") throw new TypeError("bad type inside");
    if (kind === "range") throw new RangeError("out of range inside");
    if (kind === "custom") {
      const e = new Error("custom inside");
      e.name = "MyError";
      throw e;
    }
    if (kind === "string") throw "a thrown string";
    throw new Error("plain inside");
  }

  async rejects() {
    await null;
    throw new SyntaxError("async rejection");
  }

  usesSecret() {
    return this.#secret();
  }

  // ---- storage: key-value API ----
  async kvBasics() {
    const s = this.ctx.storage;
    const t = new Transcript();
    await t.step("get missing", () => s.get("kb:missing"));
    await t.step("put", () => s.put("kb:a", "one"));
    await t.step("get", () => s.get("kb:a"));
    await t.step("put overwrite", () => s.put("kb:a", { v: 2 }));
    await t.step("get overwritten", () => s.get("kb:a"));
    await t.step("put object of entries", () => s.put({ "kb:b": 2, "kb:c": [3], "kb:d": null }));
    await t.step("get several", () => s.get(["kb:a", "kb:b", "kb:c", "kb:d", "kb:missing"]));
    await t.step("delete one", () => s.delete("kb:a"));
    await t.step("delete missing", () => s.delete("kb:a"));
    await t.step("delete several", () => s.delete(["kb:b", "kb:c", "kb:missing"]));
    await t.step("get after delete", () => s.get(["kb:a", "kb:b", "kb:c", "kb:d"]));
    const values = sampleValues();
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) continue;
      await s.put(`kb:type:${k}`, v);
    }
    for (const k of Object.keys(values)) {
      await t.step(`round trip ${k}`, async () => {
        const got = await s.get(`kb:type:${k}`);
        return { value: got, ctor: got === null || got === undefined ? null : got.constructor.name };
      });
    }
    await t.step("shared reference kept", async () => {
      const got = await s.get("kb:type:shared");
      return got[0] === got[1];
    });
    await t.step("number key coerced", async () => {
      await s.put(7, "seven");
      return s.get("7");
    });
    await t.step("class instance", async () => {
      class Point {
        constructor() {
          this.x = 1;
        }
      }
      await s.put("kb:point", new Point());
      const got = await s.get("kb:point");
      return { got, isObject: Object.getPrototypeOf(got) === Object.prototype };
    });
    await t.step("function value", () => s.put("kb:fn", () => 1));
    await t.step("symbol value", () => s.put("kb:sym", Symbol("s")));
    await t.step("deleteAll", () => s.deleteAll());
    await t.step("list after deleteAll", () => s.list());
    return t.steps;
  }

  async kvList() {
    const s = this.ctx.storage;
    const t = new Transcript();
    await s.put({ a: 1, b: 2, c: 3, d: 4, pa1: 5, pa2: 6, pb: 7, z: 8, "": 0 });
    const keys = async (o) => [...(await s.list(o)).keys()];
    await t.step("all", () => s.list());
    await t.step("start", () => keys({ start: "c" }));
    await t.step("startAfter", () => keys({ startAfter: "c" }));
    await t.step("end", () => keys({ end: "c" }));
    await t.step("start end", () => keys({ start: "b", end: "pa2" }));
    await t.step("prefix", () => keys({ prefix: "pa" }));
    await t.step("prefix empty", () => keys({ prefix: "" }));
    await t.step("reverse", () => keys({ reverse: true }));
    await t.step("limit", () => keys({ limit: 3 }));
    await t.step("reverse limit", () => keys({ reverse: true, limit: 2 }));
    await t.step("prefix reverse limit", () => keys({ prefix: "p", reverse: true, limit: 2 }));
    await t.step("start past end", () => keys({ start: "x", end: "b" }));
    await t.step("startAfter with prefix", () => keys({ startAfter: "pa1", prefix: "pa" }));
    await t.step("start and startAfter", () => keys({ start: "a", startAfter: "b" }));
    await t.step("limit 0", () => keys({ limit: 0 }));
    await t.step("limit negative", () => keys({ limit: -1 }));
    await t.step("returns Map", async () => (await s.list({ limit: 1 })) instanceof Map);
    await s.deleteAll();
    return t.steps;
  }

  async kvLimits() {
    const s = this.ctx.storage;
    const t = new Transcript();
    const many = Array.from({ length: 129 }, (_, i) => `kl:${i}`);
    await t.step("get 128 keys", async () => (await s.get(many.slice(0, 128))).size);
    await t.step("get 129 keys", () => s.get(many));
    await t.step("delete 129 keys", () => s.delete(many));
    await t.step("put 129 entries", () => s.put(Object.fromEntries(many.map((k) => [k, 1]))));
    await t.step("key of 2048 bytes", () => s.put("k".repeat(2048), 1));
    await t.step("key of 2049 bytes", () => s.put("k".repeat(2049), 1));
    await t.step("get key of 2049 bytes", () => s.get("k".repeat(2049)));
    await t.step("value of 128 KiB bytes", () => s.put("kl:v", new Uint8Array(128 * 1024)));
    await t.step("value of 128 KiB + 100 bytes", () => s.put("kl:v", new Uint8Array(128 * 1024 + 100)));
    await t.step("value of 1 MiB string", () => s.put("kl:v", "x".repeat(1024 * 1024)));
    await t.step("undefined value", () => s.put("kl:u", undefined));
    await t.step("undefined in entries", () => s.put({ "kl:u": undefined }));
    await t.step("get undefined key", () => s.get(undefined));
    await t.step("empty key", async () => {
      await s.put("", "empty");
      return s.get("");
    });
    await s.deleteAll();
    return t.steps;
  }

  // ---- storage: SQL API ----
  sqlCursor() {
    const sql = this.ctx.storage.sql;
    const t = new Transcript();
    const step = (label, fn) => t.step(label, fn);
    return (async () => {
      await step("create", () => {
        const c = sql.exec("CREATE TABLE sc (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB)");
        return { rows: c.toArray(), columns: c.columnNames, read: c.rowsRead, written: c.rowsWritten };
      });
      await step("insert with bindings", () => {
        const c = sql.exec(
          "INSERT INTO sc (name, score, data) VALUES (?, ?, ?), (?, ?, ?)",
          "ann", 1.5, new Uint8Array([1, 2]), "bob", 2, null,
        );
        c.toArray();
        return { read: c.rowsRead, written: c.rowsWritten };
      });
      await step("select toArray", () => {
        const c = sql.exec("SELECT * FROM sc ORDER BY id");
        const rows = c.toArray();
        return { rows, columns: c.columnNames, read: c.rowsRead, written: c.rowsWritten };
      });
      await step("numbered bindings", () => sql.exec("SELECT ?2 AS b, ?1 AS a", "first", "second").toArray());
      await step("one", () => sql.exec("SELECT name FROM sc WHERE id = ?", 1).one());
      await step("one on no rows", () => sql.exec("SELECT name FROM sc WHERE id = ?", 99).one());
      await step("one on two rows", () => sql.exec("SELECT name FROM sc").one());
      await step("raw toArray", () => sql.exec("SELECT id, name FROM sc ORDER BY id").raw().toArray());
      await step("raw duplicate columns", () => sql.exec("SELECT 1 AS x, 2 AS x").raw().toArray());
      await step("object duplicate columns", () => sql.exec("SELECT 1 AS x, 2 AS x").toArray());
      await step("iterate", () => {
        const out = [];
        for (const row of sql.exec("SELECT id FROM sc ORDER BY id DESC")) out.push(row.id);
        return out;
      });
      await step("next", () => {
        const c = sql.exec("SELECT id FROM sc ORDER BY id");
        return [c.next(), c.next(), c.next()];
      });
      await step("value types", () =>
        sql.exec("SELECT 1 AS i, 2.5 AS f, 'x' AS t, NULL AS n, x'0a0b' AS b, 9007199254740993 AS big").one(),
      );
      await step("boolean binding", () => sql.exec("SELECT ? AS t, ? AS f", true, false).one());
      await step("bigint binding", () => sql.exec("SELECT ? AS v", 5n).one());
      await step("undefined binding", () => sql.exec("SELECT ? AS v", undefined).one());
      await step("object binding", () => sql.exec("SELECT ? AS v", { a: 1 }).one());
      await step("too few bindings", () => sql.exec("SELECT ? AS a, ? AS b", 1).toArray());
      await step("too many bindings", () => sql.exec("SELECT ? AS a", 1, 2).toArray());
      await step("update counts", () => {
        const c = sql.exec("UPDATE sc SET score = score + 1");
        c.toArray();
        return { read: c.rowsRead, written: c.rowsWritten };
      });
      await step("multiple statements", () => {
        const c = sql.exec("INSERT INTO sc (name) VALUES ('cy'); SELECT count(*) AS n FROM sc");
        return c.toArray();
      });
      await step("databaseSize type", () => typeof sql.databaseSize);
      await step("databaseSize positive", () => sql.databaseSize > 0);
      await step("drop", () => sql.exec("DROP TABLE sc").toArray());
      return t.steps;
    })();
  }

  sqlErrors() {
    const sql = this.ctx.storage.sql;
    const t = new Transcript();
    return (async () => {
      await t.step("syntax error", () => sql.exec("SELEC 1"));
      await t.step("no such table", () => sql.exec("SELECT * FROM nowhere"));
      await t.step("no such column", () => sql.exec("SELECT nope FROM sqlite_master"));
      await t.step("empty", () => sql.exec(""));
      await t.step("BEGIN", () => sql.exec("BEGIN TRANSACTION"));
      await t.step("SAVEPOINT", () => sql.exec("SAVEPOINT sp1"));
      await t.step("COMMIT", () => sql.exec("COMMIT"));
      await t.step("constraint", () => {
        sql.exec("CREATE TABLE se (id INTEGER PRIMARY KEY)");
        sql.exec("INSERT INTO se VALUES (1)");
        return sql.exec("INSERT INTO se VALUES (1)");
      });
      await t.step("bindings before last statement", () => sql.exec("SELECT ?; SELECT 2", 1));
      await t.step("reserved _cf_ table", () => sql.exec("CREATE TABLE _cf_mine (x)"));
      await t.step("read _cf_KV", async () => {
        // The key-value table exists once the KV API has written.
        await this.ctx.storage.put("se:x", 1);
        return sql.exec("SELECT * FROM _cf_KV").toArray();
      });
      await t.step("non-string query", () => sql.exec(42));
      sql.exec("DROP TABLE se");
      return t.steps;
    })();
  }

  // SQL on a key-value-backed class.
  sqlUnavailable() {
    const t = new Transcript();
    return (async () => {
      await t.step("sql getter", () => typeof this.ctx.storage.sql);
      await t.step("exec", () => this.ctx.storage.sql.exec("SELECT 1").toArray());
      await t.step("transactionSync", () => this.ctx.storage.transactionSync(() => 1));
      return t.steps;
    })();
  }

  // ---- transactions ----
  async transactions(sqlite) {
    const s = this.ctx.storage;
    const t = new Transcript();
    if (sqlite) {
      s.sql.exec("CREATE TABLE IF NOT EXISTS tx (v TEXT)");
      await t.step("transactionSync value", () =>
        s.transactionSync(() => {
          s.sql.exec("INSERT INTO tx VALUES ('kept')");
          return "done";
        }),
      );
      await t.step("transactionSync throws", () =>
        s.transactionSync(() => {
          s.sql.exec("INSERT INTO tx VALUES ('lost')");
          s.kv.put("tx:sync", "lost");
          throw new RangeError("abort sync");
        }),
      );
      await t.step("after sync rollback", () => ({
        rows: s.sql.exec("SELECT v FROM tx").toArray(),
        kv: describe(s.kv.get("tx:sync")),
      }));
      await t.step("nested transactionSync", () =>
        s.transactionSync(() => {
          s.sql.exec("INSERT INTO tx VALUES ('outer')");
          try {
            s.transactionSync(() => {
              s.sql.exec("INSERT INTO tx VALUES ('inner')");
              throw new Error("inner");
            });
          } catch (e) {
            // the inner one rolls back alone
          }
          return s.sql.exec("SELECT v FROM tx ORDER BY rowid").toArray();
        }),
      );
      await t.step("transactionSync not a function", () => s.transactionSync("nope"));
      await t.step("transactionSync async callback", async () => {
        const r = s.transactionSync(async () => 5);
        return { isPromise: r instanceof Promise, value: await r };
      });
    }
    await t.step("transaction value", () =>
      s.transaction(async (txn) => {
        await txn.put("tx:a", 1);
        return "committed";
      }),
    );
    await t.step("transaction throws", () =>
      s.transaction(async (txn) => {
        await txn.put("tx:b", 2);
        await txn.delete("tx:a");
        throw new TypeError("abort async");
      }),
    );
    await t.step("after async rollback", () => s.get(["tx:a", "tx:b"]));
    await t.step("explicit rollback", () =>
      s.transaction(async (txn) => {
        await txn.put("tx:c", 3);
        txn.rollback();
        return "rolled back";
      }),
    );
    await t.step("after explicit rollback", () => s.get(["tx:a", "tx:c"]));
    await t.step("read inside transaction", () =>
      s.transaction(async (txn) => {
        await txn.put("tx:d", 4);
        return [await txn.get("tx:d"), (await txn.list({ prefix: "tx:" })).size];
      }),
    );
    await t.step("deleteAll inside transaction", () => s.transaction((txn) => txn.deleteAll()));
    await s.deleteAll();
    return t.steps;
  }

  // ---- alarms ----
  async alarmApi() {
    const s = this.ctx.storage;
    const t = new Transcript();
    const later = Date.now() + 3600_000;
    await t.step("getAlarm none", () => s.getAlarm());
    await t.step("setAlarm number", () => s.setAlarm(later));
    await t.step("getAlarm equals", async () => (await s.getAlarm()) === later);
    await t.step("getAlarm type", async () => typeof (await s.getAlarm()));
    await t.step("setAlarm Date", () => s.setAlarm(new Date(later + 1000)));
    await t.step("getAlarm after Date", async () => (await s.getAlarm()) === later + 1000);
    await t.step("deleteAlarm", () => s.deleteAlarm());
    await t.step("getAlarm after delete", () => s.getAlarm());
    await t.step("deleteAlarm again", () => s.deleteAlarm());
    await t.step("setAlarm string", () => s.setAlarm("soon"));
    await t.step("setAlarm NaN", () => s.setAlarm(NaN));
    await t.step("setAlarm no argument", () => s.setAlarm());
    await t.step("getAlarm after bad", () => s.getAlarm());
    return t.steps;
  }

  // Arms an alarm `ms` from now; `mode` "throw-once" fails the first run.
  async armAlarm(ms, mode) {
    await this.ctx.storage.put("alarm:mode", mode);
    await this.ctx.storage.setAlarm(Date.now() + ms);
    return (await this.ctx.storage.getAlarm()) !== null;
  }

  async alarmState() {
    return {
      runs: (await this.ctx.storage.get("alarm:runs")) ?? [],
      pending: (await this.ctx.storage.getAlarm()) !== null,
    };
  }

  async alarm(info) {
    const mode = await this.ctx.storage.get("alarm:mode");
    const runs = (await this.ctx.storage.get("alarm:runs")) ?? [];
    if (mode === "throw-once" && !(info && info.isRetry)) {
      throw new Error("first alarm run fails");
    }
    runs.push({
      info: describe(info),
      alarmDuringRun: (await this.ctx.storage.getAlarm()) === null ? null : "set",
    });
    await this.ctx.storage.put("alarm:runs", runs);
  }

  // ---- fetch and WebSockets ----
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/echo") {
      return new Response(
        JSON.stringify({
          method: request.method,
          url: request.url,
          header: request.headers.get("x-test"),
          body: await request.text(),
        }),
        { status: 201, statusText: "Made", headers: { "content-type": "application/json", "x-from": "object" } },
      );
    }
    if (url.pathname === "/empty") return new Response(null, { status: 204 });
    if (url.pathname === "/throw") throw new RangeError("fetch handler failed");
    if (url.pathname === "/not-response") return "just a string";
    if (url.pathname === "/ws-hibernate") {
      const pair = new WebSocketPair();
      const [client, server] = Object.values(pair);
      const tags = url.searchParams.getAll("tag");
      this.ctx.acceptWebSocket(server, tags);
      server.serializeAttachment({ joined: url.searchParams.get("who"), n: 1 });
      this.ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
      return new Response(null, { status: 101, webSocket: client });
    }
    if (url.pathname === "/ws-standard") {
      const [client, server] = Object.values(new WebSocketPair());
      server.accept();
      server.addEventListener("message", (e) => {
        if (e.data === "close-me") server.close(4002, "standard bye");
        else server.send("echo:" + e.data);
      });
      return new Response(null, { status: 101, webSocket: client });
    }
    if (url.pathname === "/ws-no-upgrade") {
      return new Response("expected websocket", { status: 426 });
    }
    return new Response("not found", { status: 404 });
  }

  async webSocketMessage(ws, message) {
    if (message === "close-me") {
      ws.close(4001, "server bye");
      return;
    }
    if (message === "attach") {
      ws.serializeAttachment({ ...ws.deserializeAttachment(), n: 2 });
    }
    const auto = this.ctx.getWebSocketAutoResponse();
    ws.send(
      JSON.stringify({
        got: message,
        tags: this.ctx.getTags(ws),
        attachment: ws.deserializeAttachment(),
        all: this.ctx.getWebSockets().length,
        tagged: this.ctx.getWebSockets("room").length,
        untagged: this.ctx.getWebSockets("nobody").length,
        auto: auto === null ? null : [auto.request, auto.response],
        autoTimestamp: this.ctx.getWebSocketAutoResponseTimestamp(ws) === null ? null : "date",
      }),
    );
  }

  async webSocketClose(ws, code, reason, wasClean) {
    const closes = (await this.ctx.storage.get("ws:closes")) ?? [];
    closes.push({ code, reason, wasClean, tags: this.ctx.getTags(ws) });
    await this.ctx.storage.put("ws:closes", closes);
    try {
      ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  async closes() {
    return (await this.ctx.storage.get("ws:closes")) ?? [];
  }
}

export class SqlObject extends Base {}

export class KvObject extends Base {}
