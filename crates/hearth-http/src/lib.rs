//! The HTTP front: the listener, conversion between HTTP and the runtime's
//! [`WorkerRequest`]/[`WorkerResponse`], request limits, graceful shutdown
//! and the internal endpoints under `/__hearth/`.
//!
//! Only this crate knows HTTP wire shapes. It serves HTTP/1.1 with
//! keep-alive on hyper over a multi-thread tokio runtime and hands each
//! request to the worker's [`IsolatePool`].
//!
//! Internal endpoints (`/__hearth/*`, `/cdn-cgi/handler/scheduled`) answer
//! on the admin listener ([`ServeOptions::admin_listen`]), to a request
//! carrying `Authorization: Bearer <token>` when
//! [`ServeOptions::internal_token`] is set, and in development mode on a
//! loopback listener (as `wrangler dev` does). Never to a worker's own
//! `fetch()`: every subrequest carries the runtime's
//! [`SUBREQUEST_MARKER`] header, which a worker cannot remove.

mod clock;
pub mod cluster;
mod conn;
mod edge;
mod framing;
mod front;
mod gateway_logs;
mod geo;
mod live;
mod metrics;
pub mod routes;
mod triggers;
pub mod websocket;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use crate::conn::{BodyTooSlow, ConnectionLimits, DEFAULT_MAX_CONNECTIONS};
pub use crate::edge::{Edge, MAX_INSPECTED_BODY};
pub use crate::geo::{GeoIp, GeoIpError};
pub use hearth_assets::AssetServer;
pub use hearth_runtime::SUBREQUEST_MARKER;
pub use hearth_runtime::{
    DispatchError, IsolatePool, Limits, StartError, WorkerConfig, WorkerRequest, WorkerResponse,
};

use crate::live::LivePool;
use crate::metrics::Metrics;

/// The default listen address, as `wrangler dev`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
/// Prefix of the internal endpoints.
pub const INTERNAL_PREFIX: &str = "/__hearth/";
/// `Retry-After` (seconds) on a 503 shed because every isolate's queue was
/// full: queues drain in well under a second unless the worker is stuck.
pub const OVERLOADED_RETRY_AFTER_SECS: u32 = 1;

/// Everything `serve` needs. The binary maps its configs onto this.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The served workers, each with its own isolates. They are equals but
    /// for one thing: the first also answers every request no worker's
    /// `routes` match. Never empty ([`ServeError::NoWorker`]).
    pub workers: Vec<MountedWorker>,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Data directory the bindings were opened in (reported by health).
    pub data_dir: Option<PathBuf>,
    /// Development mode: an uncaught exception's stack is sent in the 500
    /// response body, not only to the log.
    pub dev: bool,
    /// Bearer token that opens the internal endpoints on the main listener
    /// (and is required on the admin listener too when set).
    pub internal_token: Option<String>,
    /// Bearer token of the Cloudflare API paths Hearth serves: the Analytics
    /// Engine SQL API (`/client/v4/accounts/<id>/analytics_engine/sql`) and,
    /// with `ai_gateway`, the AI Gateway logs list
    /// (`.../ai-gateway/gateways/<id>/logs`); served on the main listener
    /// only when set (on the admin listener also by its rules).
    pub analytics_token: Option<String>,
    /// A second listener that serves only the internal endpoints. Without
    /// `internal_token` it must be a loopback address.
    pub admin_listen: Option<SocketAddr>,
    /// Connection cap, header and body timeouts, buffer sizes.
    pub connections: ConnectionLimits,
    /// Where every named worker is registered, for the service bindings in
    /// their configs.
    pub services: hearth_runtime::ServiceRegistry,
    /// MaxMind-format databases for `request.cf`'s place fields (`--geoip`).
    pub geoip: Option<Arc<GeoIp>>,
    /// The time an on-demand scheduled event gets when the request names none.
    pub clock: hearth_core::SharedClock,
    /// The edge (`--edge hearth.toml`): its listeners, TLS and rules, in
    /// front of assets and every worker on every listener.
    pub edge: Option<Arc<Edge>>,
    /// AI Gateway (`--ai-gateway gateways.toml`), answering
    /// `/__hearth/ai-gateway/<gateway>/...` on every listener. Its access
    /// rule is the gateway's own (`token`, sent as `cf-aig-authorization`),
    /// not the internal endpoints' one, so workers and outside clients
    /// reach it alike; on the main listener the edge's rules run first.
    pub ai_gateway: Option<hearth_ai_gateway::Gateways>,
    /// The test clock (`--test-clock`): `/__hearth/clock` moves it. It must
    /// also be [`ServeOptions::clock`] and every worker's bindings' clock.
    pub test_clock: Option<Arc<hearth_core::AdjustableClock>>,
    /// Cluster mode: the node, whose counters `/__hearth/metrics` adds.
    pub cluster: Option<Arc<hearth_runtime::cluster::ClusterNode>>,
}

