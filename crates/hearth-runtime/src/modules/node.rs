//! Node.js built-in modules as workerd provides them under `nodejs_compat`:
//! which compatibility flags and dates turn them on, and the JS sources of
//! the modules Hearth implements (embedded in the binary).
//!
//! workerd's rules: `nodejs_compat` (on by default from 2026-08-04) allows
//! `node:*` imports; `nodejs_compat_v2` (implied by `nodejs_compat` from
//! 2024-09-23) also resolves bare `events`, `buffer`, ... to the built-ins
//! and adds the `Buffer` and `process` globals; `process.env` holds the
//! worker's vars and secrets with `nodejs_compat_populate_process_env`
//! (implied from 2025-04-01); `node:fs` comes with `nodejs_compat` from
//! 2025-09-01 or with `enable_nodejs_fs_module`, and goes with
//! `disable_nodejs_fs_module`. `node:os` is importable whenever
//! `nodejs_compat` is on: workerd's own module needs 2025-09-15 (or
//! `enable_nodejs_os_module`), and before that Wrangler's bundle carries
//! unenv's stand-in, which answers the same fixed values.

/// The date from which `nodejs_compat` implies `nodejs_compat_v2`.
pub const V2_DATE: &str = "2024-09-23";
/// The date from which `nodejs_compat` populates `process.env`.
pub const POPULATE_ENV_DATE: &str = "2025-04-01";
/// The date from which `nodejs_compat` includes `node:fs`.
pub const FS_DATE: &str = "2025-09-01";
/// The date from which `nodejs_compat` is on without the flag.
pub const DEFAULT_ON_DATE: &str = "2026-08-04";

/// The internal module installing the `Buffer` and `process` globals; the
/// main module imports it first under v2.
pub const GLOBALS_MODULE: &str = "hearth:node-globals";

/// The internal module the built-ins share helpers through (Node's error
/// wording); resolvable whenever `nodejs_compat` is on, never listed.
pub const INTERNAL_MODULE: &str = "hearth:node-internal";

/// Which parts of Node.js compatibility a worker has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeCompat {
    /// `node:*` modules can be imported.
    pub enabled: bool,
    /// Bare built-in names resolve to the built-ins; `Buffer`/`process` globals.
    pub v2: bool,
    /// `process.env` holds the worker's text vars and secrets.
    pub populate_process_env: bool,
    /// `node:fs` (its virtual file system) can be imported.
    pub fs: bool,
}

impl NodeCompat {
    /// Applies workerd's flag and date rules; a `no_*` flag wins over the
    /// date that would imply its feature.
    pub fn from_config(compatibility_date: Option<&str>, flags: &[String]) -> Self {
        let has = |f: &str| flags.iter().any(|x| x == f);
        let since = |d: &str| compatibility_date.is_some_and(|c| c >= d);
        let enabled = !has("no_nodejs_compat")
            && (has("nodejs_compat") || has("nodejs_compat_v2") || since(DEFAULT_ON_DATE));
        let v2 =
            enabled && !has("no_nodejs_compat_v2") && (has("nodejs_compat_v2") || since(V2_DATE));
        let populate_process_env = enabled
            && !has("nodejs_compat_do_not_populate_process_env")
            && (has("nodejs_compat_populate_process_env") || since(POPULATE_ENV_DATE));
        let fs = enabled
            && !has("disable_nodejs_fs_module")
            && (has("enable_nodejs_fs_module") || since(FS_DATE));
        NodeCompat {
            enabled,
            v2,
            populate_process_env,
            fs,
        }
    }
}

/// The modules Hearth implements, by name without `node:`.
const MODULES: &[(&str, &str)] = &[
    ("assert", include_str!("node/assert.js")),
    ("assert/strict", include_str!("node/assert_strict.js")),
    ("async_hooks", include_str!("node/async_hooks.js")),
    ("buffer", include_str!("node/buffer.js")),
    ("crypto", include_str!("node/crypto.js")),
    (
        "diagnostics_channel",
        include_str!("node/diagnostics_channel.js"),
    ),
    ("dns", include_str!("node/dns.js")),
    ("dns/promises", include_str!("node/dns_promises.js")),
    ("events", include_str!("node/events.js")),
    ("fs", include_str!("node/fs.js")),
    ("fs/promises", include_str!("node/fs_promises.js")),
    ("http", include_str!("node/http.js")),
    ("https", include_str!("node/https.js")),
    ("module", include_str!("node/module.js")),
    ("net", include_str!("node/net.js")),
    ("os", include_str!("node/os.js")),
    ("path", include_str!("node/path.js")),
    ("path/posix", include_str!("node/path_posix.js")),
    // Not Windows rules: path.win32 is the POSIX module here.
    ("path/win32", include_str!("node/path_posix.js")),
    ("process", include_str!("node/process.js")),
    ("querystring", include_str!("node/querystring.js")),
    ("stream", include_str!("node/stream.js")),
    ("stream/promises", include_str!("node/stream_promises.js")),
    ("stream/web", include_str!("node/stream_web.js")),
    ("string_decoder", include_str!("node/string_decoder.js")),
    ("timers", include_str!("node/timers.js")),
    ("timers/promises", include_str!("node/timers_promises.js")),
    ("tls", include_str!("node/tls.js")),
    ("url", include_str!("node/url.js")),
    ("util", include_str!("node/util.js")),
    ("util/types", include_str!("node/util_types.js")),
    ("zlib", include_str!("node/zlib.js")),
];

