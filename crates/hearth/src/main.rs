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
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Kv { command } => commands::kv::run(command),
        Command::D1 { command } => commands::d1::run(command),
        Command::R2 { command } => commands::r2::run(command),
        Command::Queues { command } => commands::queues::run(command),
        Command::Workflows { command } => commands::workflows::run(command),
        Command::Serve(args) => commands::serve::run(args),
        Command::Dev(args) => commands::serve::run_with(args, true),
        Command::Config(args) => {
            let project = project::Project::load(&args)?;
            commands::print_stdout(&serde_json::to_string_pretty(&project.config)?)
        }
    }
}