/// One served worker: its code and bindings, where requests reach it, and
/// what the internal endpoints run on it.
#[derive(Debug, Clone)]
pub struct MountedWorker {
    /// The worker's `name`, under which service bindings and
    /// `?worker=<name>` on the internal endpoints reach it.
    pub name: Option<String>,
    /// The worker: main module, vars, secrets, bindings, limits.
    pub worker: WorkerConfig,
    /// The worker's `routes` patterns.
    pub routes: Vec<String>,
    /// Static assets served ahead of (or behind) the worker for requests
    /// routed to it, per its `[assets]` config.
    pub assets: Option<Arc<AssetServer>>,
    /// The worker's `triggers.crons`: `/__hearth/scheduled` runs only these.
    pub crons: Vec<String>,
    /// Endpoints its bindings serve under `/__hearth/<prefix>/` (the
    /// queues pull consumer).
    pub internal_routes: Vec<Arc<dyn hearth_runtime::bindings::registry::InternalRoute>>,
}

impl MountedWorker {
    pub fn new(worker: WorkerConfig) -> Self {
        Self {
            name: None,
            worker,
            routes: Vec::new(),
            assets: None,
            crons: Vec::new(),
            internal_routes: Vec::new(),
        }
    }
}

impl ServeOptions {
    /// Options serving one worker.
    pub fn new(worker: WorkerConfig) -> Self {
        Self::several(vec![MountedWorker::new(worker)])
    }

    /// Options serving `workers`; the first is the default route.
    pub fn several(workers: Vec<MountedWorker>) -> Self {
        Self {
            workers,
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            data_dir: None,
            dev: false,
            internal_token: None,
            analytics_token: None,
            admin_listen: None,
            connections: ConnectionLimits::default(),
            services: Default::default(),
            geoip: None,
            clock: hearth_core::SystemClock::shared(),
            edge: None,
            ai_gateway: None,
            cluster: None,
            test_clock: None,
        }
    }

    /// The default (first) worker.
    ///
    /// # Panics
    /// When `workers` was emptied by hand.
    pub fn first_mut(&mut self) -> &mut MountedWorker {
        &mut self.workers[0]
    }

    /// The default (first) worker's config.
    pub fn worker_mut(&mut self) -> &mut WorkerConfig {
        &mut self.first_mut().worker
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Start(#[from] StartError),
    #[error("the isolate pool failed to start: {0}")]
    Join(String),
    #[error(
        "--admin-listen {0} is not a loopback address: an admin listener reachable from other machines needs --internal-token"
    )]
    AdminNeedsToken(SocketAddr),
    #[error("no worker to serve: ServeOptions::workers is empty")]
    NoWorker,
    #[error("two served workers are named {0:?}; worker names must be unique")]
    DuplicateName(String),
}

/// A bound, ready server: the worker is loaded and the port is open.
pub struct Server {
    listener: TcpListener,
    admin: Option<TcpListener>,
    /// The zone file's listeners.
    edge_listeners: Vec<(TcpListener, hearth_edge::config::Listener)>,
    state: Arc<State>,
}

struct State {
    /// Each worker's isolates, in `options.workers` order.
    pools: Vec<Arc<LivePool>>,
    /// Route patterns and the index of the worker they select.
    routes: Vec<(routes::RoutePattern, usize)>,
    options: ServeOptions,
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    /// One permit per open client connection.
    connections: Arc<tokio::sync::Semaphore>,
    /// The admin listener's own, so a flood of clients cannot lock the
    /// operator out of health and metrics.
    admin_connections: Arc<tokio::sync::Semaphore>,
    /// Refusals being answered; past this they are dropped unanswered.
    refusing: Arc<tokio::sync::Semaphore>,
    accept_errors: conn::LogLimiter,
    refusals: conn::LogLimiter,
    metrics: Metrics,
    started: Instant,
    next_id: AtomicU64,
}

impl State {
    /// A new request (ray) id.
    fn next_ray(&self) -> String {
        let n = self
            .next_id
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        format!("{n:016x}")
    }

    /// The index of the worker named `name`.
    fn index_of(&self, name: &str) -> Option<usize> {
        self.options
            .workers
            .iter()
            .position(|w| w.name.as_deref() == Some(name))
    }

    /// The index of the worker a request to `host` and `path` is routed
    /// to: the best `routes` match, else the first worker.
    fn route(&self, host: Option<&str>, path: &str) -> usize {
        let local = self.local_addr.to_string();
        routes::pick(&self.routes, host.unwrap_or(&local), path).unwrap_or(0)
    }

    fn request_host<'a>(&self, req: &'a Request<Incoming>) -> Option<&'a str> {
        req.headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
    }
}

