//! `hearth serve --edge`, `hearth keys` and `hearth security events`
//! through the binary: keys made and revoked by the CLI are honoured by a
//! running server, blocks become events the CLI prints, and a bad zone
//! file stops start-up with the file and field named.

mod web_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use web_support::{Server, copy_tree, example};

fn hearth(args: &[&str], data: &Path, project: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .arg("--config")
        .arg(project)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ZONE: &str = r#"
[[api_keys]]
id = "partners"
expression = 'starts_with(http.request.uri.path, "/partner/")'
scopes = ["partner"]

[[rules]]
id = "no-admin"
expression = 'starts_with(http.request.uri.path, "/admin")'
action = "block"
"#;

#[test]
fn keys_made_by_the_cli_open_the_edge_and_revoked_ones_close_it() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    copy_tree(&example("bindings"), &project);
    let data = dir.path().join("data");
    let zone = dir.path().join("hearth.toml");
    std::fs::write(&zone, ZONE).unwrap();

    let (ok, out, err) = hearth(
        &["keys", "create", "--tenant", "acme", "--scope", "partner"],
        &data,
        &project,
    );
    assert!(ok, "{err}");
    let key = out.lines().next().unwrap().to_string();
    assert!(key.starts_with("hk_"), "{out}");
    let id = key.split('_').nth(1).unwrap().to_string();
    let (ok, list, _) = hearth(&["keys", "list"], &data, &project);
    assert!(ok);
    assert!(list.contains(&format!("{id}\tacme\tpartner\t")), "{list}");
    assert!(!list.contains(&key), "the secret is never listed");

    let zone_arg = zone.display().to_string();
    let server = Server::launch_in(
        dir.path(),
        "serve",
        &[
            "app/wrangler.toml",
            "--data-dir",
            "data",
            "--edge",
            &zone_arg,
        ],
        Duration::from_secs(60),
    );
    let r = server.request("GET", "/partner/orders", &[("x-api-key", &key)], b"");
    assert_ne!(r.status, 401, "{}", r.text());
    assert_eq!(server.get("/partner/orders").status, 401);
    assert_eq!(server.get("/admin").status, 403);

    let (ok, _, err) = hearth(&["keys", "revoke", &id], &data, &project);
    assert!(ok, "{err}");
    let r = server.request("GET", "/partner/orders", &[("x-api-key", &key)], b"");
    assert_eq!(r.status, 401, "revoked while the server runs");
    let (ok, _, err) = hearth(&["keys", "revoke", "000000000000"], &data, &project);
    assert!(!ok);
    assert!(err.contains("no API key with id \"000000000000\""), "{err}");

    // The events file is written by a background thread: poll briefly.
    let mut events = String::new();
    for _ in 0..50 {
        let (ok, out, _) = hearth(&["security", "events"], &data, &project);
        assert!(ok);
        events = out;
        if events.lines().count() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rules: Vec<&str> = lines.iter().map(|e| e["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["partners", "no-admin", "partners"], "{events}");
    assert_eq!(lines[1]["path"], "/admin");
    assert_eq!(lines[2]["reason"], "invalid_api_key");
    let (_, only, _) = hearth(
        &["security", "events", "--rule", "no-admin"],
        &data,
        &project,
    );
    assert_eq!(only.lines().count(), 1);
    server.terminate();
}

#[test]
fn managed_rule_policies_from_the_zone_file_apply_to_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    copy_tree(&example("bindings"), &project);
    let data = dir.path().join("data");
    let zone = dir.path().join("hearth.toml");
    std::fs::write(
        &zone,
        "[managed_rules.policy]\nallowed_methods = [\"GET\", \"HEAD\"]\nrestricted_extensions = [\"bak\"]\n",
    )
    .unwrap();
    let zone_arg = zone.display().to_string();
    let server = Server::launch_in(
        dir.path(),
        "serve",
        &[
            "app/wrangler.toml",
            "--data-dir",
            "data",
            "--edge",
            &zone_arg,
        ],
        Duration::from_secs(60),
    );
    assert_ne!(server.get("/").status, 403);
    let post = server.request("POST", "/", &[("content-type", "application/json")], b"{}");
    assert_eq!(post.status, 403, "POST is not in allowed_methods");
    assert_eq!(server.get("/backup/site.bak").status, 403);
    assert_eq!(server.get("/?q=1%20union%20select%20password").status, 403);
    assert_ne!(server.get("/?q=whether%20or%20not").status, 403);

    let mut events = String::new();
    for _ in 0..50 {
        let (ok, out, _) = hearth(&["security", "events"], &data, &project);
        assert!(ok);
        events = out;
        if events.lines().count() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let rules: Vec<String> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["rule"].to_string())
        .collect();
    assert_eq!(rules, ["\"method\"", "\"policy\"", "\"sqli\""], "{events}");
    server.terminate();
}

#[test]
fn a_bad_zone_file_stops_start_up_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("hearth.toml");
    std::fs::write(
        &zone,
        "[[rules]]\nexpression = 'ip.src contains \"1\"'\naction = \"block\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .arg(example("bindings").join("wrangler.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--edge")
        .arg(&zone)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}: rules[0].expression: invalid expression",
            zone.display()
        )) && err.contains("`contains` needs a String operand, not IP address"),
        "{err}"
    );
}
