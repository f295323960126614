//! Isolates after the first load compiled modules from the process's
//! bytecode cache: the same answers and the same stack locations, and a
//! changed source is compiled afresh, never served from a stale entry.

use hearth_runtime::{IsolatePool, WorkerConfig, WorkerRequest, bytecode};

/// A module over the cache's size floor: `pad` filler functions, then a
/// function that throws on line `pad + 2` (1-based) and an import.
fn worker(pad: usize, answer: &str) -> String {
    let mut s = String::from("import { twice } from './lib.js';\n");
    for i in 0..pad {
        s.push_str(&format!("function filler{i}(x) {{ return x + {i}; }}\n"));
    }
    s.push_str("function thrower() { throw new Error('thrown here'); }\n");
    s.push_str(&format!(
        "export default {{ fetch() {{ let stack = ''; try {{ thrower(); }} catch (e) {{ stack = e.stack; }} \
         return Response.json({{ answer: '{answer}', twice: twice(21), filler: filler{last}(1), stack }}); }} }};\n",
        last = pad - 1
    ));
    s
}

fn lib() -> String {
    let mut s = String::new();
    for i in 0..300 {
        s.push_str(&format!(
            "export function helper{i}(x) {{ return x * {i}; }}\n"
        ));
    }
    s.push_str("export function twice(x) { return x * 2; }\n");
    s
}

fn ask(dir: &std::path::Path) -> serde_json::Value {
    let mut config = WorkerConfig::new(dir.join("index.js"));
    config.module_root = Some(dir.to_path_buf());
    config.isolates = 2;
    let pool = IsolatePool::start(config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let r = rt
            .block_on(pool.dispatch(WorkerRequest::new(
                "t",
                "GET",
                "http://localhost/".to_string(),
            )))
            .unwrap();
        assert_eq!(r.status, 200);
        answers.push(serde_json::from_slice::<serde_json::Value>(&r.body).unwrap());
    }
    pool.shutdown();
    pool.join();
    assert_eq!(
        answers[0], answers[1],
        "the two isolates answered differently"
    );
    answers.remove(0)
}

#[test]
fn cached_modules_answer_and_locate_errors_as_compiled_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.js"), worker(200, "first")).unwrap();
    std::fs::write(dir.path().join("lib.js"), lib()).unwrap();
    let before = bytecode::stats();
    let first = ask(dir.path());
    let after = bytecode::stats();
    assert!(after.0 >= before.0 + 2, "{before:?} -> {after:?}");
    assert_eq!(first["answer"], "first");
    assert_eq!(first["twice"], 42);
    assert_eq!(first["filler"], 200);
    let stack = first["stack"].as_str().unwrap();
    assert!(
        stack.contains("at thrower (index.js:202:"),
        "the stack names the throwing line: {stack}"
    );

    // A second pool over the same files: both modules come from the cache
    // (no new entries) and behave the same.
    let second = ask(dir.path());
    assert_eq!(bytecode::stats().0, after.0);
    assert_eq!(first, second);

    // The same names with other sources: compiled again, new behaviour.
    std::fs::write(dir.path().join("index.js"), worker(210, "changed")).unwrap();
    let third = ask(dir.path());
    assert_eq!(third["answer"], "changed");
    assert_eq!(third["filler"], 210);
    assert!(
        third["stack"]
            .as_str()
            .unwrap()
            .contains("at thrower (index.js:212:"),
        "{third}"
    );
    assert_eq!(bytecode::stats().0, after.0 + 1);
}
