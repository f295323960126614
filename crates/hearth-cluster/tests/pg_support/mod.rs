//! Shared by the PostgreSQL-backed tests: a fresh schema per test, skipped
//! when PostgreSQL is unreachable unless `HEARTH_TEST_REQUIRE_CLUSTER=1`.
#![allow(dead_code)]

use hearth_cluster::Pg;

pub fn url() -> String {
    std::env::var("HEARTH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema named `<prefix>_<test>_<pid>`, or `None` (skip).
pub fn schema(prefix: &str, test: &str) -> Option<Pg> {
    let name = format!("{prefix}_{test}_{}", std::process::id());
    let pg = match Pg::connect(&url(), &name) {
        Ok(pg) => pg,
        Err(e) if std::env::var("HEARTH_TEST_REQUIRE_CLUSTER").as_deref() == Ok("1") => {
            panic!("PostgreSQL is required (HEARTH_TEST_REQUIRE_CLUSTER=1): {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            return None;
        }
    };
    run(
        &pg,
        format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"),
    );
    Some(pg)
}

pub fn run(pg: &Pg, sql: String) {
    let p = pg.clone();
    pg.block(async move {
        p.client().await?.batch_execute(&sql).await?;
        Ok(())
    })
    .unwrap();
}

pub fn count(pg: &Pg, sql: &'static str) -> i64 {
    let p = pg.clone();
    pg.block(async move { Ok(p.client().await?.query_one(sql, &[]).await?.get(0)) })
        .unwrap()
}
