// Routes:
//   GET  /            app name and the number of todos
//   GET  /todos       every todo, oldest first
//   POST /todos       {"title": "..."} -> 201 with the new todo
//   GET  /todos/:id   one todo, or 404
//   POST /todos/:id/done  mark it done
import { TodoStore, ValidationError, parseNewTodo, type Todo } from "./todos.ts";

interface Env {
  APP_NAME: string;
  TODOS: KVNamespace;
}

type Handler = (request: Request, store: TodoStore, params: string[]) => Promise<Response>;

enum Status {
  Ok = 200,
  Created = 201,
  BadRequest = 400,
  NotFound = 404,
}

function json<T>(value: T, status: Status = Status.Ok): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json" },
  });
}

const notFound = (what: string): Response => json({ error: `${what} not found` }, Status.NotFound);

const routes: Array<[method: string, pattern: RegExp, handler: Handler]> = [
  ["GET", /^\/todos$/, async (_req, store) => json<Todo[]>(await store.list())],
  [
    "POST",
    /^\/todos$/,
    async (req, store) => {
      let body: unknown;
      try {
        body = await req.json();
      } catch {
        return json({ error: "body must be JSON" }, Status.BadRequest);
      }
      try {
        const todo = await store.add(parseNewTodo(body), crypto.randomUUID(), Date.now());
        return json(todo, Status.Created);
      } catch (e) {
        if (e instanceof ValidationError) {
          return json({ error: e.message, field: e.field }, Status.BadRequest);
        }
        throw e;
      }
    },
  ],
  [
    "GET",
    /^\/todos\/([^/]+)$/,
    async (_req, store, [id]) => {
      const todo = await store.get(id!);
      return todo ? json(todo) : notFound(`todo ${id}`);
    },
  ],
  [
    "POST",
    /^\/todos\/([^/]+)\/done$/,
    async (_req, store, [id]) => {
      const todo = await store.complete(id!);
      return todo ? json(todo) : notFound(`todo ${id}`);
    },
  ],
];

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const { pathname } = new URL(request.url);
    const store = new TodoStore(env.TODOS);
    if (pathname === "/") {
      const count: number = (await store.list()).length;
      return json({ app: env.APP_NAME, todos: count });
    }
    for (const [method, pattern, handler] of routes) {
      const match = pattern.exec(pathname);
      if (match && request.method === method) {
        return handler(request, store, match.slice(1));
      }
    }
    return notFound(pathname);
  },
} satisfies ExportedHandler<Env>;
