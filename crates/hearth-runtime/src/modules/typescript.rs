//! TypeScript (and JSX) at load time, without a bundler.
//!
//! The transformer is oxc (`oxc_parser` + `oxc_semantic` +
//! `oxc_transformer` + `oxc_codegen`): a maintained Rust toolchain whose
//! TypeScript transform handles what plain type stripping cannot (enums,
//! namespaces, parameter properties, eliding imports used only as types),
//! builds in about a minute on two cores, and emits a source map from the
//! same pass. swc does the same but pulls in far more crates.
//!
//! The code is reprinted, so generated lines differ from the file's; the
//! source map is kept per module ([`PositionMap`]) and stack traces are
//! rewritten to the original `file:line:column`. Parse errors are reported
//! straight from oxc's spans, which already point into the original text.

use std::path::Path;

use oxc::allocator::Allocator;
use oxc::ast::ast::{JSXElement, JSXFragment};
use oxc::ast_visit::Visit;
use oxc::codegen::{Codegen, CodegenOptions};
use oxc::parser::Parser;
use oxc::semantic::SemanticBuilder;
use oxc::span::SourceType;
use oxc::transformer::{JsxOptions, JsxRuntime, TransformOptions, Transformer};

use super::tsconfig::{JsxMode, TsConfig};

/// A syntax (or transform) error at a position in the original source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
    pub message: String,
}

/// Maps generated positions back to the original file.
#[derive(Debug, Default)]
pub struct PositionMap {
    /// Per generated line (0-based): `(generated col, source line, source
    /// col)`, all 0-based, sorted by generated column.
    lines: Vec<Vec<(u32, u32, u32)>>,
}

impl PositionMap {
    /// The original 1-based `(line, column)` of a 1-based generated
    /// position; `None` when the map has nothing for that line.
    pub fn original(&self, line: u32, column: u32) -> Option<(u32, u32)> {
        let tokens = self.lines.get(line.checked_sub(1)? as usize)?;
        let col = column.saturating_sub(1);
        let i = tokens.partition_point(|t| t.0 <= col);
        // Before the line's first token: the first token is the best guess.
        let t = if i == 0 {
            tokens.first()?
        } else {
            &tokens[i - 1]
        };
        Some((t.1 + 1, t.2 + 1))
    }
}

/// Output of [`transpile`].
#[derive(Debug)]
pub struct Transpiled {
    pub code: String,
    pub map: PositionMap,
}

/// Whether a file of this extension goes through the transformer.
pub fn needs_transpile(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("ts" | "mts" | "cts" | "tsx" | "jsx")
    ) && !path.to_string_lossy().ends_with(".d.ts")
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() as u32 + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() as u32 + 1;
    (line, column)
}

fn first_error(source: &str, diags: &[oxc::diagnostics::OxcDiagnostic]) -> Option<SourceError> {
    let d = diags
        .iter()
        .find(|d| d.severity == oxc::diagnostics::Severity::Error)?;
    let offset = d.labels.first().map(|l| l.offset() as usize).unwrap_or(0);
    let (line, column) = line_col(source, offset);
    Some(SourceError {
        line,
        column,
        message: d.message.to_string(),
    })
}

/// Strips types (and lowers enums, namespaces, JSX) from `source`, named
/// `name` (its extension picks TypeScript/JSX parsing), with the default
/// JSX settings (React's automatic runtime).
pub fn transpile(name: &str, source: &str) -> Result<Transpiled, SourceError> {
    transpile_with(name, source, None)
}

/// oxc's JSX options for a tsconfig. Without one (or without JSX
/// settings in it), React's automatic runtime, as before any tsconfig was
/// read; `jsxImportSource` alone keeps the automatic runtime with that
/// source, `jsxFactory` alone selects the classic one.
fn jsx_options(config: Option<&TsConfig>) -> JsxOptions {
    let mut jsx = JsxOptions::default();
    let Some(c) = config else {
        return jsx;
    };
    let mode = c.jsx.unwrap_or(
        if c.jsx_factory.is_some() && c.jsx_import_source.is_none() {
            JsxMode::Classic
        } else {
            JsxMode::Automatic
        },
    );
    match mode {
        JsxMode::Automatic | JsxMode::AutomaticDev => {
            jsx.runtime = JsxRuntime::Automatic;
            jsx.development = mode == JsxMode::AutomaticDev;
            jsx.import_source = c.jsx_import_source.clone();
        }
        JsxMode::Classic => {
            jsx.runtime = JsxRuntime::Classic;
            jsx.pragma = c.jsx_factory.clone();
            jsx.pragma_frag = c.jsx_fragment_factory.clone();
        }
        JsxMode::Preserve => jsx.jsx_plugin = false,
    }
    jsx
}

