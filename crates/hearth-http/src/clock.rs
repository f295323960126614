//! `/__hearth/clock`, served only with a test clock (`hearth serve
//! --test-clock`), under the internal endpoints' access rule:
//!
//! - `GET` answers `{"now_ms", "offset_ms"}`;
//! - `POST` with `{"advance_ms": N}` moves the clock N ms forward, with
//!   `{"set_ms": T}` to T ms since the epoch (never backwards), and answers
//!   as `GET` does. Every scheduler waiting on the clock looks again at once.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use hearth_core::{AdjustableClock, Clock};
use hearth_runtime::bindings::registry::MAX_INTERNAL_BODY;

use crate::{Body, State, full};

/// The endpoint's path.
pub(crate) const PATH: &str = "/__hearth/clock";

fn answer(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, message: String) -> Response<Body> {
    answer(status, &json!({ "error": message }))
}

fn now(clock: &AdjustableClock) -> Response<Body> {
    answer(
        StatusCode::OK,
        &json!({ "now_ms": clock.now_ms(), "offset_ms": clock.offset_ms() }),
    )
}

/// What a `POST` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Move {
    Advance(u64),
    Set(u64),
}

fn parse_move(body: &[u8]) -> Result<Move, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        format!("the body is not JSON ({e}); send {{\"advance_ms\": N}} or {{\"set_ms\": T}}")
    })?;
    let Some(obj) = v.as_object() else {
        return Err(
            "the body must be a JSON object: {\"advance_ms\": N} or {\"set_ms\": T}".into(),
        );
    };
    if let Some(k) = obj.keys().find(|k| *k != "advance_ms" && *k != "set_ms") {
        return Err(format!(
            "unknown field {k:?}; expected advance_ms or set_ms"
        ));
    }
    let field = |name: &str| -> Result<Option<u64>, String> {
        match obj.get(name) {
            None => Ok(None),
            Some(n) => n.as_u64().map(Some).ok_or_else(|| {
                format!("{name} must be a non-negative integer of milliseconds, got {n}")
            }),
        }
    };
    match (field("advance_ms")?, field("set_ms")?) {
        (Some(ms), None) => Ok(Move::Advance(ms)),
        (None, Some(at)) => Ok(Move::Set(at)),
        (Some(_), Some(_)) => Err("give advance_ms or set_ms, not both".into()),
        (None, None) => {
            Err("give advance_ms (ms to move forward) or set_ms (ms since the epoch)".into())
        }
    }
}

pub(crate) async fn handle(
    state: &State,
    clock: &Arc<AdjustableClock>,
    req: Request<Incoming>,
) -> Response<Body> {
    match *req.method() {
        Method::GET | Method::HEAD => return now(clock),
        Method::POST => {}
        _ => {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{PATH} answers GET and POST, not {}", req.method()),
            );
        }
    }
    let body = crate::conn::MinRate::new(req.into_body(), &state.options.connections);
    let body = match Limited::new(body, MAX_INTERNAL_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}"),
            );
        }
    };
    let moved = match parse_move(&body) {
        Ok(Move::Advance(ms)) => clock.advance_ms(ms),
        Ok(Move::Set(at)) => clock.set_ms(at),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match moved {
        Ok(at) => {
            tracing::warn!(target: "hearth::clock", now_ms = at, offset_ms = clock.offset_ms(), "test clock moved");
            now(clock)
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_are_parsed_and_bad_ones_named() {
        assert_eq!(
            parse_move(br#"{"advance_ms": 60000}"#),
            Ok(Move::Advance(60_000))
        );
        assert_eq!(parse_move(br#"{"set_ms": 5}"#), Ok(Move::Set(5)));
        assert!(parse_move(b"nope").unwrap_err().contains("not JSON"));
        assert!(
            parse_move(br#"{"advance_ms": -1}"#)
                .unwrap_err()
                .contains("advance_ms")
        );
        assert!(
            parse_move(br#"{"advance": 1}"#)
                .unwrap_err()
                .contains("\"advance\"")
        );
        assert!(
            parse_move(br#"{"advance_ms": 1, "set_ms": 2}"#)
                .unwrap_err()
                .contains("not both")
        );
        assert!(parse_move(br#"{}"#).is_err());
    }
}
