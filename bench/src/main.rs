//! On-demand benchmarks of Hearth, run by hand (not in CI):
//!
//! - `storage`: each binding contract (KV, D1, R2) against the raw SQLite
//!   statements and file operations it is built on.
//!
//! Later subcommands will drive Hearth, workerd and miniflare over HTTP.

mod machine;
mod measure;
mod storage;

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Storage(args) => storage::run(args, &reproduce_command()),
    }
}

/// The command that reproduces this run, with the arguments it was given.
fn reproduce_command() -> String {
    let mut cmd = String::from("cargo run --release -p hearth-bench --");
    for arg in std::env::args().skip(1) {
        cmd.push(' ');
        if arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=.,/:".contains(c))
        {
            cmd.push_str(&arg);
        } else {
            cmd.push_str(&format!("'{}'", arg.replace('\'', r"'\''")));
        }
    }
    cmd
}
