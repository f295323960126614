//! Rust-native Durable Objects: the same ids, storage, routing, output gate
//! and alarms as JavaScript classes, reached from Rust and from a worker's
//! stubs.

mod durable_common;

use bytes::Bytes;
use durable_common::{Setup, request, wait_for};
use hearth_do::StorageBackend;
use hearth_runtime::durable::{
    AlarmInfo, DurableObject, DurableObjectState, NativeClass, NativeRequest, NativeResponse,
};

struct Tally {
    memory: u64,
}

impl DurableObject for Tally {
    fn fetch(
        &mut self,
        state: &DurableObjectState<'_>,
        request: NativeRequest,
    ) -> Result<NativeResponse, String> {
        let read = |k: &str| -> Result<u64, String> {
            Ok(state
                .storage
                .get(k)
                .map_err(|e| e.to_string())?
                .and_then(|v| String::from_utf8(v).ok()?.parse().ok())
                .unwrap_or(0))
        };
        let mut n = read("n")?;
        if request.url.ends_with("/inc") {
            n += 1;
            self.memory += 1;
            state
                .storage
                .put("n", n.to_string().as_bytes())
                .map_err(|e| e.to_string())?;
        }
        if request.url.ends_with("/alarm") {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| e.to_string())?
                .as_millis() as i64;
            state
                .storage
                .set_alarm(now + 30)
                .map_err(|e| e.to_string())?;
        }
        if request.url.ends_with("/fail") {
            return Err("refused".into());
        }
        Ok(NativeResponse::text(format!(
            "n={n} memory={} alarms={}",
            self.memory,
            read("alarms")?
        )))
    }

    fn alarm(&mut self, state: &DurableObjectState<'_>, _info: AlarmInfo) -> Result<(), String> {
        let n = state
            .storage
            .get("alarms")
            .map_err(|e| e.to_string())?
            .and_then(|v| String::from_utf8(v).ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        state
            .storage
            .put("alarms", (n + 1).to_string().as_bytes())
            .map_err(|e| e.to_string())
    }
}

const WORKER: &str = r#"
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const stub = env.TALLY.getByName("shared");
    try {
      return await stub.fetch("http://native" + url.pathname);
    } catch (e) {
      return new Response("error: " + e.message, { status: 500 });
    }
  }
};
"#;

#[test]
fn native_object_behind_js_stubs_and_rust_calls() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = Setup::new(dir.path(), WORKER);
    setup.classes = &[("TALLY", "Tally", StorageBackend::Sqlite)];
    let w = setup.start();
    let objects = w
        .objects
        .clone()
        .with_native(vec![NativeClass::new("Tally", |_| {
            Ok(Box::new(Tally { memory: 0 }) as Box<dyn DurableObject>)
        })]);
    for _ in 0..3 {
        w.get("/inc");
    }
    // The same object from Rust: one instance, storage shared.
    let id = objects.namespace("Tally").unwrap().id_from_name("shared");
    let r =
        w.rt.block_on(objects.fetch("Tally", &id, request("GET", "/inc", "")))
            .unwrap();
    assert_eq!(r.body, Bytes::from("n=4 memory=4 alarms=0"));

    // A handler error reaches the stub's caller as an exception.
    let r = w.call("GET", "/fail", "");
    assert_eq!(r.status, 500);
    assert_eq!(String::from_utf8_lossy(&r.body), "error: refused");

    // Alarms run natively too; the failed event reset the instance only.
    w.get("/alarm");
    let text = wait_for(10, || {
        let t = w.get("/get");
        t.ends_with("alarms=1").then_some(t)
    });
    assert!(text.starts_with("n=4 memory=0"), "{text}");
    w.stop();
}
