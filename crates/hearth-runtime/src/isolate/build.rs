//! Building an isolate: resolving the main module, creating the runtime and
//! the host state, installing the Web APIs, the prelude, Durable Objects and
//! `env`, and running the module's top level under a start-up CPU budget.

use std::cell::{Cell, RefCell};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rquickjs::promise::{Promise, PromiseState};
use rquickjs::{Class, Context, Ctx, Function, Object, Persistent, Runtime, Value};
use tokio::sync::mpsc;

use super::host::{Cpu, Host, UnhandledRejection};
use super::natives::HostNatives;
use super::{
    Api, HostEvent, Isolate, PRELUDE, describe_exception, durable, internal_eval_options,
    same_value,
};
use crate::config::WorkerConfig;
use crate::error::StartError;
use crate::fetch;
use crate::loader::module_name;
use crate::pool::IsolateStats;

/// The main module: the root modules resolve under, its name there, and
/// its source.
struct MainModule {
    root: PathBuf,
    name: String,
    source: String,
}

fn engine(e: rquickjs::Error) -> StartError {
    StartError::Engine(e.to_string())
}

impl Isolate {
    pub(crate) fn build(
        config: Arc<WorkerConfig>,
        stats: Arc<IsolateStats>,
    ) -> Result<Isolate, StartError> {
        let main = resolve_main(&config)?;
        let runtime = Runtime::new().map_err(engine)?;
        let context = Context::full(&runtime).map_err(engine)?;
        let cpu = Rc::new(Cpu::default());
        runtime.set_max_stack_size(config.limits.max_stack_bytes);
        let handler_cpu = cpu.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || handler_cpu.over_budget())));
        let (resolver, loader) =
            crate::loader::for_root(&main.root, &config).map_err(|source| StartError::Read {
                path: main.root.display().to_string(),
                source,
            })?;
        runtime.set_loader(resolver, loader);

        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let host = Rc::new(new_host(
            &config,
            &main.root,
            stats,
            events_tx,
            cpu.clone(),
        )?);
        track_rejections(&runtime, &host);

        // Time spent building counts against a start-up budget equal to the
        // per-request CPU limit, so a looping top level cannot hang start-up.
        cpu.begin(Duration::from_millis(config.limits.cpu_ms));
        let built = context.with(|ctx| evaluate(&ctx, &host, &config, &main));
        let tripped = cpu.tripped.get();
        cpu.end();
        if built.is_err() {
            // Rejections recorded while evaluating hold JS values; release
            // them while the runtime is still alive.
            drop(host.unhandled.take());
        }
        let (api, has_fetch) = match built {
            Ok(b) => b,
            Err(_) if tripped => {
                return Err(StartError::Script {
                    location: main.name,
                    message: format!(
                        "evaluating the module exceeded the CPU time limit (limits.cpu_ms = {})",
                        config.limits.cpu_ms
                    ),
                    stack: String::new(),
                });
            }
            Err(e) => return Err(e),
        };
        if !has_fetch {
            tracing::warn!(target: "hearth::worker", module = %main.name, "the worker's default export has no fetch() handler");
        }
        // Set after start-up so the limit applies to the worker, not to the
        // host's own scripts.
        runtime.set_memory_limit(config.limits.memory_bytes);
        Ok(Isolate {
            api,
            context,
            runtime,
            host,
            events: events_rx,
            next_rid: 1,
        })
    }
}

/// Finds the main module under its module root and reads it.
fn resolve_main(config: &WorkerConfig) -> Result<MainModule, StartError> {
    let main = config.main.clone();
    if !main.is_file() {
        return Err(StartError::MainNotFound {
            path: main.display().to_string(),
        });
    }
    let root = match &config.module_root {
        Some(r) => r.clone(),
        None => main.parent().unwrap_or(Path::new(".")).to_path_buf(),
    };
    let root = root.canonicalize().map_err(|source| StartError::Read {
        path: root.display().to_string(),
        source,
    })?;
    let main_abs = main.canonicalize().map_err(|source| StartError::Read {
        path: main.display().to_string(),
        source,
    })?;
    let main_rel = main_abs
        .strip_prefix(&root)
        .map_err(|_| {
            StartError::Engine(format!(
                "main module {} is outside the module root {}",
                main_abs.display(),
                root.display()
            ))
        })?
        .to_path_buf();
    let name = module_name(&main_rel);
    let source = crate::loader::main_source(&root, &name, config)?;
    Ok(MainModule { root, name, source })
}

