//! A Durable Object written in Rust, called from a JavaScript worker's stub.
//!
//!     cargo run -p hearth-runtime --example native_durable_object
//!
//! The class `Visits` counts requests per name in its own storage; the
//! worker routes `/<name>` to the object named `<name>`.

use std::sync::Arc;

use hearth_core::{DataDir, SystemClock};
use hearth_do::{DoLimits, DurableObjectHost, StorageBackend};
use hearth_runtime::durable::{
    DurableObject, DurableObjectOptions, DurableObjectState, DurableObjects, NativeClass,
    NativeRequest, NativeResponse,
};
use hearth_runtime::{BindingAdapter, IsolatePool, WorkerConfig, WorkerRequest};

struct Visits;

impl DurableObject for Visits {
    fn fetch(
        &mut self,
        state: &DurableObjectState<'_>,
        _request: NativeRequest,
    ) -> Result<NativeResponse, String> {
        let seen = state
            .storage
            .get("visits")
            .map_err(|e| e.to_string())?
            .and_then(|v| String::from_utf8(v).ok()?.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        state
            .storage
            .put("visits", seen.to_string().as_bytes())
            .map_err(|e| e.to_string())?;
        let name = state.id.name().unwrap_or("?");
        Ok(NativeResponse::text(format!("{name}: visit {seen}\n")))
    }
}

const WORKER: &str = r#"
export default {
  fetch(request, env) {
    const name = new URL(request.url).pathname.slice(1) || "home";
    return env.VISITS.getByName(name).fetch(request);
  }
};
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("hearth-native-do-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("index.js"), WORKER)?;

    let clock = SystemClock::shared();
    let host = DurableObjectHost::open(
        &DataDir::new(dir.join("data")),
        clock.clone(),
        DoLimits::default(),
    )?;
    let objects = DurableObjects::new(
        &host,
        [("Visits".to_string(), StorageBackend::Sqlite)],
        clock,
        DurableObjectOptions::default(),
    )?
    .with_native(vec![NativeClass::new("Visits", |_| {
        Ok(Box::new(Visits) as Box<dyn DurableObject>)
    })]);

    let mut config = WorkerConfig::new(dir.join("index.js"));
    config.durable_objects = Some(objects.clone());
    config.bindings =
        vec![Arc::new(objects.adapter("VISITS", "Visits")?) as Arc<dyn BindingAdapter>];
    let pool = IsolatePool::start(config)?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for path in ["/alice", "/bob", "/alice"] {
        let response = rt.block_on(pool.dispatch(WorkerRequest::new(
            path,
            "GET",
            format!("http://localhost{path}"),
        )))?;
        print!("{}", String::from_utf8_lossy(&response.body));
    }
    pool.shutdown();
    pool.join();
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
