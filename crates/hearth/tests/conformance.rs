//! The differential conformance suite without Node: serves each area worker
//! of `conformance/` with `hearth serve`, runs every scenario and compares
//! its transcript with the golden recorded from Miniflare
//! (`conformance/record.sh`). Fails on a difference that
//! `conformance/known-differences.json` does not list, and on a listed one
//! that no longer differs, so the list stays honest.

mod web_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn conformance_dir() -> PathBuf {
    repo_root().join("conformance")
}

fn start_server(config: &Path, data_dir: &Path) -> web_support::Server {
    web_support::Server::launch("serve", config, data_dir, &[], Duration::from_secs(30))
}

/// One request per connection; returns the status and the (de-chunked) body.
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let host = [("Host", "conformance.test")];
    web_support::try_http(addr, method, path, &host, body, Duration::from_secs(20))
        .map(|r| (r.status, r.body))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".to_string(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 160 {
                format!("{}...", s.chars().take(157).collect::<String>())
            } else {
                s
            }
        }
    }
}

/// One place where two transcripts part: an RFC 6901 pointer and both values.
type Diff = (String, String, String);

/// Every place where two transcripts part. A key present on one side only,
/// or a change of type, is one difference at that key.
fn all_diffs(a: &Value, b: &Value, at: &str, out: &mut Vec<Diff>) {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let here = format!("{at}/{i}");
                match (x.get(i), y.get(i)) {
                    (Some(l), Some(r)) => all_diffs(l, r, &here, out),
                    (l, r) => out.push((here, show(l), show(r))),
                }
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(l), Some(r)) => all_diffs(l, r, &here, out),
                    (l, r) => out.push((here, show(l), show(r))),
                }
            }
        }
        _ if a == b => {}
        _ => out.push((at.to_string(), show(Some(a)), show(Some(b)))),
    }
}

/// A listed pointer accepts the difference at itself and everything below it.
fn covers(listed: &str, pointer: &str) -> bool {
    pointer == listed
        || pointer
            .strip_prefix(listed)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The scenario's problems: differences no listed pointer covers, and listed
/// pointers that no longer differ.
fn judge(id: &str, diffs: &[Diff], listed: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    for (at, want, have) in diffs {
        if !listed.keys().any(|p| covers(p, at)) {
            problems.push(format!("{id}: at {at}: miniflare {want}, hearth {have}"));
        }
    }
    for p in listed.keys() {
        if !diffs.iter().any(|(at, _, _)| covers(p, at)) {
            problems.push(format!(
                "{id}: {p} is listed in known-differences.json but no longer differs; remove it"
            ));
        }
    }
    problems
}

/// known-differences.json: scenario id -> JSON pointer -> why it differs.
type Known = BTreeMap<String, BTreeMap<String, String>>;

struct AreaOutcome {
    summary: String,
    problems: Vec<String>,
}

/// scheduled.json: scenario id -> scheduled events fired before it runs.
type Scheduled = BTreeMap<String, Vec<ScheduledEvent>>;

#[derive(serde::Deserialize)]
struct ScheduledEvent {
    cron: String,
    time: i64,
}

/// Runs `scheduled()` once the way wrangler's test endpoint does and records
/// the outcome as Miniflare reports it: "ok" or "exception".
fn fire_scheduled(addr: &str, event: &ScheduledEvent) -> Value {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("cron", &event.cron)
        .append_pair("time", &event.time.to_string())
        .finish();
    let path = format!("/cdn-cgi/handler/scheduled?{query}");
    let outcome = match http(addr, "GET", &path, b"") {
        Ok((200, _)) => "ok".to_string(),
        Ok(_) => "exception".to_string(),
        Err(e) => format!("no_response: {e}"),
    };
    serde_json::json!({ "cron": event.cron, "outcome": outcome })
}

fn run_area(
    area: &str,
    known: &Known,
    inputs: &BTreeMap<String, String>,
    scheduled: &Scheduled,
) -> AreaOutcome {
    let dir = conformance_dir();
    let mut goldens: Vec<String> = std::fs::read_dir(dir.join("expected").join(area))
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_string)
        })
        .collect();
    goldens.sort();

    let data = tempfile::tempdir().unwrap();
    let server = start_server(&dir.join(format!("wrangler.{area}.json")), data.path());
    let mut problems = Vec::new();

    let (_, listing) = http(&server.addr, "GET", "/", b"").unwrap();
    let served: Vec<String> = serde_json::from_slice(&listing).unwrap();
    if served != goldens {
        problems.push(format!(
            "{area}: the worker serves {served:?} but expected/{area}/ holds {goldens:?}; re-record with conformance/record.sh"
        ));
    }

    let (mut matching, mut known_count) = (0, 0);
    for name in &goldens {
        let id = format!("{area}/{name}");
        let golden = read_json(&dir.join("expected").join(area).join(format!("{name}.json")));
        let (method, body) = match inputs.get(&id) {
            Some(input) => ("POST", std::fs::read(repo_root().join(input)).unwrap()),
            None => ("GET", Vec::new()),
        };
        let outcomes: Vec<Value> = scheduled
            .get(&id)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|event| fire_scheduled(&server.addr, event))
            .collect();
        let mut got = match http(&server.addr, method, &format!("/{name}"), &body) {
            Ok((_, body)) => serde_json::from_slice(&body).unwrap_or_else(
                |_| serde_json::json!({ "not_json": String::from_utf8_lossy(&body) }),
            ),
            Err(e) => serde_json::json!({ "no_response": e }),
        };
        if let (false, Some(obj)) = (outcomes.is_empty(), got.as_object_mut()) {
            obj.insert("scheduled".into(), Value::Array(outcomes));
        }
        let mut diffs = Vec::new();
        all_diffs(&golden, &got, "", &mut diffs);
        let listed = known.get(&id).cloned().unwrap_or_default();
        let found = judge(&id, &diffs, &listed);
        if diffs.is_empty() {
            matching += 1;
        } else if found.is_empty() {
            known_count += 1;
        }
        problems.extend(found);
    }
    AreaOutcome {
        summary: format!(
            "{area}: {matching}/{} match, {known_count} known differences",
            goldens.len()
        ),
        problems,
    }
}

