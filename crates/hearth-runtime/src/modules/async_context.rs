//! Carrying `AsyncLocalStorage`'s context across `await`.
//!
//! V8 tells Node.js and workerd when an async function resumes; QuickJS
//! does not (its promise hooks skip the reaction jobs that resume one). So
//! under `nodejs_compat` each module's `await`s are rewritten to put back
//! the context that was current when the `await` started:
//!
//! - `await x` becomes `__hearth_ac.r(__hearth_ac.c(), await x)`: the
//!   context is read before the `await` and set again when it resumes;
//! - a `catch` or `finally` block, and each turn of a `for await` loop, of
//!   an async function (or of the module's top level) starts with
//!   `__hearth_ac.r(__hearth_acf)`, the context the function was entered
//!   with, which a `var` at the top of its body holds — an `await` that
//!   throws resumes in those blocks without passing through `r`.
//!
//! Text is only inserted, never moved, so every line keeps its number
//! (stack traces stay right; columns after an insert shift). Source
//! without `await`, or that does not parse as a module, is left alone.
//! `__hearth_ac` is the prelude's context object; `.then()` callbacks and
//! timers get their context from it there.

use oxc::allocator::Allocator;
use oxc::ast::ast::{
    ArrowFunctionBody, ArrowFunctionExpression, AwaitExpression, CatchClause, ForOfStatement,
    Function, Program, Statement, TryStatement,
};
use oxc::ast_visit::{Visit, walk};
use oxc::parser::Parser;
use oxc::span::{GetSpan, SourceType};
use oxc::syntax::scope::ScopeFlags;

const ENTER: &str = "var __hearth_acf = __hearth_ac.c();";
const RESTORE: &str = "__hearth_ac.r(__hearth_acf);";
const AWAIT_OPEN: &str = "__hearth_ac.r(__hearth_ac.c(), ";

/// One function (or the program) being walked.
struct Frame {
    is_async: bool,
    /// Where the entry `var` goes: just inside the body's `{`, or the
    /// program's start. `None` for an arrow with an expression body.
    entry: Option<u32>,
    /// Whether a restore in this frame needs the entry `var`.
    needs_entry: bool,
}

struct Rewrite<'s> {
    source: &'s str,
    frames: Vec<Frame>,
    /// (offset, text), applied in offset order; equal offsets keep the
    /// order they were recorded in.
    inserts: Vec<(u32, &'static str)>,
}

impl Rewrite<'_> {
    fn restore_at(&mut self, offset: u32) -> bool {
        match self.frames.last_mut() {
            Some(f) if f.is_async && f.entry.is_some() => {
                f.needs_entry = true;
                self.inserts.push((offset, RESTORE));
                true
            }
            _ => false,
        }
    }

    fn pop(&mut self) {
        if let Some(f) = self.frames.pop()
            && f.needs_entry
            && let Some(at) = f.entry
        {
            self.inserts.push((at, ENTER));
        }
    }
}

impl<'a> Visit<'a> for Rewrite<'_> {
    fn visit_program(&mut self, program: &Program<'a>) {
        // After a hashbang's line, which must stay first.
        let start = program.hashbang.as_ref().map_or(0, |h| {
            let rest = self.source.get(h.span.end as usize..).unwrap_or("");
            h.span.end + rest.find('\n').map_or(rest.len(), |i| i + 1) as u32
        });
        self.frames.push(Frame {
            is_async: true,
            entry: Some(start),
            needs_entry: false,
        });
        walk::walk_program(self, program);
        self.pop();
    }

    fn visit_function(&mut self, func: &Function<'a>, flags: ScopeFlags) {
        let entry = func.body.as_ref().map(|b| b.span.start + 1);
        self.frames.push(Frame {
            is_async: func.r#async,
            entry,
            needs_entry: false,
        });
        walk::walk_function(self, func, flags);
        self.pop();
    }

    fn visit_arrow_function_expression(&mut self, arrow: &ArrowFunctionExpression<'a>) {
        let entry = match &arrow.body {
            ArrowFunctionBody::FunctionBody(body) => Some(body.span.start + 1),
            _ => None,
        };
        self.frames.push(Frame {
            is_async: arrow.r#async,
            entry,
            needs_entry: false,
        });
        walk::walk_arrow_function_expression(self, arrow);
        self.pop();
    }

    fn visit_await_expression(&mut self, expr: &AwaitExpression<'a>) {
        self.inserts.push((expr.span.start, AWAIT_OPEN));
        walk::walk_await_expression(self, expr);
        self.inserts.push((expr.span.end, ")"));
    }

    fn visit_catch_clause(&mut self, clause: &CatchClause<'a>) {
        self.restore_at(clause.body.span.start + 1);
        walk::walk_catch_clause(self, clause);
    }

    fn visit_try_statement(&mut self, stmt: &TryStatement<'a>) {
        self.visit_block_statement(&stmt.block);
        if let Some(handler) = &stmt.handler {
            self.visit_catch_clause(handler);
        }
        if let Some(finalizer) = &stmt.finalizer {
            self.restore_at(finalizer.span.start + 1);
            self.visit_block_statement(finalizer);
        }
    }

    fn visit_for_of_statement(&mut self, stmt: &ForOfStatement<'a>) {
        if stmt.r#await {
            let body = stmt.body.span();
            if let Statement::BlockStatement(_) = &stmt.body {
                self.restore_at(body.start + 1);
            } else if self.restore_at(body.start) {
                // A single-statement body becomes a block around the restore.
                self.inserts.pop();
                self.inserts.push((body.start, "{"));
                self.inserts.push((body.start, RESTORE));
                self.inserts.push((body.end, "}"));
            }
        }
        walk::walk_for_of_statement(self, stmt);
    }
}

