//! `hearth kv key put|get|list|delete` and `hearth kv bulk put|get|delete`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use hearth_kv::{GetOptions, KvNamespace, KvValue, ListOptions, PutOptions};
use serde_json::{Map, Value};

use crate::cli::{KvBulkCommand, KvCommand, KvKeyCommand};
use crate::commands::{ignore_broken_pipe, print_stdout};
use crate::progress;
use crate::project::Project;

/// Fields of a bulk-put entry, as wrangler documents them.
const BULK_FIELDS: [&str; 6] = [
    "key",
    "value",
    "expiration",
    "expiration_ttl",
    "metadata",
    "base64",
];

/// How a bulk-put entry must look; shown when one does not.
const BULK_SHAPE: &str = "Each item in the array should be an object that matches:\n\n\
interface KeyValue {\n  key: string;\n  value: string;\n  expiration?: number;\n  \
expiration_ttl?: number;\n  metadata?: object;\n  base64?: boolean;\n}";

/// At most this many bad entries are listed; the rest are counted.
const MAX_REPORTED: usize = 10;

pub fn run(command: KvCommand) -> Result<()> {
    match command {
        KvCommand::Key { command } => key(command),
        KvCommand::Bulk { command } => bulk(command),
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
            let project = Project::load(&project)?;
            let id = project.kv_namespace_id(&target)?;
            let kv = project.kv_namespace(&target)?;
            let mut options = PutOptions::new();
            if let Some(ttl) = ttl {
                options = options.expiration_ttl(ttl);
            }
            if let Some(expiration) = expiration {
                options = options.expiration(expiration);
            }
            if let Some(metadata) = metadata {
                let json: Value = serde_json::from_str(&metadata)
                    .with_context(|| format!("--metadata is not valid JSON: {metadata}"))?;
                options = options.metadata(json);
            }
            let bytes = match (value, path) {
                (Some(v), _) => {
                    eprintln!("Writing the value \"{v}\" to key \"{key}\" on namespace {id}.");
                    v.into_bytes()
                }
                (None, Some(p)) => {
                    let bytes =
                        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                    eprintln!(
                        "Writing the contents of {} to the key \"{key}\" on namespace {id}.",
                        p.display()
                    );
                    bytes
                }
                (None, None) => bail!("Exactly one of the arguments value and --path is required"),
            };
            kv.put(&key, &bytes, &options)?;
        }
        KvKeyCommand::Get {
            key,
            text,
            target,
            project,
        } => {
            let kv = Project::load(&project)?.kv_namespace(&target)?;
            let Some(entry) = kv.get_entry(&key, None)? else {
                bail!("Value not found");
            };
            let mut out = std::io::stdout().lock();
            // wrangler prints `--text` values as a line, raw values as they are.
            let written = if text {
                out.write_all(entry.text().as_bytes())
                    .and_then(|()| out.write_all(b"\n"))
            } else {
                out.write_all(entry.array_buffer())
            };
            ignore_broken_pipe(written.and_then(|()| out.flush()))?;
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
            print_stdout(&serde_json::to_string_pretty(&keys)?)?;
        }
        KvKeyCommand::Delete {
            key,
            target,
            project,
        } => {
            let project = Project::load(&project)?;
            let id = project.kv_namespace_id(&target)?;
            let kv = project.kv_namespace(&target)?;
            eprintln!("Deleting the key \"{key}\" on namespace {id}.");
            kv.delete(&key)?;
        }
    }
    Ok(())
}

fn bulk(command: KvBulkCommand) -> Result<()> {
    match command {
        KvBulkCommand::Put {
            file,
            target,
            project,
        } => {
            let kv = Project::load(&project)?.kv_namespace(&target)?;
            let written = bulk_put(&kv, &file)?;
            eprintln!("Success! Wrote {written} key-value pairs.");
        }
        KvBulkCommand::Get {
            file,
            target,
            project,
        } => {
            let kv = Project::load(&project)?.kv_namespace(&target)?;
            let keys = read_key_list(&file)?;
            let mut out = Map::new();
            for key in keys {
                let value = match kv.get(&key, &GetOptions::text())? {
                    Some(KvValue::Text(t)) => Value::String(t),
                    Some(_) | None => Value::Null,
                };
                let mut entry = Map::new();
                entry.insert("value".into(), value);
                out.insert(key, Value::Object(entry));
            }
            print_stdout(&serde_json::to_string_pretty(&out)?)?;
        }
        KvBulkCommand::Delete {
            file,
            force: _,
            target,
            project,
        } => {
            let kv = Project::load(&project)?.kv_namespace(&target)?;
            let keys = read_key_list(&file)?;
            let bar = progress::bar(keys.len() as u64, "keys");
            for key in &keys {
                kv.delete(key)
                    .with_context(|| format!("deleting key \"{key}\""))?;
                bar.inc(1);
            }
            bar.finish_and_clear();
            eprintln!("Success! Deleted {} keys.", keys.len());
        }
    }
    Ok(())
}

