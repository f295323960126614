//! QuickJS's resolver and loader hooks, on top of [`crate::modules`].
//! Modules are named by their real path relative to the project root
//! (`src/index.ts`, `node_modules/hono/dist/index.js`), so stack traces read
//! like the project's own files. Nothing outside the root can be imported.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{Ctx, Error, Exception, Module, Result};

use crate::config::WorkerConfig;
use crate::error::StartError;
use crate::modules::node::{self, NodeCompat};
use crate::modules::typescript::{self, SourceError};
use crate::modules::{
    CLOUDFLARE_NODE, CLOUDFLARE_SOCKETS, CLOUDFLARE_WORKERS, CLOUDFLARE_WORKFLOWS, ImportKind,
    LoadedFiles, ModuleResolver, ResolveError, cjs,
};

pub(crate) use crate::modules::module_name;

const CLOUDFLARE_WORKERS_SOURCE: &str = "\
const cw = globalThis[Symbol.for('hearth.cloudflare:workers')];
export const DurableObject = cw.DurableObject;
export const WorkerEntrypoint = cw.WorkerEntrypoint;
export const WorkflowEntrypoint = cw.WorkflowEntrypoint;
export const RpcTarget = cw.RpcTarget;
export const env = cw.env;
export default { DurableObject, WorkerEntrypoint, WorkflowEntrypoint, RpcTarget, env };
";

/// `connect()` lives in the prelude, next to the natives it calls.
const CLOUDFLARE_SOCKETS_SOURCE: &str = "\
export const connect = globalThis[Symbol.for('hearth.sockets.connect')];
export default { connect };
";

/// `httpServerHandler` serves a worker's requests with a node:http server.
const CLOUDFLARE_NODE_SOURCE: &str = "\
import 'node:http';
export const httpServerHandler = globalThis[Symbol.for('hearth.node.httpServerHandler')];
export default { httpServerHandler };
";

/// A step callback throws this to fail its step at once, without retries.
const CLOUDFLARE_WORKFLOWS_SOURCE: &str = "\
export class NonRetryableError extends Error {
  constructor(message, name = 'NonRetryableError') {
    super(message);
    this.name = name;
    Object.defineProperty(this, Symbol.for('hearth.workflows.nonRetryable'), { value: true });
  }
}
export default { NonRetryableError };
";

fn node_compat(config: &WorkerConfig) -> NodeCompat {
    NodeCompat::from_config(
        config.compatibility_date.as_deref(),
        &config.compatibility_flags,
    )
}

/// Builds the resolver/loader pair for one isolate.
pub(crate) fn for_root(
    root: &Path,
    config: &WorkerConfig,
) -> std::io::Result<(FileResolver, FileLoader)> {
    let loaded = &config.loaded_files;
    let compat = node_compat(config);
    let resolver =
        Rc::new(ModuleResolver::with_loaded_files(root, loaded.clone())?.with_node_compat(compat));
    Ok((
        FileResolver {
            resolver: resolver.clone(),
        },
        FileLoader {
            resolver,
            loaded: loaded.clone(),
            process_env: node::process_env_json(compat, &config.vars, &config.secrets),
            bytecode_dir: config.bytecode_dir.clone(),
        },
    ))
}

/// The main module's source, transformed like any other module. Under
/// `nodejs_compat_v2` it first imports the module installing the `Buffer`
/// and `process` globals (on its first line, so line numbers stay).
pub(crate) fn main_source(
    root: &Path,
    name: &str,
    config: &WorkerConfig,
) -> std::result::Result<String, StartError> {
    let loaded = &config.loaded_files;
    let prelude = if node_compat(config).v2 {
        format!("import {};", js_string(node::GLOBALS_MODULE))
    } else {
        String::new()
    };
    let resolver = ModuleResolver::with_loaded_files(root, loaded.clone())
        .map_err(|source| StartError::Read {
            path: root.display().to_string(),
            source,
        })?
        .with_node_compat(node_compat(config));
    match module_source(&resolver, loaded, name) {
        // A hashbang must stay first; the prelude then opens line 2.
        Ok(s) => Ok(
            match s.strip_prefix("#!").and_then(|r| r.split_once('\n')) {
                Some((bang, rest)) if !prelude.is_empty() => format!("#!{bang}\n{prelude}{rest}"),
                _ => prelude + &s,
            },
        ),
        Err(LoadFailure::Io(path, source)) => Err(StartError::Read {
            path: path.display().to_string(),
            source,
        }),
        Err(LoadFailure::Syntax(e)) => {
            let location = format!("{name}:{}:{}", e.line, e.column);
            Err(StartError::Script {
                stack: format!("SyntaxError: {}\n    at {location}", e.message),
                message: format!("SyntaxError: {}", e.message),
                location,
            })
        }
        Err(LoadFailure::Other(message)) => Err(StartError::Script {
            location: name.to_string(),
            message,
            stack: String::new(),
        }),
    }
}

