//! The package corpus: npm packages people use in Workers, installed with
//! `npm ci` from `corpus/package-lock.json` (pinned versions) into a copy
//! under the target directory, and each exercised by `corpus/src/index.js` (one check
//! per package, `GET /<check>`) under `hearth serve`; partyserver runs in a
//! worker of its own (`corpus/wrangler.party.jsonc`) because it needs a
//! Durable Object class exported by the main module.
//!
//! Prints a table of every check. Every check passes except those listed in
//! [`KNOWN_FAILURES`] with their reason, so a package that worked cannot
//! silently stop working. Skipped with a notice when npm is missing, unless
//! `HEARTH_REQUIRE_CORPUS` is set (`.ci/run` sets it), which makes a
//! missing npm a failure.

mod web_support;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use web_support::{Server, copy_tree};

/// Checks that fail today, with why. Each reason names what Hearth lacks.
const KNOWN_FAILURES: &[(&str, &str)] = &[
    (
        "pg",
        "a CommonJS require() is evaluated when its module loads, not when it is called: pg's lazy `native` getter pulls in lib/native/client.js, whose require('pg-native') (an optional package) then fails",
    ),
    (
        "jsonwebtoken",
        "loading stops with \"module.exports is not initialized\" (a CommonJS cycle under jws, now that node:stream loads)",
    ),
    (
        "linkedom",
        "the engine has no Intl (QuickJS ships none, and Hearth provides none yet)",
    ),
];

/// At least this many distinct npm packages are exercised.
const MIN_PACKAGES: usize = 25;

fn corpus_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus")
}

fn npm_available() -> bool {
    Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A copy of the corpus with its packages installed by `npm ci`, kept under
/// the target directory and reused while `package.json` and
/// `package-lock.json` are unchanged (a 240 MB `node_modules` takes longer
/// to write and delete than the checks take to run). The sources are
/// copied in again every time.
fn installed_copy() -> PathBuf {
    let mut hasher = DefaultHasher::new();
    for file in ["package.json", "package-lock.json"] {
        std::fs::read(corpus_dir().join(file))
            .unwrap()
            .hash(&mut hasher);
    }
    let app = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("package-corpus-{:016x}", hasher.finish()));
    let marker = app.join(".hearth-installed");
    if !marker.exists() {
        // A copy without the marker is an install that did not finish.
        let _ = std::fs::remove_dir_all(&app);
        copy_tree(&corpus_dir(), &app);
        let install = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&app)
            .output()
            .unwrap();
        assert!(
            install.status.success(),
            "npm ci failed: {}",
            String::from_utf8_lossy(&install.stderr)
        );
        std::fs::write(&marker, b"").unwrap();
    }
    copy_tree(&corpus_dir(), &app);
    app
}

struct Outcome {
    name: String,
    ok: bool,
    detail: String,
}

/// Runs one check; a non-JSON or non-200 answer is a failure with its text.
fn run_check(server: &Server, name: &str) -> Outcome {
    let path = format!("/{name}");
    let host = server.addr.clone();
    let reply = web_support::try_http(
        &server.addr,
        "GET",
        &path,
        &[("Host", &host)],
        b"",
        std::time::Duration::from_secs(60),
    );
    let (ok, detail) = match reply {
        Err(e) => (false, format!("no answer: {e}")),
        Ok(r) => match serde_json::from_slice::<serde_json::Value>(&r.body) {
            Ok(v) if r.status == 200 => {
                let ok = v["ok"] == true;
                let text = if ok { &v["detail"] } else { &v["error"] };
                (ok, text.as_str().unwrap_or_default().to_string())
            }
            _ => (false, format!("{}: {}", r.status, r.text())),
        },
    };
    Outcome {
        name: name.to_string(),
        ok,
        detail,
    }
}

fn print_table(outcomes: &[Outcome]) {
    let width = outcomes.iter().map(|o| o.name.len()).max().unwrap_or(0);
    eprintln!("\npackage corpus ({} checks):", outcomes.len());
    for o in outcomes {
        let known = KNOWN_FAILURES.iter().find(|(n, _)| *n == o.name);
        let status = match (o.ok, known) {
            (true, None) => "pass",
            (true, Some(_)) => "pass (listed as a known failure: remove it)",
            (false, Some(_)) => "known failure",
            (false, None) => "FAIL",
        };
        let mut detail = o.detail.clone();
        if let (false, Some((_, why))) = (o.ok, known) {
            detail = format!("{why} [{detail}]");
        }
        detail.truncate(160);
        eprintln!("  {:width$}  {status:<13}  {detail}", o.name);
    }
}

#[test]
fn npm_packages_people_use_in_workers_run_under_hearth_serve() {
    if !npm_available() {
        assert!(
            std::env::var_os("HEARTH_REQUIRE_CORPUS").is_none(),
            "HEARTH_REQUIRE_CORPUS is set but npm is not installed"
        );
        eprintln!("SKIPPED package corpus: npm is not installed");
        return;
    }
    let started = Instant::now();
    let app = installed_copy();
    let installed = started.elapsed();
    let dir = tempfile::tempdir().unwrap();

    let main = Server::start(
        "serve",
        &app.join("wrangler.jsonc"),
        &dir.path().join("data"),
    );
    let party = Server::start(
        "serve",
        &app.join("wrangler.party.jsonc"),
        &dir.path().join("party-data"),
    );
    let names: Vec<String> = serde_json::from_value(main.get("/").json()).unwrap();
    let mut outcomes: Vec<Outcome> = names.iter().map(|n| run_check(&main, n)).collect();
    outcomes.push(run_check(&party, "partyserver"));
    print_table(&outcomes);
    eprintln!(
        "install {:.1}s, checks {:.1}s",
        installed.as_secs_f64(),
        (started.elapsed() - installed).as_secs_f64()
    );

    // The corpus is what it claims: enough packages, each one installed.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(app.join("package.json")).unwrap()).unwrap();
    let packages = manifest["dependencies"].as_object().unwrap();
    assert!(
        packages.len() >= MIN_PACKAGES,
        "the corpus names {} packages, fewer than {MIN_PACKAGES}",
        packages.len()
    );
    for (name, _) in KNOWN_FAILURES {
        assert!(
            outcomes.iter().any(|o| o.name == *name),
            "KNOWN_FAILURES lists {name}, which is not a check"
        );
    }
    let unexpected: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.ok && !KNOWN_FAILURES.iter().any(|(n, _)| *n == o.name))
        .map(|o| format!("{}: {}", o.name, o.detail))
        .collect();
    assert!(
        unexpected.is_empty(),
        "packages that should work failed:\n{}",
        unexpected.join("\n")
    );
}