impl Server {
    /// Loads the worker into its isolates and binds the listener.
    pub async fn bind(options: ServeOptions) -> Result<Server, ServeError> {
        if let Some(addr) = options.admin_listen
            && !addr.ip().is_loopback()
            && options.internal_token.is_none()
        {
            return Err(ServeError::AdminNeedsToken(addr));
        }
        if options.workers.is_empty() {
            return Err(ServeError::NoWorker);
        }
        let mut seen = std::collections::HashSet::new();
        for name in options.workers.iter().filter_map(|w| w.name.as_deref()) {
            if !seen.insert(name) {
                return Err(ServeError::DuplicateName(name.to_string()));
            }
        }
        // Workers start one by one; calls between them made meanwhile (an
        // alarm or a queue batch of an early one) wait for the later ones.
        options
            .services
            .expect(options.workers.iter().filter_map(|w| w.name.clone()));
        let mut pools: Vec<Arc<LivePool>> = Vec::with_capacity(options.workers.len());
        for w in &options.workers {
            let worker = w.worker.clone();
            let started = tokio::task::spawn_blocking(move || IsolatePool::start(worker))
                .await
                .map_err(|e| ServeError::Join(e.to_string()))
                .and_then(|r| r.map_err(ServeError::Start));
            match started {
                Ok(p) => pools.push(Arc::new(LivePool::new(p))),
                Err(e) => {
                    for p in &pools {
                        p.shutdown();
                    }
                    return Err(e);
                }
            }
        }
        for (w, p) in options.workers.iter().zip(&pools) {
            if let Some(name) = &w.name {
                options
                    .services
                    .register(name, Arc::new(live::LiveTarget(p.clone())));
            }
        }
        let mut route_table = Vec::new();
        for (i, w) in options.workers.iter().enumerate() {
            for r in &w.routes {
                route_table.push((routes::RoutePattern::parse(r), i));
            }
        }
        let mut addrs = vec![options.listen];
        addrs.extend(options.admin_listen);
        let mut listeners = Vec::new();
        for addr in addrs {
            let bound = match TcpListener::bind(addr).await {
                Ok(l) => l.local_addr().map(|a| (l, a)),
                Err(e) => Err(e),
            };
            match bound {
                Ok(l) => listeners.push(l),
                Err(source) => {
                    for p in &pools {
                        p.shutdown();
                    }
                    return Err(ServeError::Bind { addr, source });
                }
            }
        }
        let edge_listeners = match &options.edge {
            Some(e) => match edge::bind(e).await {
                Ok(l) => l,
                Err(err) => {
                    for p in &pools {
                        p.shutdown();
                    }
                    return Err(err);
                }
            },
            None => Vec::new(),
        };
        let mut listeners = listeners.into_iter();
        let Some((listener, local_addr)) = listeners.next() else {
            unreachable!("the main listener is always bound")
        };
        let (admin, admin_addr) = match listeners.next() {
            Some((l, a)) => (Some(l), Some(a)),
            None => (None, None),
        };
        let max_connections = options.connections.max_connections.max(1);
        // Request ids only need to differ between runs; the OS's randomness
        // gives that without a clock.
        let seed = getrandom::u64().unwrap_or(0);
        Ok(Server {
            listener,
            admin,
            edge_listeners,
            state: Arc::new(State {
                pools,
                routes: route_table,
                options,
                local_addr,
                admin_addr,
                connections: Arc::new(tokio::sync::Semaphore::new(max_connections)),
                admin_connections: Arc::new(tokio::sync::Semaphore::new(
                    conn::ADMIN_MAX_CONNECTIONS,
                )),
                refusing: Arc::new(tokio::sync::Semaphore::new(conn::REFUSING_AT_ONCE)),
                accept_errors: conn::LogLimiter::new(Duration::from_secs(5)),
                refusals: conn::LogLimiter::new(Duration::from_secs(5)),
                metrics: Metrics::default(),
                started: Instant::now(),
                next_id: AtomicU64::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            }),
        })
    }

    /// The default (first) worker's isolates.
    pub fn pool(&self) -> &IsolatePool {
        self.state.pools[0].get()
    }

    /// The isolates of the worker named `name`, for the event sources
    /// (queues, cron, Workflows) that run beside HTTP.
    pub fn pool_of(&self, name: &str) -> Option<&IsolatePool> {
        let i = self.state.index_of(name)?;
        Some(self.state.pools[i].get())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.state.local_addr
    }

    /// The addresses of the zone file's listeners, in its order.
    pub fn edge_addrs(&self) -> Vec<SocketAddr> {
        self.edge_listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// The admin listener's address, when one was asked for.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.state.admin_addr
    }

