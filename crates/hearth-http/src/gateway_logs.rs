//! Cloudflare's "List Gateway Logs" API at its own path,
//! `GET /client/v4/accounts/<account id>/ai-gateway/gateways/<gateway>/logs`,
//! over the logs of `--ai-gateway`, so that code reading gateway costs from
//! Cloudflare's API reads Hearth's the same way. Same access rule as the
//! Analytics Engine SQL API at Cloudflare's path (`--analytics-token`).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use serde_json::{Value, json};

use crate::{Body, full};

/// Cloudflare's page size bound for this API.
const MAX_PER_PAGE: u64 = 50;
const DEFAULT_PER_PAGE: u64 = 20;

/// The gateway id when `path` is the logs API's address (any account id:
/// one server holds one account).
pub(crate) fn gateway_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/client/v4/accounts/")?;
    let (account, rest) = rest.split_once('/')?;
    let gateway = rest
        .strip_prefix("ai-gateway/gateways/")?
        .strip_suffix("/logs")?;
    (!account.is_empty() && !gateway.is_empty() && !gateway.contains('/')).then_some(gateway)
}

fn answer(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, code: u32, message: &str) -> Response<Body> {
    answer(
        status,
        &json!({ "success": false, "errors": [{ "code": code, "message": message }], "messages": [], "result": null }),
    )
}

/// `page` and `per_page` from the query string, checked.
fn paging(query: Option<&str>) -> Result<(u64, u64), String> {
    let (mut page, mut per_page) = (1, DEFAULT_PER_PAGE);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let n = || {
            v.parse::<u64>()
                .map_err(|_| format!("{k} must be a positive integer, not {v:?}"))
        };
        match k {
            "page" => page = n()?,
            "per_page" => per_page = n()?,
            _ => {}
        }
    }
    if page == 0 {
        return Err("page must be 1 or more".into());
    }
    if per_page == 0 || per_page > MAX_PER_PAGE {
        return Err(format!("per_page must be 1 to {MAX_PER_PAGE}"));
    }
    Ok((page, per_page))
}

/// A Hearth log row in the API's shape: `created_at` as an ISO date,
/// `metadata` as a JSON string, no bodies.
fn entry(row: &Value) -> Value {
    let created = row["created_at"].as_i64().unwrap_or(0);
    let metadata = match &row["metadata"] {
        Value::Null => Value::Null,
        m => Value::String(m.to_string()),
    };
    json!({
        "id": row["id"],
        "created_at": hearth_core::calendar::UtcDateTime::from_unix_ms(created).iso(),
        "provider": row["provider"],
        "model": row["model"],
        "path": row["path"],
        "status_code": row["status_code"],
        "success": row["success"],
        "cached": row["cached"],
        "step": row["step"],
        "tokens_in": row["tokens_in"],
        "tokens_out": row["tokens_out"],
        "cost": row["cost"],
        "duration": row["duration"],
        "metadata": metadata,
    })
}

pub(crate) fn list(
    gateways: &hearth_ai_gateway::Gateways,
    gateway_id: &str,
    method: &http::Method,
    query: Option<&str>,
) -> Response<Body> {
    if method != http::Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, 7001, "only GET lists logs");
    }
    let Some(gateway) = gateways.get(gateway_id) else {
        return error(
            StatusCode::NOT_FOUND,
            7002,
            &format!("no gateway {gateway_id:?}"),
        );
    };
    let (page, per_page) = match paging(query) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, 7003, &e),
    };
    let (rows, total) = match gateway.list_logs(page, per_page) {
        Ok(v) => v,
        // Logs are not collected: there are none.
        Err(hearth_ai_gateway::logs::LogError::Stopped) => (Vec::new(), 0),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, 7000, &e.to_string()),
    };
    let result: Vec<Value> = rows.iter().map(entry).collect();
    answer(
        StatusCode::OK,
        &json!({
            "success": true,
            "errors": [],
            "messages": [],
            "result": result,
            "result_info": { "page": page, "per_page": per_page, "count": result.len(), "total_count": total },
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logs_path_names_its_gateway() {
        let p = "/client/v4/accounts/abc/ai-gateway/gateways/main/logs";
        assert_eq!(gateway_of(p), Some("main"));
        assert_eq!(
            gateway_of("/client/v4/accounts//ai-gateway/gateways/main/logs"),
            None
        );
        assert_eq!(
            gateway_of("/client/v4/accounts/a/ai-gateway/gateways/x/y/logs"),
            None
        );
        assert_eq!(
            gateway_of("/client/v4/accounts/a/analytics_engine/sql"),
            None
        );
    }

    #[test]
    fn paging_is_checked() {
        assert_eq!(paging(None), Ok((1, 20)));
        assert_eq!(
            paging(Some("page=3&per_page=50&order_by=created_at")),
            Ok((3, 50))
        );
        assert!(paging(Some("per_page=51")).is_err());
        assert!(paging(Some("page=0")).is_err());
        assert!(paging(Some("page=x")).is_err());
    }
}
