// The todo model and its storage in KV, one key per item.

export interface Todo {
  id: string;
  title: string;
  done: boolean;
  createdAt: number;
}

export type NewTodo = Pick<Todo, "title">;

export class ValidationError extends Error {
  constructor(public readonly field: keyof Todo, message: string) {
    super(message);
    this.name = "ValidationError";
  }
}

const PREFIX = "todo:";

export function parseNewTodo(input: unknown): NewTodo {
  if (typeof input !== "object" || input === null) {
    throw new ValidationError("title", "body must be a JSON object");
  }
  const { title } = input as Record<string, unknown>;
  if (typeof title !== "string" || title.trim() === "") {
    throw new ValidationError("title", "title must be a non-empty string");
  }
  return { title: title.trim() };
}

export class TodoStore {
  constructor(private readonly kv: KVNamespace) {}

  async add(todo: NewTodo, id: string, now: number): Promise<Todo> {
    const item: Todo = { id, title: todo.title, done: false, createdAt: now };
    await this.kv.put(PREFIX + id, JSON.stringify(item));
    return item;
  }

  async get(id: string): Promise<Todo | null> {
    return this.kv.get<Todo>(PREFIX + id, "json");
  }

  async complete(id: string): Promise<Todo | null> {
    const item = await this.get(id);
    if (item === null) return null;
    const done: Todo = { ...item, done: true };
    await this.kv.put(PREFIX + id, JSON.stringify(done));
    return done;
  }

  async list(): Promise<Todo[]> {
    const { keys } = await this.kv.list({ prefix: PREFIX });
    const items = await Promise.all(keys.map((k) => this.kv.get<Todo>(k.name, "json")));
    return items.filter((t): t is Todo => t !== null).sort((a, b) => a.createdAt - b.createdAt);
  }
}
