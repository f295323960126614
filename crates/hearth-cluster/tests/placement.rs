//! Durable Object placement against PostgreSQL: one holder per object,
//! takeover only from a silent node, and a higher fencing token each time
//! the lease moves. Each test uses a schema of its own. Skipped without a
//! reachable PostgreSQL unless `HEARTH_TEST_REQUIRE_CLUSTER=1`.

use std::sync::Arc;
use std::time::Duration;

use hearth_cluster::{Owner, Pg, Placement};

mod pg_support;
use pg_support::run;

fn schema(test: &str) -> Option<Pg> {
    pg_support::schema("hearth_tp", test)
}

fn node(pg: &Pg, name: &str, port: u16) -> Arc<Placement> {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    Placement::open(pg.clone(), name, addr, Duration::from_secs(30)).unwrap()
}

fn resolve(p: &Arc<Placement>, id: &str) -> Owner {
    let p2 = p.clone();
    let id = id.to_owned();
    p.pg()
        .block(async move { p2.resolve("Counter", &id).await })
        .unwrap()
}

#[test]
fn one_live_holder_and_a_higher_token_on_takeover() {
    let Some(pg) = schema("takeover") else { return };
    let a = node(&pg, "a", 7001);
    let b = node(&pg, "b", 7002);
    assert_eq!(resolve(&a, "x"), Owner::Local { token: 1 });
    assert_eq!(
        resolve(&b, "x"),
        Owner::Remote {
            node: "a".into(),
            address: "127.0.0.1:7001".parse().unwrap()
        },
        "a live holder keeps its object"
    );
    assert_eq!(
        resolve(&b, "y"),
        Owner::Local { token: 1 },
        "each object apart"
    );

    // a goes silent for longer than the lease: b takes x over, fenced higher.
    run(
        &pg,
        "UPDATE cluster_nodes SET heartbeat_at = now() - interval '1 hour' WHERE node_id = 'a'"
            .into(),
    );
    assert_eq!(resolve(&b, "x"), Owner::Local { token: 2 });
    // a, unaware, still trusts its cache (storage's fencing stops its
    // writes); once it forgets, placement tells it where x went.
    assert_eq!(resolve(&a, "x"), Owner::Local { token: 1 });
    a.forget("Counter", "x");
    assert!(matches!(resolve(&a, "x"), Owner::Remote { node, .. } if node == "b"));

    let p = a.clone();
    let status = a.pg().block(async move { p.status().await }).unwrap();
    let by_name = |n: &str| status.iter().find(|s| s.node_id == n).unwrap().clone();
    assert!(!by_name("a").live && by_name("b").live);
    assert_eq!((by_name("a").objects, by_name("b").objects), (0, 2));
}

#[test]
fn concurrent_claims_give_one_owner() {
    let Some(pg) = schema("race") else { return };
    let nodes: Vec<_> = (0..4)
        .map(|i| node(&pg, &format!("n{i}"), 7100 + i))
        .collect();
    let owners: Vec<Owner> = std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|n| s.spawn(|| resolve(n, "contended")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let locals = owners
        .iter()
        .filter(|o| matches!(o, Owner::Local { .. }))
        .count();
    assert_eq!(locals, 1, "{owners:?}");
}

#[test]
fn a_second_live_node_with_the_same_id_is_refused() {
    let Some(pg) = schema("namesake") else { return };
    let addr = "127.0.0.1:7201".parse().unwrap();
    let lease = Duration::from_millis(600);
    let first = Placement::open(pg.clone(), "same", addr, lease).unwrap();
    first.spawn_heartbeat();
    let e = Placement::open(pg.clone(), "same", addr, lease).unwrap_err();
    assert!(
        e.to_string().contains("node id \"same\" is live already"),
        "{e}"
    );
}

/// A node cut off in the middle of a transaction (here holding a lock a
/// takeover would wait for) keeps its locks only for the idle limit:
/// PostgreSQL ends the transaction, another connection's wait for the lock
/// ends, and the cut-off connection finds its session gone.
#[test]
fn a_transaction_left_idle_gives_up_its_locks_after_the_limit() {
    let Some(pg) = schema("idle_tx") else { return };
    pg.limit_idle_transactions(Duration::from_millis(300));
    let p = pg.clone();
    let stuck = pg
        .block(async move {
            let c = p.open().await?;
            c.batch_execute("BEGIN; SELECT pg_advisory_xact_lock(hashtext(current_schema()))")
                .await?;
            Ok(c)
        })
        .unwrap();
    let p = pg.clone();
    let waited = pg
        .block(async move {
            let c = p.open().await?;
            // Without the limit the holder never lets go: fail, not hang.
            c.batch_execute("SET lock_timeout = '20s'").await?;
            let began = std::time::Instant::now();
            c.batch_execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()))")
                .await?;
            Ok(began.elapsed())
        })
        .unwrap();
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    let after = pg.block(async move { Ok(stuck.batch_execute("SELECT 1").await.is_err()) });
    assert!(after.unwrap(), "the idle transaction's session was ended");
}