    /// A handle that reloads the default (first) worker's code while the
    /// server runs.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            state: self.state.clone(),
            index: 0,
        }
    }

    /// A handle that reloads the worker named `name`, and only it.
    pub fn reloader_of(&self, name: &str) -> Option<Reloader> {
        Some(Reloader {
            state: self.state.clone(),
            index: self.state.index_of(name)?,
        })
    }

    /// Answers a connection past the cap with a 503 and closes it, without
    /// waiting on the client: at most `REFUSING_AT_ONCE` are answered at a
    /// time, the rest are closed unanswered.
    fn refuse(&self, stream: tokio::net::TcpStream, admin: bool) {
        self.state
            .metrics
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        if let Some(folded) = self.state.refusals.check() {
            let (listener, open, limit) = if admin {
                (
                    "admin listener",
                    conn::ADMIN_MAX_CONNECTIONS,
                    "ADMIN_MAX_CONNECTIONS",
                )
            } else {
                (
                    "",
                    self.state.options.connections.max_connections,
                    "max_connections",
                )
            };
            tracing::warn!(
                target: "hearth::http",
                "connection refused{}{listener}: {open} connections are open ({limit}){}",
                if admin { " on the " } else { "" },
                conn::folded(folded, "refusals")
            );
        }
        let Ok(slot) = self.state.refusing.clone().try_acquire_owned() else {
            return;
        };
        tokio::spawn(conn::refuse(stream, slot));
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets
    /// in-flight requests finish, and stops the isolates.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut conns = tokio::task::JoinSet::new();
        tracing::info!(target: "hearth::http", addr = %self.state.local_addr, isolates = self.state.pools[0].size(), workers = self.state.pools.len(), "listening");
        if let Some(admin) = self.state.admin_addr {
            tracing::info!(target: "hearth::http", addr = %admin, "admin listener (internal endpoints only)");
        }
        tokio::pin!(shutdown);
        let mut edge_tasks = tokio::task::JoinSet::new();
        for (l, cfg) in std::mem::take(&mut self.edge_listeners) {
            tracing::info!(target: "hearth::http", addr = %cfg.address, tls = cfg.tls, proxy_protocol = cfg.proxy_protocol, "edge listener");
            edge_tasks.spawn(edge::accept_loop(
                self.state.clone(),
                l,
                cfg,
                stop_rx.clone(),
            ));
        }
        if let Some(e) = &self.state.options.edge {
            edge_tasks.spawn(edge::watch_files(e.clone(), stop_rx.clone()));
        }
        loop {
            let (accepted, admin) = tokio::select! {
                _ = &mut shutdown => break,
                a = self.listener.accept() => (a, false),
                a = accept_on(self.admin.as_ref()) => (a, true),
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    if let Some(folded) = self.state.accept_errors.check() {
                        tracing::warn!(target: "hearth::http", "accept failed: {e}{}", conn::folded(folded, "accept failures"));
                    }
                    // Usually out of descriptors: give closing connections
                    // a moment rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let cap = if admin {
                &self.state.admin_connections
            } else {
                &self.state.connections
            };
            let Ok(permit) = cap.clone().try_acquire_owned() else {
                self.refuse(stream, admin);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let state = self.state.clone();
            let mut stop = stop_rx.clone();
            let permit = Arc::new(permit);
            conns.spawn(async move {
                let limits = state.options.connections.clone();
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    let permit = permit.clone();
                    async move {
                        Ok::<_, Infallible>(handle(state, req, peer, admin, permit).await)
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_read_timeout)
                    .max_buf_size(limits.max_buf_bytes.max(conn::MIN_BUF_BYTES))
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.as_mut().await;
                    }
                }
            });
        }
        tracing::info!(target: "hearth::http", "shutting down: finishing in-flight requests");
        drop(self.listener);
        drop(self.admin);
        let _ = stop_tx.send(true);
        while conns.join_next().await.is_some() {}
        while edge_tasks.join_next().await.is_some() {}
        let pools: Vec<IsolatePool> = self.state.pools.iter().map(|p| p.get().clone()).collect();
        for pool in &pools {
            pool.shutdown();
        }
        tokio::task::spawn_blocking(move || pools.iter().for_each(IsolatePool::join))
            .await
            .map_err(|e| ServeError::Join(e.to_string()))?;
        tracing::info!(target: "hearth::http", "stopped");
        Ok(())
    }
}

