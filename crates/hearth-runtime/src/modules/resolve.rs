//! Import resolution: relative paths with the extension and index probing
//! bundlers do, `#imports`, and bare specifiers looked up in `node_modules`
//! following Node's ESM algorithm (`exports` with conditions and `*`
//! patterns, then `module`, `main`, `index.js`).
//!
//! Everything a worker can import lies under the project root. The
//! `node_modules` walk stops at the root rather than continuing to `/`, and a
//! file reached through a symlink is judged by its real path, so neither an
//! ancestor directory's packages nor a link can hand the worker a host file.
//! A monorepo whose packages are hoisted above the worker's directory sets
//! `WorkerConfig::module_root` to the repository root.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use serde_json::{Map, Value};

use super::node::{self, NodeCompat};
use super::tsconfig::{TsConfig, TsConfigError};
use super::{
    CLOUDFLARE_NODE, CLOUDFLARE_SOCKETS, CLOUDFLARE_WORKERS, CLOUDFLARE_WORKFLOWS, LoadedFiles,
};

/// The `exports`/`imports` conditions honoured for `import`, in the set
/// Wrangler bundles Workers with. Keys of a conditional object are tried in
/// the object's own order; the first listed here (or `default`) wins.
pub const IMPORT_CONDITIONS: &[&str] = &["workerd", "worker", "browser", "import", "default"];
/// The conditions honoured for `require()` inside CommonJS modules.
pub const REQUIRE_CONDITIONS: &[&str] = &["workerd", "worker", "browser", "require", "default"];

/// Extensions tried, in order, for an import written without one (esbuild's
/// default order, which Wrangler uses, plus the `.m*`/`.c*` variants).
const PROBE_EXTENSIONS: &[&str] = &["tsx", "ts", "jsx", "js", "mts", "mjs", "cts", "cjs", "json"];

/// Node's built-in module names, so `import 'fs'` gets the built-in error
/// rather than a missing-package one.
const NODE_BUILTINS: &[&str] = &[
    "assert",
    "async_hooks",
    "buffer",
    "child_process",
    "cluster",
    "console",
    "constants",
    "crypto",
    "dgram",
    "diagnostics_channel",
    "dns",
    "domain",
    "events",
    "fs",
    "http",
    "http2",
    "https",
    "inspector",
    "module",
    "net",
    "os",
    "path",
    "perf_hooks",
    "process",
    "punycode",
    "querystring",
    "readline",
    "repl",
    "stream",
    "string_decoder",
    "sys",
    "timers",
    "tls",
    "trace_events",
    "tty",
    "url",
    "util",
    "v8",
    "vm",
    "wasi",
    "worker_threads",
    "zlib",
];

/// Which kind of reference is being resolved: `import` or CommonJS `require`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Import,
    Require,
}

impl ImportKind {
    fn conditions(self) -> &'static [&'static str] {
        match self {
            ImportKind::Import => IMPORT_CONDITIONS,
            ImportKind::Require => REQUIRE_CONDITIONS,
        }
    }
}

/// What an import names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A file under the root, by module name: its real path relative to
    /// the root, `/`-separated (`node_modules/hono/dist/index.js`).
    File(String),
    /// A module the host provides (`cloudflare:workers`).
    Builtin(String),
}

impl Resolved {
    /// The module name QuickJS knows the module by.
    pub fn name(&self) -> &str {
        match self {
            Resolved::File(n) | Resolved::Builtin(n) => n,
        }
    }
}

