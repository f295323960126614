//! `--edge hearth.toml` for `hearth serve`, `hearth keys create|list|revoke`
//! and `hearth security events`, over the files the edge keeps under
//! `<data dir>/edge/`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::cli::{KeysCommand, SecurityCommand};
use crate::commands::print_stdout;
use crate::project::Project;

/// The edge for `hearth serve --edge FILE`, with its keys and events in
/// the first project's data directory. Its rate-limiting rules count with
/// the Rate Limiting binding's engine: in memory, or in the cluster's Redis
/// when the cluster counts rate limits there, so every node shares them.
pub fn load(
    path: Option<&Path>,
    project: &Project,
    redis: Option<&hearth_ratelimit::redis::RedisPool>,
) -> Result<Option<Arc<hearth_http::Edge>>> {
    let Some(path) = path else { return Ok(None) };
    let clock = project.clock.clone();
    let counter = match redis {
        Some(pool) => Arc::new(hearth_ratelimit::RateLimitNamespace::on_redis(
            clock.clone(),
            pool.counter(EDGE_NAMESPACE),
            hearth_edge::ratelimit::MAX_KEYS,
        )),
        None => hearth_edge::ratelimit::memory(clock.clone()),
    };
    let edge = hearth_edge::config::load(path)
        .map_err(hearth_edge::EdgeError::from)
        .and_then(|config| {
            hearth_edge::Edge::from_config(
                path,
                config,
                Some(project.data_dir.root()),
                clock,
                counter,
            )
        })
        .with_context(|| format!("--edge {}", path.display()))?;
    Ok(Some(Arc::new(edge)))
}

/// The rate-limit namespace of the edge's rules, apart from every
/// binding's `namespace_id`.
const EDGE_NAMESPACE: &str = "__hearth_edge";

fn store(project: &Project) -> Result<hearth_edge::keys::KeyStore> {
    let path = hearth_edge::keys::store_path(project.data_dir.root());
    Ok(hearth_edge::keys::KeyStore::open(&path)?)
}

pub fn keys(command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Create {
            project,
            tenant,
            scopes,
            description,
        } => {
            let project = Project::load(&project)?;
            let now = project.clock.now_ms();
            let (listed, key) = store(&project)?.create(&tenant, &scopes, &description, now)?;
            print_stdout(&format!(
                "{key}\n\nid {} for tenant {}; scopes: {}. The key is shown only now: it is stored hashed.",
                listed.id,
                listed.tenant,
                if listed.scopes.is_empty() {
                    "(none)".to_string()
                } else {
                    listed.scopes.join(" ")
                }
            ))
        }
        KeysCommand::List { project } => {
            let project = Project::load(&project)?;
            let mut out = String::from("id\ttenant\tscopes\tcreated_ms\trevoked_ms\tdescription");
            for k in store(&project)?.list()? {
                out.push_str(&format!(
                    "\n{}\t{}\t{}\t{}\t{}\t{}",
                    k.id,
                    k.tenant,
                    k.scopes.join(" "),
                    k.created_ms,
                    k.revoked_ms.map_or("-".to_string(), |r| r.to_string()),
                    k.description
                ));
            }
            print_stdout(&out)
        }
        KeysCommand::Revoke { project, id } => {
            let project = Project::load(&project)?;
            store(&project)?.revoke(&id, project.clock.now_ms())?;
            print_stdout(&format!("revoked {id}"))
        }
    }
}

pub fn security(command: SecurityCommand) -> Result<()> {
    match command {
        SecurityCommand::Events {
            project,
            limit,
            rule,
            ip,
        } => {
            let project = Project::load(&project)?;
            let events = hearth_edge::events::read_events(project.data_dir.root())
                .context("reading the security events")?;
            let picked: Vec<_> = events
                .into_iter()
                .filter(|e| rule.as_deref().is_none_or(|r| e.rule == r))
                .filter(|e| ip.as_deref().is_none_or(|i| e.client_ip == i))
                .collect();
            let start = picked.len().saturating_sub(limit);
            let lines: Vec<String> = picked[start..]
                .iter()
                .filter_map(|e| serde_json::to_string(e).ok())
                .collect();
            if lines.is_empty() {
                return print_stdout("no security events");
            }
            print_stdout(&lines.join("\n"))
        }
    }
}