pub(crate) struct FileResolver {
    resolver: Rc<ModuleResolver>,
}

/// Throws `err` as a JS `Error` carrying Node's `code`.
fn throw_resolve(ctx: &Ctx<'_>, err: &ResolveError) -> Error {
    match Exception::from_message(ctx.clone(), &err.to_string()) {
        Ok(ex) => {
            let _ = ex.as_object().set("code", err.code());
            ctx.throw(ex.into_value())
        }
        Err(e) => e,
    }
}

impl Resolver for FileResolver {
    fn resolve<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> Result<String> {
        self.resolver
            .resolve(base, name, ImportKind::Import)
            .map(|r| r.name().to_string())
            .map_err(|e| throw_resolve(ctx, &e))
    }
}

pub(crate) struct FileLoader {
    resolver: Rc<ModuleResolver>,
    loaded: LoadedFiles,
    /// The JSON object `node:process` starts `process.env` with.
    process_env: String,
    /// Where compiled modules are kept across restarts.
    bytecode_dir: Option<PathBuf>,
}

enum LoadFailure {
    Io(PathBuf, std::io::Error),
    Syntax(SourceError),
    Other(String),
}

/// Reads module `name` and turns it into ES module source: data files
/// become default exports, TypeScript/JSX is transpiled (its source map
/// registered for stack traces), CommonJS is wrapped.
fn module_source(
    resolver: &ModuleResolver,
    loaded: &LoadedFiles,
    name: &str,
) -> std::result::Result<String, LoadFailure> {
    let path = resolver.root().join(name);
    loaded.record(&path);
    let bytes = std::fs::read(&path).map_err(|e| LoadFailure::Io(path.clone(), e))?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let text = |bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|e| LoadFailure::Other(format!("{name}: {e}")))
    };
    // Wrangler's default module rules: JSON, text and binary data files.
    let source = match ext.as_str() {
        "json" => {
            let text = text(bytes)?;
            format!(
                "const v = JSON.parse({});\nexport default v;\nexport {{ v as \"module.exports\" }};",
                js_string(&text)
            )
        }
        "txt" | "html" | "sql" => format!("export default {};", js_string(&text(bytes)?)),
        "bin" => {
            let list = bytes
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(",");
            format!("export default new Uint8Array([{list}]).buffer;")
        }
        _ if typescript::needs_transpile(&path) => {
            let source = text(bytes)?;
            let config = resolver
                .tsconfig_for(name)
                .map_err(|e| LoadFailure::Other(e.to_string()))?;
            let out = typescript::transpile_with(name, &source, config.as_deref())
                .map_err(LoadFailure::Syntax)?;
            if ext == "cts" {
                // Lines shift after transpiling anyway; the map covers them.
                let code = commonjs(resolver, name, &out.code, true).unwrap_or(out.code);
                crate::modules::register_position_map(name, out.map);
                code
            } else {
                crate::modules::register_position_map(name, out.map);
                out.code
            }
        }
        "cjs" => {
            let source = text(bytes)?;
            commonjs(resolver, name, &source, true).unwrap_or(source)
        }
        "js" => {
            let source = text(bytes)?;
            let dir = path.parent().unwrap_or(resolver.root());
            let is_module = resolver
                .package_scope(dir)
                .ok()
                .flatten()
                .is_some_and(|pj| pj.is_module);
            if is_module {
                source
            } else {
                commonjs(resolver, name, &source, false).unwrap_or(source)
            }
        }
        _ => text(bytes)?,
    };
    // AsyncLocalStorage (nodejs_compat) follows the context across awaits.
    if resolver.node_compat().enabled
        && !matches!(ext.as_str(), "json" | "txt" | "html" | "sql" | "bin")
        && let Some(instrumented) = crate::modules::async_context::instrument(&source)
    {
        return Ok(instrumented);
    }
    Ok(source)
}

/// How deep a chain of CommonJS re-exports is followed for export names.
const MAX_REEXPORT_DEPTH: usize = 32;

/// The ES module wrapping `source` if it is CommonJS.
fn commonjs(resolver: &ModuleResolver, name: &str, source: &str, force: bool) -> Option<String> {
    let mut info = cjs::analyze(source, force)?;
    let mut seen = vec![name.to_string()];
    for spec in info.reexports.clone() {
        for n in reexported_names(resolver, name, &spec, 1, &mut seen) {
            info.add_export(&n);
        }
    }
    let requires: Vec<(String, Option<String>)> = info
        .requires
        .iter()
        .map(|spec| {
            let target = resolver
                .resolve(name, spec, ImportKind::Require)
                .ok()
                .map(|r| match r {
                    crate::modules::Resolved::File(f) => format!("/{f}"),
                    crate::modules::Resolved::Builtin(b) => b,
                });
            (spec.clone(), target)
        })
        .collect();
    Some(cjs::wrap(name, source, &info, &requires))
}

