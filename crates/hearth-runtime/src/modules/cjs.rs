//! CommonJS modules, wrapped into ES modules at load time.
//!
//! What is supported: `module.exports`/`exports.x`, `require()` of string
//! literals (resolved and imported statically, so the graph is still loaded
//! up front), `__filename`/`__dirname`, `global`, and
//! `process.env.NODE_ENV` (`"production"`, as Wrangler defines it) when no
//! `process` global exists. Named imports work for the names a static scan
//! finds (`exports.x =`, `module.exports = { x }`,
//! `Object.defineProperty(exports, "x", ...)`, esbuild's
//! `0 && (module.exports = { x })` hint), plus the names of the modules it
//! re-exports, followed down the chain as Node's cjs-module-lexer does:
//! `module.exports = require("./x")`, `module.exports = { ...require("./x") }`,
//! `Object.assign(module.exports, require("./x"))`, TypeScript's and
//! tslib's `__exportStar(require("./x"), exports)` (and `__export`, swc's
//! `_export_star`, esbuild's `__reExport`), and Babel's
//! `var _x = require("./x"); Object.keys(_x).forEach(...)` loop. The default import follows
//! esbuild's interop, which Wrangler bundles with: `exports.default` when
//! the module sets `__esModule`, else `module.exports`.
//!
//! Not supported: `require()` of a computed name (throws "Cannot find
//! module" at run time, so optional dependencies in `try` still work),
//! cycles between CommonJS modules (the second sees the first before it ran
//! and fails), and sloppy-mode code (modules are strict).

use oxc::allocator::Allocator;
use oxc::ast::ast::{
    AssignmentExpression, BindingPattern, CallExpression, Expression, IdentifierReference,
    ObjectPropertyKind, VariableDeclarator,
};
use oxc::ast_visit::{Visit, walk};
use oxc::parser::Parser;
use oxc::span::SourceType;

/// What a scan of a CommonJS file found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CjsInfo {
    /// `require("...")` specifiers, in source order, without duplicates.
    pub requires: Vec<String>,
    /// Names assigned on `exports`, in source order, without duplicates.
    pub exports: Vec<String>,
    /// Specifiers whose exports this module passes on as its own, in
    /// source order, without duplicates.
    pub reexports: Vec<String>,
}

impl CjsInfo {
    /// Adds an export name (one found in a re-exported module); names that
    /// cannot be written as an export, `default` and `__esModule` are
    /// skipped, as are duplicates.
    pub fn add_export(&mut self, name: &str) {
        if is_identifier(name)
            && name != "default"
            && name != "__esModule"
            && !self.exports.iter().any(|n| n == name)
        {
            self.exports.push(name.to_string());
        }
    }

    fn add_reexport(&mut self, spec: String) {
        if !self.reexports.contains(&spec) {
            self.reexports.push(spec);
        }
    }
}

#[derive(Default)]
struct Scan {
    info: CjsInfo,
    uses_cjs: bool,
    /// `var x = require("...")` bindings (also through a wrapper call such
    /// as Babel's `_interopRequireWildcard(require("..."))`), for the
    /// `Object.keys(x).forEach(...)` re-export loop.
    required_bindings: Vec<(String, String)>,
}

impl Scan {
    fn export(&mut self, name: &str) {
        self.info.add_export(name);
    }
}

/// The specifier of `require("...")`, looking through parentheses.
fn require_spec(e: &Expression<'_>) -> Option<String> {
    match e.without_parentheses() {
        Expression::CallExpression(call) => call.common_js_require().map(|l| l.value.to_string()),
        _ => None,
    }
}

/// `require("...")` or `wrapper(require("..."))`.
fn require_spec_or_wrapped(e: &Expression<'_>) -> Option<String> {
    require_spec(e).or_else(|| match e.without_parentheses() {
        Expression::CallExpression(call) => call
            .arguments
            .first()
            .and_then(|a| a.as_expression())
            .and_then(require_spec),
        _ => None,
    })
}