/// Why an import did not resolve. Messages follow Node's wording where Node
/// has one, and name every place that was searched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("Cannot find package '{package}' imported from {importer}; looked in: {}", looked.join(", "))]
    PackageNotFound {
        package: String,
        importer: String,
        looked: Vec<String>,
    },
    #[error("Cannot find module '{specifier}' imported from {importer}; looked for: {}", tried.join(", "))]
    ModuleNotFound {
        specifier: String,
        importer: String,
        tried: Vec<String>,
    },
    #[error(
        "Package subpath '{subpath}' is not defined by \"exports\" in {package_json} imported from {importer}"
    )]
    SubpathNotExported {
        subpath: String,
        package_json: String,
        importer: String,
    },
    #[error(
        "Package import specifier '{specifier}' is not defined in package {package_json} imported from {importer}"
    )]
    ImportNotDefined {
        specifier: String,
        package_json: String,
        importer: String,
    },
    #[error(
        "Invalid \"{field}\" target '{target}' defined in the package config {package_json} imported from {importer}"
    )]
    InvalidTarget {
        field: &'static str,
        target: String,
        package_json: String,
        importer: String,
    },
    #[error("Invalid package config {package_json}: {message}")]
    InvalidPackageConfig {
        package_json: String,
        message: String,
    },
    #[error("Invalid module specifier '{specifier}' imported from {importer}")]
    InvalidSpecifier { specifier: String, importer: String },
    #[error(
        "Cannot import '{specifier}' from {importer}: it leaves the worker's module root {root}"
    )]
    OutsideRoot {
        specifier: String,
        importer: String,
        root: String,
    },
    #[error(
        "No such module \"node:{module}\" imported from {importer}: Node.js built-in modules are not provided (on Workers they need the \"nodejs_compat\" compatibility flag); use a Web API or bundle a polyfill"
    )]
    NodeBuiltin { module: String, importer: String },
    #[error(
        "No such module \"node:{module}\" imported from {importer}: \"node:{module}\" is not implemented yet in Hearth (nodejs_compat is on; Hearth provides {available})"
    )]
    NodeNotImplemented {
        module: String,
        importer: String,
        available: String,
    },
    #[error(
        "No such module \"node:{module}\" imported from {importer}: node:fs needs compatibility date {date} or later, or the \"enable_nodejs_fs_module\" flag (and no \"disable_nodejs_fs_module\")",
        date = node::FS_DATE
    )]
    NodeFsOff { module: String, importer: String },

    #[error(
        "No such module \"{module}\" imported from {importer}: import Node.js built-ins as \"node:{module}\" (bare names need nodejs_compat_v2, implied by nodejs_compat from compatibility date {date})",
        date = node::V2_DATE
    )]
    NodePrefixRequired { module: String, importer: String },
    #[error("Unsupported import scheme in '{specifier}' imported from {importer}")]
    UnsupportedScheme { specifier: String, importer: String },
    #[error("{error} (read to resolve '{specifier}' imported from {importer})")]
    InvalidTsConfig {
        error: TsConfigError,
        specifier: String,
        importer: String,
    },
}

impl ResolveError {
    /// Node's error code for the failure, exposed as `err.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ResolveError::PackageNotFound { .. } | ResolveError::ModuleNotFound { .. } => {
                "ERR_MODULE_NOT_FOUND"
            }
            ResolveError::SubpathNotExported { .. } => "ERR_PACKAGE_PATH_NOT_EXPORTED",
            ResolveError::ImportNotDefined { .. } => "ERR_PACKAGE_IMPORT_NOT_DEFINED",
            ResolveError::InvalidTarget { .. } => "ERR_INVALID_PACKAGE_TARGET",
            ResolveError::InvalidPackageConfig { .. } => "ERR_INVALID_PACKAGE_CONFIG",
            ResolveError::InvalidSpecifier { .. } => "ERR_INVALID_MODULE_SPECIFIER",
            ResolveError::OutsideRoot { .. } => "ERR_MODULE_OUTSIDE_ROOT",
            ResolveError::NodeBuiltin { .. }
            | ResolveError::NodeNotImplemented { .. }
            | ResolveError::NodePrefixRequired { .. }
            | ResolveError::NodeFsOff { .. } => "ERR_UNKNOWN_BUILTIN_MODULE",
            ResolveError::UnsupportedScheme { .. } => "ERR_UNSUPPORTED_ESM_URL_SCHEME",
            ResolveError::InvalidTsConfig { .. } => "ERR_INVALID_TSCONFIG",
        }
    }
}

/// A parsed `package.json`, the fields resolution reads.
#[derive(Debug)]
pub(crate) struct PackageJson {
    pub path: PathBuf,
    pub name: Option<String>,
    pub is_module: bool,
    pub exports: Option<Value>,
    pub imports: Option<Value>,
    pub module: Option<String>,
    pub main: Option<String>,
}

/// Resolves imports for one worker. Caches `package.json` reads; create one
/// per isolate (the cache is not shared across threads).
pub struct ModuleResolver {
    root: PathBuf,
    packages: RefCell<HashMap<PathBuf, Option<Rc<PackageJson>>>>,
    /// The nearest `tsconfig.json` of each directory asked about.
    tsconfigs: RefCell<HashMap<PathBuf, Option<Rc<TsConfig>>>>,
    loaded: LoadedFiles,
    node: NodeCompat,
}

