//! The managed rules against attack traffic and ordinary traffic.
//!
//! Attacks: the request-side regression tests of the OWASP Core Rule Set,
//! read from `../shared/testdata/crs-regression` (every stage whose
//! `expect_ids` names a rule), each counted at the lowest CRS paranoia
//! level of the rules it expects; the default level's goal is over the
//! level-1 stages. Benign traffic: requests this test builds
//! from the shapes real applications send (search terms, names with
//! apostrophes, JSON APIs, forms, cookies, browser headers), plus CRS's
//! own "must not match" stages, reported apart because many of them are
//! near-misses written to sit just outside one rule.
//!
//! Run with `-- --nocapture` to see the per-family table.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use hearth_edge::managed::ManagedRules;
use hearth_edge::rules::RequestCtx;

struct Case {
    family: String,
    id: String,
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    attack: bool,
    /// For an attack, the lowest CRS paranoia level among the rules its
    /// stage expects to fire: CRS itself only blocks it from that level.
    level: u8,
}

// The CRS rules tagged `paranoia-level/2`, `/3` and `/4` in the rule files
// of the corpus's commit; every other rule (including those with no tag,
// such as the blocking evaluation) runs from level 1.
const CRS_LEVEL_2: &[u32] = &[
    920121, 920200, 920201, 920230, 920240, 920271, 920320, 920451, 920650, 921151, 921422, 930121,
    931130, 931131, 932131, 932161, 932200, 932205, 932206, 932207, 932210, 932220, 932231, 932236,
    932239, 932240, 932271, 932281, 932300, 932310, 932320, 932371, 932390, 933151, 933152, 933153,
    934101, 934120, 934140, 934180, 934220, 941101, 941150, 941181, 941320, 941330, 941340, 941380,
    942101, 942120, 942130, 942131, 942150, 942152, 942180, 942200, 942210, 942260, 942300, 942310,
    942321, 942330, 942340, 942361, 942362, 942370, 942380, 942390, 942400, 942410, 942430, 942440,
    942450, 942470, 942480, 942510, 942520, 942521, 942522, 944151, 944200, 944210, 944240, 944250,
    944260,
];
const CRS_LEVEL_3: &[u32] = &[
    920272, 920300, 920490, 920510, 920521, 921180, 921210, 921230, 932190, 932232, 932237, 932238,
    932290, 932301, 932311, 932321, 932331, 932350, 933111, 933131, 933161, 933190, 933211, 934210,
    942251, 942420, 942431, 942460, 942490, 942511, 942530, 944300,
];
const CRS_LEVEL_4: &[u32] = &[
    920202, 920273, 920274, 920275, 920460, 921220, 942421, 942432, 944152,
];

fn crs_level(ids: &[u64]) -> u8 {
    let of = |id: u64| -> u8 {
        let id = u32::try_from(id).unwrap_or(0);
        if CRS_LEVEL_2.contains(&id) {
            2
        } else if CRS_LEVEL_3.contains(&id) {
            3
        } else if CRS_LEVEL_4.contains(&id) {
            4
        } else {
            1
        }
    };
    ids.iter().map(|&id| of(id)).min().unwrap_or(1)
}

fn corpus_dir() -> Option<PathBuf> {
    // `shared/` sits next to the checkout, which may be nested (a worktree).
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(2)
        .map(|p| p.join("../shared/testdata/crs-regression"))
        .find(|d| d.is_dir())
}

