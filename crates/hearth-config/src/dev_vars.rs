//! Local secrets: `.dev.vars` (or `.dev.vars.<env>`) beside the config, then
//! `HEARTH_SECRET_<NAME>` process variables (only when one worker is served),
//! then `HEARTH_SECRET_<WORKER>__<NAME>` ones scoped to this worker.
//!
//! As in wrangler, `.dev.vars.<env>` is used *instead of* `.dev.vars` when an
//! environment is selected and that file exists (the two are not merged), and a
//! secret overrides a var of the same name.

use std::collections::BTreeMap;

use crate::build::{BindingNames, file_name};
use crate::parse::read_limited;
use crate::reader::{Diag, Syntax};
use crate::validate::is_js_identifier;
use crate::{Config, LoadOptions, SECRET_ENV_PREFIX, SECRET_SCOPE_SEPARATOR, secret_scope};

/// Parses dotenv text the way wrangler's `.dev.vars` reader does:
/// `KEY=value` lines, `#` comment lines, an optional `export ` prefix, values in
/// `"`, `'` or `` ` `` quotes (which may span lines; `\n` and `\r` are expanded
/// inside double quotes only), unquoted values cut at `#` and trimmed. A later
/// line wins over an earlier one with the same key.
///
/// Returns the values and, for lines that could not be read, `line N: ...` notes.
pub fn parse_dev_vars(text: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut values = BTreeMap::new();
    let mut notes = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = strip_export(line);
        let Some((key, rest)) = line.split_once('=') else {
            notes.push(format!("line {line_no}: expected KEY=value; line ignored"));
            continue;
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            notes.push(format!(
                "line {line_no}: invalid name {}; line ignored",
                serde_json::Value::String(key.to_string())
            ));
            continue;
        }
        let rest = rest.trim_start();
        let quote = rest
            .chars()
            .next()
            .filter(|c| matches!(c, '"' | '\'' | '`'));
        let value = match quote {
            Some(q) => {
                let mut body = rest[1..].to_string();
                let mut next = i;
                let closed = loop {
                    if let Some(end) = closing_quote(&body, q) {
                        body.truncate(end);
                        break true;
                    }
                    match lines.get(next) {
                        Some(more) => {
                            body.push('\n');
                            body.push_str(more);
                            next += 1;
                        }
                        None => break false,
                    }
                };
                if closed {
                    i = next;
                    if q == '"' {
                        body.replace("\\n", "\n").replace("\\r", "\r")
                    } else {
                        body
                    }
                } else {
                    notes.push(format!(
                        "line {line_no}: unterminated {q} quote; value read as written"
                    ));
                    unquoted(rest)
                }
            }
            None => unquoted(rest),
        };
        values.insert(key.to_string(), value);
    }
    (values, notes)
}

fn strip_export(line: &str) -> &str {
    match line.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => line,
    }
}

/// Byte index of the first `q` not preceded by a backslash.
fn closing_quote(s: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == q {
            return Some(i);
        }
    }
    None
}

fn unquoted(rest: &str) -> String {
    rest.split('#').next().unwrap_or("").trim().to_string()
}

