//! The invariants ARCHITECTURE.md writes down, checked on every `cargo test`
//! so they cannot rot silently. Each check reads the workspace's sources as
//! text; comments and string literals are blanked first, so prose about a
//! rule never trips it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Longest function body (lines from `fn` to its closing brace) allowed in
/// the runtime, HTTP and config crates.
const MAX_FUNCTION_LINES: usize = 150;

/// Functions over the limit that predate the rule, with the length each may
/// not grow past. An entry may only shrink or go; a function that falls under
/// the limit must leave this list (the check says so).
const LONG_FUNCTIONS: &[(&str, &str, usize)] = &[];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One Rust source file: its path from the workspace root, and its text with
/// every comment and string literal replaced by spaces (newlines kept).
struct Source {
    rel: String,
    code: String,
    raw: String,
}

fn sources() -> Vec<Source> {
    let root = workspace_root();
    let mut files = Vec::new();
    for top in ["crates", "examples", "bench"] {
        walk(&root.join(top), &mut files);
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let raw = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let rel = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            Source {
                rel,
                code: blank_comments_and_strings(&raw),
                raw,
            }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if name.starts_with('.') || name == "target" || name == "node_modules" {
                continue;
            }
            walk(&path, out);
        } else if kind.is_file() && name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// Blanks comments, string and char literals so only code is left.
fn blank_comments_and_strings(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev_ident = i > 0 && is_ident(chars[i - 1]);
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if !prev_ident && (c == 'r' || (c == 'b' && next == Some('r'))) && {
            // A raw string: r"…", r#"…"#, br#"…"#.
            let start = if c == 'b' { i + 2 } else { i + 1 };
            let hashes = chars[start..].iter().take_while(|&&h| h == '#').count();
            chars.get(start + hashes) == Some(&'"')
        } {
            let start = if c == 'b' { i + 2 } else { i + 1 };
            let hashes = chars[start..].iter().take_while(|&&h| h == '#').count();
            let body = start + hashes + 1;
            for _ in i..body {
                out.push(' ');
            }
            i = body;
            while i < chars.len() {
                if chars[i] == '"'
                    && chars[i + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == '#')
                        .count()
                        == hashes
                {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && next == Some('\\') {
            // An escaped char literal: '\n', '\'', '\u{1F600}'.
            out.push(' ');
            i += 2;
            out.push(' ');
            while i < chars.len() && chars[i] != '\'' {
                out.push(' ');
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            out.push_str("   ");
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn crate_of(rel: &str) -> &str {
    let mut parts = rel.split('/');
    match parts.next() {
        Some("crates") => parts.next().unwrap_or(""),
        Some(top) => top,
        None => "",
    }
}

fn in_src(rel: &str) -> bool {
    rel.split('/').any(|p| p == "src")
}

/// Whether `code` holds `word` as a whole token (not inside an identifier).
fn token_positions<'a>(code: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(word).filter_map(move |(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + word.len()..].chars().next();
        let bounded =
            !before.is_some_and(is_ident) && !after.is_some_and(is_ident) && !word.is_empty();
        bounded.then_some(at)
    })
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

fn report(rule: &str, found: Vec<String>) {
    assert!(
        found.is_empty(),
        "{rule}:\n  {}\n(see ARCHITECTURE.md, \"Invariants checked by hearth-tidy\")",
        found.join("\n  ")
    );
}

#[test]
fn process_environment_is_read_only_by_the_binaries() {
    // `hearth` is the binary; `bench` is a program of its own that starts
    // peers; `hearth-testkit` is linked into test binaries only (checked by
    // `the_testkit_is_only_a_dev_dependency`).
    let mut found = Vec::new();
    for s in sources() {
        let krate = crate_of(&s.rel);
        if !in_src(&s.rel) || matches!(krate, "hearth" | "bench" | "hearth-testkit") {
            continue;
        }
        for pattern in ["std::env", "env::var", "env::args", "env::set_var"] {
            for at in token_positions(&s.code, pattern) {
                // The target's constants (ARCH, OS) are not the environment.
                if s.code[at..].starts_with("std::env::consts::") {
                    continue;
                }
                found.push(format!("{}:{}: {pattern}", s.rel, line_of(&s.code, at)));
            }
        }
    }
    report("only the binary crate reads the process environment", found);
}

/// Test support may read the environment because no shipped code links
/// it: every manifest names it under `[dev-dependencies]` only.
#[test]
fn the_testkit_is_only_a_dev_dependency() {
    let root = workspace_root();
    let mut manifests = vec![root.join("bench/Cargo.toml")];
    for entry in fs::read_dir(root.join("crates")).unwrap().flatten() {
        manifests.push(entry.path().join("Cargo.toml"));
    }
    manifests.push(root.join("examples/rust-worker/Cargo.toml"));
    let mut found = Vec::new();
    for manifest in manifests {
        let Ok(text) = fs::read_to_string(&manifest) else {
            continue;
        };
        let mut section = String::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line.to_owned();
            } else if line.starts_with("hearth-testkit") && section != "[dev-dependencies]" {
                found.push(format!("{}:{}: {section}", manifest.display(), n + 1));
            }
        }
    }
    report("hearth-testkit is a dev-dependency only", found);
}

#[test]
fn wall_clock_is_read_only_through_hearth_core_clock() {
    let mut found = Vec::new();
    for s in sources() {
        if !in_src(&s.rel) || crate_of(&s.rel) == "bench" {
            continue;
        }
        if s.rel == "crates/hearth-core/src/clock.rs" {
            continue;
        }
        for pattern in ["SystemTime::now", "Utc::now", "Local::now"] {
            for at in token_positions(&s.code, pattern) {
                found.push(format!("{}:{}: {pattern}", s.rel, line_of(&s.code, at)));
            }
        }
    }
    report(
        "the wall clock is read through hearth_core::clock (inject a Clock)",
        found,
    );
}

#[test]
fn sqlite_is_opened_only_through_hearth_core() {
    let mut found = Vec::new();
    for s in sources() {
        let krate = crate_of(&s.rel);
        // bench measures raw SQLite on purpose: it is the limit Hearth is compared with.
        if !in_src(&s.rel) || krate == "hearth-core" || krate == "bench" {
            continue;
        }
        for pattern in [
            "Connection::open",
            "Connection::open_with_flags",
            "Connection::open_in_memory",
        ] {
            for at in token_positions(&s.code, pattern) {
                found.push(format!("{}:{}: {pattern}", s.rel, line_of(&s.code, at)));
            }
        }
    }
    report(
        "SQLite is opened through hearth_core::sqlite (WAL, synchronous=FULL, one place)",
        found,
    );
}

#[test]
fn module_tree_matches_file_tree() {
    let mut found = Vec::new();
    for s in sources() {
        for at in token_positions(&s.code, "path") {
            let before = s.code[..at].trim_end();
            if before.ends_with("#[") || before.ends_with("#![") {
                found.push(format!("{}:{}: #[path]", s.rel, line_of(&s.code, at)));
            }
        }
    }
    report(
        "no #[path] attributes: files sit where their module is",
        found,
    );
}

#[test]
fn every_unsafe_block_says_why_it_is_sound() {
    let mut found = Vec::new();
    for s in sources() {
        let raw_lines: Vec<&str> = s.raw.lines().collect();
        for at in token_positions(&s.code, "unsafe") {
            let line = line_of(&s.code, at);
            // The comment may sit on the same line or on the lines just above
            // the statement (which can start a few lines before `unsafe`).
            let from = line.saturating_sub(6);
            let justified = raw_lines[from..line.min(raw_lines.len())]
                .iter()
                .any(|l| l.contains("SAFETY:") || l.contains("# Safety"));
            if !justified {
                found.push(format!("{}:{line}", s.rel));
            }
        }
    }
    report(
        "every `unsafe` has a `// SAFETY:` comment just above it",
        found,
    );
}

/// (file, function name, first line, length in lines) of every function.
fn functions(s: &Source) -> Vec<(String, usize, usize)> {
    let code = s.code.as_bytes();
    let mut out = Vec::new();
    for at in token_positions(&s.code, "fn") {
        let rest = &s.code[at + 2..];
        let name: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue; // a fn pointer type such as `fn(u8) -> u8`
        }
        // The body starts at the first `{` outside parentheses; a `;` first
        // means a declaration without a body (a trait method).
        let mut i = at + 2;
        let mut parens = 0i32;
        let mut body = None;
        while i < code.len() {
            match code[i] {
                b'(' | b'[' => parens += 1,
                b')' | b']' => parens -= 1,
                b';' if parens == 0 => break,
                b'{' if parens == 0 => {
                    body = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let Some(open) = body else { continue };
        let mut depth = 0i32;
        let mut close = open;
        for (j, &b) in code.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let first = line_of(&s.code, at);
        let last = line_of(&s.code, close);
        out.push((name, first, last - first + 1));
    }
    out
}

#[test]
fn functions_stay_short_in_runtime_http_and_config() {
    let checked = ["hearth-runtime", "hearth-http", "hearth-config"];
    let mut allowed: BTreeMap<(&str, &str), usize> = LONG_FUNCTIONS
        .iter()
        .map(|&(file, name, len)| ((file, name), len))
        .collect();
    let mut found = Vec::new();
    for s in sources() {
        if !in_src(&s.rel) || !checked.contains(&crate_of(&s.rel)) {
            continue;
        }
        for (name, line, len) in functions(&s) {
            let key = (s.rel.as_str(), name.as_str());
            match allowed.iter().find(|(k, _)| **k == key).map(|(_, v)| *v) {
                Some(ceiling) => {
                    allowed.retain(|k, _| *k != key);
                    if len > ceiling {
                        found.push(format!(
                            "{}:{line}: {name} grew to {len} lines (its ceiling is {ceiling}; split it)",
                            s.rel
                        ));
                    } else if len <= MAX_FUNCTION_LINES {
                        found.push(format!(
                            "{}:{line}: {name} is {len} lines now: take it off LONG_FUNCTIONS",
                            s.rel
                        ));
                    }
                }
                None if len > MAX_FUNCTION_LINES => found.push(format!(
                    "{}:{line}: {name} is {len} lines (limit {MAX_FUNCTION_LINES})",
                    s.rel
                )),
                None => {}
            }
        }
    }
    for ((file, name), _) in allowed {
        found.push(format!(
            "{file}: {name} is listed in LONG_FUNCTIONS but no longer exists"
        ));
    }
    report("functions stay short", found);
}

#[test]
fn sources_are_formatted() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["fmt", "--all", "--", "--check"])
        .current_dir(workspace_root())
        .output()
        .expect(
            "running cargo fmt (the rustfmt component is part of the toolchain Hearth builds with)",
        );
    assert!(
        out.status.success(),
        "cargo fmt --check found unformatted code; run `cargo fmt --all`:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_lexer_blanks_what_it_should() {
    let src = "let a = \"fn x() {\"; // fn y\nlet b = r#\"unsafe \"q\" \"#; let c = '\\''; let d = 'x';\n/* SystemTime::now /* nested */ */ fn real<'a>(x: &'a str) {}\n";
    let code = blank_comments_and_strings(src);
    assert_eq!(code.lines().count(), src.lines().count());
    assert!(!code.contains("fn x"));
    assert!(!code.contains("fn y"));
    assert!(!code.contains("unsafe"));
    assert!(!code.contains("SystemTime"));
    assert!(code.contains("fn real<'a>(x: &'a str) {}"));
    let s = Source {
        rel: "x.rs".into(),
        raw: src.into(),
        code,
    };
    let fns = functions(&s);
    assert_eq!(fns, vec![("real".to_owned(), 3, 1)]);
}
