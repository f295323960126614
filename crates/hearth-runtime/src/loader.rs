//! Module resolution and loading. Modules are named by their path relative
//! to the module root (`src/index.js`), so stack traces read like the
//! project's own files. Imports may not leave the root: a worker cannot read
//! arbitrary host files through `import`.

use std::path::{Component, Path, PathBuf};

use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{Ctx, Error, Module, Result};

/// The built-in module exposing the Workers base classes.
pub const CLOUDFLARE_WORKERS: &str = "cloudflare:workers";

const CLOUDFLARE_WORKERS_SOURCE: &str = "\
const cw = globalThis[Symbol.for('hearth.cloudflare:workers')];
export const DurableObject = cw.DurableObject;
export const WorkerEntrypoint = cw.WorkerEntrypoint;
export const WorkflowEntrypoint = cw.WorkflowEntrypoint;
export const RpcTarget = cw.RpcTarget;
export const env = cw.env;
export default { DurableObject, WorkerEntrypoint, WorkflowEntrypoint, RpcTarget, env };
";

pub(crate) struct FileResolver {
    pub root: PathBuf,
}

/// Lexically normalises `a/./b/../c` to `a/c`; `None` if it climbs above
/// the start.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Module name (relative, `/`-separated) for a path under the root.
pub(crate) fn module_name(rel: &Path) -> String {
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl Resolver for FileResolver {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> Result<String> {
        if name == CLOUDFLARE_WORKERS {
            return Ok(name.to_string());
        }
        if !(name.starts_with("./") || name.starts_with("../") || name.starts_with('/')) {
            return Err(Error::new_resolving_message(
                base,
                name,
                "only relative imports and 'cloudflare:workers' are supported; bundle npm packages into the worker first",
            ));
        }
        let joined = if let Some(abs) = name.strip_prefix('/') {
            PathBuf::from(abs)
        } else {
            let base_dir = Path::new(base).parent().unwrap_or(Path::new(""));
            base_dir.join(name)
        };
        let Some(rel) = normalize(&joined) else {
            return Err(Error::new_resolving_message(
                base,
                name,
                "the import leaves the worker's module root",
            ));
        };
        let full = self.root.join(&rel);
        if !full.is_file() {
            return Err(Error::new_resolving_message(base, name, "file not found"));
        }
        Ok(module_name(&rel))
    }
}

pub(crate) struct FileLoader {
    pub root: PathBuf,
}

impl Loader for FileLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> Result<Module<'js, Declared>> {
        if name == CLOUDFLARE_WORKERS {
            return Module::declare(ctx.clone(), name, CLOUDFLARE_WORKERS_SOURCE);
        }
        let path = self.root.join(name);
        let bytes =
            std::fs::read(&path).map_err(|e| Error::new_loading_message(name, e.to_string()))?;
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        // Wrangler's default module rules: JSON, text and binary data files.
        let source = match ext.as_str() {
            "json" => {
                let text = String::from_utf8(bytes)
                    .map_err(|e| Error::new_loading_message(name, e.to_string()))?;
                format!("export default JSON.parse({});", js_string(&text))
            }
            "txt" | "html" | "sql" => {
                let text = String::from_utf8(bytes)
                    .map_err(|e| Error::new_loading_message(name, e.to_string()))?;
                format!("export default {};", js_string(&text))
            }
            "bin" => {
                let list = bytes
                    .iter()
                    .map(|b| b.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                format!("export default new Uint8Array([{list}]).buffer;")
            }
            _ => String::from_utf8(bytes)
                .map_err(|e| Error::new_loading_message(name, e.to_string()))?,
        };
        Module::declare(ctx.clone(), name, source)
    }
}

/// A JS string literal for arbitrary text.
fn js_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_refuses_climbing_out() {
        assert_eq!(
            normalize(Path::new("a/./b/../c.js")),
            Some(PathBuf::from("a/c.js"))
        );
        assert_eq!(normalize(Path::new("../x.js")), None);
        assert_eq!(normalize(Path::new("a/../../x.js")), None);
    }
}
