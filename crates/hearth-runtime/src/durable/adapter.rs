//! `env.<Durable Object binding>`: a `DurableObjectNamespace` whose ids come
//! from the [`hearth_do`] contract and whose stubs call into the isolate
//! that hosts each object.

use std::sync::Arc;

use hearth_do::DurableObjectNamespace;
use rquickjs::{Ctx, Exception, Function, Object, Value};

use super::DurableObjects;
use crate::bindings::BindingAdapter;

/// Exposes one Durable Object class as `env[name]`.
pub struct DurableObjectAdapter {
    name: String,
    class: String,
    objects: Arc<DurableObjects>,
    /// The worker hosting the class, when it is not the bound worker.
    script: Option<String>,
}

impl std::fmt::Debug for DurableObjectAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableObjectAdapter")
            .field("name", &self.name)
            .field("class", &self.class)
            .finish()
    }
}

impl DurableObjectAdapter {
    pub(crate) fn new(name: String, class: String, objects: Arc<DurableObjects>) -> Self {
        Self {
            name,
            class,
            objects,
            script: None,
        }
    }

    pub(crate) fn with_script(mut self, script: &str) -> Self {
        self.script = Some(script.to_owned());
        self
    }

    /// The worker that hosts the class (`script_name`); `None`: this one.
    pub fn script_name(&self) -> Option<&str> {
        self.script.as_deref()
    }

    pub fn class_name(&self) -> &str {
        &self.class
    }

    fn namespace(&self) -> Option<DurableObjectNamespace> {
        self.objects.namespace(&self.class).cloned()
    }
}

pub(crate) use crate::bindings::support::raise;

impl BindingAdapter for DurableObjectAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "durable_object_namespace"
    }

    fn backend(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("sqlite:do/{} ({})", ns.key(), ns.backend().as_str()),
            None => "sqlite:do".into(),
        }
    }

    fn install<'js>(&self, ctx: &Ctx<'js>, env: &Object<'js>) -> rquickjs::Result<()> {
        let Some(ns) = self.namespace() else {
            return Err(Exception::throw_message(
                ctx,
                &format!("Durable Object class {} is not configured", self.class),
            ));
        };
        let native = Object::new(ctx.clone())?;

        let n = ns.clone();
        native.set(
            "idFromName",
            Function::new(ctx.clone(), move |name: String| {
                n.id_from_name(&name).to_string()
            })?,
        )?;
        let n = ns.clone();
        native.set(
            "newUniqueId",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>| -> rquickjs::Result<String> {
                    n.new_unique_id()
                        .map(|id| id.to_string())
                        .map_err(|e| raise(&ctx, &e))
                },
            )?,
        )?;
        let n = ns.clone();
        native.set(
            "idFromString",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>, s: String| -> rquickjs::Result<String> {
                    n.id_from_string(&s)
                        .map(|id| id.to_string())
                        .map_err(|e| raise(&ctx, &e))
                },
            )?,
        )?;
        let n = ns;
        native.set(
            "check",
            Function::new(
                ctx.clone(),
                move |ctx: Ctx<'js>, s: String| -> rquickjs::Result<()> {
                    n.id_from_string(&s)
                        .map(|_| ())
                        .map_err(|e| raise(&ctx, &e))
                },
            )?,
        )?;

        if let Some(script) = &self.script {
            native.set("script", script.as_str())?;
        }

        let api: Object = ctx.eval("globalThis[Symbol.for('hearth.durable')]")?;
        let make: Function = api.get("makeNamespace")?;
        let binding: Value = make.call((native, self.class.as_str()))?;
        env.set(self.name.as_str(), binding)
    }
}
