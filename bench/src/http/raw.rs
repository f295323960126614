//! The raw limit: a minimal hyper 1.x server answering each scenario with
//! the same bytes as the worker, without a JS engine or storage. It runs
//! as a child process of the benchmark (`hearth-bench raw-server`) so its
//! memory is measured on its own.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::cases::{self, CaseId};

#[derive(Debug, Clone, clap::Args)]
pub struct RawArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// The scenario whose responses to mimic.
    #[arg(long, value_enum)]
    pub case: CaseId,
}

const TEXT: &str = "text/plain;charset=UTF-8";
const JSON: &str = "application/json";

/// Serves until the process is killed.
pub fn serve(args: &RawArgs) -> Result<()> {
    // One worker thread per core, as a production hyper server would run.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let case = args.case;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(case, req));
                // A client closing mid-request is not the server's failure.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn answer(case: CaseId, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    // Read the whole body, as the workers do.
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, TEXT, "bad body")),
    };
    Ok(match (case, &method) {
        (CaseId::Hello, _) => reply(StatusCode::OK, TEXT, "Hello World!"),
        (CaseId::JsonEcho, &Method::POST) => reply(StatusCode::OK, JSON, body),
        (CaseId::Kv, &Method::GET) if path.starts_with("/k/") => {
            reply(StatusCode::OK, TEXT, cases::kv_seed_value())
        }
        (CaseId::D1Select | CaseId::D1Insert, &Method::GET) if path == "/select" => {
            match query
                .strip_prefix("id=")
                .and_then(|id| id.parse::<u64>().ok())
            {
                Some(id) => reply(StatusCode::OK, JSON, cases::d1_row(id)),
                None => reply(StatusCode::NOT_FOUND, TEXT, "not found"),
            }
        }
        (_, &Method::POST | &Method::PUT) => reply(StatusCode::OK, TEXT, "ok"),
        _ => reply(StatusCode::NOT_FOUND, TEXT, "not found"),
    })
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    res
}
