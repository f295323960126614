//! Shared by the cluster tests: where the backends are, whether they
//! answer, and what `hearth cluster status` says.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

/// The node-to-node secret every test cluster file carries.
pub const SECRET: &str = "cluster-test-secret-of-at-least-32-bytes";

pub fn postgres_url() -> String {
    std::env::var("HEARTH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

pub fn nats_url() -> String {
    std::env::var("HEARTH_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Whether PostgreSQL answers; fails instead when the cluster is required.
pub fn postgres_reachable() -> bool {
    let url = postgres_url();
    let reachable = hearth_cluster::Pg::connect(&url, "hearth_probe").is_ok();
    if !reachable {
        if std::env::var("HEARTH_TEST_REQUIRE_CLUSTER").as_deref() == Ok("1") {
            panic!(
                "PostgreSQL at {url} is required (HEARTH_TEST_REQUIRE_CLUSTER=1) but unreachable"
            );
        }
        eprintln!(
            "skipped: PostgreSQL at {url} unreachable; set HEARTH_TEST_REQUIRE_CLUSTER=1 to fail instead"
        );
    }
    reachable
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Drops a test's schema (and everything in it) when PostgreSQL answers.
pub fn drop_schema(schema: &str) {
    if let Ok(pg) = hearth_cluster::Pg::connect(&postgres_url(), "hearth_probe") {
        let schema = schema.to_owned();
        let _ = pg.block({
            let pg = pg.clone();
            async move {
                let c = pg.client().await?;
                c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await?;
                Ok(())
            }
        });
    }
}

/// `hearth cluster status --json` of the cluster a file names.
pub fn status(cluster_file: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["cluster", "status", "--json", "--cluster"])
        .arg(cluster_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hearth cluster status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The node that holds the one object's lease, by `hearth cluster status`.
pub fn owner(cluster_file: &Path) -> String {
    let s = status(cluster_file);
    let holders: Vec<String> = s["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["durable_objects"].as_i64() == Some(1))
        .map(|n| n["node_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(holders.len(), 1, "one node holds the object: {s}");
    holders[0].clone()
}
