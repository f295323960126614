//! Regression guard for the work done per request, without timing: the
//! server runs under callgrind, which counts instructions, and the count per
//! request (the difference between a short and a long run, so start-up and
//! shutdown cancel out) must stay under a budget. The budgets are about 1.5×
//! what this test measured when they were set, so a change that makes a
//! request half as expensive again fails here, while compiler noise does not.
//!
//! Needs valgrind. CI sets `HEARTH_TEST_REQUIRE_VALGRIND=1`, so there a
//! missing valgrind fails instead of skipping.

mod web_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use web_support::Server;

fn valgrind_available() -> bool {
    let found = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("HEARTH_TEST_REQUIRE_VALGRIND").is_none(),
            "valgrind is required (HEARTH_TEST_REQUIRE_VALGRIND is set) but was not found"
        );
        eprintln!("skipped: valgrind is not installed (apt-get install valgrind)");
    }
    found
}

fn bench_worker(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../bench/workers")
        .join(name)
        .join("wrangler.toml")
}

/// Instructions the whole server executed while answering `n` requests
/// (a GET, or a POST of `body` that must come back byte for byte).
fn instructions(config: &Path, path: &str, body: Option<&[u8]>, n: usize) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("callgrind.out");
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .arg(config)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let server = Server::spawn(cmd, Duration::from_secs(300));
    for _ in 0..n {
        let reply = match body {
            Some(body) => server.request("POST", path, &[], body),
            None => server.get(path),
        };
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        if let Some(body) = body {
            assert!(reply.body == body, "the echo differs: {}", reply.text());
        }
    }
    // A clean exit is what makes callgrind write its totals.
    server.terminate();
    let profile = std::fs::read_to_string(&out).unwrap();
    profile
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary: ")
                .or_else(|| l.strip_prefix("totals: "))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no instruction total in {}", out.display()))
}

fn per_request(config: &Path, path: &str, body: Option<&[u8]>) -> u64 {
    const FEW: usize = 5;
    const MANY: usize = 45;
    let few = instructions(config, path, body, FEW);
    let many = instructions(config, path, body, MANY);
    assert!(
        many > few,
        "more requests cost fewer instructions: {few} vs {many}"
    );
    (many - few) / (MANY - FEW) as u64
}

fn check(name: &str, measured: u64, budget: u64) {
    eprintln!("{name}: {measured} instructions per request (budget {budget})");
    assert!(
        measured <= budget,
        "{name}: {measured} instructions per request, over the budget of {budget}; \
         profile with valgrind --tool=callgrind and callgrind_annotate to see where they went"
    );
}

// Budgets for the test profile (`cargo test`: Hearth's own code at
// opt-level 0, QuickJS and SQLite optimised, see [profile.dev.package] in
// Cargo.toml). Measured when set: hello world 430-440 k instructions per
// request, the counter 1.61 M (a new connection per request, as `get` makes).
// A release build does about a third of that (bench/instructions.sh).
const HELLO_BUDGET: u64 = 650_000;
const DO_COUNTER_BUDGET: u64 = 2_400_000;
// JSON echo of 10 KB (request.json() then Response.json()): 6.33 M with
// QuickJS's own JSON, about 3.1 M with the native one (hearth-json), so
// falling back to QuickJS's JSON on this document fails the guard.
const JSON_ECHO_BUDGET: u64 = 4_600_000;

#[test]
fn hello_world_stays_within_its_instruction_budget() {
    if !valgrind_available() {
        return;
    }
    let measured = per_request(&bench_worker("hello"), "/", None);
    check("hello world", measured, HELLO_BUDGET);
}

#[test]
fn durable_object_counter_stays_within_its_instruction_budget() {
    if !valgrind_available() {
        return;
    }
    let measured = per_request(&bench_worker("do-counter"), "/c/0", None);
    check("Durable Object counter", measured, DO_COUNTER_BUDGET);
}

/// The 10 KB document of bench/wrk/json-echo.lua and bench/instructions.sh.
fn json_echo_body() -> Vec<u8> {
    let mut items = Vec::new();
    let mut size = 0;
    let mut i = 0;
    while size < 10 * 1024 - 80 {
        let item = format!(
            "{{\"id\":{i},\"name\":\"item-{i}\",\"tags\":[\"bench\",\"json\"],\"price\":{}}}",
            (i * 37) % 1000
        );
        size += item.len() + 1;
        items.push(item);
        i += 1;
    }
    format!("{{\"items\":[{}]}}", items.join(",")).into_bytes()
}

#[test]
fn json_echo_stays_within_its_instruction_budget() {
    if !valgrind_available() {
        return;
    }
    let body = json_echo_body();
    let measured = per_request(&bench_worker("json-echo"), "/", Some(&body));
    check("JSON echo (10 KB)", measured, JSON_ECHO_BUDGET);
}