/// Helpers compilers emit for `export * from "..."` in CommonJS output.
const EXPORT_STAR_HELPERS: &[&str] = &[
    "__exportStar",
    "__export",
    "__reExport",
    "_export_star",
    "_exportStar",
];

fn callee_name<'a>(e: &'a Expression<'_>) -> Option<&'a str> {
    match e.without_parentheses() {
        Expression::Identifier(id) => Some(id.name.as_str()),
        e => e
            .as_member_expression()
            .and_then(|m| m.static_property_name()),
    }
}

fn is_exports_object(e: &Expression<'_>) -> bool {
    e.is_specific_id("exports")
        || e.as_member_expression()
            .is_some_and(|m| m.is_specific_member_access("module", "exports"))
}

impl<'a> Visit<'a> for Scan {
    fn visit_call_expression(&mut self, call: &CallExpression<'a>) {
        if let Some(lit) = call.common_js_require() {
            let spec = lit.value.to_string();
            if !self.info.requires.contains(&spec) {
                self.info.requires.push(spec);
            }
        }
        if let Some(m) = call.callee.as_member_expression()
            && (m.is_specific_member_access("Object", "defineProperty")
                || m.is_specific_member_access("Reflect", "defineProperty"))
            && call.arguments.len() >= 2
            && call.arguments[0]
                .as_expression()
                .is_some_and(is_exports_object)
            && let Some(Expression::StringLiteral(name)) = call.arguments[1].as_expression()
        {
            self.export(name.value.as_str());
        }
        if callee_name(&call.callee).is_some_and(|n| EXPORT_STAR_HELPERS.contains(&n)) {
            for spec in call
                .arguments
                .iter()
                .filter_map(|a| a.as_expression())
                .filter_map(require_spec)
            {
                self.info.add_reexport(spec);
            }
        }
        if let Some(m) = call.callee.as_member_expression()
            && m.is_specific_member_access("Object", "assign")
            && call
                .arguments
                .first()
                .and_then(|a| a.as_expression())
                .is_some_and(is_exports_object)
        {
            for spec in call
                .arguments
                .iter()
                .skip(1)
                .filter_map(|a| a.as_expression())
                .filter_map(require_spec)
            {
                self.info.add_reexport(spec);
            }
        }
        // Babel: `Object.keys(_x).forEach(function (key) { ... exports ... })`.
        if let Some(m) = call.callee.as_member_expression()
            && m.static_property_name() == Some("forEach")
            && let Expression::CallExpression(keys) = m.object().without_parentheses()
            && keys
                .callee
                .as_member_expression()
                .is_some_and(|k| k.is_specific_member_access("Object", "keys"))
            && let Some(Expression::Identifier(id)) = keys
                .arguments
                .first()
                .and_then(|a| a.as_expression())
                .map(|e| e.without_parentheses())
            && let Some((_, spec)) = self
                .required_bindings
                .iter()
                .find(|(n, _)| n == id.name.as_str())
        {
            let spec = spec.clone();
            self.info.add_reexport(spec);
        }
        walk::walk_call_expression(self, call);
    }

    fn visit_assignment_expression(&mut self, e: &AssignmentExpression<'a>) {
        if let Some(m) = e.left.as_member_expression() {
            if is_exports_object(m.object())
                && let Some(name) = m.static_property_name()
            {
                self.export(name);
            }
            if m.is_specific_member_access("module", "exports") {
                if let Some(spec) = require_spec(&e.right) {
                    self.info.add_reexport(spec);
                }
                if let Expression::ObjectExpression(obj) = e.right.without_parentheses() {
                    for prop in &obj.properties {
                        match prop {
                            ObjectPropertyKind::ObjectProperty(p) => {
                                if let Some(name) = p.key.static_name() {
                                    self.export(&name);
                                }
                            }
                            ObjectPropertyKind::SpreadProperty(s) => {
                                if let Some(spec) = require_spec(&s.argument) {
                                    self.info.add_reexport(spec);
                                }
                            }
                        }
                    }
                }
            }
        }
        walk::walk_assignment_expression(self, e);
    }

