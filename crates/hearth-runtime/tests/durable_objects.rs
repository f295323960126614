//! Durable Objects from JavaScript: namespaces and ids, stubs (fetch and
//! RPC), one live instance per id, storage through the object's state.

mod durable_common;

use durable_common::{Setup, request};
use serde_json::json;

const COUNTER: &str = r#"
import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.memory = 0;
  }
  async fetch(request) {
    const url = new URL(request.url);
    let n = (await this.ctx.storage.get("n")) ?? 0;
    if (url.pathname === "/inc") {
      n += 1;
      await this.ctx.storage.put("n", n);
      this.memory += 1;
    }
    return Response.json({ n, memory: this.memory, id: this.ctx.id.toString(), name: this.ctx.id.name ?? null });
  }
  async add(a, b) { return a + b; }
  async echo(v) { return v; }
  async boom(message) { const e = new RangeError(message); throw e; }
  async increment() {
    const n = ((await this.ctx.storage.get("n")) ?? 0) + 1;
    await this.ctx.storage.put("n", n);
    this.memory += 1;
    return { n, memory: this.memory };
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const name = url.searchParams.get("name") ?? "a";
    const stub = env.COUNTER.get(env.COUNTER.idFromName(name));
    switch (url.pathname) {
      case "/inc": case "/get":
        return stub.fetch("http://do" + url.pathname);
      case "/rpc-inc":
        return Response.json(await stub.increment());
      case "/ids": {
        const a = env.COUNTER.idFromName("x");
        const b = env.COUNTER.idFromName("x");
        const u = env.COUNTER.newUniqueId();
        const parsed = env.COUNTER.idFromString(a.toString());
        const errors = [];
        for (const bad of ["nope", "0".repeat(64), u.toString().slice(0, 63)]) {
          try { env.COUNTER.idFromString(bad); errors.push(null); }
          catch (e) { errors.push(e.constructor.name + ": " + e.message); }
        }
        return Response.json({
          a: a.toString(), same: a.equals(b), name: a.name, uniqueName: u.name ?? null,
          unique: u.toString(), differs: !a.equals(u), parsedEquals: parsed.equals(a),
          len: a.toString().length, errors,
          byName: (await env.COUNTER.getByName("x").fetch("http://do/get").then((r) => r.json())).id,
        });
      }
      case "/names": {
        // More names than the namespace remembers, twice: every answer,
        // remembered or derived again, is the name's one id.
        const names = Array.from({ length: 1100 }, (_, i) => "name-" + i);
        const first = names.map((n) => env.COUNTER.idFromName(n).toString());
        const again = names.map((n) => env.COUNTER.idFromName(n).toString());
        const seen = await env.COUNTER.getByName("name-3").fetch("http://do/get").then((r) => r.json());
        return Response.json({
          distinct: new Set(first).size,
          mismatched: names.filter((_, i) => first[i] !== again[i]).length,
          parsed: first.every((h) => env.COUNTER.idFromString(h).toString() === h),
          third: first[3], seenId: seen.id, seenName: seen.name,
        });
      }
      case "/rpc": {
        const out = {};
        out.add = await stub.add(2, 3);
        const v = await stub.echo({
          map: new Map([["k", 1]]), set: new Set([1, 2]), date: new Date(5), big: 10n,
          bytes: new Uint8Array([1, 2, 3]), buf: new Uint8Array([9]).buffer, undef: undefined,
          nan: NaN, neg0: -0, nested: [1, [2, { x: null }]], re: /a+/g,
        });
        out.types = {
          map: v.map instanceof Map && v.map.get("k") === 1,
          set: v.set instanceof Set && v.set.has(2),
          date: v.date instanceof Date && v.date.getTime() === 5,
          big: v.big === 10n,
          bytes: v.bytes instanceof Uint8Array && v.bytes.join() === "1,2,3",
          buf: v.buf instanceof ArrayBuffer && new Uint8Array(v.buf)[0] === 9,
          undef: "undef" in v && v.undef === undefined,
          nan: Number.isNaN(v.nan), neg0: Object.is(v.neg0, -0),
          nested: JSON.stringify(v.nested) === '[1,[2,{"x":null}]]',
          re: v.re instanceof RegExp && v.re.flags === "g",
        };
        const cyclic = { a: 1 }; cyclic.self = cyclic;
        const back = await stub.echo(cyclic);
        out.cyclic = back.self === back;
        try { await stub.boom("too far"); out.boom = null; }
        catch (e) { out.boom = { name: e.name, message: e.message, isRange: e instanceof RangeError }; }
        try { await stub.missing(); out.missing = null; }
        catch (e) { out.missing = e.message; }
        try { await stub.echo(() => 1); out.fn = null; }
        catch (e) { out.fn = e.name; }
        out.thenable = stub.then === undefined;
        return Response.json(out);
      }
    }
    return new Response("not found", { status: 404 });
  }
};
"#;

