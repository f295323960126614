// node:assert: passing and failing checks, AssertionError fields, rejects/throws.
import assert from "node:assert";
import { strict } from "node:assert";
import { Transcript } from "../../lib/transcript.js";

const fields = (e) => ({ name: e.name, code: e.code, operator: e.operator, generatedMessage: e.generatedMessage, isAE: e instanceof assert.AssertionError });

export default async function () {
  const t = new Transcript();
  await t.step("ok", () => assert.ok(1));
  await t.step("equal loose", () => assert.equal(1, "1"));
  await t.step("deepStrictEqual", () => assert.deepStrictEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }));
  for (const [label, fn] of [
    ["ok false", () => assert.ok(0, "custom message")],
    ["strictEqual", () => assert.strictEqual(1, 2)],
    ["notStrictEqual", () => assert.notStrictEqual(1, 1)],
    ["deepStrictEqual fails", () => strict.deepStrictEqual({ a: 1 }, { a: "1" })],
    ["fail", () => assert.fail("nope")],
    ["throws mismatch", () => assert.throws(() => { throw new TypeError("x"); }, RangeError)],
    ["throws nothing", () => assert.throws(() => {})],
  ]) {
    try {
      fn();
      t.note(label, "no throw");
    } catch (e) {
      t.note(label, fields(e));
    }
  }
  t.note("throws matches", assert.throws(() => { throw new TypeError("abc"); }, /abc/));
  await t.step("rejects", () => assert.rejects(Promise.resolve(1)));
  await t.step("doesNotReject", () => assert.doesNotReject(Promise.resolve(1)));
  await t.step("match", () => assert.match("abc", /b/));
  t.note("strict identity", strict.strict === strict);
  return t;
}
