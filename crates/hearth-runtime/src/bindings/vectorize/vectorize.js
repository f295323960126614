// The VectorizeIndex object a worker sees. `native` runs the contract calls
// (hearth-vectorize) and answers in JSON; this file checks arguments as
// Workers does and gives results Workers' shapes. Every method is async,
// so a refused call rejects its promise.
(function (native, util) {
  "use strict";

  function isVector(values) {
    return Array.isArray(values) || values instanceof Float32Array || values instanceof Float64Array;
  }

  function vectorError(where) {
    return new TypeError(where + " must be an array of numbers, a Float32Array or a Float64Array");
  }

  // Written vectors travel as JSON, so typed arrays become arrays.
  function vectorValues(values, where) {
    if (!isVector(values)) throw vectorError(where);
    return Array.isArray(values) ? values : Array.from(values);
  }

  function vectorsArg(vectors, method) {
    if (!Array.isArray(vectors)) throw new TypeError(method + "(): vectors must be an array of VectorizeVector objects");
    return vectors.map((v, i) => {
      if (typeof v !== "object" || v === null) throw new TypeError(method + "(): vectors[" + i + "] must be an object");
      if (typeof v.id !== "string") throw new TypeError(method + "(): vectors[" + i + "].id must be a string");
      const out = { id: v.id, values: vectorValues(v.values, method + "(): vectors[" + i + "].values") };
      if (v.namespace !== undefined && v.namespace !== null) {
        if (typeof v.namespace !== "string") throw new TypeError(method + "(): vectors[" + i + "].namespace must be a string");
        out.namespace = v.namespace;
      }
      if (v.metadata !== undefined && v.metadata !== null) {
        if (typeof v.metadata !== "object" || Array.isArray(v.metadata)) {
          throw new TypeError(method + "(): vectors[" + i + "].metadata must be an object");
        }
        out.metadata = v.metadata;
      }
      return out;
    });
  }

  function idsArg(ids, method) {
    if (!Array.isArray(ids)) throw new TypeError(method + "(): ids must be an array of strings");
    return ids.map((id) => String(id));
  }

  function queryOptions(options) {
    const o = options === undefined || options === null ? {} : options;
    if (typeof o !== "object") throw new TypeError("query(): options must be an object");
    const topK = o.topK === undefined ? 5 : Number(o.topK);
    if (!Number.isInteger(topK)) throw new TypeError("query(): topK must be an integer");
    let meta = o.returnMetadata === undefined ? "none" : o.returnMetadata;
    if (meta === true) meta = "all";
    if (meta === false) meta = "none";
    if (meta !== "none" && meta !== "indexed" && meta !== "all") {
      throw new TypeError('query(): returnMetadata must be "none", "indexed", "all" or a boolean');
    }
    const namespace = o.namespace === undefined || o.namespace === null ? null : String(o.namespace);
    const filter = o.filter === undefined || o.filter === null ? null : JSON.stringify(o.filter);
    return [topK, namespace, Boolean(o.returnValues), meta, filter];
  }

  function mutation(text) {
    return { mutationId: JSON.parse(text).mutationId };
  }

  class VectorizeIndex {
    async describe() {
      return JSON.parse(native.describe());
    }

    async query(vector, options) {
      // A query's typed array goes as it is: the native side reads its buffer.
      if (!isVector(vector)) throw vectorError("query(): the query vector");
      return JSON.parse(native.query(vector, ...queryOptions(options)));
    }

    async queryById(vectorId, options) {
      const values = JSON.parse(native.vectorOf(String(vectorId)));
      if (values === null) return { matches: [], count: 0 };
      return JSON.parse(native.query(values, ...queryOptions(options)));
    }

    async insert(vectors) {
      return mutation(native.write("insert", JSON.stringify(vectorsArg(vectors, "insert"))));
    }

    async upsert(vectors) {
      return mutation(native.write("upsert", JSON.stringify(vectorsArg(vectors, "upsert"))));
    }

    async deleteByIds(ids) {
      return mutation(native.deleteByIds(idsArg(ids, "deleteByIds")));
    }

    async getByIds(ids) {
      return JSON.parse(native.getByIds(idsArg(ids, "getByIds")));
    }

    // The ids in the index, a page at a time: { count, cursor }.
    async list(options) {
      const o = options === undefined || options === null ? {} : options;
      const count = o.count === undefined ? 100 : Number(o.count);
      const cursor = o.cursor === undefined || o.cursor === null ? null : String(o.cursor);
      return JSON.parse(native.list(count, cursor));
    }
  }

  Object.defineProperty(VectorizeIndex.prototype, Symbol.toStringTag, { value: "VectorizeIndex" });
  return new VectorizeIndex();
})
