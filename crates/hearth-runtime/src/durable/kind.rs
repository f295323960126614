//! How `durable_objects` is served: the objects' state under `do/`, the
//! config's migrations applied at start, a namespace binding per entry, and
//! bindings to classes another served worker exports (`script_name`).

use std::sync::Arc;

use hearth_config::{Config, DurableObjectBinding};
use hearth_do::{DoLimits, DurableObjectHost, StorageBackend};

use super::{DurableObjectOptions, DurableObjects};
use crate::bindings::registry::{
    BindingError, BindingKind, OpenContext, OpenedWorker, ServedConfig,
};

pub struct DurableObjectKind;

/// The other worker a binding names, if any (`script_name` equal to the
/// worker's own name means this worker).
fn remote_script<'a>(config: &Config, b: &'a DurableObjectBinding) -> Option<&'a str> {
    b.script_name
        .as_deref()
        .filter(|script| *script != config.name)
}

fn at(config: &Config, b: &DurableObjectBinding, e: impl std::fmt::Display) -> BindingError {
    BindingError::new(format!(
        "{}: durable_objects.bindings: {}: {e}",
        config.path.display(),
        b.name
    ))
}

impl BindingKind for DurableObjectKind {
    fn section(&self) -> &'static str {
        "durable_objects"
    }

    fn data_paths(&self) -> &'static [&'static str] {
        &["do/<class key>/<object id>.sqlite", "do/secret"]
    }

    /// A `script_name` must name a served worker that declares the class.
    fn check(&self, served: &[ServedConfig<'_>]) -> Result<(), BindingError> {
        let names: Vec<&str> = served.iter().map(|s| s.config.name.as_str()).collect();
        for s in served {
            let config = s.config;
            for b in &config.durable_objects.bindings {
                let Some(script) = remote_script(config, b) else {
                    continue;
                };
                let Some(target) = served.iter().find(|t| t.config.name == script) else {
                    return Err(at(
                        config,
                        b,
                        format!(
                            "script_name = {script:?} names another worker, but no worker of that name is served by this process (serving: {}); add its config to the command line, e.g. hearth serve {} path/to/{script}/wrangler.toml",
                            names.join(", "),
                            config.path.display(),
                        ),
                    ));
                };
                if !target
                    .config
                    .durable_object_classes()
                    .contains_key(&b.class_name)
                {
                    return Err(at(
                        config,
                        b,
                        format!(
                            "class_name = {:?} is not a Durable Object class of the worker {script:?} ({}); add it to a migration's new_sqlite_classes there",
                            b.class_name,
                            target.config.path.display(),
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Opens the state, applies the migrations (renamed classes keep their
    /// objects, deleted ones lose them) and binds this worker's classes.
    fn open(&self, cx: &mut OpenContext<'_>, out: &mut OpenedWorker) -> Result<(), BindingError> {
        let config = cx.config;
        if config.durable_objects.bindings.is_empty() && config.migrations.is_empty() {
            return Ok(());
        }
        // Cluster mode: each node keeps the object files in its own data
        // directory as a cache; commits are shipped to PostgreSQL under the
        // lease placement granted, and ids use the cluster's secret.
        let host = match &cx.settings.cluster {
            Some(node) => DurableObjectHost::open_with_secret(
                cx.data_dir,
                cx.clock.clone(),
                DoLimits::default(),
                node.do_secret(),
            )
            .map(|h| h.with_fences(node.fences()).with_change_log(node.do_log())),
            None => DurableObjectHost::open(cx.data_dir, cx.clock.clone(), DoLimits::default()),
        }
        .map_err(|e| BindingError::new(format!("opening the Durable Object state: {e}")))?;
        let applied = host.apply_migrations(&config.migrations).map_err(|e| {
            BindingError::new(format!("{}: migrations: {e}", config.path.display()))
        })?;
        if !applied.is_empty() {
            tracing::info!("applied Durable Object migrations: {}", applied.join(", "));
        }
        let classes = config
            .durable_object_classes()
            .into_iter()
            .map(|(name, storage)| (name, StorageBackend::from(storage)));
        let objects = DurableObjects::new(
            &host,
            classes,
            cx.clock.clone(),
            DurableObjectOptions::default(),
        )
        .map_err(|e| BindingError::new(format!("opening the Durable Object namespaces: {e}")))?;
        if let Some(node) = &cx.settings.cluster {
            objects.join_cluster(node.clone(), &config.name);
        }
        for b in &config.durable_objects.bindings {
            if remote_script(config, b).is_some() {
                // Added by `link`, once the hosting worker's objects are open.
                continue;
            }
            let adapter = objects
                .adapter(&b.name, &b.class_name)
                .map_err(|e| at(config, b, e))?;
            out.worker.bindings.push(Arc::new(adapter));
        }
        out.worker.durable_objects = Some(objects);
        Ok(())
    }

    /// Binds classes of other workers: ids come from the hosting worker's
    /// namespace and stubs are routed to its isolates.
    fn link(
        &self,
        served: &[ServedConfig<'_>],
        workers: &mut [OpenedWorker],
    ) -> Result<(), BindingError> {
        let hosts: Vec<(&str, Option<Arc<DurableObjects>>)> = served
            .iter()
            .zip(workers.iter())
            .map(|(s, w)| (s.config.name.as_str(), w.worker.durable_objects.clone()))
            .collect();
        for (s, w) in served.iter().zip(workers.iter_mut()) {
            for b in &s.config.durable_objects.bindings {
                let Some(script) = remote_script(s.config, b) else {
                    continue;
                };
                let target = hosts
                    .iter()
                    .find(|(name, _)| *name == script)
                    .and_then(|(_, objects)| objects.clone())
                    .ok_or_else(|| {
                        at(
                            s.config,
                            b,
                            format!("the worker {script:?} has no Durable Object classes"),
                        )
                    })?;
                let adapter = target
                    .adapter_for_script(&b.name, &b.class_name, script)
                    .map_err(|e| at(s.config, b, e))?;
                let own = w
                    .worker
                    .durable_objects
                    .as_ref()
                    .ok_or_else(|| at(s.config, b, "Durable Objects are not open"))?;
                own.link(script, target);
                w.worker.bindings.push(Arc::new(adapter));
            }
        }
        Ok(())
    }
}