/// A resolved target of an `exports`/`imports` entry.
enum Target {
    Path(PathBuf),
    /// A bare specifier (allowed in `imports` only).
    Bare(String),
    /// `null`: explicitly not exported.
    Excluded,
}

struct Ctx<'a> {
    specifier: &'a str,
    importer: &'a str,
    kind: ImportKind,
}

impl ModuleResolver {
    /// `root` must exist; it is canonicalised so symlinked roots work.
    pub fn new(root: &Path) -> std::io::Result<Self> {
        Self::with_loaded_files(root, LoadedFiles::default())
    }

    pub(crate) fn with_loaded_files(root: &Path, loaded: LoadedFiles) -> std::io::Result<Self> {
        Ok(ModuleResolver {
            root: root.canonicalize()?,
            packages: RefCell::new(HashMap::new()),
            tsconfigs: RefCell::new(HashMap::new()),
            loaded,
            node: NodeCompat::default(),
        })
    }

    /// Resolves Node.js built-ins as `compat` allows (none by default).
    pub fn with_node_compat(mut self, compat: NodeCompat) -> Self {
        self.node = compat;
        self
    }

    /// Which parts of Node.js compatibility the worker has.
    pub fn node_compat(&self) -> NodeCompat {
        self.node
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves `specifier` imported from the module named `importer` (a
    /// path relative to the root, as [`Resolved::File`] names modules).
    pub fn resolve(
        &self,
        importer: &str,
        specifier: &str,
        kind: ImportKind,
    ) -> Result<Resolved, ResolveError> {
        let cx = Ctx {
            specifier,
            importer,
            kind,
        };
        if specifier == CLOUDFLARE_WORKERS
            || specifier == CLOUDFLARE_WORKFLOWS
            || specifier == CLOUDFLARE_SOCKETS
        {
            return Ok(Resolved::Builtin(specifier.to_string()));
        }
        if specifier == CLOUDFLARE_NODE {
            if !self.node.enabled {
                return Err(ResolveError::NodeBuiltin {
                    module: "http".to_string(),
                    importer: importer.to_string(),
                });
            }
            return Ok(Resolved::Builtin(specifier.to_string()));
        }
        if specifier == node::INTERNAL_MODULE && self.node.enabled {
            return Ok(Resolved::Builtin(specifier.to_string()));
        }
        if specifier == node::GLOBALS_MODULE && self.node.v2 {
            return Ok(Resolved::Builtin(specifier.to_string()));
        }
        if let Some(module) = specifier.strip_prefix("node:") {
            return self.node_builtin(module, importer);
        }
        if self.node.v2 && node::is_implemented(specifier) {
            return self.node_builtin(specifier, importer);
        }
        let importer_dir = self.importer_dir(importer);
        if specifier.starts_with("./")
            || specifier.starts_with("../")
            || specifier == "."
            || specifier == ".."
        {
            let rel = Path::new(importer)
                .parent()
                .unwrap_or(Path::new(""))
                .join(specifier);
            let Some(rel) = normalize(&rel) else {
                return Err(self.outside(&cx));
            };
            return self.resolve_file_or_dir(&self.root.join(rel), &cx);
        }
        if let Some(abs) = specifier.strip_prefix('/') {
            // Root-relative, as the worker sees its own tree.
            let Some(rel) = normalize(Path::new(abs)) else {
                return Err(self.outside(&cx));
            };
            return self.resolve_file_or_dir(&self.root.join(rel), &cx);
        }
        if specifier.starts_with('#') {
            return self.resolve_imports(&importer_dir, &cx);
        }
        if let Some(i) = specifier.find(':')
            && !specifier[..i].contains('/')
        {
            return Err(ResolveError::UnsupportedScheme {
                specifier: specifier.to_string(),
                importer: importer.to_string(),
            });
        }
        if let Some(found) = self.resolve_tsconfig(&cx)? {
            return Ok(found);
        }
        self.resolve_package(specifier, &importer_dir, &cx)
    }

    /// `node:<module>`: the built-in when enabled and implemented, else an
    /// error saying which of the two is missing.
    fn node_builtin(&self, module: &str, importer: &str) -> Result<Resolved, ResolveError> {
        if !self.node.enabled {
            return Err(ResolveError::NodeBuiltin {
                module: module.to_string(),
                importer: importer.to_string(),
            });
        }
        if (module == "fs" || module == "fs/promises") && !self.node.fs {
            return Err(ResolveError::NodeFsOff {
                module: module.to_string(),
                importer: importer.to_string(),
            });
        }
        if node::is_implemented(module) {
            return Ok(Resolved::Builtin(format!("node:{module}")));
        }
        Err(ResolveError::NodeNotImplemented {
            module: module.to_string(),
            importer: importer.to_string(),
            available: node::implemented(),
        })
    }

    /// The `tsconfig.json` governing module `name`: the nearest one in its
    /// directory or above, up to the root. Modules under `node_modules`
    /// have none (packages ship compiled code).
    pub(crate) fn tsconfig_for(&self, name: &str) -> Result<Option<Rc<TsConfig>>, TsConfigError> {
        if Path::new(name)
            .components()
            .any(|c| c.as_os_str() == "node_modules")
        {
            return Ok(None);
        }
        let start = self.importer_dir(name);
        let mut visited = Vec::new();
        let mut cur = Some(start.as_path());
        let mut found = None;
        while let Some(dir) = cur {
            if let Some(hit) = self.tsconfigs.borrow().get(dir) {
                found = Some(hit.clone());
                break;
            }
            visited.push(dir.to_path_buf());
            let candidate = dir.join("tsconfig.json");
            if candidate.is_file() {
                let loaded = &self.loaded;
                let config = TsConfig::load(&candidate, &self.root, &mut |p| loaded.record(p))?;
                found = Some(Some(Rc::new(config)));
                break;
            }
            if dir == self.root {
                break;
            }
            cur = dir.parent().filter(|p| p.starts_with(&self.root));
        }
        let found = found.unwrap_or(None);
        let mut cache = self.tsconfigs.borrow_mut();
        for dir in visited {
            cache.insert(dir, found.clone());
        }
        Ok(found)
    }

    /// A bare specifier through the importer's tsconfig `paths`, then
    /// relative to its `baseUrl`, as esbuild resolves them before
    /// `node_modules`. `None` when neither names an existing file.
    fn resolve_tsconfig(&self, cx: &Ctx<'_>) -> Result<Option<Resolved>, ResolveError> {
        let config =
            self.tsconfig_for(cx.importer)
                .map_err(|error| ResolveError::InvalidTsConfig {
                    error,
                    specifier: cx.specifier.to_string(),
                    importer: cx.importer.to_string(),
                })?;
        let Some(config) = config else {
            return Ok(None);
        };
        let mut candidates = config.path_candidates(cx.specifier);
        if let Some(base) = &config.base_url {
            candidates.push(base.join(cx.specifier));
        }
        for candidate in candidates {
            let mut tried = Vec::new();
            if let Some(found) = probe(&candidate, &mut tried) {
                return self.name_of(&found, cx).map(Some);
            }
        }
        Ok(None)
    }

    fn importer_dir(&self, importer: &str) -> PathBuf {
        let parent = Path::new(importer).parent().unwrap_or(Path::new(""));
        match normalize(parent) {
            Some(p) => self.root.join(p),
            None => self.root.clone(),
        }
    }

    fn outside(&self, cx: &Ctx<'_>) -> ResolveError {
        ResolveError::OutsideRoot {
            specifier: cx.specifier.to_string(),
            importer: cx.importer.to_string(),
            root: self.root.display().to_string(),
        }
    }

    /// The module name of an existing file, judged by its real path.
    fn name_of(&self, file: &Path, cx: &Ctx<'_>) -> Result<Resolved, ResolveError> {
        let real = file.canonicalize().map_err(|_| self.outside(cx))?;
        let rel = real
            .strip_prefix(&self.root)
            .map_err(|_| self.outside(cx))?;
        Ok(Resolved::File(module_name(rel)))
    }

    /// A relative import: the file, a TypeScript sibling of a `.js` name,
    /// the name plus an extension, or the directory's index.
    fn resolve_file_or_dir(&self, path: &Path, cx: &Ctx<'_>) -> Result<Resolved, ResolveError> {
        let mut tried = Vec::new();
        if let Some(found) = probe(path, &mut tried) {
            return self.name_of(&found, cx);
        }
        Err(ResolveError::ModuleNotFound {
            specifier: cx.specifier.to_string(),
            importer: cx.importer.to_string(),
            tried: tried.iter().map(|p| p.display().to_string()).collect(),
        })
    }

    fn package_json(&self, dir: &Path) -> Result<Option<Rc<PackageJson>>, ResolveError> {
        if let Some(hit) = self.packages.borrow().get(dir) {
            return Ok(hit.clone());
        }
        let path = dir.join("package.json");
        let parsed = match std::fs::read_to_string(&path) {
            Ok(text) => {
                self.loaded.record(&path);
                Some(Rc::new(parse_package_json(&path, &text)?))
            }
            Err(_) => None,
        };
        self.packages
            .borrow_mut()
            .insert(dir.to_path_buf(), parsed.clone());
        Ok(parsed)
    }

    /// The nearest `package.json` at or above `dir`, not above the root.
    pub(crate) fn package_scope(
        &self,
        dir: &Path,
    ) -> Result<Option<Rc<PackageJson>>, ResolveError> {
        let mut dir = dir.to_path_buf();
        loop {
            if dir.file_name().is_some_and(|n| n == "node_modules") {
                return Ok(None);
            }
            if let Some(pj) = self.package_json(&dir)? {
                return Ok(Some(pj));
            }
            if dir == self.root || !dir.pop() || !dir.starts_with(&self.root) {
                return Ok(None);
            }
        }
    }

    fn resolve_imports(&self, importer_dir: &Path, cx: &Ctx<'_>) -> Result<Resolved, ResolveError> {
        let specifier = cx.specifier;
        if specifier == "#" || specifier.starts_with("#/") {
            return Err(ResolveError::InvalidSpecifier {
                specifier: specifier.to_string(),
                importer: cx.importer.to_string(),
            });
        }
        let scope = self.package_scope(importer_dir)?;
        let not_defined = |package_json: String| ResolveError::ImportNotDefined {
            specifier: specifier.to_string(),
            package_json,
            importer: cx.importer.to_string(),
        };
        let Some(pj) = scope else {
            return Err(not_defined("(none found)".into()));
        };
        let pkg_dir = pj.path.parent().unwrap_or(&self.root).to_path_buf();
        let Some(Value::Object(map)) = &pj.imports else {
            return Err(not_defined(pj.path.display().to_string()));
        };
        match self.match_map(map, specifier, &pkg_dir, &pj, "imports", cx)? {
            Some(Target::Path(p)) => self.exact_target(&p, cx),
            Some(Target::Bare(bare)) => {
                let inner = Ctx {
                    specifier: &bare,
                    importer: cx.importer,
                    kind: cx.kind,
                };
                self.resolve_package(&bare, &pkg_dir, &inner)
            }
            Some(Target::Excluded) | None => Err(not_defined(pj.path.display().to_string())),
        }
    }

    fn resolve_package(
        &self,
        specifier: &str,
        importer_dir: &Path,
        cx: &Ctx<'_>,
    ) -> Result<Resolved, ResolveError> {
        let Some((name, subpath)) = split_package(specifier) else {
            return Err(ResolveError::InvalidSpecifier {
                specifier: specifier.to_string(),
                importer: cx.importer.to_string(),
            });
        };
        // Self-reference: a package importing itself by its own name.
        if let Some(pj) = self.package_scope(importer_dir)?
            && pj.name.as_deref() == Some(name)
            && pj.exports.is_some()
        {
            let dir = pj.path.parent().unwrap_or(&self.root).to_path_buf();
            return self.resolve_in_package(&dir, &pj, &subpath, cx);
        }
        let mut looked = Vec::new();
        let mut dir = importer_dir.to_path_buf();
        loop {
            if dir.file_name().is_none_or(|n| n != "node_modules") {
                let candidate = dir.join("node_modules").join(name);
                looked.push(candidate.display().to_string());
                if candidate.is_dir() {
                    return match self.package_json(&candidate)? {
                        Some(pj) => self.resolve_in_package(&candidate, &pj, &subpath, cx),
                        None => self.resolve_legacy(&candidate, None, &subpath, cx),
                    };
                }
            }
            if dir == self.root || !dir.pop() || !dir.starts_with(&self.root) {
                break;
            }
        }
        if NODE_BUILTINS.contains(&name) && self.node.enabled {
            if self.node.v2 || !node::is_implemented(specifier) {
                return self.node_builtin(specifier, cx.importer);
            }
            return Err(ResolveError::NodePrefixRequired {
                module: specifier.to_string(),
                importer: cx.importer.to_string(),
            });
        }
        if NODE_BUILTINS.contains(&name) {
            return Err(ResolveError::NodeBuiltin {
                module: specifier.to_string(),
                importer: cx.importer.to_string(),
            });
        }
        Err(ResolveError::PackageNotFound {
            package: name.to_string(),
            importer: cx.importer.to_string(),
            looked,
        })
    }

    fn resolve_in_package(
        &self,
        dir: &Path,
        pj: &PackageJson,
        subpath: &str,
        cx: &Ctx<'_>,
    ) -> Result<Resolved, ResolveError> {
        let Some(exports) = &pj.exports else {
            return self.resolve_legacy(dir, Some(pj), subpath, cx);
        };
        let not_exported = || ResolveError::SubpathNotExported {
            subpath: subpath.to_string(),
            package_json: pj.path.display().to_string(),
            importer: cx.importer.to_string(),
        };
        let target = match exports {
            Value::Object(map) => {
                let dotted = map.keys().filter(|k| k.starts_with('.')).count();
                if dotted == 0 {
                    // Conditions only: they describe ".".
                    if subpath != "." {
                        return Err(not_exported());
                    }
                    self.resolve_target(exports, None, dir, pj, "exports", cx)?
                } else if dotted != map.len() {
                    return Err(ResolveError::InvalidPackageConfig {
                        package_json: pj.path.display().to_string(),
                        message:
                            "\"exports\" cannot contain some keys starting with '.' and some not"
                                .into(),
                    });
                } else {
                    self.match_map(map, subpath, dir, pj, "exports", cx)?
                }
            }
            other => {
                if subpath != "." {
                    return Err(not_exported());
                }
                self.resolve_target(other, None, dir, pj, "exports", cx)?
            }
        };
        match target {
            Some(Target::Path(p)) => self.exact_target(&p, cx),
            Some(Target::Bare(_)) | Some(Target::Excluded) | None => Err(not_exported()),
        }
    }

    /// A package without `exports`: `module`, then `main`, then `index.js`;
    /// a subpath is a file or directory inside the package.
    fn resolve_legacy(
        &self,
        dir: &Path,
        pj: Option<&PackageJson>,
        subpath: &str,
        cx: &Ctx<'_>,
    ) -> Result<Resolved, ResolveError> {
        let mut tried = Vec::new();
        if subpath == "." {
            let fields = pj
                .into_iter()
                .flat_map(|pj| [pj.module.as_deref(), pj.main.as_deref()])
                .flatten();
            for field in fields {
                if let Some(rel) = normalize(Path::new(field))
                    && let Some(found) = probe(&dir.join(rel), &mut tried)
                {
                    return self.name_of(&found, cx);
                }
            }
            let index = dir.join("index.js");
            if index.is_file() {
                return self.name_of(&index, cx);
            }
            tried.push(index);
        } else {
            let Some(rel) = normalize(Path::new(subpath)) else {
                return Err(self.outside(cx));
            };
            if let Some(found) = probe(&dir.join(rel), &mut tried) {
                return self.name_of(&found, cx);
            }
        }
        Err(ResolveError::ModuleNotFound {
            specifier: cx.specifier.to_string(),
            importer: cx.importer.to_string(),
            tried: tried.iter().map(|p| p.display().to_string()).collect(),
        })
    }

    /// A target named by `exports`/`imports` must exist as written; the one
    /// allowance is TypeScript's `.js`-names-a-`.ts`-file convention.
    fn exact_target(&self, path: &Path, cx: &Ctx<'_>) -> Result<Resolved, ResolveError> {
        if path.is_file() {
            return self.name_of(path, cx);
        }
        let mut tried = vec![path.to_path_buf()];
        for alt in typescript_alternatives(path) {
            if alt.is_file() {
                return self.name_of(&alt, cx);
            }
            tried.push(alt);
        }
        Err(ResolveError::ModuleNotFound {
            specifier: cx.specifier.to_string(),
            importer: cx.importer.to_string(),
            tried: tried.iter().map(|p| p.display().to_string()).collect(),
        })
    }

    /// Looks `key` up in an `exports`/`imports` map: an exact key first, then
    /// the `*` pattern with the longest prefix (Node's PATTERN_KEY_COMPARE).
    fn match_map(
        &self,
        map: &Map<String, Value>,
        key: &str,
        dir: &Path,
        pj: &PackageJson,
        field: &'static str,
        cx: &Ctx<'_>,
    ) -> Result<Option<Target>, ResolveError> {
        if !key.contains('*')
            && let Some(v) = map.get(key)
        {
            return self.resolve_target(v, None, dir, pj, field, cx);
        }
        let mut best: Option<(&str, &Value, String)> = None;
        for (k, v) in map {
            let Some(star) = k.find('*') else { continue };
            if k[star + 1..].contains('*') {
                continue;
            }
            let (base, trailer) = (&k[..star], &k[star + 1..]);
            if !key.starts_with(base) || key == base {
                continue;
            }
            if !trailer.is_empty() && (!key.ends_with(trailer) || key.len() < k.len()) {
                continue;
            }
            let better = match &best {
                None => true,
                Some((bk, _, _)) => pattern_key_compare(bk, k),
            };
            if better {
                let matched = key[base.len()..key.len() - trailer.len()].to_string();
                best = Some((k, v, matched));
            }
        }
        match best {
            Some((_, v, matched)) => self.resolve_target(v, Some(&matched), dir, pj, field, cx),
            None => Ok(None),
        }
    }

    /// Node's PACKAGE_TARGET_RESOLVE. `Ok(None)` means "no condition
    /// matched" (keep looking); `Excluded` means an explicit `null`.
    fn resolve_target(
        &self,
        target: &Value,
        pattern: Option<&str>,
        dir: &Path,
        pj: &PackageJson,
        field: &'static str,
        cx: &Ctx<'_>,
    ) -> Result<Option<Target>, ResolveError> {
        let invalid = |t: &str| ResolveError::InvalidTarget {
            field,
            target: t.to_string(),
            package_json: pj.path.display().to_string(),
            importer: cx.importer.to_string(),
        };
        match target {
            Value::String(t) => {
                let Some(rest) = t.strip_prefix("./") else {
                    if field == "imports"
                        && !t.starts_with("../")
                        && !t.starts_with('/')
                        && !t.contains(':')
                    {
                        let bare = match pattern {
                            Some(m) => t.replace('*', m),
                            None => t.clone(),
                        };
                        return Ok(Some(Target::Bare(bare)));
                    }
                    return Err(invalid(t));
                };
                if has_bad_segment(rest) {
                    return Err(invalid(t));
                }
                let rest = match pattern {
                    Some(m) => {
                        if has_bad_segment(m) {
                            return Err(invalid(t));
                        }
                        rest.replace('*', m)
                    }
                    None => rest.to_string(),
                };
                Ok(Some(Target::Path(dir.join(rest))))
            }
            Value::Array(items) => {
                let mut last_err = None;
                for item in items {
                    match self.resolve_target(item, pattern, dir, pj, field, cx) {
                        Ok(Some(Target::Excluded)) | Ok(None) => continue,
                        Ok(Some(t)) => return Ok(Some(t)),
                        Err(e @ ResolveError::InvalidTarget { .. }) => last_err = Some(e),
                        Err(e) => return Err(e),
                    }
                }
                match last_err {
                    Some(e) => Err(e),
                    None => Ok(None),
                }
            }
            Value::Object(map) => {
                let conditions = cx.kind.conditions();
                for (k, v) in map {
                    if k == "default" || conditions.contains(&k.as_str()) {
                        match self.resolve_target(v, pattern, dir, pj, field, cx)? {
                            None => continue,
                            found => return Ok(found),
                        }
                    }
                }
                Ok(None)
            }
            Value::Null => Ok(Some(Target::Excluded)),
            other => Err(invalid(&other.to_string())),
        }
    }
}

/// True if `a` sorts after `b` by Node's PATTERN_KEY_COMPARE, i.e. `b` is
/// the more specific pattern and should replace `a`.
fn pattern_key_compare(a: &str, b: &str) -> bool {
    let base_a = a.find('*').map(|i| i + 1).unwrap_or(a.len());
    let base_b = b.find('*').map(|i| i + 1).unwrap_or(b.len());
    if base_b != base_a {
        return base_b > base_a;
    }
    b.len() > a.len()
}

/// Whether a target path contains `.`, `..`, `node_modules` or empty
/// segments, which Node refuses so a package cannot point outside itself.
fn has_bad_segment(path: &str) -> bool {
    path.split(['/', '\\'])
        .any(|s| s == "." || s == ".." || s.eq_ignore_ascii_case("node_modules"))
        || path.contains("//")
}

/// `(name, "./sub" or ".")` of a bare specifier, scoped or not.
fn split_package(specifier: &str) -> Option<(&str, String)> {
    let name_end = if specifier.starts_with('@') {
        let slash = specifier.find('/')?;
        specifier[slash + 1..]
            .find('/')
            .map(|i| slash + 1 + i)
            .unwrap_or(specifier.len())
    } else {
        specifier.find('/').unwrap_or(specifier.len())
    };
    let name = &specifier[..name_end];
    if name.is_empty()
        || name.starts_with('.')
        || name.contains('\\')
        || name.contains('%')
        || name.ends_with('/')
        || (name.starts_with('@') && name.ends_with('@'))
    {
        return None;
    }
    let subpath = format!(".{}", &specifier[name_end..]);
    Some((name, subpath))
}

fn typescript_alternatives(path: &Path) -> Vec<PathBuf> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let alts: &[&str] = match ext {
        "js" => &["ts", "tsx"],
        "jsx" => &["tsx"],
        "mjs" => &["mts"],
        "cjs" => &["cts"],
        _ => &[],
    };
    alts.iter().map(|a| path.with_extension(a)).collect()
}

/// Finds the file an import of `path` means: itself, its TypeScript
/// source, itself plus an extension, or its directory's index. Records each
/// path tried, for the error.
fn probe(path: &Path, tried: &mut Vec<PathBuf>) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    tried.push(path.to_path_buf());
    for alt in typescript_alternatives(path) {
        if alt.is_file() {
            return Some(alt);
        }
        tried.push(alt);
    }
    for ext in PROBE_EXTENSIONS {
        let mut with = path.as_os_str().to_owned();
        with.push(".");
        with.push(ext);
        let with = PathBuf::from(with);
        if with.is_file() {
            return Some(with);
        }
        tried.push(with);
    }
    if path.is_dir() {
        for ext in PROBE_EXTENSIONS {
            let index = path.join(format!("index.{ext}"));
            if index.is_file() {
                return Some(index);
            }
            tried.push(index);
        }
    }
    None
}