#[test]
fn counter_one_and_many_ids() {
    let dir = tempfile::tempdir().unwrap();
    let w = Setup::new(dir.path(), COUNTER).start();
    for _ in 0..3 {
        w.get("/inc?name=a");
    }
    w.get("/inc?name=b");
    let a = w.json("/get?name=a");
    let b = w.json("/get?name=b");
    assert_eq!(a["n"], 3);
    assert_eq!(a["memory"], 3);
    assert_eq!(a["name"], "a");
    assert_eq!(b["n"], 1);
    assert_ne!(a["id"], b["id"]);
    w.stop();
}

#[test]
fn ids_are_stable_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let w = Setup::new(dir.path(), COUNTER).start();
    let t = w.json("/ids");
    assert_eq!(t["same"], true);
    assert_eq!(t["name"], "x");
    assert_eq!(t["uniqueName"], json!(null));
    assert_eq!(t["differs"], true);
    assert_eq!(t["parsedEquals"], true);
    assert_eq!(t["len"], 64);
    assert_eq!(t["byName"], t["a"]);
    assert_eq!(
        t["errors"][0],
        "TypeError: Invalid Durable Object ID: must be 64 hex digits"
    );
    assert_eq!(
        t["errors"][1],
        "TypeError: Durable Object ID is not valid for this namespace."
    );
    assert_eq!(
        t["errors"][2],
        "TypeError: Invalid Durable Object ID: must be 64 hex digits"
    );
    let first = t["a"].clone();
    w.stop();

    // Same data directory, new process state: the same name, the same id.
    let w = Setup::new(dir.path(), COUNTER).start();
    assert_eq!(w.json("/ids")["a"], first);
    w.stop();
}

#[test]
fn id_from_name_is_the_same_past_the_name_cache() {
    let dir = tempfile::tempdir().unwrap();
    let w = Setup::new(dir.path(), COUNTER).start();
    let t = w.json("/names");
    assert_eq!(t["distinct"], 1100);
    assert_eq!(t["mismatched"], 0);
    assert_eq!(t["parsed"], true);
    assert_eq!(t["seenId"], t["third"]);
    assert_eq!(t["seenName"], "name-3");
    w.stop();
}

#[test]
fn rpc_values_and_errors_cross() {
    let dir = tempfile::tempdir().unwrap();
    let w = Setup::new(dir.path(), COUNTER).start();
    let t = w.json("/rpc");
    assert_eq!(t["add"], 5);
    for (k, v) in t["types"].as_object().unwrap() {
        assert_eq!(v, &json!(true), "type {k} did not round-trip");
    }
    assert_eq!(t["cyclic"], true);
    assert_eq!(
        t["boom"],
        json!({"name": "RangeError", "message": "too far", "isRange": true})
    );
    assert_eq!(
        t["missing"],
        "The RPC receiver does not implement the method \"missing\"."
    );
    assert_eq!(t["fn"], "DataCloneError");
    assert_eq!(t["thenable"], true);
    w.stop();
}

#[test]
fn one_instance_per_id_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(dir.path(), COUNTER);
    setup.isolates = 3;
    let w = setup.start();
    let pool = w.pool.clone();
    let results = w.rt.block_on(async move {
        let mut tasks = Vec::new();
        for i in 0..60 {
            let pool = pool.clone();
            let path = if i % 2 == 0 { "/inc" } else { "/rpc-inc" };
            tasks.push(tokio::spawn(async move {
                pool.dispatch(request("GET", &format!("{path}?name=shared"), ""))
                    .await
                    .unwrap()
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            let r = t.await.unwrap();
            assert_eq!(r.status, 200);
            out.push(r);
        }
        out
    });
    assert_eq!(results.len(), 60);
    let t = w.json("/get?name=shared");
    // No increment lost, and one instance saw all of them.
    assert_eq!(t["n"], 60);
    assert_eq!(t["memory"], 60);
    w.stop();
}

/// Every object's constructor gets the worker's `env` (bindings and vars),
/// whichever isolate hosts it and whether or not the class declares a
/// constructor.
#[test]
fn objects_see_the_workers_env() {
    const SCRIPT: &str = r#"
import { DurableObject } from "cloudflare:workers";

export class Counter extends DurableObject {
  async probe() {
    return {
      hasEnv: this.env !== undefined && this.env !== null,
      binding: typeof this.env?.COUNTER?.idFromName,
      ctx: typeof this.ctx?.storage?.get,
    };
  }
}

export default {
  async fetch(request, env) {
    const name = new URL(request.url).searchParams.get("name");
    return Response.json(await env.COUNTER.getByName(name).probe());
  }
};
"#;
    let dir = tempfile::tempdir().unwrap();
    let w = Setup::new(dir.path(), SCRIPT).start();
    // Enough names that both isolates host some.
    for i in 0..8 {
        assert_eq!(
            w.json(&format!("/?name=o{i}")),
            json!({"hasEnv": true, "binding": "function", "ctx": "function"})
        );
    }
    w.stop();
}