async fn accept_on(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Reloads one of a running server's workers: `hearth dev` calls it when
/// a source file of that worker changes.
#[derive(Clone)]
pub struct Reloader {
    state: Arc<State>,
    /// Which worker, in `ServeOptions::workers` order.
    index: usize,
}

impl Reloader {
    /// Stops the current isolates (they finish the requests they have),
    /// starts new ones that load the modules afresh, and routes new
    /// requests to them. Storage is untouched. If the new code fails to
    /// load, requests get the error until a reload succeeds.
    pub async fn reload(&self) -> Result<(), ServeError> {
        self.pool().reload().await.map_err(ServeError::Start)
    }

    /// Every file the worker's modules were loaded from.
    pub fn loaded_files(&self) -> Vec<PathBuf> {
        self.pool().config().loaded_files.paths()
    }

    /// The worker's isolates now (after a reload, the new ones), for the
    /// event sources that run beside HTTP.
    pub fn current_pool(&self) -> IsolatePool {
        self.pool().get().clone()
    }

    fn pool(&self) -> &LivePool {
        &self.state.pools[self.index]
    }
}

/// Loads the worker, listens, serves until `shutdown` resolves.
pub async fn serve(
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    Server::bind(options).await?.run(shutdown).await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// A streamed body; a worker-side stream error aborts the connection, so
/// the client can tell the body is incomplete.
fn streamed(mut rx: hearth_runtime::BodyStream) -> Body {
    let chunks = futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
        .map(|item| item.map(Frame::data).map_err(std::io::Error::other));
    BodyExt::boxed(StreamBody::new(chunks))
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(body.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=UTF-8"),
    );
    r
}

/// Held by a connection (and by the WebSocket it may become) for as long
/// as it counts against [`ConnectionLimits::max_connections`].
type ConnPermit = Arc<tokio::sync::OwnedSemaphorePermit>;

async fn handle(
    state: Arc<State>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    admin: bool,
    permit: ConnPermit,
) -> Response<Body> {
    let started = Instant::now();
    let mut hosts = req.headers().get_all(http::header::HOST).iter();
    let checked = match (hosts.next(), hosts.next()) {
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err(front::BadHost::Repeated),
        (Some(h), None) => h
            .to_str()
            .map_err(|_| front::BadHost::NotText)
            .and_then(front::check_host),
    };
    if let Err(e) = checked {
        return text(StatusCode::BAD_REQUEST, format!("400 Bad Request: {e}.\n"));
    }
    let path = req.uri().path();
    if triggers::is_cloudflare_sql_api(path) && (admin || state.options.analytics_token.is_some()) {
        let token_ok = match &state.options.analytics_token {
            Some(token) => {
                bearer(&req).is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
            }
            None => false,
        };
        if !token_ok && (!admin || internal_refusal(&state, &req, admin).is_some()) {
            return triggers::sql_api_unauthorized();
        }
        return triggers::cloudflare_sql_api(&state, req).await;
    }
    if let Some(gateway) = gateway_logs::gateway_of(path)
        && let Some(gateways) = state.options.ai_gateway.clone()
        && (admin || state.options.analytics_token.is_some())
    {
        let token_ok = state.options.analytics_token.as_ref().is_some_and(|token| {
            bearer(&req).is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
        });
        if !token_ok && (!admin || internal_refusal(&state, &req, admin).is_some()) {
            return triggers::sql_api_unauthorized();
        }
        return gateway_logs::list(&gateways, gateway, req.method(), req.uri().query());
    }
    if let Some(gateways) = state.options.ai_gateway.clone()
        && let Some(rest) = path.strip_prefix(hearth_ai_gateway::server::MOUNT)
    {
        let rest = rest.to_owned();
        if !admin
            && let Some(edge) = state.options.edge.clone()
            && let Some(response) = edge::check(&state, &edge, &mut req, peer).await
        {
            return response;
        }
        let (parts, body) = req.into_parts();
        let body = conn::MinRate::new(body, &state.options.connections);
        let response =
            hearth_ai_gateway::server::handle(&gateways, Request::from_parts(parts, body), &rest)
                .await;
        state
            .metrics
            .observe(response.status().as_u16(), started.elapsed());
        return response;
    }
    let is_internal = triggers::handles(&state, path) || path.starts_with(INTERNAL_PREFIX);
    let is_clock = path == clock::PATH;
    if admin && !is_internal {
        return text(
            StatusCode::NOT_FOUND,
            "404 Not Found: the admin listener serves only the internal endpoints (/__hearth/*, /cdn-cgi/handler/scheduled).\n",
        );
    }
    if is_internal {
        if let Some(refused) = internal_refusal(&state, &req, admin) {
            return refused;
        }
        if triggers::handles(&state, path) {
            return triggers::handle(&state, req).await;
        }
        if is_clock && let Some(test_clock) = state.options.test_clock.clone() {
            return clock::handle(&state, &test_clock, req).await;
        }
        return internal(&state, &req);
    }
    if let Some(edge) = state.options.edge.clone()
        && let Some(response) = edge::check(&state, &edge, &mut req, peer).await
    {
        state
            .metrics
            .observe(response.status().as_u16(), started.elapsed());
        return response;
    }
    let path = req.uri().path();
    let worker = state.route(state.request_host(&req), path);
    req.extensions_mut().insert(permit);
    if let Some(assets) = &state.options.workers[worker].assets {
        match route_assets(assets, &req).await {
            Ok(Some(response)) => {
                state
                    .metrics
                    .observe(response.status().as_u16(), started.elapsed());
                return response;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(target: "hearth::http", "assets: {e}");
                return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"));
            }
        }
    }
    let response = handle_worker(&state, worker, req, peer).await;
    state
        .metrics
        .observe(response.status().as_u16(), started.elapsed());
    response
}

async fn handle_worker(
    state: &Arc<State>,
    worker: usize,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let head = req.method() == http::Method::HEAD;
    let limit = state.options.workers[worker]
        .worker
        .limits
        .max_request_body_bytes;
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let (mut parts, body) = req.into_parts();
    let passed = parts.extensions.remove::<edge::Passed>();
    let id = passed
        .as_ref()
        .map_or_else(|| state.next_ray(), |p| p.ray.clone());
    let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let permit = parts.extensions.remove::<ConnPermit>();
    let ws_key = websocket::upgrade_key(&parts.headers);
    let body = conn::MinRate::new(body, &state.options.connections);
    let (body, body_stream) = match take_body(body, declared, limit, state).await {
        Ok(taken) => taken,
        Err(response) => return response,
    };
    if let Some(p) = &passed
        && let Some(refused) = edge::check_body(state, &parts, peer, p, &body)
    {
        return refused;
    }
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| state.local_addr.to_string());
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("http://{host}{path}");
    let client_ip = passed.as_ref().map_or(peer.ip(), |p| p.pass.client_ip);
    let headers = worker_headers(&parts.headers, client_ip, passed.as_ref());
    let cf = geo::request_cf(
        parts.version,
        &parts.headers,
        client_ip,
        state.options.geoip.as_deref(),
    );
    let request = WorkerRequest {
        id: id.clone(),
        method: parts.method.as_str().to_string(),
        url,
        headers,
        body,
        body_stream,
        cf,
    };
    let pool = &state.pools[worker];
    if let Some(e) = pool.load_error() {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("The worker failed to load: {e}\n"),
        );
    }
    let result = pool.dispatch(request).await;
    let mut response = match result {
        Ok(mut r) if r.web_socket.is_some() => {
            let channel = r.web_socket.take();
            match (ws_key, on_upgrade, channel) {
                (Some(key), Some(on_upgrade), Some(channel)) => {
                    tokio::spawn(async move {
                        // The WebSocket still counts against the cap.
                        let _permit = permit;
                        match on_upgrade.await {
                            Ok(upgraded) => websocket::bridge(upgraded, channel).await,
                            Err(e) => {
                                tracing::warn!(target: "hearth::http", "WebSocket upgrade failed: {e}")
                            }
                        }
                    });
                    let mut resp = to_http(r, false);
                    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                    let h = resp.headers_mut();
                    h.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
                    h.insert(
                        http::header::CONNECTION,
                        HeaderValue::from_static("Upgrade"),
                    );
                    if let Ok(v) = HeaderValue::from_str(&websocket::accept_key(&key)) {
                        h.insert("sec-websocket-accept", v);
                    }
                    resp
                }
                _ => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Worker tried to return a WebSocket in a response to a request which did not contain the header \"Upgrade: websocket\".\n",
                ),
            }
        }
        Ok(r) => to_http(r, head),
        Err(err) => {
            state.metrics.record_error(&err);
            let status =
                StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = match &err {
                DispatchError::Exception { stack, .. } if state.options.dev => {
                    format!("{err}\n\n{stack}\n")
                }
                _ => format!("{err}\n"),
            };
            let mut resp = text(status, body);
            if matches!(err, DispatchError::Overloaded { .. }) {
                resp.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    OVERLOADED_RETRY_AFTER_SECS.into(),
                );
            }
            resp
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .entry(HeaderName::from_static("cf-ray"))
            .or_insert(v);
    }
    response
}