/// Fills `config.secrets` and removes the vars they override.
pub(crate) fn apply_secrets(
    d: &mut Diag,
    config: &mut Config,
    opts: &LoadOptions,
    names: &BindingNames,
) {
    let dir = config.dir().to_path_buf();
    let mut secrets: BTreeMap<String, String> = BTreeMap::new();

    let base = dir.join(".dev.vars");
    let env_file = opts.env.map(|e| dir.join(format!(".dev.vars.{e}")));
    let chosen = env_file
        .filter(|p| p.is_file())
        .or_else(|| Some(base).filter(|p| p.is_file()));
    let mut file_diag = None;
    if let Some(path) = chosen {
        let mut dv = Diag::new(file_name(&path), Syntax::Toml);
        match read_limited(&path, &dv.file, opts.limits.max_file_bytes) {
            Ok(text) => {
                let (values, notes) = parse_dev_vars(&text);
                for note in notes {
                    dv.warn("", note);
                }
                secrets.extend(values);
            }
            Err(e) => dv.errors.extend(e.errors),
        }
        file_diag = Some(dv);
    }
    let mut dv = file_diag.unwrap_or_else(|| Diag::new("process environment", Syntax::Toml));

    // Only prefixed variables: the Worker must not see the whole process
    // environment, nor another worker's scoped secrets.
    let own_scope = format!("{}{SECRET_SCOPE_SEPARATOR}", secret_scope(&config.name));
    let served_scopes: Vec<String> = opts
        .served_workers
        .iter()
        .map(|w| format!("{}{SECRET_SCOPE_SEPARATOR}", secret_scope(w)))
        .collect();
    let mut process = Diag::new("process environment", Syntax::Toml);
    let mut scoped = BTreeMap::new();
    for (key, value) in &opts.process_env {
        let Some(rest) = key.strip_prefix(SECRET_ENV_PREFIX) else {
            continue;
        };
        if rest.is_empty() {
            d.warn("", format!("process variable {SECRET_ENV_PREFIX} has no secret name after the prefix; ignored"));
            continue;
        }
        if let Some(name) = rest.strip_prefix(&own_scope) {
            if name.is_empty() {
                process.warn(key, "has no secret name after the worker; ignored");
            } else {
                scoped.insert(name.to_string(), value.clone());
            }
            continue;
        }
        if rest.contains(SECRET_SCOPE_SEPARATOR) {
            // Another worker's secret.
            if !served_scopes.is_empty() && !served_scopes.iter().any(|s| rest.starts_with(s)) {
                process.warn(
                    key,
                    format!(
                        "scoped to a worker this process does not serve (serving: {}); ignored",
                        opts.served_workers.join(", ")
                    ),
                );
            }
            continue;
        }
        if opts.served_workers.len() > 1 {
            process.error(
                key,
                format!(
                    "an unscoped secret would reach every worker of this process ({}); scope it to one as {SECRET_ENV_PREFIX}<WORKER>{SECRET_SCOPE_SEPARATOR}{rest}, e.g. {SECRET_ENV_PREFIX}{own_scope}{rest}",
                    opts.served_workers.join(", ")
                ),
            );
            continue;
        }
        secrets.insert(rest.to_string(), value.clone());
    }
    secrets.extend(scoped);
    d.errors.extend(process.errors);
    d.warnings.extend(process.warnings);

    // With `secrets.required` declared, only those (and overrides of vars) are
    // loaded, and missing ones are reported, as wrangler does.
    if let Some(required) = &config.secrets_required {
        secrets.retain(|k, _| config.vars.contains_key(k) || required.contains(k));
        let missing: Vec<&str> = required
            .iter()
            .filter(|k| !secrets.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            d.warn(
                "secrets.required",
                format!(
                    "missing secrets: {}; set them in .dev.vars or as {SECRET_ENV_PREFIX}<NAME> process variables",
                    missing.join(", ")
                ),
            );
        }
    }

    for key in secrets.keys() {
        config.vars.remove(key);
        if !is_js_identifier(key) {
            dv.warn(
                key,
                "not a JavaScript identifier; reachable only as env[\"...\"]",
            );
        }
        if let Some((_, path)) = names.iter().find(|(n, p)| n == key && !is_text_binding(p)) {
            dv.warn(key, format!("has the same name as the binding at {path}"));
        }
    }
    config.secrets = secrets;
    d.errors.extend(dv.errors);
    d.warnings.extend(dv.warnings);
}

/// Whether a binding path declares a var or a required secret, which a secret
/// is meant to fill, rather than a resource binding it would hide.
fn is_text_binding(path: &str) -> bool {
    let local = match path.strip_prefix("env.") {
        // `env.NAME.rest`: environment names hold no dots in practice.
        Some(rest) => rest.split_once('.').map(|(_, r)| r).unwrap_or(rest),
        None => path,
    };
    local.starts_with("vars.") || local.starts_with("secrets.required[")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_basics() {
        let (v, notes) = parse_dev_vars(
            "# comment\nA=1\nexport B = two words \nC=\"line\\nbreak\"\nD='raw\\n'\nE=x # trailing\nF=\nG=\"multi\nline\"\nA=override\n",
        );
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(v["A"], "override");
        assert_eq!(v["B"], "two words");
        assert_eq!(v["C"], "line\nbreak");
        assert_eq!(v["D"], "raw\\n");
        assert_eq!(v["E"], "x");
        assert_eq!(v["F"], "");
        assert_eq!(v["G"], "multi\nline");
    }

    #[test]
    fn dotenv_bad_lines() {
        let (v, notes) = parse_dev_vars("JUSTTEXT\nBAD KEY=1\nQ=\"open\nOK=1\r\n");
        assert_eq!(v["OK"], "1");
        assert_eq!(v["Q"], "\"open");
        assert_eq!(
            notes,
            vec![
                "line 1: expected KEY=value; line ignored",
                "line 2: invalid name \"BAD KEY\"; line ignored",
                "line 3: unterminated \" quote; value read as written",
            ]
        );
    }
}
