//! A worker with Durable Object classes over a temporary data directory.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hearth_core::{DataDir, SystemClock};
use hearth_do::{DoLimits, DurableObjectHost, StorageBackend};
use hearth_runtime::durable::{DurableObjectOptions, DurableObjects};
use hearth_runtime::{BindingAdapter, IsolatePool, WorkerConfig, WorkerRequest, WorkerResponse};

pub struct Worker {
    pub pool: IsolatePool,
    pub objects: Arc<DurableObjects>,
    pub rt: tokio::runtime::Runtime,
}

pub struct Setup<'a> {
    pub dir: &'a Path,
    pub script: &'a str,
    /// (binding, class, backend)
    pub classes: &'a [(&'a str, &'a str, StorageBackend)],
    pub isolates: usize,
    pub idle: Duration,
}

impl<'a> Setup<'a> {
    pub fn new(dir: &'a Path, script: &'a str) -> Self {
        Self {
            dir,
            script,
            classes: &[("COUNTER", "Counter", StorageBackend::Sqlite)],
            isolates: 2,
            idle: Duration::from_secs(10),
        }
    }

    pub fn start(&self) -> Worker {
        std::fs::write(self.dir.join("index.js"), self.script).unwrap();
        let data = DataDir::new(self.dir.join("data"));
        let clock = SystemClock::shared();
        let host = DurableObjectHost::open(&data, clock.clone(), DoLimits::default()).unwrap();
        let objects = DurableObjects::new(
            &host,
            self.classes
                .iter()
                .map(|(_, c, b)| (c.to_string(), *b))
                .collect::<Vec<_>>(),
            clock,
            DurableObjectOptions {
                idle_timeout: self.idle,
            },
        )
        .unwrap();
        let mut config = WorkerConfig::new(self.dir.join("index.js"));
        config.isolates = self.isolates;
        config.durable_objects = Some(objects.clone());
        config.bindings = self
            .classes
            .iter()
            .map(|(b, c, _)| Arc::new(objects.adapter(*b, c).unwrap()) as Arc<dyn BindingAdapter>)
            .collect();
        let pool = IsolatePool::start(config).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Worker { pool, objects, rt }
    }
}

pub fn request(method: &str, path: &str, body: &str) -> WorkerRequest {
    WorkerRequest {
        id: "t".into(),
        method: method.into(),
        url: format!("http://localhost{path}"),
        headers: vec![],
        body: Bytes::from(body.to_owned()),
        body_stream: None,
        cf: None,
    }
}

impl Worker {
    pub fn call(&self, method: &str, path: &str, body: &str) -> WorkerResponse {
        self.rt
            .block_on(self.pool.dispatch(request(method, path, body)))
            .unwrap_or_else(|e| panic!("{path}: {e:?}"))
    }

    /// GET `path`; the body as text, with the status checked.
    pub fn get(&self, path: &str) -> String {
        let r = self.call("GET", path, "");
        let status = r.status;
        let text = String::from_utf8(r.body.to_vec()).unwrap();
        assert_eq!(status, 200, "{path}: {text}");
        text
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        let text = self.get(path);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    }

    pub fn stop(self) {
        self.pool.shutdown();
        self.pool.join();
    }
}

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
pub fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
