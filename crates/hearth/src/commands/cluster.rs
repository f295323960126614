//! `hearth cluster status`, and starting a node for `hearth serve --cluster`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hearth_cluster::{ClusterConfig, NodeState, Pg, Placement};
use hearth_core::SharedClock;
use hearth_runtime::cluster::ClusterNode;

use crate::cli::ClusterCommand;

pub fn run(command: ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Status { cluster, json } => status(&cluster, json),
        ClusterCommand::Drain {
            node,
            cluster,
            timeout,
        } => drain(&cluster, &node, Duration::from_secs(timeout)),
    }
}

/// Reads the cluster file and joins the cluster as a node.
pub fn start(path: &Path, clock: SharedClock) -> Result<Arc<ClusterNode>> {
    let config = ClusterConfig::load(path)?;
    let node = ClusterNode::start(config, clock)
        .with_context(|| format!("starting cluster node from {}", path.display()))?;
    tracing::info!(
        node = node.node_id(),
        internal = %node.config().advertise,
        "joined the cluster"
    );
    Ok(node)
}

/// Asks the node to drain (it sees it on its next heartbeat) and waits
/// until it holds no object.
fn drain(path: &Path, node_id: &str, timeout: Duration) -> Result<()> {
    let config = ClusterConfig::load(path)?;
    let pg = connect(path, &config)?;
    let lease = Duration::from_millis(config.durable_objects.lease_ms);
    let before = pg.block({
        let pg = pg.clone();
        let node_id = node_id.to_owned();
        async move { Placement::ask_drain(&pg, lease, &node_id).await }
    })?;
    if before == NodeState::Drained {
        return super::print_stdout(&format!("{node_id}: drained already"));
    }
    let started = Instant::now();
    let mut last = None;
    loop {
        let nodes = pg.block({
            let pg = pg.clone();
            async move { Placement::status_of(&pg, lease).await }
        })?;
        let Some(n) = nodes.into_iter().find(|n| n.node_id == node_id) else {
            anyhow::bail!("node {node_id:?} left the cluster while draining");
        };
        if n.state == NodeState::Active {
            anyhow::bail!("node {node_id:?} restarted while draining and is active again");
        }
        if n.state == NodeState::Drained && n.objects == 0 {
            return super::print_stdout(&format!(
                "{node_id}: drained in {:.1} s; it holds no Durable Object",
                started.elapsed().as_secs_f64()
            ));
        }
        if !n.live {
            anyhow::bail!(
                "node {node_id:?} stopped heartbeating while draining; its {} objects move once its lease lapses",
                n.objects
            );
        }
        if last != Some(n.objects) {
            eprintln!("{node_id}: draining, {} Durable Objects left", n.objects);
            last = Some(n.objects);
        }
        if started.elapsed() > timeout {
            anyhow::bail!(
                "node {node_id:?} still holds {} Durable Objects after {} s; it keeps draining",
                n.objects,
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn connect(path: &Path, config: &ClusterConfig) -> Result<Pg> {
    let Some(pg_config) = &config.postgres else {
        anyhow::bail!("{}: postgres: missing", path.display());
    };
    Ok(Pg::connect(&pg_config.url, &pg_config.schema)?)
}

fn status(path: &Path, json: bool) -> Result<()> {
    let config = ClusterConfig::load(path)?;
    let Some(pg_config) = &config.postgres else {
        anyhow::bail!("{}: postgres: missing", path.display());
    };
    let pg = Pg::connect(&pg_config.url, &pg_config.schema)?;
    // Read-only: a status query neither heartbeats nor takes leases, so
    // it looks through a placement handle that never joins.
    let lease = Duration::from_millis(config.durable_objects.lease_ms);
    let nodes = pg.block({
        let pg = pg.clone();
        async move { Placement::status_of(&pg, lease).await }
    })?;
    let redis = match &config.redis {
        Some(r) => match hearth_ratelimit::redis::RedisPool::connect(&r.url, &r.prefix) {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.to_string(),
        },
        None => "not configured".to_owned(),
    };
    let nats = match &config.nats {
        Some(n) => match hearth_cluster::Nats::connect(&n.url, &n.prefix) {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.to_string(),
        },
        None => "not configured".to_owned(),
    };
    let s3 = match &config.s3 {
        Some(c) => {
            let checked = hearth_r2::S3Store::connect(&hearth_runtime::cluster::store_config(c))
                .and_then(|store| store.check());
            match checked {
                Ok(()) => "ok".to_owned(),
                Err(e) => e.to_string(),
            }
        }
        None => "not configured".to_owned(),
    };
    if json {
        let nodes: Vec<_> = nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "node_id": n.node_id,
                    "address": n.address,
                    "live": n.live,
                    "heartbeat_age_ms": n.heartbeat_age_ms,
                    "durable_objects": n.objects,
                    "state": n.state.as_str(),
                })
            })
            .collect();
        let out = serde_json::json!({
            "nodes": nodes,
            "backends": { "postgres": "ok", "redis": redis, "nats": nats, "s3": s3 },
        });
        return super::print_stdout(&serde_json::to_string_pretty(&out)?);
    }
    let mut text = format!(
        "{:<20} {:<22} {:<5} {:<9} {:>12} {:>15}\n",
        "NODE", "ADDRESS", "LIVE", "STATE", "HEARTBEAT", "DURABLE OBJECTS"
    );
    for n in &nodes {
        text.push_str(&format!(
            "{:<20} {:<22} {:<5} {:<9} {:>10}ms {:>15}\n",
            n.node_id,
            n.address,
            if n.live { "yes" } else { "no" },
            n.state.as_str(),
            n.heartbeat_age_ms,
            n.objects
        ));
    }
    text.push_str(&format!(
        "postgres: ok ({})\nredis: {redis}\nnats: {nats}\ns3: {s3}",
        pg_config.schema
    ));
    super::print_stdout(&text)
}