fn new_host(
    config: &Arc<WorkerConfig>,
    root: &Path,
    stats: Arc<IsolateStats>,
    events: mpsc::UnboundedSender<HostEvent>,
    cpu: Rc<Cpu>,
) -> Result<Host, StartError> {
    Ok(Host {
        config: config.clone(),
        stats,
        events,
        slots: RefCell::new(HashMap::new()),
        timers: RefCell::new(BinaryHeap::new()),
        fetches: RefCell::new(HashMap::new()),
        fetch_credits: RefCell::new(HashMap::new()),
        fetch_bodies: RefCell::new(HashMap::new()),
        cancelled_timers: RefCell::new(Vec::new()),
        ended_requests: RefCell::new(Vec::new()),
        request_bodies: RefCell::new(HashMap::new()),
        body_pulls: Cell::new(0),
        streamed_bodies: RefCell::new(HashSet::new()),
        client: fetch::client(&config.extra_root_certs).map_err(StartError::Engine)?,
        streams: RefCell::new(HashMap::new()),
        stream_waits: Cell::new(0),
        sockets: RefCell::new(HashMap::new()),
        closed_here: RefCell::new(HashSet::new()),
        closed_there: RefCell::new(HashMap::new()),
        owner: Cell::new(0),
        cpu,
        out_of_memory: Cell::new(false),
        async_context: Cell::new(false),
        module_root: root.to_path_buf(),
        tmp_requests: RefCell::new(HashSet::new()),
        tcp: RefCell::new(HashMap::new()),
        tls: std::cell::OnceCell::new(),
        origin: Instant::now(),
        unhandled: RefCell::new(Vec::new()),
        durable: durable::IsolateDurable::new(config.durable_objects.clone()),
    })
}

/// Records promises rejected with no handler, and forgets them again when
/// a handler is attached later.
fn track_rejections(runtime: &Runtime, host: &Rc<Host>) {
    let tracker_host = host.clone();
    runtime.set_host_promise_rejection_tracker(Some(Box::new(
        move |ctx, promise, reason, is_handled| {
            if is_handled {
                let raw = promise.as_raw();
                tracker_host.unhandled.borrow_mut().retain(|u| {
                    u.promise
                        .clone()
                        .restore(&ctx)
                        .map(|p| !same_value(&p.as_raw(), &raw))
                        .unwrap_or(false)
                });
                return;
            }
            let (message, stack) = describe_exception(&reason);
            if message.contains("out of memory") {
                tracker_host.out_of_memory.set(true);
            }
            tracker_host
                .unhandled
                .borrow_mut()
                .push(UnhandledRejection {
                    promise: Persistent::save(&ctx, promise),
                    tag: tracker_host.current_tag(),
                    stack,
                });
        },
    )));
}

/// Replaces the global `Date` with one whose current time (`Date.now()`,
/// `new Date()`, `Date()`) is the test clock's; everything else, including
/// `instanceof Date` and subclassing, is the engine's own `Date`.
const TEST_CLOCK_DATE: &str = r#"(function (host) {
  const RealDate = globalThis.Date;
  const now = () => host.wallNow();
  const HDate = function Date(...args) {
    if (new.target === undefined) return new RealDate(now()).toString();
    return Reflect.construct(RealDate, args.length === 0 ? [now()] : args, new.target);
  };
  Object.defineProperty(HDate, "prototype", { value: RealDate.prototype });
  Object.defineProperty(HDate, "length", { value: 7 });
  HDate.now = function now_() { return now(); };
  HDate.parse = RealDate.parse;
  HDate.UTC = RealDate.UTC;
  Object.defineProperty(RealDate.prototype, "constructor", {
    value: HDate, writable: true, configurable: true,
  });
  globalThis.Date = HDate;
})"#;