/// The export names module `spec` (required from `importer`) offers, for a
/// CommonJS module passing its exports on: a CommonJS target's own names
/// and, recursively, those it re-exports; an ES module's named exports.
/// Files already visited (`seen`) and chains deeper than
/// [`MAX_REEXPORT_DEPTH`] add nothing; a target that cannot be resolved or
/// read adds nothing either (its `require()` then fails at run time).
fn reexported_names(
    resolver: &ModuleResolver,
    importer: &str,
    spec: &str,
    depth: usize,
    seen: &mut Vec<String>,
) -> Vec<String> {
    if depth > MAX_REEXPORT_DEPTH {
        return Vec::new();
    }
    let target = match resolver.resolve(importer, spec, ImportKind::Require) {
        Ok(crate::modules::Resolved::File(target)) => target,
        // A Node.js built-in passed on: its named exports.
        Ok(crate::modules::Resolved::Builtin(b)) => {
            return node::source(&b, "{}", resolver.node_compat())
                .and_then(|src| cjs::esm_export_names(&src))
                .unwrap_or_default();
        }
        Err(_) => return Vec::new(),
    };
    if seen.contains(&target) {
        return Vec::new();
    }
    seen.push(target.clone());
    let path = resolver.root().join(&target);
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let Ok(source) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let is_module = match ext.as_str() {
        "mjs" => true,
        "cjs" => false,
        "js" => {
            let dir = path.parent().unwrap_or(resolver.root());
            resolver
                .package_scope(dir)
                .ok()
                .flatten()
                .is_some_and(|pj| pj.is_module)
        }
        _ => return Vec::new(),
    };
    let info = if is_module {
        None
    } else {
        cjs::analyze(&source, ext == "cjs")
    };
    let Some(info) = info else {
        // An ES module (or a `.js` file with module syntax).
        return cjs::esm_export_names(&source).unwrap_or_default();
    };
    let mut names = info.exports.clone();
    for next in &info.reexports {
        names.extend(reexported_names(resolver, &target, next, depth + 1, seen));
    }
    names
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
        if name == CLOUDFLARE_WORKFLOWS {
            return Module::declare(ctx.clone(), name, CLOUDFLARE_WORKFLOWS_SOURCE);
        }
        if name == CLOUDFLARE_NODE {
            return Module::declare(ctx.clone(), name, CLOUDFLARE_NODE_SOURCE);
        }
        if name == CLOUDFLARE_SOCKETS {
            return Module::declare(ctx.clone(), name, CLOUDFLARE_SOCKETS_SOURCE);
        }
        if (name.starts_with("node:")
            || name == node::GLOBALS_MODULE
            || name == node::INTERNAL_MODULE)
            && let Some(source) = node::source(name, &self.process_env, self.resolver.node_compat())
        {
            return crate::bytecode::declare(ctx, name, &source, self.bytecode_dir.as_deref());
        }
        match module_source(&self.resolver, &self.loaded, name) {
            Ok(source) => {
                crate::bytecode::declare(ctx, name, &source, self.bytecode_dir.as_deref())
            }
            Err(LoadFailure::Io(_, e)) => Err(Error::new_loading_message(name, e.to_string())),
            Err(LoadFailure::Other(m)) => Err(Error::new_loading_message(name, m)),
            Err(LoadFailure::Syntax(e)) => Err(throw_syntax_error(ctx, name, &e)),
        }
    }
}

/// Throws a `SyntaxError` whose stack names the original `file:line:col`,
/// as QuickJS does for its own parse errors.
fn throw_syntax_error(ctx: &Ctx<'_>, name: &str, e: &SourceError) -> Error {
    let build = || -> Result<rquickjs::Value<'_>> {
        let ctor: rquickjs::Function = ctx.globals().get("SyntaxError")?;
        let err: rquickjs::Object = ctor.call((e.message.as_str(),))?;
        // Headed like every other stack read in JS (see the prelude).
        let stack = format!(
            "SyntaxError: {}\n    at {name}:{}:{}",
            e.message, e.line, e.column
        );
        err.set("stack", stack)?;
        Ok(err.into_value())
    };
    match build() {
        Ok(v) => ctx.throw(v),
        Err(err) => err,
    }
}

/// A JS string literal for arbitrary text.
fn js_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}
