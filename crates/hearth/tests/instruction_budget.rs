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

/// Instructions the whole server executed while answering `n` requests.
fn instructions(config: &Path, path: &str, n: usize) -> u64 {
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
        let reply = server.get(path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
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

fn per_request(config: &Path, path: &str) -> u64 {
    const FEW: usize = 5;
    const MANY: usize = 45;
    let few = instructions(config, path, FEW);
    let many = instructions(config, path, MANY);
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

#[test]
fn hello_world_stays_within_its_instruction_budget() {
    if !valgrind_available() {
        return;
    }
    let measured = per_request(&bench_worker("hello"), "/");
    check("hello world", measured, HELLO_BUDGET);
}

#[test]
fn durable_object_counter_stays_within_its_instruction_budget() {
    if !valgrind_available() {
        return;
    }
    let measured = per_request(&bench_worker("do-counter"), "/c/0");
    check("Durable Object counter", measured, DO_COUNTER_BUDGET);
}