fn read_json(file: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", file.display()))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The keys of a bulk get/delete file: strings or `{"name": ...}` objects.
fn read_key_list(file: &Path) -> Result<Vec<String>> {
    let content = read_json(file)?;
    let Value::Array(items) = content else {
        bail!(
            "Unexpected JSON input from \"{}\".\nExpected an array of strings but got type \"{}\".",
            file.display(),
            type_name(&content)
        );
    };
    let mut keys = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = match item {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        };
        match key {
            Some(k) => keys.push(k),
            None => errors.push(format!(
                "The item at index {i} is type: \"{}\" - {item}",
                type_name(item)
            )),
        }
    }
    if !errors.is_empty() {
        bail!(
            "Unexpected JSON input from \"{}\".\nExpected an array of strings or objects with a \"name\" key.\n{}",
            file.display(),
            report(errors)
        );
    }
    Ok(keys)
}

fn report(mut lines: Vec<String>) -> String {
    let extra = lines.len().saturating_sub(MAX_REPORTED);
    lines.truncate(MAX_REPORTED);
    if extra > 0 {
        lines.push(format!("... and {extra} more"));
    }
    lines.join("\n")
}

/// One entry's shape problem, or `None` when it matches wrangler's `KeyValue`.
fn shape_problem(item: &Value) -> Option<String> {
    let Value::Object(o) = item else {
        return Some(format!("is {item}"));
    };
    let wrong = |field: &str, ok: fn(&Value) -> bool, required: bool| match o.get(field) {
        None => required,
        Some(v) => !ok(v),
    };
    let bad = wrong("key", Value::is_string, true)
        || wrong("value", Value::is_string, true)
        || wrong("expiration", Value::is_number, false)
        || wrong("expiration_ttl", Value::is_number, false)
        || wrong("metadata", |v| v.is_object() || v.is_null(), false)
        || wrong("base64", Value::is_boolean, false);
    bad.then(|| format!("is {item}"))
}

/// Validates the whole file before writing anything, so a bad entry at the
/// end does not leave the namespace half-written.
pub fn bulk_put(kv: &KvNamespace, file: &Path) -> Result<usize> {
    let name = file.display();
    let content = read_json(file)?;
    let Value::Array(items) = content else {
        bail!(
            "Unexpected JSON input from \"{name}\".\nExpected an array of key-value objects but got type \"{}\".",
            type_name(&content)
        );
    };

    let mut shape_errors = Vec::new();
    let mut warnings = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(problem) = shape_problem(item) {
            shape_errors.push(format!("The item at index {i} {problem}"));
        } else if let Value::Object(o) = item {
            let unexpected: Vec<&str> = o
                .keys()
                .map(String::as_str)
                .filter(|k| !BULK_FIELDS.contains(k))
                .collect();
            if !unexpected.is_empty() {
                warnings.push(format!(
                    "The item at index {i} contains unexpected properties: {}.",
                    serde_json::to_string(&unexpected)?
                ));
            }
        }
    }
    if !warnings.is_empty() {
        eprintln!(
            "warning: Unexpected key-value properties in \"{name}\".\n{}",
            report(warnings)
        );
    }
    if !shape_errors.is_empty() {
        bail!(
            "Unexpected JSON input from \"{name}\".\n{BULK_SHAPE}\n\n{}",
            report(shape_errors)
        );
    }

    // Shapes are right; now every rule `put` enforces, still before any write.
    let mut entries = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match checked_entry(kv, item) {
            Ok(entry) => entries.push(entry),
            Err(e) => errors.push(format!("The item at index {i} {e}")),
        }
    }
    if !errors.is_empty() {
        bail!(
            "Invalid entries in \"{name}\"; nothing was written.\n{}",
            report(errors)
        );
    }

    // One transaction: a crash mid-way leaves the namespace as it was.
    let spinner = progress::spinner(format!("writing {} keys", entries.len()));
    kv.put_many(&entries)
        .with_context(|| format!("writing the entries of \"{name}\""))?;
    spinner.finish_and_clear();
    Ok(entries.len())
}

/// An entry whose shape was checked, turned into a put and validated.
fn checked_entry(kv: &KvNamespace, item: &Value) -> Result<(String, Vec<u8>, PutOptions)> {
    let field = |name: &str| item.get(name).filter(|v| !v.is_null());
    let key = field("key")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("has no key"))?
        .to_owned();
    let value = field("value").and_then(Value::as_str).unwrap_or_default();
    let base64 = field("base64").and_then(Value::as_bool).unwrap_or(false);
    let bytes = if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .map_err(|e| anyhow!("(key \"{key}\"): value is not valid base64: {e}"))?
    } else {
        value.as_bytes().to_vec()
    };
    let mut options = PutOptions::new();
    if let Some(e) = field("expiration").and_then(Value::as_f64) {
        options = options.expiration(e);
    }
    if let Some(t) = field("expiration_ttl").and_then(Value::as_f64) {
        options = options.expiration_ttl(t);
    }
    if let Some(m) = field("metadata") {
        options = options.metadata(m.clone());
    }
    kv.validate_put(&key, bytes.len(), &options)
        .map_err(|e| anyhow!("(key \"{key}\"): {e}"))?;
    Ok((key, bytes, options))
}
