//! `nodejs_compat` from wrangler.toml reaches the runtime through
//! `hearth serve`: `node:*` and bare built-in imports load, the `Buffer`
//! and `process` globals exist, and `process.env` holds `[vars]` and
//! `.dev.vars` secrets (compatibility date 2025-04-01 or later).

mod web_support;

use web_support::Server;

const WORKER: &str = r#"
import { EventEmitter, once } from 'node:events';
import { promisify } from 'util';
import path from 'node:path';

const bus = new EventEmitter();
const wait = promisify((ms, cb) => setTimeout(() => cb(null, ms), ms));

export default {
  async fetch(request) {
    const ready = once(bus, 'ready');
    queueMicrotask(() => bus.emit('ready', path.join('/a', 'b', '..', 'c')));
    const [joined] = await ready;
    return Response.json({
      joined,
      waited: await wait(1),
      base64: Buffer.from('hearth').toString('base64'),
      greeting: process.env.GREETING,
      secret: process.env.API_KEY,
      platform: process.platform,
    });
  },
};
"#;

#[test]
fn a_nodejs_compat_worker_gets_node_builtins_and_process_env() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("src")).unwrap();
    std::fs::write(app.join("src/index.js"), WORKER).unwrap();
    std::fs::write(
        app.join("wrangler.toml"),
        "name = \"node-app\"\nmain = \"src/index.js\"\ncompatibility_date = \"2025-04-01\"\n\
         compatibility_flags = [\"nodejs_compat\"]\n\n[vars]\nGREETING = \"hello\"\n",
    )
    .unwrap();
    std::fs::write(app.join(".dev.vars"), "API_KEY=s3cret\n").unwrap();
    let server = Server::start(
        "serve",
        &app.join("wrangler.toml"),
        &dir.path().join("data"),
    );
    let r = server.get("/");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({
            "joined": "/a/c",
            "waited": 1,
            "base64": "aGVhcnRo",
            "greeting": "hello",
            "secret": "s3cret",
            "platform": "linux",
        })
    );
}
