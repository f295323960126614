//! `hearth serve`: config → opened bindings → adapters → the HTTP front.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hearth_do::{DoLimits, DurableObjectHost, StorageBackend};
use hearth_http::{ServeOptions, WorkerConfig};
use hearth_kv::PurgerHandle;
use hearth_r2::UploadExpirerHandle;
use hearth_runtime::BindingAdapter;
use hearth_runtime::bindings::{D1Adapter, KvAdapter, R2Adapter};
use hearth_runtime::durable::{DurableObjectOptions, DurableObjects};

use crate::cli::ServeArgs;
use crate::project::Project;

/// How often expired KV keys are deleted from disk (reads hide them at once).
const KV_PURGE_EVERY: Duration = Duration::from_secs(60);
/// How often R2 buckets look for multipart uploads past their age limit
/// (they are also aborted when a bucket opens).
const R2_EXPIRE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Background threads of a worker's bindings, stopped when dropped.
pub struct BindingThreads {
    _kv: Vec<PurgerHandle>,
    _r2: Vec<UploadExpirerHandle>,
}

pub fn run(args: ServeArgs) -> Result<()> {
    run_with(args, false)
}

/// `hearth serve`; with `watch`, `hearth dev`: development error bodies,
/// and the worker reloads when a file it loaded changes.
pub fn run_with(args: ServeArgs, watch: bool) -> Result<()> {
    // Several configs: one worker each, all behind one listener. With
    // --data-dir they share that directory, else each uses its own
    // `.hearth/` beside its config.
    let all_args = project_args(&args)?;
    let build = !args.no_build;
    let projects = Project::load_several(&all_args)?;
    if !args.no_build {
        for p in &projects {
            super::build::run(p)?;
        }
    }
    let services = hearth_runtime::ServiceRegistry::new();
    check_services(&projects)?;
    check_durable_object_scripts(&projects)?;
    super::events::check_owners(&projects)?;
    let listen: SocketAddr = args.listen.parse().with_context(|| {
        format!(
            "--listen {:?} is not an address like 127.0.0.1:8787",
            args.listen
        )
    })?;
    if args
        .internal_token
        .as_deref()
        .is_some_and(|t| t.trim().is_empty())
    {
        bail!(
            "--internal-token (or HEARTH_INTERNAL_TOKEN) is empty; give a secret, or leave it unset"
        );
    }
    let admin_listen: Option<SocketAddr> = match &args.admin_listen {
        None => None,
        Some(a) => Some(a.parse().with_context(|| {
            format!("--admin-listen {a:?} is not an address like 127.0.0.1:8788")
        })?),
    };
    let mut connections = hearth_http::ConnectionLimits {
        max_connections: max_connections(args.max_connections)?,
        ..Default::default()
    };
    connections.max_connections = connections.max_connections.max(1);
    let mut threads = Vec::new();
    let mut workers = Vec::new();
    for p in &projects {
        let (mut w, more) = worker_config(p)?;
        w.services = service_bindings(p, &services);
        threads.push(more);
        workers.push(w);
    }
    let _threads = threads;
    link_durable_object_scripts(&projects, &mut workers)?;
    // Every worker is served alike; the first also takes the requests no
    // worker's routes match.
    let mut stores = super::events::Stores::default();
    let mut sources = Vec::new();
    let mut mounted = Vec::new();
    for (p, mut worker) in projects.iter().zip(workers) {
        let events = super::events::open(p, &mut stores)?;
        worker.bindings.extend(events.adapters());
        worker.workflows = events.workflows();
        let assets = super::dev::open_assets(p, &projects)?;
        let worker = super::dev::with_assets_binding(worker, p, assets.as_ref());
        mounted.push(hearth_http::MountedWorker {
            name: Some(p.config.name.clone()),
            worker,
            routes: p.config.routes.iter().map(|r| r.pattern.clone()).collect(),
            assets,
            crons: p.config.triggers.crons.clone(),
            queues: events.broker(),
        });
        sources.push(Arc::new(super::events::WorkerEvents::new(events)));
    }
    let mut options = ServeOptions::several(mounted);
    options.listen = listen;
    options.data_dir = Some(projects[0].data_dir.root().to_path_buf());
    options.dev = args.dev || watch;
    options.internal_token = args.internal_token;
    options.admin_listen = admin_listen;
    options.connections = connections;
    options.services = services;
    options.geoip = open_geoip(&args.geoip)?;
    options.clock = projects[0].clock.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hearth-http")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let server = hearth_http::Server::bind(options).await?;
        let mut watchers = Vec::new();
        for (p, events) in projects.iter().zip(&sources) {
            let name = &p.config.name;
            let (Some(pool), Some(reloader)) = (server.pool_of(name), server.reloader_of(name))
            else {
                bail!("the worker {name:?} is not among the served workers");
            };
            events.start(pool).await?;
            if watch {
                watchers.push(super::dev::watch(reloader, p, events.clone(), build));
            }
        }
        let names: Vec<&str> = projects.iter().map(|p| p.config.name.as_str()).collect();
        let mut dirs: Vec<String> = Vec::new();
        for p in &projects {
            let dir = p.data_dir.root().display().to_string();
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        tracing::info!(
            "serving {} on http://{} (data in {})",
            names.join(", "),
            server.local_addr(),
            dirs.join(", ")
        );
        if let Some(admin) = server.admin_addr() {
            tracing::info!("internal endpoints on http://{admin}/__hearth/ (admin listener)");
        }
        server
            .run(async move {
                hearth_http::shutdown_signal().await;
                drop(watchers);
                for events in &sources {
                    events.stop().await;
                }
            })
            .await?;
        anyhow::Ok(())
    })?;
    Ok(())
}

