//! The `tsconfig.json` settings that change what a module means, read as
//! esbuild (and so Wrangler) reads them: the JSX transform (`jsx`,
//! `jsxImportSource`, `jsxFactory`, `jsxFragmentFactory`) and module
//! resolution (`baseUrl`, `paths`). The file used is the nearest one above
//! the module, up to the module root, with its `extends` chain (relative
//! files or packages in `node_modules`, at most [`MAX_EXTENDS_DEPTH`]
//! deep). Files under `node_modules` are left to their defaults.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// How many `extends` hops are followed before giving up.
pub const MAX_EXTENDS_DEPTH: usize = 16;

/// `compilerOptions.jsx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsxMode {
    /// `react-jsx`: the automatic runtime (`jsx()` from
    /// `<jsxImportSource>/jsx-runtime`).
    Automatic,
    /// `react-jsxdev`: the automatic runtime's development variant.
    AutomaticDev,
    /// `react`: classic `jsxFactory(...)` calls.
    Classic,
    /// `preserve` / `react-native`: JSX left as written, which no Workers
    /// runtime can parse, so a module containing JSX is refused.
    Preserve,
}

/// The settings of one `tsconfig.json`, its `extends` chain applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TsConfig {
    /// The file these settings came from.
    pub path: PathBuf,
    pub jsx: Option<JsxMode>,
    pub jsx_import_source: Option<String>,
    pub jsx_factory: Option<String>,
    pub jsx_fragment_factory: Option<String>,
    /// Absolute.
    pub base_url: Option<PathBuf>,
    /// `paths` patterns in file order, with their targets.
    pub paths: Vec<(String, Vec<String>)>,
    /// What `paths` targets are relative to: `baseUrl` if set, else the
    /// directory of the file that declared `paths`.
    pub paths_base: Option<PathBuf>,
}

/// A `tsconfig.json` that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid tsconfig {path}: {message}")]
pub struct TsConfigError {
    pub path: String,
    pub message: String,
}

impl TsConfig {
    /// Reads `path` and the files it extends. `stop` bounds the search for
    /// packages named in `extends` (the module root).
    pub fn load(
        path: &Path,
        stop: &Path,
        read: &mut dyn FnMut(&Path),
    ) -> Result<Self, TsConfigError> {
        let mut out = TsConfig {
            path: path.to_path_buf(),
            ..TsConfig::default()
        };
        apply(&mut out, path, stop, 0, read)?;
        if let Some(base) = &out.base_url {
            out.paths_base = Some(base.clone());
        }
        Ok(out)
    }

    /// Candidate files for a bare `specifier` through `paths`, in the
    /// order to try: the most specific matching pattern first (longest
    /// prefix before its `*`), each of its targets in order.
    pub fn path_candidates(&self, specifier: &str) -> Vec<PathBuf> {
        let Some(base) = &self.paths_base else {
            return Vec::new();
        };
        let mut best: Option<(usize, &Vec<String>, &str)> = None;
        for (pattern, targets) in &self.paths {
            let (matched, rank) = match pattern.split_once('*') {
                None => (pattern == specifier)
                    .then_some("")
                    .map(|s| (s, usize::MAX)),
                Some((pre, post)) => (specifier.len() >= pre.len() + post.len()
                    && specifier.starts_with(pre)
                    && specifier.ends_with(post))
                .then(|| {
                    (
                        &specifier[pre.len()..specifier.len() - post.len()],
                        pre.len(),
                    )
                }),
            }
            .map_or((None, 0), |(m, r)| (Some(m), r));
            if let Some(m) = matched
                && best.is_none_or(|(r, _, _)| rank > r)
            {
                best = Some((rank, targets, m));
            }
        }
        let Some((_, targets, star)) = best else {
            return Vec::new();
        };
        targets
            .iter()
            .map(|t| base.join(t.replacen('*', star, 1)))
            .collect()
    }
}