/// The request headers a worker sees: the client's, less the ones only the
/// server may set, plus the edge's and `cf-connecting-ip`.
fn worker_headers(
    from: &http::HeaderMap,
    client_ip: std::net::IpAddr,
    passed: Option<&edge::Passed>,
) -> Vec<(String, String)> {
    let mut headers = Vec::with_capacity(from.len() + 1);
    for (k, v) in from {
        // The edge's headers are the server's word, never the client's.
        if front::is_edge_header(k.as_str()) {
            continue;
        }
        headers.push((
            k.as_str().to_string(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        ));
    }
    if let Some(p) = passed {
        edge::worker_headers(p, &mut headers);
    }
    headers.push(("cf-connecting-ip".into(), client_ip.to_string()));
    headers
}

/// Request bodies up to this are read whole before the worker starts;
/// longer ones (declared so, or of unknown length and found so) reach it as
/// a stream while arriving. A streamed body that passes the limit fails the
/// worker's read with an error naming it; one declared over it is a 413.
pub const BUFFERED_BODY_BYTES: u64 = 1024 * 1024;

/// The start of a body of unknown length.
enum Prefix {
    /// It ended within [`BUFFERED_BODY_BYTES`].
    Whole(Bytes),
    /// It goes on: the chunks read so far, and the rest still to read.
    Partial(Vec<Bytes>, conn::MinRate<Incoming>),
}

/// The request body as the worker gets it: bytes read whole, or a stream
/// (with what was already read at its start) for a body too large to
/// buffer; an error answer when the body breaks a limit.
async fn take_body(
    body: conn::MinRate<Incoming>,
    declared: Option<u64>,
    limit: usize,
    state: &Arc<State>,
) -> Result<(Bytes, Option<hearth_runtime::RequestBodyStream>), Response<Body>> {
    if declared.is_some_and(|n| n > BUFFERED_BODY_BYTES) {
        // Read while the worker runs, as fast as it reads: a large body
        // never sits in memory whole unless the worker asks for it so.
        return Ok((
            Bytes::new(),
            Some(stream_body(body, Vec::new(), limit, state.clone())),
        ));
    }
    if declared.is_none()
        && limit as u64 > BUFFERED_BODY_BYTES
        && !hyper::body::Body::is_end_stream(&body)
    {
        // No declared length: a short body is read whole as before; one
        // that outgrows the buffer reaches the worker as a stream, starting
        // with what was read.
        return match read_prefix(body, limit, &state.metrics).await? {
            Prefix::Whole(b) => Ok((b, None)),
            Prefix::Partial(read, rest) => Ok((
                Bytes::new(),
                Some(stream_body(rest, read, limit, state.clone())),
            )),
        };
    }
    Ok((read_body(body, limit, &state.metrics).await?, None))
}

/// Reads a body of unknown length up to [`BUFFERED_BODY_BYTES`], or the
/// error response for it.
async fn read_prefix(
    mut body: conn::MinRate<Incoming>,
    limit: usize,
    metrics: &metrics::Metrics,
) -> Result<Prefix, Response<Body>> {
    let mut read = Vec::new();
    let mut seen = 0u64;
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    seen += data.len() as u64;
                    read.push(data);
                }
                if seen > limit as u64 {
                    return Err(too_large(limit));
                }
                if seen > BUFFERED_BODY_BYTES {
                    return Ok(Prefix::Partial(read, body));
                }
            }
            Some(Err(e)) => return Err(body_error(e, limit, metrics)),
        }
    }
    let whole = match read.len() {
        0 => Bytes::new(),
        1 => read.pop().unwrap_or_default(),
        _ => Bytes::from(read.concat()),
    };
    Ok(Prefix::Whole(whole))
}

