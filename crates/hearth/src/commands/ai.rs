//! `hearth ai models`, and the AI config `serve` loads with `--ai-config`.

use std::path::Path;

use anyhow::Result;
use hearth_ai::{Ai, AiConfig};

use crate::cli::AiCommand;

pub fn run(command: AiCommand) -> Result<()> {
    match command {
        AiCommand::Models { ai_config } => {
            let ai = Ai::new(load_config(&ai_config)?);
            let models = ai.models();
            if models.is_empty() {
                println!("{}: no models", ai_config.display());
            }
            for m in models {
                println!("{}  {}", m.name, m.source);
                for (file, present) in m.files {
                    let state = if present { "" } else { "  (missing)" };
                    println!("    {}{state}", file.display());
                }
            }
            if let Some(p) = &ai.config().default_provider {
                println!("any other model  provider {p}");
            }
            Ok(())
        }
    }
}

/// Reads the AI config and each provider's API key from the variable it
/// names (only the binary reads the environment).
pub fn load_config(file: &Path) -> Result<AiConfig> {
    let mut config = AiConfig::load(file)?;
    for (name, p) in config.providers.iter_mut() {
        if let Some(var) = &p.api_key_env {
            match std::env::var(var) {
                Ok(key) => p.api_key = Some(key),
                Err(_) => tracing::warn!(
                    "{}: providers.{name}.api_key_env: {var} is not set; calls go without a key",
                    file.display()
                ),
            }
        }
    }
    for (name, m) in &config.models {
        if let hearth_ai::ModelEntry::Local { path } = m {
            let missing = hearth_ai::embed::missing_files(path);
            if !missing.is_empty() {
                tracing::warn!(
                    "{}: models.\"{name}\": {} lacks {}; calls to it fail with 3039",
                    file.display(),
                    path.display(),
                    missing.join(", ")
                );
            }
        }
    }
    Ok(config)
}