/// One `ProjectArgs` per config on the command line (or `--config` when
/// none is given); a positional that is a script is the entry of the single
/// worker served.
fn project_args(args: &ServeArgs) -> Result<Vec<crate::cli::ProjectArgs>> {
    let (scripts, configs): (Vec<&PathBuf>, Vec<&PathBuf>) =
        args.configs.iter().partition(|p| is_script(p));
    if scripts.len() > 1 {
        bail!(
            "{} entry scripts given ({}); give one, the worker's entry module",
            scripts.len(),
            scripts
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let script = scripts.first().map(|p| p.to_path_buf());
    if let Some(script) = &script {
        if configs.len() > 1 {
            bail!(
                "the entry script {} was given with {} configs; it can only replace the `main` of one worker: serve that worker's config with it, and give the others their own `main`",
                script.display(),
                configs.len()
            );
        }
        if !script.is_file() {
            bail!("the entry script {} does not exist", script.display());
        }
    }
    let mut all = Vec::new();
    if configs.is_empty() {
        all.push(args.project.clone());
    }
    for config in configs {
        let mut project_args = args.project.clone();
        project_args.config = config.clone();
        all.push(project_args);
    }
    if let Some(script) = script {
        // Like wrangler, relative to where the command runs.
        let script = std::path::absolute(&script).unwrap_or(script);
        all[0].script = Some(script);
    }
    Ok(all)
}

fn is_script(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| crate::cli::SCRIPT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Descriptors kept for everything but client connections: SQLite files,
/// assets, subrequests, the admin listener.
const RESERVED_FDS: u64 = 256;

/// The connection cap: `--max-connections`, else the default lowered to
/// fit the open-files limit, which is first raised to its hard limit so a
/// flood of connections cannot leave the server without descriptors.
fn max_connections(asked: Option<usize>) -> Result<usize> {
    if asked == Some(0) {
        bail!("--max-connections 0: the server needs at least one connection");
    }
    let soft = raise_open_files_limit();
    if let Some(n) = asked {
        if let Some(soft) = soft
            && n as u64 + RESERVED_FDS > soft
        {
            tracing::warn!(
                "--max-connections {n} is above what the open-files limit ({soft}) leaves for connections; new connections may fail to open before the cap is reached"
            );
        }
        return Ok(n);
    }
    let default = hearth_http::DEFAULT_MAX_CONNECTIONS;
    Ok(match soft {
        Some(soft) if soft < default as u64 + RESERVED_FDS => {
            let n = soft.saturating_sub(RESERVED_FDS).max(64) as usize;
            tracing::info!(
                "max connections {n} (the open-files limit is {soft}; raise it with ulimit -n for more)"
            );
            n
        }
        _ => default,
    })
}

/// Raises RLIMIT_NOFILE's soft limit to its hard limit; the soft limit in
/// force after, if it can be read.
#[cfg(unix)]
fn raise_open_files_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every unix
    Some(lim.rlim_cur as u64)
}

#[cfg(not(unix))]
fn raise_open_files_limit() -> Option<u64> {
    None
}

/// The `--geoip` databases, read once at start.
fn open_geoip(paths: &[std::path::PathBuf]) -> Result<Option<Arc<hearth_http::GeoIp>>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let geo = hearth_http::GeoIp::open(paths).context("--geoip")?;
    Ok(Some(Arc::new(geo)))
}

/// A Durable Object binding whose `script_name` is another worker's name:
/// that worker must be served here and declare the class in its migrations.
fn check_durable_object_scripts(projects: &[Project]) -> Result<()> {
    let names: Vec<&str> = projects.iter().map(|p| p.config.name.as_str()).collect();
    for p in projects {
        for b in &p.config.durable_objects.bindings {
            let Some(script) = remote_script(&p.config, b) else {
                continue;
            };
            let Some(target) = projects.iter().find(|t| t.config.name == script) else {
                bail!(
                    "{}: durable_objects.bindings: {}: script_name = {script:?} names another worker, but no worker of that name is served by this process (serving: {}); add its config to the command line, e.g. hearth serve {} path/to/{script}/wrangler.toml",
                    p.config.path.display(),
                    b.name,
                    names.join(", "),
                    p.config.path.display(),
                );
            };
            if !target
                .config
                .durable_object_classes()
                .contains_key(&b.class_name)
            {
                bail!(
                    "{}: durable_objects.bindings: {}: class_name = {:?} is not a Durable Object class of the worker {script:?} ({}); add it to a migration's new_sqlite_classes there",
                    p.config.path.display(),
                    b.name,
                    b.class_name,
                    target.config.path.display(),
                );
            }
        }
    }
    Ok(())
}

/// The other worker a Durable Object binding names, if any (`script_name`
/// equal to the worker's own name means this worker).
fn remote_script<'a>(
    config: &hearth_config::Config,
    b: &'a hearth_config::DurableObjectBinding,
) -> Option<&'a str> {
    b.script_name
        .as_deref()
        .filter(|script| *script != config.name)
}

