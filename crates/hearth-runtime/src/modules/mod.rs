//! How a worker's modules are found and turned into ES modules QuickJS can
//! evaluate: Node-style resolution of relative, `#imports` and bare
//! (`node_modules`) specifiers ([`ModuleResolver`]), TypeScript and JSX
//! transpiled at load time ([`typescript`]), CommonJS wrapped as ES modules
//! ([`cjs`]), `tsconfig.json`'s JSX and `paths`/`baseUrl` settings
//! honoured ([`tsconfig`]), and a record of every file read
//! ([`LoadedFiles`]) so a file watcher knows when to restart the isolates.
//!
//! Node built-ins (`node:*`) are provided under Workers' `nodejs_compat`
//! rules ([`node`]); without the flag, importing one fails with an error
//! naming the module and the flag.

pub mod async_context;
pub mod cjs;
pub mod node;
mod resolve;
pub mod tsconfig;
pub mod typescript;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

pub(crate) use resolve::module_name;
pub use resolve::{
    IMPORT_CONDITIONS, ImportKind, ModuleResolver, REQUIRE_CONDITIONS, ResolveError, Resolved,
};

/// The built-in module exposing the Workers base classes.
pub const CLOUDFLARE_WORKERS: &str = "cloudflare:workers";
/// The built-in module exporting Workflows' `NonRetryableError`.
pub const CLOUDFLARE_WORKFLOWS: &str = "cloudflare:workflows";
/// The built-in module with `httpServerHandler` (needs nodejs_compat).
pub const CLOUDFLARE_NODE: &str = "cloudflare:node";
/// The built-in module with `connect()` for outbound TCP sockets.
pub const CLOUDFLARE_SOCKETS: &str = "cloudflare:sockets";

/// The files a worker's isolates have read: every module, and every
/// `package.json` consulted while resolving. Cheap to clone; clones share
/// one set. A dev server watches these and restarts the pool on a change.
#[derive(Debug, Clone, Default)]
pub struct LoadedFiles(Arc<Mutex<BTreeSet<PathBuf>>>);

impl LoadedFiles {
    /// Every file read so far, absolute, sorted.
    pub fn paths(&self) -> Vec<PathBuf> {
        match self.0.lock() {
            Ok(set) => set.iter().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().iter().cloned().collect(),
        }
    }

    pub(crate) fn record(&self, path: &Path) {
        let mut set = match self.0.lock() {
            Ok(set) => set,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !set.contains(path) {
            set.insert(path.to_path_buf());
        }
    }
}

thread_local! {
    /// Source maps of the transpiled modules of this thread's isolate, by
    /// module name. An isolate owns its thread, so the stack-trace code can
    /// find them without a handle to the loader.
    static POSITION_MAPS: RefCell<HashMap<String, Rc<typescript::PositionMap>>> =
        RefCell::new(HashMap::new());
}

pub(crate) fn register_position_map(name: &str, map: typescript::PositionMap) {
    POSITION_MAPS.with(|m| {
        m.borrow_mut().insert(name.to_string(), Rc::new(map));
    });
}

fn lookup_position_map(name: &str) -> Option<Rc<typescript::PositionMap>> {
    POSITION_MAPS.with(|m| m.borrow().get(name).cloned())
}

/// Rewrites `file:line:col` locations of transpiled modules to their
/// original positions. Accepts QuickJS's frame shapes (`at f (file:l:c)`,
/// `at file:l:c`) and a bare `file:l:c`; other text passes unchanged.
pub(crate) fn remap_location(loc: &str) -> Option<String> {
    let (rest, col) = loc.rsplit_once(':')?;
    let (file, line) = rest.rsplit_once(':')?;
    let line: u32 = line.parse().ok()?;
    let col: u32 = col.parse().ok()?;
    let map = lookup_position_map(file)?;
    let (l, c) = map.original(line, col)?;
    Some(format!("{file}:{l}:{c}"))
}

/// [`remap_location`] applied to every frame of a stack trace.
pub(crate) fn remap_stack(stack: &str) -> String {
    let has_maps = POSITION_MAPS.with(|m| !m.borrow().is_empty());
    if !has_maps {
        return stack.to_string();
    }
    let mut out = String::with_capacity(stack.len());
    for (i, line) in stack.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&remap_frame(line));
    }
    out
}

fn remap_frame(line: &str) -> String {
    let trimmed = line.trim_start();
    if !trimmed.starts_with("at ") {
        return line.to_string();
    }
    // `at name (loc)` or `at loc`.
    if line.ends_with(')')
        && let Some(open) = line.rfind('(')
        && let Some(mapped) = remap_location(&line[open + 1..line.len() - 1])
    {
        return format!("{}({mapped})", &line[..open]);
    }
    let start = line.len() - trimmed.len() + 3;
    match remap_location(line[start..].trim_end()) {
        Some(mapped) => format!("{}{mapped}", &line[..start]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_frames_of_mapped_files_are_rewritten() {
        let out = typescript::transpile(
            "m/a.ts",
            "type T = number;\n\n\nexport function f(x: T) {\n  return x;\n}\n",
        )
        .unwrap();
        let (gl, gc) = out
            .code
            .lines()
            .enumerate()
            .find_map(|(i, l)| l.find("return").map(|c| (i + 1, c + 1)))
            .unwrap();
        register_position_map("m/a.ts", out.map);
        let stack =
            format!("    at f (m/a.ts:{gl}:{gc})\n    at m/other.js:3:4\n    at <anonymous>");
        assert_eq!(
            remap_stack(&stack),
            "    at f (m/a.ts:5:3)\n    at m/other.js:3:4\n    at <anonymous>"
        );
    }
}
