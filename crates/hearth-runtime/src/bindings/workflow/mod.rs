//! `env.<Workflow binding>`: `create`, `createBatch` and `get` over one
//! workflow of the [`hearth_workflows::WorkflowEngine`], and the
//! `WorkflowInstance` objects they return (`workflow.js`).
//!
//! Every call commits before its promise resolves. Calls that can make an
//! instance due (`create`, `createBatch`, `resume`, `restart`, `sendEvent`)
//! wake the runner so it claims the run at once.

use std::sync::Arc;

use hearth_core::ErrorClass;
use hearth_workflows::{CreateOptions, WorkflowEngine, WorkflowError};
use rquickjs::{ArrayBuffer, Ctx, Function, Object, Value};

use super::BindingAdapter;
use super::support::{bytes_of, install_factory, raise, throw};
mod kind;
pub mod runner;

pub use kind::{WorkflowKind, open_engine};

use runner::Workflows;

const WORKFLOW_JS: &str = include_str!("workflow.js");

/// Exposes one workflow as `env[name]`.
pub struct WorkflowAdapter {
    name: String,
    workflow: String,
    workflows: Arc<Workflows>,
}

impl WorkflowAdapter {
    pub(crate) fn new(binding: &str, workflow: &str, workflows: Arc<Workflows>) -> Self {
        Self {
            name: binding.to_string(),
            workflow: workflow.to_string(),
            workflows,
        }
    }
}

impl std::fmt::Debug for WorkflowAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowAdapter")
            .field("name", &self.name)
            .field("workflow", &self.workflow)
            .finish()
    }
}

/// Installs `f(engine, workflow, id)` as `native[js]`, waking the runner
/// after it succeeds when `wakes`.
fn instance_call<'js>(
    ctx: &Ctx<'js>,
    native: &Object<'js>,
    js: &str,
    adapter: &WorkflowAdapter,
    wakes: bool,
    f: fn(&WorkflowEngine, &str, &str) -> hearth_workflows::Result<()>,
) -> rquickjs::Result<()> {
    let wf = adapter.workflows.clone();
    let workflow = adapter.workflow.clone();
    native.set(
        js,
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, id: String| -> rquickjs::Result<()> {
                f(wf.engine(), &workflow, &id).map_err(|e| raise(&ctx, &e))?;
                if wakes {
                    wf.wake();
                }
                Ok(())
            },
        )?,
    )
}

fn params_of(v: &Value<'_>) -> rquickjs::Result<Vec<u8>> {
    Ok(bytes_of(v)?.unwrap_or_default())
}

impl BindingAdapter for WorkflowAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "workflow"
    }

    fn backend(&self) -> String {
        self.workflows.engine().describe_store()
    }

    fn install<'js>(&self, ctx: &Ctx<'js>, env: &Object<'js>) -> rquickjs::Result<()> {
        let native = Object::new(ctx.clone())?;
        native.set("codec", crate::events::structured_codec(ctx)?)?;

        // create(id | undefined, paramsBytes) -> id
        let wf = self.workflows.clone();
        let workflow = self.workflow.clone();
        native.set(
            "create",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>,
                      id: Option<String>,
                      params: Value<'js>|
                      -> rquickjs::Result<String> {
                    let options = CreateOptions {
                        id,
                        params: params_of(&params)?,
                    };
                    let id = wf
                        .engine()
                        .create(&workflow, options)
                        .map_err(|e| raise(&ctx, &e))?;
                    wf.wake();
                    Ok(id)
                },
            )?,
        )?;

        // createBatch(ids, paramsBytes) -> ids created
        let wf = self.workflows.clone();
        let workflow = self.workflow.clone();
        native.set(
            "createBatch",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>,
                      ids: Vec<Option<String>>,
                      params: Vec<Value<'js>>|
                      -> rquickjs::Result<Vec<String>> {
                    let mut batch = Vec::with_capacity(ids.len());
                    for (id, p) in ids.into_iter().zip(params.iter()) {
                        batch.push(CreateOptions {
                            id,
                            params: params_of(p)?,
                        });
                    }
                    let created = wf
                        .engine()
                        .create_batch(&workflow, batch)
                        .map_err(|e| raise(&ctx, &e))?;
                    wf.wake();
                    Ok(created)
                },
            )?,
        )?;

        // get(id): throws when there is no such instance.
        let wf = self.workflows.clone();
        let workflow = self.workflow.clone();
        native.set(
            "get",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>, id: String| -> rquickjs::Result<String> {
                    match wf.engine().get(&workflow, &id) {
                        Ok(s) => Ok(s.id),
                        Err(WorkflowError::InstanceNotFound { .. }) => Err(throw(
                            &ctx,
                            ErrorClass::Error,
                            hearth_workflows::GET_NOT_FOUND_MESSAGE,
                        )),
                        Err(e) => Err(raise(&ctx, &e)),
                    }
                },
            )?,
        )?;

        // status(id) -> {status, output?: bytes, error?: {name, message}}
        let wf = self.workflows.clone();
        let workflow = self.workflow.clone();
        native.set(
            "status",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>, id: String| -> rquickjs::Result<Object<'js>> {
                    let s = wf
                        .engine()
                        .status(&workflow, &id)
                        .map_err(|e| raise(&ctx, &e))?;
                    let o = Object::new(ctx.clone())?;
                    o.set("status", s.status.as_str())?;
                    if let Some(out) = s.output {
                        o.set("output", ArrayBuffer::new(ctx.clone(), out)?)?;
                    }
                    if let Some(e) = s.error {
                        let err = Object::new(ctx.clone())?;
                        err.set("name", e.name)?;
                        err.set("message", e.message)?;
                        o.set("error", err)?;
                    }
                    Ok(o)
                },
            )?,
        )?;

        instance_call(ctx, &native, "pause", self, false, |e, w, id| {
            e.pause(w, id)
        })?;
        instance_call(ctx, &native, "resume", self, true, |e, w, id| {
            e.resume(w, id)
        })?;
        instance_call(ctx, &native, "terminate", self, false, |e, w, id| {
            e.terminate(w, id)
        })?;
        instance_call(ctx, &native, "restart", self, true, |e, w, id| {
            e.restart(w, id)
        })?;

        // sendEvent(id, type, payloadBytes)
        let wf = self.workflows.clone();
        let workflow = self.workflow.clone();
        native.set(
            "sendEvent",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>,
                      id: String,
                      event_type: String,
                      payload: Value<'js>|
                      -> rquickjs::Result<()> {
                    let payload = params_of(&payload)?;
                    wf.engine()
                        .send_event(&workflow, &id, &event_type, &payload)
                        .map_err(|e: WorkflowError| raise(&ctx, &e))?;
                    wf.wake();
                    Ok(())
                },
            )?,
        )?;

        install_factory(ctx, env, &self.name, "workflow.js", WORKFLOW_JS, native)
    }
}