/// The globals Wrangler's Node.js support gives a worker: `Buffer`,
/// `process`, `global`, `setImmediate`/`clearImmediate`; a global the
/// runtime already has is left alone. It also loads every built-in, so
/// `process.getBuiltinModule()` (which bundled polyfills call at start)
/// can hand any of them out synchronously.
fn globals_source(compat: NodeCompat) -> String {
    let mut src = String::new();
    for (name, _) in MODULES {
        if !compat.fs && name.starts_with("fs") {
            continue;
        }
        src.push_str(&format!("import 'node:{name}';\n"));
    }
    src.push_str(
        "\
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { setImmediate, clearImmediate } from 'node:timers';
const define = (name, value) => {
  if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
};
define('Buffer', Buffer);
define('process', process);
define('global', globalThis);
define('setImmediate', setImmediate);
define('clearImmediate', clearImmediate);
",
    );
    src
}

/// Whether `node:<name>` is implemented.
pub fn is_implemented(name: &str) -> bool {
    MODULES.iter().any(|(n, _)| *n == name)
}

/// The implemented modules, `node:`-prefixed, for error messages.
pub fn implemented() -> String {
    MODULES
        .iter()
        .map(|(n, _)| format!("node:{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The source of built-in module `name` (`node:events`, or
/// [`GLOBALS_MODULE`]). `process_env` is the JSON object `process.env`
/// starts with.
pub fn source(name: &str, process_env: &str, compat: NodeCompat) -> Option<String> {
    if name == GLOBALS_MODULE {
        return Some(globals_source(compat));
    }
    if name == INTERNAL_MODULE {
        return Some(include_str!("node/internal.js").to_string());
    }
    let bare = name.strip_prefix("node:")?;
    let (_, src) = MODULES.iter().find(|(n, _)| *n == bare)?;
    let head = if bare == "process" {
        format!("const __hearth_env = {process_env};")
    } else {
        String::new()
    };
    // Each module registers its exports for `process.getBuiltinModule()`.
    let name = serde_json::Value::String(name.to_string());
    Some(format!(
        "{head}{src}\nimport * as __hearth_self from {name};\n\
         (globalThis[Symbol.for('hearth.node.builtins')] ??= new Map()).set({name}, \
         'module.exports' in __hearth_self ? __hearth_self['module.exports'] : __hearth_self);\n"
    ))
}

/// The initial `process.env`: text vars and secrets (JSON vars as their
/// JSON text) when populated, and `NODE_ENV` as Wrangler defines it.
pub fn process_env_json(
    compat: NodeCompat,
    vars: &std::collections::BTreeMap<String, serde_json::Value>,
    secrets: &std::collections::BTreeMap<String, String>,
) -> String {
    let mut env = serde_json::Map::new();
    env.insert("NODE_ENV".into(), "production".into());
    if compat.populate_process_env {
        for (k, v) in vars {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            env.insert(k.clone(), text.into());
        }
        for (k, v) in secrets {
            env.insert(k.clone(), v.clone().into());
        }
    }
    serde_json::Value::Object(env).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(date: Option<&str>, flags: &[&str]) -> NodeCompat {
        let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        NodeCompat::from_config(date, &flags)
    }

    #[test]
    fn flags_and_dates_follow_workerd() {
        assert!(!c(Some("2025-01-01"), &[]).enabled);
        let v1 = c(Some("2024-09-22"), &["nodejs_compat"]);
        assert!(v1.enabled && !v1.v2 && !v1.populate_process_env);
        let v2 = c(Some("2024-09-23"), &["nodejs_compat"]);
        assert!(v2.enabled && v2.v2 && !v2.populate_process_env);
        assert!(c(Some("2025-04-01"), &["nodejs_compat"]).populate_process_env);
        assert!(c(Some("2024-01-01"), &["nodejs_compat_v2"]).v2);
        assert!(
            !c(
                Some("2025-01-01"),
                &["nodejs_compat", "no_nodejs_compat_v2"]
            )
            .v2
        );
        assert!(
            !c(
                Some("2025-05-01"),
                &["nodejs_compat", "nodejs_compat_do_not_populate_process_env"]
            )
            .populate_process_env
        );
        assert!(
            c(
                Some("2024-01-01"),
                &["nodejs_compat", "nodejs_compat_populate_process_env"]
            )
            .populate_process_env
        );
        assert!(c(Some("2026-08-04"), &[]).v2);
        assert!(!c(Some("2025-08-31"), &["nodejs_compat"]).fs);
        assert!(c(Some("2025-09-01"), &["nodejs_compat"]).fs);
        assert!(
            c(
                Some("2024-01-01"),
                &["nodejs_compat", "enable_nodejs_fs_module"]
            )
            .fs
        );
        assert!(!c(Some("2024-01-01"), &["enable_nodejs_fs_module"]).fs);
        assert!(
            !c(
                Some("2025-09-01"),
                &["nodejs_compat", "disable_nodejs_fs_module"]
            )
            .fs
        );
        assert!(!c(Some("2026-08-04"), &["no_nodejs_compat"]).enabled);
    }
}