#[test]
fn scenarios_match_the_recorded_goldens() {
    let dir = conformance_dir();
    let known: Known =
        serde_json::from_value(read_json(&dir.join("known-differences.json"))).unwrap();
    let inputs: BTreeMap<String, String> =
        serde_json::from_value(read_json(&dir.join("inputs.json"))).unwrap();
    let scheduled: Scheduled =
        serde_json::from_value(read_json(&dir.join("scheduled.json"))).unwrap();
    let mut areas: Vec<String> = std::fs::read_dir(dir.join("expected"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    areas.sort();
    assert!(!areas.is_empty(), "no goldens under conformance/expected/");

    // Areas are independent servers with their own data; run them at once.
    let outcomes: Vec<AreaOutcome> = std::thread::scope(|s| {
        let handles: Vec<_> = areas
            .iter()
            .map(|area| s.spawn(|| run_area(area, &known, &inputs, &scheduled)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut problems = Vec::new();
    for outcome in outcomes {
        println!("{}", outcome.summary);
        problems.extend(outcome.problems);
    }
    assert!(
        problems.is_empty(),
        "{} conformance problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn diffs_name_every_differing_pointer() {
    let a = serde_json::json!({"steps": [{"ok": 1}, {"ok": {"b": [1, 2], "c/d": 1}}]});
    let b = serde_json::json!({"steps": [{"ok": 2}, {"ok": {"b": [1, 3]}}]});
    let mut diffs = Vec::new();
    all_diffs(&a, &b, "", &mut diffs);
    let pointers: Vec<&str> = diffs.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(
        pointers,
        ["/steps/0/ok", "/steps/1/ok/b/1", "/steps/1/ok/c~1d"]
    );
    assert_eq!(diffs[2].2, "(absent)");
    let mut none = Vec::new();
    all_diffs(&a, &a.clone(), "", &mut none);
    assert!(none.is_empty());
}

#[test]
fn a_listed_pointer_covers_its_subtree_only_and_must_still_differ() {
    assert!(covers("/steps/5", "/steps/5/threw/message"));
    assert!(covers("/steps/5", "/steps/5"));
    assert!(!covers("/steps/5", "/steps/50/ok"));
    let diffs = vec![
        ("/steps/1/ok".to_string(), "1".to_string(), "2".to_string()),
        ("/steps/3/ok".to_string(), "1".to_string(), "2".to_string()),
    ];
    let listed: BTreeMap<String, String> = [
        ("/steps/1".to_string(), "why".to_string()),
        ("/steps/2".to_string(), "why".to_string()),
    ]
    .into();
    let problems = judge("web/x", &diffs, &listed);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("web/x: at /steps/3/ok:"));
    assert!(problems[1].contains("/steps/2 is listed"));
}
