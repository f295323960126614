//! Several equal workers behind one listener: requests and the scheduled
//! endpoints reach the worker they route to (or name), each pool is found
//! by name, and bad worker lists are refused.

mod common;

use common::*;
use hearth_http::{MountedWorker, ServeError, ServeOptions, Server};

const A: &str = r#"export default { fetch() { return new Response("a"); } };"#;
const B: &str = r#"
export default {
  fetch() { return new Response("b"); },
  scheduled(event) { if (event.cron !== "0 * * * *") throw new Error(event.cron); },
};
"#;

fn worker(dir: &std::path::Path, name: &str) -> MountedWorker {
    let mut w = MountedWorker::new(small_config(&dir.join(name)));
    w.name = Some(name.into());
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_scheduled_reach_the_routed_or_named_worker() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("a/index.js", A), ("b/index.js", B)]);
    let a = worker(dir.path(), "a");
    let mut b = worker(dir.path(), "b");
    b.routes = vec!["b.test/*".into()];
    b.crons = vec!["0 * * * *".into()];
    let mut opts = ServeOptions::several(vec![a, b]);
    opts.listen = "127.0.0.1:0".parse().unwrap();
    opts.internal_token = Some(INTERNAL_TOKEN.into());
    let server = Server::bind(opts).await.unwrap();
    let addr = server.local_addr();
    assert!(server.pool_of("b").is_some());
    assert!(server.pool_of("c").is_none());
    assert!(server.reloader_of("b").is_some());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));

    let on = |host: &str, path: &str, token: bool| {
        let mut req = http::Request::get(path).header("host", host);
        if token {
            req = req.header("authorization", format!("Bearer {INTERNAL_TOKEN}"));
        }
        send(addr, req.body(Default::default()).unwrap())
    };
    assert_eq!(on("b.test", "/", false).await.body, "b");
    assert_eq!(on("other.test", "/", false).await.body, "a");

    let cron = "/__hearth/scheduled?cron=0+*+*+*+*";
    let r = on("b.test", cron, true).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The first worker configures no crons.
    let r = on("other.test", cron, true).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = on("other.test", &format!("{cron}&worker=b"), true).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = on("b.test", &format!("{cron}&worker=c"), true).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("worker=\"c\""), "{}", r.body);

    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_worker_or_a_repeated_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("a/index.js", A)]);
    let err = Server::bind(ServeOptions::several(Vec::new())).await.err();
    assert!(matches!(err, Some(ServeError::NoWorker)), "{err:?}");
    let mut opts = ServeOptions::several(vec![worker(dir.path(), "a"), worker(dir.path(), "a")]);
    opts.listen = "127.0.0.1:0".parse().unwrap();
    let err = Server::bind(opts).await.err();
    assert!(
        matches!(&err, Some(ServeError::DuplicateName(n)) if n == "a"),
        "{err:?}"
    );
}
