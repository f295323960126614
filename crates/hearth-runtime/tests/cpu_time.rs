//! `limits.cpu_ms` charges CPU time, not wall-clock time: waiting (in a
//! blocking host call or on a timer) is free, computing is not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hearth_runtime::{BindingAdapter, DispatchError, IsolatePool, WorkerConfig, WorkerRequest};
use rquickjs::{Ctx, Function, Object};

/// `env.SLOW.block(ms)`: a host call that sleeps the isolate's thread, as a
/// binding waiting on a disk or a lock would.
struct Slow;

impl BindingAdapter for Slow {
    fn name(&self) -> &str {
        "SLOW"
    }
    fn kind(&self) -> &str {
        "test"
    }
    fn backend(&self) -> String {
        "test".into()
    }
    fn install<'js>(&self, ctx: &Ctx<'js>, env: &Object<'js>) -> rquickjs::Result<()> {
        let obj = Object::new(ctx.clone())?;
        obj.set(
            "block",
            Function::new(ctx.clone(), |ms: f64| {
                std::thread::sleep(Duration::from_millis(ms as u64))
            })?,
        )?;
        env.set("SLOW", obj)
    }
}

const WORKER: &str = r#"
export default {
  async fetch(req, env) {
    const path = new URL(req.url).pathname;
    if (path === "/block") { env.SLOW.block(400); return new Response("blocked"); }
    if (path === "/block-many") { for (let i = 0; i < 4; i++) env.SLOW.block(100); return new Response("blocked"); }
    if (path === "/sleep") { await scheduler.wait(400); return new Response("slept"); }
    if (path === "/busy") { const end = Date.now() + 2000; while (Date.now() < end) {} return new Response("done"); }
    return new Response("ok");
  }
};
"#;

fn pool() -> (tempfile::TempDir, IsolatePool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.js"), WORKER).unwrap();
    let mut config = WorkerConfig::new(dir.path().join("index.js"));
    config.isolates = 1;
    config.limits.cpu_ms = 100;
    config.bindings.push(Arc::new(Slow));
    (dir, IsolatePool::start(config).unwrap())
}

fn request(path: &str) -> WorkerRequest {
    WorkerRequest {
        id: "test".into(),
        method: "GET".into(),
        url: format!("http://example.com{path}"),
        headers: Vec::new(),
        body: Bytes::new(),
        body_stream: None,
        cf: None,
    }
}

async fn body(pool: &IsolatePool, path: &str) -> Result<String, DispatchError> {
    let r = pool.dispatch(request(path)).await?;
    Ok(String::from_utf8(r.body.to_vec()).unwrap())
}

#[tokio::test]
async fn blocking_in_a_host_call_longer_than_cpu_ms_is_not_killed() {
    let (_dir, pool) = pool();
    let t = Instant::now();
    assert_eq!(body(&pool, "/block").await.unwrap(), "blocked");
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert_eq!(body(&pool, "/block-many").await.unwrap(), "blocked");
    let s = &pool.snapshot()[0];
    assert_eq!(s.cpu_limit_hits, 0);
    // 800 ms of wall time in JS slices, far less of it on the CPU.
    assert!(s.cpu_micros < 100_000, "charged {} µs", s.cpu_micros);
    pool.shutdown();
    pool.join();
}

#[tokio::test]
async fn awaiting_a_timer_longer_than_cpu_ms_is_not_killed() {
    let (_dir, pool) = pool();
    assert_eq!(body(&pool, "/sleep").await.unwrap(), "slept");
    pool.shutdown();
    pool.join();
}

#[tokio::test]
async fn a_busy_loop_is_killed_at_cpu_ms() {
    let (_dir, pool) = pool();
    let t = Instant::now();
    let err = body(&pool, "/busy").await.unwrap_err();
    assert_eq!(err, DispatchError::CpuLimit { limit_ms: 100 });
    assert_eq!(
        err.to_string(),
        "Error 1102: Worker exceeded resource limits: CPU time limit exceeded (limits.cpu_ms = 100)."
    );
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(pool.snapshot()[0].cpu_limit_hits, 1);
    assert_eq!(body(&pool, "/").await.unwrap(), "ok");
    pool.shutdown();
    pool.join();
}