/// Adds the `script_name` Durable Object bindings once every worker's
/// objects are open: ids come from the hosting worker's namespace and stubs
/// are routed to its isolates. `workers[i]` is `projects[i]`'s.
fn link_durable_object_scripts(projects: &[Project], workers: &mut [WorkerConfig]) -> Result<()> {
    let hosts: Vec<(&str, Option<Arc<DurableObjects>>)> = projects
        .iter()
        .zip(workers.iter())
        .map(|(p, w)| (p.config.name.as_str(), w.durable_objects.clone()))
        .collect();
    for (p, w) in projects.iter().zip(workers.iter_mut()) {
        for b in &p.config.durable_objects.bindings {
            let Some(script) = remote_script(&p.config, b) else {
                continue;
            };
            let context = || {
                format!(
                    "{}: durable_objects.bindings: {}",
                    p.config.path.display(),
                    b.name
                )
            };
            let target = hosts
                .iter()
                .find(|(name, _)| *name == script)
                .and_then(|(_, objects)| objects.clone())
                .with_context(|| {
                    format!(
                        "{}: the worker {script:?} has no Durable Object classes",
                        context()
                    )
                })?;
            let adapter = target
                .adapter_for_script(&b.name, &b.class_name, script)
                .map_err(|e| anyhow::anyhow!("{}: {e}", context()))?;
            let own = w
                .durable_objects
                .as_ref()
                .with_context(|| format!("{}: Durable Objects are not open", context()))?;
            own.link(script, target);
            w.bindings.push(Arc::new(adapter));
        }
    }
    Ok(())
}

/// Every `services` binding must name a worker served by this process.
fn check_services(projects: &[Project]) -> Result<()> {
    let names: Vec<&str> = projects.iter().map(|p| p.config.name.as_str()).collect();
    for p in projects {
        for s in &p.config.services {
            if !names.contains(&s.service.as_str()) {
                bail!(
                    "{}: services: {}: service = {:?} is not a worker served by this process (serving: {}); add its config to the command line, e.g. hearth serve {} path/to/{}/wrangler.toml",
                    p.config.path.display(),
                    s.binding,
                    s.service,
                    names.join(", "),
                    p.config.path.display(),
                    s.service
                );
            }
        }
    }
    Ok(())
}

fn service_bindings(
    project: &Project,
    registry: &hearth_runtime::ServiceRegistry,
) -> Vec<hearth_runtime::ServiceBinding> {
    project
        .config
        .services
        .iter()
        .map(|s| hearth_runtime::ServiceBinding {
            binding: s.binding.clone(),
            service: s.service.clone(),
            entrypoint: s.entrypoint.clone(),
            registry: registry.clone(),
        })
        .collect()
}