/// The first JSX element or fragment in a program, by offset.
#[derive(Default)]
struct FirstJsx(Option<u32>);

impl<'a> Visit<'a> for FirstJsx {
    fn visit_jsx_element(&mut self, it: &JSXElement<'a>) {
        self.0.get_or_insert(it.span.start);
    }
    fn visit_jsx_fragment(&mut self, it: &JSXFragment<'a>) {
        self.0.get_or_insert(it.span.start);
    }
}

/// [`transpile`] with the JSX settings of `config`, the tsconfig.json
/// governing the module.
pub fn transpile_with(
    name: &str,
    source: &str,
    config: Option<&TsConfig>,
) -> Result<Transpiled, SourceError> {
    let path = Path::new(name);
    let source_type = SourceType::from_path(path)
        .map_err(|e| SourceError {
            line: 1,
            column: 1,
            message: e.to_string(),
        })?
        .with_module(true);
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, source_type).parse();
    if let Some(err) = first_error(source, &parsed.diagnostics) {
        return Err(err);
    }
    let mut program = parsed.program;
    if let Some(c) = config
        && c.jsx == Some(JsxMode::Preserve)
    {
        let mut first = FirstJsx::default();
        first.visit_program(&program);
        if let Some(offset) = first.0 {
            let (line, column) = line_col(source, offset as usize);
            return Err(SourceError {
                line,
                column,
                message: format!(
                    "JSX cannot run as written, and {} sets \"jsx\": \"preserve\"; set \"jsx\": \"react-jsx\" (with \"jsxImportSource\") or \"react\"",
                    c.path.display()
                ),
            });
        }
    }
    let semantic = SemanticBuilder::new()
        .with_excess_capacity(2.0)
        .with_enum_eval(true)
        .build(&program);
    let scoping = semantic.semantic.into_scoping();
    let options = TransformOptions {
        jsx: jsx_options(config),
        ..TransformOptions::default()
    };
    let transformed =
        Transformer::new(&allocator, path, &options).build_with_scoping(scoping, &mut program);
    let errors: Vec<_> = transformed.diagnostics.into_iter().collect();
    if let Some(err) = first_error(source, &errors) {
        return Err(err);
    }
    let out = Codegen::new()
        .with_options(CodegenOptions {
            source_map_path: Some(path.to_path_buf()),
            ..CodegenOptions::default()
        })
        .build(&program);
    let mut map = PositionMap::default();
    if let Some(sm) = out.map {
        for t in sm.get_tokens() {
            let line = t.get_dst_line() as usize;
            if map.lines.len() <= line {
                map.lines.resize_with(line + 1, Vec::new);
            }
            map.lines[line].push((t.get_dst_col(), t.get_src_line(), t.get_src_col()));
        }
        for l in &mut map.lines {
            l.sort_by_key(|t| t.0);
        }
    }
    Ok(Transpiled {
        code: out.code,
        map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_stripped_and_positions_map_back() {
        let src = "interface A { x: number }\n\n// note\nconst a: A = { x: 1 };\nexport function f(n: number): number {\n  throw new Error('x' + n);\n}\n";
        let out = transpile("src/a.ts", src).unwrap();
        assert!(!out.code.contains("interface"), "{}", out.code);
        let (gen_line, gen_col) = out
            .code
            .lines()
            .enumerate()
            .find_map(|(i, l)| l.find("throw").map(|c| (i as u32 + 1, c as u32 + 1)))
            .unwrap();
        assert_eq!(out.map.original(gen_line, gen_col), Some((6, 3)));
    }

    #[test]
    fn syntax_error_has_original_position() {
        let err = transpile("a.ts", "const x: number = 1;\nlet y = (;\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 10), "{err:?}");
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé", 6), (2, 3));
        assert_eq!(line_col("x", 0), (1, 1));
    }
}