fn err(path: &Path, message: impl Into<String>) -> TsConfigError {
    TsConfigError {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn apply(
    out: &mut TsConfig,
    path: &Path,
    stop: &Path,
    depth: usize,
    read: &mut dyn FnMut(&Path),
) -> Result<(), TsConfigError> {
    if depth > MAX_EXTENDS_DEPTH {
        return Err(err(
            path,
            format!("\"extends\" chain is deeper than {MAX_EXTENDS_DEPTH} files"),
        ));
    }
    read(path);
    let text = std::fs::read_to_string(path).map_err(|e| err(path, e.to_string()))?;
    let value: Value = serde_json::from_str(&strip_jsonc(&text))
        .map_err(|e| err(path, format!("not JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(err(path, "not a JSON object"));
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    // Parents first, so this file's options win.
    let extends: Vec<&str> = match obj.get("extends") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(_) => {
            return Err(err(
                path,
                "\"extends\" must be a string or an array of strings",
            ));
        }
    };
    for spec in extends {
        let parent = find_extended(dir, spec, stop)
            .ok_or_else(|| err(path, format!("cannot find the config it extends, '{spec}'")))?;
        apply(out, &parent, stop, depth + 1, read)?;
    }
    let empty = Map::new();
    let opts = match obj.get("compilerOptions") {
        Some(Value::Object(o)) => o,
        None => &empty,
        Some(_) => return Err(err(path, "\"compilerOptions\" must be an object")),
    };
    let string = |key: &str| -> Result<Option<String>, TsConfigError> {
        match opts.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(err(path, format!("compilerOptions.{key} must be a string"))),
        }
    };
    if let Some(jsx) = string("jsx")? {
        out.jsx = Some(match jsx.to_ascii_lowercase().as_str() {
            "react-jsx" => JsxMode::Automatic,
            "react-jsxdev" => JsxMode::AutomaticDev,
            "react" => JsxMode::Classic,
            "preserve" | "react-native" => JsxMode::Preserve,
            other => {
                return Err(err(
                    path,
                    format!(
                        "compilerOptions.jsx '{other}' is not one of react-jsx, react-jsxdev, react, preserve, react-native"
                    ),
                ));
            }
        });
    }
    if let Some(s) = string("jsxImportSource")? {
        out.jsx_import_source = Some(s);
    }
    if let Some(s) = string("jsxFactory")? {
        out.jsx_factory = Some(s);
    }
    if let Some(s) = string("jsxFragmentFactory")? {
        out.jsx_fragment_factory = Some(s);
    }
    if let Some(s) = string("baseUrl")? {
        out.base_url = Some(dir.join(s));
    }
    match opts.get("paths") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            let mut paths = Vec::new();
            for (pattern, targets) in map {
                if pattern.matches('*').count() > 1 {
                    return Err(err(
                        path,
                        format!("compilerOptions.paths pattern '{pattern}' has more than one '*'"),
                    ));
                }
                let Some(list) = targets.as_array() else {
                    return Err(err(
                        path,
                        format!("compilerOptions.paths['{pattern}'] must be an array of strings"),
                    ));
                };
                let list: Vec<String> = list
                    .iter()
                    .map(|t| t.as_str().map(str::to_string))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        err(
                            path,
                            format!(
                                "compilerOptions.paths['{pattern}'] must be an array of strings"
                            ),
                        )
                    })?;
                paths.push((pattern.clone(), list));
            }
            out.paths = paths;
            // Without baseUrl, targets are relative to the declaring file.
            out.paths_base = Some(dir.to_path_buf());
        }
        Some(_) => return Err(err(path, "compilerOptions.paths must be an object")),
    }
    Ok(())
}

/// The file an `extends` entry names: relative to `dir`, or inside a
/// package in the nearest `node_modules` (searched up to `stop`).
fn find_extended(dir: &Path, spec: &str, stop: &Path) -> Option<PathBuf> {
    let with_json = |p: PathBuf| -> Option<PathBuf> {
        if p.is_file() {
            return Some(p);
        }
        let mut s = p.clone().into_os_string();
        s.push(".json");
        let j = PathBuf::from(s);
        if j.is_file() {
            return Some(j);
        }
        let t = p.join("tsconfig.json");
        t.is_file().then_some(t)
    };
    if spec.starts_with("./") || spec.starts_with("../") || Path::new(spec).is_absolute() {
        return with_json(dir.join(spec));
    }
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if let Some(found) = with_json(d.join("node_modules").join(spec)) {
            return Some(found);
        }
        if d == stop {
            break;
        }
        cur = d.parent();
    }
    None
}

/// JSON with comments and trailing commas (what `tsconfig.json` allows)
/// made plain JSON. String contents are kept as they are.
pub fn strip_jsonc(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                out.push(b'"');
                i += 1;
                while i < b.len() {
                    out.push(b[i]);
                    if b[i] == b'\\' && i + 1 < b.len() {
                        out.push(b[i + 1]);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    if b[i - 1] == b'"' {
                        break;
                    }
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(b.len());
                out.push(b' ');
            }
            b',' => {
                // Dropped when only whitespace (or comments, already gone
                // from the output) separate it from a closing bracket.
                let mut j = i + 1;
                loop {
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if b.get(j) == Some(&b'/') && b.get(j + 1) == Some(&b'/') {
                        while j < b.len() && b[j] != b'\n' {
                            j += 1;
                        }
                    } else if b.get(j) == Some(&b'/') && b.get(j + 1) == Some(&b'*') {
                        j += 2;
                        while j < b.len() && !(b[j] == b'*' && b.get(j + 1) == Some(&b'/')) {
                            j += 1;
                        }
                        j = (j + 2).min(b.len());
                    } else {
                        break;
                    }
                }
                if !matches!(b.get(j), Some(b'}') | Some(b']')) {
                    out.push(b',');
                }
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonc_comments_and_trailing_commas() {
        let v: Value = serde_json::from_str(&strip_jsonc(
            "{\n // c\n \"a\": \"x//y\", /* b */ \"b\": [1, 2,],\n \"c\": \"q\\\"/*\", }",
        ))
        .unwrap();
        assert_eq!(v["a"], "x//y");
        assert_eq!(v["b"], serde_json::json!([1, 2]));
        assert_eq!(v["c"], "q\"/*");
    }

    #[test]
    fn paths_pick_the_longest_prefix() {
        let c = TsConfig {
            paths: vec![
                ("*".into(), vec!["vendor/*".into()]),
                ("@/*".into(), vec!["src/*".into(), "gen/*".into()]),
                ("@/lib/*".into(), vec!["lib/*".into()]),
                ("exact".into(), vec!["x/exact.ts".into()]),
            ],
            paths_base: Some(PathBuf::from("/p")),
            ..TsConfig::default()
        };
        assert_eq!(c.path_candidates("@/lib/a"), [PathBuf::from("/p/lib/a")]);
        assert_eq!(
            c.path_candidates("@/b"),
            [PathBuf::from("/p/src/b"), PathBuf::from("/p/gen/b")]
        );
        assert_eq!(c.path_candidates("exact"), [PathBuf::from("/p/x/exact.ts")]);
        assert_eq!(c.path_candidates("zod"), [PathBuf::from("/p/vendor/zod")]);
    }
}