/// Maps the config onto the runtime's worker description, opening the
/// storage of every binding. The purger handles stop their threads on drop,
/// so the caller keeps them for as long as it serves.
pub fn worker_config(project: &Project) -> Result<(WorkerConfig, BindingThreads)> {
    let config = &project.config;
    let Some(main) = config.main_path() else {
        bail!(
            "{}: main: missing; name the worker's entry module, e.g. main = \"src/index.js\", or give it on the command line: hearth serve {} src/index.js",
            config.path.display(),
            config.path.display()
        );
    };
    if !main.is_file() {
        bail!(
            "{}: main: the file {} does not exist",
            config.path.display(),
            main.display()
        );
    }
    let mut worker = WorkerConfig::new(main);
    worker.module_root = Some(config.module_root());
    worker.vars = config.vars.clone();
    worker.secrets = config.secrets.clone();
    worker.compatibility_date = config.compatibility_date.clone();
    worker.compatibility_flags = config.compatibility_flags.clone();
    if let Some(cpu_ms) = config.limits.cpu_ms {
        worker.limits.cpu_ms = cpu_ms;
    }

    let mut purgers = Vec::new();
    let mut expirers = Vec::new();
    let mut bindings: Vec<Arc<dyn BindingAdapter>> = Vec::new();
    for ns in &config.kv_namespaces {
        let kv = Arc::new(project.open_kv(ns)?);
        purgers.push(kv.spawn_purger(KV_PURGE_EVERY)?);
        let path = project.data_dir.kv_namespace(ns.local_id());
        bindings.push(Arc::new(
            KvAdapter::new(&ns.binding, kv).with_backend(format!("sqlite:{}", path.display())),
        ));
    }
    for db in &config.d1_databases {
        let d1 = Arc::new(project.d1_database(db)?);
        bindings.push(Arc::new(D1Adapter::new(&db.binding, d1)));
    }
    for bucket in &config.r2_buckets {
        let r2 = project.r2_bucket(bucket.local_name())?;
        expirers.push(r2.spawn_upload_expirer(R2_EXPIRE_EVERY)?);
        let dir = project.data_dir.r2_bucket(bucket.local_name());
        bindings.push(Arc::new(
            R2Adapter::new(&bucket.binding, r2)
                .with_backend(format!("fs+sqlite:{}", dir.display())),
        ));
    }
    if let Some(objects) = durable_objects(project)? {
        for b in &config.durable_objects.bindings {
            if remote_script(config, b).is_some() {
                // Added once the hosting worker runs its own objects.
                continue;
            }
            let adapter = objects.adapter(&b.name, &b.class_name).map_err(|e| {
                anyhow::anyhow!(
                    "{}: durable_objects.bindings: {}: {e}",
                    config.path.display(),
                    b.name
                )
            })?;
            bindings.push(Arc::new(adapter));
        }
        worker.durable_objects = Some(objects);
    }
    for (kind, name) in unserved_bindings(config) {
        tracing::warn!(
            "binding {name} ({kind}) is not served by Hearth yet; env.{name} will be undefined"
        );
    }
    worker.bindings = bindings;
    Ok((
        worker,
        BindingThreads {
            _kv: purgers,
            _r2: expirers,
        },
    ))
}

/// Opens the Durable Object state of the data directory, applies the
/// config's migrations (renamed classes keep their objects, deleted ones
/// lose them) and returns the classes this worker exports; `None` when the
/// config declares no Durable Objects.
fn durable_objects(project: &Project) -> Result<Option<Arc<DurableObjects>>> {
    let config = &project.config;
    if config.durable_objects.bindings.is_empty() && config.migrations.is_empty() {
        return Ok(None);
    }
    let host = DurableObjectHost::open(
        &project.data_dir,
        project.clock.clone(),
        DoLimits::default(),
    )
    .context("opening the Durable Object state")?;
    let applied = host
        .apply_migrations(&config.migrations)
        .with_context(|| format!("{}: migrations", config.path.display()))?;
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
        project.clock.clone(),
        DurableObjectOptions::default(),
    )
    .context("opening the Durable Object namespaces")?;
    Ok(Some(objects))
}

/// Bindings the config declares that no adapter serves yet.
fn unserved_bindings(config: &hearth_config::Config) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for b in &config.vectorize {
        out.push(("vectorize", b.binding.clone()));
    }
    if let Some(ai) = &config.ai {
        out.push(("ai", ai.binding.clone()));
    }
    for b in &config.analytics_engine_datasets {
        out.push(("analytics_engine_datasets", b.binding.clone()));
    }
    for b in &config.ratelimits {
        out.push(("ratelimits", b.name.clone()));
    }
    out
}
