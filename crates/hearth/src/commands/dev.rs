//! `hearth dev`: `serve` plus a watcher per worker that reloads that worker
//! (and only it) when a file it loaded changes.
//!
//! The watcher polls modification times and sizes every
//! [`WATCH_PERIOD`] rather than using OS notifications: it needs no extra
//! dependency, behaves the same on every platform and on network mounts,
//! and a human edit is never faster than that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hearth_http::Reloader;

use super::events::WorkerEvents;
use crate::project::Project;

/// How often the watcher looks at the loaded files.
pub const WATCH_PERIOD: Duration = Duration::from_millis(500);

/// Stops the watcher thread when dropped.
pub struct Watcher {
    stop: Arc<AtomicBool>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Starts polling the worker's loaded files (and the config, whose changes
/// need a restart) from a thread; a change reloads the worker through
/// `reloader` on the current tokio runtime, then restarts its `events` on
/// the new isolates. With `build`, a change under `[build].watch_dir`
/// first re-runs `[build].command`; a failed build keeps the worker as it
/// was.
pub fn watch(
    reloader: Reloader,
    project: &Project,
    events: Arc<WorkerEvents>,
    build: bool,
) -> Watcher {
    let build = if build {
        super::build::Build::of(project)
    } else {
        None
    };
    let stop = Arc::new(AtomicBool::new(false));
    let config_path = project.config.path.clone();
    let name = project.config.name.clone();
    let handle = tokio::runtime::Handle::current();
    let stopped = stop.clone();
    // Stamp what the worker loaded and the build's inputs before the
    // thread starts, so an edit made as soon as the server answers is
    // seen as a change however late the thread is scheduled.
    let mut seen: BTreeMap<PathBuf, Stamp> = reloader
        .loaded_files()
        .into_iter()
        .map(|p| {
            let s = stamp(&p);
            (p, s)
        })
        .collect();
    let mut config_stamp = stamp(&config_path);
    let mut build_inputs = build.as_ref().map(|b| b.snapshot()).unwrap_or_default();
    if build_inputs.len() >= super::build::MAX_WATCHED_BUILD_FILES {
        tracing::warn!(
            "more than {} files under [build].watch_dir; changes to the rest do not re-run the build",
            super::build::MAX_WATCHED_BUILD_FILES
        );
    }
    let spawned = std::thread::Builder::new()
        .name(format!("hearth-dev-watch-{name}"))
        .spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(WATCH_PERIOD);
                if let Some(build) = &build {
                    let now = build.snapshot();
                    if now != build_inputs {
                        tracing::info!("changed under {}; rebuilding {name}", build.watched());
                        let built = build.run();
                        // What the build itself wrote there is not a new change.
                        build_inputs = build.snapshot();
                        if let Err(e) = built {
                            tracing::error!(
                                "{e:#}\nthe worker {name} keeps running its last build until the next change"
                            );
                            for path in reloader.loaded_files() {
                                seen.insert(path.clone(), stamp(&path));
                            }
                            continue;
                        }
                    }
                }
                let now = stamp(&config_path);
                if now != config_stamp {
                    config_stamp = now;
                    tracing::warn!(
                        "{} changed; restart `hearth dev` to apply config changes (bindings, vars, routes)",
                        config_path.display()
                    );
                }
                let mut changed = Vec::new();
                for path in reloader.loaded_files() {
                    let now = stamp(&path);
                    match seen.insert(path.clone(), now) {
                        Some(before) if before != now => changed.push(path),
                        _ => {}
                    }
                }
                if changed.is_empty() {
                    continue;
                }
                let names: Vec<String> =
                    changed.iter().map(|p| p.display().to_string()).collect();
                tracing::info!("changed: {}; reloading the worker {name}", names.join(", "));
                let started = Instant::now();
                match handle.block_on(reloader.reload()) {
                    Ok(()) => {
                        tracing::info!(
                            "reloaded the worker {name} in {} ms",
                            started.elapsed().as_millis()
                        );
                        let pool = reloader.current_pool();
                        if let Err(e) = handle.block_on(events.start(&pool)) {
                            tracing::error!(
                                "cannot restart the queue consumer, cron and Workflows of {name}: {e:#}"
                            );
                        }
                    }
                    Err(e) => tracing::error!(
                        "the worker {name} failed to load; serving the error until the next change: {e}"
                    ),
                }
                // Files the new isolates read may differ; take fresh stamps.
                for path in reloader.loaded_files() {
                    seen.insert(path.clone(), stamp(&path));
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the file watcher: {e}");
    }
    Watcher { stop }
}