fn load_crs(dir: &Path) -> (Vec<Case>, usize) {
    let mut cases = Vec::new();
    let mut raw = 0;
    let mut families: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    families.sort();
    for fam in families.into_iter().filter(|p| p.is_dir()) {
        let family = fam.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&fam)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let doc: serde_yaml_ng::Value = match serde_yaml_ng::from_str(&text) {
                Ok(v) => v,
                Err(e) => panic!("{}: {e}", file.display()),
            };
            for test in doc["tests"].as_sequence().into_iter().flatten() {
                let test_id = format!(
                    "{}#{}",
                    file.file_stem().unwrap().to_string_lossy(),
                    yaml_str(&test["test_id"])
                );
                for stage in test["stages"].as_sequence().into_iter().flatten() {
                    let stage = if stage.get("stage").is_some() {
                        &stage["stage"]
                    } else {
                        stage
                    };
                    let input = &stage["input"];
                    let log = &stage["output"]["log"];
                    let attack = log.get("expect_ids").is_some();
                    let expected: Vec<u64> = log["expect_ids"]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_u64())
                        .collect();
                    if !attack && log.get("no_expect_ids").is_none() {
                        continue;
                    }
                    if input.get("encoded_request").is_some() || input.get("raw_request").is_some()
                    {
                        raw += 1;
                        continue;
                    }
                    let mut headers = Vec::new();
                    if let Some(m) = input["headers"].as_mapping() {
                        for (k, v) in m {
                            headers.push((yaml_str(k).to_ascii_lowercase(), yaml_str(v)));
                        }
                    }
                    cases.push(Case {
                        family: family.clone(),
                        id: test_id.clone(),
                        method: input
                            .get("method")
                            .map(yaml_str)
                            .unwrap_or_else(|| "GET".into()),
                        uri: input.get("uri").map(yaml_str).unwrap_or_else(|| "/".into()),
                        headers,
                        body: input
                            .get("data")
                            .map(yaml_str)
                            .unwrap_or_default()
                            .into_bytes(),
                        attack,
                        level: crs_level(&expected),
                    });
                }
            }
        }
    }
    (cases, raw)
}

fn yaml_str(v: &serde_yaml_ng::Value) -> String {
    match v {
        serde_yaml_ng::Value::String(s) => s.clone(),
        serde_yaml_ng::Value::Number(n) => n.to_string(),
        serde_yaml_ng::Value::Bool(b) => b.to_string(),
        serde_yaml_ng::Value::Sequence(s) => s.iter().map(yaml_str).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

fn blocked(rules: &ManagedRules, c: &Case) -> Option<String> {
    let (path, query) = c.uri.split_once('?').unwrap_or((&c.uri, ""));
    let headers: Vec<(&str, Cow<'_, str>)> = c
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str())))
        .collect();
    let host = c
        .headers
        .iter()
        .find(|(k, _)| k == "host")
        .map_or("localhost", |(_, v)| v.as_str());
    let ctx = RequestCtx::new(
        &c.method,
        host,
        path,
        query,
        headers,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        false,
        80,
    );
    rules.scan(&ctx, Some(&c.body)).map(|f| {
        format!(
            "{} ({}: {} {})",
            f.rule,
            f.reason,
            f.location.as_str(),
            f.name
        )
    })
}

