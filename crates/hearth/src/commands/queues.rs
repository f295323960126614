//! `hearth queues list | send | inspect`, on the same `queues.sqlite` that
//! `hearth serve` uses (a running server picks sends up within a second).

use anyhow::{Context, Result, bail};
use hearth_queues::{QueueBroker, QueueContentType, QueueSendOptions};
use serde_json::Value;

use crate::cli::QueuesCommand;
use crate::commands::events::open_broker;
use crate::commands::print_stdout;
use crate::project::Project;

pub fn run(command: QueuesCommand) -> Result<()> {
    match command {
        QueuesCommand::List { project } => {
            let project = Project::load(&project)?;
            let broker = open_broker(&project)?;
            let mut out = String::from("queue\tdepth\tin_flight\tconsumer");
            for queue in broker.list_queues()? {
                let stats = broker.stats(&queue)?;
                let consumer = match broker.consumer(&queue) {
                    Some(c) if c.consumer_type == hearth_queues::ConsumerType::Worker => "worker",
                    Some(_) => "http_pull",
                    None => "-",
                };
                out.push_str(&format!(
                    "\n{queue}\t{}\t{}\t{consumer}",
                    stats.depth, stats.in_flight
                ));
            }
            print_stdout(&out)
        }
        QueuesCommand::Send {
            project,
            queue,
            body,
            content_type,
            delay_seconds,
        } => {
            let project = Project::load(&project)?;
            check_declared(&project, &queue)?;
            let broker = open_broker(&project)?;
            let content_type = QueueContentType::parse(&content_type)?;
            let bytes = encode(&body, content_type)?;
            let id = broker.send(
                &queue,
                bytes,
                &QueueSendOptions {
                    content_type,
                    delay_seconds,
                },
            )?;
            print_stdout(&id)
        }
        QueuesCommand::Inspect { project, queue } => {
            let project = Project::load(&project)?;
            let broker = open_broker(&project)?;
            print_stdout(&inspect(&broker, &queue)?)
        }
    }
}

/// The queues the config declares: producers' and consumers' queues and
/// the consumers' dead-letter queues.
fn declared_queues(project: &Project) -> Vec<&str> {
    let queues = &project.config.queues;
    let mut names: Vec<&str> = queues
        .producers
        .iter()
        .map(|p| p.queue.as_str())
        .chain(queues.consumers.iter().map(|c| c.queue.as_str()))
        .chain(
            queues
                .consumers
                .iter()
                .filter_map(|c| c.dead_letter_queue.as_deref()),
        )
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// A send would create the queue in `queues.sqlite`; only a queue some
/// config declares may be created, so a typo is not silently kept.
fn check_declared(project: &Project, queue: &str) -> Result<()> {
    let declared = declared_queues(project);
    if declared.contains(&queue) {
        return Ok(());
    }
    let listed = if declared.is_empty() {
        "(none)".to_string()
    } else {
        declared.join(", ")
    };
    bail!(
        "Queue \"{queue}\" is not declared in {} (queues.producers, queues.consumers or a dead_letter_queue); declared queues: {listed}",
        project.config.path.display()
    )
}

fn inspect(broker: &QueueBroker, queue: &str) -> Result<String> {
    let s = broker.stats(queue)?;
    let age = match s.oldest_age_ms {
        Some(ms) => format!("{:.1}s", ms as f64 / 1000.0),
        None => "-".into(),
    };
    let dlq = match (
        s.dlq_depth,
        broker.consumer(queue).and_then(|c| c.dead_letter_queue),
    ) {
        (Some(n), Some(name)) => format!("{n} ({name})"),
        _ => "-".into(),
    };
    Ok(format!(
        "queue: {queue}\ndepth: {}\nvisible: {}\ndelayed: {}\nin_flight: {}\noldest_age: {age}\ndlq_depth: {dlq}",
        s.depth, s.visible, s.delayed, s.in_flight
    ))
}

/// The body's bytes for its content type. `json` and `v8` take JSON text;
/// `v8` is written in the runtime's structured-clone encoding, so the
/// consumer receives the same value `JSON.parse` would give.
fn encode(body: &str, content_type: QueueContentType) -> Result<Vec<u8>> {
    Ok(match content_type {
        QueueContentType::Text | QueueContentType::Bytes => body.as_bytes().to_vec(),
        QueueContentType::Json => {
            let v: Value = serde_json::from_str(body)
                .with_context(|| "--content-type json needs a JSON body")?;
            v.to_string().into_bytes()
        }
        QueueContentType::V8 => {
            let v: Value = serde_json::from_str(body)
                .with_context(|| "--content-type v8 needs a JSON body")?;
            hearth_runtime::structured_clone::encode_json(&v)?.into_bytes()
        }
    })
}
