//! CommonJS modules, wrapped into ES modules at load time.
//!
//! What is supported: `module.exports`/`exports.x`, `require()` of string
//! literals (resolved and imported statically, so the graph is still loaded
//! up front), `__filename`/`__dirname`, `global`, and
//! `process.env.NODE_ENV` (`"production"`, as Wrangler defines it) when no
//! `process` global exists. Named imports work for the names a static scan
//! finds (`exports.x =`, `module.exports = { x }`,
//! `Object.defineProperty(exports, "x", ...)`). The default import follows
//! esbuild's interop, which Wrangler bundles with: `exports.default` when
//! the module sets `__esModule`, else `module.exports`.
//!
//! Not supported: `require()` of a computed name (throws "Cannot find
//! module" at run time, so optional dependencies in `try` still work),
//! cycles between CommonJS modules (the second sees the first before it ran
//! and fails), and sloppy-mode code (modules are strict).

use oxc::allocator::Allocator;
use oxc::ast::ast::{
    AssignmentExpression, CallExpression, Expression, IdentifierReference, ObjectPropertyKind,
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
}

#[derive(Default)]
struct Scan {
    info: CjsInfo,
    uses_cjs: bool,
}

impl Scan {
    fn export(&mut self, name: &str) {
        if is_identifier(name)
            && name != "default"
            && name != "__esModule"
            && !self.info.exports.iter().any(|n| n == name)
        {
            self.info.exports.push(name.to_string());
        }
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
        walk::walk_call_expression(self, call);
    }

    fn visit_assignment_expression(&mut self, e: &AssignmentExpression<'a>) {
        if let Some(m) = e.left.as_member_expression() {
            if is_exports_object(m.object())
                && let Some(name) = m.static_property_name()
            {
                self.export(name);
            }
            if m.is_specific_member_access("module", "exports")
                && let Expression::ObjectExpression(obj) = &e.right
            {
                for prop in &obj.properties {
                    if let ObjectPropertyKind::ObjectProperty(p) = prop
                        && let Some(name) = p.key.static_name()
                    {
                        self.export(&name);
                    }
                }
            }
        }
        walk::walk_assignment_expression(self, e);
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
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, SourceType::unambiguous()).parse();
    if parsed.panicked || parsed.module_record.has_module_syntax {
        return None;
    }
    let mut scan = Scan::default();
    scan.visit_program(&parsed.program);
    (force || scan.uses_cjs).then_some(scan.info)
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
