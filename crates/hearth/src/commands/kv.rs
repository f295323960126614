//! `hearth kv key put|get|list|delete` and `hearth kv bulk put`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine;
use hearth_kv::{ListOptions, PutOptions};
use serde::Deserialize;
use serde_json::Value;

use crate::cli::{KvBulkCommand, KvCommand, KvKeyCommand};
use crate::progress;
use crate::project::Project;

pub fn run(command: KvCommand) -> Result<()> {
    match command {
        KvCommand::Key { command } => key(command),
        KvCommand::Bulk {
            command:
                KvBulkCommand::Put {
                    file,
                    target,
                    project,
                },
        } => {
            let kv = Project::load(&project)?.kv_namespace(&target)?;
            let written = bulk_put(&kv, &file)?;
            eprintln!("Wrote {written} key-value pairs.");
            Ok(())
        }
    }
}

fn key(command: KvKeyCommand) -> Result<()> {
    match command {
        KvKeyCommand::Put {
            key,
            value,
            path,
            ttl,
            expiration,
            metadata,
            target,
            project,
        } => {
            let kv = Project::load(&project)?.kv_namespace(&target)?;
            let bytes = match (value, path) {
                (Some(v), _) => v.into_bytes(),
                (None, Some(p)) => {
                    std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?
                }
                (None, None) => bail!("give a value or --path <file>"),
            };
            let mut options = PutOptions::new();
            if let Some(ttl) = ttl {
                options = options.expiration_ttl(ttl);
            }
            if let Some(expiration) = expiration {
                options = options.expiration(expiration);
            }
            if let Some(metadata) = metadata {
                let json: Value =
                    serde_json::from_str(&metadata).context("--metadata is not valid JSON")?;
                options = options.metadata(json);
            }
            kv.put(&key, &bytes, &options)?;
            eprintln!("Wrote key {key:?}.");
        }
        KvKeyCommand::Get {
            key,
            text,
            target,
            project,
        } => {
            let kv = Project::load(&project)?.kv_namespace(&target)?;
            let Some(entry) = kv.get_entry(&key, None)? else {
                bail!("key {key:?} not found");
            };
            let mut out = std::io::stdout().lock();
            if text {
                out.write_all(entry.text().as_bytes())?;
            } else {
                out.write_all(entry.array_buffer())?;
            }
            out.flush()?;
        }
        KvKeyCommand::List {
            prefix,
            target,
            project,
        } => {
            let kv = Project::load(&project)?.kv_namespace(&target)?;
            let mut keys = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut options = ListOptions::new();
                if let Some(p) = &prefix {
                    options = options.prefix(p.clone());
                }
                if let Some(c) = cursor.take() {
                    options = options.cursor(c);
                }
                let page = kv.list(&options)?;
                keys.extend(page.keys);
                match page.cursor {
                    Some(c) if !page.list_complete => cursor = Some(c),
                    _ => break,
                }
            }
            println!("{}", serde_json::to_string_pretty(&keys)?);
        }
        KvKeyCommand::Delete {
            key,
            target,
            project,
        } => {
            let kv = Project::load(&project)?.kv_namespace(&target)?;
            kv.delete(&key)?;
            eprintln!("Deleted key {key:?}.");
        }
    }
    Ok(())
}

/// One entry of a bulk file, in wrangler's format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkEntry {
    key: String,
    value: String,
    expiration: Option<f64>,
    expiration_ttl: Option<f64>,
    metadata: Option<Value>,
    #[serde(default)]
    base64: bool,
}

/// Validates the whole file before writing anything, so a bad entry at the
/// end does not leave the namespace half-written.
pub fn bulk_put(kv: &hearth_kv::KvNamespace, file: &Path) -> Result<usize> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let raw: Vec<Value> = serde_json::from_str(&text)
        .with_context(|| format!("{}: expected a JSON array of entries", file.display()))?;
    let mut entries = Vec::with_capacity(raw.len());
    for (i, value) in raw.into_iter().enumerate() {
        let entry: BulkEntry = serde_json::from_value(value)
            .with_context(|| format!("{}: [{i}]: not a valid entry", file.display()))?;
        let bytes = if entry.base64 {
            base64::engine::general_purpose::STANDARD
                .decode(&entry.value)
                .with_context(|| format!("{}: [{i}].value: invalid base64", file.display()))?
        } else {
            entry.value.clone().into_bytes()
        };
        let mut options = PutOptions::new();
        if let Some(e) = entry.expiration {
            options = options.expiration(e);
        }
        if let Some(t) = entry.expiration_ttl {
            options = options.expiration_ttl(t);
        }
        if let Some(m) = entry.metadata.clone() {
            options = options.metadata(m);
        }
        kv.validate_put(&entry.key, bytes.len(), &options)
            .with_context(|| format!("{}: [{i}] (key {:?})", file.display(), entry.key))?;
        entries.push((entry.key, bytes, options));
    }
    let bar = progress::bar(entries.len() as u64, "keys");
    for (key, bytes, options) in &entries {
        kv.put(key, bytes, options)
            .with_context(|| format!("writing key {key:?}"))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(entries.len())
}
