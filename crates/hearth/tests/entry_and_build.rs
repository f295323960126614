//! Projects as wrangler starts them: an entry script on the command line
//! (`hearth serve src/index.ts`), `[build].command` run before serving and
//! again by `hearth dev` on a change under `watch_dir`, and the
//! `.wrangler/deploy/config.json` redirect a Vite build leaves behind.

mod web_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use web_support::{Server, copy_tree};

const WAIT: Duration = Duration::from_secs(60);

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn worker(says: &str) -> String {
    format!("export default {{ fetch() {{ return new Response({says:?}); }} }};\n")
}

/// Runs the binary to completion (for start-ups that must fail); one that
/// is still running after [`WAIT`] is killed and the test fails.
fn run(cwd: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(cwd)
        .env_remove("HEARTH_DATA_DIR")
        .env("HEARTH_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "hearth {args:?} was still running after {WAIT:?}; stderr:\n{}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A Hono-example shape: a config with no `main`, started as
/// `wrangler dev src/index.ts` starts it.
const NO_MAIN: &str = "name = \"no-main\"\ncompatibility_date = \"2025-01-01\"\n";

#[test]
fn the_entry_script_on_the_command_line_serves_a_config_without_main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "wrangler.toml", NO_MAIN);
    write(root, "src/index.ts", &worker("from the script"));

    // Alone (the config from the current directory) and after the config.
    for args in [
        &["src/index.ts"][..],
        &["wrangler.toml", "src/index.ts"][..],
    ] {
        let server = Server::launch_in(root, "serve", args, WAIT);
        assert_eq!(server.get("/").text(), "from the script", "{args:?}");
    }
    let server = Server::launch_in(root, "dev", &["src/index.ts", "."], WAIT);
    assert_eq!(server.get("/").text(), "from the script");
    drop(server);

    // Without one, the error says how to give it.
    let out = run(root, &["serve"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("main: missing"), "{err}");
    assert!(err.contains("or give it on the command line"), "{err}");
}

#[test]
fn the_entry_script_replaces_the_configs_main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "wrangler.toml",
        "name = \"w\"\nmain = \"src/index.js\"\ncompatibility_date = \"2025-01-01\"\n",
    );
    write(root, "src/index.js", &worker("from main"));
    write(root, "src/other.mjs", &worker("from the command line"));
    let server = Server::launch_in(root, "serve", &["src/other.mjs"], WAIT);
    assert_eq!(server.get("/").text(), "from the command line");
    drop(server);
    let server = Server::launch_in(root, "serve", &[], WAIT);
    assert_eq!(server.get("/").text(), "from main");
}

#[test]
fn a_script_with_several_configs_or_two_scripts_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a/wrangler.toml", NO_MAIN);
    write(root, "b/wrangler.toml", "name = \"b\"\n");
    write(root, "src/index.ts", &worker("x"));
    write(root, "src/two.ts", &worker("y"));
    let out = run(
        root,
        &[
            "serve",
            "a/wrangler.toml",
            "b/wrangler.toml",
            "src/index.ts",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("src/index.ts was given with 2 configs"),
        "{}",
        stderr(&out)
    );
    let out = run(root, &["serve", "a", "src/index.ts", "src/two.ts"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("2 entry scripts given (src/index.ts, src/two.ts)"),
        "{}",
        stderr(&out)
    );
    let out = run(root, &["serve", "a", "src/missing.ts"]);
    assert!(
        stderr(&out).contains("the entry script src/missing.ts does not exist"),
        "{}",
        stderr(&out)
    );
}

/// main names the build's output, which does not exist until the build runs.
const BUILT: &str = r#"name = "built"
main = "dist/index.js"
compatibility_date = "2025-01-01"

[build]
command = "mkdir -p dist && cp src/template.js dist/index.js && echo built >> build.log"
watch_dir = "src"
"#;

#[test]
fn build_command_runs_before_serving_and_no_build_skips_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "wrangler.toml", BUILT);
    write(root, "src/template.js", &worker("built output"));
    let server = Server::launch_in(root, "serve", &[], WAIT);
    assert_eq!(server.get("/").text(), "built output");
    drop(server);
    assert_eq!(
        std::fs::read_to_string(root.join("build.log")).unwrap(),
        "built\n"
    );

    // --no-build serves what is there without running it.
    write(root, "dist/index.js", &worker("stale output"));
    let server = Server::launch_in(root, "serve", &["--no-build"], WAIT);
    assert_eq!(server.get("/").text(), "stale output");
    drop(server);
    assert_eq!(
        std::fs::read_to_string(root.join("build.log")).unwrap(),
        "built\n"
    );
}