    fn visit_variable_declarator(&mut self, d: &VariableDeclarator<'a>) {
        if let BindingPattern::BindingIdentifier(id) = &d.id
            && let Some(spec) = d.init.as_ref().and_then(require_spec_or_wrapped)
        {
            self.required_bindings.push((id.name.to_string(), spec));
        }
        walk::walk_variable_declarator(self, d);
    }

    fn visit_identifier_reference(&mut self, id: &IdentifierReference<'a>) {
        if matches!(id.name.as_str(), "module" | "exports" | "require") {
            self.uses_cjs = true;
        }
    }
}

/// Scans `source`. `None` if it is an ES module (has `import`/`export`),
/// does not parse, or never touches `module`, `exports` or `require`.
/// `force` (for `.cjs`) skips the last check.
pub fn analyze(source: &str, force: bool) -> Option<CjsInfo> {
    // Without one of the three names (or an escape that could spell one),
    // no identifier can reference them: skip parsing, which for a large
    // bundle costs more than compiling it.
    if !force
        && !["require", "module", "exports", "\\u"]
            .iter()
            .any(|w| source.contains(w))
    {
        return None;
    }
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, SourceType::unambiguous()).parse();
    if parsed.panicked || parsed.module_record.has_module_syntax {
        return None;
    }
    let mut scan = Scan::default();
    scan.visit_program(&parsed.program);
    (force || scan.uses_cjs).then_some(scan.info)
}

/// The named exports of an ES module (`export *` is not followed), for a
/// CommonJS module that re-exports one. `None` if `source` does not parse
/// as a module.
pub fn esm_export_names(source: &str) -> Option<Vec<String>> {
    use oxc::syntax::module_record::ExportExportName;
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, SourceType::mjs()).parse();
    if parsed.panicked {
        return None;
    }
    let record = &parsed.module_record;
    Some(
        record
            .local_export_entries
            .iter()
            .chain(record.indirect_export_entries.iter())
            .filter_map(|e| match &e.export_name {
                ExportExportName::Name(n) => Some(n.name.to_string()),
                _ => None,
            })
            .collect(),
    )
}

/// Whether `s` can be written as a plain export name.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c == '$' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c == '$' || c.is_alphanumeric())
        && !matches!(
            s,
            "await"
                | "break"
                | "case"
                | "catch"
                | "class"
                | "const"
                | "continue"
                | "debugger"
                | "delete"
                | "do"
                | "else"
                | "enum"
                | "export"
                | "extends"
                | "false"
                | "finally"
                | "for"
                | "function"
                | "if"
                | "import"
                | "in"
                | "instanceof"
                | "new"
                | "null"
                | "return"
                | "super"
                | "switch"
                | "this"
                | "throw"
                | "true"
                | "try"
                | "typeof"
                | "var"
                | "void"
                | "while"
                | "with"
                | "yield"
                | "let"
                | "static"
                | "implements"
                | "interface"
                | "package"
                | "private"
                | "protected"
                | "public"
        )
}

