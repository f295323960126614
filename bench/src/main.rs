//! On-demand benchmarks of Hearth, run by hand (not in CI):
//!
//! - `storage`: each binding contract (KV, D1, R2) against the raw SQLite
//!   statements and file operations it is built on.
//! - `http`: the same worker scripts on Hearth, workerd, miniflare and a raw
//!   hyper server, under the same wrk load.
//! - `s3`: PUT/GET through the S3 endpoint against raw file writes/reads.

mod ai;
mod ai_gateway;
mod analytics;
mod cluster;
mod coldstart;
mod http;
mod machine;
mod measure;
mod s3;
mod storage;
mod upload;
mod vectorize;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "hearth-bench", about = "On-demand benchmarks of Hearth")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Binding contracts (KV, D1, R2) against raw SQLite and file operations;
    /// writes bench/STORAGE-RESULTS.md.
    Storage(storage::StorageArgs),
    /// The same workers on Hearth, workerd, miniflare and raw hyper under
    /// wrk; writes bench/RESULTS.md. bench/run-http.sh installs the peers.
    Http(http::HttpArgs),
    /// PUT/GET through the S3 endpoint against raw file writes and reads;
    /// writes bench/S3-RESULTS.md.
    S3(s3::S3Args),
    /// Analytics Engine ingest and GROUP BY, and Rate Limiting overhead and
    /// raw counter, against raw SQLite and a bare map; writes
    /// bench/ANALYTICS-RESULTS.md.
    Analytics(analytics::AnalyticsArgs),
    /// The Durable Object counter on 1 embedded node, 1 and 3 cluster
    /// nodes, and forwarded against local calls; writes
    /// bench/CLUSTER-RESULTS.md. Needs PostgreSQL.
    Cluster(cluster::ClusterArgs),
    /// AI Gateway against the provider double directly and LiteLLM's proxy;
    /// writes bench/AI-GATEWAY-RESULTS.md. bench/run-ai-gateway.sh installs
    /// LiteLLM.
    AiGateway(ai_gateway::AiGatewayArgs),
    /// The provider double the `ai-gateway` benchmark calls (started by it).
    #[command(hide = true)]
    ProviderDouble(ai_gateway::DoubleArgs),
    /// The gateway server the `ai-gateway` benchmark measures (started by it).
    #[command(hide = true)]
    GatewayServer(ai_gateway::ServerArgs),
    /// Workers AI's local embeddings against the PyPI package shipping the
    /// same model; writes bench/AI-RESULTS.md.
    Ai(ai::AiArgs),
    /// Vectorize through a worker against hnswlib on the same data;
    /// writes bench/VECTORIZE-RESULTS.md. bench/run-vectorize.sh installs
    /// the peer.
    Vectorize(vectorize::VectorizeArgs),
    /// A new isolate's start, hello world and a 1 MB bundle, compiled and
    /// from the bytecode cache, against raw QuickJS; idle RSS per isolate;
    /// writes bench/COLDSTART-RESULTS.md.
    ColdStart(coldstart::ColdStartArgs),
    /// A 1 GiB upload streamed through a worker into R2 against raw hyper
    /// writing it to a file, and the server's peak RSS; writes
    /// bench/UPLOAD-RESULTS.md.
    Upload(upload::UploadArgs),
    /// The raw hyper server the `http` benchmark measures (started by it).
    #[command(hide = true)]
    RawServer(http::RawArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Storage(args) => storage::run(args, &reproduce_command()),
        Command::Http(args) => http::run(args, &reproduce_command()),
        Command::S3(args) => s3::run(args, &reproduce_command()),
        Command::Analytics(args) => analytics::run(args, &reproduce_command()),
        Command::Cluster(args) => cluster::run(args, &reproduce_command()),
        Command::Ai(args) => ai::run(args, &reproduce_command()),
        Command::Vectorize(args) => vectorize::run(args, &reproduce_command()),
        Command::ColdStart(args) => coldstart::run(args, &reproduce_command()),
        Command::Upload(args) => upload::run(args, &reproduce_command()),
        Command::RawServer(args) => http::serve_raw(args),
        Command::AiGateway(args) => ai_gateway::run(args, &reproduce_command()),
        Command::ProviderDouble(args) => ai_gateway::serve_double(args),
        Command::GatewayServer(args) => ai_gateway::serve_gateway(args),
    }
}

/// The command that reproduces this run, with the arguments it was given.
fn reproduce_command() -> String {
    format!(
        "cargo run --release -p hearth-bench -- {}",
        shell_words(std::env::args().skip(1))
    )
}

/// Arguments joined for a POSIX shell, quoting those that need it.
fn shell_words<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let words: Vec<String> = args
        .into_iter()
        .map(|arg| {
            let arg = arg.as_ref();
            if !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_=.,/:".contains(c))
            {
                arg.to_owned()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage_args(extra: &[&str]) -> storage::StorageArgs {
        let argv = ["hearth-bench", "storage"].iter().chain(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Storage(args) => args,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn a_tiny_run_writes_a_complete_report() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("report.md");
        let args = storage_args(&[
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--scale",
            "0.001",
            "--threads",
            "2",
            "--kv-keys",
            "20",
            "--d1-rows",
            "50",
            "--r2-objects",
            "2",
            "--r2-object-bytes",
            "65536",
        ]);
        storage::run(&args, "cargo run --release -p hearth-bench -- storage").unwrap();
        let report = std::fs::read_to_string(&out).unwrap();
        for case in [
            "| KV get (hit, 1 KiB text) |",
            "| KV get (hit, 1 KiB), 2 threads |",
            "| KV put (1 KiB, new key) |",
            "| D1 SELECT by primary key, .first() |",
            "| D1 INSERT, .run() |",
            "| R2 get 64 KiB (whole body) |",
            "| R2 put 64 KiB (replace) |",
        ] {
            assert!(report.contains(case), "missing {case} in:\n{report}");
        }
        assert!(report.contains("```sh\ncargo run --release -p hearth-bench -- storage\n```"));
        assert!(report.contains("- Filesystem of the data directory: "));
        // The temporary data directory is gone; only the report is left.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from("report.md")]);
    }

    #[test]
    fn only_limits_the_groups() {
        let dir = tempfile::tempdir().unwrap();
        let args = storage_args(&[
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--no-write",
            "--only",
            "d1",
            "--scale",
            "0.001",
            "--d1-rows",
            "10",
        ]);
        assert_eq!(args.only, [storage::Group::D1]);
        storage::run(&args, "x").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn reproduce_command_quotes_what_the_shell_would_split() {
        assert_eq!(
            shell_words(["storage", "--data-dir", "/tmp/a b", "--scale", "0.5"]),
            "storage --data-dir '/tmp/a b' --scale 0.5"
        );
    }
}
