//! `hearth workflows ...`: the Workflows of a project and their instances,
//! read from (and paused, resumed, terminated in) the same
//! `<data>/workflows.sqlite` that `hearth serve` runs them from. A running
//! server notices a change at its next look (within a second).
//!
//! Output is JSON. Params, step outputs and event payloads are stored in the
//! runtime's structured-clone encoding; they are shown as plain JSON (Dates
//! as ISO strings, Maps as arrays of pairs, bytes as base64).

use anyhow::{Result, bail};
use base64::Engine;
use hearth_config::WorkflowBinding;
use hearth_workflows::{
    AttemptRecord, ErrorInfo, InstanceStatusKind, ListOptions, ReceivedEvent, StepRecord,
    WorkflowEngine,
};
use serde_json::{Map, Value, json};

use crate::cli::{ProjectArgs, WorkflowInstancesCommand, WorkflowsCommand};
use crate::project::Project;

pub fn run(command: WorkflowsCommand) -> Result<()> {
    match command {
        WorkflowsCommand::List { project } => list_workflows(&project),
        WorkflowsCommand::Instances { command } => instances(command),
        WorkflowsCommand::Terminate(a) => change(&a.project, &a.workflow, &a.id, Change::Terminate),
        WorkflowsCommand::Pause(a) => change(&a.project, &a.workflow, &a.id, Change::Pause),
        WorkflowsCommand::Resume(a) => change(&a.project, &a.workflow, &a.id, Change::Resume),
    }
}

fn instances(command: WorkflowInstancesCommand) -> Result<()> {
    match command {
        WorkflowInstancesCommand::List {
            project,
            workflow,
            status,
            limit,
            cursor,
        } => list_instances(&project, &workflow, status.as_deref(), limit, cursor),
        WorkflowInstancesCommand::Describe(a) => describe(&a.project, &a.workflow, &a.id),
        WorkflowInstancesCommand::Terminate(a) => {
            change(&a.project, &a.workflow, &a.id, Change::Terminate)
        }
        WorkflowInstancesCommand::Pause(a) => change(&a.project, &a.workflow, &a.id, Change::Pause),
        WorkflowInstancesCommand::Resume(a) => {
            change(&a.project, &a.workflow, &a.id, Change::Resume)
        }
    }
}

fn open(args: &ProjectArgs) -> Result<(Project, WorkflowEngine)> {
    let project = Project::load(args)?;
    let engine = super::events::open_workflows(&project)?;
    Ok((project, engine))
}

