// The D1Database object a worker sees. `native` runs the queries (hearth-d1);
// this file gives Workers' shapes: statements that bind values, D1's type
// checks on bound values, and errors carrying a `cause` as D1's do.
(function (native, util) {
  "use strict";

  // Statements from any D1 binding are recognised, as `batch` on Workers
  // takes the SQL and values of whatever statements it is given.
  const kStatement = Symbol.for("hearth.d1.statement");
  const NO_SESSION = null;

  // The part of a D1 message after its `D1_XXX: ` tag, as D1 puts in `cause`.
  function causeOf(message) {
    if (message.startsWith("D1_COLUMN_NOTFOUND: ")) return "Column not found";
    const m = /^D1_[A-Z_]+: /.exec(message);
    return m ? message.slice(m[0].length) : message;
  }

  function d1Error(message, cause) {
    return new Error(message, { cause: new Error(cause === undefined ? causeOf(message) : cause) });
  }

  // Runs a native call; its errors gain D1's `cause`.
  function call(f) {
    try {
      return f();
    } catch (e) {
      if (e instanceof Error && e.constructor === Error) throw d1Error(e.message);
      throw e;
    }
  }

  function checkValue(v) {
    const type = typeof v;
    if (type === "number" || type === "string") return v;
    if (type === "boolean") return v ? 1 : 0;
    if (type === "object") {
      if (v === null) return null;
      if (Array.isArray(v) && v.every((b) => typeof b === "number" && b >= 0 && b < 256)) return new Uint8Array(v);
      if (v instanceof ArrayBuffer) return new Uint8Array(v.slice(0));
      if (ArrayBuffer.isView(v)) {
        // A typed array binds its elements as bytes, as D1 does.
        return v instanceof DataView ? new Uint8Array(util.viewBytes(v)) : Uint8Array.from(v);
      }
    }
    let shown;
    try { shown = String(v); } catch { shown = type; }
    throw d1Error(`D1_TYPE_ERROR: Type '${type}' not supported for value '${shown}'`);
  }

  function statementOf(s) {
    const st = s !== null && typeof s === "object" ? s[kStatement] : undefined;
    if (st === undefined) throw new TypeError("D1 batch() expects an array of D1PreparedStatement.");
    return [st.sql, st.params];
  }

  class D1PreparedStatement {
    #session;
    constructor(session, sql, params) {
      this.#session = session;
      Object.defineProperty(this, kStatement, { value: { sql, params } });
      this.statement = sql;
      this.params = params;
    }

    bind(...values) {
      return new D1PreparedStatement(this.#session, this.statement, values.map(checkValue));
    }

    async first(column) {
      const json = call(() => native.first(this.#session.handle(), this.statement, this.params,
        column === undefined ? null : String(column)));
      return JSON.parse(json);
    }

    async all() {
      return JSON.parse(call(() => native.all(this.#session.handle(), this.statement, this.params)));
    }

    async run() {
      return this.all();
    }

    async raw(options) {
      const columnNames = !!(options && options.columnNames);
      return JSON.parse(call(() => native.raw(this.#session.handle(), this.statement, this.params, columnNames)));
    }
  }

  // The database's own queries: no session, no bookmark.
  const primary = { handle: () => NO_SESSION };

  class D1DatabaseSession {
    #handle;
    constructor(handle) {
      this.#handle = handle;
    }
    prepare(sql) {
      const handle = this.#handle;
      return new D1PreparedStatement({ handle: () => handle }, String(sql), []);
    }
    async batch(statements) {
      const list = Array.from(statements, statementOf);
      return call(() => native.batch(this.#handle, list));
    }
    getBookmark() {
      const b = native.bookmark(this.#handle);
      return b === undefined ? null : b;
    }
  }

  class D1Database {
    prepare(sql) {
      return new D1PreparedStatement(primary, String(sql), []);
    }

    async batch(statements) {
      const list = Array.from(statements, statementOf);
      return call(() => native.batch(NO_SESSION, list));
    }

    async exec(sql) {
      return JSON.parse(call(() => native.exec(String(sql))));
    }

    withSession(constraintOrBookmark) {
      let c = constraintOrBookmark === undefined || constraintOrBookmark === null ? null : String(constraintOrBookmark).trim();
      if (c === "") c = null;
      const handle = native.session(c);
      return new D1DatabaseSession(handle);
    }
  }

  return new D1Database();
})