/// `source` with its `await`s carrying the async context, or `None` when
/// nothing needs rewriting (or it does not parse as a module).
pub fn instrument(source: &str) -> Option<String> {
    if !source.contains("await") {
        return None;
    }
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, SourceType::mjs()).parse();
    if parsed.panicked || parsed.diagnostics.has_errors() {
        return None;
    }
    let mut rewrite = Rewrite {
        source,
        frames: Vec::new(),
        inserts: Vec::new(),
    };
    rewrite.visit_program(&parsed.program);
    if rewrite.inserts.is_empty() {
        return None;
    }
    let mut inserts = rewrite.inserts;
    inserts.sort_by_key(|(at, _)| *at);
    let extra: usize = inserts.iter().map(|(_, s)| s.len()).sum();
    let mut out = String::with_capacity(source.len() + extra);
    let mut pos = 0usize;
    for (at, text) in inserts {
        let at = at as usize;
        out.push_str(source.get(pos..at)?);
        out.push_str(text);
        pos = at;
    }
    out.push_str(source.get(pos..)?);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::instrument;

    #[test]
    fn awaits_restore_the_context_they_started_in() {
        assert_eq!(
            instrument("const x = await f(await g());").unwrap(),
            "const x = __hearth_ac.r(__hearth_ac.c(), await f(__hearth_ac.r(__hearth_ac.c(), await g())));"
        );
    }

    #[test]
    fn catch_finally_and_for_await_restore_the_entry_context() {
        let src = "async function f() {\n  try { await a(); } catch (e) { log(e); } finally { done(); }\n  for await (const x of xs) use(x);\n}";
        let want = "async function f() {var __hearth_acf = __hearth_ac.c();\n  try { __hearth_ac.r(__hearth_ac.c(), await a()); } catch (e) {__hearth_ac.r(__hearth_acf); log(e); } finally {__hearth_ac.r(__hearth_acf); done(); }\n  for await (const x of xs) {__hearth_ac.r(__hearth_acf);use(x);}\n}";
        assert_eq!(instrument(src).unwrap(), want);
    }

    #[test]
    fn sync_functions_and_sources_without_await_are_left_alone() {
        assert_eq!(instrument("function f() { try { g(); } catch {} }"), None);
        let src = "async () => { await x; };\nfunction s() { try {} catch (e) {} }";
        let out = instrument(src).unwrap();
        assert!(
            out.ends_with("function s() { try {} catch (e) {} }"),
            "{out}"
        );
        // Not a module (a script using `await` as a name): untouched.
        assert_eq!(instrument("var await = 1;"), None);
    }

    #[test]
    fn lines_keep_their_numbers() {
        let src = "#!/usr/bin/env node\nconst a = 1;\ntry {\n  await f();\n} catch {\n  g();\n}\n";
        let out = instrument(src).unwrap();
        assert!(out.starts_with("#!/usr/bin/env node"), "{out}");
        assert_eq!(out.lines().count(), src.lines().count());
        assert!(out.lines().nth(3).unwrap().contains("await f()"));
    }
}