/// Installs the host's scripts and `env`, runs the main module, and hands
/// its exports to the prelude, Durable Objects and events. Returns the
/// prelude's functions and whether the worker has a `fetch` handler.
fn evaluate<'js>(
    ctx: &Ctx<'js>,
    host: &Rc<Host>,
    config: &WorkerConfig,
    main: &MainModule,
) -> Result<(Api, bool), StartError> {
    hearth_webapi::install(ctx).map_err(|e| script_error(ctx, e, "webapi"))?;
    crate::cache::install(ctx, config.cache.as_ref()).map_err(|e| script_error(ctx, e, "cache"))?;
    let host_obj = Class::instance(ctx.clone(), HostNatives::new(host.clone()))
        .map_err(engine)?
        .into_inner();
    let prelude: Function =
        hearth_webapi::builtin::eval_script(ctx, PRELUDE, internal_eval_options())
            .map_err(|e| script_error(ctx, e, "prelude"))?;
    let api: Object = prelude
        .call((host_obj.clone(),))
        .map_err(|e| script_error(ctx, e, "prelude"))?;
    let get = |name: &str| -> Result<Function, StartError> {
        api.get(name).map_err(|e| script_error(ctx, e, "prelude"))
    };
    if config.clock.is_some() {
        let follow: Function = ctx
            .eval_with_options(TEST_CLOCK_DATE, internal_eval_options())
            .map_err(|e| script_error(ctx, e, "test clock"))?;
        follow
            .call::<_, ()>((host_obj.clone(),))
            .map_err(|e| script_error(ctx, e, "test clock"))?;
    }
    let durable_api = durable::install(ctx, host).map_err(|e| script_error(ctx, e, "durable"))?;
    let env = crate::bindings::build_env(ctx, config).map_err(|message| StartError::Binding {
        name: "env".into(),
        message,
    })?;
    get("setEnv")?
        .call::<_, ()>((env.clone(),))
        .map_err(engine)?;
    durable::set_service_env(ctx, &durable_api, env.clone()).map_err(engine)?;

    let main_name = main.name.as_str();
    let in_main = |e: rquickjs::Error| script_error(ctx, e, main_name);
    let module =
        crate::bytecode::declare(ctx, main_name, &main.source, config.bytecode_dir.as_deref())
            .map_err(in_main)?;
    let (module, promise) = module.eval().map_err(in_main)?;
    run_top_level(ctx, &promise, main_name)?;
    let default: Value = module
        .namespace()
        .and_then(|ns| ns.get("default"))
        .map_err(in_main)?;
    let exports = module.namespace().map_err(in_main)?;
    durable::set_exports(ctx, &durable_api, exports, env.clone(), host).map_err(in_main)?;
    let has_fetch: bool = get("setHandler")?
        .call((default.clone(),))
        .map_err(in_main)?;
    let exports = module.namespace().map_err(in_main)?;
    let events = crate::events::install(
        ctx,
        host_obj,
        default,
        exports,
        env,
        config.workflows.as_ref(),
    )
    .map_err(|e| script_error(ctx, e, "events"))?;
    let api = Api {
        dispatch: Persistent::save(ctx, get("dispatch")?),
        ws_deliver: Persistent::save(ctx, get("wsDeliver")?),
        fire_timer: Persistent::save(ctx, get("fireTimer")?),
        fetch_done: Persistent::save(ctx, get("fetchDone")?),
        fetch_failed: Persistent::save(ctx, get("fetchFailed")?),
        fetch_chunk: Persistent::save(ctx, get("fetchChunk")?),
        fetch_end: Persistent::save(ctx, get("fetchEnd")?),
        stream_ready: Persistent::save(ctx, get("streamReady")?),
        fetch_body_ready: Persistent::save(ctx, get("fetchBodyReady")?),
        body_chunk: Persistent::save(ctx, get("bodyChunk")?),
        end_io: Persistent::save(ctx, get("endIo")?),
        reset_context: Persistent::save(ctx, get("resetContext")?),
        tcp_event: Persistent::save(ctx, get("tcpEvent")?),
        events,
        durable: durable_api,
    };
    Ok((api, has_fetch))
}

/// Runs the module's top level (including top-level await) to the end.
fn run_top_level<'js>(
    ctx: &Ctx<'js>,
    promise: &Promise<'js>,
    main_name: &str,
) -> Result<(), StartError> {
    loop {
        match promise.state() {
            PromiseState::Pending => {
                if !ctx.execute_pending_job() {
                    return Err(StartError::Script {
                        location: main_name.to_string(),
                        message: "the module's top-level await never settled".into(),
                        stack: String::new(),
                    });
                }
            }
            PromiseState::Resolved => return Ok(()),
            PromiseState::Rejected => {
                let err = promise
                    .result::<Value>()
                    .map(|r| match r {
                        Err(rquickjs::Error::Exception) => ctx.catch(),
                        Err(e) => rquickjs::String::from_str(ctx.clone(), &e.to_string())
                            .map(|s| s.into_value())
                            .unwrap_or_else(|_| Value::new_undefined(ctx.clone())),
                        Ok(v) => v,
                    })
                    .unwrap_or_else(|| Value::new_undefined(ctx.clone()));
                return Err(script_error_from_value(&err, main_name));
            }
        }
    }
}

fn script_error(ctx: &Ctx<'_>, err: rquickjs::Error, fallback_location: &str) -> StartError {
    let caught = match err {
        rquickjs::Error::Exception => ctx.catch(),
        other => {
            return StartError::Script {
                location: fallback_location.to_string(),
                message: other.to_string(),
                stack: String::new(),
            };
        }
    };
    script_error_from_value(&caught, fallback_location)
}

fn script_error_from_value(caught: &Value<'_>, fallback_location: &str) -> StartError {
    let (message, stack) = describe_exception(caught);
    let name: String = caught
        .as_object()
        .and_then(|o| o.get::<_, String>("name").ok())
        .unwrap_or_default();
    // First "at ..." frame names file:line:column.
    let location = stack
        .lines()
        .filter_map(|l| l.trim().strip_prefix("at "))
        .map(|l| {
            let l = l.trim();
            match (l.rfind('('), l.ends_with(')')) {
                (Some(i), true) => l[i + 1..l.len() - 1].to_string(),
                _ => l.to_string(),
            }
        })
        .find(|l| !l.is_empty() && !l.starts_with('<'))
        .unwrap_or_else(|| fallback_location.to_string());
    let message = if name.is_empty() {
        message
    } else {
        format!("{name}: {message}")
    };
    StartError::Script {
        location,
        message,
        stack,
    }
}
