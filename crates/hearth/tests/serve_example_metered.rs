//! `examples/metered-api`: both bindings together through `hearth serve`.
//! A key is admitted 5 times a minute, every request becomes a data point,
//! and the SQL API and `hearth analytics sql` count them by outcome.

mod web_support;

use std::process::Command;

use web_support::{Server, copy_tree, example};

#[test]
fn keys_are_metered_and_every_request_is_recorded() {
    let root = tempfile::tempdir().unwrap();
    copy_tree(&example("metered-api"), root.path());
    let config = root.path().join("wrangler.toml");
    let data = root.path().join("data");
    let server = Server::with_test_clock("serve", &config, &data);

    // Counts are kept in fixed minutes of the server's clock; move it to
    // the start of one so the requests below share it.
    let minute = 60_000;
    server.set_clock((server.clock_ms() / minute + 1) * minute + 100);
    let call = |key: Option<&str>| {
        let headers: Vec<(&str, &str)> = key.map(|k| ("x-api-key", k)).into_iter().collect();
        server.request("GET", "/v1/things", &headers, b"")
    };
    let statuses: Vec<u16> = (0..7).map(|_| call(Some("alice")).status).collect();
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429, 429]);
    let ok = call(Some("bob"));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["key"], "bob");
    assert_eq!(call(None).status, 401);
    // The next minute admits alice again.
    server.advance_clock(minute);
    assert_eq!(call(Some("alice")).status, 200);

    let query = "SELECT blob2 AS key, countIf(blob3 = 'ok') AS ok, countIf(blob3 = 'limited') AS limited, count() AS total \
                 FROM api_usage GROUP BY key ORDER BY key FORMAT JSONEachRow";
    let expected = "{\"key\":\"\",\"ok\":0,\"limited\":0,\"total\":1}\n\
                    {\"key\":\"alice\",\"ok\":6,\"limited\":2,\"total\":8}\n\
                    {\"key\":\"bob\",\"ok\":1,\"limited\":0,\"total\":1}\n";
    let answer = server.request(
        "POST",
        "/__hearth/analytics_engine/sql",
        &[],
        query.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), expected);
    server.terminate();

    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["analytics", "sql", query, "-c"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}