#[test]
fn build_command_runs_in_build_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "worker/wrangler.toml",
        "name = \"w\"\nmain = \"out.js\"\ncompatibility_date = \"2025-01-01\"\n[build]\ncommand = \"cp template.js ../worker/out.js\"\ncwd = \"../tools\"\n",
    );
    write(root, "tools/template.js", &worker("built in cwd"));
    let server = Server::launch_in(root, "serve", &["worker"], WAIT);
    assert_eq!(server.get("/").text(), "built in cwd");
}

#[test]
fn a_failing_build_stops_start_up_with_its_status_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "wrangler.toml",
        "name = \"w\"\nmain = \"src/index.js\"\ncompatibility_date = \"2025-01-01\"\n[build]\ncommand = \"echo compiling; echo 'src/index.ts(3,1): error TS1005' >&2; exit 3\"\n",
    );
    write(root, "src/index.js", &worker("never served"));
    let started = Instant::now();
    let out = run(root, &["serve"]);
    assert!(started.elapsed() < WAIT);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    let error_line = err
        .lines()
        .position(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {err}"));
    let tail: Vec<&str> = err.lines().skip(error_line).collect();
    assert!(tail[0].contains("build.command"), "{err}");
    assert!(tail[0].contains("failed (exit status 3)"), "{err}");
    // Both streams, in the order printed.
    let compiling = tail.iter().position(|l| *l == "compiling");
    let ts_error = tail
        .iter()
        .position(|l| *l == "src/index.ts(3,1): error TS1005");
    assert!(compiling.is_some() && compiling < ts_error, "{err}");
    assert!(!err.contains("serving w on"), "{err}");
}

#[test]
fn dev_reruns_the_build_on_a_change_under_watch_dir_then_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "wrangler.toml", BUILT);
    write(root, "src/template.js", &worker("first build"));
    let server = Server::launch_in(root, "dev", &[], WAIT);
    assert_eq!(server.get("/").text(), "first build");

    // The worker never loads src/template.js: only the build makes the
    // edit reach it.
    write(root, "src/template.js", &worker("second build"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = server.get("/").text();
        if text == "second build" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {text:?}; log:\n{}",
            server.log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read_to_string(root.join("build.log")).unwrap(),
        "built\nbuilt\n"
    );
}

#[test]
fn a_vite_builds_deploy_redirect_is_followed_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../hearth-config/tests/fixtures/vite-redirect"),
        &root,
    );
    let server = Server::launch_in(&root, "serve", &[], WAIT);
    assert_eq!(server.get("/api").text(), "built worker, BUILT=yes");
    // assets.directory "../client" is relative to the generated config.
    assert_eq!(server.get("/").text(), "<h1>client</h1>\n");
    let log = server.log.lock().unwrap().join("\n");
    assert!(
        log.contains(".wrangler/deploy/config.json points to"),
        "{log}"
    );
    assert!(!log.contains("unknown field"), "{log}");
    // State stays beside the user's config, not in the build's output.
    assert!(
        log.contains(&format!("data in {}", root.join(".hearth").display())),
        "{log}"
    );
}

#[test]
fn a_start_up_error_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "wrangler.toml", NO_MAIN);
    write(
        root,
        "src/index.js",
        "throw new TypeError(\"bad top level\");\n",
    );
    let out = run(root, &["serve", "src/index.js"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {err}"));
    assert_eq!(line.matches("bad top level").count(), 1, "{line}");
}
