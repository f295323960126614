//! HTTP entry points for non-`fetch` events:
//!
//! - `/__hearth/<prefix>/...` goes to the internal routes the workers'
//!   bindings registered (the queues pull consumer: see
//!   `hearth_runtime::bindings::queue`). With several workers, the first
//!   whose route claims the request answers, else the first with the
//!   prefix (which names what is wrong).
//! - `GET /__hearth/scheduled?cron=<expr>&time=<ms>` runs `scheduled()` on
//!   demand and answers the outcome as JSON. `/cdn-cgi/handler/scheduled`
//!   (and `/__scheduled` in dev mode, like `wrangler dev --test-scheduled`)
//!   answer as wrangler does: `ok`, or 500 `exception`. It lives here, not
//!   with the cron kind, because it picks its worker by HTTP routing.
//!
//! All of them follow the internal endpoints' access rule.
//!
//! The scheduled endpoints run the worker named by `?worker=<name>` when given, else the
//! worker the request routes to by its `Host` and path, as a normal request
//! would (the first worker when no `routes` match).
//!
//! `/__hearth/scheduled` runs only a cron of the worker's `triggers.crons`.
//! wrangler's test route runs any cron it is given, as Miniflare does (the
//! conformance suite records that), so it keeps doing so; it is reachable
//! only where every internal endpoint is.

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use hearth_runtime::bindings::registry::{InternalRequest, MAX_INTERNAL_BODY};

use crate::{Body, INTERNAL_PREFIX, State, full, text};

/// The registered prefix `path` starts with, and the rest after it.
fn route_of<'p>(state: &State, path: &'p str) -> Option<(&'p str, &'p str)> {
    let after = path.strip_prefix(INTERNAL_PREFIX)?;
    let (prefix, rest) = after.split_once('/')?;
    state
        .options
        .workers
        .iter()
        .flat_map(|w| &w.internal_routes)
        .any(|r| r.prefix() == prefix)
        .then_some((prefix, rest))
}

/// Whether this module answers `path`.
pub(crate) fn handles(state: &State, path: &str) -> bool {
    route_of(state, path).is_some()
        || path == "/__hearth/scheduled"
        || path == "/cdn-cgi/handler/scheduled"
        || (state.options.dev && path == "/__scheduled")
}

/// Whether `path` is Cloudflare's address of the Analytics Engine SQL
/// API, `/client/v4/accounts/<account id>/analytics_engine/sql` (any
/// account id: one server holds one account).
pub(crate) fn is_cloudflare_sql_api(path: &str) -> bool {
    path.strip_prefix("/client/v4/accounts/")
        .and_then(|rest| rest.strip_suffix("/analytics_engine/sql"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// Cloudflare's answer to a missing or wrong token.
pub(crate) fn sql_api_unauthorized() -> Response<Body> {
    json_response(
        StatusCode::UNAUTHORIZED,
        &json!({
            "success": false,
            "errors": [{ "code": 10000, "message": "Authentication error: Authorization: Bearer <--analytics-token> is required" }],
            "messages": [],
            "result": null,
        }),
    )
}

/// The SQL API at Cloudflare's path: the same route as
/// `/__hearth/analytics_engine/sql`.
pub(crate) async fn cloudflare_sql_api(state: &State, req: Request<Incoming>) -> Response<Body> {
    if route_of(state, "/__hearth/analytics_engine/sql").is_none() {
        return text(
            StatusCode::NOT_FOUND,
            "404 Not Found: no served worker declares analytics_engine_datasets\n".to_owned(),
        );
    }
    internal_route(state, req, "analytics_engine", "sql").await
}

pub(crate) async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if let Some((prefix, rest)) = route_of(state, &path) {
        return internal_route(state, req, prefix, rest).await;
    }
    scheduled(state, &req, path.starts_with(INTERNAL_PREFIX)).await
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Hands the request to the route of the worker that claims it, with its
/// body read up to the internal endpoints' limit.
async fn internal_route(
    state: &State,
    req: Request<Incoming>,
    prefix: &str,
    rest: &str,
) -> Response<Body> {
    let routes = || {
        state
            .options
            .workers
            .iter()
            .flat_map(|w| &w.internal_routes)
            .filter(|r| r.prefix() == prefix)
    };
    let Some(route) = routes()
        .find(|r| r.claims(rest))
        .or_else(|| routes().next())
        .cloned()
    else {
        return text(StatusCode::NOT_FOUND, "404 Not Found\n".to_owned());
    };
    let method = req.method().as_str().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let rest = rest.to_owned();
    let body = crate::conn::MinRate::new(req.into_body(), &state.options.connections);
    let body = match Limited::new(body, MAX_INTERNAL_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({
                    "success": false,
                    "errors": [{ "code": 400, "message": format!("cannot read the body: {e}") }],
                    "messages": [],
                    "result": null,
                }),
            );
        }
    };
    let answer = route
        .handle(InternalRequest {
            method,
            rest,
            query,
            body,
        })
        .await;
    let mut r = Response::new(full(answer.body));
    *r.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(answer.content_type),
    );
    r
}

/// Whether `cron` is one of `crons`, spacing aside.
fn is_configured(crons: &[String], cron: &str) -> bool {
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let cron = words(cron);
    !cron.is_empty() && crons.iter().any(|c| words(c) == cron)
}

fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The worker a scheduled request runs on: `?worker=<name>`, else routing;
/// an unknown name is an error naming the served workers.
fn scheduled_worker(state: &State, req: &Request<Incoming>) -> Result<usize, String> {
    match query_param(req, "worker") {
        Some(name) => state.index_of(&name).ok_or_else(|| {
            let names: Vec<&str> = state
                .options
                .workers
                .iter()
                .filter_map(|w| w.name.as_deref())
                .collect();
            format!("worker={name:?} is not a served worker (serving: {names:?})\n")
        }),
        None => Ok(state.route(state.request_host(req), req.uri().path())),
    }
}

async fn scheduled(state: &State, req: &Request<Incoming>, json_answer: bool) -> Response<Body> {
    let worker = match scheduled_worker(state, req) {
        Ok(i) => i,
        Err(message) => return text(StatusCode::NOT_FOUND, message),
    };
    let crons = &state.options.workers[worker].crons;
    let cron = query_param(req, "cron").unwrap_or_default();
    if json_answer && !is_configured(crons, &cron) {
        let listed: Vec<&str> = crons.iter().map(String::as_str).collect();
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "cron={cron:?} is not one of the worker's triggers.crons {listed:?}; /__hearth/scheduled runs configured crons only (wrangler's /cdn-cgi/handler/scheduled runs any)\n"
            ),
        );
    }
    let time = match query_param(req, "time") {
        None => state.options.clock.now_ms(),
        Some(t) => match t.parse::<u64>() {
            Ok(ms) => ms,
            Err(_) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("time={t:?} is not a number of milliseconds since the Unix epoch\n"),
                );
            }
        },
    };
    let id = format!(
        "{:016x}",
        state
            .next_id
            .fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed)
    );
    let outcome = state.pools[worker].scheduled(id, &cron, time).await;
    let status = if outcome.ok() {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    if json_answer {
        let mut v = json!({
            "outcome": if outcome.ok() { "ok" } else { "exception" },
            "cron": cron,
            "scheduledTime": time,
            "noRetry": outcome.no_retry,
        });
        if let Some(e) = &outcome.error {
            v["error"] = Value::String(e.clone());
        }
        return json_response(status, &v);
    }
    text(status, if outcome.ok() { "ok" } else { "exception" })
}