/// Ordinary requests, built from combinations of what applications send.
fn benign() -> Vec<Case> {
    let words = [
        "shoes",
        "O'Brien",
        "rock & roll",
        "select a product from the list",
        "how to drop a class",
        "union station",
        "C++ tutorial",
        "café au lait",
        "1 or 2 bedrooms",
        "50% off",
        "what's new?",
        "email@example.com",
        "Smith, John",
        "2024-01-05",
        "New York, NY",
        "size: 10.5",
        "tom's diner",
        "<3 love",
        "a-b_c",
        "price > 100",
        "\"quoted phrase\"",
        "don't stop",
        "Ünïcödé text",
        "1+1",
        "order by price",
        "where to buy",
        "insert coin",
        "update your profile",
        "delete my account please",
        "cat food",
        "ls 3 sport",
        "id card",
        "echo dot",
        "ping pong",
        "sleep apnea",
        "script writing",
        "alert level",
        "javascript tutorial",
        "the onion",
        "1/2 cup sugar",
        "#hashtag",
        "@mention",
        "C# and F#",
        "fish & chips; peas",
        "path/to/page",
        "~user",
        "$100 bill",
        "x=1",
        "key: value",
        // Ordinary text near the shapes of the newer detectors.
        "PHP & MySQL",
        "b&w photo",
        "cheese & more",
        "release date (2024)",
        "time flies",
        "abs workout (beginner)",
        "see above (page 2)",
        "$100 (approx)",
        "mysql tutorial",
        "localhost setup guide",
        "if you can (or not)",
        "pick {red, green}",
        "me & you; forever",
        "Q&A",
        "AT&T",
        "__init__ method",
        "mix 2 cups; stir well",
        "dGhpcyBpcyBhIHRlc3Q=",
        "while (loading)",
        "the java runtime",
        "first_name__last_name",
        "user (admin)",
        "python 3.12 release",
        "select (all)",
        "set up env",
        "run: npm install",
        "I'd like that",
        "we'll see",
        "while (true) loop",
        "the 'curl' command",
        "top 10; top picks",
        "cost: ${price}",
        "speed trap near exit 4",
        // Next to the shapes added with the PHP, shell and protocol rules.
        "sudo make me a sandwich",
        "md5 checksum",
        "Location: Paris",
        "unix: a history",
        "pi (3.14)",
        "hash (#) sign",
        "printf debugging",
        "time who",
        // Next to the SQL shapes of the tokenizer: quotes, comparisons,
        // statement words and calls in ordinary text.
        "l'alter ego",
        "10' drop cord",
        "the 'select' button",
        "drop shipping; returns",
        "in case of rain",
        "round (2 decimals)",
        "rating >= 4",
        "O'Neil's 'best' pub",
        "5 stars = great",
        "a == b in JS",
        "Time (UTC)",
        "and/or",
        "'quoted' = fine",
        "see fig. 1.e.g. below",
        "if (a == b) { return; }",
        // Next to the PHP directive, upload, shell-function, loop, cookie
        // and markup shapes added with the CRS level-1 gaps.
        "engine: V8",
        "engine = diesel",
        "file extension .pdf",
        "precision: 2 decimals",
        "smtp server settings",
        "recycle bin/trash",
        "bin/README.md",
        "() => { return 1; }",
        "const f = () => {}",
        "while (true) is an idiom",
        "cookie policy; expires after 30 days",
        "cookies expire = never",
        "Lois & Clark: the entity system",
        "a:link and a:visited styles",
        "import { useState } from 'react'",
        "session id lost after login",
        "/.well-known/fabric",
        "the fabric of society",
    ];
    let paths = [
        "/",
        "/index.html",
        "/api/v1/users/42",
        "/products/shoes-123",
        "/blog/2024/01/hello-world",
        "/static/app.3f9a.js",
        "/images/logo.png",
        "/search",
        "/cart",
        "/account/settings",
        "/docs/getting-started",
        "/api/orders",
        "/u/jane.doe",
        "/feed.xml",
        "/robots.txt",
        "/favicon.ico",
        "/.well-known/security.txt",
    ];
    let uas = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "curl/8.5.0",
        "okhttp/4.12.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    ];
    let mut out = Vec::new();
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                b => format!("%{b:02X}"),
            })
            .collect()
    };
    for (i, w) in words.iter().enumerate() {
        for (j, p) in paths.iter().enumerate() {
            let ua = uas[(i + j) % uas.len()];
            let base = vec![
                ("host".to_string(), "example.com".to_string()),
                ("user-agent".to_string(), ua.to_string()),
                (
                    "accept".to_string(),
                    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8".to_string(),
                ),
                ("accept-language".to_string(), "en-US,en;q=0.5".to_string()),
                (
                    "cookie".to_string(),
                    format!("session=ab{i}cd{j}ef; theme=dark; cart_id={}", 1000 + j),
                ),
                (
                    "referer".to_string(),
                    format!("https://example.com{p}?page={j}"),
                ),
            ];
            // A query string.
            out.push(Case {
                family: "benign".into(),
                id: format!("q{i}-{j}"),
                method: "GET".into(),
                uri: format!("{p}?q={}&page={j}&sort=asc", enc(w)),
                headers: base.clone(),
                body: Vec::new(),
                attack: false,
                level: 0,
            });
            // A form post.
            let mut form = base.clone();
            form.push((
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ));
            out.push(Case {
                family: "benign".into(),
                id: format!("f{i}-{j}"),
                method: "POST".into(),
                uri: p.to_string(),
                headers: form,
                body: format!(
                    "name={}&comment={}&agree=on",
                    enc(w),
                    enc(words[(i + j) % words.len()])
                )
                .into_bytes(),
                attack: false,
                level: 0,
            });
            // A JSON API call.
            let mut json = base.clone();
            json.push(("content-type".into(), "application/json".into()));
            json.push((
                "authorization".into(),
                "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl".into(),
            ));
            let body = serde_json::json!({
                "title": w,
                "tags": [words[(i * 7 + j) % words.len()], "misc"],
                "count": j,
                "nested": {"note": words[(i + 3 * j) % words.len()], "url": format!("https://example.com{p}")},
            });
            out.push(Case {
                family: "benign".into(),
                id: format!("j{i}-{j}"),
                method: "PUT".into(),
                uri: format!("{p}?v=2"),
                headers: json,
                body: body.to_string().into_bytes(),
                attack: false,
                level: 0,
            });
        }
    }
    // File uploads as browsers send them, under the names people give
    // their files: a multipart part and an `X-File-Name` header each.
    let files = [
        "report.pdf",
        "photo 2024-01-05.jpg",
        "IMG_0042.HEIC",
        "php-cheatsheet.pdf",
        "shell scripting notes.txt",
        "session-notes.docx",
        "config-backup-guide.md",
        "wp-content-export.xml",
        "my.php.tutorial.pdf",
        "resume (final).docx",
        "data.sql.txt",
        "archive.tar.gz",
        "photo.png",
        "jsp-vs-servlets.pptx",
        "sess_notes.txt",
    ];
    for (i, f) in files.iter().enumerate() {
        let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\nfile contents {i}\r\n--{boundary}--\r\n",
            words[i % words.len()]
        );
        let headers = vec![
            ("host".to_string(), "example.com".to_string()),
            ("user-agent".to_string(), uas[i % uas.len()].to_string()),
            (
                "content-type".to_string(),
                format!("multipart/form-data; boundary={boundary}"),
            ),
        ];
        out.push(Case {
            family: "benign".into(),
            id: format!("u{i}"),
            method: "POST".into(),
            uri: "/upload".into(),
            headers: headers.clone(),
            body: body.into_bytes(),
            attack: false,
            level: 0,
        });
        let mut named = headers;
        named[2] = ("content-type".into(), "application/octet-stream".into());
        named.push(("x-file-name".into(), f.to_string()));
        out.push(Case {
            family: "benign".into(),
            id: format!("x{i}"),
            method: "PUT".into(),
            uri: "/upload".into(),
            headers: named,
            body: format!("file contents {i}").into_bytes(),
            attack: false,
            level: 0,
        });
    }
    out
}

