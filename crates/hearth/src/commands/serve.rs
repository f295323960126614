//! `hearth serve`: config → opened bindings → adapters → the HTTP front.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use hearth_http::{ServeOptions, WorkerConfig};
use hearth_runtime::bindings::registry::{self, ServedConfig};

use crate::cli::ServeArgs;
use crate::project::Project;

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
    let mut projects = Project::load_several(&all_args)?;
    // One clock for every worker: with --test-clock, one that the
    // internal endpoint moves.
    let test_clock = args.test_clock.then(hearth_core::AdjustableClock::new);
    if let Some(clock) = &test_clock {
        tracing::warn!(
            target: "hearth::clock",
            "TEST CLOCK ON (--test-clock): POST /__hearth/clock moves time forward for every worker; never use this in production"
        );
        for p in &mut projects {
            p.clock = clock.clone() as hearth_core::SharedClock;
        }
    }
    if !args.no_build {
        for p in &projects {
            super::build::run(p)?;
        }
    }
    // Held while serving, so `hearth migrate` never copies a directory
    // a server is writing.
    let _dir_locks = projects
        .iter()
        .map(|p| p.data_dir.lock_serving())
        .collect::<Result<Vec<_>, _>>()?;
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
    let max_request_body = match args.max_request_body {
        None => None,
        Some(0) => bail!("--max-request-body must be at least 1 byte"),
        Some(n) => Some(usize::try_from(n).with_context(|| {
            format!("--max-request-body {n} is more than this machine can address")
        })?),
    };
    let services = hearth_runtime::ServiceRegistry::new();
    let served: Vec<ServedConfig> = projects
        .iter()
        .map(|p| ServedConfig {
            config: &p.config,
            data_dir: &p.data_dir,
        })
        .collect();
    let mut workers = Vec::new();
    for p in &projects {
        let mut worker = base_worker(p)?;
        if let Some(bytes) = max_request_body {
            worker.limits.max_request_body_bytes = bytes;
        }
        if test_clock.is_some() {
            worker.clock = Some(p.clock.clone());
        }
        workers.push(worker);
        for (section, name) in registry::unserved(&p.config) {
            tracing::warn!(
                "binding {name} ({section}) is not served by Hearth yet; env.{name} will be undefined"
            );
        }
    }
    let mut settings = super::events::kind_settings(&projects[0])?;
    let cluster = match &args.cluster {
        Some(path) => Some(super::cluster::start(path, projects[0].clock.clone())?),
        None => None,
    };
    settings.cluster = cluster.clone();
    // One engine for the HTTP face and the workers' `env.AI`: one cache,
    // one set of limits, one log store.
    let ai_gateway = match &args.ai_gateway {
        Some(file) => Some(super::ai_gateway::open(
            file,
            projects[0].data_dir.root(),
            projects[0].clock.clone(),
        )?),
        None => None,
    };
    settings.ai_gateway = ai_gateway.clone();
    let ai_gateway_url = settings.ai_gateway_url.clone();
    let opened =
        registry::open_workers(&served, workers, &projects[0].clock, &services, &settings)?;
    // Every worker is served alike; the first also takes the requests no
    // worker's routes match.
    let mut sources = Vec::new();
    let mut mounted = Vec::new();
    let mut keep_alive = Vec::new();
    for (p, opened) in projects.iter().zip(opened) {
        mounted.push(hearth_http::MountedWorker {
            name: Some(p.config.name.clone()),
            worker: opened.worker,
            routes: p.config.routes.iter().map(|r| r.pattern.clone()).collect(),
            assets: opened.assets,
            crons: opened.crons,
            internal_routes: opened.routes,
        });
        sources.push(Arc::new(super::events::WorkerEvents::new(opened.tasks)));
        keep_alive.push(opened.keep_alive);
    }
    let _keep_alive = keep_alive;
    let mut options = ServeOptions::several(mounted);
    options.listen = listen;
    options.data_dir = Some(projects[0].data_dir.root().to_path_buf());
    options.dev = args.dev || watch;
    options.internal_token = args.internal_token;
    options.analytics_token = args.analytics_token.filter(|t| !t.trim().is_empty());
    options.admin_listen = admin_listen;
    options.connections = connections;
    options.services = services;
    options.geoip = open_geoip(&args.geoip)?;
    options.clock = projects[0].clock.clone();
    options.test_clock = test_clock;
    options.edge = super::edge::load(
        args.edge.as_deref(),
        &projects[0],
        cluster.as_ref().and_then(|node| node.redis()),
    )?;
    options.ai_gateway = ai_gateway;
    options.cluster = cluster.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hearth-http")
        .build()
        .context("starting the async runtime")?;
    super::s3::start(
        args.s3_listen.as_deref(),
        args.s3_any_bucket,
        &projects,
        &runtime,
    )?;
    runtime.block_on(async move {
        if let Some(node) = &cluster {
            let internal = hearth_http::cluster::InternalListener::bind(node.config().listen).await?;
            tracing::info!(target: "hearth::cluster", addr = %node.config().listen, "internal listener (node-to-node calls)");
            tokio::spawn(internal.run(node.clone()));
        }
        let server = hearth_http::Server::bind(options).await?;
        let _ = ai_gateway_url.set(format!(
            "http://{}{}",
            server.local_addr(),
            hearth_ai_gateway::server::MOUNT.trim_end_matches('/')
        ));
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

/// The worker a config describes before its bindings are opened: entry
/// module, vars, secrets, compatibility settings and limits.
pub fn base_worker(project: &Project) -> Result<WorkerConfig> {
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
    worker.bytecode_dir = Some(project.data_dir.bytecode());
    if let Some(cpu_ms) = config.limits.cpu_ms {
        worker.limits.cpu_ms = cpu_ms;
    }
    Ok(worker)
}
