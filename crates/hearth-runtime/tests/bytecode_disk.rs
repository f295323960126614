//! With a bytecode directory, compiled modules outlive the process: the
//! first isolate after a restart (here: after the in-memory cache is
//! dropped) loads the file, and a damaged file is compiled afresh and
//! rewritten. Its own test binary, since it empties the process's cache.

use std::path::{Path, PathBuf};

use hearth_runtime::{IsolatePool, WorkerConfig, WorkerRequest, bytecode};

/// A module over the cache's size floor whose function throws on line
/// `pad + 1`.
fn worker(pad: usize, answer: &str) -> String {
    let mut s = String::new();
    for i in 0..pad {
        s.push_str(&format!("function filler{i}(x) {{ return x + {i}; }}\n"));
    }
    s.push_str("function thrower() { throw new Error('thrown here'); }\n");
    s.push_str(&format!(
        "export default {{ fetch() {{ let stack = ''; try {{ thrower(); }} catch (e) {{ stack = e.stack; }} \
         return Response.json({{ answer: '{answer}', filler: filler{last}(1), stack }}); }} }};\n",
        last = pad - 1
    ));
    s
}

fn ask(project: &Path, cache: &Path) -> serde_json::Value {
    let mut config = WorkerConfig::new(project.join("index.js"));
    config.module_root = Some(project.to_path_buf());
    config.isolates = 1;
    config.bytecode_dir = Some(cache.to_path_buf());
    let pool = IsolatePool::start(config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt
        .block_on(pool.dispatch(WorkerRequest::new(
            "t",
            "GET",
            "http://localhost/".to_string(),
        )))
        .unwrap();
    pool.shutdown();
    pool.join();
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).unwrap()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    out.sort();
    out
}

#[test]
fn a_new_process_loads_verified_bytecode_from_the_directory() {
    let project = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path().join("bytecode");
    std::fs::write(project.path().join("index.js"), worker(200, "first")).unwrap();

    let first = ask(project.path(), &cache);
    assert_eq!(first["answer"], "first");
    assert_eq!(first["filler"], 200);
    let written = files(&cache);
    assert_eq!(written.len(), 1, "one file for the one module: {written:?}");
    assert!(written[0].extension().is_some_and(|e| e == "qbc"));
    let file_a = std::fs::read(&written[0]).unwrap();

    // A restart: nothing in memory, the file is loaded and answers alike,
    // stack location included.
    bytecode::forget_in_memory();
    assert_eq!(bytecode::stats().0, 0);
    let again = ask(project.path(), &cache);
    assert_eq!(again, first);
    assert!(
        again["stack"]
            .as_str()
            .unwrap()
            .contains("at thrower (index.js:201:"),
        "{again}"
    );
    assert_eq!(
        bytecode::stats().0,
        1,
        "the loaded module is kept in memory"
    );
    assert_eq!(files(&cache), written, "no file added or renamed");

    // Another source gets its own file.
    std::fs::write(project.path().join("index.js"), worker(210, "second")).unwrap();
    bytecode::forget_in_memory();
    let second = ask(project.path(), &cache);
    assert_eq!(second["answer"], "second");
    let path_b = files(&cache)
        .into_iter()
        .find(|p| !written.contains(p))
        .expect("a second file");
    let file_b = std::fs::read(&path_b).unwrap();

    // What runs after a restart is the file's bytecode, not a compile: the
    // first module's bytecode under the second one's key (bytes 8..40 of
    // the header) answers as the first module did.
    let mut swapped = file_a.clone();
    swapped[8..40].copy_from_slice(&file_b[8..40]);
    std::fs::write(&path_b, &swapped).unwrap();
    bytecode::forget_in_memory();
    assert_eq!(ask(project.path(), &cache)["answer"], "first");

    // A damaged file is refused, compiled afresh and rewritten whole.
    let mut damaged = file_b.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x5a;
    std::fs::write(&path_b, &damaged).unwrap();
    bytecode::forget_in_memory();
    let fixed = ask(project.path(), &cache);
    assert_eq!(fixed["answer"], "second");
    assert_eq!(fixed["filler"], 210);
    assert_eq!(std::fs::read(&path_b).unwrap(), file_b);

    // A file cut short is refused the same way.
    std::fs::write(&path_b, &file_b[..file_b.len() - 7]).unwrap();
    bytecode::forget_in_memory();
    assert_eq!(ask(project.path(), &cache)["answer"], "second");
    assert_eq!(std::fs::read(&path_b).unwrap(), file_b);
    assert!(
        files(&cache)
            .iter()
            .all(|p| p.extension().is_some_and(|e| e == "qbc")),
        "no temporary file left behind"
    );
}
