//! Serves one worker file: `cargo run --release -p hearth-http --example serve -- path/to/index.js [addr]`.

use hearth_http::{ServeOptions, WorkerConfig};

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let Some(main) = args.next() else {
        eprintln!("usage: serve <main.js> [listen-addr]");
        std::process::exit(2);
    };
    let mut opts = ServeOptions::new(WorkerConfig::new(main));
    if let Some(addr) = args.next() {
        match addr.parse() {
            Ok(a) => opts.listen = a,
            Err(e) => {
                eprintln!("bad address {addr}: {e}");
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = hearth_http::serve(opts, hearth_http::shutdown_signal()).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