/// The answer to a body that failed while read whole.
fn body_error(e: conn::BoxError, limit: usize, metrics: &metrics::Metrics) -> Response<Body> {
    if e.is::<http_body_util::LengthLimitError>() {
        return too_large(limit);
    }
    if e.is::<BodyTooSlow>() {
        metrics.slow_bodies.fetch_add(1, Ordering::Relaxed);
        return text(
            StatusCode::REQUEST_TIMEOUT,
            format!("408 Request Timeout: {e}.\n"),
        );
    }
    text(
        StatusCode::BAD_REQUEST,
        format!("400 Bad Request: cannot read the request body: {e}"),
    )
}

fn too_large(limit: usize) -> Response<Body> {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "413 Payload Too Large: the request body exceeds {limit} bytes (limits.max_request_body_bytes)."
        ),
    )
}

/// The whole body, or the error response for it.
async fn read_body(
    body: conn::MinRate<Incoming>,
    limit: usize,
    metrics: &metrics::Metrics,
) -> Result<Bytes, Response<Body>> {
    match Limited::new(body, limit).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) => Err(body_error(e, limit, metrics)),
    }
}

/// Feeds a request body to the worker chunk by chunk, `read` (already
/// taken from the client) first; stops reading from the client while the
/// worker has not taken the chunks already read, and once the worker's
/// request has ended.
fn stream_body(
    mut body: conn::MinRate<Incoming>,
    read: Vec<Bytes>,
    limit: usize,
    state: Arc<State>,
) -> hearth_runtime::RequestBodyStream {
    let (tx, stream) = hearth_runtime::RequestBodyStream::channel();
    tokio::spawn(async move {
        let mut seen = 0usize;
        for data in read {
            seen += data.len();
            if tx.send(Ok(data)).await.is_err() {
                return;
            }
        }
        loop {
            let item = match body.frame().await {
                None => return,
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        seen += data.len();
                        if seen > limit {
                            Err(format!(
                                "the request body exceeds {limit} bytes (limits.max_request_body_bytes)"
                            ))
                        } else {
                            Ok(data)
                        }
                    }
                    // Trailers carry no body bytes.
                    Err(_) => continue,
                },
                Some(Err(e)) => {
                    if e.is::<BodyTooSlow>() {
                        state.metrics.slow_bodies.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(format!("cannot read the request body: {e}"))
                }
            };
            let last = item.is_err();
            if tx.send(item).await.is_err() || last {
                return;
            }
        }
    });
    stream
}

/// The assets' answer, or `None` when the worker should answer.
async fn route_assets(
    assets: &Arc<AssetServer>,
    req: &Request<Incoming>,
) -> Result<Option<Response<Body>>, hearth_assets::AssetError> {
    let assets = assets.clone();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    // Path resolution and hashing touch the disk.
    let routed = tokio::task::spawn_blocking(move || {
        let request = hearth_assets::AssetRequest {
            method: &method,
            path: &path,
            query: query.as_deref(),
            headers: &headers,
        };
        assets.route(&request, true)
    })
    .await
    .map_err(|e| hearth_assets::AssetError::Io {
        op: "serve",
        path: PathBuf::new(),
        source: std::io::Error::other(e.to_string()),
    })??;
    Ok(match routed {
        hearth_assets::Route::Worker => None,
        hearth_assets::Route::Asset(a) => Some(asset_response(a)),
    })
}

/// Bytes read from an asset file per body chunk.
const ASSET_CHUNK_BYTES: usize = 64 * 1024;

fn asset_response(a: hearth_assets::AssetResponse) -> Response<Body> {
    let body = match a.body {
        None => full(Bytes::new()),
        Some((file, len)) => {
            // Streamed in chunks, so a large file never sits in memory whole.
            let file = tokio::fs::File::from_std(file);
            let chunks = futures::stream::unfold((file, len), |(mut file, left)| async move {
                use tokio::io::AsyncReadExt;
                if left == 0 {
                    return None;
                }
                let mut buf = vec![0u8; ASSET_CHUNK_BYTES.min(left as usize)];
                match file.read(&mut buf).await {
                    Ok(0) => Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the asset file shrank while it was sent",
                        )),
                        (file, 0),
                    )),
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(Frame::data(Bytes::from(buf))), (file, left - n as u64)))
                    }
                    Err(e) => Some((Err(e), (file, 0))),
                }
            });
            BodyExt::boxed(StreamBody::new(chunks))
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    for (k, v) in &a.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.append(name, value);
        }
    }
    if a.status != 304
        && let Some(len) = a.content_length
    {
        headers.insert(http::header::CONTENT_LENGTH, len.into());
    }
    response
}