fn parse_package_json(path: &Path, text: &str) -> Result<PackageJson, ResolveError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ResolveError::InvalidPackageConfig {
            package_json: path.display().to_string(),
            message: e.to_string(),
        })?;
    let string = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_string);
    Ok(PackageJson {
        path: path.to_path_buf(),
        name: string("name"),
        is_module: value.get("type").and_then(|v| v.as_str()) == Some("module"),
        exports: value.get("exports").filter(|v| !v.is_null()).cloned(),
        imports: value.get("imports").cloned(),
        module: string("module"),
        main: string("main"),
    })
}

/// Lexically normalises `a/./b/../c` to `a/c`; `None` if it climbs above
/// the start or is absolute.
pub(crate) fn normalize(path: &Path) -> Option<PathBuf> {
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

    #[test]
    fn package_names_split_from_subpaths() {
        assert_eq!(split_package("hono"), Some(("hono", ".".into())));
        assert_eq!(
            split_package("hono/jsx/dom"),
            Some(("hono", "./jsx/dom".into()))
        );
        assert_eq!(
            split_package("@scope/pkg"),
            Some(("@scope/pkg", ".".into()))
        );
        assert_eq!(
            split_package("@scope/pkg/a"),
            Some(("@scope/pkg", "./a".into()))
        );
        assert_eq!(split_package("@scope"), None);
        assert_eq!(split_package(".hidden"), None);
    }

    #[test]
    fn longer_pattern_prefix_wins() {
        assert!(pattern_key_compare("./*", "./features/*"));
        assert!(!pattern_key_compare("./features/*", "./*"));
        assert!(pattern_key_compare("./a/*", "./a/*.js"));
    }
}
