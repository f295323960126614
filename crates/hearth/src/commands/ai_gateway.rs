//! `hearth gateway --listen ADDR --config FILE` (AI Gateway on its own
//! listener) and `hearth ai-gateway logs <gateway>` (its logs and summary,
//! read from `<data dir>/ai-gateway/logs.sqlite`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hearth_ai_gateway::Gateways;
use hearth_core::{DataDir, SharedClock, SystemClock};

use crate::cli::{AiGatewayCommand, GatewayArgs};
use crate::commands::print_stdout;

/// Opens the gateways of `file`, logging under `data_dir`.
pub fn open(file: &Path, data_dir: &Path, clock: SharedClock) -> Result<Gateways> {
    Ok(hearth_ai_gateway::engine::open_file(file, data_dir, clock)?)
}

/// `.hearth/` beside the gateway file unless `--data-dir` says otherwise.
fn data_dir_of(config: Option<&Path>, data_dir: Option<PathBuf>) -> PathBuf {
    if let Some(d) = data_dir {
        return d;
    }
    let dir = config
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    DataDir::beside_config(dir).root().to_path_buf()
}

pub fn serve(args: GatewayArgs) -> Result<()> {
    let listen: SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("--listen {:?} is not an address (HOST:PORT)", args.listen))?;
    let data_dir = data_dir_of(Some(&args.config), args.data_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hearth-gateway")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let gateways = open(&args.config, &data_dir, SystemClock::shared())?;
        let ids = gateways.ids();
        let server = hearth_ai_gateway::server::GatewayServer::bind(listen, gateways)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        tracing::info!(
            "AI Gateway on http://{} (gateways: {}; base URL http://HOST/<gateway>/<provider>; logs in {})",
            server.local_addr()?,
            ids.join(", "),
            data_dir.display()
        );
        tokio::select! {
            () = server.run() => {}
            () = hearth_http::shutdown_signal() => {}
        }
        anyhow::Ok(())
    })
}

pub fn run(command: AiGatewayCommand) -> Result<()> {
    match command {
        AiGatewayCommand::Logs {
            gateway,
            config,
            data_dir,
            filter,
            limit,
            summary,
        } => {
            let dir = data_dir_of(config.as_deref(), data_dir);
            let path = hearth_ai_gateway::engine::logs_path(&dir);
            if !path.exists() {
                bail!(
                    "{}: no AI Gateway logs here yet (serve with --ai-gateway or run `hearth gateway` first)",
                    path.display()
                );
            }
            let conn = hearth_ai_gateway::logs::open_file(&path)?;
            if summary {
                let v = hearth_ai_gateway::logs::summary(&conn, &gateway, &filter)?;
                return print_stdout(&serde_json::to_string_pretty(&v)?);
            }
            let rows = hearth_ai_gateway::logs::query(&conn, &gateway, &filter, limit)?;
            let lines: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
            print_stdout(&lines.join("\n"))
        }
    }
}