/// The worker's response as HTTP. Framing comes from the body: a buffered
/// body is sent with its true length; a streamed one with the length the
/// worker declared, held to it (see [`framing`]), else chunked. To a HEAD
/// request the worker's declared length is kept, since no body follows.
fn to_http(r: WorkerResponse, head: bool) -> Response<Body> {
    let declared = framing::declared_length(&r.headers);
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    let bodiless = head || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let mut length = None;
    let body = match r.stream {
        Some(rx) => match declared {
            Some(n) if !bodiless => {
                length = Some(n);
                BodyExt::boxed(framing::ExactLength::new(streamed(rx), n))
            }
            _ => streamed(rx),
        },
        None => full(r.body),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (k, v) in r.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) else {
            continue;
        };
        if framing::is_framing_header(name.as_str()) {
            continue;
        }
        headers.append(name, value);
    }
    if let Some(n) = length {
        headers.insert(http::header::CONTENT_LENGTH, n.into());
    } else if head
        && status != StatusCode::NO_CONTENT
        && let Some(n) = declared
    {
        headers.insert(http::header::CONTENT_LENGTH, n.into());
    }
    response
}

/// Who may call the internal endpoints. Never a worker's own `fetch()`
/// (its subrequests carry [`SUBREQUEST_MARKER`], which no worker can
/// remove); then the token when one is set; else the admin listener, or,
/// in development mode, a loopback main listener as `wrangler dev` has it.
/// A peer's being loopback is never enough: a reverse proxy is loopback too.
fn internal_refusal(state: &State, req: &Request<Incoming>, admin: bool) -> Option<Response<Body>> {
    if req.headers().contains_key(SUBREQUEST_MARKER) {
        return Some(text(
            StatusCode::FORBIDDEN,
            "403 Forbidden: internal endpoints never answer a worker's fetch().\n",
        ));
    }
    let token_given = || bearer(req);
    let allowed = match &state.options.internal_token {
        Some(token) => {
            token_given().is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
        }
        None => admin,
    } || (!admin && state.options.dev && state.local_addr.ip().is_loopback());
    if allowed {
        return None;
    }
    Some(text(
        StatusCode::FORBIDDEN,
        if state.options.internal_token.is_some() {
            "403 Forbidden: internal endpoints need the configured token (Authorization: Bearer <--internal-token>).\n"
        } else {
            "403 Forbidden: internal endpoints answer on the admin listener (--admin-listen) or with a token (--internal-token).\n"
        },
    ))
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(req: &Request<Incoming>) -> Option<&str> {
    req.headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn internal(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let path = &req.uri().path()[INTERNAL_PREFIX.len()..];
    match path {
        "health" => {
            let body = health_json(state);
            let mut r = Response::new(full(Bytes::from(body)));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        "metrics" => {
            let open = state.options.connections.max_connections.max(1)
                - state.connections.available_permits();
            let mut body = state.metrics.render(&state.pools[0].snapshot(), open);
            if let Some(edge) = &state.options.edge {
                body.push_str(&edge.events().metrics_text());
            }
            if let Some(node) = &state.options.cluster {
                body.push_str(&metrics::cluster_text(node, &state.metrics));
            }
            let mut r = Response::new(full(Bytes::from(body)));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        _ => text(StatusCode::NOT_FOUND, "404 Not Found\n"),
    }
}

/// The default (first) worker at the top level, as with one worker; every
/// worker, the first included, under `workers`.
fn health_json(state: &State) -> String {
    let mut v = worker_health(state, 0);
    let workers: Vec<serde_json::Value> = (0..state.pools.len())
        .map(|i| {
            let mut w = worker_health(state, i);
            w["name"] = serde_json::json!(state.options.workers[i].name);
            w["routes"] = serde_json::json!(state.options.workers[i].routes);
            w
        })
        .collect();
    v["status"] = "ok".into();
    v["uptime_seconds"] = state.started.elapsed().as_secs().into();
    v["data_dir"] = serde_json::json!(
        state
            .options
            .data_dir
            .as_ref()
            .map(|d| d.display().to_string())
    );
    v["workers"] = workers.into();
    v.to_string()
}

fn worker_health(state: &State, i: usize) -> serde_json::Value {
    let worker = &state.options.workers[i].worker;
    let pool = &state.pools[i];
    let bindings: Vec<serde_json::Value> = hearth_runtime::bindings::describe(worker)
        .into_iter()
        .map(|b| serde_json::json!({"name": b.name, "type": b.kind, "backend": b.backend}))
        .collect();
    let isolates: Vec<serde_json::Value> = pool
        .snapshot()
        .into_iter()
        .map(|s| {
            serde_json::json!({
                "index": s.index,
                "requests": s.requests,
                "in_flight": s.in_flight,
                "queued": s.queued,
                "errors": s.errors,
                "cpu_ms": s.cpu_micros as f64 / 1000.0,
                "cpu_limit_hits": s.cpu_limit_hits,
                "restarts": s.restarts,
                "memory_bytes": s.memory_bytes,
            })
        })
        .collect();
    let limits = &worker.limits;
    serde_json::json!({
        "main": worker.main.display().to_string(),
        "bindings": bindings,
        "isolate_pool": {
            "size": pool.size(),
            "isolates": isolates,
        },
        "limits": {
            "cpu_ms": limits.cpu_ms,
            "memory_bytes": limits.memory_bytes,
            "max_request_body_bytes": limits.max_request_body_bytes,
            "max_queued_requests": limits.max_queued_requests,
        },
    })
}