fn js_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The ES module standing in for a CommonJS file. Everything before the
/// original text sits on its first line, so line numbers in stack traces
/// stay those of the file. `requires` pairs each specifier with the module
/// it resolved to (`None`: left to fail at run time).
pub fn wrap(
    name: &str,
    source: &str,
    info: &CjsInfo,
    requires: &[(String, Option<String>)],
) -> String {
    let mut head = String::new();
    let mut cases = String::new();
    for (i, (spec, target)) in requires.iter().enumerate() {
        if let Some(target) = target {
            head.push_str(&format!(
                "import * as __hearth_r{i} from {};",
                js_string(target)
            ));
            cases.push_str(&format!(
                "case {}: return __hearth_r({i}, __hearth_r{i});",
                js_string(spec)
            ));
        }
    }
    let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    head.push_str(&format!(
        "const __hearth_r = (i, ns) => ('module.exports' in ns ? ns['module.exports'] : ns);\
const __hearth_require = function require(id) {{ switch (id) {{ {cases} }} \
const e = new Error(\"Cannot find module '\" + id + \"' from '{name_lit}'\"); e.code = 'MODULE_NOT_FOUND'; throw e; }};\
const module = {{ exports: {{}}, id: {name}, filename: {name}, loaded: false }};\
(function (exports, require, module, __filename, __dirname, global, process) {{",
        name_lit = name.replace('\\', "\\\\").replace('\'', "\\'").replace('"', "\\\""),
        name = js_string(name),
    ));
    let mut tail = format!(
        "\n}}).call(module.exports, module.exports, __hearth_require, module, {name}, {dir}, globalThis, \
globalThis.process ?? {{ env: {{ NODE_ENV: \"production\" }} }});\n\
module.loaded = true;\n\
const __hearth_x = module.exports;\n\
export default (__hearth_x != null && __hearth_x.__esModule) ? __hearth_x.default : __hearth_x;\n\
export {{ __hearth_x as \"module.exports\" }};\n",
        name = js_string(name),
        dir = js_string(dir),
    );
    for (i, n) in info.exports.iter().enumerate() {
        tail.push_str(&format!(
            "const __hearth_e{i} = __hearth_x == null ? undefined : __hearth_x[{}];\nexport {{ __hearth_e{i} as {n} }};\n",
            js_string(n)
        ));
    }
    let mut out = head;
    out.push_str(source);
    out.push_str(&tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_requires_and_export_names() {
        let info = analyze(
            "const a = require('./a'); const b = require(\"b\"); require('./a');\n\
             exports.one = 1; module.exports.two = 2; Object.defineProperty(exports, 'three', { value: 3 });\n\
             exports.default = 4; exports['not valid'] = 5;",
            false,
        )
        .unwrap();
        assert_eq!(info.requires, ["./a", "b"]);
        assert_eq!(info.exports, ["one", "two", "three"]);
    }

    #[test]
    fn module_exports_object_names() {
        let info = analyze(
            "function f() {}\nmodule.exports = { f, g: 1, 'h': 2 };",
            false,
        )
        .unwrap();
        assert_eq!(info.exports, ["f", "g", "h"]);
    }

    #[test]
    fn reexport_shapes() {
        let info = analyze(
            "if (x) { module.exports = require('./a.js'); } else { module.exports = (require('./b.js')); }\n\
             __exportStar(require('./c'), exports); tslib_1.__exportStar(require('./d'), exports);\n\
             Object.assign(module.exports, require('./e'), { z: 1 });\n\
             module.exports = { ...require('./f'), g };\n\
             var _h = _interopRequireWildcard(require('./h'));\n\
             Object.keys(_h).forEach(function (key) { exports[key] = _h[key]; });\n\
             var _i = require('./i'); _i.x();",
            false,
        )
        .unwrap();
        assert_eq!(
            info.reexports,
            ["./a.js", "./b.js", "./c", "./d", "./e", "./f", "./h"]
        );
        assert_eq!(info.exports, ["g"]);
    }

    #[test]
    fn esm_names() {
        assert_eq!(
            esm_export_names(
                "export const a = 1; export { a as b }; export default 1; export { c } from './c'; export * from './d';"
            ),
            Some(vec!["a".to_string(), "b".to_string(), "c".to_string()])
        );
    }

    #[test]
    fn es_modules_and_plain_scripts_are_not_commonjs() {
        assert_eq!(
            analyze("export const a = 1; const x = require;", false),
            None
        );
        assert_eq!(analyze("import x from 'y'; exports.a = 1;", false), None);
        assert_eq!(analyze("globalThis.x = 1;", false), None);
        assert!(analyze("globalThis.x = 1;", true).is_some());
    }
}