#[test]
fn managed_rules_block_attacks_and_pass_ordinary_traffic() {
    let rules = ManagedRules::default();
    let benign = benign();
    let mut benign_blocked = Vec::new();
    for c in &benign {
        if let Some(why) = blocked(&rules, c) {
            benign_blocked.push(format!("{} {} -> {why}", c.id, c.uri));
        }
    }
    if std::env::var_os("SHOW_WORDS").is_some() {
        for c in benign.iter().filter(|c| c.id.starts_with('j')) {
            let v: serde_json::Value = serde_json::from_slice(&c.body).unwrap();
            for w in [&v["title"], &v["tags"][0], &v["nested"]["note"]] {
                let one = Case {
                    body: serde_json::json!({ "w": w }).to_string().into_bytes(),
                    ..Case {
                        family: String::new(),
                        id: String::new(),
                        method: c.method.clone(),
                        uri: c.uri.clone(),
                        headers: c.headers.clone(),
                        body: Vec::new(),
                        attack: false,
                        level: 0,
                    }
                };
                if let Some(why) = blocked(&rules, &one) {
                    println!("  word {w} -> {why}");
                }
            }
        }
    }
    let benign_rate = benign_blocked.len() as f64 / benign.len() as f64;
    println!(
        "benign: {} of {} blocked ({:.3}%)",
        benign_blocked.len(),
        benign.len(),
        benign_rate * 100.0
    );
    for b in benign_blocked.iter().take(30) {
        println!("  benign blocked: {b}");
    }

    let Some(dir) = corpus_dir() else {
        println!("SKIPPED the attack corpus: ../shared/testdata/crs-regression is not present");
        assert!(benign_rate <= 0.001, "benign block rate {benign_rate}");
        return;
    };
    let (cases, raw) = load_crs(&dir);
    // Per family: attacks, blocked, of which CRS level 1, blocked, then
    // near-misses and how many of them were blocked.
    let mut table: BTreeMap<String, [usize; 6]> = BTreeMap::new();
    let mut missed = Vec::new();
    let mut by_rule: BTreeMap<(String, String), usize> = BTreeMap::new();
    for c in &cases {
        let hit = blocked(&rules, c);
        let row = table.entry(c.family.clone()).or_default();
        if c.attack {
            row[0] += 1;
            row[2] += usize::from(c.level == 1);
            if let Some(why) = &hit {
                row[1] += 1;
                row[3] += usize::from(c.level == 1);
                let rule = why.split(' ').next().unwrap_or("").to_string();
                *by_rule.entry((c.family.clone(), rule)).or_default() += 1;
            } else {
                missed.push(format!(
                    "PL{} {} {} {} {:?} {:?}",
                    c.level,
                    c.id,
                    c.method,
                    c.uri,
                    String::from_utf8_lossy(&c.body),
                    c.headers
                ));
            }
        } else {
            row[4] += 1;
            row[5] += usize::from(hit.is_some());
        }
    }
    let mut sum = [0usize; 6];
    println!(
        "{:<48} {:>7} {:>7} {:>6} {:>7} {:>7} {:>6} {:>9} {:>7}",
        "family", "attacks", "blocked", "rate", "PL1", "blocked", "rate", "near-miss", "blocked"
    );
    for (fam, r) in &table {
        let pct = |hit: usize, of: usize| 100.0 * hit as f64 / of.max(1) as f64;
        println!(
            "{fam:<48} {:>7} {:>7} {:>5.1}% {:>7} {:>7} {:>5.1}% {:>9} {:>7}",
            r[0],
            r[1],
            pct(r[1], r[0]),
            r[2],
            r[3],
            pct(r[3], r[2]),
            r[4],
            r[5]
        );
        for (s, v) in sum.iter_mut().zip(r) {
            *s += v;
        }
    }
    let [att, att_hit, pl1, pl1_hit, near, near_hit] = sum;
    // The prefilter only skips values no detector could match: every
    // verdict, attack, near-miss and benign, is the same without it.
    let unfiltered = ManagedRules {
        prefilter: false,
        ..ManagedRules::default()
    };
    let mut differ = Vec::new();
    for c in cases.iter().chain(&benign) {
        let (with, without) = (blocked(&rules, c), blocked(&unfiltered, c));
        if with != without {
            differ.push(format!(
                "{} {} {:?}: {with:?} vs {without:?}",
                c.id,
                c.uri,
                String::from_utf8_lossy(&c.body)
            ));
        }
    }
    for d in differ.iter().take(20) {
        println!("  prefilter changed: {d}");
    }
    assert!(
        differ.is_empty(),
        "the prefilter changed {} verdicts",
        differ.len()
    );
    // The stricter paranoia levels, reported: at level N, the attacks CRS
    // blocks at level N or below, and the whole corpus.
    for level in 2..=4u8 {
        let strict = ManagedRules {
            paranoia: level,
            ..ManagedRules::default()
        };
        let (mut upto, mut upto_hit, mut all_hit) = (0, 0, 0);
        for c in cases.iter().filter(|c| c.attack) {
            let hit = blocked(&strict, c).is_some();
            all_hit += usize::from(hit);
            if c.level <= level {
                upto += 1;
                upto_hit += usize::from(hit);
            }
        }
        let fp = benign
            .iter()
            .filter(|c| blocked(&strict, c).is_some())
            .count();
        println!(
            "paranoia {level}: CRS level <= {level} attacks {upto_hit} of {upto} blocked ({:.1}%); all attacks {all_hit} of {att} ({:.1}%); benign {fp} of {} blocked",
            100.0 * upto_hit as f64 / upto as f64,
            100.0 * all_hit as f64 / att as f64,
            benign.len()
        );
    }
    let pl1_rate = pl1_hit as f64 / pl1 as f64;
    let attack_rate = att_hit as f64 / att as f64;
    println!(
        "default level: CRS level 1 attacks {pl1_hit} of {pl1} blocked ({:.1}%); all attacks {att_hit} of {att} ({:.1}%); CRS near-misses blocked: {near_hit} of {near}; raw-encoded stages not replayed: {raw}",
        pl1_rate * 100.0,
        attack_rate * 100.0
    );
    if std::env::var_os("SHOW_RULES").is_some() {
        for ((fam, rule), n) in &by_rule {
            println!("  {fam:<48} {rule:<18} {n:>6}");
        }
    }
    for m in missed.iter().take(
        std::env::var("SHOW_MISSED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    ) {
        println!("  missed: {m}");
    }
    assert!(
        benign_rate <= 0.001,
        "benign block rate {:.3}% over 0.1%",
        benign_rate * 100.0
    );
    // The goal: 95% of the attacks CRS blocks at its default level, at
    // ours. The whole corpus (CRS levels 2 to 4 included) has its own
    // floor. Both are the rates recorded in bench/RESULTS.md, rounded down,
    // so neither slides back.
    assert!(
        pl1_rate >= PL1_FLOOR,
        "CRS level 1 attack block rate {:.1}% fell under the recorded {:.1}%",
        pl1_rate * 100.0,
        PL1_FLOOR * 100.0
    );
    assert!(
        attack_rate >= ATTACK_FLOOR,
        "attack block rate {:.1}% fell under the recorded {:.1}%",
        attack_rate * 100.0,
        ATTACK_FLOOR * 100.0
    );
}

/// The block rates last recorded in bench/RESULTS.md, rounded down: of the
/// CRS level 1 attacks, and of the whole corpus.
const PL1_FLOOR: f64 = 0.961;
const ATTACK_FLOOR: f64 = 0.917;

fn upload(file: &str) -> Case {
    let boundary = "b0undary";
    Case {
        family: "upload".into(),
        id: file.into(),
        method: "POST".into(),
        uri: "/upload".into(),
        headers: vec![(
            "content-type".into(),
            format!("multipart/form-data; boundary={boundary}"),
        )],
        body: format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file}\"\r\n\r\nx\r\n--{boundary}--\r\n"
        )
        .into_bytes(),
        attack: false,
        level: 0,
    }
}

/// A multipart upload's file name: scripts the server would run (however
/// spaced), session files and the application's configuration are
/// refused; names that only mention them pass.
#[test]
fn uploads_named_as_server_scripts_are_refused() {
    let rules = ManagedRules::default();
    for bad in [
        "shell.php",
        "photo. php",
        "shell.jsp  ",
        "dir/dangerous.phtml",
        "/tmp/sess_d8ew88tqmabdcokhumchy8htqm",
        "wp-config_php.txt",
    ] {
        let why = blocked(&rules, &upload(bad));
        assert!(
            why.as_deref().is_some_and(|w| w.starts_with("php ")),
            "{bad}: {why:?}"
        );
    }
    for good in [
        "php-guide.pdf",
        "photo.png",
        "session notes.txt",
        "my.php.tutorial.pdf",
    ] {
        assert_eq!(blocked(&rules, &upload(good)), None, "{good}");
    }
}