/// The configured workflow named `name` (its `name` or its binding).
fn workflow<'a>(project: &'a Project, name: &str) -> Result<&'a WorkflowBinding> {
    let config = &project.config;
    match config.workflow(name) {
        Some(w) => Ok(w),
        None => bail!(
            "No workflow \"{name}\" in the configured \"workflows\" of {}; configured: {}",
            config.path.display(),
            if config.workflows.is_empty() {
                "none".to_string()
            } else {
                config
                    .workflows
                    .iter()
                    .map(|w| format!("{} (binding {})", w.name, w.binding))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    }
}

fn print(v: &Value) -> Result<()> {
    super::print_stdout(&serde_json::to_string_pretty(v)?)
}

fn list_workflows(args: &ProjectArgs) -> Result<()> {
    let (project, engine) = open(args)?;
    let mut out = Vec::new();
    for w in &project.config.workflows {
        let mut counts = Map::new();
        for kind in InstanceStatusKind::ALL {
            let mut n = 0usize;
            let mut cursor = None;
            loop {
                let page = engine.list(
                    &w.name,
                    &ListOptions {
                        status: Some(kind),
                        limit: Some(1000),
                        cursor,
                    },
                )?;
                n += page.instances.len();
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            if n > 0 {
                counts.insert(kind.as_str().to_string(), json!(n));
            }
        }
        out.push(json!({
            "name": w.name,
            "binding": w.binding,
            "class_name": w.class_name,
            "instances": counts,
        }));
    }
    print(&Value::Array(out))
}

fn list_instances(
    args: &ProjectArgs,
    name: &str,
    status: Option<&str>,
    limit: Option<usize>,
    cursor: Option<String>,
) -> Result<()> {
    let (project, engine) = open(args)?;
    let w = workflow(&project, name)?;
    let status = match status {
        None => None,
        Some(s) => match InstanceStatusKind::parse(s) {
            InstanceStatusKind::Unknown if s != "unknown" => bail!(
                "--status {s:?} is not a status; use one of {}",
                InstanceStatusKind::ALL.map(|k| k.as_str()).join(", ")
            ),
            k => Some(k),
        },
    };
    let page = engine.list(
        &w.name,
        &ListOptions {
            status,
            limit,
            cursor,
        },
    )?;
    let instances: Vec<Value> = page
        .instances
        .iter()
        .map(|i| {
            json!({
                "id": i.id,
                "status": i.status.as_str(),
                "created": iso(i.created_ms),
                "started": i.started_ms.map(iso),
                "ended": i.ended_ms.map(iso),
            })
        })
        .collect();
    print(&json!({"workflow": w.name, "instances": instances, "cursor": page.cursor}))
}

fn describe(args: &ProjectArgs, name: &str, id: &str) -> Result<()> {
    let (project, engine) = open(args)?;
    let w = workflow(&project, name)?;
    let d = engine.describe(&w.name, id)?;
    let steps: Vec<Value> = d.steps.iter().map(step_json).collect();
    let events: Vec<Value> = d.pending_events.iter().map(event_json).collect();
    print(&json!({
        "workflow": d.workflow,
        "id": d.id,
        "status": d.status.status.as_str(),
        "output": d.status.output.as_deref().map(decoded),
        "error": d.status.error.as_ref().map(error_json),
        "params": decoded(&d.params),
        "created": iso(d.created_ms),
        "started": d.started_ms.map(iso),
        "ended": d.ended_ms.map(iso),
        "wake_at": d.wake_at_ms.map(iso),
        "steps": steps,
        "pending_events": events,
    }))
}

enum Change {
    Terminate,
    Pause,
    Resume,
}

fn change(args: &ProjectArgs, name: &str, id: &str, what: Change) -> Result<()> {
    let (project, engine) = open(args)?;
    let w = workflow(&project, name)?;
    let verb = match what {
        Change::Terminate => {
            engine.terminate(&w.name, id)?;
            "terminated"
        }
        Change::Pause => {
            engine.pause(&w.name, id)?;
            "paused"
        }
        Change::Resume => {
            engine.resume(&w.name, id)?;
            "resumed"
        }
    };
    let status = engine.status(&w.name, id)?;
    print(&json!({"id": id, "action": verb, "status": status.status.as_str()}))
}

fn error_json(e: &ErrorInfo) -> Value {
    json!({"name": e.name, "message": e.message})
}

fn attempt_json(a: &AttemptRecord) -> Value {
    json!({
        "attempt": a.attempt,
        "start": iso(a.started_ms),
        "end": a.ended_ms.map(iso),
        "duration_ms": a.ended_ms.map(|e| e.saturating_sub(a.started_ms)),
        "success": a.success,
        "error": a.error.as_ref().map(error_json),
    })
}

fn step_json(s: &StepRecord) -> Value {
    let mut v = json!({
        "type": s.kind.as_str(),
        "name": s.name,
        "occurrence": s.occurrence,
        "state": s.state.as_str(),
        "start": iso(s.started_ms),
        "end": s.ended_ms.map(iso),
        "wake_at": s.wake_at_ms.map(iso),
        "output": s.output.as_deref().map(decoded),
        "error": s.error.as_ref().map(error_json),
    });
    if let Some(c) = &s.config {
        v["config"] = json!({
            "retries": {
                "limit": c.retries.limit,
                "delay_ms": c.retries.delay_ms,
                "backoff": c.retries.backoff.as_str(),
            },
            "timeout_ms": c.timeout_ms,
        });
        v["attempts"] = Value::Array(s.attempts.iter().map(attempt_json).collect());
    }
    if let Some(t) = &s.event_type {
        v["event_type"] = json!(t);
    }
    v
}

fn event_json(e: &ReceivedEvent) -> Value {
    json!({"type": e.event_type, "payload": decoded(&e.payload), "timestamp": iso(e.timestamp_ms)})
}

/// A stored structured-clone value as plain JSON; `null` for none.
fn decoded(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    let date = |ms: f64| (ms >= 0.0 && ms.is_finite()).then(|| json!(iso(ms as u64)));
    hearth_runtime::structured_clone::to_plain_json(bytes, &date).unwrap_or_else(
        || json!({"bytes": base64::engine::general_purpose::STANDARD.encode(bytes)}),
    )
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for ms since the epoch.
fn iso(ms: u64) -> String {
    hearth_core::calendar::UtcDateTime::from_unix_ms(ms as i64).iso()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn structured_values_read_as_plain_json() {
        let stored = json!({"$": "o", "e": [
            ["n", 1], ["d", {"$": "d", "v": 0}], ["u", {"$": "u"}],
            ["a", {"$": "a", "l": 2, "e": [["0", "x"], ["1", {"$": "n", "v": "NaN"}]]}]
        ]});
        assert_eq!(
            decoded(stored.to_string().as_bytes()),
            json!({"n": 1, "d": "1970-01-01T00:00:00.000Z", "u": null, "a": ["x", "NaN"]})
        );
        assert_eq!(decoded(b""), Value::Null);
    }
}
