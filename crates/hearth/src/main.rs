//! The `hearth` binary: argv, logging and wiring. The only crate that knows
//! the command line.

mod cli;
mod commands;
mod progress;
mod project;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("HEARTH_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            // A failed `[build].command` passes its own exit status on, as
            // wrangler does.
            match err.downcast_ref::<commands::build::BuildFailed>() {
                Some(failed) => failed
                    .code
                    .and_then(|c| u8::try_from(c).ok())
                    .filter(|c| *c != 0)
                    .map_or(ExitCode::FAILURE, ExitCode::from),
                None => ExitCode::FAILURE,
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Kv { command } => commands::kv::run(command),
        Command::D1 { command } => commands::d1::run(command),
        Command::R2 { command } => commands::r2::run(command),
        Command::Queues { command } => commands::queues::run(command),
        Command::Analytics { command } => commands::analytics::run(command),
        Command::Ai { command } => commands::ai::run(command),
        Command::Vectorize { command } => commands::vectorize::run(command),
        Command::Workflows { command } => commands::workflows::run(command),
        Command::Keys { command } => commands::edge::keys(command),
        Command::Security { command } => commands::edge::security(command),
        Command::Cluster { command } => commands::cluster::run(command),
        Command::Migrate(args) => commands::migrate::run(args),
        Command::Gateway(args) => commands::ai_gateway::serve(args),
        Command::AiGateway { command } => commands::ai_gateway::run(command),
        Command::Serve(args) => commands::serve::run(args),
        Command::Dev(args) => commands::serve::run_with(args, true),
        Command::Config(args) => {
            let project = project::Project::load(&args)?;
            commands::print_stdout(&serde_json::to_string_pretty(&project.config)?)
        }
    }
}

/// The error and its causes on one line, as `{:#}` prints them, but without
/// a cause whose text the line already holds: errors that show their source
/// in their own message would otherwise print it twice.
fn error_text(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
